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


def _np_ms_ssim(a, b):
  """NumPy/SciPy MS-SSIM written from Wang et al. 2003, independent of jaxvfi.metrics."""
  from scipy.signal import convolve2d  # pylint: disable=g-import-not-at-top
  g = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
  win = np.outer(g, g) / np.sum(g) ** 2
  filt = lambda x: np.stack([convolve2d(x[..., c], win, mode="valid") for c in range(x.shape[-1])], -1)
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
  out = 1.0
  for i, w in enumerate(weights):
    ma, mb = filt(a), filt(b)
    va, vb, cov = filt(a * a) - ma ** 2, filt(b * b) - mb ** 2, filt(a * b) - ma * mb
    cs = (2 * cov + c2) / (va + vb + c2)
    if i == len(weights) - 1:
      out *= max(np.mean((2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1) * cs), 0) ** w
    else:
      out *= max(np.mean(cs), 0) ** w
      h, wd = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
      a = a[:h, :wd].reshape(h // 2, 2, wd // 2, 2, -1).mean((1, 3))
      b = b[:h, :wd].reshape(h // 2, 2, wd // 2, 2, -1).mean((1, 3))
  return out


def test_ms_ssim_matches_numpy_oracle():
  a, b = _pair(3, shape=(2, 180, 190, 3))
  a, b = a / 255.0, b / 255.0
  ours = np.asarray(metrics.ms_ssim(jnp.asarray(a), jnp.asarray(b)))
  ref = [_np_ms_ssim(a[i], b[i]) for i in range(2)]
  np.testing.assert_allclose(ours, ref, atol=1e-4)
  np.testing.assert_allclose(metrics.ms_ssim(jnp.asarray(a), jnp.asarray(a)), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match="176"):
    metrics.ms_ssim(jnp.zeros((1, 100, 200, 3)), jnp.zeros((1, 100, 200, 3)))
  # frame_metrics leaves MS-SSIM out where it is undefined instead of failing the eval.
  small = metrics.frame_metrics(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), ("psnr", "ms_ssim"))
  assert set(small) == {"psnr"}


def test_lpips_without_weights_is_skipped_and_says_why():
  a, b = _pair(4)
  out = metrics.frame_metrics(jnp.asarray(a / 255.0), jnp.asarray(b / 255.0), ("psnr", "lpips"))
  assert sorted(out) == ["psnr"]
  assert "no LPIPS weights" in metrics.LPIPS_NO_WEIGHTS and "--arch=lpips_alex" in metrics.LPIPS_NO_WEIGHTS


def test_lpips_through_frame_metrics_scores_quantised_predictions(tmp_path):
  """With a weights file: frame_metrics' "lpips" is lpips_fn on the 8-bit-quantised prediction; identical images
  are at distance 0; too small frames are refused. (Parity with the lpips package: tests/test_parity.py.)"""
  from jaxvfi import weights  # pylint: disable=g-import-not-at-top
  path = tmp_path / "lpips_vgg.npz"
  assert weights.main(["random", "--arch=lpips_vgg", "--seed=1", f"--dst={path}"]) == 0
  fn = metrics.lpips_fn(path)
  assert fn.net == "vgg"
  a, b = _pair(5, shape=(2, 16, 24, 3))
  pred, target = jnp.asarray(b / 255.0 + 0.4 / 255.0), jnp.asarray(a / 255.0)
  out = metrics.frame_metrics(pred, target, ("lpips",), lpips=fn)
  np.testing.assert_allclose(out["lpips"], fn(metrics.quantize(pred), target), rtol=1e-6)
  np.testing.assert_allclose(fn(target, target), 0.0, atol=1e-6)
  assert np.all(np.asarray(out["lpips"]) > 0)
  with pytest.raises(ValueError, match="at least 16 px"):
    fn(target[:, :8], target[:, :8])
  with pytest.raises(ValueError, match="not an LPIPS v0.1"):
    metrics.lpips_net({"lin1.model.1.weight": np.zeros((1, 7, 1, 1))})
