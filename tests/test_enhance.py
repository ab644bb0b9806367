"""`jaxvfi.enhance` on tiny videos, with a DSFN whose decoders output zero: every frame it makes is then its residual
(Eqs. (8)-(10)), i.e. the nearest-neighbour x4 upsampling of a key frame or of the mean of two neighbours, an exact
oracle. Windows and edges against hand-written index lists."""
from __future__ import annotations

import argparse
from fractions import Fraction
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import media
from conftest import ROOT
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import enhance
from jaxvfi import families
from jaxvfi import steps
from jaxvfi import utils

pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")


def test_windows_repeat_the_edge_frames():
  for count, want in [(2, [(0, 0, 1, 1)]), (3, [(0, 0, 1, 2), (0, 1, 2, 2)]),
                      (5, [(0, 0, 1, 2), (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 4)])]:
    assert list(enhance.windows(range(count))) == want
  for count, word in ((0, "none"), (1, "one")):
    with pytest.raises(ValueError, match=f"at least two frames, got {word}"):
      list(enhance.windows(range(count)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A DSFN workdir: random weights (without compiling init) and both levels' last decoder convs at zero."""
  config = config_lib.load_config(os.path.join(ROOT, "configs", "dsfn.py"), "runlocal")
  template = checkpoints.params_template(families.build_model(config.model), config)
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: rng.uniform(-0.05, 0.05, s.shape).astype(np.float32), template)
  for level in ("level1", "level2"):
    params[level]["decoder_out"] = jax.tree.map(np.zeros_like, params[level]["decoder_out"])
  folder = tmp_path_factory.mktemp("dsfn")
  state = steps.TrainState(step=jnp.asarray(3, jnp.int32), params=params, opt_state={})
  mngr = checkpoints.checkpoint_manager(str(folder))
  checkpoints.save_checkpoint(mngr, state, jax.random.PRNGKey(0))
  mngr.close()
  utils.atomic_write_text(str(folder / "config.json"), config.to_json_best_effort(indent=2))
  return str(folder)


def _frames(count, size=16, seed=1):
  """Multiples of 4: the mean of two neighbours is an integer, so rounding cannot differ."""
  rng = np.random.default_rng(seed)
  return [(rng.integers(0, 64, (size, size, 3)) * 4).astype(np.uint8) for _ in range(count)]


def _expected(frames):
  """S_0, S_1/2, S_1, ... : nearest x4 of the key frames and of the means of neighbours."""
  up = lambda f: np.repeat(np.repeat(f, 4, axis=0), 4, axis=1)
  out = []
  for a, b in zip(frames, frames[1:]):
    out += [up(a), up(((a.astype(np.int32) + b) // 2).astype(np.uint8))]
  return out + [up(frames[-1])]


def _write_video(path, frames, fps, codec="ffv1", pix_fmt="bgr0", options=None, audio_seconds=None):
  media.encode(path, frames, rate=Fraction(fps), codec=codec, pix_fmt=pix_fmt, options=options,
               audio_seconds=audio_seconds)


def _read_video(path):
  facts = media.facts(path)
  return facts["frames"], facts


def test_lossless_video_gets_known_frames_at_twice_the_rate(workdir, tmp_path, caplog):
  frames = _frames(8)
  src = tmp_path / "in.mkv"
  _write_video(src, frames, fps=10)  # lossless RGB
  enhancer = enhance.load_enhancer(workdir)
  assert enhancer.step == 3
  with caplog.at_level("INFO", logger="absl"):
    count = enhance.enhance_video(enhancer, str(src), str(tmp_path / "out.mkv"), progress_bar=False)
  assert "out.mkv: frames 8 -> 15, 16x16 -> 64x64, fps 10 -> 20, " in caplog.text
  got, meta = _read_video(tmp_path / "out.mkv")
  assert count == len(got) == 15  # 2M - 1
  assert got[0].shape == (64, 64, 3) and meta["rate"] == 20 and meta["codec"] == "ffv1"
  assert meta["duration"] == Fraction(8, 10)  # as long as the input: 15 frames of 1/20 s, the last held to the end
  for i, (frame, want) in enumerate(zip(got, _expected(frames))):
    np.testing.assert_array_equal(frame, want, err_msg=f"frame {i}")
  assert enhancer.num_traces == 1  # one frame size, one compilation
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv"]
  assert "replaced the earlier file" not in caplog.text
  with caplog.at_level("INFO", logger="absl"):  # a second run replaces the video whole, and says so
    assert enhance.enhance_video(enhancer, str(src), str(tmp_path / "out.mkv"), progress_bar=False) == 15
  assert f"{tmp_path / 'out.mkv'}: replaced the earlier file of that name" in caplog.text
  assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv"]


def _main(args, capsys):
  """`jaxvfi.enhance.main` in process; returns (exit status, stderr)."""
  ns = argparse.Namespace(no_progress=True, **{"tile": 0, "tile_overlap": enhance.DEFAULT_TILE_OVERLAP, **args})
  try:
    enhance.main(ns)
    status = 0
  except SystemExit as e:
    status = e.code
  return status, capsys.readouterr().err


def test_bad_inputs_give_one_error_and_write_nothing(workdir, tmp_path, capsys):
  _write_video(tmp_path / "one.mkv", _frames(1, size=16), fps=10)
  _write_video(tmp_path / "two.mkv", _frames(2, size=16), fps=10)
  (tmp_path / "not_a_video.mp4").write_bytes(b"\x00" * 64)
  (tmp_path / "refin").mkdir()
  refin = config_lib.load_config(os.path.join(ROOT, "configs", "refin.py"), "runlocal")
  utils.atomic_write_text(str(tmp_path / "refin" / "config.json"), refin.to_json_best_effort())
  before = sorted(os.listdir(tmp_path))
  out = str(tmp_path / "out.mp4")
  cases = [
      (dict(workdir=workdir, video=str(tmp_path / "none.mp4"), output=out), "none.mp4 does not exist"),
      (dict(workdir=workdir, video=str(tmp_path / "not_a_video.mp4"), output=out), "cannot read video"),
      (dict(workdir=workdir, video=str(tmp_path / "one.mkv"), output=out), "has one frame: at least two are needed"),
      (dict(workdir=workdir, video=str(tmp_path / "two.mkv"), output=str(tmp_path / "out.png")), "names one image"),
      (dict(workdir=workdir, video=str(tmp_path / "two.mkv"), output=str(tmp_path / "two.mkv")), "is the input"),
      (dict(workdir=str(tmp_path / "refin"), video=str(tmp_path / "two.mkv"), output=out), "'refin' model"),
      (dict(workdir=str(tmp_path / "none"), video=str(tmp_path / "two.mkv"), output=out), "none does not exist"),
  ]
  for args, message in cases:
    status, err = _main(args, capsys)
    assert status == 1 and err.count("jaxvfi: error: ") == 1 and message in err, (args, err)
  assert sorted(os.listdir(tmp_path)) == before  # no output, no temporary file


def test_command_line_h264(workdir, tmp_path):
  """An 8-frame 16x16 H.264 video becomes 15 frames of 64x64 at twice the rate (the same run at 64x64 -> 256x256 is
  the issue's acceptance check; smaller here to keep the suite fast)."""
  frames = _frames(8, seed=2)
  _write_video(tmp_path / "in.mp4", frames, fps=12, codec="libx264", pix_fmt="yuv444p", options={"crf": "10"},
               audio_seconds=8 / 12)
  decoded, _ = _read_video(tmp_path / "in.mp4")
  r = subprocess.run([sys.executable, "-m", "jaxvfi.enhance", f"--workdir={workdir}", "--video",
                      str(tmp_path / "in.mp4"), "--output", str(tmp_path / "out.mp4"), "--no_progress"],
                     cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
  got, meta = _read_video(tmp_path / "out.mp4")
  assert len(got) == 15 and got[0].shape == (64, 64, 3)
  assert meta["rate"] == 24 and meta["codec"] == "h264"
  assert abs(meta["duration"] - Fraction(8, 12)) <= Fraction(1, 24)  # the input's, within one output frame
  assert len(meta["audio"]) == 1 and abs(meta["audio"][0]["duration"] - Fraction(8, 12)) < Fraction(1, 24)
  for frame, want in zip(got, _expected(decoded)):  # lossy both ways: close, not equal
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((frame.astype(np.float64) - want) ** 2))
    assert psnr > 30, psnr
  assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]


def test_tiles_stitch_to_the_whole_frame(workdir):
  """--tile: with decoders at zero every output pixel is its own input pixel's (nearest x4), so the tiled result must
  equal the whole-frame one exactly: this checks the tile windows, the scale and the stitching."""
  frames = _frames(4, size=24)
  frames = [f[:, :20] for f in frames]  # 24 x 20: tiles of 8 with a clipped last column of tiles
  whole = enhance.load_enhancer(workdir).window(frames)
  tiled_enhancer = enhance.load_enhancer(workdir, tile=8, tile_overlap=3)
  tiled = tiled_enhancer.window(frames)
  assert tiled.shape == whole.shape == (3, 96, 80, 3)
  np.testing.assert_allclose(tiled, whole, atol=1e-6)
  assert tiled_enhancer.num_traces == 1  # every window has one size: one compilation
  with pytest.raises(ValueError, match="--tile and --tile_overlap must be >= 0"):
    enhance.load_enhancer(workdir, tile=-1)
