"""SDAN's data: the embedded misaligned zoom pairs (known offset, Bayer layout) and the "sdan" preset on them."""
from __future__ import annotations

import fake_datasets as fake
import numpy as np
import pytest
from scipy import ndimage
import tensorflow_datasets as tfds

from jaxvfi import augment
from jaxvfi import data_config
from jaxvfi import input_pipeline
from jaxvfi.datasets import sr_raw
from jaxvfi.datasets import synthetic


def tfds_build(builder_cls, manual_dir, tmp_path, config=None):
  builder = builder_cls(data_dir=tmp_path / "data", file_format="array_record", config=config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def fake_pack(mosaic):
  """RGGB mosaic -> packed R, G, B, G by positions (0,0), (0,1), (1,1), (1,0)."""
  return np.stack([mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 1::2], mosaic[1::2, 0::2]], -1)


NEUTRAL = dict(lens_blur=0.0, lr_gains=(1.0, 1.0, 1.0), lr_exposure=1.0)  # a second camera like the first


def _downscaled_target(pair):
  """The target integrated over 4 x 4 pixels in linear light, back in sRGB."""
  light = synthetic.srgb_to_linear(pair["hr_rgb"].astype(np.float32) / 255)
  return synthetic.linear_to_srgb(augment.bicubic_downscale(light, synthetic.ZOOM))


def test_aligned_pair_is_the_downscaled_target():
  pair = synthetic.make_zoom_pair("validation", 0, size=64, max_shift=0.0, **NEUTRAL)
  assert (pair["lr_rgb"].shape, pair["lr_raw"].shape, pair["hr_rgb"].shape) == ((16, 16, 3), (8, 8, 4), (64, 64, 3))
  np.testing.assert_array_equal(pair["offset"], [0, 0])
  # The input is the x1/4 of the same render; the target was quantised to 8 bits before this downscale.
  np.testing.assert_allclose(pair["lr_rgb"] / 255, _downscaled_target(pair), atol=2.5 / 255)
  # The default short camera is softer, warmer and darker.
  default = synthetic.make_zoom_pair("validation", 0, size=64, max_shift=0.0)
  assert default["lr_rgb"].mean() < pair["lr_rgb"].mean() - 5
  assert np.abs(np.diff(default["lr_rgb"].astype(float), axis=0)).mean() < np.abs(
      np.diff(pair["lr_rgb"].astype(float), axis=0)).mean()


def test_misaligned_pair_has_the_stated_offset():
  pair = synthetic.make_zoom_pair("train", 3, size=256, max_shift=3.0, **NEUTRAL)
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


def test_packed_raw_is_the_linear_light_the_camera_renders():
  pair = synthetic.make_zoom_pair("train", 1, size=64)
  light = augment.normalize_raw(pair["lr_raw"], pair["black_level"], pair["white_level"])
  gains = np.asarray(synthetic.LR_GAINS) * synthetic.LR_EXPOSURE
  # Each packed channel is the linear value behind lr_rgb's colour at its RGGB position (rounding: 14 and 8 bits).
  for channel, (y, x, colour) in enumerate([(0, 0, 0), (0, 1, 1), (1, 1, 2), (1, 0, 1)]):
    rendered = synthetic.linear_to_srgb(light[..., channel] * gains[colour])
    np.testing.assert_allclose(rendered, pair["lr_rgb"][y::2, x::2, colour] / 255, atol=0.51 / 255 + 1e-3)
  assert list(pair["black_level"]) == [512] * 4 and pair["white_level"] == 16383


def test_sdan_preset_on_the_embedded_pairs(tmp_path):
  config = data_config.default_data_config()
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


def test_sr_raw_aligned_config(tmp_path):
  """tform.txt / wb.txt applied as SDAN's loader does, checked on an integer translation by slicing by hand."""
  rng = np.random.default_rng(7)
  seq = tmp_path / "manual" / "test" / "00001"
  shots = fake.make_srraw_sequence(seq, {1: 240, 2: 120, 6: 60}, (64, 96), rng)
  # Test pair (2, 6). Input 00006 moved by (tx, ty) = (16, 8) px of shot 00001's grid; target 00002 unmoved.
  (seq / "tform.txt").write_text("00001-00006\n1 0 16\n0 1 8\ncorner\n0 0 0 0\n")
  (seq / "wb.txt").write_text("00002:\n2.0 1.0 1.0 1.5\n00006:\n1.0 1.0 1.0 4.0\n")
  builder = tfds_build(sr_raw.SrRaw, tmp_path / "manual", tmp_path, config="aligned")
  (pair,) = [builder.as_data_source("test")[0]]
  # Target FOV 120/240: rows 16..48, cols 24..72 (32 x 48), scaled x2 to shot 00001's grid (64 x 96), warped by
  # inv(T6) T2 = a move by (+16, +8): valid rows 8..64, cols 16..96 there, i.e. the target crop's [0:28, 0:40]
  # after scaling back (bicubic up and down: compared loosely). Input FOV 60/240: packed rows 12..20, cols 18..30,
  # cut by 8 / (2 x 4) = 1 row and 16 / 8 = 2 columns; RGB rows 24..40, cols 36..60 cut by 2 and 4.
  raw = fake_pack(shots[6]["mosaic"])[12:20, 18:30][1:8, 2:12]
  np.testing.assert_array_equal(pair["lr_raw"], raw)
  lr = shots[6]["jpg"][24:40, 36:60][2:16, 4:24].astype(np.float64)
  want_lr = np.clip(np.rint(lr / np.array([1.0, 1.0, 4.0 ** (1 / 2.2)])), 0, 255)
  np.testing.assert_array_equal(pair["lr_rgb"], want_lr)
  assert pair["hr_rgb"].shape == (56, 80, 3)
  hr = sr_raw.resize(shots[2]["jpg"][16:48, 24:72][:28, :40], 56, 80).astype(np.float64)
  want_hr = hr / np.array([2.0 ** (1 / 2.2), 1.0, 1.5 ** (1 / 2.2)])
  # Random-noise JPGs through two bicubic passes: 9.5 grey levels apart here, 31 or more one pixel off.
  assert np.abs(pair["hr_rgb"] - np.clip(want_hr, 0, 255)).mean() < 12


def test_warp_inverse_map_and_valid_region():
  image = np.random.default_rng(8).random((10, 12, 2)).astype(np.float32)
  m = np.array([[1.0, 0.0, 2.5], [0.0, 1.0, -1.0]])  # dst(x, y) = src(x + 2.5, y - 1)
  warped = sr_raw.warp_inverse_map(image, m)
  want = 0.5 * (image[:-1, 2:-1] + image[:-1, 3:])  # rows y - 1, columns halfway between x + 2 and x + 3
  np.testing.assert_allclose(warped[1:, :9], want, atol=1e-6)
  assert np.all(warped[0] == 0)
  assert sr_raw.valid_region(m, 10, 12) == (1, 10, 0, 9)  # source corners at x - 2.5, y + 1
