"""Local separable convolution (SepConv; Niklaus et al. 2017, paper 001 §2, paper 003 §1) and composite dilation.

Dense op (paper 003, forward Eq. of §1, with the caller's padding made explicit):

  out[n, y, x, c] = Σᵢ Σⱼ x_padded[n, y + i, x + j, c] · kv[n, y, x, i] · kh[n, y, x, j],   i, j ∈ [0, K).

Both entry points reduce to one *tap-offset* form: tap t reads the input at offset o_t from the top-left corner of the
pixel's patch, out[y, x] = Σᵢ Σⱼ x_padded[y + o_i, x + o_j] · kv[y, x, i] · kh[y, x, j]. Dense SepConv has
o = (0, 1, ..., K-1); composite dilation (paper 003 §"Composite dilation") has a dense inner run followed by a dilated
outer ring, see :func:`composite_offsets`. One Pallas kernel family serves both (the offsets are static tables).

Implementations (`impl`): "pallas" (Triton lowering on GPU, interpret mode elsewhere), "xla" (the `jnp` reference
:func:`sepconv_reference`, with its own `jnp` backward; the test oracle), "cpu" (the same sums in plain `jnp`, laid
out for XLA:CPU: rows-first layout, one fused loop per tap, scatter-free transposed-convolution input gradient; see the
"cpu" section below), "auto" (on a GPU `common.auto_choice("sepconv")`, Pallas by default; "cpu" elsewhere). On a
2-core CPU, "cpu" runs the forward + backward at 256x256, 51 taps, about 5x faster than "xla" (BENCHMARKS.md).

Pallas kernels (all fp32 accumulation, bf16 inputs allowed). The taps are static: every tap sum is a Python loop of
elementwise (BH, BW) FMAs, so it stays inside each thread (a (BH, BW, taps) block spreads the taps across lanes, and
summing over them took warp shuffles: benchmarks/triton_report.py, BENCHMARKS.md). kv, kh and their gradients are
read and written in the callers' (N, H, W, K) layout, without transposes.
  * forward: one program per (image, BH output rows, BW output columns), one output pixel per thread. The program
    keeps its horizontal kernels in registers as K (BH, BW) planes and walks the BH + K - 1 input rows once; each
    input row serves every output row of the tile that needs it, so input rows are reused across output rows instead
    of reloaded per tap.
  * backward for kv and for kh: two kernels with the forward's tiling (one kernel holding both kh and the K dkh
    accumulators needs 255 registers). dkv recomputes the forward's row sums weighted by g instead of saving them;
    dkh keeps K accumulator planes. Each writes its kernel gradient exactly once (no atomics).
  * backward for x_padded: a gather formulation; each program owns a tile of *input* pixels and sums over the output
    pixels whose patch covers them, so it needs no atomics either; its taps are a loop (nothing is held per tap).
Determinism: every Pallas output (forward and all three gradients) is bit-deterministic, because nothing is
accumulated with atomics and every reduction runs in a fixed order. The "xla" and "cpu" paths are deterministic as far
as XLA's own reductions are (their x_padded gradients are dynamic-update-slice accumulations in a loop, not scatters).
No path supports forward-mode autodiff (`jax.jvp`): all are `jax.custom_vjp` functions.

The tap-offset tables passed to the kernels are padded to the next power of two (Triton block shapes must be powers
of two).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from pallas_kernels import common

PATTERNS = (0, 1)


# --------------------------------------------------------------------------------------------------------------------
# Tap offsets
# --------------------------------------------------------------------------------------------------------------------


def dense_offsets(k: int) -> tuple[int, ...]:
  return tuple(range(k))


def composite_offsets(d_in: int, d_out: int, pattern: int) -> tuple[int, ...]:
  """Tap offsets of composite dilation (paper 003 §"Composite dilation", Fig. 11), from the patch's top-left corner.

  The patch is D = d_in + 2·d_out pixels wide, centred on the output pixel (offset R = d_in // 2 + d_out is the centre).
  Taps [0, d_in) are the dense inner kernel (offsets d_out .. d_out + d_in - 1), as in the paper ("the kernel weights
  used for the dense convolution are stored in [0, d_in)"); taps [d_in, d_in + d_out) are the dilated outer ring,
  d_out / 2 on each side, listed by increasing offset (top/left side first). On one side the ring is d_out pixels
  deep; counting its positions p = 1 .. d_out outwards from the dense kernel:

    * pattern 0 ("corners"): p ∈ {2, 4, ..., d_out}; dilation 2 anchored at the patch border.
    * pattern 1 ("edges"):   p ∈ {1, 3, ..., d_out - 3} ∪ {d_out}; dilation 2 anchored at the dense kernel.

  Both include p = d_out, so in 2-D both sample the same 8 pixels on the patch border: its 4 corners (outermost
  row × outermost column) and its 4 edge centres (outermost row × centre column), the "8 fixed pixels" of the paper.
  The paper's Fig. 11 is missing from our text, so the placement of the remaining taps is our reading of "the first
  one distributes the remaining pixels next to the corners, and the second one at the center of each edge": pattern 0
  shifts them towards the patch border (the corners), pattern 1 towards the dense centre. Alternating the two
  (e.g. one per input frame) samples every ring position except p = d_out - 1 at least once.

  The separable product covers the full square ring (rows × columns of all taps), which is what the paper's
  "normal local convolution between a patch and a separable kernel" describes; its displayed formula lists only the
  outer × outer terms, which would leave the ring's edge bands empty, so we do not follow it there.
  """
  if d_in < 1 or d_in % 2 != 1:
    raise ValueError(f"d_in must be odd and positive, got {d_in}")
  if d_out < 0 or d_out % 2 != 0:
    raise ValueError(f"d_out must be even and non-negative, got {d_out}")
  if pattern not in PATTERNS:
    raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
  inner = [d_out + t for t in range(d_in)]
  m = d_out // 2
  if pattern == 0:
    depths = [d_out - 2 * t for t in range(m)]
  else:
    depths = [1 + 2 * t for t in range(m - 1)] + ([d_out] if m else [])
  first, last = d_out, d_out + d_in - 1  # dense offsets; ring position p sits at first - p and at last + p
  ring = sorted(first - p for p in depths) + sorted(last + p for p in depths)
  return tuple(inner + ring)


def _extent(offsets: tuple[int, ...]) -> int:
  return max(offsets) + 1


def _check_offsets(offsets: tuple[int, ...]):
  if len(set(offsets)) != len(offsets) or min(offsets) < 0:
    raise ValueError(f"tap offsets must be distinct and non-negative, got {offsets}")


def _check_shapes(x_padded, kv, kh, offsets, name):
  if x_padded.ndim != 4 or kv.ndim != 4 or kh.shape != kv.shape:
    raise ValueError(f"{name} expects x_padded (N,Hp,Wp,C), kv and kh (N,H,W,K) of equal shape; got "
                     f"{x_padded.shape}, {kv.shape}, {kh.shape}")
  n, h, w, k = kv.shape
  if k != len(offsets):
    raise ValueError(f"{name}: kernels have {k} taps, expected {len(offsets)}")
  ext = _extent(offsets)
  want = (n, h + ext - 1, w + ext - 1)
  if x_padded.shape[:3] != want:
    raise ValueError(f"{name}: x_padded must be (N, H + {ext - 1}, W + {ext - 1}, C) = {want + (x_padded.shape[3],)} "
                     f"for kernels of shape {kv.shape}; got {x_padded.shape}")


# --------------------------------------------------------------------------------------------------------------------
# jnp reference
# --------------------------------------------------------------------------------------------------------------------


def _ref_forward(x, kv, kh, offsets):
  """Σᵢ kv[..., i] · (Σⱼ kh[..., j] · x[y + o_i, x + o_j]), fp32: a scan over vertical taps, O(N·H·W·C) live memory."""
  h, w = kv.shape[1:3]

  def body(acc, tap):
    offset, kv_i = tap
    band = lax.dynamic_slice_in_dim(x, offset, h, axis=1)
    row = sum(band[:, :, o:o + w, :] * kh[..., j, None] for j, o in enumerate(offsets))
    return acc + kv_i[..., None] * row, None

  acc0 = jnp.zeros(kv.shape[:3] + x.shape[3:], jnp.float32)
  return lax.scan(body, acc0, (jnp.asarray(offsets, jnp.int32), jnp.moveaxis(kv, 3, 0)))[0]


def _ref_backward(x, kv, kh, g, offsets):
  """The three gradients of paper 003 §1 "Backward pass", each a scan over taps with a static inner sum (fp32).

  dkv_i = Σ_c g · Σⱼ kh_j x[y+o_i, x+o_j],  dkh_j = Σ_c g · Σᵢ kv_i x[y+o_i, x+o_j],
  dx[y+o_i, x+o_j] += g · kv_i · kh_j.
  """
  h, w = kv.shape[1:3]
  ext = _extent(offsets)
  offs = jnp.asarray(offsets, jnp.int32)

  def dkv_tap(_, offset):
    band = lax.dynamic_slice_in_dim(x, offset, h, axis=1)
    row = sum(band[:, :, o:o + w, :] * kh[..., j, None] for j, o in enumerate(offsets))
    return None, jnp.sum(g * row, axis=3)

  def dkh_tap(_, offset):
    band = lax.dynamic_slice_in_dim(x, offset, w, axis=2)
    col = sum(band[:, o:o + h, :, :] * kv[..., i, None] for i, o in enumerate(offsets))
    return None, jnp.sum(g * col, axis=3)

  def dx_tap(dx, tap):
    offset, kv_i = tap
    gk = g * kv_i[..., None]
    band = sum(jnp.pad(gk * kh[..., j, None], ((0, 0), (0, 0), (o, ext - 1 - o), (0, 0)))
               for j, o in enumerate(offsets))
    return lax.dynamic_update_slice_in_dim(dx, lax.dynamic_slice_in_dim(dx, offset, h, axis=1) + band, offset,
                                           axis=1), None

  dkv = jnp.moveaxis(lax.scan(dkv_tap, None, offs)[1], 0, 3)
  dkh = jnp.moveaxis(lax.scan(dkh_tap, None, offs)[1], 0, 3)
  dx = lax.scan(dx_tap, jnp.zeros_like(x), (offs, jnp.moveaxis(kv, 3, 0)))[0]
  return dx, dkv, dkh


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _reference(x_padded, kv, kh, offsets):
  """`jnp` reference (fp32 accumulation) with a hand-written backward.

  Autodiff of the forward scan is correct but slow (each horizontal tap's gradient becomes its own loop carry),
  so the reference has the explicit backward above; both are checked against the NumPy oracle in the tests.
  """
  f32 = lambda a: a.astype(jnp.float32)
  return _ref_forward(f32(x_padded), f32(kv), f32(kh), offsets).astype(jnp.result_type(x_padded, kv, kh))


def _reference_fwd(x_padded, kv, kh, offsets):
  return _reference(x_padded, kv, kh, offsets), (x_padded, kv, kh)


def _reference_bwd(offsets, res, g):
  grads = _ref_backward(*(a.astype(jnp.float32) for a in res), g.astype(jnp.float32), offsets)
  return tuple(d.astype(a.dtype) for d, a in zip(grads, res))


_reference.defvjp(_reference_fwd, _reference_bwd)


def sepconv_reference(x_padded: jax.Array, kv: jax.Array, kh: jax.Array) -> jax.Array:
  """`jnp` reference of the dense local separable convolution (module docstring); never builds N·H·W·K·K."""
  offsets = dense_offsets(kv.shape[-1])
  _check_shapes(x_padded, kv, kh, offsets, "sepconv_reference")
  return _reference(x_padded, kv, kh, offsets)


def sepconv_composite_reference(x_padded, kv, kh, d_in: int, d_out: int, pattern: int) -> jax.Array:
  offsets = composite_offsets(d_in, d_out, pattern)
  _check_shapes(x_padded, kv, kh, offsets, "sepconv_composite_reference")
  return _reference(x_padded, kv, kh, offsets)


# --------------------------------------------------------------------------------------------------------------------
# "cpu": the same sums as the reference, laid out for XLA:CPU (profile in BENCHMARKS.md, "Where the time goes").
#
#  * Rows first: x is (N, Hp, C, Wp) and kv, kh, their gradients (N, H, K, W), so every tap's slice is a run of
#    contiguous pixels along W (the vectorised axis) and one output row's K kernel rows sit together in memory. With
#    the channel axis outside the row, each kernel row is reused by all C channels while it is in L1 (C-outer NCHW
#    re-streams the whole tap planes C times and was 3x slower than this in the forward).
#  * One loop over taps, each iteration one fused elementwise loop over all pixels with the other tap axis unrolled
#    (the forward's accumulation; a horizontal pass for dkv; a vertical pass for dkh; a transposed horizontal pass for
#    dx), i.e. the kernel gradients are batched contractions over the tap axis and dx a transposed separable
#    convolution: no scatter, no per-pixel gather.
#  * "Skewed" loops: iteration t computes tap t + 1's pass into the loop carry and finishes tap t from the carry.
#    Without this XLA fuses the whole pass into the dynamic-update-slice that stacks the loop outputs, and XLA:CPU
#    emits such fusions as scalar, single-threaded loops (measured 5x slower for dkv and dkh).
# --------------------------------------------------------------------------------------------------------------------


def _skewed_scan(heavy, light, carry, xs):
  """`carry, ys = scan(lambda c, x: light(c, heavy(x), x), carry, xs)`, with `heavy(x)` as a loop-carried value.

  `heavy` is the expensive pass of one tap, `light(carry, h, x) -> (carry, y)` the cheap step that uses it. Iteration
  t computes heavy(xs[t + 1]) and applies light to heavy(xs[t]) from the previous iteration, so XLA must materialise
  each heavy pass as its own (vectorised, multi-threaded) loop fusion instead of fusing it into `light`.
  """
  first = jax.tree.map(lambda a: a[0], xs)
  rest = jax.tree.map(lambda a: a[1:], xs)

  def body(state, nxt_cur):
    carry, prev = state
    nxt, cur = nxt_cur
    carry, y = light(carry, prev, cur)
    return (carry, heavy(nxt)), y

  cur = jax.tree.map(lambda a: a[:-1], xs)
  (carry, last_h), ys = lax.scan(body, (carry, heavy(first)), (rest, cur))
  carry, y_last = light(carry, last_h, jax.tree.map(lambda a: a[-1], xs))
  if ys is None:
    return carry, None
  return carry, jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), ys, y_last)


def _rows(x, kh, offset, offsets, h, w):
  """Horizontal pass at vertical offset `offset`: Σⱼ kh_j · x[y + offset, x + o_j], (N, H, C, W)."""
  band = lax.dynamic_slice_in_dim(x, offset, h, axis=1)
  return sum(band[..., o:o + w] * kh[:, :, j:j + 1, :] for j, o in enumerate(offsets))


def _cols(x, kv, offset, offsets, h, w):
  """Vertical pass at horizontal offset `offset`: Σᵢ kv_i · x[y + o_i, x + offset], (N, H, C, W)."""
  band = lax.dynamic_slice_in_dim(x, offset, w, axis=3)
  return sum(band[:, o:o + h] * kv[:, :, i:i + 1, :] for i, o in enumerate(offsets))


def _channel_dot(g, a):
  """Σ_c g · a over the channel axis 2, as an unrolled sum (C is 3 in practice; keeps it one elementwise fusion)."""
  return sum(g[:, :, c] * a[:, :, c] for c in range(g.shape[2]))


def _cpu_layout(x_padded, kv, kh):
  f32 = lambda a: a.astype(jnp.float32)
  return (jnp.transpose(f32(x_padded), (0, 1, 3, 2)), jnp.transpose(f32(kv), (0, 1, 3, 2)),
          jnp.transpose(f32(kh), (0, 1, 3, 2)))


def _cpu_forward(x, kv, kh, offsets):
  """out[y, x] = Σᵢ kv_i · rows(o_i), accumulated over a loop on vertical taps; (N, H, C, W) fp32."""
  n, h, _, w = kv.shape

  def body(acc, tap):
    i, offset = tap
    kv_i = lax.dynamic_slice_in_dim(kv, i, 1, axis=2)
    return acc + kv_i * _rows(x, kh, offset, offsets, h, w), None

  taps = (jnp.arange(len(offsets)), jnp.asarray(offsets, jnp.int32))
  return lax.scan(body, jnp.zeros((n, h, x.shape[2], w), jnp.float32), taps)[0]


def _cpu_backward(x, kv, kh, g, offsets):
  """The gradients of paper 003 §1 "Backward pass" (see `_ref_backward`) in the rows-first layout, fp32.

  dkv_i = Σ_c g · rows(o_i) and dkh_j = Σ_c g · cols(o_j) (skewed loops over taps, recomputing the passes: keeping
  the forward's K row passes instead measured no faster); dx is the transposed separable convolution,
  dx[y + o_i, x'] += Σⱼ (g · kv_i · kh_j)[y, x' - o_j], one loop over vertical taps whose horizontal transposed pass
  reads zero-padded copies of g · kv_i and kh instead of scattering.
  """
  _, h, _, w = kv.shape
  e = _extent(offsets) - 1
  offs = jnp.asarray(offsets, jnp.int32)
  light = lambda carry, a, _: (carry, _channel_dot(g, a))
  _, dkv = _skewed_scan(lambda o: _rows(x, kh, o, offsets, h, w), light, None, offs)
  _, dkh = _skewed_scan(lambda o: _cols(x, kv, o, offsets, h, w), light, None, offs)

  pad_w = lambda a: jnp.pad(a, ((0, 0), (0, 0), (0, 0), (e, e)))
  khp = pad_w(kh)

  def transposed_rows(i):  # band[y, c, q] = Σⱼ (g·kv_i·kh_j)[y, c, q - o_j], q ∈ [0, W + e)
    gp = pad_w(g * lax.dynamic_slice_in_dim(kv, i, 1, axis=2))
    return sum(gp[..., e - o:2 * e - o + w] * khp[:, :, j:j + 1, e - o:2 * e - o + w] for j, o in enumerate(offsets))

  def add_band(dx, band, offset):
    cur = lax.dynamic_slice_in_dim(dx, offset, h, axis=1)
    return lax.dynamic_update_slice_in_dim(dx, cur + band, offset, axis=1), None

  dx, _ = _skewed_scan(lambda tap: transposed_rows(tap[0]), lambda dx, band, tap: add_band(dx, band, tap[1]),
                       jnp.zeros_like(x), (jnp.arange(len(offsets)), offs))
  return dx, jnp.moveaxis(dkv, 0, 2), jnp.moveaxis(dkh, 0, 2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _sepconv_cpu(x_padded, kv, kh, offsets):
  out = _cpu_forward(*_cpu_layout(x_padded, kv, kh), offsets)
  return jnp.transpose(out, (0, 1, 3, 2)).astype(jnp.result_type(x_padded, kv, kh))


def _sepconv_cpu_fwd(x_padded, kv, kh, offsets):
  return _sepconv_cpu(x_padded, kv, kh, offsets), (x_padded, kv, kh)


def _sepconv_cpu_bwd(offsets, res, g):
  x_padded, kv, kh = res
  gt = jnp.transpose(g.astype(jnp.float32), (0, 1, 3, 2))
  dx, dkv, dkh = _cpu_backward(*_cpu_layout(x_padded, kv, kh), gt, offsets)
  back = lambda d, like: jnp.transpose(d, (0, 1, 3, 2)).astype(like.dtype)
  return back(dx, x_padded), back(dkv, kv), back(dkh, kh)


_sepconv_cpu.defvjp(_sepconv_cpu_fwd, _sepconv_cpu_bwd)


# --------------------------------------------------------------------------------------------------------------------
# Pallas kernels. Inside them: x, g, the output and dx are (N, C, H, W), so an image row is contiguous and each tap's
# window of it is one coalesced load; their transposes move C channels. kv, kh and their gradients keep the callers'
# (N, H, W, K) layout: transposing them would read and write the op's two largest tensors (K channels each) once more
# per call. In interpret mode all loads clamp their indices (masked lanes stay in bounds, which interpret mode needs);
# on the GPU path they rely on their masks alone, since clamped indices defeat Triton's contiguity analysis (6 shuffles
# per FMA, benchmarks/triton_report.py). All stores keep unclamped, non-negative indices (masked lanes never alias a
# live lane).
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Config:
  offsets: tuple[int, ...]
  block_h: int = 4  # output rows per program (forward, kernel grads)
  block_w: int = 32  # output columns per program
  block_p: int = 4  # input rows per program (x_padded grad)
  block_q: int = 32  # input columns per program
  num_warps: int = 4
  interpret: bool | None = None
  # The kernel-grad kernels; at the default tile and 4 warps each thread owns one pixel (at 8, lanes hold copies).
  kgrad_num_warps: int = 4
  clamp: bool | None = None  # clamp load indices; None: in interpret mode only (see above)

  def __post_init__(self):
    if self.clamp is None:
      interpret = (not common.on_gpu()) if self.interpret is None else self.interpret
      object.__setattr__(self, "clamp", interpret)

  @property
  def k(self):
    return len(self.offsets)

  @property
  def kp(self):
    return common.next_pow2(self.k)

  @property
  def ext(self):
    return _extent(self.offsets)

  def tables(self):
    """Offsets padded to a power of 2, and the inverse map offset -> tap (-1 where no tap reads that offset)."""
    offs = np.zeros(self.kp, np.int32)
    offs[:self.k] = self.offsets
    inv = np.full(common.next_pow2(self.ext), -1, np.int32)
    inv[list(self.offsets)] = np.arange(self.k)
    return jnp.asarray(offs), jnp.asarray(inv)


def _ld(ref, idx, mask):
  """Masked gather that returns fp32; masked lanes read 0."""
  return plt.load(ref.at[idx], mask=mask, other=0).astype(jnp.float32)


class _Tile(NamedTuple):
  """One program's tile of a 2-D plane: rows r0 + [0, BR), columns c0 + [0, BC), clamped copies and validity.

  The forward and the kernel-gradient kernels tile output pixels (rows ys, columns xs, valid where inside H x W);
  the x-gradient kernel tiles input pixels. `rows_c`/`cols_c` are the indices clamped to the plane, for loads.
  """
  n: jax.Array  # image index
  r0: jax.Array  # first row of the tile
  rows: jax.Array  # (BR,) unclamped row indices
  cols: jax.Array  # (BC,) unclamped column indices
  rows_c: jax.Array  # (BR,) rows clamped to [0, height)
  cols_c: jax.Array  # (BC,) columns clamped to [0, width)
  ok: jax.Array  # (BR, BC) pixel inside the plane


def _bound(v, lo, hi, clamp: bool):
  """`v` clipped to [lo, hi] for loads in interpret mode (`_Config.clamp`); unchanged on the GPU path, where the load's
  mask alone keeps masked lanes from reading, and unclamped indices keep Triton's contiguity analysis (issue 28)."""
  return jnp.clip(v, lo, hi) if clamp else v


def _tile(block_r: int, block_c: int, height: int, width: int, clamp: bool) -> _Tile:
  """The tile prologue shared by the kernels: program (n, row block, column block) of a (height, width) plane."""
  n = pl.program_id(0)
  r0 = pl.program_id(1) * block_r
  rows = r0 + jnp.arange(block_r)
  cols = pl.program_id(2) * block_c + jnp.arange(block_c)
  ok = (rows[:, None] < height) & (cols[None, :] < width)
  return _Tile(n=n, r0=r0, rows=rows, cols=cols, rows_c=_bound(rows, 0, height - 1, clamp),
               cols_c=_bound(cols, 0, width - 1, clamp), ok=ok)


def _taps_of_rows(inv_ref, d, ext):
  """Tap index reading row offset `d` (vector), and whether there is one."""
  ok = (d >= 0) & (d < ext)
  tap = inv_ref[jnp.clip(d, 0, ext - 1)]
  return jnp.maximum(tap, 0), ok & (tap >= 0)


def _input_row(inv_ref, t, y0, cfg: _Config, hp: int, col_ok):
  """Input row y0 + t of a (BH, BW) output tile: the vertical tap through which each output row y0 + r reads it
  (`tap`, `tap_ok`: (BH,)), the row index, and the mask of its loads."""
  tap, tap_ok = _taps_of_rows(inv_ref, t - jnp.arange(cfg.block_h), cfg.ext)
  return tap, tap_ok, _bound(y0 + t, 0, hp - 1, cfg.clamp), col_ok & (y0 + t < hp)


def _tap_columns(xs, cfg: _Config, wp: int):
  """The input column each horizontal tap reads for output columns `xs`, one vector per tap."""
  return [_bound(xs + o, 0, wp - 1, cfg.clamp) for o in cfg.offsets]


def _row_sum(x_ref, n, ci, row, cols, ok, kh):
  """Σⱼ kh_j · x[row, x + o_j] over static taps: (BH, BW), elementwise in every thread."""
  return sum(kh_j * _ld(x_ref, (n, ci, row, col), ok)[None, :] for kh_j, col in zip(kh, cols))


def _fwd_kernel(offs_ref, inv_ref, x_ref, kv_ref, kh_ref, o_ref, *, cfg: _Config, h: int, w: int):
  bh, bw, ext = cfg.block_h, cfg.block_w, cfg.ext
  c_dim, hp, wp = x_ref.shape[1:]
  n, y0, ys, xs, yc, xc, pix_ok = _tile(bh, bw, h, w, cfg.clamp)
  # One (BH, BW) plane per tap, so the tap sum below is elementwise in every thread (a (BH, BW, KP) block puts the
  # taps across lanes, and summing them takes warp shuffles).
  kh = [_ld(kh_ref, (n, yc[:, None], xc[None, :], j), pix_ok) for j in range(cfg.k)]
  cols, col_ok = _tap_columns(xs, cfg, wp), xs < w

  def channel(ci, carry):
    def in_row(t, acc):
      tap, tap_ok, row, ok = _input_row(inv_ref, t, y0, cfg, hp, col_ok)
      kvt = _ld(kv_ref, (n, yc[:, None], xc[None, :], tap[:, None]), tap_ok[:, None] & pix_ok)  # (bh, bw)
      return acc + kvt * _row_sum(x_ref, n, ci, row, cols, ok, kh)

    acc = lax.fori_loop(0, bh + ext - 1, in_row, jnp.zeros((bh, bw), jnp.float32))
    plt.store(o_ref.at[n, ci, ys[:, None], xs[None, :]], acc.astype(o_ref.dtype), mask=pix_ok)
    return carry

  lax.fori_loop(0, c_dim, channel, 0)


def _bwd_kv_kernel(offs_ref, inv_ref, x_ref, kh_ref, g_ref, dkv_ref, *, cfg: _Config, h: int, w: int):
  """dkv[y,x,i] = Σ_c g·Σⱼ kh_j·x[y+o_i, x+o_j] (paper 003 §1 Backward): the forward's row sums weighted by g."""
  bh, bw, ext = cfg.block_h, cfg.block_w, cfg.ext
  c_dim, hp, wp = x_ref.shape[1:]
  n, y0, ys, xs, yc, xc, pix_ok = _tile(bh, bw, h, w, cfg.clamp)
  kh = [_ld(kh_ref, (n, yc[:, None], xc[None, :], j), pix_ok) for j in range(cfg.k)]  # per-tap planes, as forward
  cols, col_ok = _tap_columns(xs, cfg, wp), xs < w

  def in_row(t, carry):
    tap, tap_ok, row, ok = _input_row(inv_ref, t, y0, cfg, hp, col_ok)

    def channel(ci, dkv):
      g = _ld(g_ref, (n, ci, yc[:, None], xc[None, :]), pix_ok)
      return dkv + g * _row_sum(x_ref, n, ci, row, cols, ok, kh)

    dkv = lax.fori_loop(0, c_dim, channel, jnp.zeros((bh, bw), jnp.float32))
    plt.store(dkv_ref.at[n, ys[:, None], xs[None, :], tap[:, None]], dkv.astype(dkv_ref.dtype),
              mask=tap_ok[:, None] & pix_ok)
    return carry

  lax.fori_loop(0, bh + ext - 1, in_row, 0)


def _bwd_kh_kernel(offs_ref, inv_ref, x_ref, kv_ref, g_ref, dkh_ref, *, cfg: _Config, h: int, w: int):
  """dkh[y,x,j] = Σ_c g·Σᵢ kv_i·x[y+o_i, x+o_j] (paper 003 §1 Backward), one accumulator plane per tap j."""
  bh, bw, ext = cfg.block_h, cfg.block_w, cfg.ext
  c_dim, hp, wp = x_ref.shape[1:]
  n, y0, ys, xs, yc, xc, pix_ok = _tile(bh, bw, h, w, cfg.clamp)
  cols, col_ok = _tap_columns(xs, cfg, wp), xs < w

  def in_row(t, dkh):
    tap, tap_ok, row, ok = _input_row(inv_ref, t, y0, cfg, hp, col_ok)
    kvt = _ld(kv_ref, (n, yc[:, None], xc[None, :], tap[:, None]), tap_ok[:, None] & pix_ok)

    def channel(ci, dkh):
      kg = kvt * _ld(g_ref, (n, ci, yc[:, None], xc[None, :]), pix_ok)
      return tuple(d + kg * _ld(x_ref, (n, ci, row, col), ok)[None, :] for d, col in zip(dkh, cols))

    return lax.fori_loop(0, c_dim, channel, dkh)

  dkh = lax.fori_loop(0, bh + ext - 1, in_row, (jnp.zeros((bh, bw), jnp.float32),) * cfg.k)
  for j, d in enumerate(dkh):
    plt.store(dkh_ref.at[n, ys[:, None], xs[None, :], j], d.astype(dkh_ref.dtype), mask=pix_ok)


def _bwd_x_kernel(offs_ref, inv_ref, kv_ref, kh_ref, g_ref, dx_ref, *, cfg: _Config, h: int, w: int):
  """dx[p, q] = Σ over output pixels (y, x) = (p - o_i, q - o_j) of g[y, x]·kv[y, x, i]·kh[y, x, j]: a gather."""
  bp, bq, ext = cfg.block_p, cfg.block_q, cfg.ext
  c_dim, hp, wp = dx_ref.shape[1:]
  n, p0, ps, qs, _, _, in_ok = _tile(bp, bq, hp, wp, cfg.clamp)  # a tile of input pixels

  def channel(ci, carry):
    def out_row(t, acc):  # output rows p0 - ext + 1 .. p0 + bp - 1 cover every input row of the tile
      y = p0 - (ext - 1) + t
      yc = _bound(y, 0, h - 1, cfg.clamp)
      tap, tap_ok = _taps_of_rows(inv_ref, ps - y, ext)  # vertical tap through which output row y reads row p
      # Each tap's term is elementwise (no tap axis across lanes) and nothing is kept per tap, so the taps are a
      # loop: unrolled, as in the other kernels, this kernel took 255 registers (benchmarks/triton_report.py).
      def tap_j(j, acc):
        xo = qs - offs_ref[j]  # output column that reads input column q through tap j
        ok = (xo >= 0) & (xo < w) & (y >= 0) & (y < h)
        xo = _bound(xo, 0, w - 1, cfg.clamp)
        gk = _ld(g_ref, (n, ci, yc, xo), ok) * _ld(kh_ref, (n, yc, xo, j), ok)  # (bq,)
        kv = _ld(kv_ref, (n, yc, xo[None, :], tap[:, None]), tap_ok[:, None] & ok[None, :])  # (bp, bq)
        return acc + kv * gk[None, :]

      return lax.fori_loop(0, cfg.k, tap_j, acc)

    acc = lax.fori_loop(0, bp + ext - 1, out_row, jnp.zeros((bp, bq), jnp.float32))
    plt.store(dx_ref.at[n, ci, ps[:, None], qs[None, :]], acc.astype(dx_ref.dtype), mask=in_ok)
    return carry

  lax.fori_loop(0, c_dim, channel, 0)


def _nchw(a):
  return jnp.transpose(a, (0, 3, 1, 2))


def _nhwc(a):
  return jnp.transpose(a, (0, 2, 3, 1))


def _pallas_forward(x_padded, kv, kh, cfg: _Config):
  n, h, w, _ = kv.shape
  c = x_padded.shape[3]
  offs, inv = cfg.tables()
  out_dtype = jnp.result_type(x_padded, kv, kh)
  out = common.triton_call(
      functools.partial(_fwd_kernel, cfg=cfg, h=h, w=w),
      out_shape=jax.ShapeDtypeStruct((n, c, h, w), out_dtype),
      grid=(n, common.cdiv(h, cfg.block_h), common.cdiv(w, cfg.block_w)),
      num_warps=cfg.num_warps, name="sepconv_fwd", interpret=cfg.interpret)(offs, inv, _nchw(x_padded), kv, kh)
  return _nhwc(out)


def _pallas_backward(x_padded, kv, kh, g, cfg: _Config):
  n, h, w, k = kv.shape
  _, hp, wp, c = x_padded.shape
  xt, gt = _nchw(x_padded), _nchw(g)
  offs, inv = cfg.tables()
  # Interpret mode turns each masked store into a scatter that XLA:CPU does not update in place for bf16 (17x slower
  # at 128x128), so there the kernel grads are written in fp32 and cast below; on GPU they are written as is.
  interpret = (not common.on_gpu()) if cfg.interpret is None else cfg.interpret
  kgrad_dtype = jnp.float32 if interpret else None
  kgrad = lambda kernel, name, like, *args: common.triton_call(
      functools.partial(kernel, cfg=cfg, h=h, w=w),
      out_shape=jax.ShapeDtypeStruct((n, h, w, k), kgrad_dtype or like.dtype),
      grid=(n, common.cdiv(h, cfg.block_h), common.cdiv(w, cfg.block_w)), num_warps=cfg.kgrad_num_warps, name=name,
      interpret=cfg.interpret)(offs, inv, *args)
  dkv = kgrad(_bwd_kv_kernel, "sepconv_bwd_kv", kv, xt, kh, gt)
  dkh = kgrad(_bwd_kh_kernel, "sepconv_bwd_kh", kh, xt, kv, gt)
  dx = common.triton_call(
      functools.partial(_bwd_x_kernel, cfg=cfg, h=h, w=w),
      out_shape=jax.ShapeDtypeStruct((n, c, hp, wp), x_padded.dtype),
      grid=(n, common.cdiv(hp, cfg.block_p), common.cdiv(wp, cfg.block_q)),
      num_warps=cfg.num_warps, name="sepconv_bwd_x", interpret=cfg.interpret)(offs, inv, kv, kh, gt)
  return _nhwc(dx), dkv.astype(kv.dtype), dkh.astype(kh.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _sepconv_pallas(x_padded, kv, kh, cfg: _Config):
  return _pallas_forward(x_padded, kv, kh, cfg)


def _sepconv_pallas_fwd(x_padded, kv, kh, cfg):
  return _pallas_forward(x_padded, kv, kh, cfg), (x_padded, kv, kh)


def _sepconv_pallas_bwd(cfg, res, g):
  return _pallas_backward(*res, g, cfg)


_sepconv_pallas.defvjp(_sepconv_pallas_fwd, _sepconv_pallas_bwd)


def _separable(x_padded, kv, kh, offsets, impl, name, **pallas_kwargs):
  _check_offsets(offsets)
  _check_shapes(x_padded, kv, kh, offsets, name)
  impl = common.resolve_impl(impl, has_cpu_impl=True, op="sepconv")
  if impl == "xla":
    return _reference(x_padded, kv, kh, offsets)
  if impl == "cpu":
    return _sepconv_cpu(x_padded, kv, kh, offsets)
  return _sepconv_pallas(x_padded, kv, kh, _Config(offsets=offsets, **pallas_kwargs))


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


def sepconv(x_padded: jax.Array, kv: jax.Array, kh: jax.Array, *, impl: str = "auto", **pallas_kwargs) -> jax.Array:
  """Local separable convolution (module docstring; paper 001 §2 "local convolution", paper 003 §1 Eq.).

  Args:
    x_padded: (N, H + K - 1, W + K - 1, C); the caller pads by K // 2 on every side (zeros or replicate).
    kv, kh: (N, H, W, K) vertical and horizontal 1-D kernels per output pixel; K odd is the usual case but any K works.
    impl: "pallas", "xla" (the reference), "cpu" or "auto" (on a GPU `common.auto_choice("sepconv")`, Pallas
      until GPU timings say otherwise; "cpu" elsewhere); see module docstring.
    **pallas_kwargs: block sizes (`block_h`, `block_w`, `block_p`, `block_q`), `num_warps`, `kgrad_num_warps`,
      `interpret`, `clamp` (clamp load indices; default: in interpret mode only), for tests and tuning of the Pallas
      path.

  Returns:
    (N, H, W, C) in the promoted dtype of the inputs; bf16 inputs are accumulated in fp32. Differentiable in all three
    inputs under every impl.
  """
  return _separable(x_padded, kv, kh, dense_offsets(kv.shape[-1]), impl, "sepconv", **pallas_kwargs)


def sepconv_composite(x_padded: jax.Array, kv: jax.Array, kh: jax.Array, d_in: int, d_out: int, pattern: int, *,
                      impl: str = "auto", **pallas_kwargs) -> jax.Array:
  """Composite-dilation separable convolution (paper 003 §"Composite dilation"; taps from :func:`composite_offsets`).

  out[y, x] = Σᵢ Σⱼ x_padded[y + o_i, x + o_j] · kv[y, x, i] · kh[y, x, j] with o = composite_offsets(d_in, d_out,
  pattern); the patch is D = d_in + 2·d_out pixels wide and centred on the output pixel.

  Padding requirement: the caller pads the (N, H, W, C) frame by D // 2 = d_in // 2 + d_out on every side, so
  x_padded is (N, H + d_in + 2·d_out - 1, W + d_in + 2·d_out - 1, C); kv and kh are (N, H, W, d_in + d_out), dense taps
  first. With d_out = 0 this is exactly :func:`sepconv` with K = d_in. Built on the same Pallas kernels as `sepconv`
  (the tap offsets are a static table of the kernel), rather than on a gathered input, because a composite patch
  cannot be expressed as a dense patch of any single re-indexed image.
  """
  offsets = composite_offsets(d_in, d_out, pattern)
  return _separable(x_padded, kv, kh, offsets, impl, "sepconv_composite", **pallas_kwargs)
