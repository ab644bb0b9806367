"""DSFN's Table-1 evaluation (`restoration` evaluator, configs/dsfn.py entries) on a fake Adobe240 folder.

Oracle: the PNG frames the fake wrote, blurred (floor of the 11-frame mean), resized with the implementation the code
under test does not use for that step (downscaling: `jax.image.resize`, where the pipeline and the evaluator use
Pillow; upscaling: Pillow, where the baseline uses `jax.image.resize`) and scored with NumPy's PSNR formula and
scikit-image's SSIM; the prediction is a known function of the ground truth, different per output frame.
"""
from __future__ import annotations

import os

import fake_datasets as fake
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from skimage.metrics import structural_similarity

from conftest import ROOT
from jaxvfi import config_lib
from jaxvfi.evaluators import registry

H, W = 48, 64  # LR 12x16: SSIM's 11x11 window still fits the input-scale column
GAINS = (0.9, 0.8, 0.7)  # prediction k = gain_k * ground truth + 0.05


@pytest.fixture(scope="module")
def fake_adobe(tmp_path_factory):
  root = tmp_path_factory.mktemp("adobe")
  rng = np.random.default_rng(30)
  with fake.frame_size(H, W):
    fake.make_clip(root / "train" / "IMG_0001", 48, rng)  # blurry centres 16 ... 40: one blurry4 example
    test = fake.make_clip(root / "test" / "IMG_0004a", 56, rng)  # centres 16 ... 48: two examples
  return root, test


def _upscale(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Pillow's bicubic per channel of a float (h, w, 3) image."""
  return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), mode="F").resize(
      (width, height), Image.Resampling.BICUBIC)) for c in range(3)], axis=-1).astype(np.float64)


def _downscale(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Antialiased bicubic of a float (H, W, 3) image by `jax.image.resize`."""
  return np.asarray(jax.image.resize(jnp.asarray(image, jnp.float32), (height, width, 3), "bicubic",
                                     antialias=True), np.float64)


def _quantize(x):
  return np.round(np.clip(x, 0, 1) * 255) / 255


def _scores(pred, target):
  psnr = 10 * np.log10(1.0 / np.mean((pred - target) ** 2))
  ssim = structural_similarity(pred, target, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=1.0)
  return np.array([psnr, ssim])


def _oracle(frames):
  """{column: {method: (psnr, ssim)}} of the two test examples (sharp frames 16, 20, ..., blurry centres 16, 24, ...)"""
  per = {c: {"model": [], "bicubic": []} for c in ("deblurred_input_scale", "deblurred_upscaled", "interpolated")}
  for first in (16, 24):
    keys = [first + 8, first + 16]  # B_{t-2}, B_t: the second and third blurry frames of the example
    blurry = [(frames[c - 5:c + 6].astype(np.int64).sum(axis=0) // 11).astype(np.float32) / 255 for c in keys]
    up = [_upscale(_downscale(b, H // 4, W // 4), H, W) for b in blurry]
    baseline = [up[0], (up[0] + up[1]) / 2, up[1]]
    for k, index in enumerate((keys[0], keys[0] + 4, keys[1])):  # frames t-2, t-1, t
      target = frames[index].astype(np.float64) / 255
      model = _quantize(GAINS[k] * target + 0.05)
      column = "interpolated" if k == 1 else "deblurred_upscaled"
      for method, pred in (("model", model), ("bicubic", _quantize(baseline[k]))):
        per[column][method].append(_scores(pred, target))
        if k != 1:
          small = _quantize(_downscale(pred, H // 4, W // 4))
          per["deblurred_input_scale"][method].append(_scores(small, _downscale(target, H // 4, W // 4)))
  return {c: {m: np.mean(v, axis=0) for m, v in methods.items()} for c, methods in per.items()}


def test_table1_columns_and_paper_rows(fake_adobe, tmp_path):
  root, frames = fake_adobe
  config = config_lib.load_config(os.path.join(ROOT, "configs", "dsfn.py"), None, {
      "evals.adobe240.dir": str(root), "data.tfds_dir": str(tmp_path / "tfds"), "eval_batch_size": 2,
      "progress_bar": False})
  gains = np.asarray(GAINS, np.float32)[None, :, None, None, None]
  predict_fn = lambda params, batch: {"image": gains * batch["sharp"][:, 2:5] + 0.05}
  results = registry.run_benchmarks(predict_fn, None, config, str(tmp_path), step=7)
  (bench,) = results["benchmarks"]
  assert bench["name"] == "adobe240" and bench["num_examples"] == 6  # 2 examples x 3 frames
  want = _oracle(frames)
  for column, methods in want.items():
    for method, (psnr, ssim) in methods.items():
      assert bench["scores"][method][f"{column}/psnr"] == pytest.approx(psnr, abs=0.01), (column, method)
      assert bench["scores"][method][f"{column}/ssim"] == pytest.approx(ssim, abs=1e-3), (column, method)
    # The enhanced video alternates key and interpolated frames: the mean of the two columns.
  for method in ("model", "bicubic"):
    for metric in ("psnr", "ssim"):
      video = (want["deblurred_upscaled"][method] + want["interpolated"][method]) / 2
      assert bench["scores"][method][f"enhanced_video/{metric}"] == pytest.approx(
          video[0 if metric == "psnr" else 1], abs=0.01 if metric == "psnr" else 1e-3)
  table = (tmp_path / "results_7.md").read_text()
  rows = {line.split(" | ")[0][2:]: line for line in table.splitlines() if line.startswith("| ")}
  assert set(rows) == {"Method", "dsfn", "bicubic", "DSFN, paper Table 1"}
  assert "29.492" in rows["DSFN, paper Table 1"] and "35.864" in rows["DSFN, paper Table 1"]
  assert "adobe240: RGB, no border crop" in table
