"""jaxvfi.video_io without a model: probing, exact timing, containers, output planning, audio copy, folders.

Oracles: videos written here with raw PyAV at known rates and timestamps (tests/media.py), read back with raw PyAV;
copied audio is compared packet by packet with the input's bytes.
"""
from __future__ import annotations

from fractions import Fraction
import os
import subprocess
import sys

import av
import numpy as np
from PIL import Image
import pytest

import media
from jaxvfi import utils
from jaxvfi import video_io


def test_probe_reads_exact_rational_rates_and_detects_variable_rate(tmp_path):
  frames = media.frames_rgb(5, 16, 16)
  media.encode(tmp_path / "ntsc.mp4", frames, rate=Fraction(24000, 1001))
  info = video_io.probe(str(tmp_path / "ntsc.mp4"))
  assert info.rate == Fraction(24000, 1001) and info.constant_rate
  assert info.num_frames == 5 and info.duration == Fraction(5 * 1001, 24000)
  # Matroska keeps milliseconds: the times are 0, 33, 67, ... ms, still exactly 30000/1001 on the grid.
  media.encode(tmp_path / "ntsc.mkv", frames, rate=Fraction(30000, 1001), codec="ffv1", pix_fmt="bgr0")
  info = video_io.probe(str(tmp_path / "ntsc.mkv"))
  assert info.time_base == Fraction(1, 1000) and info.rate == Fraction(30000, 1001) and info.constant_rate
  # Variable rate: frames at 0, 40, 160, 200, 320 ms with the last lasting 40 ms -> 360 ms in all.
  tb = Fraction(1, 12800)
  pts = [0, 512, 2048, 2560, 4096]
  media.encode(tmp_path / "vfr.mp4", frames, rate=Fraction(25), pts=pts, time_base=tb)
  info = video_io.probe(str(tmp_path / "vfr.mp4"))
  assert not info.constant_rate
  assert (info.min_interval, info.max_interval) == (Fraction(1, 25), Fraction(3, 25))
  with video_io.VideoReader(str(tmp_path / "vfr.mp4")) as reader:
    times = [t for t, _ in reader.frames()]
  assert times == [p * tb for p in pts]
  assert info.duration == Fraction(9, 25) and info.rate == Fraction(5) / Fraction(9, 25)


def test_probe_keeps_a_constant_rate_grid_with_missing_frames_and_applies_rotation(tmp_path):
  frames = media.frames_rgb(10, 16, 24, seed=4)
  # AVI-style drop frame: slot 1 of the 25 fps grid has no frame (1 of 11: a constant rate with a gap).
  pts = [0] + list(range(2, 11))
  media.encode(tmp_path / "gap.mov", frames, rate=Fraction(25), pts=pts, codec="png", pix_fmt="rgb24")
  info = video_io.probe(str(tmp_path / "gap.mov"))
  assert info.constant_rate and info.rate == 25 and info.missing_frames == 1 and info.duration == Fraction(11, 25)
  # Two of six grid points empty is a variable rate.
  media.encode(tmp_path / "vfr.mov", frames[:4], rate=Fraction(25), pts=[0, 2, 4, 5], codec="png", pix_fmt="rgb24")
  assert not video_io.probe(str(tmp_path / "vfr.mov")).constant_rate
  # A phone video stored sideways with a display rotation of 90 degrees counter-clockwise.
  media.encode(tmp_path / "phone.mov", frames, rate=Fraction(25), codec="png", pix_fmt="rgb24", display_rotation=90)
  info = video_io.probe(str(tmp_path / "phone.mov"))
  assert (info.rotation, info.width, info.height) == (90, 16, 24)
  with video_io.VideoReader(str(tmp_path / "phone.mov")) as reader:
    np.testing.assert_array_equal(next(iter(reader)), np.rot90(frames[0]))


@pytest.mark.parametrize("name", ["vfr_1s.mp4", "ntsc_23.976.mp4"])
def test_probe_shared_cases(name):
  path = os.path.join(media.SHARED_CASES, "video", name)
  if not os.path.exists(path):
    pytest.skip(f"{path} absent (the shared cases sit beside the clone in CI)")
  info = video_io.probe(path)
  if name == "vfr_1s.mp4":  # 13 frames from 0 to 1.0 s, the last 40 ms long
    assert not info.constant_rate and info.num_frames == 13 and info.duration == Fraction(26, 25)
  else:
    assert info.constant_rate and info.rate == Fraction(24000, 1001) and info.duration == Fraction(12 * 1001, 24000)


@pytest.mark.parametrize("ext,kw", [
    (".m4v", {}), (".ts", {}), (".m2ts", {}), (".3gp", {}), (".flv", {}), (".avi", {}), (".webm", {"codec": "libvpx"}),
    (".gif", {"codec": "gif", "pix_fmt": "rgb8", "rate": Fraction(10)}), (".mov", {"codec": "png", "pix_fmt": "rgba"}),
])
def test_any_container_ffmpeg_reads_is_a_video(tmp_path, ext, kw):
  path = tmp_path / f"clip{ext}"
  media.encode(path, media.frames_rgb(4, 16, 16, seed=1), **{"rate": Fraction(25), **kw})
  info = video_io.probe(str(path))
  assert info.num_frames == 4 and info.constant_rate and info.rate == kw.get("rate", Fraction(25))
  with video_io.VideoReader(str(path)) as reader:
    images = list(reader)
  assert len(images) == 4 and images[0].shape == (16, 16, 3) and images[0].dtype == np.uint8


def test_closing_a_reader_mid_video_ends_its_frame_iterators(tmp_path):
  """A run stopped mid-video (Ctrl-C, SIGTERM) closes the reader with a decoding generator suspended. The generator
  must end there: left to the interpreter's exit, it touched the closed container and the process died of SIGSEGV
  after its cleanup (seen in about one interrupted run of three)."""
  path = tmp_path / "clip.mkv"
  media.encode(path, media.frames_rgb(6, 16, 16, seed=2), rate=Fraction(10), codec="ffv1", pix_fmt="bgr0")
  reader = video_io.VideoReader(str(path))
  frames, images = reader.frames(), iter(reader)
  assert next(frames)[0] == 0 and next(images).shape == (16, 16, 3)
  reader.close()
  with pytest.raises(StopIteration):
    next(frames)
  with pytest.raises(StopIteration):
    next(images)


def test_bad_videos_give_one_line_errors(tmp_path):
  (tmp_path / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "still.png")
  with pytest.raises(ValueError, match=r"cannot read video .*garbage\.mp4"):
    video_io.probe(str(tmp_path / "garbage.mp4"))
  with pytest.raises(ValueError, match=r"still\.png has one frame"):
    video_io.probe(str(tmp_path / "still.png"))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    video_io.probe(str(tmp_path / "none.mp4"))


def test_plan_switches_codec_to_what_the_container_takes_before_any_frame(tmp_path):
  media.encode(tmp_path / "in.mp4", media.frames_rgb(3, 16, 16), audio_seconds=0.125)
  info = video_io.probe(str(tmp_path / "in.mp4"))
  plan = video_io.plan_video_output(str(tmp_path / "out.mp4"), 16, 16, time_base=Fraction(1, 48), rate=Fraction(48),
                                    source=info)
  assert (plan.codec, plan.pix_fmt, plan.audio, plan.notes) == ("libx264", "yuv420p", ((1, "copy"),), ())
  webm = video_io.plan_video_output(str(tmp_path / "out.webm"), 16, 16, time_base=Fraction(1, 48),
                                    rate=Fraction(48), source=info)
  assert webm.codec == "libvpx-vp9" and webm.audio == ((1, "libopus"),)
  assert any("does not take h264" in n for n in webm.notes) and any("re-encoded to libopus" in n for n in webm.notes)
  gif = video_io.plan_video_output(str(tmp_path / "out.gif"), 16, 16, time_base=Fraction(1, 48), rate=Fraction(48),
                                   source=info)
  assert gif.codec == "gif" and gif.audio == () and any("audio track 1 dropped" in n for n in gif.notes)
  odd = video_io.plan_video_output(str(tmp_path / "odd.mp4"), 15, 9, time_base=Fraction(1, 48), rate=Fraction(48),
                                   source=info)
  assert odd.pix_fmt == "yuv444p" and any("refused yuv420p" in n for n in odd.notes)
  with pytest.raises(ValueError, match="--codec nonsense"):
    video_io.plan_video_output(str(tmp_path / "o.mp4"), 16, 16, time_base=Fraction(1, 48), codec="nonsense")
  with pytest.raises(ValueError, match=r"cannot write a 16x16 video to .*o\.webm"):
    video_io.plan_video_output(str(tmp_path / "o.webm"), 16, 16, time_base=Fraction(1, 48), codec="libx264")
  with pytest.raises(ValueError, match=r"knows no video container for \.xyz"):
    video_io.output_format_name(str(tmp_path / "o.xyz"))
  assert sorted(os.listdir(tmp_path)) == ["in.mp4"]  # planning writes nothing


def test_writer_exact_timestamps_copied_audio_and_atomic_rename(tmp_path):
  rate = Fraction(24000, 1001)
  frames = media.frames_rgb(6, 16, 16, seed=2)
  media.encode(tmp_path / "in.mp4", frames, rate=rate, audio_seconds=6 / rate)
  info = video_io.probe(str(tmp_path / "in.mp4"))
  out_rate = 2 * rate
  plan = video_io.plan_video_output(str(tmp_path / "out.mp4"), 16, 16, time_base=1 / out_rate, rate=out_rate,
                                    source=info)
  writer = video_io.VideoWriter(plan, 16, 16, 1 / out_rate, out_rate, source=info)
  for k in range(12):
    writer.write(frames[k // 2], Fraction(k) / out_rate)
  assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp_")]  # written beside, renamed at the end
  writer.commit(Fraction(12) / out_rate)
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]
  got = media.facts(tmp_path / "out.mp4")
  assert got["rate"] == Fraction(48000, 1001) and len(got["frames"]) == 12
  assert got["times"] == [Fraction(k) / out_rate for k in range(12)]
  assert got["duration"] == info.duration == Fraction(6 * 1001, 24000)
  assert len(got["audio"]) == 1 and abs(got["audio"][0]["duration"] - got["duration"]) <= 1 / out_rate
  assert media.audio_payloads(tmp_path / "out.mp4") == media.audio_payloads(tmp_path / "in.mp4")  # copied

  # A variable-rate output keeps any exact time; abort leaves nothing behind.
  tb = Fraction(1, 25600)
  plan = video_io.plan_video_output(str(tmp_path / "vfr.mp4"), 16, 16, time_base=tb, source=info, audio=False)
  writer = video_io.VideoWriter(plan, 16, 16, tb, None, source=info)
  want = [Fraction(0), Fraction(1, 50), Fraction(1, 25), Fraction(1, 10), Fraction(3, 20)]
  for k, when in enumerate(want):
    writer.write(frames[k], when)
  writer.commit(Fraction(1, 5))
  got = media.facts(tmp_path / "vfr.mp4")
  assert got["times"] == want and got["duration"] == Fraction(1, 5) and got["audio"] == []
  writer = video_io.VideoWriter(plan, 16, 16, tb, None, source=info)
  writer.write(frames[0], Fraction(0))
  writer.abort()
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4", "vfr.mp4"]


def test_writer_keeps_the_pixel_shape_of_anamorphic_video(tmp_path):
  media.encode(tmp_path / "dv.mp4", media.frames_rgb(2, 16, 24), rate=Fraction(25), sar=Fraction(32, 27))
  info = video_io.probe(str(tmp_path / "dv.mp4"))
  assert info.sample_aspect_ratio == Fraction(32, 27)
  plan = video_io.plan_video_output(str(tmp_path / "o.mp4"), 24, 16, time_base=Fraction(1, 25), rate=Fraction(25),
                                    source=info)
  writer = video_io.VideoWriter(plan, 24, 16, Fraction(1, 25), Fraction(25), source=info)
  writer.write(np.zeros((16, 24, 3), np.uint8), Fraction(0))
  writer.commit(Fraction(1, 25))
  with av.open(str(tmp_path / "o.mp4")) as c:
    assert c.streams.video[0].sample_aspect_ratio == Fraction(32, 27)


def test_alpha_survives_lossless_and_webm(tmp_path):
  rng = np.random.default_rng(3)
  rgba = [rng.integers(0, 256, (16, 16, 4)).astype(np.uint8) for _ in range(3)]
  media.encode(tmp_path / "a.mov", rgba, codec="png", pix_fmt="rgba")
  info = video_io.probe(str(tmp_path / "a.mov"))
  assert info.has_alpha and not info.first_frame_opaque
  with video_io.VideoReader(str(tmp_path / "a.mov"), alpha=True) as reader:
    got = list(reader)
  np.testing.assert_array_equal(np.stack(got), np.stack(rgba))
  # WebM holds alpha in VP9 side data that FFmpeg's own decoder drops; the reader uses libvpx for it.
  plan = video_io.plan_video_output(str(tmp_path / "a.webm"), 16, 16, time_base=Fraction(1, 24), rate=Fraction(24),
                                    source=info, alpha=True)
  assert plan.codec == "libvpx-vp9" and plan.pix_fmt == "yuva420p" and plan.alpha
  writer = video_io.VideoWriter(plan, 16, 16, Fraction(1, 24), Fraction(24), source=info)
  for k, image in enumerate(rgba):
    writer.write(image, Fraction(k, 24))
  writer.commit(Fraction(3, 24))
  with video_io.VideoReader(str(tmp_path / "a.webm"), alpha=True) as reader:
    back = list(reader)
  assert back[0].shape == (16, 16, 4)
  assert np.abs(back[0][..., 3].astype(int) - rgba[0][..., 3]).mean() < 8  # lossy, but the alpha is there

  # MP4 keeps alpha only with a fallback encoder that most players do not play: the plan says so.
  plan = video_io.plan_video_output(str(tmp_path / "a.mp4"), 16, 16, time_base=Fraction(1, 24), rate=Fraction(24),
                                    source=info, alpha=True, alpha_required=True)
  assert plan.alpha and plan.codec in video_io.ALPHA_ENCODERS
  assert any("few players play" in n and "--alpha=drop" in n for n in plan.notes), plan.notes
  webm = video_io.plan_video_output(str(tmp_path / "b.webm"), 16, 16, time_base=Fraction(1, 24), rate=Fraction(24),
                                    source=info, alpha=True, alpha_required=True)
  assert webm.alpha and not any("few players play" in n for n in webm.notes), webm.notes


def test_staged_folder_replaces_an_earlier_run_whole_and_refuses_foreign_files(tmp_path, caplog):
  own = r"frame_\d{6}\.png"
  out = tmp_path / "out"
  staged = video_io.StagedFolder(str(out), own)
  for k in range(5):
    staged.write_png(f"frame_{k:06d}.png", np.full((4, 4, 3), k, np.uint8))
  assert not out.exists()  # nothing visible before commit
  staged.commit()
  assert sorted(os.listdir(out)) == [f"frame_{k:06d}.png" for k in range(5)]
  assert "earlier run" not in caplog.text
  staged = video_io.StagedFolder(str(out), own)  # a second, shorter run
  for k in range(2):
    staged.write_png(f"frame_{k:06d}.png", np.full((4, 4, 3), 10 + k, np.uint8))
  with caplog.at_level("INFO", logger="absl"):
    staged.commit()
  assert f"{out}: replaced the 5 frame(s) of an earlier run" in caplog.text
  assert sorted(os.listdir(out)) == ["frame_000000.png", "frame_000001.png"]
  assert np.asarray(Image.open(out / "frame_000001.png"))[0, 0, 0] == 11
  staged = video_io.StagedFolder(str(out), own)
  staged.abort()
  assert sorted(os.listdir(tmp_path)) == ["out"]
  (out / "holiday.jpg").write_bytes(b"mine")
  with pytest.raises(ValueError, match=r"holds 1 file\(s\) this tool did not write \(holiday\.jpg\)"):
    video_io.StagedFolder(str(out), own)
  (tmp_path / "file").write_bytes(b"x")
  with pytest.raises(ValueError, match="is an existing file"):
    video_io.StagedFolder(str(tmp_path / "file"), own)


def test_frame_folder_listing_is_natural_order(tmp_path):
  for name in ("10.png", "2.png", "1.png", ".hidden.png", "notes.txt"):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name, format="PNG")
  assert [os.path.basename(p) for p in video_io.list_frame_files(str(tmp_path))] == ["1.png", "2.png", "10.png"]
  os.makedirs(tmp_path / "empty")
  with pytest.raises(ValueError, match="holds 0 image file"):
    video_io.list_frame_files(str(tmp_path / "empty"))


def test_parse_rate():
  assert video_io.parse_rate("24000/1001") == Fraction(24000, 1001)
  assert video_io.parse_rate("29.97") == Fraction(2997, 100)
  for bad in ("0", "-5", "abc", "1/0"):
    with pytest.raises(ValueError, match="rate"):
      video_io.parse_rate(bad)


@pytest.mark.parametrize("kind", ["tiff8", "tiff16", "png"])
def test_orientation_is_applied_once_to_pixels_and_header(tmp_path, kind):
  """An image stored 40 wide x 24 high with EXIF/TIFF orientation 6 (rotate 90 degrees clockwise) is a 24 x 40 frame
  whose stored top-left corner is at the top right; `image_header` reports the size `read_frame` gives. Pillow 13
  already turns a TIFF's reported size and decodes 16-bit grayscale TIFFs into the turned size, garbled."""
  stored = np.zeros((24, 40, 3), np.uint8)
  stored[:4, :6] = 255
  path = str(tmp_path / ("f.tif" if kind.startswith("tiff") else "f.png"))
  if kind == "tiff8":
    Image.fromarray(stored).save(path, tiffinfo={274: 6})
  elif kind == "tiff16":
    Image.fromarray(stored[..., 0].astype(np.uint16) * 257).save(path, tiffinfo={274: 6})
  else:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif)
  frame = video_io.read_frame(path)
  assert frame.shape == (40, 24, 3)
  np.testing.assert_array_equal(frame[..., 0], np.rot90(stored[..., 0], -1))
  assert video_io.image_header(path)[:2] == (24, 40)


def test_sinks_refuse_a_frame_of_another_size(tmp_path):
  sink = video_io.FolderSink(str(tmp_path / "frames"), 8, 6)
  sink.write(np.zeros((6, 8, 3), np.uint8))
  with pytest.raises(ValueError, match=r"a 6x8 frame does not match the planned 8x6 output"):
    sink.write(np.zeros((8, 6, 3), np.uint8))
  sink.abort()
  assert not os.path.exists(tmp_path / "frames")


def test_a_killed_runs_temporary_files_are_removed_by_the_next(tmp_path):
  """Temporary files carry the output's name and the writing process's id: a later run removes those of processes
  that no longer run, and leaves a live process's and other files alone."""
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                        check=True).stdout.strip()
  out = tmp_path / "out.png"
  stale_file = tmp_path / f".tmp_out.png.{dead}.abc"
  stale_dir = tmp_path / f".tmp_out.png.{dead}.def"
  live = tmp_path / f".tmp_out.png.{os.getppid()}.ghi"
  other = tmp_path / f".tmp_other.png.{dead}.jkl"
  stale_file.write_bytes(b"x")
  stale_dir.mkdir()
  live.write_bytes(b"y")
  other.write_bytes(b"z")
  utils.atomic_write_png(str(out), np.zeros((2, 2, 3), np.uint8))
  assert out.is_file() and not stale_file.exists() and not stale_dir.exists()
  assert live.exists() and other.exists()
