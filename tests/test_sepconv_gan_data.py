"""The `sepconv_gan` augmentation preset (paper 003 §4) and the authors' code's options: the 720-line cap of the random
resize, one-of-three flip/reverse, the motion/variance filter and separate real frames for the discriminator.

Oracles: the paper's numbers (327x184 ... 1280x720), frames whose pixels encode their position and frame index
(so every flip, swap and crop is readable), and MSE / std values computed by hand.
"""
from __future__ import annotations

import numpy as np
import pytest

from jaxvfi import augment
from jaxvfi import data_config
from jaxvfi import input_pipeline
from jaxvfi.datasets import synthetic


class _Edge:
  """A stand-in generator whose `integers(low, high)` returns the lowest or the highest value."""

  def __init__(self, highest):
    self.highest = highest

  def integers(self, low, high):
    return high - 1 if self.highest else low


def test_random_resize_caps_tall_frames_at_720_lines():
  full_hd = np.zeros((1, 1080, 1920, 3), np.uint8)
  assert augment.random_resize(full_hd, _Edge(highest=True), 184, max_height=720).shape == (1, 720, 1280, 3)
  assert augment.random_resize(full_hd, _Edge(highest=False), 184, max_height=720).shape == (1, 184, 327, 3)
  small = np.zeros((1, 256, 448, 3), np.uint8)  # Vimeo-90K: never enlarged
  assert augment.random_resize(small, _Edge(highest=True), 184, max_height=720).shape == (1, 256, 448, 3)
  with pytest.raises(ValueError, match="at least 184"):
    augment.random_resize(full_hd, _Edge(highest=True), 184, max_height=100)


def test_one_of_three_flip_or_reverse():
  stack = np.arange(3 * 2 * 2 * 1).reshape(3, 2, 2, 1)
  seen = {}
  for seed in range(60):
    out, t = augment.random_flip_or_reverse(stack, 0.25, np.random.default_rng(seed))
    for name, (want, want_t) in {"v": (stack[:, ::-1], 0.25), "h": (stack[:, :, ::-1], 0.25),
                                 "reverse": (stack[::-1], 0.75)}.items():
      if np.array_equal(out, want) and t == want_t:
        seen[name] = seen.get(name, 0) + 1
  assert set(seen) == {"v", "h", "reverse"} and sum(seen.values()) == 60  # always exactly one of the three


def test_motion_filter_thresholds():
  rng = np.random.default_rng(0)
  target = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)          # std ~ 74 > 16
  moved = np.roll(target, 3, axis=1)
  assert augment.passes_motion_filter(np.stack([moved, target, np.roll(target, -3, axis=1)]))
  assert not augment.passes_motion_filter(np.stack([target, target, moved]))    # frame0 = target: MSE 0
  flat = np.full((16, 16, 3), 100, np.uint8)
  flat[:8] = 120                                                       # std 10 per channel <= 16
  assert not augment.passes_motion_filter(np.stack([flat * 0, flat, flat * 2]))
  # By hand: frames 0 / 20 / 40 on a target of std 10: both MSEs are 400 > 220, but the std fails; at 8 it passes.
  assert augment.passes_motion_filter(np.stack([flat - 20, flat, flat + 20]), min_std=8.0)
  assert not augment.passes_motion_filter(np.stack([flat - 10, flat, flat + 10]), min_std=8.0)  # MSE 100


def _clips(count, size, moving):
  """Frame k of clip c: pixel (y, x) = (y, x, 8 c + k); a `moving` clip adds 40 k to channel 0 (a large MSE)."""
  y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
  clips = []
  for c in range(count):
    frames = [np.stack([y + (40 * k if moving[c] else 0), x, np.full_like(y, 8 * c + k)], -1) for k in range(3)]
    clips.append({"frames": np.clip(np.stack(frames), 0, 255).astype(np.uint8), "times": synthetic.clip_times(3),
                  "id": b"%d" % c})
  return clips


def _config(**args):
  config = data_config.default_data_config()
  config.augmentation = "sepconv_gan"
  config.augmentation_args = dict(crop_size=8, max_offset=2, random_resize=False, **args)
  return config


def test_preset_options_through_the_pipeline():
  clips = _clips(4, 24, moving=[True] * 4)
  batch = input_pipeline.make_train_dataset(clips, _config(flip_mode="one_of_three"), 64, seed=1)[0]
  kinds = set()
  for i in range(64):
    f0, target, f1 = (np.rint(batch[k][i] * 255).astype(int) for k in ("frame0", "target", "frame1"))
    reversed_ = f0[0, 0, 2] % 8 == 2
    rows_up = target[1, 0, 0] < target[0, 0, 0]
    cols_left = target[0, 1, 1] < target[0, 0, 1]
    assert reversed_ + rows_up + cols_left == 1  # exactly one of the three, never none, never two
    kinds.add((reversed_, rows_up, cols_left))
  assert len(kinds) == 3 and set(batch) == {"frame0", "frame1", "target", "t"}

  # Clip 1 is static (MSE 0 between its frames): the filter redraws and keeps its last draw, the others pass.
  static = _clips(2, 24, moving=[True, False])
  config = _config(motion_filter=True, motion_filter_std=0.0, random_flip_h=False, random_flip_v=False,
                   temporal_swap=False)
  filtered = input_pipeline.make_train_dataset(static, config, 2, seed=0)[0]
  config.augmentation_args.motion_filter = False
  plain = input_pipeline.make_train_dataset(static, config, 2, seed=0)[0]
  for i in range(2):
    clip = int(np.rint(plain["frame0"][i, 0, 0, 2] * 255)) // 8
    same = np.array_equal(filtered["frame0"][i], plain["frame0"][i])
    assert same == (clip == 0)  # the moving clip passes its first draw; the static one is redrawn

  batch = input_pipeline.make_train_dataset(clips, _config(discriminator_frames=True), 8, seed=2)[0]
  assert batch["real"].shape == batch["target"].shape == (8, 8, 8, 3)
  for i in range(8):
    real = np.rint(batch["real"][i] * 255).astype(int)
    clip, frame = divmod(int(real[0, 0, 2]), 8)
    assert 0 <= frame < 3 and real[0, 0, 2] // 8 == int(np.rint(batch["target"][i, 0, 0, 2] * 255)) // 8
    assert (np.diff(real[:, 0, 1]) == 0).all() and (np.diff(real[0, :, 1]) == 1).all()  # an unflipped crop
  with pytest.raises(ValueError, match="flip_mode"):
    input_pipeline.make_train_dataset(clips, _config(flip_mode="all"), 8, seed=0)
