"""The batch and prediction contract between data, models, losses, evaluators and tools (FILM's `model_lib` way).

Batch schemes (numpy float32 in [0, 1], channels last; B examples):
  triplet (ReFIn, Super-SloMo, SepConv, SepConv-GAN):
    frame0, frame1: (B, H, W, 3) the frames at t = 0 and t = 1;  target: (B, H, W, 3) the frame at t;  t: (B,).
    Predictions: image (B, H, W, 3), plus the family's intermediates (flows, kernels, ...).
  restoration sequence (DSFN):
    blurry: (B, N, h, w, 3) blurry low-resolution inputs;  sharp: (B, 2N-1, H, W, 3) sharp high-resolution ground
    truth at sharp_times;  blurry_times: (B, N);  sharp_times: (B, 2N-1).
    Predictions: image (B, T, H, W, 3), the frames scored against the ground truth, plus per-level outputs.
  reference SR (SDAN):
    lr_raw: (B, c, c, 4) packed RAW;  lr_rgb: (B, 2c, 2c, 3) the input shot's camera RGB;  hr_rgb: (B, 8c, 8c, 3)
    the 4x target (see `jaxvfi.transforms.sdan`).  Predictions: image (B, 8c, 8c, 3), plus the aligned head and mask.

Every prediction dict holds "image": the frames the evaluators compare with the ground truth.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def triplet_example_batch(config, batch_size: int = 1) -> dict[str, jax.Array]:
  """A zero triplet batch; parameter shapes do not depend on the frame size (`data.crop_size`, 64 when none)."""
  s = int(config.data.get("crop_size") or 0) or 64
  img = jnp.zeros((batch_size, s, s, 3), jnp.float32)
  return {"frame0": img, "frame1": img, "target": img, "t": jnp.full((batch_size,), 0.5, jnp.float32)}


def is_triplet(batch) -> bool:
  """Whether `batch` follows the triplet scheme: two (B, H, W, C) frames and a time per example."""
  return "t" in batch and all(k in batch and jnp.ndim(batch[k]) == 4 for k in ("frame0", "frame1"))


def rotate180(x):
  """An image array (..., H, W, C) rotated by 180 degrees (flipped in H and W); arrays of rank < 4 (t, times) are
  returned unchanged."""
  return jnp.flip(x, (-3, -2)) if jnp.ndim(x) >= 4 else x
