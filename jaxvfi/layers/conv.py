"""A drop-in `lax.conv_general_dilated` that stays fast on XLA:CPU, where some convolution shapes are pathological.

Two cases at the deep levels of a UNet trained on crops, computed as an explicit im2col matrix product:

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

And one case on large feature maps, on the CPU backend only:

- On output maps of 64x64 pixels and more, XLA:CPU's filter gradient of a convolution with more than 32 output
  channels takes several times longer than the same gradient taken 32 output channels at a time (measured, not
  explained): 3x3, 51 -> 51 channels (SepConv's kernel heads) on 4x128x128 took 250-330 ms against 63 ms, and
  64 -> 128 channels 530-570 ms against 150 ms (BENCHMARKS.md, issue 15). Such convolutions keep their forward pass
  and input gradient, and take their filter gradient in slices of 32 output channels (the last one zero-padded).
  On GPU the convolution libraries pick their own algorithms, so the rule is off there.

:func:`conv_general_dilated` has the signature of `lax.conv_general_dilated`, and :data:`Conv` is `nn.Conv` using it,
with unchanged parameters.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")
# Output channels per slice of a split filter gradient, and the smallest output map (pixels per image) that gets one;
# both measured on XLA:CPU (module docstring).
FILTER_GRAD_SLICE = 32
FILTER_GRAD_MIN_PIXELS = 64 * 64


def _pads(lhs, rhs, padding):
  if isinstance(padding, str):
    return lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], (1, 1), padding)
  return tuple(tuple(p) for p in padding)


def _plain_nhwc(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                feature_group_count, batch_group_count):
  """A 2-D, NHWC/HWIO, stride-1, undilated, ungrouped convolution with non-negative padding."""
  if lhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1:
    return False
  if any(s != 1 for s in window_strides) or any(d != 1 for d in (lhs_dilation or ())) or \
      any(d != 1 for d in (rhs_dilation or ())):
    return False
  if dimension_numbers is None:
    return False
  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
  if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != nhwc:
    return False
  return min(x for p in _pads(lhs, rhs, padding) for x in p) >= 0


def _output_hw(lhs, rhs, padding):
  (pt, pb), (pl, pr) = _pads(lhs, rhs, padding)
  return lhs.shape[1] + pt + pb - rhs.shape[0] + 1, lhs.shape[2] + pl + pr - rhs.shape[1] + 1


def _im2col_applies(lhs, rhs, padding):
  # XLA swaps when the window has more taps than the (unpadded) input has pixels; the input gradient is a
  # convolution over the output, so the output's size counts too.
  kh, kw, _, cout = rhs.shape
  n, h, w, _ = lhs.shape
  ho, wo = _output_hw(lhs, rhs, padding)
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


def _split_filter_grad_applies(lhs, rhs, padding):
  ho, wo = _output_hw(lhs, rhs, padding)
  return (jax.default_backend() == "cpu" and rhs.shape[-1] > FILTER_GRAD_SLICE
          and ho * wo >= FILTER_GRAD_MIN_PIXELS)


def _lax_conv(lhs, rhs, padding, precision, preferred_element_type):
  return lax.conv_general_dilated(lhs, rhs, (1, 1), padding, dimension_numbers=_NHWC, precision=precision,
                                  preferred_element_type=preferred_element_type)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_split_filter_grad(lhs, rhs, padding, precision, preferred_element_type):
  return _lax_conv(lhs, rhs, padding, precision, preferred_element_type)


def _conv_split_filter_grad_fwd(lhs, rhs, padding, precision, preferred_element_type):
  return _lax_conv(lhs, rhs, padding, precision, preferred_element_type), (lhs, rhs)


def _conv_split_filter_grad_bwd(padding, precision, preferred_element_type, residuals, g):
  lhs, rhs = residuals
  conv = functools.partial(_lax_conv, padding=padding, precision=precision,
                           preferred_element_type=preferred_element_type)
  d_lhs, = jax.linear_transpose(lambda x: conv(x, rhs), lhs)(g)
  cout = rhs.shape[-1]
  extra = -cout % FILTER_GRAD_SLICE
  g_p = jnp.pad(g, ((0, 0),) * 3 + ((0, extra),))
  filter_grad = jax.linear_transpose(lambda w: conv(lhs, w),
                                     jax.ShapeDtypeStruct(rhs.shape[:3] + (FILTER_GRAD_SLICE,), rhs.dtype))
  slices = [filter_grad(g_p[..., s:s + FILTER_GRAD_SLICE])[0] for s in range(0, cout + extra, FILTER_GRAD_SLICE)]
  return d_lhs, jnp.concatenate(slices, axis=-1)[..., :cout].astype(rhs.dtype)


_conv_split_filter_grad.defvjp(_conv_split_filter_grad_fwd, _conv_split_filter_grad_bwd)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1, batch_group_count: int = 1,
                         precision: Any = None, preferred_element_type: Any = None) -> jax.Array:
  """`lax.conv_general_dilated` (same arguments and result), with two faster paths on small and large maps.

  Both are for 2-D, NHWC/HWIO, stride-1, undilated, ungrouped convolutions, and give the same values up to float32
  summation order:
  - an im2col matrix product when the input (or output) has fewer pixels than the kernel has taps (H·W < kh·kw),
    or the batch has no more pixels than the kernel has output channels (N·H·W <= C_out);
  - on the CPU backend, the filter gradient in slices of `FILTER_GRAD_SLICE` output channels when C_out is larger
    than that and the output map has at least `FILTER_GRAD_MIN_PIXELS` pixels.
  """
  if _plain_nhwc(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                 feature_group_count, batch_group_count):
    if _im2col_applies(lhs, rhs, padding):
      return _im2col(lhs, rhs, padding, precision, preferred_element_type)
    if _split_filter_grad_applies(lhs, rhs, padding):
      pads = tuple(tuple(int(v) for v in p) for p in _pads(lhs, rhs, padding))
      return _conv_split_filter_grad(lhs, rhs, pads, precision, preferred_element_type)
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                  rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                                  precision=precision, preferred_element_type=preferred_element_type)


# nn.Conv with the paths above; same parameters as nn.Conv.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
