"""Tests of the per-example augmentation ops (jaxvfi/augment.py).

Oracles: frames whose pixels hold their own coordinates (crops, offsets, flips read back from the values), naive
per-pixel loops (colour adjustment), jax.image.resize (bicubic and bilinear resampling), the paper's numbers
(327x184 ... 1280x720; N(0, 0.01)) and sample statistics of a large draw (noise).
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvfi import augment
from jaxvfi import input_pipeline


def coordinate_frames(num_frames=3, size=(20, 24), scale=1):
  """int32 (T, H, W, 3): pixel (y, x) of frame k holds (y, x, k); `scale` multiplies the size, not the values."""
  y, x = np.meshgrid(np.arange(size[0] * scale), np.arange(size[1] * scale), indexing="ij")
  return np.stack([np.stack([y, x, np.full_like(y, k)], -1) for k in range(num_frames)]).astype(np.int32)


def corner(frame):
  return tuple(int(v) for v in frame[0, 0, :2])


def test_random_crop_one_window_for_all_frames_every_position():
  frames = coordinate_frames(4)
  windows = set()
  for seed in range(300):
    out = augment.random_crop(frames, np.random.default_rng(seed), (16, 20))
    assert out.shape == (4, 16, 20, 3)
    y, x = corner(out[0])
    windows.add((y, x))
    for k in range(4):
      np.testing.assert_array_equal(out[k], frames[k, y:y + 16, x:x + 20])
  assert windows == set(itertools.product(range(5), range(5)))  # 20 - 16 + 1 rows, 24 - 20 + 1 columns.
  with pytest.raises(ValueError, match="larger"):
    augment.random_crop(frames, np.random.default_rng(0), (21, 8))


def test_random_aligned_crop_keeps_resolutions_aligned():
  arrays = [coordinate_frames(1, (6, 8), scale=s)[0] for s in (1, 2, 8)]  # SDAN: RAW grid, 2x RGB, 8x HR.
  seen = set()
  for seed in range(60):
    raw, rgb, hr = augment.random_aligned_crop(arrays, (1, 2, 8), np.random.default_rng(seed), (4, 4))
    assert raw.shape == (4, 4, 3) and rgb.shape == (8, 8, 3) and hr.shape == (32, 32, 3)
    y, x = corner(raw)
    seen.add((y, x))
    assert corner(rgb) == (2 * y, 2 * x) and corner(hr) == (8 * y, 8 * x)
    np.testing.assert_array_equal(hr, arrays[2][8 * y:8 * y + 32, 8 * x:8 * x + 32])
  assert seen == set(itertools.product(range(3), range(5)))
  with pytest.raises(ValueError, match="base grid"):
    augment.random_aligned_crop([arrays[0], arrays[2][:-1]], (1, 8), np.random.default_rng(0), (2, 2))


def test_random_flip_flips_every_frame_and_array_alike():
  frames, other = coordinate_frames(3), coordinate_frames(2)
  ys, xs = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
  states = set()
  for seed in range(40):
    out, out_other = augment.random_flip([frames, other], np.random.default_rng(seed), True, True)
    flip_v, flip_h = corner(out[0])[0] == 19, corner(out[0])[1] == 23
    states.add((flip_v, flip_h))
    for image in list(out) + list(out_other):
      np.testing.assert_array_equal(image[..., 0], ys[::-1] if flip_v else ys)
      np.testing.assert_array_equal(image[..., 1], xs[:, ::-1] if flip_h else xs)
  assert states == set(itertools.product([False, True], repeat=2))
  (unflipped,) = augment.random_flip([frames], np.random.default_rng(0), False, False)
  np.testing.assert_array_equal(unflipped, frames)


def test_random_channel_reverse_reverses_every_frame_or_none():
  stack = np.arange(3 * 4 * 5 * 3, dtype=np.uint8).reshape(3, 4, 5, 3)
  outcomes = []
  for seed in range(40):
    out = augment.random_channel_reverse(stack, np.random.default_rng(seed))
    reversed_ = bool(out[0, 0, 0, 0] == stack[0, 0, 0, 2])
    outcomes.append(reversed_)
    np.testing.assert_array_equal(out, stack[..., [2, 1, 0]] if reversed_ else stack)
  assert 5 < sum(outcomes) < 35


def test_random_temporal_swap_swaps_and_maps_t():
  stack = coordinate_frames(3)
  outcomes = set()
  for seed in range(20):
    out, t = augment.random_temporal_swap(stack, 0.25, np.random.default_rng(seed))
    order = tuple(int(out[k, 0, 0, 2]) for k in range(3))
    assert (order, t) in [((0, 1, 2), 0.25), ((2, 1, 0), 0.75)]
    outcomes.add(order)
  assert len(outcomes) == 2


class _Edge:
  """A stand-in generator whose `integers(low, high)` returns the lowest or the highest value."""

  def __init__(self, highest):
    self.highest = highest

  def integers(self, low, high):
    return high - 1 if self.highest else low


def test_random_resize_paper_bounds_and_aspect():
  frame = np.zeros((1, 720, 1280, 3), np.uint8)
  min_height = 160 + 2 * 12  # Paper 003: 160x160 crops, offsets up to 12.
  assert augment.random_resize(frame, _Edge(highest=False), min_height).shape == (1, 184, 327, 3)  # 327x184.
  assert augment.random_resize(frame, _Edge(highest=True), min_height).shape == (1, 720, 1280, 3)  # 1280x720.
  frames = np.random.default_rng(0).integers(0, 256, (3, 30, 40, 3), dtype=np.uint8)
  heights = set()
  for seed in range(80):
    out = augment.random_resize(frames, np.random.default_rng(seed), 21)
    height, width = out.shape[1:3]
    heights.add(height)
    assert out.shape == (3, height, height * 40 // 30, 3) and out.dtype == np.uint8  # One size for all frames.
    if height != 30:  # Bilinear, area-aware when shrinking: jax's antialiased "linear" up to 8-bit rounding.
      expected = jax.image.resize(jnp.asarray(frames, jnp.float32), out.shape, "linear", antialias=True)
      error = np.abs(out - np.asarray(expected))
      assert error.max() < 1.05 and error.mean() < 0.4  # Pillow rounds to uint8 with fixed-point weights.
  assert heights == set(range(21, 31))
  with pytest.raises(ValueError, match="at least 31"):
    augment.random_resize(frames, np.random.default_rng(0), 31)


class _NoDraw:
  def integers(self, low, high):
    raise AssertionError("drew a number")


def test_random_downscale_bounds_floor_and_identity():
  frames = np.random.default_rng(1).integers(0, 256, (3, 256, 448, 3), dtype=np.uint8)
  # Floor max(ceil(0.5 * 256), 64, ceil(64 * 256 / 448)) = 128 rows, width 128 * 448 // 256 = 224.
  assert augment.random_downscale(frames, _Edge(highest=False), 0.5, (64, 64)).shape == (3, 128, 224, 3)
  assert augment.random_downscale(frames, _Edge(highest=True), 0.5, (64, 64)) is frames  # Height 256: unchanged.
  # A wide crop raises the floor to ceil(300 * 256 / 448) = 172 rows: 172 x 301 still covers 300 columns.
  assert augment.random_downscale(frames, _Edge(highest=False), 0.2, (64, 300)).shape == (3, 172, 301, 3)
  assert augment.random_downscale(frames, _NoDraw(), 1.0, (64, 64)) is frames
  assert augment.random_downscale(frames[:, :64], _NoDraw(), 0.5, (64, 64)).shape == (3, 64, 448, 3)
  # One draw: the same as random_resize from the floor with the same generator.
  out = augment.random_downscale(frames, np.random.default_rng(7), 0.5, (64, 64))
  np.testing.assert_array_equal(out, augment.random_resize(frames, np.random.default_rng(7), 128))
  for bad in (0.0, -1.0, 1.5):
    with pytest.raises(ValueError, match="min_scale"):
      augment.random_downscale(frames, np.random.default_rng(0), bad, (64, 64))


@pytest.mark.parametrize("independent", [False, True])
def test_flow_crop_offsets_shift_frame0_and_frame1_by_the_drawn_amounts(independent):
  stack = coordinate_frames(3, size=(190, 200))
  offsets0, differ = set(), False
  for seed in range(150):
    windows = augment.draw_flow_crop(np.random.default_rng(seed), (190, 200), 160, 12, independent)
    out = augment.random_flow_crop(stack, np.random.default_rng(seed), 160, 12, independent)
    assert out.shape == (3, 160, 160, 3)
    (dy0, dx0), (dy1, dx1) = windows.offset0, windows.offset1
    assert corner(out[1]) == (windows.y, windows.x)  # The target's window.
    assert corner(out[0]) == (windows.y - dy0, windows.x - dx0)
    assert corner(out[2]) == (windows.y + dy1, windows.x + dx1)
    assert [int(out[k, 0, 0, 2]) for k in range(3)] == [0, 1, 2]
    np.testing.assert_array_equal(out[0], stack[0, windows.y - dy0:windows.y - dy0 + 160,
                                                windows.x - dx0:windows.x - dx0 + 160])
    offsets0.add(windows.offset0)
    differ |= windows.offset0 != windows.offset1
  every = set(range(13))
  assert {dy for dy, _ in offsets0} == every and {dx for _, dx in offsets0} == every  # [0, 12] both axes.
  assert differ == independent  # Symmetric (author's loader): frame1 moves by exactly -frame0's offset.
  with pytest.raises(ValueError, match="184x184"):
    augment.draw_flow_crop(np.random.default_rng(0), (183, 300), 160, 12)


def naive_adjust(frames, b, c, s):
  """Per-pixel loop of the documented colour map (oracle of adjust_colors)."""
  clip = lambda v: min(max(v, 0.0), 1.0)
  luma = lambda p: 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
  bright = [[[[clip(v * b) for v in px] for px in row] for row in frame] for frame in frames.tolist()]
  mean = np.mean([luma(px) for frame in bright for row in frame for px in row])
  contrast = [[[[clip(c * v + (1 - c) * mean) for v in px] for px in row] for row in frame] for frame in bright]
  return np.array([[[[clip(s * v + (1 - s) * luma(px)) for v in px] for px in row] for row in frame]
                   for frame in contrast])


def test_adjust_colors_matches_naive_loop_and_identity():
  frames = np.random.default_rng(1).random((2, 3, 4, 3)).astype(np.float32)
  for factors in [(1.2, 0.8, 1.1), (0.8, 1.2, 0.9), (1.0, 1.0, 0.0)]:
    np.testing.assert_allclose(augment.adjust_colors(frames, *factors), naive_adjust(frames, *factors), atol=1e-6)
  np.testing.assert_allclose(augment.adjust_colors(frames, 1, 1, 1), frames, atol=1e-7)
  gray = augment.adjust_colors(frames, 1, 1, 0)  # Saturation 0: every pixel its luma.
  np.testing.assert_allclose(gray, np.repeat((frames @ augment.LUMA)[..., None], 3, -1), atol=1e-6)


def test_color_jitter_one_draw_for_all_frames():
  image = np.random.default_rng(2).random((5, 6, 3)).astype(np.float32)
  factors = set()
  for seed in range(30):
    out = augment.color_jitter(np.stack([image, image]), np.random.default_rng(seed), 0.2)
    np.testing.assert_array_equal(out[0], out[1])  # The same map on every frame.
    b, c, s = np.random.default_rng(seed).uniform(0.8, 1.2, size=3)
    assert all(0.8 <= f <= 1.2 for f in (b, c, s))
    np.testing.assert_allclose(out, naive_adjust(np.stack([image, image]), b, c, s), atol=1e-6)
    factors.add(round(float(b), 6))
  assert len(factors) == 30
  same = np.stack([image])
  assert augment.color_jitter(same, np.random.default_rng(0), 0.0) is same  # Strength 0: untouched.


def test_bicubic_downscale_equals_jax_antialiased_bicubic():
  images = np.random.default_rng(3).random((2, 3, 16, 24, 3)).astype(np.float32)  # (B, T, H, W, C)
  out = augment.bicubic_downscale(images, 4)
  assert out.shape == (2, 3, 4, 6, 3) and out.dtype == np.float32
  expected = jax.image.resize(jnp.asarray(images), out.shape, "bicubic", antialias=True)
  np.testing.assert_allclose(out, np.asarray(expected), atol=1e-6)
  flat = np.full((8, 8, 3), 0.25, np.float32)
  np.testing.assert_allclose(augment.bicubic_downscale(flat, 4), 0.25, atol=1e-7)  # Weights sum to one.
  with pytest.raises(ValueError, match="divisible by 4"):
    augment.bicubic_downscale(images[:, :, :15], 4)


def test_gaussian_noise_statistics():
  std = input_pipeline.PRESETS["dsfn"].params["noise_std"]
  assert std ** 2 == pytest.approx(0.01)  # N(0, 0.01) read as (mean, variance).
  base = np.full((1000, 1000), 0.05, np.float32)
  out = augment.gaussian_noise(base, np.random.default_rng(4), std)
  noise = (out - base).astype(np.float64)
  assert out.dtype == np.float32 and out.min() < 0  # Not clipped.
  assert abs(noise.mean()) < 5 * std / np.sqrt(noise.size)
  assert noise.std() == pytest.approx(std, rel=0.005)
  assert np.mean(np.abs(noise) < std) == pytest.approx(0.6827, abs=0.003)  # Gaussian, not uniform: 1-sigma mass.
  assert augment.gaussian_noise(base, np.random.default_rng(4), 0.0) is base


def test_normalize_raw_hand_values():
  raw = np.array([[[512, 600, 16383, 0], [8447, 700, 20000, 1000]]], np.uint16)
  black = np.array([512, 600, 512, 500], np.float32)
  out = augment.normalize_raw(raw, black, 16383.0)
  expected = [[[0.0, 0.0, 1.0, 0.0], [(8447 - 512) / (16383 - 512), (700 - 600) / (16383 - 600), 1.0,
                                      (1000 - 500) / (16383 - 500)]]]
  np.testing.assert_allclose(out, expected, rtol=1e-6)
  assert out.dtype == np.float32
