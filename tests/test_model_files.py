"""One-file models: `python -m jaxvfi.weights export` of a tiny DSFN and a tiny SDAN workdir gives files that
`jaxvfi.enhance` and `jaxvfi.zoom` take with --weights (same output as from the workdir); `jaxvfi.interpolate`
takes a converted .safetensors alone, and `--model=NAME` fetches a released model from a local HTTP server."""
from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np
from PIL import Image
import pytest

from conftest import ROOT, TINY, run_main
import media
from helpers import serve, sha256, write_workdir
import torch_files
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import enhance
from jaxvfi import families
from jaxvfi import interpolate
from jaxvfi import model_file
from jaxvfi import released
from jaxvfi import torch_weights
from jaxvfi import train
from jaxvfi import utils
from jaxvfi import weights
from jaxvfi import zoom


def _workdir(folder, config, seed=0):
  """A workdir with random weights (no init compiled) at step 3 and its config.json."""
  template = checkpoints.params_template(families.build_model(config.model), config)
  rng = np.random.default_rng(seed)
  params = jax.tree.map(lambda s: rng.uniform(-0.05, 0.05, s.shape).astype(np.float32), template)
  return write_workdir(folder, config, params, step=3)


def _run(tool, capsys, **flags):
  ns = argparse.Namespace(no_progress=True, **flags)
  try:
    tool.main(ns)
    status = 0
  except SystemExit as e:
    status = e.code
  return status, capsys.readouterr().err


def test_exported_dsfn_enhances_like_its_workdir(tmp_path, capsys):
  config = config_lib.load_config(os.path.join(ROOT, "configs", "dsfn.py"), "runlocal")
  workdir = _workdir(tmp_path / "dsfn", config)
  dst = tmp_path / "dsfn.safetensors"
  assert weights.main(["export", f"--workdir={workdir}", f"--dst={dst}"]) == 0
  mf = model_file.read(dst)
  assert mf.family == "dsfn" and mf.layout == "flax" and mf.step == 3
  assert mf.config().model.to_dict() == checkpoints.read_config(workdir).model.to_dict()
  frames = [(np.random.default_rng(i).integers(0, 64, (16, 16, 3)) * 4).astype(np.uint8) for i in range(4)]
  src = tmp_path / "in.mkv"
  media.encode(src, frames, rate=10, codec="ffv1", pix_fmt="bgr0")
  outputs = {}
  for name, flags in (("workdir", {"workdir": workdir}), ("file", {"weights": str(dst)})):
    out = tmp_path / f"{name}.mkv"
    status, err = _run(enhance, capsys, video=str(src), output=str(out), tile=0,
                       tile_overlap=enhance.DEFAULT_TILE_OVERLAP, **flags)
    assert status == 0, err
    outputs[name] = media.facts(out)["frames"]
  assert len(outputs["file"]) == 7
  for a, b in zip(outputs["workdir"], outputs["file"]):
    np.testing.assert_array_equal(a, b)
  # The wrong tool says so in one line, before anything is written.
  Image.fromarray(frames[0]).save(tmp_path / "p.png")
  status, err = _run(zoom, capsys, weights=str(dst), input=str(tmp_path / "p.png"), output=str(tmp_path / "o.png"),
                     tile=zoom.DEFAULT_TILE, overlap=None)
  assert status == 1 and "jaxvfi.zoom needs an SDAN" in err and not (tmp_path / "o.png").exists()


def test_exported_sdan_zooms_like_its_workdir(tmp_path, capsys):
  config = config_lib.load_config(os.path.join(ROOT, "configs", "sdan.py"), "runlocal,input=rgb")
  with config.unlocked():
    config.model.features, config.model.num_blocks = 8, 2
  workdir = _workdir(tmp_path / "sdan", config)
  dst = tmp_path / "sdan.safetensors"
  assert weights.main(["export", f"--workdir={workdir}", f"--dst={dst}"]) == 0
  assert model_file.read(dst).config().model.features == 8
  photo = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(photo)
  got = {}
  for name, flags in (("workdir", {"workdir": workdir}), ("file", {"weights": str(dst)})):
    out = tmp_path / f"{name}.png"
    status, err = _run(zoom, capsys, input=str(photo), output=str(out), tile=zoom.DEFAULT_TILE, overlap=None, **flags)
    assert status == 0, err
    got[name] = np.asarray(Image.open(out))
  assert got["file"].shape == (80, 96, 3)
  np.testing.assert_array_equal(got["workdir"], got["file"])
  status, err = _run(enhance, capsys, weights=str(dst), video=str(photo), output=str(tmp_path / "o.mkv"), tile=0,
                     tile_overlap=enhance.DEFAULT_TILE_OVERLAP)
  assert status == 1 and err.count("jaxvfi: error:") == 1


def _pair(tmp_path):
  rng = np.random.default_rng(0)
  paths = []
  for name in ("a.png", "b.png"):
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    paths.append(str(tmp_path / name))
  return paths


def test_interpolate_takes_a_model_file_and_a_released_name(tmp_path, monkeypatch):
  """A converted .safetensors needs no --model; --model=sepconv-lf is fetched from the "authors' site" (a local
  server) into the cache once and then read offline, with the same result."""
  pair = _pair(tmp_path)
  state = weights.random_state_dict("sepconv", 0)
  site = tmp_path / "site"
  site.mkdir()
  torch_files.save_zip(site / "network-lf.pytorch", state)
  converted = tmp_path / "sepconv.safetensors"
  assert weights.main(["convert", "--arch=sepconv", f"--src={site / 'network-lf.pytorch'}", f"--dst={converted}"]) == 0
  parser = interpolate.build_parser()
  interpolate.run(parser.parse_args([f"--weights={converted}", "--frames", *pair, "--output",
                                     str(tmp_path / "file.png"), "--no_progress"]))
  monkeypatch.setenv(released.CACHE_ENV, str(tmp_path / "cache"))
  monkeypatch.setenv(released.SHA256_ENV, sha256(site / "network-lf.pytorch"))
  with serve(site) as (url, handler):
    monkeypatch.setenv(released.MIRROR_ENV, url)
    interpolate.run(parser.parse_args(["--model=sepconv-lf", "--frames", *pair, "--output",
                                       str(tmp_path / "fetched.png"), "--no_progress"]))
    assert handler.requests == ["/network-lf.pytorch"]
  assert os.listdir(tmp_path / "cache") == ["sepconv-lf.safetensors"]
  interpolate.run(parser.parse_args(["--model=sepconv-lf", "--frames", *pair, "--output",  # server gone: cache
                                     str(tmp_path / "cached.png"), "--no_progress"]))
  images = [np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("file", "fetched", "cached")]
  np.testing.assert_array_equal(images[0], images[1])
  np.testing.assert_array_equal(images[0], images[2])
  with pytest.raises(ValueError, match="not an interpolation model"):
    interpolate.run(parser.parse_args(["--model=pwcnet", "--frames", *pair, "--output", str(tmp_path / "x.png")]))


def test_eval_scores_released_layout_weights(tfds_dir, tmp_path):
  """`--mode=eval --weights=FILE` scores a random-weights SepConv in the released layout (a .npz and a model file)
  on the tiny embedded data at step 0, writing the eval JSON a workdir's evaluation writes."""
  npz, st = tmp_path / "sepconv.npz", tmp_path / "sepconv.safetensors"
  for dst in (npz, st):
    assert weights.main(["random", "--arch=sepconv", "--seed=0", f"--dst={dst}"]) == 0
  overrides = [f"--config.{k}={v}" for k, v in {**TINY, "data.tfds_dir": tfds_dir}.items()]
  r = run_main(["--config=configs/sepconv.py:runlocal", f"--workdir={tmp_path / 'w'}", "--mode=eval",
                f"--weights={st}"] + overrides)
  assert r.returncode == 0, r.stderr[-3000:]
  files = sorted(os.listdir(tmp_path / "w"))
  evals = [f for f in files if f.startswith("eval_0_") and f.endswith(".json")]
  assert len(evals) == 1, files
  record = json.loads((tmp_path / "w" / evals[0]).read_text())
  assert record["step"] == 0 and np.isfinite(record["metrics"]["psnr"]) and "frame_average_psnr" in record["metrics"]
  # The same parameters from the bare .npz (the family's RELEASED_MODEL_CONFIG applied): the same scores.
  config = config_lib.load_config(os.path.join(ROOT, "configs", "sepconv.py"), "runlocal",
                                  {**TINY, "data.tfds_dir": tfds_dir})
  again = train.evaluate(config, str(tmp_path / "w2"), weights=str(npz))
  assert again["metrics"]["psnr"] == pytest.approx(record["metrics"]["psnr"], abs=1e-4)
  with pytest.raises(ValueError, match="holds a 'sepconv' model, but --config is 'refin'"):
    train.evaluate(config_lib.load_config(os.path.join(ROOT, "configs", "refin.py"), "runlocal"),
                   str(tmp_path / "w3"), weights=str(st))


def test_a_damaged_file_is_one_error_and_files_are_written_into_new_folders(tmp_path):
  """A model file cut short is named as such (it was taken for 'not a model file'); writing one into a folder that
  does not exist yet makes the folder, and the file reads like any other new file (umask, not mkstemp's 0600)."""
  dst = tmp_path / "new" / "folder" / "m.safetensors"
  model_file.write(dst, {"w": np.ones((64, 64), np.float32)}, layout="torch", arch="sepconv")
  assert oct(os.stat(dst).st_mode & 0o777) == oct(0o666 & ~utils.UMASK)
  cut = tmp_path / "cut.safetensors"
  cut.write_bytes(dst.read_bytes()[:200])
  with pytest.raises(ValueError, match=r"cannot read weights file .*cut.safetensors: .*\(a file cut short or "
                                       r"damaged\?\)"):
    model_file.is_model_file(cut)
  with pytest.raises(ValueError, match=r"cannot read weights file .*cut.safetensors"):
    torch_weights.read_state_dict(cut)
