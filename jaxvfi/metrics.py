"""Image quality metrics for evaluation: PSNR and SSIM (dm-pix), per example.

Conventions (those of the published VFI tables): images in [0, 1], predictions clipped and quantised to 8 bits
before scoring (as if saved to PNG), PSNR and SSIM computed per frame over all three channels and averaged over
frames. SSIM is Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, averaged over the
valid region and channels: it equals `skimage.metrics.structural_similarity(..., channel_axis=-1,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)` on uint8 images.
"""
from __future__ import annotations

import dm_pix as pix
import jax
import jax.numpy as jnp


def quantize(x: jax.Array) -> jax.Array:
  return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0) / 255.0


def psnr(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-example PSNR in dB of (N, H, W, C) images in [0, 1]."""
  return pix.psnr(a.astype(jnp.float32), b.astype(jnp.float32))


def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-example SSIM of (N, H, W, C) images in [0, 1] (H, W >= 11)."""
  return pix.ssim(a.astype(jnp.float32), b.astype(jnp.float32), max_val=1.0)


def frame_metrics(pred: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
  pred = quantize(pred)
  return {"psnr": psnr(pred, target), "ssim": ssim(pred, target)}


def baselines(batch: dict) -> dict[str, jax.Array]:
  """The two trivial interpolators every eval reports beside the model, so progress is readable.

  frame_average: (I0 + I1) / 2.  repeat_frame: the input frame nearer in time (I0 for t <= 0.5).
  """
  t = batch["t"].reshape(-1, 1, 1, 1)
  out = {}
  avg = frame_metrics(0.5 * (batch["frame0"] + batch["frame1"]), batch["target"])
  rep = frame_metrics(jnp.where(t <= 0.5, batch["frame0"], batch["frame1"]), batch["target"])
  for k, v in avg.items():
    out[f"frame_average_{k}"] = v
  for k, v in rep.items():
    out[f"repeat_frame_{k}"] = v
  return out
