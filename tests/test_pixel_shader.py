"""SepConv-GAN's pixel shader (paper 003, Algorithm 1): hand-computed pixels in its three regimes, both constant sets,
and the blend map against SciPy's Gaussian filter."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jaxvfi import pixel_shader as ps

I0 = np.array([0.10, 0.40, 0.70])       # per channel
SIGN = np.array([1.0, -1.0, 1.0])       # I1 = I0 + delta * SIGN: |I0 - I1| = delta in every channel
PRED = np.array([0.90, 0.50, 0.05])     # the model's frame, per channel


def _uniform(delta_255, size=12):
  """Flat frames whose mean channel difference is `delta_255` on the 0-255 scale everywhere: B = delta_255."""
  f0 = np.broadcast_to(I0, (1, size, size, 3))
  f1 = f0 + SIGN * delta_255 / 255.0
  pred = np.broadcast_to(PRED, (1, size, size, 3))
  return (jnp.asarray(a, jnp.float32) for a in (f0, f1, pred))


@pytest.mark.parametrize("delta,blend", [(1.0, 0.0),      # B = 1 < LO = 2: the inputs' average
                                         (2.0, 0.0),      # B = LO: still the average
                                         (4.0, 0.5),      # f = (4 - 2) / (6 - 2)
                                         (5.0, 0.75),     # f = (5 - 2) / 4
                                         (10.0, 1.0)])    # B > T = 6: the prediction untouched
def test_paper_constants_by_hand(delta, blend):
  f0, f1, pred = _uniform(delta)
  out = np.asarray(ps.pixel_shader(f0, f1, pred))
  average = I0 + SIGN * delta / 255.0 / 2
  want = average + blend * (PRED - average)  # each channel with its own average (the printed r/g/b swap is a typo)
  # float32 inputs: D is exact to ~1e-4 on the 0-255 scale
  np.testing.assert_allclose(out, np.broadcast_to(want, out.shape), atol=1e-5)


@pytest.mark.parametrize("delta,blend", [(0.2, 0.0),                 # D' = 8 * 0.2 = 1.6 < LO
                                         (0.5, (4.0 - 2) / 6.1),     # D' = 4
                                         (1.0, (8.0 - 2) / 6.1),     # D' = 8 < T = 8.1
                                         (40.0, 1.0)])               # D' = 8 * 32 (clipped) = 256 -> 255 > T
def test_code_constants_by_hand(delta, blend):
  f0, f1, pred = _uniform(delta)
  out = np.asarray(ps.pixel_shader(f0, f1, pred, "code"))
  average = I0 + SIGN * delta / 255.0 / 2
  want = average + blend * (PRED - average)
  # float32 inputs: D is exact to ~1e-4 on the 0-255 scale
  np.testing.assert_allclose(out, np.broadcast_to(want, out.shape), atol=1e-5)


def test_blend_map_is_a_21x21_gaussian_of_the_mean_difference_with_symmetric_edges():
  rng = np.random.default_rng(0)
  f0, f1 = rng.uniform(size=(2, 1, 30, 26, 3)).astype(np.float32)
  diff = np.abs(f0[0] - f1[0]).mean(-1) * 255
  # SciPy: sigma 10, radius int(1.0 * 10 + 0.5) = 10, "reflect" = (c b a | a b c), TensorFlow's SYMMETRIC.
  want = scipy.ndimage.gaussian_filter(diff.astype(np.float64), 10.0, truncate=1.0, mode="reflect")
  np.testing.assert_allclose(ps.blend_map(jnp.asarray(f0), jnp.asarray(f1))[0], want, rtol=1e-4, atol=1e-3)
  scaled = np.clip(8 * np.clip(diff, 0, 32), 0, 255)
  want = np.clip(scipy.ndimage.gaussian_filter(scaled.astype(np.float64), 10.0, truncate=1.0, mode="reflect"), 0, 255)
  np.testing.assert_allclose(ps.blend_map(jnp.asarray(f0), jnp.asarray(f1), "code")[0], want, rtol=1e-4, atol=1e-3)


def test_static_region_is_pulled_to_the_average_and_moving_one_kept():
  """Left half: identical inputs (B ~ 0 far from the edge); right half: very different ones (B >> T)."""
  f0 = np.full((1, 8, 64, 3), 0.5, np.float32)
  f1 = f0.copy()
  f1[:, :, 32:] = 0.0
  pred = np.random.default_rng(1).uniform(size=f0.shape).astype(np.float32)
  out = np.asarray(ps.pixel_shader(jnp.asarray(f0), jnp.asarray(f1), jnp.asarray(pred)))
  np.testing.assert_allclose(out[:, :, :10], 0.5, atol=1e-6)
  np.testing.assert_array_equal(out[:, :, 54:], pred[:, :, 54:])


def test_bad_input():
  x = jnp.zeros((1, 4, 4, 3))
  with pytest.raises(ValueError, match="one"):
    ps.pixel_shader(x, x, jnp.zeros((1, 4, 5, 3)))
  with pytest.raises(ValueError, match="paper"):
    ps.pixel_shader(x, x, x, "nope")
