"""Tests of the benchmark evaluators (jaxvfi/evaluators.py) on tiny fakes of Vimeo-90K, UCF101 and Middlebury.

Oracles: the frames the fakes wrote, scored with NumPy's PSNR formula and scikit-image's SSIM (the conventions of
jaxvfi.metrics); a predict_fn that returns the frame average, so the model row must equal the frame-average row;
and a table written out by hand.
"""
from __future__ import annotations

import json
import os

from conftest import tiny_config
import fake_datasets as fake
from helpers import random_params, write_workdir
import jax
import ml_collections
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from jaxvfi import classical_flow
from jaxvfi import data_config
from jaxvfi import families
from jaxvfi import train
from jaxvfi import weights
from jaxvfi.evaluators import registry
from jaxvfi.evaluators import vfi_triplet




@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
  root = tmp_path_factory.mktemp("benchmarks")
  with fake.frame_size(16, 20):
    vimeo = fake.make_vimeo(root / "vimeo", "triplet", {"train": ["00001/0001"],
                                                         "test": ["00002/0001", "00002/0002", "00003/0001"]})
    ucf = fake.make_ucf(root / "ucf", ["1", "2"])
    middlebury = fake.make_middlebury(root / "middlebury", ["Beanbags"], ["Backyard"])
  with fake.frame_size(18, 24):  # Middlebury sequences differ in size.
    middlebury.update(fake.make_middlebury(root / "middlebury", ["Walking"], [], seed=3))
  return root, {"vimeo": vimeo, "ucf": ucf, "middlebury": middlebury}


def _config(root, tfds_dir):
  config = ml_collections.ConfigDict()
  config.data = data_config.default_data_config()
  config.data.tfds_dir = str(tfds_dir)
  config.data.augmentation = "sepconv"  # A training preset; the benchmarks must ignore it.
  config.eval_batch_size = 2
  config.progress_bar = False
  config.model = ml_collections.ConfigDict({"name": "refin"})
  config.evals = [
      {"dataset": "vimeo90k_triplet", "dir": str(root / "vimeo")},
      {"name": "UCF101 (DVF)", "dataset": "ucf101_triplet", "dir": str(root / "ucf"), "t": 0.5},
      {"dataset": "middlebury_other", "dir": str(root / "middlebury"), "split": "test"},
  ]
  return config


def _psnr(a, b):
  return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def _ssim(a, b):
  return structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=255)


def _oracle(triplets):
  """Mean PSNR / SSIM of the frame average (quantised to 8 bits), of frame0 (the nearer frame at t = 0.5) and, with
  OpenCV, of `classical_flow.interpolate` called on the frames directly (quantised)."""
  scores = {"frame_average": [], "repeat_frame": []} | ({"classical_flow": []} if classical_flow.available() else {})
  quantise = lambda x: np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
  for frames in triplets:
    f0, target, f1 = (f.astype(np.float32) / np.float32(255) for f in frames)
    average = quantise(np.float32(0.5) * (f0 + f1))
    scores["frame_average"].append((_psnr(average, frames[1]), _ssim(average, frames[1])))
    scores["repeat_frame"].append((_psnr(frames[0], frames[1]), _ssim(frames[0], frames[1])))
    if "classical_flow" in scores:
      flow = quantise(classical_flow.interpolate(f0, f1, 0.5))
      scores["classical_flow"].append((_psnr(flow, frames[1]), _ssim(flow, frames[1])))
  return {k: dict(zip(("psnr", "ssim"), np.mean(v, axis=0))) for k, v in scores.items()}


def test_run_benchmarks(benchmarks, tmp_path):
  root, frames = benchmarks
  config = _config(root, tmp_path / "tfds")
  seen_shapes = []
  average = jax.jit(lambda params, batch: 0.5 * (batch["frame0"] + batch["frame1"]))

  def predict_fn(params, batch):
    assert params == {"w": 1} and set(batch) == {"frame0", "frame1", "target", "t"}
    seen_shapes.append(batch["frame0"].shape)
    return average(params, batch)

  results = registry.run_benchmarks(predict_fn, {"w": 1}, config, str(tmp_path), step=1200)
  # Vimeo: 3 examples in batches of 2, the last padded; UCF: one batch of 2; Middlebury: one at a time, two sizes.
  assert seen_shapes == [(2, 16, 20, 3)] * 3 + [(1, 16, 20, 3), (1, 18, 24, 3)]
  assert results["step"] == 1200 and results["method"] == "refin"
  vimeo, ucf, middlebury = results["benchmarks"]
  assert [b["name"] for b in results["benchmarks"]] == ["Vimeo-90K", "UCF101 (DVF)", "Middlebury"]
  assert [b["num_examples"] for b in results["benchmarks"]] == [3, 2, 2]
  assert [b["batch_size"] for b in results["benchmarks"]] == [2, 2, 1]
  assert vimeo["split"] == "test" and vimeo["t"] == 0.5 and vimeo["frame_sizes"] == ["20x16"]
  assert middlebury["frame_sizes"] == ["20x16", "24x18"]

  triplets = {"Vimeo-90K": [frames["vimeo"][i] for i in ("00002/0001", "00002/0002", "00003/0001")],
              "UCF101 (DVF)": [frames["ucf"][i] for i in ("1", "2")],
              "Middlebury": [frames["middlebury"][i] for i in ("Beanbags", "Walking")]}
  for benchmark in results["benchmarks"]:
    scores = benchmark["scores"]
    assert scores["model"] == scores["frame_average"]  # The model is the frame average: the rows agree exactly.
    expected = _oracle(triplets[benchmark["name"]])
    assert set(scores) == {"model"} | set(expected)  # the classical flow row exactly when OpenCV is installed
    for method in expected:
      assert scores[method]["psnr"] == pytest.approx(expected[method]["psnr"], abs=1e-3)
      assert scores[method]["ssim"] == pytest.approx(expected[method]["ssim"], abs=1e-4)
  assert ucf["scores"]["repeat_frame"] != ucf["scores"]["frame_average"]

  with open(tmp_path / "results_1200.json") as f:
    assert json.load(f) == json.loads(json.dumps(results))
  assert (tmp_path / "results_1200.md").read_text() == vfi_triplet.format_table(results)
  rows = [line.split(" | ")[0] for line in (tmp_path / "results_1200.md").read_text().splitlines()[2:6]]
  assert rows == ["| refin", "| Frame average", "| Repeat frame"] + (
      ["| Classical flow (DIS)"] if classical_flow.available() else [""])


def test_format_table_layout():
  scores = lambda p, s: {"psnr": p, "ssim": s}
  results = {"step": 7, "method": "ReFIn (GridNet-4)", "benchmarks": [
      {"name": "Vimeo-90K", "num_examples": 3782, "scores": {"model": scores(35.1549, 0.97731),
                                                             "frame_average": scores(28.2, 0.9),
                                                             "repeat_frame": scores(26.0051, 0.85555)}},
      {"name": "UCF101", "num_examples": 379, "scores": {"model": scores(34.964, 0.969), "frame_average": scores(31, 1),
                                                         "repeat_frame": scores(29.999, 0.87654)}}]}
  assert vfi_triplet.format_table(results) == (
      "| Method | Vimeo-90K PSNR | Vimeo-90K SSIM | UCF101 PSNR | UCF101 SSIM |\n"
      "|:---|---:|---:|---:|---:|\n"
      "| ReFIn (GridNet-4) | 35.15 | 0.9773 | 34.96 | 0.9690 |\n"
      "| Frame average | 28.20 | 0.9000 | 31.00 | 1.0000 |\n"
      "| Repeat frame | 26.01 | 0.8556 | 30.00 | 0.8765 |\n"
      "\n"
      "PSNR (dB) and SSIM at step 7; examples: Vimeo-90K 3782, UCF101 379.\n")


def test_config_errors(benchmarks, tmp_path):
  config = _config(benchmarks[0], tmp_path / "tfds")
  predict_fn = lambda params, batch: batch["frame0"]
  for evals, message in [([], "config.evals is empty"),
                         ([{"dataset": "adobe240"}], "dataset must be one of"),
                         ([{"dataset": "ucf101_triplet", "crop": 64}], "unknown keys \\['crop'\\]")]:
    config.evals = evals
    with pytest.raises(ValueError, match=message):
      registry.run_benchmarks(predict_fn, None, config, str(tmp_path), step=0)
  assert not list(tmp_path.glob("results_*"))


def _y(frame_uint8):
  """BT.601 luma in [16, 235] (scikit-image's rgb2ycbcr, the same formula as MATLAB's), float64."""
  from skimage.color import rgb2ycbcr  # pylint: disable=g-import-not-at-top
  return rgb2ycbcr(frame_uint8.astype(np.float64) / 255.0)[..., 0]


def test_restoration_evaluator_y_channel_border_crop_and_bicubic_baseline(benchmarks, tmp_path):
  """`restoration` on the fake Vimeo triplets with prediction = frame1, ground truth = the middle frame and the
  "bicubic" baseline = frame0 upsampled x1 (itself): Y-channel PSNR / SSIM after a 2-pixel border crop, against
  scikit-image's rgb2ycbcr, PSNR formula and SSIM."""
  root, frames = benchmarks
  config = _config(root, tmp_path / "tfds")
  config.evals = [{"type": "restoration", "name": "vimeo-y", "dataset": "vimeo90k_triplet", "dir": str(root / "vimeo"),
                   "target_key": "target", "input_key": "frame0", "color": "y", "crop_border": 2}]
  predict_fn = lambda params, batch: {"image": batch["frame1"], "other": batch["frame0"]}
  results = registry.run_benchmarks(predict_fn, None, config, str(tmp_path), step=5)
  (bench,) = results["benchmarks"]
  assert bench["num_examples"] == 3 and bench["type"] == "restoration"
  crop = lambda y: y[2:-2, 2:-2]
  want = {"model": [], "bicubic": []}
  for key in ("00002/0001", "00002/0002", "00003/0001"):
    f0, target, f1 = frames["vimeo"][key]
    for method, frame in (("model", f1), ("bicubic", f0)):
      a, b = crop(_y(frame)), crop(_y(target))
      psnr = 10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2))
      ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                   data_range=255)
      want[method].append((psnr, ssim))
  for method in ("model", "bicubic"):
    psnr, ssim = np.mean(want[method], axis=0)
    assert bench["scores"][method]["psnr"] == pytest.approx(psnr, abs=0.01)
    assert bench["scores"][method]["ssim"] == pytest.approx(ssim, abs=1e-3)
  assert "| model |" not in (tmp_path / "results_5.md").read_text()  # rows are named by the method
  assert (tmp_path / "results_5.md").read_text().splitlines()[2].startswith("| refin |")


def test_evaluator_types_are_looked_up_by_name():
  assert registry.get_module("restoration").Evaluator is not None
  with pytest.raises(ValueError, match="unknown evaluator type 'nope'"):
    registry.get_module("nope")


def test_lpips_is_scored_with_weights_and_explained_without(tmp_path):
  """Every evaluator type scores "lpips" through the one loop when config.lpips_weights is given (equal to the
  metric called directly), and says why it is missing otherwise."""
  from jaxvfi import metrics  # pylint: disable=g-import-not-at-top
  from jaxvfi.evaluators import common  # pylint: disable=g-import-not-at-top
  np.savez(tmp_path / "lpips.npz", **weights.random_state_dict("lpips_alex", 0))
  config = ml_collections.ConfigDict({"lpips_weights": str(tmp_path / "lpips.npz")})
  fn, notes = common.lpips_option(config, ("psnr", "lpips"))
  assert notes == []
  rng = np.random.default_rng(0)
  batch = {"a": rng.random((2, 32, 36, 3), np.float32), "b": rng.random((2, 32, 36, 3), np.float32)}
  result = common.score(lambda p, b: {"image": b["a"]}, None, [batch], 2, names=("psnr", "lpips"), lpips=fn,
                        select=lambda preds, b: (preds["image"], b["b"], {}), progress=False)
  want = np.mean(np.asarray(fn(metrics.quantize(jax.numpy.asarray(batch["a"])), jax.numpy.asarray(batch["b"]))))
  assert result.means["lpips"] == pytest.approx(float(want), rel=1e-5) and result.means["lpips"] > 0
  config.lpips_weights = None
  assert common.lpips_option(config, ("psnr", "lpips")) == (None, [metrics.LPIPS_NO_WEIGHTS])
  assert common.lpips_option(config, ("psnr",)) == (None, [])


def test_eval_with_test_time_augmentation_writes_its_own_record(tfds_dir, tmp_path):
  # A checkpoint of random parameters (no training); --mode=eval with and without TTA on the same split.
  config = tiny_config(tfds_dir)
  model = families.build_model(config.model)
  workdir = write_workdir(tmp_path / "w", config, random_params(model, config, seed=5), step=4)
  plain = train.evaluate(config, workdir)
  config.test_time_augmentation = True
  tta = train.evaluate(config, workdir)
  assert sorted(os.listdir(workdir)).count("eval_4_jaxvfi_synthetic_validation.json") == 1
  record = json.loads((tmp_path / "w" / "eval_4_jaxvfi_synthetic_validation_tta.json").read_text())
  assert record["metrics"] == tta["metrics"] and any("test-time augmentation" in n for n in record["notes"])
  assert not any("test-time augmentation" in n for n in plain["notes"])
  # The baselines do not involve the model; the model's score moves with the averaged prediction.
  assert tta["metrics"]["frame_average_psnr"] == plain["metrics"]["frame_average_psnr"]
  assert abs(tta["metrics"]["psnr"] - plain["metrics"]["psnr"]) > 1e-3
  assert registry.results_stem(config, 4) == "results_4_tta"  # benchmarks keep the plain results_4 too
  # A --config that builds another model than the run's: one error naming the differing field.
  config.model.unet_width = 0.5
  with pytest.raises(ValueError, match=r"has shape .* there, .* here.*; --config builds another model than "
                     r"the run's .*config.json \(model.unet_width: 0.25 there, 0.5 here\)"):
    train.evaluate(config, workdir)
