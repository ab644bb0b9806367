"""Test-time adaptation (`jaxvfi.inference.adapt`): which triplets are cut from an input, and that fine-tuning on
them teaches a model the input's motion.

Oracles: triplet indices computed by hand; frames whose values name their index, so a kept triplet shows which
frames it holds; a scene cut made of two unrelated images; the learning test scores the model's middle frames against
the true ones before and after adaptation (mean absolute error on whole frames, not the training loss on crops).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from helpers import random_params
from jaxvfi import families
from jaxvfi.inference import adapt


def test_triplet_starts_are_all_or_evenly_spread():
  assert adapt.triplet_starts(2) == [] and adapt.triplet_starts(0) == []
  assert adapt.triplet_starts(3) == [0]
  assert adapt.triplet_starts(10) == list(range(8))
  # 100 triplets, 5 kept: linspace(0, 99, 5) = 0, 24.75, 49.5, 74.25, 99 -> rounded (49.5 to the even 50).
  assert adapt.triplet_starts(102, 5) == [0, 25, 50, 74, 99]


def _indexed_frames(n, h=16, w=24):
  return [np.full((h, w, 3), 10 * k, np.uint8) for k in range(n)]


def test_collect_triplets_keeps_consecutive_frames_and_drops_scene_cuts():
  frames = _indexed_frames(6)
  got = adapt.collect_triplets(iter(frames), num_frames=6)
  assert got.shape == (4, 3, 16, 24, 3) and got.dtype == np.uint8
  np.testing.assert_array_equal(got[:, :, 0, 0, 0], [[0, 10, 20], [10, 20, 30], [20, 30, 40], [30, 40, 50]])
  assert adapt.collect_triplets(frames, max_triplets=2)[:, 1, 0, 0, 0].tolist() == [10, 40]  # starts 0 and 3

  rng = np.random.default_rng(0)
  shot_a = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)  # scene_score needs 700+ pixels to call a cut
  shot_b = (255 - shot_a) // 3  # another picture: far apart in pixels and in colour histogram
  video = [shot_a, np.roll(shot_a, 1, 1), np.roll(shot_a, 2, 1), shot_b, np.roll(shot_b, 1, 1)]
  kept = adapt.collect_triplets(video)  # (0, 1, 2) only: the other two span the cut between frames 2 and 3
  np.testing.assert_array_equal(kept, np.stack(video[:3])[None])
  assert len(adapt.collect_triplets(video, scene_threshold=None)) == 3


@pytest.mark.parametrize("frames, message", [
    (_indexed_frames(2), "at least 3 consecutive frames of one shot, got 2 frames"),
    (_indexed_frames(2) + [np.zeros((16, 20, 3), np.uint8)], "frames differ in size: frame 0 is 24x16, frame 2 20x16"),
    ([np.zeros((16, 24, 3), np.float32)] * 3, "must be uint8 HxWx3 RGB, frame 0 is float32"),
    ([np.zeros((16, 24), np.uint8)] * 3, "must be uint8 HxWx3 RGB, frame 0 is uint8 (16, 24)"),
])
def test_collect_triplets_refuses_what_it_cannot_train_on(frames, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    adapt.collect_triplets(frames)


def test_options_are_checked():
  for options, message in ((adapt.AdaptOptions(steps=-1), "steps must be an integer >= 0"),
                           (adapt.AdaptOptions(steps=5, learning_rate=0.0), "learning rate must be > 0"),
                           (adapt.AdaptOptions(steps=5, batch_size=0), "batch size must be >= 1"),
                           (adapt.AdaptOptions(steps=5, crop_size=4), "crop must be at least 8")):
    with pytest.raises(ValueError, match=message):
      options.check()


def _moving_texture(num_frames, h=32, w=48, speed=3, seed=0):
  """A smooth random texture translating `speed` px per frame to the right (wrapping): the motion the model learns."""
  rng = np.random.default_rng(seed)
  base = rng.random((h // 4, 2 * w // 4, 3))
  base = np.kron(base, np.ones((4, 4, 1)))  # 4x4 blocks: edges to track, flat areas between
  return [(255 * np.roll(base, speed * k, axis=1)[:, :w]).astype(np.uint8) for k in range(num_frames)]


def _middle_error(model, params, triplets):
  """Mean absolute error (0..1) of the model's middle frames against the true ones, whole frames."""
  predict = families.make_predict_fn(model)
  x = triplets.astype(np.float32) / 255
  batch = {"frame0": jnp.asarray(x[:, 0]), "frame1": jnp.asarray(x[:, 2]),
           "t": jnp.full((len(x),), 0.5, jnp.float32)}
  return float(np.mean(np.abs(np.asarray(predict(params, batch)["image"]) - x[:, 1])))


@functools.lru_cache(maxsize=None)
def _tiny_refin():
  config = tiny_config("unused", "runlocal,data=rendered,flow=unet")
  model = families.build_model(config.model)
  return config, model, random_params(model, config, seed=1)


def test_adaptation_learns_the_inputs_motion_and_is_a_function_of_its_seed():
  config, model, params = _tiny_refin()
  triplets = adapt.collect_triplets(_moving_texture(10))
  assert config.data.crop_size == 32  # crops of 32x32 from the 32x48 frames
  before = _middle_error(model, params, triplets)
  same, stats0 = adapt.adapt_params(model, params, config, triplets, adapt.AdaptOptions(steps=0))
  assert same is params and stats0.steps == 0

  x = triplets.astype(np.float32) / 255
  average = float(np.mean(np.abs(0.5 * (x[:, 0] + x[:, 2]) - x[:, 1])))  # frame averaging: 0.234
  assert before > average  # the random model is worse than averaging the two inputs
  options = adapt.AdaptOptions(steps=100, learning_rate=3e-3, batch_size=4, seed=3)
  tuned, stats = adapt.adapt_params(model, params, config, triplets, options)
  after = _middle_error(model, tuned, triplets)
  assert stats.steps == 100 and stats.loss_after < 0.9 * stats.loss_before  # fixed batch: 174.1 -> 149.3
  assert after < 0.8 * average, (before, average, after)  # measured: 0.245 -> 0.158, averaging 0.234

  # The first 5 steps of that run, twice: the same bits each time, and not the parameters of 100 steps.
  five = [adapt.adapt_params(model, params, config, triplets, options, stop_after=5)[0] for _ in range(2)]
  flat = [np.concatenate([np.ravel(x) for x in jax.tree.leaves(p)]) for p in (*five, tuned)]
  np.testing.assert_array_equal(flat[0], flat[1])
  assert not np.array_equal(flat[0], flat[2])


def test_a_crop_larger_than_the_frames_is_cut_to_them(caplog):
  config, model, params = _tiny_refin()
  triplets = adapt.collect_triplets(_moving_texture(4, h=32, w=48))
  with caplog.at_level("INFO", logger="absl"):
    _, stats = adapt.adapt_params(model, params, config, triplets,
                                  adapt.AdaptOptions(steps=1, learning_rate=1e-3, batch_size=2, crop_size=40))
  assert stats.steps == 1 and np.isfinite(stats.loss_before) and np.isfinite(stats.loss_after)
  assert "adaptation: crops of 40x32, the whole frame on a side shorter than the 40x40 crop" in caplog.text
  transform = adapt._augmentation(config, 40, (32, 48))  # pylint: disable=protected-access
  assert transform.crop == (32, 40)
  element = transform({"frames": triplets[0], "times": np.array([0, 0.5, 1], np.float32), "id": "x"},
                      np.random.default_rng(0))
  assert element["frame0"].shape == (32, 40, 3)
  with pytest.raises(ValueError, match=r"triplets must be uint8 \(K, 3, H, W, 3\)"):
    adapt.adapt_params(model, params, config, triplets[:, :2], adapt.AdaptOptions(steps=1))
