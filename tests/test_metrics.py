"""PSNR/SSIM agree with scikit-image on uint8 images (issue: within 0.01 dB and 1e-3)."""
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import metrics as skm

from jaxvfi import metrics


def _pair(seed, shape=(2, 40, 48, 3)):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 256, shape).astype(np.uint8)
  noise = rng.normal(0, 12, shape)
  b = np.clip(a.astype(np.float64) + noise, 0, 255).astype(np.uint8)
  return a, b


@pytest.mark.parametrize("seed", [0, 1])
def test_psnr_matches_skimage(seed):
  a, b = _pair(seed)
  ours = np.asarray(metrics.psnr(jnp.asarray(a / 255.0), jnp.asarray(b / 255.0)))
  ref = [skm.peak_signal_noise_ratio(a[i], b[i], data_range=255) for i in range(len(a))]
  np.testing.assert_allclose(ours, ref, atol=0.01)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_skimage(seed):
  a, b = _pair(seed)
  ours = np.asarray(metrics.ssim(jnp.asarray(a / 255.0), jnp.asarray(b / 255.0)))
  ref = [skm.structural_similarity(a[i], b[i], channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, data_range=255) for i in range(len(a))]
  np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_quantize_and_baselines():
  f0 = jnp.zeros((1, 16, 16, 3))
  f1 = jnp.ones((1, 16, 16, 3))
  target = jnp.full((1, 16, 16, 3), 0.5)
  out = metrics.baselines({"frame0": f0, "frame1": f1, "target": target, "t": jnp.array([0.5])})
  # Frame average is exact (0.5 quantises to 128/255, PSNR = -10 log10((0.5 - 128/255)^2)).
  expected = -10 * np.log10((0.5 - 128 / 255) ** 2)
  np.testing.assert_allclose(out["frame_average_psnr"], [expected], rtol=1e-5)
  # Repeat frame (I0) is off by 0.5 everywhere: PSNR = -10 log10(0.25).
  np.testing.assert_allclose(out["repeat_frame_psnr"], [-10 * np.log10(0.25)], rtol=1e-5)
