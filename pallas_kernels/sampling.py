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
  n, pixels, groups, c = x_flat.shape
  # Groups fold into the batch, so each gather is (batch, pixels, channels) with one index per output pixel: the
  # graph of the plain warp, whose training runs (the quickstart's PSNR) stay bit-identical to before this sampler was
  # shared.
  image = jnp.moveaxis(x_flat, 2, 1).reshape(n * groups, pixels, c)
  shape = py.shape[1:-1]
  y = jnp.moveaxis(py, -1, 1).reshape((n * groups,) + shape)
  x = jnp.moveaxis(px, -1, 1).reshape((n * groups,) + shape)
  y0f = jnp.floor(y)
  x0f = jnp.floor(x)
  wy1 = y - y0f
  wx1 = x - x0f
  x0i = x0f.astype(jnp.int32)
  y0i = y0f.astype(jnp.int32)
  out = jnp.zeros((n * groups,) + shape + (c,), jnp.float32)
  for dy, wy in ((0, 1.0 - wy1), (1, wy1)):
    for dx, wx in ((0, 1.0 - wx1), (1, wx1)):
      xi = x0i + dx
      yi = y0i + dy
      valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
      idx = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
      vals = jnp.take_along_axis(image, idx.reshape(n * groups, -1, 1), axis=1).reshape(out.shape)
      weight = jnp.where(valid, wy * wx, 0.0)
      out = out + vals.astype(jnp.float32) * weight[..., None]
  return jnp.moveaxis(out.reshape((n, groups) + shape + (c,)), 1, -2)
