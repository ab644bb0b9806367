"""Inference on your own frames and videos (`jaxvfi.interpolate`): file reading, known outputs, CLI, videos, errors.

Oracles: a SepConv whose kernel heads are set to centre taps of weight 1/2 makes exactly (frame0 + frame1) / 2, and
by bisection (1 - t) frame0 + t frame1 at t = k/4 (frames of multiples of 4 keep every value an integer); a stand-in
model that returns the exact blend (1 - t) frame0 + t frame1 at any t shows which t each output frame was made at;
a ReFIn (UNet++ backbones, flow UNet) run through the command line is compared with the model applied directly;
file conversions are checked against NumPy on the pixels written; videos are written and read back with raw PyAV
(tests/media.py): exact r_frame_rate, frame times and durations as fractions, audio packets byte for byte.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from conftest import ROOT
from helpers import random_params, write_workdir
import media
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import interpolate
from jaxvfi import utils
from jaxvfi import video_io
from jaxvfi.inference import frames as frames_lib
from jaxvfi.inference import interpolator
from jaxvfi.inference import retime

K = 5  # SepConv kernel taps: small, the oracle does not depend on it


def _config(name: str, arg: str):
  spec = importlib.util.spec_from_file_location(f"{name}_config", os.path.join(ROOT, "configs", f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def _sepconv_workdir(workdir, taps=(K // 2, K // 2, K // 2, K // 2)):
  """SepConv whose heads output constant one-hot kernels at `taps` (kv0, kh0, kv1, kh1), the horizontal ones / 2:
  Î(y, x) = (I0(y + dy0, x + dx0) + I1(y + dy1, x + dx1)) / 2 with d = tap - K // 2; centre taps give (I0 + I1) / 2."""
  config = _config("sepconv", "runlocal")
  config.model.kernel_size = K
  model = families.build_model(config.model)
  params = random_params(model, config, seed=0)  # a random U-Net: the heads below ignore it
  for name, tap in zip(("kv0", "kh0", "kv1", "kh1"), taps):
    bias = np.zeros(K, np.float32)
    bias[tap] = 0.5 if name.startswith("kh") else 1.0
    head = params["sepconv"][name]["head"]
    head["kernel"] = np.zeros_like(head["kernel"])
    head["bias"] = bias
  return write_workdir(workdir, config, params)


@pytest.fixture(scope="module")
def sepconv_workdir(tmp_path_factory):
  return _sepconv_workdir(tmp_path_factory.mktemp("sepconv"))


@pytest.fixture(scope="module")
def sepconv_interp(sepconv_workdir):
  return interpolator.load_model(sepconv_workdir)


def _blend(f0, f1, t):
  return ((1 - t) * f0.astype(np.float64) + t * f1.astype(np.float64)).astype(np.uint8)


def _frames4(h, w, seed=0):
  """Two frames of multiples of 4: every blend at t = k/4 is an integer, so rounding cannot differ."""
  rng = np.random.default_rng(seed)
  return [(rng.integers(0, 64, (h, w, 3)) * 4).astype(np.uint8) for _ in range(2)]


def _png16(path, a):
  """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): gray (H, W) or RGB (H, W, 3), uint16."""
  h, w = a.shape[:2]
  raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))
  chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                              + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
  header = struct.pack(">IIBBBBB", w, h, 16, 2 if a.ndim == 3 else 0, 0, 0, 0)
  with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _no_temp_files(folder):
  leftovers = [n for n in os.listdir(folder) if n.startswith(".tmp_")]
  assert not leftovers, leftovers


# ----------------------------------------------------------------------------------------------------------------
# Reading frames.


def test_read_frame_converts_every_kind_of_png_to_rgb8(tmp_path, caplog):
  rng = np.random.default_rng(1)
  rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
  gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
  alpha = rng.integers(0, 256, (5, 7, 1), dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / "rgb.png")
  Image.fromarray(gray).save(tmp_path / "gray.png")
  Image.fromarray(np.concatenate([rgb, alpha], -1)).save(tmp_path / "rgba.png")
  palette = Image.fromarray(gray[..., None].repeat(3, -1)).quantize(colors=16)
  palette.save(tmp_path / "palette.png")
  g16 = rng.integers(0, 65536, (5, 7)).astype(np.uint16)
  g16[0, :3] = (0, 65535, 257 * 100 + 128)  # black, white, and a value just past half a step above 100
  rgb16 = rng.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
  _png16(tmp_path / "g16.png", g16)
  _png16(tmp_path / "rgb16.png", rgb16)

  np.testing.assert_array_equal(video_io.read_frame(str(tmp_path / "rgb.png")), rgb)
  np.testing.assert_array_equal(video_io.read_frame(str(tmp_path / "gray.png")), np.stack([gray] * 3, -1))
  with caplog.at_level("INFO", logger="absl"):
    got = video_io.read_frame(str(tmp_path / "rgba.png"))
  np.testing.assert_array_equal(got, rgb)
  assert "rgba.png: alpha channel dropped" in caplog.text
  lut = np.asarray(palette.getpalette(), np.uint8).reshape(-1, 3)
  np.testing.assert_array_equal(video_io.read_frame(str(tmp_path / "palette.png")), lut[np.asarray(palette)])
  got16 = video_io.read_frame(str(tmp_path / "g16.png"))
  np.testing.assert_array_equal(got16, np.stack([np.round(g16 / 257.0).astype(np.uint8)] * 3, -1))
  assert got16[0, :3, 0].tolist() == [0, 255, 100]
  # Pillow decodes 16-bit RGB to its high byte; a log line says so (none for an 8-bit RGB file).
  assert "reduced to 8 bits" not in caplog.text
  with caplog.at_level("INFO", logger="absl"):
    got = video_io.read_frame(str(tmp_path / "rgb16.png"))
  np.testing.assert_array_equal(got, (rgb16 >> 8).astype(np.uint8))
  assert "rgb16.png: 16-bit RGB reduced to 8 bits" in caplog.text


def test_read_frame_applies_exif_orientation(tmp_path):
  img = Image.fromarray(np.zeros((10, 30, 3), np.uint8))
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 CW to display"
  img.save(tmp_path / "phone.jpg", exif=exif)
  assert video_io.read_frame(str(tmp_path / "phone.jpg")).shape == (30, 10, 3)


def test_bad_frames_give_one_clear_error(tmp_path):
  a, b = _frames4(32, 48)
  Image.fromarray(a).save(tmp_path / "a.png")
  Image.fromarray(b[:33, :47]).save(tmp_path / "odd.png")
  good = (tmp_path / "a.png").read_bytes()
  (tmp_path / "truncated.png").write_bytes(good[:len(good) // 2])
  (tmp_path / "garbage.png").write_bytes(b"not an image at all")
  with pytest.raises(ValueError, match=r"frame sizes differ: .*a\.png is 48x32 and .*odd\.png is 47x32"):
    frames_lib.read_frame_pair(str(tmp_path / "a.png"), str(tmp_path / "odd.png"))
  for name in ("truncated.png", "garbage.png"):
    with pytest.raises(ValueError, match=rf"cannot read image .*{name}"):
      frames_lib.read_frame_pair(str(tmp_path / "a.png"), str(tmp_path / name))
  with pytest.raises(FileNotFoundError, match=r"frame .*missing\.png does not exist"):
    frames_lib.read_frame_pair(str(tmp_path / "missing.png"), str(tmp_path / "a.png"))
  with pytest.raises(ValueError, match="is not a file"):
    video_io.read_frame(str(tmp_path))


def test_load_model_needs_config_and_checkpoint(tmp_path, sepconv_workdir):
  with pytest.raises(FileNotFoundError, match=r"has no config\.json and no checkpoint"):
    interpolator.load_model(str(tmp_path))
  (tmp_path / "config.json").write_text((open(os.path.join(sepconv_workdir, "config.json"))).read())
  with pytest.raises(FileNotFoundError, match=r"has no checkpoint"):
    interpolator.load_model(str(tmp_path))


# ----------------------------------------------------------------------------------------------------------------
# Known outputs through the library.


def test_sepconv_known_output_bisection_and_one_compile_per_size(sepconv_interp):
  interp = sepconv_interp
  assert interp.step == 7 and interp.time_free
  f0, f1 = _frames4(33, 47)  # odd size: the model pads to 64x64 and crops back
  traces = interp.num_traces
  outs = interp.interpolate(f0, f1, times=(0.5, 0.25, 0.75))
  for t, out in zip((0.5, 0.25, 0.75), outs):
    assert out.dtype == np.uint8 and out.shape == (33, 47, 3)
    np.testing.assert_array_equal(out, _blend(f0, f1, t))
  # Other times, and float input, reuse the one compiled program of this size.
  np.testing.assert_array_equal(interp.interpolate(f0 / 255.0, f1 / 255.0, times=(0.75,))[0], _blend(f0, f1, 0.75))
  assert interp.num_traces == traces + 1
  g0, g1 = _frames4(32, 48, seed=3)
  np.testing.assert_array_equal(interp.interpolate(g0, g1)[0], _blend(g0, g1, 0.5))
  assert interp.num_traces == traces + 2

  with pytest.raises(ValueError, match=r"no time input.*t = 0\.333333"):
    interp.interpolate(f0, f1, times=(1 / 3,))
  with pytest.raises(ValueError, match="strictly between 0 and 1"):
    interp.interpolate(f0, f1, times=(0.0, 0.5))
  with pytest.raises(ValueError, match="one size"):
    interp.interpolate(f0, g1)


def test_frame_files_several_times_go_to_a_folder(sepconv_interp, tmp_path):
  f0, f1 = _frames4(33, 47, seed=5)
  Image.fromarray(f0).save(tmp_path / "a.png")
  Image.fromarray(np.stack([f1[..., 0]] * 3, -1)).convert("L").save(tmp_path / "b.png")  # grayscale input
  gray1 = np.stack([f1[..., 0]] * 3, -1)
  out = tmp_path / "out"
  paths = retime.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                         str(out), times=interpolator.times_for_factor(4))
  assert sorted(os.listdir(out)) == ["t0.2500.png", "t0.5000.png", "t0.7500.png"]
  for path, t in zip(paths, (0.25, 0.5, 0.75)):
    np.testing.assert_array_equal(np.asarray(Image.open(path)), _blend(f0, gray1, t))
  for name in ("x.png", "x.mp4"):  # several frames never go to a file, nor to a folder named like a video
    with pytest.raises(ValueError, match=f"--output .*{name} names a file but 2 times give 2 frames: name a folder"):
      retime.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                     str(tmp_path / name), times=(0.25, 0.5))
    assert not (tmp_path / name).exists()
  paths = retime.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                         str(tmp_path / "one" / "mid.png"))
  assert paths == [str(tmp_path / "one" / "mid.png")]
  np.testing.assert_array_equal(np.asarray(Image.open(paths[0])), _blend(f0, gray1, 0.5))
  _no_temp_files(out)
  _no_temp_files(tmp_path)
  _no_temp_files(tmp_path / "one")


# ----------------------------------------------------------------------------------------------------------------
# The command line.


def _cli(*args, timeout=600):
  return subprocess.run([sys.executable, "-m", "jaxvfi.interpolate", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout, check=False)


def test_cli_frames_refin_equals_the_model_applied_directly(tmp_path):
  config = _config("refin", "runlocal,backbone=unetpp,flow=unet")
  assert config.model.flow == "unet"
  model = families.build_model(config.model)
  workdir = write_workdir(tmp_path / "refin", config, random_params(model, config, seed=2), step=3)
  rng = np.random.default_rng(4)
  base = rng.integers(0, 256, (33, 47, 3)).astype(np.uint8)
  f0, f1 = base, np.roll(base, 2, axis=1)  # a small motion
  Image.fromarray(f0).save(tmp_path / "a.png")
  Image.fromarray(f1).save(tmp_path / "b.png")
  out = tmp_path / "res"
  r = _cli(f"--workdir={workdir}", "--frames", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--output",
           str(out), "--times=0.25,0.5")
  assert r.returncode == 0, r.stderr[-3000:]
  assert "trained at t = 0.5 only; t = 0.25 extrapolates" in r.stderr
  assert sorted(os.listdir(out)) == ["t0.2500.png", "t0.5000.png"]

  template = checkpoints.params_template(model, config)
  params, step = checkpoints.restore_params(workdir, template)
  assert step == 3
  predict = families.make_predict_fn(model)
  for t in (0.25, 0.5):
    batch = {"frame0": jnp.asarray(f0[None] / np.float32(255)), "frame1": jnp.asarray(f1[None] / np.float32(255)),
             "t": jnp.full((1,), t, jnp.float32)}
    want = utils.to_uint8(np.asarray(predict(params, batch)["image"])[0])
    got = np.asarray(Image.open(out / f"t{t:.4f}.png"))
    assert got.shape == (33, 47, 3)
    np.testing.assert_array_equal(got, want)
    assert np.abs(want.astype(int) - f0).mean() > 1 and np.abs(want.astype(int) - f1).mean() > 1  # not a copy
  _no_temp_files(out)

  # --tta: the mean of the frame above and the frame made from both inputs rotated by 180 degrees, rotated back.
  r = _cli(f"--workdir={workdir}", "--frames", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--output",
           str(tmp_path / "tta.png"), "--tta")
  assert r.returncode == 0, r.stderr[-3000:]
  rot = lambda x: x[:, ::-1, ::-1]
  batch = {"frame0": jnp.asarray(f0[None] / np.float32(255)), "frame1": jnp.asarray(f1[None] / np.float32(255)),
           "t": jnp.full((1,), 0.5, jnp.float32)}
  plain = np.asarray(predict(params, batch)["image"])
  rotated = np.asarray(predict(params, {k: rot(v) if v.ndim == 4 else v for k, v in batch.items()})["image"])
  want = utils.to_uint8(0.5 * (plain + rot(rotated))[0])
  got = np.asarray(Image.open(tmp_path / "tta.png")).astype(int)
  assert np.abs(got - want).max() <= 1 and np.mean(got == want) > 0.99  # float32 sums in another order
  assert np.abs(got - utils.to_uint8(plain[0])).mean() > 0.5  # the rotation changed the frame
  # Without a flag the run's config decides (configs/refin.py:cpu turns it on); --tta and --no_tta override it.
  flags = lambda *a: interpolate._parse_flags(  # pylint: disable=protected-access
      ["interpolate", "--workdir=w", "--frames", "a.png", "b.png", "--output", "o.png", *a]).test_time_augmentation
  assert [flags(), flags("--tta"), flags("--no_tta")] == [None, True, False]
  assert not interpolator.Interpolator(model, params, config).test_time_augmentation
  config.test_time_augmentation = True
  assert interpolator.Interpolator(model, params, config).test_time_augmentation
  assert not interpolator.Interpolator(model, params, config, test_time_augmentation=False).test_time_augmentation


class _ExactBlend:
  """Stands in for a model with a time input: makes exactly (1 - t) frame0 + t frame1, so each output frame shows
  the t it was made at; records the times asked."""
  name, time_free = "exact-blend", False

  def __init__(self):
    self.calls = []

  def interpolate(self, frame0, frame1, times=(0.5,)):
    self.calls.append(list(times))
    f0, f1 = (np.asarray(f, np.float64) / (255.0 if np.asarray(f).dtype == np.uint8 else 1.0) for f in (frame0, frame1))
    return [utils.to_uint8((1 - t) * f0 + t * f1) for t in times]


def _expected_retimed(inputs, input_times, end, out_times, model):
  """The frame each output time must get: the input frame it falls on, else the model at its exact t, and the
  last input frame held until `end`."""
  out = []
  for when in out_times:
    i = max(k for k, s in enumerate(input_times) if s <= when)
    if input_times[i] == when or i == len(inputs) - 1:
      out.append(inputs[i])
    else:
      t = (when - input_times[i]) / (input_times[i + 1] - input_times[i])
      out.append(model.interpolate(inputs[i], inputs[i + 1], [float(t)])[0])
  assert out_times[-1] < end
  return out


def _run_cli(capsys, monkeypatch, *args, model=None):
  """The command line in-process: (exit status, stderr, stdout). load_model returns `model`; with None, loading
  fails the test (so a refusal is proved to come before the model loads)."""

  def load(workdir=None, config=None, **source):
    del config
    assert model is not None, f"the model of {workdir or source} was loaded before the refusal"
    return model

  monkeypatch.setattr(interpolator, "load_model", load)
  try:
    flags = interpolate._parse_flags(["interpolate", "--no_progress", *args])  # pylint: disable=protected-access
    interpolate.main(flags)
    code = 0
  except SystemExit as e:
    code = e.code
  captured = capsys.readouterr()
  return code, captured.err, captured.out


def _listing(folder):
  return {os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
          for d, _, names in os.walk(folder) for n in names}


# ----------------------------------------------------------------------------------------------------------------
# Videos: timing.


def test_video_ntsc_factor_and_fps_have_exact_rational_timing(tmp_path):
  rate = Fraction(24000, 1001)
  frames = media.frames_rgb(5, 16, 24, seed=7)
  media.encode(tmp_path / "in.mov", frames, rate=rate, codec="png", pix_fmt="rgb24")  # lossless
  duration = media.facts(tmp_path / "in.mov")["duration"]
  assert duration == Fraction(5 * 1001, 24000)
  model = _ExactBlend()
  off = frames_lib.Options(scene_threshold=None)  # random frames of 384 pixels have noisy histograms

  assert retime.interpolate_video(model, str(tmp_path / "in.mov"), str(tmp_path / "x2.mov"), factor=2,
                                  progress_bar=False, options=off) == 10
  got = media.facts(tmp_path / "x2.mov")
  assert got["rate"] == Fraction(48000, 1001)  # not 47.96
  assert got["times"] == [Fraction(k * 1001, 48000) for k in range(10)] and got["duration"] == duration
  want = _expected_retimed(frames, [Fraction(k) / rate for k in range(5)], duration, got["times"], model)
  np.testing.assert_array_equal(np.stack(got["frames"]), np.stack(want))

  # 24000/1001 -> 60: every frame at its own exact t, the second one at t = (24000/1001) / 60 = 0.3996.
  model = _ExactBlend()
  n = retime.interpolate_video(model, str(tmp_path / "in.mov"), str(tmp_path / "60.mov"), fps=Fraction(60),
                               progress_bar=False, options=off)
  assert model.calls[0] == [float(rate / 60), float(2 * rate / 60)]  # one call per pair; t = 0.3996, not 0.4
  got = media.facts(tmp_path / "60.mov")
  assert n == len(got["frames"]) == round(duration * 60) == 13 and got["rate"] == 60
  assert got["times"] == [Fraction(k, 60) for k in range(13)]
  assert abs(got["duration"] - duration) <= Fraction(1, 60)
  want = _expected_retimed(frames, [Fraction(k) / rate for k in range(5)], duration, got["times"], _ExactBlend())
  np.testing.assert_array_equal(np.stack(got["frames"]), np.stack(want))


def test_video_variable_frame_rate_keeps_timestamps_or_converts_on_purpose(tmp_path, caplog):
  tb = Fraction(1, 12800)
  pts = [0, 512, 2048, 2560, 4096]  # 0, 40, 160, 200, 320 ms
  frames = media.frames_rgb(5, 16, 24, seed=8)
  media.encode(tmp_path / "vfr.mov", frames, rate=Fraction(25), pts=pts, time_base=tb, codec="png", pix_fmt="rgb24")
  src = media.facts(tmp_path / "vfr.mov")
  times, duration = src["times"], src["duration"]
  assert times == [p * tb for p in pts]
  model = _ExactBlend()
  off = frames_lib.Options(scene_threshold=None)  # random frames of 384 pixels have noisy histograms

  # --factor=2 keeps the timestamps and splits every interval, the last frame's too: the same duration exactly.
  n = retime.interpolate_video(model, str(tmp_path / "vfr.mov"), str(tmp_path / "x2.mov"), factor=2,
                               progress_bar=False, options=off)
  got = media.facts(tmp_path / "x2.mov")
  ends = times[1:] + [duration]
  assert n == 10 and got["times"] == [s + (e - s) * j / 2 for s, e in zip(times, ends) for j in range(2)]
  assert got["duration"] == duration
  want = _expected_retimed(frames, times, duration, got["times"], model)
  np.testing.assert_array_equal(np.stack(got["frames"]), np.stack(want))

  # --fps converts to a constant rate: frames at k / 25, each at its exact t; the duration within one frame.
  with caplog.at_level("INFO", logger="absl"):
    code_path = str(tmp_path / "25.mov")
    job = retime.prepare_video_job(retime.open_video_source(str(tmp_path / "vfr.mov")), code_path,
                                   fps=Fraction(25), options=off)
    stats = job.run(model, progress_bar=False)
  got = media.facts(tmp_path / "25.mov")
  assert got["rate"] == 25 and got["times"] == [Fraction(k, 25) for k in range(len(got["frames"]))]
  assert abs(got["duration"] - duration) <= Fraction(1, 25) and stats.duration_out == got["duration"]
  want = _expected_retimed(frames, times, duration, got["times"], model)
  np.testing.assert_array_equal(np.stack(got["frames"]), np.stack(want))


class _BlendInterpolator(interpolator.Interpolator):
  """The real Interpolator's time checks (trained at t = 0.5 only, like ReFIn) around an exact blend."""

  def __init__(self):  # pylint: disable=super-init-not-called  (no network: _middle is the blend)
    self.name, self.time_free, self.trained_t, self.pixel_shader = "blend", False, 0.5, None
    self.extrapolated_times, self.warned_times = set(), set()

  def _middle(self, frame0, frame1, t):
    return (1 - t) * frame0 + t * frame1


def test_video_run_names_every_untrained_t_it_used(tmp_path, caplog):
  frames = media.frames_rgb(5, 16, 24, seed=12)
  media.encode(tmp_path / "in.mov", frames, rate=Fraction(12), codec="png", pix_fmt="rgb24")
  off = frames_lib.Options(scene_threshold=None)
  interp = _BlendInterpolator()
  # 12 -> 30 fps: output frame k falls at t = frac(2k / 5); the first pair makes t = 0.4 and 0.8 only.
  with caplog.at_level("INFO", logger="absl"):
    job = retime.prepare_video_job(retime.open_video_source(str(tmp_path / "in.mov")),
                                   str(tmp_path / "30"), fps=Fraction(30), options=off)
    job.run(interp, progress_bar=False)
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert warnings == ["this blend model was trained at t = 0.5 only; t = 0.4, 0.8 extrapolates what it learnt",
                      "this blend model was trained at t = 0.5 only; this run extrapolated to 4 times: "
                      "t = 0.2, 0.4, 0.6, 0.8"]
  assert interp.extrapolated_times == {0.2, 0.4, 0.6, 0.8}

  # --factor=4 asks t = 0.25, 0.5, 0.75 of every pair: the first warning named them all, so no second line.
  caplog.clear()
  interp = _BlendInterpolator()
  with caplog.at_level("INFO", logger="absl"):
    retime.interpolate_video(interp, str(tmp_path / "in.mov"), str(tmp_path / "x4"), factor=4,
                             progress_bar=False, options=off)
  warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
  assert warnings == ["this blend model was trained at t = 0.5 only; t = 0.25, 0.75 extrapolates what it learnt"]


def test_video_with_missing_frames_stays_on_its_grid_and_fills_the_gap(tmp_path):
  frames = media.frames_rgb(10, 16, 24, seed=18)
  slots = [0] + list(range(2, 11))  # slot 1 of the 25 fps grid is empty (an AVI drop frame)
  media.encode(tmp_path / "gap.mov", frames, rate=Fraction(25), pts=slots, codec="png", pix_fmt="rgb24")
  model = _ExactBlend()
  n = retime.interpolate_video(model, str(tmp_path / "gap.mov"), str(tmp_path / "x2.mov"), progress_bar=False,
                               options=frames_lib.Options(scene_threshold=None))
  got = media.facts(tmp_path / "x2.mov")
  assert n == 22 and got["rate"] == 50 and got["times"] == [Fraction(k, 50) for k in range(22)]
  assert got["duration"] == Fraction(11, 25)
  want = _expected_retimed(frames, [Fraction(k, 25) for k in slots], Fraction(11, 25), got["times"], model)
  np.testing.assert_array_equal(np.stack(got["frames"]), np.stack(want))  # t = 1/4, 1/2, 3/4 across the gap


def test_time_free_model_retimes_at_the_nearest_dyadic_t(sepconv_interp, tmp_path):
  rate = Fraction(24000, 1001)
  frames = media.frames_rgb(4, 16, 24, seed=9, step=16)  # blends at k/16 stay integers
  media.encode(tmp_path / "in.mov", frames, rate=rate, codec="png", pix_fmt="rgb24")
  source = retime.open_video_source(str(tmp_path / "in.mov"))
  options = frames_lib.Options(dyadic_depth=4, scene_threshold=None)
  job = retime.prepare_video_job(source, str(tmp_path / "out"), fps=Fraction(60), options=options)
  stats = job.run(sepconv_interp, progress_bar=False)
  names = sorted(os.listdir(tmp_path / "out"))
  assert len(names) == stats.frames_out == round(source.duration * 60)
  worst = Fraction(0)
  for k, name in enumerate(names):
    position = Fraction(k, 60) * rate  # in input frames
    i = min(int(position), 3)
    t = position - i if i < 3 else Fraction(0)
    snapped = Fraction(round(t * 16), 16)
    worst = max(worst, abs(snapped - t) / rate)
    want = (1 - float(snapped)) * frames[i].astype(np.float64) + float(snapped) * frames[min(i + 1, 3)]
    np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "out" / name)), want, atol=1, err_msg=name)
  assert stats.max_time_error == worst and 0 < worst <= 1 / (32 * rate)


# ----------------------------------------------------------------------------------------------------------------
# Videos: audio, alpha, scene cuts, containers.


def test_video_audio_is_copied_in_sync_or_dropped_on_request(tmp_path):
  rate = Fraction(24)
  media.encode(tmp_path / "in.mp4", media.frames_rgb(6, 16, 16, seed=10), rate=rate, audio_seconds=Fraction(6, 24))
  model = _ExactBlend()
  retime.interpolate_video(model, str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4"), progress_bar=False)
  got = media.facts(tmp_path / "out.mp4")
  assert got["rate"] == 48 and got["duration"] == Fraction(1, 4) and len(got["audio"]) == 1
  assert got["audio"][0]["codec"] == "aac" and abs(got["audio"][0]["duration"] - got["duration"]) <= Fraction(1, 48)
  assert media.audio_payloads(tmp_path / "out.mp4") == media.audio_payloads(tmp_path / "in.mp4")  # not re-encoded
  retime.interpolate_video(model, str(tmp_path / "in.mp4"), str(tmp_path / "mute.mp4"), progress_bar=False,
                           audio=False)
  assert media.facts(tmp_path / "mute.mp4")["audio"] == []


def _rgba_pair(h=16, w=24, seed=11):
  """Left third transparent over a hidden green, middle opaque, right third even alphas >= 64."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(2):
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 64, (h, w, 3)) * 4
    rgba[:, : w // 3, :3] = (0, 255, 0)
    rgba[:, w // 3:, 3] = 255
    rgba[:, 2 * w // 3:, 3] = rng.integers(32, 128, (h, w - 2 * w // 3)) * 2
    out.append(rgba)
  return out


def _check_alpha_blend(got, f0, f1):
  """Alpha = (a0 + a1) / 2 exactly; colour = the alpha-weighted blend (c0 a0 + c1 a1) / (a0 + a1), to the rounding
  of an 8-bit premultiplied colour; fully transparent pixels are transparent (no hidden colour)."""
  a0, a1 = f0[..., 3].astype(np.float64), f1[..., 3].astype(np.float64)
  np.testing.assert_array_equal(got[..., 3], ((a0 + a1) / 2).astype(np.uint8))
  visible = got[..., 3] > 0
  want = (f0[..., :3] * a0[..., None] + f1[..., :3] * a1[..., None]) / np.maximum(a0 + a1, 1)[..., None]
  tolerance = 0.5 * 255 / np.maximum(got[..., 3:].astype(np.float64), 1) + 1
  assert (np.abs(got[..., :3] - want) <= tolerance)[visible].all()
  clear = (a0 == 0) & (a1 == 0)
  assert clear.any() and (got[clear] == 0).all()  # transparent, and the hidden colour does not leak


def test_alpha_is_kept_for_stills_and_video(sepconv_interp, tmp_path):
  f0, f1 = _rgba_pair()
  Image.fromarray(f0).save(tmp_path / "a.png")
  Image.fromarray(f1).save(tmp_path / "b.png")
  retime.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                 str(tmp_path / "mid.png"))
  got = np.asarray(Image.open(tmp_path / "mid.png"))
  assert got.shape == (16, 24, 4)
  _check_alpha_blend(got, f0, f1)

  media.encode(tmp_path / "in.mov", [f0, f1], rate=Fraction(24), codec="png", pix_fmt="rgba")
  retime.interpolate_video(sepconv_interp, str(tmp_path / "in.mov"), str(tmp_path / "out.mov"),
                           progress_bar=False)
  got = media.facts(tmp_path / "out.mov")
  assert got["pix_fmt"] == "rgba" and len(got["frames"]) == 4
  np.testing.assert_array_equal(got["frames"][0], f0)
  np.testing.assert_array_equal(got["frames"][2], f1)
  _check_alpha_blend(got["frames"][1], f0, f1)
  # --alpha=blend: (1 - t) a0 + t a1 without the model; the same at t = 1/2.
  options = frames_lib.Options(alpha="blend")
  retime.interpolate_video(sepconv_interp, str(tmp_path / "in.mov"), str(tmp_path / "pngs"),
                           progress_bar=False, options=options)
  _check_alpha_blend(np.asarray(Image.open(tmp_path / "pngs" / "frame_000001.png")), f0, f1)


class _DarkeningBlend:
  """A model with a small error: the t blend, 1 level darker wherever it is not 0."""

  def interpolate(self, frame0, frame1, times=(0.5,)):
    f0, f1 = (np.asarray(f, np.float64) * (255.0 if np.asarray(f).dtype != np.uint8 else 1.0) for f in (frame0, frame1))
    return [np.clip(np.round((1 - t) * f0 + t * f1) - 1, 0, 255).astype(np.uint8) for t in times]


def test_model_alpha_stays_within_the_inputs_alpha_range():
  f0, f1 = _rgba_pair()
  opaque0, opaque1 = f0.copy(), f1.copy()
  opaque0[..., 3] = opaque1[..., 3] = 255
  got = frames_lib.interpolate_rgba(_DarkeningBlend(), opaque0, opaque1, (0.5,))[0]
  assert (got[..., 3] == 255).all()  # the model's 254 is clipped: an opaque pair stays opaque
  got = frames_lib.interpolate_rgba(_DarkeningBlend(), f0, f1, (0.5,))[0]
  lo, hi = min(f0[..., 3].min(), f1[..., 3].min()), max(f0[..., 3].max(), f1[..., 3].max())
  blend = np.round((f0[..., 3].astype(float) + f1[..., 3]) / 2) - 1
  np.testing.assert_array_equal(got[..., 3], np.clip(blend, lo, hi))  # inside the range the model's alpha is kept
  assert (got[..., 3] == blend).any() and lo < hi


def test_shared_stills_keep_alpha_and_do_not_cross_fade_a_cut(sepconv_interp, tmp_path):
  folder = os.path.join(media.SHARED_CASES, "frames")
  if not os.path.isdir(folder):
    pytest.skip(f"{folder} absent (the shared cases sit beside the clone in CI)")
  a, b = (os.path.join(folder, f"rgba_{k}.png") for k in "AB")
  retime.interpolate_frame_files(sepconv_interp, a, b, str(tmp_path / "rgba.png"))
  f0, f1 = (np.asarray(Image.open(p).convert("RGBA")) for p in (a, b))
  _check_alpha_blend(np.asarray(Image.open(tmp_path / "rgba.png")), f0, f1)
  a, b = (os.path.join(folder, f"scene_cut_{k}.png") for k in "AB")
  retime.interpolate_frame_files(sepconv_interp, a, b, str(tmp_path / "cut.png"))
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cut.png")), np.asarray(Image.open(a)))


def _two_scenes(h=32, w=48):
  """Scene A: a dark smooth gradient moving right; scene B: bright noise moving down."""
  yy, xx = np.mgrid[0:h, 0:w]
  a = [np.stack([(xx + 2 * k) * 2, yy * 2, np.full_like(xx, 40)], -1).astype(np.uint8) for k in range(2)]
  rng = np.random.default_rng(12)
  noise = rng.integers(40, 64, (h + 4, w, 3)).astype(np.uint8) * 4
  b = [noise[2 * k:2 * k + h] for k in range(2)]
  return a, b


def test_scene_cuts_repeat_the_earlier_frame(sepconv_interp, tmp_path, caplog):
  (a0, a1), (b0, b1) = _two_scenes()
  assert frames_lib.scene_score(a0, a1) < frames_lib.SCENE_THRESHOLD < frames_lib.scene_score(a1, b0)
  assert frames_lib.scene_score(b0, b1) < frames_lib.SCENE_THRESHOLD
  hidden0 = np.concatenate([a1, np.zeros_like(a1[..., :1])], -1)  # fully transparent: only the hidden colour differs
  hidden1 = np.concatenate([b0, np.zeros_like(b0[..., :1])], -1)
  assert frames_lib.scene_score(hidden0, hidden1) == 0
  Image.fromarray(a1).save(tmp_path / "a.png")
  Image.fromarray(b0).save(tmp_path / "b.png")
  with caplog.at_level("INFO", logger="absl"):
    retime.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                   str(tmp_path / "cut.png"))
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cut.png")), a1)
  assert "scene cut (score" in caplog.text

  media.encode(tmp_path / "in.mov", [a0, a1, b0, b1], rate=Fraction(10), codec="png", pix_fmt="rgb24")
  job = retime.prepare_video_job(retime.open_video_source(str(tmp_path / "in.mov")), str(tmp_path / "o"),
                                 factor=2)
  stats = job.run(sepconv_interp, progress_bar=False)
  got = [np.asarray(Image.open(tmp_path / "o" / f"frame_{k:06d}.png")) for k in range(8)]
  assert stats.scene_cuts == 1
  np.testing.assert_allclose(got[1], (a0.astype(float) + a1) / 2, atol=0.5)
  np.testing.assert_array_equal(got[3], a1)  # the cut: repeated, not a cross-fade
  np.testing.assert_allclose(got[5], (b0.astype(float) + b1) / 2, atol=0.5)
  # Detection off: the cut is interpolated like any pair.
  job = retime.prepare_video_job(retime.open_video_source(str(tmp_path / "in.mov")), str(tmp_path / "o"),
                                 factor=2, options=frames_lib.Options(scene_threshold=None))
  assert job.run(sepconv_interp, progress_bar=False).scene_cuts == 0
  np.testing.assert_allclose(np.asarray(Image.open(tmp_path / "o" / "frame_000003.png")),
                             (a1.astype(float) + b0) / 2, atol=0.5)


def test_gif_in_and_out_and_codec_switch(tmp_path):
  frames = media.frames_rgb(3, 16, 16, seed=13)
  media.encode(tmp_path / "in.gif", frames, rate=Fraction(10), codec="gif", pix_fmt="rgb8")
  model = _ExactBlend()
  retime.interpolate_video(model, str(tmp_path / "in.gif"), str(tmp_path / "out.gif"), progress_bar=False)
  got = media.facts(tmp_path / "out.gif")
  assert got["codec"] == "gif" and got["rate"] == 20 and len(got["frames"]) == 6 and got["duration"] == Fraction(3, 10)
  # An h264 input written to .webm: the container's codec, chosen before any frame is made.
  media.encode(tmp_path / "in.mp4", frames, rate=Fraction(24))
  retime.interpolate_video(model, str(tmp_path / "in.mp4"), str(tmp_path / "out.webm"), progress_bar=False)
  got = media.facts(tmp_path / "out.webm")
  assert got["codec"] == "vp9" and len(got["frames"]) == 6 and got["rate"] == 48


# ----------------------------------------------------------------------------------------------------------------
# Videos: folders, refusals, tiles, the command line.


def test_folders_in_and_out_never_mix_stale_frames(tmp_path, capsys, monkeypatch):
  frames = media.frames_rgb(3, 16, 16, seed=14)
  os.makedirs(tmp_path / "shots")
  for name, frame in zip(("1.png", "2.png", "10.png"), frames):  # natural order: 1, 2, 10
    Image.fromarray(frame).save(tmp_path / "shots" / name)
  model = _ExactBlend()
  out = tmp_path / "out"
  code, err, stdout = _run_cli(capsys, monkeypatch, "--workdir=w", "--frames", str(tmp_path / "shots"), "--output",
                               str(out), "--factor=4", "--no_scene_detect", model=model)
  assert code == 0, err
  # No --input_fps, no durations: 3 frames give (3 - 1) x 4 + 1, ending on the last one (not held 3 more times).
  assert sorted(os.listdir(out)) == [f"frame_{k:06d}.png" for k in range(9)]
  np.testing.assert_array_equal(np.asarray(Image.open(out / "frame_000004.png")), frames[1])
  np.testing.assert_array_equal(np.asarray(Image.open(out / "frame_000006.png")),
                                model.interpolate(frames[1], frames[2], [0.5])[0])
  np.testing.assert_array_equal(np.asarray(Image.open(out / "frame_000008.png")), frames[2])
  assert "frames 3 -> 9, no frame rate (a folder without --input_fps)" in stdout
  # A second, shorter run replaces the whole folder: no frame_000005.png .. frame_000008.png left over.
  code, err, _ = _run_cli(capsys, monkeypatch, "--workdir=w", "--frames", str(tmp_path / "shots"), "--output",
                          str(out), model=model)
  assert code == 0, err
  assert sorted(os.listdir(out)) == [f"frame_{k:06d}.png" for k in range(5)]
  assert sorted(os.listdir(tmp_path)) == ["out", "shots"]
  # A folder in, a video out, at the rate given.
  code, err, stdout = _run_cli(capsys, monkeypatch, "--workdir=w", "--frames", str(tmp_path / "shots"),
                               "--input_fps=24000/1001", "--output", str(tmp_path / "v.mp4"), model=model)
  assert code == 0, err
  got = media.facts(tmp_path / "v.mp4")
  assert got["rate"] == Fraction(48000, 1001) and got["duration"] == Fraction(3 * 1001, 24000)
  assert "fps 23.976 (24000/1001) -> 47.952 (48000/1001)" in stdout


def test_refusals_are_one_line_before_the_model_and_lose_nothing(tmp_path, capsys, caplog, monkeypatch,
                                                                   sepconv_workdir):
  frames = media.frames_rgb(3, 16, 16, seed=15)
  media.encode(tmp_path / "in.mp4", frames, rate=Fraction(24))
  rgba = _rgba_pair(16, 16)
  media.encode(tmp_path / "alpha.mov", rgba, rate=Fraction(24), codec="png", pix_fmt="rgba")
  Image.fromarray(frames[0]).save(tmp_path / "a.png")
  Image.fromarray(frames[1]).save(tmp_path / "b.png")
  (tmp_path / "notes.txt").write_text("keep me")
  (tmp_path / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
  os.makedirs(tmp_path / "mine")
  (tmp_path / "mine" / "holiday.jpg").write_bytes(b"mine")
  os.makedirs(tmp_path / "shots")
  for k in range(2):
    Image.fromarray(frames[k]).save(tmp_path / "shots" / f"{k}.png")
  before = _listing(tmp_path)
  video, pair, p = str(tmp_path / "in.mp4"), [str(tmp_path / "a.png"), str(tmp_path / "b.png")], str(tmp_path)
  cases = [
      (["--video", video, "--output", f"{p}/o.mp4", "--factor=0"], "--factor must be an integer >= 2, got 0"),
      (["--video", video, "--output", f"{p}/o.mp4", "--factor=1"], "--factor must be an integer >= 2, got 1"),
      (["--video", video, "--output", f"{p}/o.mp4", "--factor=-2"], "--factor must be an integer >= 2, got -2"),
      (["--video", video, "--output", f"{p}/o.mp4", "--factor=two"], "invalid int value"),
      (["--video", video, "--output", f"{p}/o.mp4", "--fps=0"], "--fps must be positive"),
      (["--video", video, "--output", f"{p}/o.mp4", "--fps=60", "--factor=2"], "give one of --factor, --fps"),
      (["--video", video, "--output", f"{p}/o.mp4", "--times=0.5"], "--times is for two frames"),
      (["--video", video, "--output", video], "is the input"),
      (["--frames", *pair, "--output", pair[0]], "is the input"),
      (["--frames", *pair, "--times=0.25,0.5", "--output", f"{p}/notes.txt"], "is an existing file"),
      (["--frames", *pair, "--times=0.25,0.5", "--output", f"{p}/mine"], "did not write (holiday.jpg)"),
      (["--frames", *pair, "--output", f"{p}/m.png", "--fps=30"], "--fps is for a video"),
      (["--frames", pair[0], "--output", f"{p}/m.png"], "--frames takes two image files or one folder"),
      (["--frames", f"{p}/shots", "--output", f"{p}/shots"], "is the input"),
      (["--frames", f"{p}/shots", "--output", p], "folder holding the input"),
      (["--frames", f"{p}/shots", "--output", f"{p}/s.mp4"], "without a frame rate: give --input_fps"),
      (["--video", video, "--output", f"{p}/o.png"], "names one image"),
      (["--video", video, "--output", f"{p}/o.xyz"], "knows no video container for .xyz"),
      (["--video", video, "--output", f"{p}/o.mp4", "--codec=nonsense"], "no video encoder of that name"),
      (["--video", video, "--output", f"{p}/o.webm", "--codec=libx264"], "cannot write a 16x16 video"),
      (["--video", video, "--output", f"{p}/o.mp4", "--input_fps=24"], "--input_fps is the rate of a --frames"),
      (["--frames", *pair, "--output", f"{p}/m.png", "--input_fps=24"], "two frames (--frames A B) take --times"),
      (["--video", f"{p}/alpha.mov", "--output", f"{p}/o.mp4", "--codec=libx264"], "has transparency (alpha)"),
      (["--video", f"{p}/garbage.mp4", "--output", f"{p}/o.mp4"], "cannot read video"),
      (["--video", f"{p}/a.png", "--output", f"{p}/o.mp4"], "has one frame"),
      (["--video", video, "--output", f"{p}/notes.txt/o.mp4"], "notes.txt is a file, not a folder"),
      (["--video", video, "--output", f"{p}/o.mp4", "--tile=4"], "--tile must be 0"),
      (["--video", video, "--output", f"{p}/o.mp4", "--tile_overlap=8"], "--tile_overlap applies with --tile"),
      (["--video", video, "--output", f"{p}/o.mp4", "--scene_threshold=2"], "--scene_threshold must be in (0, 1]"),
      (["--video", video, "--output", f"{p}/o.mp4", "--no_scene_detect", "--scene_threshold=0.2"], "not both"),
      (["--video", video, "--output", f"{p}/o.mp4", "--dyadic_depth=0"], "--dyadic_depth must be in 1..8"),
      (["--frames", *pair, "--output", f"{p}/m.png", "--no_audio"], "--no_audio applies to a video input"),
      (["--frames", *pair, "--output", f"{p}/m.png", "--adapt_steps=5"], "give a video or a folder of at least 3"),
      (["--video", video, "--output", f"{p}/o.mp4", "--adapt_steps=-1"], "--adapt_steps must be >= 0, got -1"),
      (["--video", video, "--output", f"{p}/o.mp4", "--adapt_lr=1e-3"], "--adapt_lr applies with --adapt_steps"),
      (["--video", video, "--output", f"{p}/o.mp4", "--adapt_steps=5", "--adapt_lr=0"], "--adapt_lr must be > 0, got 0"),
      (["--video", video, "--output", f"{p}/o.mp4", "--adapt_steps=5", "--adapt_crop=4"],
       "--adapt_crop must be at least 8 pixels, got 4"),
      (["--video", video, "--output", f"{p}/o.mp4", "--adapt_triplets=5"], "--adapt_triplets applies with --adapt_steps"),
      (["--video", video, "--output", f"{p}/o.mp4", "--adapt_steps=5", "--adapt_triplets=0"],
       "--adapt_triplets must be >= 1"),
      (["--frames", f"{p}/shots", "--input_fps=24", "--output", f"{p}/s.mp4", "--adapt_steps=5"],
       "needs at least 3 consecutive frames of one shot, got 2 frames"),
  ]
  for args, message in cases:
    code, err, _ = _run_cli(capsys, monkeypatch, "--workdir=/nonexistent", *args)
    lines = [line for line in err.splitlines() if line.startswith("jaxvfi: error: ")]
    assert code == 1 and len(lines) == 1 and message in lines[0], (args, err)
    assert "Traceback" not in err
  with caplog.at_level("INFO", logger="absl"):  # no note about an alpha-less video that is then refused
    code, err, _ = _run_cli(capsys, monkeypatch, "--workdir=/nonexistent", "--video", f"{p}/alpha.mov", "--output",
                            f"{p}/o.mp4", "--codec=libx264")
  assert code == 1 and "has transparency (alpha)" in err and "holds no alpha" not in caplog.text, caplog.text
  for model_args, message in ((["--model=sepconv"], "--model alone takes a released model's name"),
                               ([], "give --workdir (a training run), --weights=FILE (a model file) or --model=NAME"),
                               (["--workdir=/nonexistent", "--model=sepconv"], "not both"),
                               (["--workdir=/nonexistent", "--tta", "--no-tta"], "not allowed with argument --tta")):
    code, err, _ = _run_cli(capsys, monkeypatch, *model_args, "--frames", *pair, "--output", f"{p}/m.png")
    lines = [line for line in err.splitlines() if line.startswith("jaxvfi: error: ")]
    assert code == 1 and len(lines) == 1 and message in lines[0], err
    assert model_args or "not both" not in lines[0]  # neither given: nothing to choose between
  # A model without a time input cannot make t = 0.3: refused from its config.json, before its weights load.
  code, err, _ = _run_cli(capsys, monkeypatch, f"--workdir={sepconv_workdir}", "--frames", *pair, "--output",
                          f"{p}/m.png", "--times=0.3")
  assert code == 1 and "sepconv has no time input" in err
  assert _listing(tmp_path) == before  # every input byte kept, nothing written


def test_tiles_equal_the_whole_frame_away_from_the_border(tmp_path):
  # Off-centre taps: Î(y, x) = (I0(y - 2, x + 1) + I1(y + 1, x - 2)) / 2, a local operator of radius 2.
  interp = interpolator.load_model(_sepconv_workdir(tmp_path / "taps", taps=(0, 3, 3, 0)))
  f0, f1 = media.frames_rgb(2, 40, 56, seed=16)  # 2 x 3 tiles, windows of 32 x 32: one compile
  whole = interp.interpolate(f0, f1, (0.5,))[0]
  want = (np.roll(f0.astype(float), (2, -1), (0, 1)) + np.roll(f1.astype(float), (-1, 2), (0, 1))) / 2
  np.testing.assert_allclose(whole[2:-2, 2:-2], want[2:-2, 2:-2], atol=0.5)  # the operator is what it says
  tiled = frames_lib.interpolate_rgba(interp, f0, f1, (0.5,), frames_lib.Options(tile=24, tile_overlap=4))[0]
  # The frame's own border is padded differently in a tile and in the whole frame: compare 2 px inside it.
  np.testing.assert_array_equal(tiled[2:-2, 2:-2], whole[2:-2, 2:-2])
  no_context = frames_lib.interpolate_rgba(interp, f0, f1, (0.5,), frames_lib.Options(tile=24, tile_overlap=0))[0]
  assert (no_context[2:-2, 2:-2] != whole[2:-2, 2:-2]).any()  # without overlap the seams show: the test can fail
  windows = frames_lib.tile_windows(40, 56, 24, 4)
  assert len(windows) == 6 and {(r.stop - r.start, c.stop - c.start) for r, c, _, _ in windows} == {(32, 32)}
  covered = np.zeros((40, 56), int)
  for rows, cols, core_rows, core_cols in windows:
    covered[rows, cols][core_rows, core_cols] += 1
  assert (covered == 1).all()


def test_cli_video_progress_bar_and_summary_line(tmp_path, sepconv_workdir):
  media.encode(tmp_path / "in.mp4", media.frames_rgb(4, 16, 16, seed=17), rate=Fraction(24000, 1001),
               audio_seconds=Fraction(4 * 1001, 24000))
  r = _cli(f"--workdir={sepconv_workdir}", "--video", str(tmp_path / "in.mp4"), "--output", str(tmp_path / "o.mp4"))
  assert r.returncode == 0, r.stderr[-3000:]
  assert "frame/s" in r.stderr and "Traceback" not in r.stderr  # tqdm: frames per second and the time left
  # The log is the tool's own: no INFO lines of orbax's restore or of JAX's backend probe.
  assert "checkpoint_manager.py" not in r.stderr and "Unable to initialize backend" not in r.stderr, r.stderr[-3000:]
  assert ("frames 4 -> 8, duration 0.167 s -> 0.167 s, fps 23.976 (24000/1001) -> 47.952 (48000/1001), "
          "0 scene cut(s)") in r.stdout
  got = media.facts(tmp_path / "o.mp4")
  assert got["rate"] == Fraction(48000, 1001) and got["duration"] == Fraction(4 * 1001, 24000)
  assert media.audio_payloads(tmp_path / "o.mp4") == media.audio_payloads(tmp_path / "in.mp4")
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "o.mp4"]


def test_cli_adapt_steps_fine_tunes_on_the_input_then_interpolates_it(tmp_path, sepconv_workdir):
  # 5 frames: 3 triplets to adapt on; the model then makes the 4 new frames of --factor=2. Unadapted, its constant
  # centre-tap heads make exactly the blend of the two inputs; 3 steps at a high rate move them off it.
  rng = np.random.default_rng(21)
  frames = [(rng.integers(0, 64, (16, 16, 3)) * 4).astype(np.uint8) for _ in range(5)]
  media.encode(tmp_path / "in.mkv", frames, rate=Fraction(24), codec="ffv1", pix_fmt="bgr0")  # lossless RGB
  outputs = {}
  for name, extra in (("plain", ()), ("adapted", ("--adapt_steps=3", "--adapt_lr=1e-2", "--adapt_batch=2"))):
    r = _cli(f"--workdir={sepconv_workdir}", "--video", str(tmp_path / "in.mkv"), "--output",
             str(tmp_path / f"{name}.mkv"), "--no_progress", *extra)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "frames 5 -> 10" in r.stdout
    outputs[name] = media.facts(tmp_path / f"{name}.mkv")["frames"]
  assert "adapted sepconv on 3 triplets of the input: 3 steps, " in r.stderr, r.stderr[-3000:]
  assert "training loss on a fixed batch of their centre crops" in r.stderr and ", after 3 adaptation steps (" in r.stdout
  plain, adapted = outputs["plain"], outputs["adapted"]
  for k, frame in enumerate(frames):  # the input frames pass through unchanged
    np.testing.assert_array_equal(adapted[2 * k], frame)
  for k in range(4):
    np.testing.assert_array_equal(plain[2 * k + 1], _blend(frames[k], frames[k + 1], 0.5))
  assert max(np.abs(adapted[2 * k + 1].astype(int) - plain[2 * k + 1]).max() for k in range(4)) > 2
  # Nothing else written: the workdir's checkpoints are not touched by the adaptation.
  assert sorted(os.listdir(tmp_path)) == ["adapted.mkv", "in.mkv", "plain.mkv"]


def test_video_lossless_factor_2_keeps_frames_and_inserts_known_ones(sepconv_interp, tmp_path):
  rng = np.random.default_rng(6)
  frames = [(rng.integers(0, 64, (32, 48, 3)) * 4).astype(np.uint8) for _ in range(4)]
  src = tmp_path / "in.mkv"
  media.encode(src, frames, rate=Fraction(10), codec="ffv1", pix_fmt="bgr0")  # lossless RGB
  n = retime.interpolate_video(sepconv_interp, str(src), str(tmp_path / "out.mkv"), factor=2,
                               progress_bar=False)
  got = media.facts(tmp_path / "out.mkv")
  assert n == len(got["frames"]) == 8  # 4 inputs, 3 new frames, the last input held for its own 1/10 s
  assert got["rate"] == 20 and got["codec"] == "ffv1" and got["duration"] == Fraction(4, 10)
  for i, frame in enumerate(frames):
    np.testing.assert_array_equal(got["frames"][2 * i], frame)
  for i in range(3):
    np.testing.assert_array_equal(got["frames"][2 * i + 1], _blend(frames[i], frames[i + 1], 0.5))
  np.testing.assert_array_equal(got["frames"][7], frames[3])
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv"]


def _psnr(a, b):
  return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_video_h264_factor_4_and_png_folder(sepconv_interp, tmp_path):
  yy, xx = np.mgrid[0:32, 0:48]
  frames = [np.stack([(xx * 4 + 20 * k) % 256, (yy * 6 + 10 * k) % 256, np.full_like(xx, 60 * k)], -1)
            .astype(np.uint8) for k in range(4)]
  src = tmp_path / "in.mp4"
  media.encode(src, frames, rate=Fraction(12), options={"crf": "0"})
  decoded = media.facts(src)["frames"]
  assert len(decoded) == 4

  retime.interpolate_video(sepconv_interp, str(src), str(tmp_path / "out.mp4"), factor=4, progress_bar=False)
  got = media.facts(tmp_path / "out.mp4")
  assert len(got["frames"]) == 16 and got["rate"] == 48 and got["codec"] == "h264"
  for i, frame in enumerate(decoded):
    assert _psnr(got["frames"][4 * i], frame) > 35.0
  for i in range(3):
    for k, t in enumerate((0.25, 0.5, 0.75), start=1):
      assert _psnr(got["frames"][4 * i + k], _blend(decoded[i], decoded[i + 1], t)) > 35.0

  # A folder of PNGs is exact: the decoded frames, and the bisection blends of them to one unit of rounding.
  n = retime.interpolate_video(sepconv_interp, str(src), str(tmp_path / "pngs"), factor=4, progress_bar=False)
  names = sorted(os.listdir(tmp_path / "pngs"))
  assert n == 16 and names == [f"frame_{i:06d}.png" for i in range(16)]
  pngs = [np.asarray(Image.open(tmp_path / "pngs" / name)) for name in names]
  for i in range(3):
    np.testing.assert_array_equal(pngs[4 * i], decoded[i])
    for k in (1, 2, 3):
      want = (1 - k / 4) * decoded[i].astype(np.float64) + k / 4 * decoded[i + 1]
      np.testing.assert_allclose(pngs[4 * i + k], want, atol=0.5 + 1e-3)
  for k in range(12, 16):
    np.testing.assert_array_equal(pngs[k], decoded[3])
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4", "pngs"]


class _FailsOnSecondPair:
  """Stands in for a run interrupted in the middle of a video (the frames of the first pair are written)."""

  def __init__(self, interp):
    self.interp, self.calls = interp, 0

  def interpolate(self, *args, **kwargs):
    self.calls += 1
    if self.calls == 2:
      raise KeyboardInterrupt
    return self.interp.interpolate(*args, **kwargs)


def test_video_interrupted_or_bad_leaves_no_temp_file_and_keeps_the_old_output(sepconv_interp, tmp_path):
  frames = _frames4(32, 48) + _frames4(32, 48, seed=1)
  src = tmp_path / "in.mkv"
  media.encode(src, frames, rate=Fraction(10), codec="ffv1", pix_fmt="bgr0")
  (tmp_path / "out.mkv").write_bytes(b"an earlier result")
  os.makedirs(tmp_path / "pngs")
  (tmp_path / "pngs" / "frame_000000.png").write_bytes(b"an earlier frame")
  for output in ("out.mkv", "pngs"):
    with pytest.raises(KeyboardInterrupt):
      retime.interpolate_video(_FailsOnSecondPair(sepconv_interp), str(src), str(tmp_path / output),
                               progress_bar=False)
  assert (tmp_path / "out.mkv").read_bytes() == b"an earlier result"
  assert os.listdir(tmp_path / "pngs") == ["frame_000000.png"]
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv", "pngs"]

  (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
  with pytest.raises(ValueError, match=r"cannot read video .*broken\.mp4"):
    retime.interpolate_video(sepconv_interp, str(tmp_path / "broken.mp4"), str(tmp_path / "o.mp4"))
  media.encode(tmp_path / "one.mkv", frames[:1], rate=Fraction(10), codec="ffv1", pix_fmt="bgr0")
  with pytest.raises(ValueError, match="has one frame"):
    retime.interpolate_video(sepconv_interp, str(tmp_path / "one.mkv"), str(tmp_path / "o.mkv"))
  with pytest.raises(ValueError, match="names one image"):
    retime.interpolate_video(sepconv_interp, str(src), str(tmp_path / "o.png"))
  with pytest.raises(ValueError, match="integer >= 2"):
    retime.interpolate_video(sepconv_interp, str(src), str(tmp_path / "o.mkv"), factor=1)
  assert sorted(os.listdir(tmp_path)) == ["broken.mp4", "in.mkv", "one.mkv", "out.mkv", "pngs"]


@pytest.mark.parametrize("signum, output", [(signal.SIGTERM, "out.mkv"), (signal.SIGHUP, "pngs")])
def test_cli_killed_by_sigterm_or_sighup_removes_its_temp_files_and_keeps_the_old_output(tmp_path, sepconv_workdir,
                                                                                         signum, output):
  """`kill`, a closed terminal or a job scheduler's stop: the same cleanup as Ctrl-C, one line, status 128 + signum."""
  rng = np.random.default_rng(3)
  src = tmp_path / "in.mkv"
  media.encode(src, [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(40)], rate=Fraction(10),
               codec="ffv1", pix_fmt="bgr0", audio_seconds=Fraction(4))  # the video's writer copies audio as it goes
  (tmp_path / "out.mkv").write_bytes(b"an earlier result")
  os.makedirs(tmp_path / "pngs")
  (tmp_path / "pngs" / "frame_000000.png").write_bytes(b"an earlier frame")
  proc = subprocess.Popen([sys.executable, "-m", "jaxvfi.interpolate", f"--workdir={sepconv_workdir}", "--video",
                           str(src), "--output", str(tmp_path / output), "--factor=8", "--no_progress"],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 300
    while (not any(n.startswith(".tmp_") for n in os.listdir(tmp_path)) and proc.poll() is None
           and time.monotonic() < deadline):
      time.sleep(0.02)
    assert proc.poll() is None, "the run ended before its output was staged: " + proc.stderr.read()[-2000:]
    time.sleep(0.5)  # into the frame loop, past the writer's setup
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 128 + signum, err[-3000:]
  assert f"jaxvfi: interrupted ({signal.Signals(signum).name})" in err and "Traceback" not in err, err[-3000:]
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv", "pngs"]
  assert (tmp_path / "out.mkv").read_bytes() == b"an earlier result"
  assert os.listdir(tmp_path / "pngs") == ["frame_000000.png"]


@pytest.mark.parametrize("paper,tool", [("dsfn", "jaxvfi.enhance"), ("sdan", "jaxvfi.zoom")])
def test_a_restoration_workdir_is_refused_before_its_checkpoint_is_read(paper, tool, tmp_path):
  from jaxvfi import config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config(os.path.join(ROOT, "configs", f"{paper}.py"))
  (tmp_path / "config.json").write_text(config.to_json_best_effort())  # and no checkpoint: it is never reached
  with pytest.raises(ValueError, match=rf"holds a '{config.model.name}' model, which does not interpolate.*{tool}"):
    interpolator.load_model(workdir=str(tmp_path))
