"""Tests of DSFN's embedded data (`jaxvfi_synthetic_blur`) against hand-computed frame indices and the renderer."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxvfi import data_config
from jaxvfi import input_pipeline
from jaxvfi.datasets import adobe240
from jaxvfi.datasets import synthetic_blur


def test_blur_and_ground_truth_frame_indices():
  """Sub-frame s holds the value s: blurry frame k is the mean of sub-frames 8k .. 8k + 10, i.e. 8k + 5, and the
  sharp frames are sub-frames 5, 9, 13, ..., 29 (key frames and half-way frames)."""
  times = synthetic_blur.subframe_times(4)
  assert len(times) == 8 * 3 + 11
  np.testing.assert_allclose(times[[5, 13, 21, 29]], [0, 1, 2, 3])  # blurry frame k is centred on time k
  subframes = np.broadcast_to(np.arange(35, dtype=np.uint8)[:, None, None, None], (35, 2, 3, 3))
  subframes = subframes.copy()
  subframes[6, 0, 0, 0] = 16  # one odd pixel: blurry frame 0 there is (55 - 6 + 16) / 11 = 5.91
  ex = synthetic_blur.blur_example(subframes, 4)
  np.testing.assert_array_equal(ex["blurry"][:, 1, 1, 1], [5, 13, 21, 29])
  assert ex["blurry"][0, 0, 0, 0] == 5  # floored as BIN does, not rounded to 6
  np.testing.assert_array_equal(ex["sharp"][:, 1, 1, 1], [5, 9, 13, 17, 21, 25, 29])
  np.testing.assert_array_equal(ex["sharp_times"], [0, 0.5, 1, 1.5, 2, 2.5, 3])
  np.testing.assert_array_equal(ex["blurry_times"], [0, 1, 2, 3])


def test_examples_are_pure_functions_of_seed_split_index():
  a = synthetic_blur.make_example("train", 3, size=(24, 32))
  b = synthetic_blur.make_example("train", 3, size=(24, 32))
  c = synthetic_blur.make_example("validation", 3, size=(24, 32))
  assert a["blurry"].shape == (4, 24, 32, 3) and a["sharp"].shape == (7, 24, 32, 3) and a["id"] == "train/000003"
  np.testing.assert_array_equal(a["blurry"], b["blurry"])
  assert not np.array_equal(a["sharp"], c["sharp"])
  # Motion blur: a blurry frame differs from the sharp frame at its centre, and sharp frames move over time.
  assert np.abs(a["blurry"][1].astype(float) - a["sharp"][2]).mean() > 1.0
  assert np.abs(a["sharp"][2].astype(float) - a["sharp"][4]).mean() > 2.0


def test_dsfn_preset_reads_the_embedded_blur_data(tmp_path):
  config = data_config.default_data_config()
  config.name = "jaxvfi_synthetic_blur"
  config.tfds_dir = str(tmp_path)
  config.augmentation = "dsfn"
  config.augmentation_args = {"crop_size": 16}
  config.synthetic_num_train, config.synthetic_num_val, config.synthetic_size = 2, 1, 24
  builder = input_pipeline.get_builder(config)
  assert builder.info.features["blurry"].shape == (4, None, None, 3)  # adobe240's features, blurry4 by default
  batch = next(input_pipeline.create_train_iterator(config, 2, seed=0))
  assert batch["blurry"].shape == (2, 4, 4, 4, 3) and batch["sharp"].shape == (2, 7, 16, 16, 3)
  (evaluation,) = list(input_pipeline.create_eval_batches(config, 1))
  want = synthetic_blur.make_example("validation", 0, size=(24, 24))
  np.testing.assert_array_equal(np.rint(evaluation["sharp"][0] * 255), want["sharp"])
  low = jax.image.resize(want["blurry"].astype(np.float32) / 255, (4, 6, 6, 3), "bicubic", antialias=True)
  np.testing.assert_allclose(evaluation["blurry"][0], np.asarray(low), atol=1e-5)
  config.builder_config = "blurry2"
  assert synthetic_blur.config_from_data(config).num_blurry == 2
  config.builder_config = "blurry7"
  with pytest.raises(ValueError, match="blurry2, blurry3, blurry4"):
    input_pipeline.get_builder(config)


def test_blur_matches_adobe240s_synthesis():
  frames = np.random.default_rng(0).integers(0, 256, size=(11, 3, 4, 3), dtype=np.uint8)
  ex = synthetic_blur.blur_example(np.concatenate([frames, frames[:8]]), 2)
  np.testing.assert_array_equal(ex["blurry"][0], adobe240.synthesize_blur(frames))
