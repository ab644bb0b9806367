"""The zero-padded bilinear sampler of the `jnp` references (`warp.backward_warp_reference`, `deform`'s references).

Not a kernel: plain `jnp`, differentiable by ordinary autodiff (its input gradient is a scatter-add). The Pallas
kernels sample inside the kernel with masked pointer loads instead.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def bilinear_zeros(x_flat: jax.Array, py: jax.Array, px: jax.Array, h: int, w: int) -> jax.Array:
  """Bilinear samples of an image at (py, px), each of the four corners outside the image contributing zero.

  Group g of the channels is sampled at its own positions (deformable groups; G = 1 for a plain warp). Corner indices
  are clipped before the gather and masked after it, so positions may lie anywhere as long as floor(p) + 1 fits int32.

  Args:
    x_flat: (N, H*W, G, C') image, pixels flattened row-major; any float dtype.
    py, px: (N, H', W', G) float32 sample rows and columns in pixels (integer values are pixel centres).
    h, w: the image's height H and width W.

  Returns:
    (N, H', W', G, C') float32 samples.
  """
  n, _, groups, c = x_flat.shape
  y0f = jnp.floor(py)
  x0f = jnp.floor(px)
  ly = py - y0f
  lx = px - x0f
  y0 = y0f.astype(jnp.int32)
  x0 = x0f.astype(jnp.int32)
  out = jnp.zeros(py.shape + (c,), jnp.float32)
  for a, wy in ((0, 1.0 - ly), (1, ly)):
    for b, wx in ((0, 1.0 - lx), (1, lx)):
      yi = y0 + a
      xi = x0 + b
      ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
      idx = (jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)).reshape(n, -1, groups, 1)
      vals = jnp.take_along_axis(x_flat, idx, axis=1).reshape(py.shape + (c,))
      out = out + vals.astype(jnp.float32) * jnp.where(ok, wy * wx, 0.0)[..., None]
  return out
