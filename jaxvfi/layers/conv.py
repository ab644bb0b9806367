"""A drop-in `lax.conv_general_dilated` that stays fast on CPU for the small feature maps of a UNet's deep levels.

Two cases, both at the deep levels of a UNet trained on crops:

- XLA swaps the two operands of a convolution whose input has fewer pixels than its kernel window (a 3x3 kernel on a
  2x2 feature map: the bottleneck of a 5-level UNet on 64x64 crops). The swapped convolution has a reversed window,
  which XLA:CPU cannot hand to its Eigen/XNNPACK convolution kernels, so it runs in a generic loop: measured ~100x
  slower than the same product as a matrix multiply (BENCHMARKS.md, "Where the time goes"). Training steps hit it
  twice per such layer, in the forward pass and in the input gradient.
- When the batch has no more pixels than the filter has output channels (4x4 and 8x8 maps of 512 and 256 channels at
  batch 4), the input gradient of a convolution first copies its large filter reversed and transposed (a 3x3x1024x512
  filter is 19 MB); those copies took 15% of a Super-SloMo train step on CPU. A matrix product's gradients read the
  filter as stored, and the patches of such maps are smaller than the filter: the step got about 10% faster
  (BENCHMARKS.md, issue 15).

:func:`conv_general_dilated` computes those convolutions as an explicit im2col matrix product and every other one
with `lax.conv_general_dilated`. It has the signature of the latter, so a Flax layer takes it as
`nn.Conv(..., conv_general_dilated=conv.conv_general_dilated)` with unchanged parameters.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def _pads(lhs, rhs, padding):
  if isinstance(padding, str):
    return lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], (1, 1), padding)
  return tuple(tuple(p) for p in padding)


def _im2col_applies(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                    feature_group_count):
  if lhs.ndim != 4 or feature_group_count != 1:
    return False
  if any(s != 1 for s in window_strides) or any(d != 1 for d in (lhs_dilation or ())) or \
      any(d != 1 for d in (rhs_dilation or ())):
    return False
  if dimension_numbers is None:
    return False
  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != nhwc:
    return False
  # XLA swaps when the window has more taps than the (unpadded) input has pixels; the input gradient is a
  # convolution over the output, so the output's size counts too.
  (pt, pb), (pl, pr) = _pads(lhs, rhs, padding)
  if min(pt, pb, pl, pr) < 0:
    return False
  kh, kw, _, cout = rhs.shape
  n, h, w, _ = lhs.shape
  ho, wo = h + pt + pb - kh + 1, w + pl + pr - kw + 1
  # Second test: patches no larger than the filter, whose reversed, transposed copy the input gradient would make.
  return min(h * w, ho * wo) < kh * kw or n * h * w <= cout


def _im2col(lhs, rhs, padding, precision, preferred_element_type):
  kh, kw, cin, cout = rhs.shape
  (pt, pb), (pl, pr) = _pads(lhs, rhs, padding)
  x = jnp.pad(lhs, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  cols = jnp.concatenate([x[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)], axis=-1)
  return lax.dot_general(cols, rhs.reshape(kh * kw * cin, cout), (((3,), (0,)), ((), ())), precision=precision,
                         preferred_element_type=preferred_element_type)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1, batch_group_count: int = 1,
                         precision: Any = None, preferred_element_type: Any = None) -> jax.Array:
  """`lax.conv_general_dilated` (same arguments and result) with an im2col path for small feature maps.

  The im2col path is taken for 2-D, NHWC/HWIO, stride-1, undilated, ungrouped convolutions whose input (or output)
  has fewer pixels than the kernel has taps (H·W < kh·kw), or whose batch has no more pixels than the kernel has
  output channels (N·H·W <= C_out); it gives the same values up to float32 summation order.
  """
  if batch_group_count == 1 and _im2col_applies(lhs, rhs, window_strides, padding, lhs_dilation,
                                                rhs_dilation, dimension_numbers, feature_group_count):
    return _im2col(lhs, rhs, padding, precision, preferred_element_type)
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                  rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                                  precision=precision, preferred_element_type=preferred_element_type)

