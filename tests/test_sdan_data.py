"""SDAN's data: the embedded misaligned zoom pairs (known offset, Bayer layout) and the "sdan" preset on them."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from jaxvfi import augment
from jaxvfi import input_pipeline
from jaxvfi.datasets import synthetic


def _downscaled_target(pair):
  return augment.bicubic_downscale(pair["hr_rgb"].astype(np.float32) / 255, synthetic.ZOOM)


def test_aligned_pair_is_the_downscaled_target():
  pair = synthetic.make_zoom_pair("validation", 0, size=64, max_shift=0.0)
  assert (pair["lr_rgb"].shape, pair["lr_raw"].shape, pair["hr_rgb"].shape) == ((16, 16, 3), (8, 8, 4), (64, 64, 3))
  np.testing.assert_array_equal(pair["offset"], [0, 0])
  # The input is the bicubic x1/4 of the same render; the target was quantised to 8 bits before this downscale.
  np.testing.assert_allclose(pair["lr_rgb"] / 255, _downscaled_target(pair), atol=2.5 / 255)


def test_misaligned_pair_has_the_stated_offset():
  pair = synthetic.make_zoom_pair("train", 3, size=256, max_shift=3.0)
  dy, dx = pair["offset"]
  assert 0.3 < max(abs(dy), abs(dx)) <= 3.0
  target = _downscaled_target(pair)
  inner = np.s_[8:-8, 8:-8]

  def error(d):  # lr[y, x] should show the target at (y + d0, x + d1)
    moved = np.stack([ndimage.shift(target[..., c], -np.asarray(d), order=3, mode="nearest") for c in range(3)], -1)
    return np.mean((moved[inner] - pair["lr_rgb"][inner] / 255) ** 2)

  best = error((dy, dx))
  assert best < 0.05 * error((0.0, 0.0))
  for step in ((0.2, 0), (-0.2, 0), (0, 0.2), (0, -0.2)):  # a minimum to 0.2 LR px
    assert best < error((dy + step[0], dx + step[1])), step


def test_packed_raw_samples_the_rggb_grid():
  pair = synthetic.make_zoom_pair("train", 1, size=64)
  raw = augment.normalize_raw(pair["lr_raw"], pair["black_level"], pair["white_level"])
  rgb = pair["lr_rgb"] / 255
  for channel, (y, x, colour) in enumerate([(0, 0, 0), (0, 1, 1), (1, 1, 2), (1, 0, 1)]):
    np.testing.assert_allclose(raw[..., channel], rgb[y::2, x::2, colour], atol=0.51 / 255 + 1e-4)
  assert list(pair["black_level"]) == [512] * 4 and pair["white_level"] == 16383


def test_sdan_preset_on_the_embedded_pairs(tmp_path):
  config = input_pipeline.default_data_config()
  config.update(name="jaxvfi_synthetic_zoom", tfds_dir=str(tmp_path), augmentation="sdan", num_threads=1,
                augmentation_args=dict(crop_size=4), synthetic_num_train=3, synthetic_num_val=2, synthetic_size=64)
  batch = next(input_pipeline.create_train_iterator(config, 2, seed=0))
  assert {k: v.shape for k, v in batch.items()} == {"lr_raw": (2, 4, 4, 4), "lr_rgb": (2, 8, 8, 3),
                                                    "hr_rgb": (2, 32, 32, 3)}
  assert 0 <= batch["lr_raw"].min() and batch["lr_raw"].max() <= 1
  (evaluation,) = list(input_pipeline.create_eval_batches(config, 2))
  assert evaluation["lr_rgb"].shape == (2, 16, 16, 3) and evaluation["hr_rgb"].shape == (2, 64, 64, 3)
  expected = synthetic.make_zoom_pair("validation", 1, size=64, max_shift=0.0)
  np.testing.assert_array_equal(np.rint(evaluation["hr_rgb"][1] * 255), expected["hr_rgb"])
  config.synthetic_size = 60
  with pytest.raises(ValueError, match="multiple of 8"):
    input_pipeline.get_builder(config)
