"""Backward warping by bilinear sampling (Jaderberg et al. 2015, the `bw(., .)` of Eq. (3), ReFIn).

out[n, y, x, c] = bilinear sample of image[n, :, :, c] at (x + dx, y + dy), with `flow[..., 0] = dx` and
`flow[..., 1] = dy` in pixels. Sample positions are pixel centres at integer coordinates: PyTorch's
`grid_sample(align_corners=True)` on the grid linspace(-1, 1) + flow * 2 / (W - 1), as sniklaus/pytorch-pwc's
`backwarp` does. Super-SloMo's released `backWarp` does not: its grid 2 (x + u) / W - 1 under `grid_sample`'s default
`align_corners=False` samples at x + u - 0.5 (both axes); `jaxvfi.models.superslomo` reproduces that by shifting the
flow (`warp_sample_shift=-0.5`).

Border behaviour:
  * ``padding="zeros"``: each of the four bilinear corners that falls outside the image contributes zero, so a
    sample half a pixel outside the border is half as bright (`grid_sample(padding_mode="zeros")`).
  * ``padding="border"``: the sample position is clamped to [0, W-1] x [0, H-1] first
    (`grid_sample(padding_mode="border")`); the flow gradient is zero where the clamp is active.
"""
from __future__ import annotations

import functools

import jax
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt
import jax.numpy as jnp

try:  # public since jax 0.4; guarded so that a move costs only the symbolic-zero cotangent check below
  from jax.custom_derivatives import SymbolicZero  # pylint: disable=g-import-not-at-top
except ImportError:  # pragma: no cover
  SymbolicZero = ()  # isinstance(x, ()) is always False

from pallas_kernels import common
from pallas_kernels import sampling

PADDINGS = ("zeros", "border")


def _check(image, flow, padding):
  if padding not in PADDINGS:
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
  if image.ndim != 4 or flow.ndim != 4 or flow.shape[-1] != 2 or flow.shape[:3] != image.shape[:3]:
    raise ValueError(f"backward_warp expects image (N,H,W,C) and flow (N,H,W,2) with the same N,H,W; "
                     f"got image {image.shape} and flow {flow.shape}")


def backward_warp_reference(image: jax.Array, flow: jax.Array, padding: str = "zeros") -> jax.Array:
  """`jnp` reference: four gathers. Differentiable by ordinary autodiff (its image gradient is a scatter-add)."""
  _check(image, flow, padding)
  n, h, w, c = image.shape
  dtype = image.dtype
  flow = flow.astype(jnp.float32)
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
  x = xs[None] + flow[..., 0]
  y = ys[None] + flow[..., 1]
  if padding == "border":
    x = jnp.clip(x, 0.0, w - 1.0)
    y = jnp.clip(y, 0.0, h - 1.0)
  out = sampling.bilinear_zeros(image.reshape(n, h * w, 1, c), y[..., None], x[..., None], h, w)
  return out.reshape(n, h, w, c).astype(dtype)


def backward_warp(image: jax.Array, flow: jax.Array, *, padding: str = "zeros", impl: str = "auto") -> jax.Array:
  """Backward warp of `image` (N,H,W,C) by `flow` (N,H,W,2) = (dx, dy) in pixels; see the module docstring.

  `impl`: "pallas" (`backward_warp_pallas`, which documents what is not bit-deterministic), "xla" (the reference,
  differentiated by autodiff), "cpu" (the reference's forward with a hand-written backward, below) or "auto": "cpu"
  off-GPU; on a GPU `common.auto_choice("backward_warp")` for the forward and for the backward of a constant image
  (Pallas: the flow-gradient kernel has no atomics), and `common.auto_choice("backward_warp.image_grad")` for the
  backward when the image is differentiated (XLA: the Pallas image gradient is made of fenced atomics).
  """
  requested = impl
  impl = common.resolve_impl(impl, has_cpu_impl=True, op="backward_warp")
  if impl == "xla":
    return backward_warp_reference(image, flow, padding)
  if impl == "cpu":
    _check(image, flow, padding)
    return _warp_cpu(image, flow.astype(jnp.float32), padding)
  image_grad = common.auto_choice("backward_warp.image_grad") if requested == "auto" else "pallas"
  return backward_warp_pallas(image, flow, padding, image_grad=image_grad)


# ---------------------------------------------------------------------------------------------------------------------
# "cpu": the reference's forward (four gathers) with a hand-written backward. Autodiff of the reference reduces
# g * (corner differences) over the channels with a `reduce` that XLA:CPU hands to YNNPACK, which is ~20x slower than
# the whole forward for C = 3 (BENCHMARKS.md); here the channel sum is unrolled into one elementwise fusion for small C.
# The image gradient is the same scatter-add of g * corner weight that autodiff produces (a warp's image gradient is
# a scatter by nature); when the image needs no gradient (warping input frames) XLA drops it, so the flow gradient is
# gathers and elementwise work only.
# ---------------------------------------------------------------------------------------------------------------------

_UNROLL_CHANNELS = 8


def _channel_sum(a):
  """Σ over the last axis; unrolled for few channels (see above)."""
  if a.shape[-1] > _UNROLL_CHANNELS:
    return jnp.sum(a, axis=-1)
  return sum(a[..., c] for c in range(a.shape[-1]))


def _cpu_corners(image, flow, padding):
  """The reference's sample geometry: four corners (flat index, bilinear weight), fractions, clamp derivatives."""
  n, h, w, c = image.shape
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
  x = xs[None] + flow[..., 0]
  y = ys[None] + flow[..., 1]
  if padding == "border":
    # d clip / d position as autodiff of `jnp.clip` gives it: 1 inside, 1/2 on the bound, 0 outside.
    dclamp = lambda v, hi: jnp.where((v > 0) & (v < hi), 1.0, jnp.where((v == 0) | (v == hi), 0.5, 0.0))
    dcx, dcy = dclamp(x, w - 1.0), dclamp(y, h - 1.0)
    x = jnp.clip(x, 0.0, w - 1.0)
    y = jnp.clip(y, 0.0, h - 1.0)
  else:
    dcx = dcy = None
  x0 = jnp.floor(x)
  y0 = jnp.floor(y)
  wx1, wy1 = x - x0, y - y0
  x0i, y0i = x0.astype(jnp.int32), y0.astype(jnp.int32)
  corners = []
  for dy, wy in ((0, 1.0 - wy1), (1, wy1)):
    for dx, wx in ((0, 1.0 - wx1), (1, wx1)):
      xi, yi = x0i + dx, y0i + dy
      valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
      idx = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
      corners.append((idx.reshape(n, h * w, 1), jnp.where(valid, wy * wx, 0.0), valid))
  return corners, (wx1, wy1), (dcx, dcy)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _warp_cpu(image, flow, padding):
  return backward_warp_reference(image, flow, padding)


def _warp_cpu_fwd(image, flow, padding):
  return backward_warp_reference(image, flow, padding), (image, flow)


def _warp_cpu_bwd(padding, res, g):
  """d out / d x = wy0 (v01 - v00) + wy1 (v11 - v10), d out / d y = wx0 (v10 - v00) + wx1 (v11 - v01) with invalid
  corners read as 0 (the reference's zero weights), times the clamp derivative; image gradient scattered."""
  image, flow = res
  n, h, w, c = image.shape
  g = g.astype(jnp.float32)
  flat = image.reshape(n, h * w, c)
  corners, (wx1, wy1), (dcx, dcy) = _cpu_corners(image, flow, padding)
  v = []
  for idx, _, valid in corners:
    vals = jnp.take_along_axis(flat, idx, axis=1).reshape(n, h, w, c).astype(jnp.float32)
    v.append(jnp.where(valid[..., None], vals, 0.0))
  v00, v01, v10, v11 = v
  gx = _channel_sum(g * ((1.0 - wy1)[..., None] * (v01 - v00) + wy1[..., None] * (v11 - v10)))
  gy = _channel_sum(g * ((1.0 - wx1)[..., None] * (v10 - v00) + wx1[..., None] * (v11 - v01)))
  if dcx is not None:
    gx, gy = gx * dcx, gy * dcy
  gimg = jnp.zeros((n, h * w, c), jnp.float32)
  for idx, weight, _ in corners:
    gimg = gimg.at[jnp.arange(n)[:, None], idx[..., 0]].add((g * weight[..., None]).reshape(n, h * w, c))
  return gimg.reshape(n, h, w, c).astype(image.dtype), jnp.stack([gx, gy], axis=-1)


_warp_cpu.defvjp(_warp_cpu_fwd, _warp_cpu_bwd)


# ---------------------------------------------------------------------------------------------------------------------
# Pallas kernels (Triton lowering).
#
# Layout: the image is viewed as a (N*H*W, C) matrix and the flow as a flat (N*H*W*2,) vector, both un-blocked, so
# that every access is a masked pointer gather/scatter with indices computed in the kernel. One program handles
# `bp` consecutive pixels (of the flattened N*H*W axis) times `bc` channels; the tail of the last block is masked.
# ---------------------------------------------------------------------------------------------------------------------

_TILE = 1024  # Elements per (pixels x channels) tile: a few registers per thread for each of the 4-5 live tiles.
# The backward kernels run at 8 warps (4 tile elements per thread): at 4 warps the image-gradient kernel spilled 16 B
# per thread on sm_90a at C = 3; at 8 warps neither backward kernel spills at C = 3 or 64 (benchmarks/triton_report.py,
# BENCHMARKS.md). The forward stays at 4 warps (62 registers, no spills).
_BWD_WARPS = 8


def _block_sizes(c: int) -> tuple[int, int]:
  """Power-of-2 block (pixels, channels): all channels of a pixel up to 32, and enough pixels to fill a tile."""
  bc = min(common.next_pow2(c), 32)
  return max(_TILE // bc, 16), bc


def _sample_geometry(flow_ref, p, *, n: int, h: int, w: int, padding: str):
  """Shared by both kernels: sample position, corner indices, bilinear weights and clamp derivatives.

  `p` is a (bp,) vector of flattened pixel ids. Returns the in-range mask of `p`, the four corners as
  (row index into the (N*H*W, C) image, validity, weight) in the reference's order (0,0), (0,1), (1,0), (1,1)
  as (dy, dx), the fractional weights (wx1, wy1) and the derivative of the clamp applied to x and y.
  """
  hw = h * w
  pmask = p < n * hw
  dx = plt.load(flow_ref.at[2 * p], mask=pmask, other=0.0)
  dy = plt.load(flow_ref.at[2 * p + 1], mask=pmask, other=0.0)
  q = lax.rem(p, hw)
  base = p - q
  x = lax.rem(q, w).astype(jnp.float32) + dx
  y = lax.div(q, w).astype(jnp.float32) + dy
  if padding == "border":
    lo_x, hi_x, lo_y, hi_y = 0.0, w - 1.0, 0.0, h - 1.0
  else:
    # Beyond one pixel outside the image every corner is invalid whatever the exact position, so clamping there
    # changes neither the value nor the gradient; it keeps the float-to-int conversion in range for huge flows.
    lo_x, hi_x, lo_y, hi_y = -2.0, w + 1.0, -2.0, h + 1.0
  # d clip / d x as autodiff of `jnp.clip` computes it (1 inside, 1/2 on a tie with the bound, 0 outside), so the
  # Pallas and reference gradients agree even for positions exactly on the border.
  dclamp_x = jnp.where((x > lo_x) & (x < hi_x), 1.0, jnp.where((x == lo_x) | (x == hi_x), 0.5, 0.0))
  dclamp_y = jnp.where((y > lo_y) & (y < hi_y), 1.0, jnp.where((y == lo_y) | (y == hi_y), 0.5, 0.0))
  x = jnp.clip(x, lo_x, hi_x)
  y = jnp.clip(y, lo_y, hi_y)
  x0f = jnp.floor(x)
  y0f = jnp.floor(y)
  wx1 = x - x0f
  wy1 = y - y0f
  x0 = x0f.astype(jnp.int32)
  y0 = y0f.astype(jnp.int32)
  corners = []
  for oy, wy in ((0, 1.0 - wy1), (1, wy1)):
    for ox, wx in ((0, 1.0 - wx1), (1, wx1)):
      xi = x0 + ox
      yi = y0 + oy
      valid = pmask & (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
      # Invalid corners are never dereferenced (masked), but point them at row 0 so no index is wild.
      row = jnp.where(valid, base + yi * w + xi, 0)
      corners.append((row, valid, wy * wx))
  return pmask, corners, (wx1, wy1), (dclamp_x, dclamp_y)


def _channels(cb, *, bp: int, bc: int, c: int):
  ch = cb * bc + lax.broadcasted_iota(jnp.int32, (bp, bc), 1)
  return ch, ch < c


def _forward_kernel(img_ref, flow_ref, out_ref, *, n, h, w, c, bp, bc, padding):
  """out = sum over the four corners of weight * image[corner] (Jaderberg et al. 2015, Eq. (5))."""
  p = pl.program_id(0) * bp + lax.broadcasted_iota(jnp.int32, (bp,), 0)
  pmask, corners, _, _ = _sample_geometry(flow_ref, p, n=n, h=h, w=w, padding=padding)
  ch, cmask = _channels(pl.program_id(1), bp=bp, bc=bc, c=c)
  acc = jnp.zeros((bp, bc), jnp.float32)
  for row, valid, weight in corners:
    rows = jnp.broadcast_to(row[:, None], (bp, bc))
    v = plt.load(img_ref.at[rows, ch], mask=valid[:, None] & cmask, other=0.0)
    acc = acc + v.astype(jnp.float32) * weight[:, None]
  rows = jnp.broadcast_to(p[:, None], (bp, bc))
  plt.store(out_ref.at[rows, ch], acc.astype(out_ref.dtype), mask=pmask[:, None] & cmask)


def _backward_kernel(img_ref, flow_ref, g_ref, *out_refs, n, h, w, c, bp, bc, padding, image_grad, atomic):
  """Flow gradient by recomputing the four corners; with `image_grad`, image gradient scattered to the corners.

  d out / d x = wy0 (v01 - v00) + wy1 (v11 - v10) and d out / d y = wx0 (v10 - v00) + wx1 (v11 - v01) for
  corners v_(dy,dx); the flow gradient sums g times these over channels (a loop, so it is deterministic). The image
  gradient of corner k is g * weight_k: with `atomic` it is `atomic_add`-ed into a zero-initialised float32 buffer
  (GPU), otherwise stored per corner with its row index for a scatter-add outside the kernel (interpret mode, whose
  atomic_add loses duplicate indices and rejects masks). Without `image_grad` (the image is a constant, e.g. an
  input frame) the kernel has one output, the flow gradient, and neither atomics nor per-corner stores.
  """
  if not image_grad:
    (gflow_ref,) = out_refs
  elif atomic:
    _, gflow_ref, gimg_ref = out_refs  # The first is the zero input buffer aliased to gimg_ref.
  else:
    gflow_ref, contrib_ref, rows_ref = out_refs
  p = pl.program_id(0) * bp + lax.broadcasted_iota(jnp.int32, (bp,), 0)
  pmask, corners, (wx1, wy1), (dclamp_x, dclamp_y) = _sample_geometry(flow_ref, p, n=n, h=h, w=w, padding=padding)
  prows = jnp.broadcast_to(p[:, None], (bp, bc))
  if image_grad and not atomic:
    for k, (row, _, _) in enumerate(corners):
      plt.store(rows_ref.at[k, p], row, mask=pmask)

  def channel_block(cb, carry):
    gx, gy = carry
    ch, cmask = _channels(cb, bp=bp, bc=bc, c=c)
    g = plt.load(g_ref.at[prows, ch], mask=pmask[:, None] & cmask, other=0.0).astype(jnp.float32)
    v = []
    for k, (row, valid, weight) in enumerate(corners):
      rows = jnp.broadcast_to(row[:, None], (bp, bc))
      m = valid[:, None] & cmask
      v.append(plt.load(img_ref.at[rows, ch], mask=m, other=0.0).astype(jnp.float32))
      if not image_grad:
        continue
      contrib = g * jnp.where(valid, weight, 0.0)[:, None]
      if atomic:
        plt.atomic_add(gimg_ref, (rows, ch), contrib, mask=m)
      else:
        kk = jnp.full((bp, bc), k, jnp.int32)
        plt.store(contrib_ref.at[kk, prows, ch], contrib, mask=pmask[:, None] & cmask)
    v00, v01, v10, v11 = v
    gx = gx + jnp.sum(g * ((1.0 - wy1)[:, None] * (v01 - v00) + wy1[:, None] * (v11 - v10)), axis=1)
    gy = gy + jnp.sum(g * ((1.0 - wx1)[:, None] * (v10 - v00) + wx1[:, None] * (v11 - v01)), axis=1)
    return gx, gy

  zero = jnp.zeros((bp,), jnp.float32)
  gx, gy = lax.fori_loop(0, common.cdiv(c, bc), channel_block, (zero, zero))
  plt.store(gflow_ref.at[2 * p], gx * dclamp_x, mask=pmask)
  plt.store(gflow_ref.at[2 * p + 1], gy * dclamp_y, mask=pmask)


def _config(image, interpret, block):
  """Static kernel parameters: the image dimensions, the block (pixels, channels), and interpret mode resolved."""
  n, h, w, c = image.shape
  if n * h * w >= 2**30:  # Flow offsets 2 * p + 1 are int32.
    raise ValueError(f"backward_warp: N*H*W = {n * h * w} is too large for the int32 pixel indices")
  bp, bc = block or _block_sizes(c)
  if bp & (bp - 1) or bc & (bc - 1):
    raise ValueError(f"block sizes must be powers of 2, got {(bp, bc)}")
  interpret = (not common.on_gpu()) if interpret is None else interpret
  return dict(n=n, h=h, w=w, c=c, bp=bp, bc=bc), interpret


def _forward(image, flow, padding, interpret, block):
  dims, interpret = _config(image, interpret, block)
  n, h, w, c = image.shape
  out = common.triton_call(
      functools.partial(_forward_kernel, padding=padding, **dims),
      out_shape=jax.ShapeDtypeStruct((n * h * w, c), image.dtype),
      grid=(common.cdiv(n * h * w, dims["bp"]), common.cdiv(c, dims["bc"])),
      name="backward_warp_fwd", interpret=interpret)(image.reshape(n * h * w, c), flow.reshape(-1))
  return out.reshape(n, h, w, c)


def _backward(image, flow, g, padding, interpret, block, image_grad=True):
  """Returns (image gradient in float32, or None without `image_grad`; flow gradient in float32)."""
  dims, interpret = _config(image, interpret, block)
  n, h, w, c = image.shape
  npix = n * h * w
  args = [image.reshape(npix, c), flow.reshape(-1), g.reshape(npix, c)]
  gflow_shape = jax.ShapeDtypeStruct((npix * 2,), jnp.float32)
  kwargs = dict(grid=(common.cdiv(npix, dims["bp"]),), num_warps=_BWD_WARPS, interpret=interpret)
  kernel = functools.partial(_backward_kernel, padding=padding, image_grad=image_grad, atomic=not interpret, **dims)
  if not image_grad:
    # Its own name, so the lowered HLO (and `benchmarks/triton_report.py`) tells the two backward kernels apart.
    gflow = common.triton_call(kernel, out_shape=gflow_shape, name="backward_warp_bwd_flow", **kwargs)(*args)
    return None, gflow.reshape(n, h, w, 2)
  kwargs["name"] = "backward_warp_bwd"
  if interpret:
    gflow, contrib, rows = common.triton_call(
        kernel,
        out_shape=(gflow_shape, jax.ShapeDtypeStruct((4, npix, c), jnp.float32),
                   jax.ShapeDtypeStruct((4, npix), jnp.int32)),
        **kwargs)(*args)
    gimg = jnp.zeros((npix, c), jnp.float32).at[rows.reshape(-1)].add(contrib.reshape(4 * npix, c))
  else:
    gflow, gimg = common.triton_call(
        kernel, out_shape=(gflow_shape, jax.ShapeDtypeStruct((npix, c), jnp.float32)),
        input_output_aliases={3: 1}, **kwargs)(*args, jnp.zeros((npix, c), jnp.float32))
  return gimg.reshape(n, h, w, c), gflow.reshape(n, h, w, 2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _warp_pallas(image, flow, padding, interpret, block, image_grad):
  del image_grad
  return _forward(image, flow, padding, interpret, block)


# The backward rule uses symbolic zeros (`jax.custom_vjp.defvjp(..., symbolic_zeros=True)`, public API in jax 0.10
# and 0.11): the forward rule receives each differentiable argument as a `CustomVJPPrimal` (`.value`, and
# `.perturbed`, False when the argument does not depend on what is differentiated). An image that is a constant
# (warping the input frames by a predicted flow, Super-SloMo and ReFIn) then gets no image gradient: only the flow
# gradient kernel runs, without the scatter and its atomics. Whether the image gradient is wanted travels to the
# backward rule in the residuals' tree structure (a trailing `None` leafless node), which is static, not as an array.

def _warp_pallas_fwd(image, flow, padding, interpret, block, image_grad):
  del image_grad
  out = _forward(image.value, flow.value, padding, interpret, block)
  res = (image.value, flow.value) if image.perturbed else (image.value, flow.value, None)
  return out, res


def _warp_pallas_bwd(padding, interpret, block, image_grad_impl, res, g):
  """`image_grad_impl` "pallas": both gradients from the Pallas kernel (atomics for the image's); "xla": when the
  image is differentiated, both from `_warp_cpu_bwd` (jnp gathers and XLA's scatter-add; "auto" on a GPU)."""
  image, flow = res[:2]
  image_grad = len(res) == 2
  if isinstance(g, SymbolicZero):  # The output's cotangent is a symbolic zero: so are both gradients.
    return None, None
  if image_grad and image_grad_impl == "xla":
    return _warp_cpu_bwd(padding, (image, flow), g)
  gimg, gflow = _backward(image, flow, g, padding, interpret, block, image_grad=image_grad)
  return (gimg.astype(image.dtype) if image_grad else None), gflow


_warp_pallas.defvjp(_warp_pallas_fwd, _warp_pallas_bwd, symbolic_zeros=True)


def backward_warp_pallas(image: jax.Array, flow: jax.Array, padding: str = "zeros", *, interpret: bool | None = None,
                         block: tuple[int, int] | None = None, image_grad: str = "pallas") -> jax.Array:
  """Pallas (Triton) backward warp with a Pallas backward (`jax.custom_vjp`); same semantics as the reference.

  Args:
    image: (N, H, W, C) float32 or bfloat16; sampled and accumulated in float32, returned in its dtype.
    flow: (N, H, W, 2) as (dx, dy) in pixels; used in float32, its gradient is cast back to its dtype.
    padding: "zeros" or "border", see the module docstring.
    interpret: None picks the GPU lowering on a GPU backend and interpret mode elsewhere; False forces the GPU
      lowering (used to check it with `common.lower_for_cuda`).
    block: (pixels, channels) per program, powers of 2; None picks `_block_sizes(C)`.
    image_grad: "pallas", or "xla": when the image is differentiated, the backward is the jnp one of impl="cpu"
      (XLA's scatter-add instead of the kernel's fenced atomics); the flow-only backward stays the Pallas kernel.

  Determinism: the forward and the flow gradient are bit-deterministic. On GPU the image gradient is accumulated
  with float32 `atomic_add`, whose order varies from run to run, so it is not bit-deterministic (differences at
  float32 rounding level where several output pixels sample the same input pixel). In interpret mode the image
  gradient goes through a `jnp` scatter-add instead and is deterministic. When the image is a constant of the
  differentiation (an input frame), no image gradient is computed at all: the backward is one kernel
  (`backward_warp_bwd_flow`) for the flow gradient, with no atomics, and is bit-deterministic.
  """
  _check(image, flow, padding)
  if image_grad not in ("pallas", "xla"):
    raise ValueError(f"image_grad must be 'pallas' or 'xla', got {image_grad!r}")
  return _warp_pallas(image, flow.astype(jnp.float32), padding, interpret, block, image_grad)
