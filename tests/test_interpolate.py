"""Inference on your own frames and videos (`jaxvfi.interpolate`): file reading, known outputs, CLI, videos, errors.

Oracles: a SepConv whose kernel heads are set to centre taps of weight 1/2 makes exactly (frame0 + frame1) / 2, and
by bisection (1 - t) frame0 + t frame1 at t = k/4 (frames of multiples of 4 keep every value an integer); a ReFIn
(UNet++ backbones, flow UNet) run through the command line is compared with the model applied directly; file
conversions are checked against NumPy on the pixels written.
"""
from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import zlib

import imageio.v2 as iio
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from conftest import ROOT
from jaxvfi import checkpoints
from jaxvfi import interpolate
from jaxvfi import train
from jaxvfi import utils

# imageio starts ffmpeg by fork + exec (no Python runs in the child); Python warns once JAX has threads.
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")

K = 5  # SepConv kernel taps: small, the oracle does not depend on it


def _config(name: str, arg: str):
  spec = importlib.util.spec_from_file_location(f"{name}_config", os.path.join(ROOT, "configs", f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def _random_params(model, config, seed: int):
  """LeCun-normal kernels, small biases, in the shapes `init` gives, without compiling `init` (slow on 2 cores)."""
  rng = np.random.default_rng(seed)

  def draw(s):
    fan_in = int(np.prod(s.shape[:-1])) if len(s.shape) > 1 else 0
    std = 1.0 / np.sqrt(fan_in) if fan_in else 0.01
    return rng.normal(0.0, std, s.shape).astype(np.float32)

  return jax.tree.map(draw, checkpoints.params_template(model, config))


def _write_workdir(workdir, config, params, step=7):
  os.makedirs(workdir, exist_ok=True)
  state = train.TrainState(step=jnp.asarray(step, jnp.int32), params=params,
                           opt_state={"count": jnp.zeros((), jnp.int32)})
  mngr = train.checkpoint_manager(str(workdir))
  train.save_checkpoint(mngr, state, jax.random.PRNGKey(0))
  mngr.close()
  utils.atomic_write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  return str(workdir)


@pytest.fixture(scope="module")
def sepconv_workdir(tmp_path_factory):
  """SepConv whose four heads output constant centre taps: kv = one-hot, kh = one-hot / 2 -> Î = (I0 + I1) / 2."""
  config = _config("sepconv", "runlocal")
  config.model.kernel_size = K
  model = train.build_model(config.model)
  params = _random_params(model, config, seed=0)  # a random U-Net: the heads below ignore it
  centre = np.zeros(K, np.float32)
  centre[K // 2] = 1.0
  for name, bias in (("kv0", centre), ("kh0", centre / 2), ("kv1", centre), ("kh1", centre / 2)):
    head = params["sepconv"][name]["head"]
    head["kernel"] = np.zeros_like(head["kernel"])
    head["bias"] = bias
  return _write_workdir(tmp_path_factory.mktemp("sepconv"), config, params)


@pytest.fixture(scope="module")
def sepconv_interp(sepconv_workdir):
  return interpolate.load_model(sepconv_workdir)


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

  np.testing.assert_array_equal(interpolate.read_frame(str(tmp_path / "rgb.png")), rgb)
  np.testing.assert_array_equal(interpolate.read_frame(str(tmp_path / "gray.png")), np.stack([gray] * 3, -1))
  with caplog.at_level("INFO"):
    got = interpolate.read_frame(str(tmp_path / "rgba.png"))
  np.testing.assert_array_equal(got, rgb)
  assert "rgba.png: alpha channel dropped" in caplog.text
  lut = np.asarray(palette.getpalette(), np.uint8).reshape(-1, 3)
  np.testing.assert_array_equal(interpolate.read_frame(str(tmp_path / "palette.png")), lut[np.asarray(palette)])
  got16 = interpolate.read_frame(str(tmp_path / "g16.png"))
  np.testing.assert_array_equal(got16, np.stack([np.round(g16 / 257.0).astype(np.uint8)] * 3, -1))
  assert got16[0, :3, 0].tolist() == [0, 255, 100]
  # Pillow decodes 16-bit RGB to its high byte.
  np.testing.assert_array_equal(interpolate.read_frame(str(tmp_path / "rgb16.png")), (rgb16 >> 8).astype(np.uint8))


def test_read_frame_applies_exif_orientation(tmp_path):
  img = Image.fromarray(np.zeros((10, 30, 3), np.uint8))
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 CW to display"
  img.save(tmp_path / "phone.jpg", exif=exif)
  assert interpolate.read_frame(str(tmp_path / "phone.jpg")).shape == (30, 10, 3)


def test_bad_frames_give_one_clear_error(tmp_path):
  a, b = _frames4(32, 48)
  Image.fromarray(a).save(tmp_path / "a.png")
  Image.fromarray(b[:33, :47]).save(tmp_path / "odd.png")
  good = (tmp_path / "a.png").read_bytes()
  (tmp_path / "truncated.png").write_bytes(good[:len(good) // 2])
  (tmp_path / "garbage.png").write_bytes(b"not an image at all")
  with pytest.raises(ValueError, match=r"frame sizes differ: .*a\.png is 48x32 and .*odd\.png is 47x32"):
    interpolate.read_frame_pair(str(tmp_path / "a.png"), str(tmp_path / "odd.png"))
  for name in ("truncated.png", "garbage.png"):
    with pytest.raises(ValueError, match=rf"cannot read image .*{name}"):
      interpolate.read_frame_pair(str(tmp_path / "a.png"), str(tmp_path / name))
  with pytest.raises(FileNotFoundError, match=r"frame .*missing\.png does not exist"):
    interpolate.read_frame_pair(str(tmp_path / "missing.png"), str(tmp_path / "a.png"))
  with pytest.raises(ValueError, match="is not a file"):
    interpolate.read_frame(str(tmp_path))


def test_load_model_needs_config_and_checkpoint(tmp_path, sepconv_workdir):
  with pytest.raises(FileNotFoundError, match=r"has no config\.json and no checkpoint"):
    interpolate.load_model(str(tmp_path))
  (tmp_path / "config.json").write_text((open(os.path.join(sepconv_workdir, "config.json"))).read())
  with pytest.raises(FileNotFoundError, match=r"has no checkpoint"):
    interpolate.load_model(str(tmp_path))


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
  paths = interpolate.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                              str(out), times=interpolate.times_for_factor(4))
  assert sorted(os.listdir(out)) == ["t0.2500.png", "t0.5000.png", "t0.7500.png"]
  for path, t in zip(paths, (0.25, 0.5, 0.75)):
    np.testing.assert_array_equal(np.asarray(Image.open(path)), _blend(f0, gray1, t))
  with pytest.raises(ValueError, match="names a PNG"):
    interpolate.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                        str(tmp_path / "x.png"), times=(0.25, 0.5))
  paths = interpolate.interpolate_frame_files(sepconv_interp, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
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
  config = _config("refin", "runlocal,backbone=unetpp")
  assert config.model.flow == "unet"
  model = train.build_model(config.model)
  workdir = _write_workdir(tmp_path / "refin", config, _random_params(model, config, seed=2), step=3)
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

  template = jax.eval_shape(lambda: train.init_params(model, config, jax.random.PRNGKey(0)))
  params, step = train.restore_params(workdir, template)
  assert step == 3
  predict = train.make_predict_fn(model)
  for t in (0.25, 0.5):
    batch = {"frame0": jnp.asarray(f0[None] / np.float32(255)), "frame1": jnp.asarray(f1[None] / np.float32(255)),
             "t": jnp.full((1,), t, jnp.float32)}
    want = utils.to_uint8(np.asarray(predict(params, batch)["image"])[0])
    got = np.asarray(Image.open(out / f"t{t:.4f}.png"))
    assert got.shape == (33, 47, 3)
    np.testing.assert_array_equal(got, want)
    assert np.abs(want.astype(int) - f0).mean() > 1 and np.abs(want.astype(int) - f1).mean() > 1  # not a copy
  _no_temp_files(out)


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, sepconv_workdir):
  a, b = _frames4(32, 48)
  Image.fromarray(a).save(tmp_path / "a.png")
  Image.fromarray(b[:31]).save(tmp_path / "b.png")
  (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
  png, video = ["--output", str(tmp_path / "out.png")], ["--output", str(tmp_path / "out.mp4")]
  cases = [
      (["--frames", str(tmp_path / "a.png"), str(tmp_path / "b.png")] + png, "frame sizes differ"),
      (["--frames", str(tmp_path / "a.png"), str(tmp_path / "bad.png")] + png, "cannot read image"),
      (["--video", str(tmp_path / "none.mp4")] + video, "none.mp4 does not exist"),
      (["--video", str(tmp_path / "a.png")] + video, "cannot read video"),
      (["--video", str(tmp_path / "a.png"), "--times=0.5"] + video, "--times is for --frames"),
      (["--video", str(tmp_path / "a.png")] + png, "must be a video"),
      (["--frames", str(tmp_path / "a.png")] + png, "--frames: expected 2 arguments"),
      (["--frames", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--factor=4"] + png, "names a PNG"),
  ]
  for args, message in cases:
    r = _cli(f"--workdir={sepconv_workdir}", *args)
    assert r.returncode == 1, (args, r.stderr[-2000:])
    assert f"jaxvfi: error: " in r.stderr and message in r.stderr, (args, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
  r = _cli(f"--workdir={tmp_path}", "--frames", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--output",
           str(tmp_path / "out.png"))
  assert r.returncode == 1 and "has no config.json and no checkpoint" in r.stderr
  assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "bad.png"]


# ----------------------------------------------------------------------------------------------------------------
# Videos.


def _write_video(path, frames, fps, **kw):
  w = iio.get_writer(str(path), format="FFMPEG", fps=fps, macro_block_size=1, **kw)
  for f in frames:
    w.append_data(f)
  w.close()


def _read_video(path):
  r = iio.get_reader(str(path), format="FFMPEG")
  meta = r.get_meta_data()
  frames = [np.asarray(f) for f in r]
  r.close()
  return frames, meta


def _psnr(a, b):
  return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_video_lossless_factor_2_keeps_frames_and_inserts_known_ones(sepconv_interp, tmp_path):
  rng = np.random.default_rng(6)
  frames = [(rng.integers(0, 64, (32, 48, 3)) * 4).astype(np.uint8) for _ in range(4)]
  src = tmp_path / "in.mkv"
  _write_video(src, frames, fps=10, codec="ffv1", pixelformat="bgr0")  # lossless RGB
  n = interpolate.interpolate_video(sepconv_interp, str(src), str(tmp_path / "out.mkv"), factor=2,
                                    progress_bar=False)
  got, meta = _read_video(tmp_path / "out.mkv")
  assert n == len(got) == 7
  assert meta["fps"] == pytest.approx(20.0) and meta["codec"].startswith("ffv1")
  for i, frame in enumerate(frames):
    np.testing.assert_array_equal(got[2 * i], frame)
  for i in range(3):
    np.testing.assert_array_equal(got[2 * i + 1], _blend(frames[i], frames[i + 1], 0.5))
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv"]


def test_video_h264_factor_4_and_png_folder(sepconv_interp, tmp_path):
  yy, xx = np.mgrid[0:32, 0:48]
  frames = [np.stack([(xx * 4 + 20 * k) % 256, (yy * 6 + 10 * k) % 256, np.full_like(xx, 60 * k)], -1)
            .astype(np.uint8) for k in range(4)]
  src = tmp_path / "in.mp4"
  _write_video(src, frames, fps=12, codec="libx264", quality=9)
  decoded, _ = _read_video(src)
  assert len(decoded) == 4

  interpolate.interpolate_video(sepconv_interp, str(src), str(tmp_path / "out.mp4"), factor=4, progress_bar=False)
  got, meta = _read_video(tmp_path / "out.mp4")
  assert len(got) == 13 and meta["fps"] == pytest.approx(48.0) and meta["codec"] == "h264"
  for i, frame in enumerate(decoded):
    assert _psnr(got[4 * i], frame) > 35.0
  for i in range(3):
    for k, t in enumerate((0.25, 0.5, 0.75), start=1):
      assert _psnr(got[4 * i + k], _blend(decoded[i], decoded[i + 1], t)) > 35.0

  # A folder of PNGs is exact: the decoded frames, and the bisection blends of them to one unit of rounding.
  n = interpolate.interpolate_video(sepconv_interp, str(src), str(tmp_path / "pngs"), factor=4, progress_bar=False)
  names = sorted(os.listdir(tmp_path / "pngs"))
  assert n == 13 and names == [f"frame_{i:06d}.png" for i in range(13)]
  pngs = [np.asarray(Image.open(tmp_path / "pngs" / name)) for name in names]
  for i in range(3):
    np.testing.assert_array_equal(pngs[4 * i], decoded[i])
    for k in (1, 2, 3):
      want = (1 - k / 4) * decoded[i].astype(np.float64) + k / 4 * decoded[i + 1]
      np.testing.assert_allclose(pngs[4 * i + k], want, atol=0.5 + 1e-3)
  np.testing.assert_array_equal(pngs[12], decoded[3])
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4", "pngs"]


class _FailsOnSecondPair:
  """Stands in for a run interrupted in the middle of a video (the frames of the first pair are written)."""

  def __init__(self, interp):
    self.interp, self.calls = interp, 0

  def check_times(self, times):
    return self.interp.check_times(times)

  def interpolate(self, *args, **kwargs):
    self.calls += 1
    if self.calls == 2:
      raise KeyboardInterrupt
    return self.interp.interpolate(*args, **kwargs)


def test_video_interrupted_or_bad_leaves_no_temp_file_and_keeps_the_old_output(sepconv_interp, tmp_path):
  frames = _frames4(32, 48) + _frames4(32, 48, seed=1)
  src = tmp_path / "in.mkv"
  _write_video(src, frames, fps=10, codec="ffv1", pixelformat="bgr0")
  (tmp_path / "out.mkv").write_bytes(b"an earlier result")
  with pytest.raises(KeyboardInterrupt):
    interpolate.interpolate_video(_FailsOnSecondPair(sepconv_interp), str(src), str(tmp_path / "out.mkv"),
                                  progress_bar=False)
  assert (tmp_path / "out.mkv").read_bytes() == b"an earlier result"
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv"]

  (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
  with pytest.raises(ValueError, match=r"cannot read video .*broken\.mp4"):
    interpolate.interpolate_video(sepconv_interp, str(tmp_path / "broken.mp4"), str(tmp_path / "o.mp4"))
  _write_video(tmp_path / "one.mkv", frames[:1], fps=10, codec="ffv1", pixelformat="bgr0")
  with pytest.raises(ValueError, match="has one frame"):
    interpolate.interpolate_video(sepconv_interp, str(tmp_path / "one.mkv"), str(tmp_path / "o.mkv"))
  with pytest.raises(ValueError, match="must be a video"):
    interpolate.interpolate_video(sepconv_interp, str(src), str(tmp_path / "o.png"))
  with pytest.raises(ValueError, match="integer >= 2"):
    interpolate.interpolate_video(sepconv_interp, str(src), str(tmp_path / "o.mkv"), factor=1)
  assert sorted(os.listdir(tmp_path)) == ["broken.mp4", "in.mkv", "one.mkv", "out.mkv"]
