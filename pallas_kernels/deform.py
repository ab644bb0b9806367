"""Deformable convolution (DCN v1/v2) and squared deformable convolution: Pallas kernels and `jnp` references.

Definitions (NHWC, odd square kernel k, K = k*k taps, r = k // 2, stride 1, "same" padding, dilation 1)::

  out[n, p, :] = bias + sum_t  m[n, p, t] * S(x[n], p + q_t + off_t[n, p]) @ weight[t]

with q_t = (i - r, j - r) for tap t = i * k + j (row-major) and S the bilinear sample with zeros outside the image
(each of the four corners outside contributes zero, as in torchvision's `deform_conv2d`).

* `deform_conv`: DCN v1 (Dai et al. 2017, the `DefConv(f, Phi)` of Eq. (6), DSFN) with `mask=None`, DCN v2
  (modulated) with a mask (N,H,W,G*K). `offset` (N,H,W,2*G*K) holds (dy, dx) per deformable group g and tap t:
  channel g*2K + 2t is dy, g*2K + 2t + 1 is dx, and mask channel g*K + t modulates that tap; group g samples the
  input channels [g*C/G, (g+1)*C/G) (`offset_groups=G`, torchvision's `deform_conv2d` convention in NHWC; G = 1 is
  the plain DCN). DSFN's TFBFI uses G = 8 (`jaxvfi.models.dsfn`).
* `squared_deform_conv`: SDAN's squared offsets (Eq. (5), SDAN): one (dy, dx) per window, `offset` (N,H,W,2), shared by
  every tap. All taps then share one fractional part, so a window reads a single (k+1) x (k+1) neighbourhood (4 x 4 for
  k = 3) instead of 4 corners per tap.
* `squared_offset_mask`: the mask M of the SDAN loss (Eq. (6), SDAN).

Pallas kernels (Triton lowering, see pallas_kernels/README.md), an implicit GEMM with no im2col buffer in HBM:
  * channel blocks: each deformable group's C/G channels are padded to a whole number of BCI-channel blocks, so a
    block never straddles two groups and shares one set of bilinear corners (C/G = 16, DSFN's 128 / 8, is one block
    with no padding).
  * forward: a program owns BP output pixels x BCO output channels; per tap, group and input-channel block it gathers
    the bilinear samples (masked pointer loads) and `plt.dot`s them with the weight block.
  * weight gradient: a program owns one (tap, BCI, BCO) weight block and one of `splits` strided slices of the pixel
    blocks; it recomputes the samples and reduces `samples^T @ g`. The partial sums are added in a fixed order.
  * input gradient: a program owns BP pixels; `dval = g @ weight[t]^T` gives the sample gradient, from which the offset
    and mask gradients follow by local recomputation of the corner values, and the x gradient is scattered to the
    corners with `atomic_add` on GPU. Interpret mode's atomic_add collapses duplicate indices, so off-GPU the kernel
    writes the per-corner contributions and their pixel indices instead and a `jnp` scatter-add sums them.

Determinism: the forward pass and the offset, mask, weight and bias gradients are bit-reproducible (fixed reduction
order). The x gradient is not, on GPU: float atomics add in arrival order (the XLA reference's scatter-add on GPU is
not deterministic either).

Precision: the kernels compute in float32; `plt.dot` follows `jax.default_matmul_precision` like XLA's own dots:
TF32 tensor cores by default on Ampere/Hopper, exact float32 under `jax.default_matmul_precision("float32")`.
Off-GPU everything is exact float32.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from pallas_kernels import common
from pallas_kernels import sampling

# Block sizes. Triton wants powers of two and `plt.dot` operands with every dim >= 16.
_BP = 64  # output pixels per program (forward, weight gradient)
_BP_SMALL = 32  # pixels per program where many tiles are live: input gradients, squared-offset forward
_BCI_MAX = 16  # input channels per block (the gathered tiles); 32 spilled wherever a group had >= 32 channels
_BCO_MAX = 64
_MIN_DOT = 16
_WGRAD_PROGRAMS = 512  # target program count of the weight-gradient grid (a few waves on an H100's 132 SMs)
# Compiler parameters and block sizes chosen with benchmarks/triton_report.py (BENCHMARKS.md) so that no kernel spills
# on sm_90a or sm_89 at DSFN's size (128 channels, 8 groups), SDAN's squared DCN (64 channels) and a 64-channel
# one-group DCN v1/v2 (SDAN's non-squared variant); each was at 4 warps, 2 stages and 32-channel input blocks before:
# * squared forward: 16 sample tiles and 9 weight blocks live per channel block; it took 140 KB of shared memory
#   (over sm_89's 99 KB) and spilled ~1 KB; at 8 warps and 1 stage 12 KB and 44 B; with 16-channel blocks 8 KB, none.
# * squared input gradient: its neighbourhood rows are a loop (`_sq_ibwd_kernel`); at 8 warps with 16-channel blocks
#   12 KB of shared memory and no spills (unrolled at 4 warps: 100 KB and ~5 KB of spills).
# * weight gradient: ~300 B of spills at 64 channels; none at 8 warps.
# * forward and input gradient: 255 registers and 100-600 B of spills at 64 channels in one group; at 8 warps with
#   16-channel blocks none, and DSFN's (16 channels per group, already 16-channel blocks) drop from 242 and 146
#   registers to about 128 and 104.
_FWD_WARPS = 8
_SQ_FWD_WARPS = 8
_SQ_FWD_STAGES = 1
_BWD_WARPS = 8  # both input-gradient kernels
_WGRAD_WARPS = 8


class _Geom(NamedTuple):
  """Static geometry shared by the kernels.

  Input channels are laid out group-major and padded per group: padded channel q = grp * cpg_pad + l holds real
  channel grp * cpg + l for l < cpg (the weight is padded the same way), so channel block cib belongs to group
  cib // nbg alone.
  """
  n: int
  h: int
  w: int
  cin: int
  cout: int
  k: int
  groups: int
  cpg: int  # real input channels per deformable group, cin // groups
  cpg_pad: int  # padded to a multiple of bci
  bci: int
  bco: int
  cout_pad: int
  hw_pad: int

  @property
  def hw(self) -> int:
    return self.h * self.w

  @property
  def taps(self) -> int:
    return self.k * self.k

  @property
  def cin_pad(self) -> int:
    return self.groups * self.cpg_pad

  @property
  def nbg(self) -> int:
    """Channel blocks per group."""
    return self.cpg_pad // self.bci

  @property
  def ncib(self) -> int:
    return self.groups * self.nbg

  @property
  def ncob(self) -> int:
    return self.cout_pad // self.bco


def _geom(x_shape, w_shape, groups: int = 1) -> _Geom:
  n, h, w, cin = x_shape
  k, _, _, cout = w_shape
  cpg = cin // groups
  bci = min(_BCI_MAX, max(_MIN_DOT, common.next_pow2(cpg)))
  bco = min(_BCO_MAX, max(_MIN_DOT, common.next_pow2(cout)))
  return _Geom(n=n, h=h, w=w, cin=cin, cout=cout, k=k, groups=groups, cpg=cpg, cpg_pad=common.cdiv(cpg, bci) * bci,
               bci=bci, bco=bco, cout_pad=common.cdiv(cout, bco) * bco, hw_pad=common.cdiv(h * w, _BP) * _BP)


def _check(x, offset, weight, mask, squared: bool, groups: int = 1):
  if x.ndim != 4 or weight.ndim != 4:
    raise ValueError(f"expected x (N,H,W,Cin) and weight (k,k,Cin,Cout), got {x.shape} and {weight.shape}")
  k = weight.shape[0]
  if weight.shape[1] != k or k % 2 != 1 or weight.shape[2] != x.shape[3]:
    raise ValueError(f"weight must be (k,k,Cin,Cout) with odd k and Cin={x.shape[3]}, got {weight.shape}")
  if int(groups) != groups or groups < 1 or x.shape[3] % groups:
    raise ValueError(f"offset_groups must be a positive divisor of Cin={x.shape[3]}, got {groups}")
  n_off = 2 if squared else 2 * groups * k * k
  if offset.shape != x.shape[:3] + (n_off,):
    raise ValueError(f"offset must be {x.shape[:3] + (n_off,)} (offset_groups={groups}), got {offset.shape}")
  if mask is not None and mask.shape != x.shape[:3] + (groups * k * k,):
    raise ValueError(f"mask must be {x.shape[:3] + (groups * k * k,)} (offset_groups={groups}), got {mask.shape}")


# ----------------------------------------------------------------------------------------------------------------------
# jnp references (the CPU path and the oracle for the kernels)
# ----------------------------------------------------------------------------------------------------------------------


def _reference(x, offset, weight, bias, mask, squared: bool, groups: int = 1):
  n, h, w, cin = x.shape
  k, _, _, cout = weight.shape
  r = k // 2
  x_flat = x.reshape(n, h * w, groups, cin // groups)
  taps = jnp.arange(k * k, dtype=jnp.int32)
  offset = offset.astype(jnp.float32)
  if squared:  # one (dy, dx) per window, shared by the taps (and the one group)
    offset = offset[..., None, :]
  else:  # taps-major (K, N, H, W, G, 2) so that the scan below slices one tap per step
    offset = jnp.moveaxis(offset.reshape(n, h, w, groups, k * k, 2), 4, 0)
  mask = None if mask is None else jnp.moveaxis(mask.reshape(n, h, w, groups, k * k), 4, 0)
  ys = jnp.arange(h, dtype=jnp.float32)[None, :, None, None]
  xs = jnp.arange(w, dtype=jnp.float32)[None, None, :, None]

  # A scan over the k*k taps, each step rematerialised in the backward pass: only one tap's samples are live at a
  # time, never a (N,H,W,K,C) tensor (1.1 GB per intermediate at DSFN sizes, 4 x 180 x 320 x 9 x 128 floats).
  @jax.checkpoint
  def contribution(t, off_t, m_t, w_t):
    off_t = offset if squared else off_t
    # Clipped where all four corners are outside anyway, so the int32 corner indices cannot overflow.
    py = jnp.clip(ys + (t // k - r).astype(jnp.float32) + off_t[..., 0], -2.0, h + 1.0)
    px = jnp.clip(xs + (t % k - r).astype(jnp.float32) + off_t[..., 1], -2.0, w + 1.0)
    s = sampling.bilinear_zeros(x_flat, py, px, h, w)
    if m_t is not None:
      s = s * m_t[..., None].astype(jnp.float32)
    return jnp.einsum("nhwc,cd->nhwd", s.reshape(n, h, w, cin), w_t.astype(jnp.float32))

  def step(acc, inputs):
    return acc + contribution(*inputs), None

  out, _ = lax.scan(step, jnp.zeros((n, h, w, cout), jnp.float32),
                    (taps, None if squared else offset, mask, weight.reshape(k * k, cin, cout)))
  if bias is not None:
    out = out + bias.astype(jnp.float32)
  return out.astype(x.dtype)


def deform_conv_reference(x: jax.Array, offset: jax.Array, weight: jax.Array, bias: jax.Array | None = None,
                          mask: jax.Array | None = None, *, offset_groups: int = 1) -> jax.Array:
  """`jnp` deformable convolution (see module docstring), differentiable by autodiff; loops over the k*k taps."""
  _check(x, offset, weight, mask, squared=False, groups=offset_groups)
  return _reference(x, offset, weight, bias, mask, squared=False, groups=offset_groups)


def squared_deform_conv_reference(x: jax.Array, offset: jax.Array, weight: jax.Array,
                                  bias: jax.Array | None = None) -> jax.Array:
  """`jnp` squared deformable convolution (Eq. (5), SDAN): one (dy, dx) in `offset` (N,H,W,2) for the whole window."""
  _check(x, offset, weight, None, squared=True)
  return _reference(x, offset, weight, bias, None, squared=True)


def squared_offset_mask(offset: jax.Array, kernel_size: int = 3) -> jax.Array:
  """Mask M of the SDAN loss (Eq. (6), SDAN): 1 where the whole shifted window lies inside the image, else 0.

  The window of pixel p shifted by the squared offset d covers p + d + q for q in [-r, r]^2; it is inside when
  every such position lies in [0, H) x [0, W). The paper only says M marks "the areas out of the image range"
  computed from the offsets; the half-open bounds follow the authors' released code, which tests the shifted
  centre only: `kernel_size=1` reproduces that criterion exactly. Returns (N,H,W,1) float32, no gradient.
  """
  if offset.ndim != 4 or offset.shape[-1] != 2:
    raise ValueError(f"offset must be (N,H,W,2), got {offset.shape}")
  _, h, w, _ = offset.shape
  r = kernel_size // 2
  offset = lax.stop_gradient(offset.astype(jnp.float32))
  py = jnp.arange(h, dtype=jnp.float32)[None, :, None] + offset[..., 0]
  px = jnp.arange(w, dtype=jnp.float32)[None, None, :] + offset[..., 1]
  inside = (py - r >= 0) & (py + r < h) & (px - r >= 0) & (px + r < w)
  return inside.astype(jnp.float32)[..., None]


# ----------------------------------------------------------------------------------------------------------------------
# Kernel building blocks (traced inside Pallas kernels)
# ----------------------------------------------------------------------------------------------------------------------


def _pixels(pb, bp: int, g: _Geom):
  """Flat pixel ids of pixel block pb: (p, in-image flag, row, column), p clamped for the address computations."""
  # lax.div/rem rather than // and % in the kernels: jnp's floor-division fix-ups do not lower to Triton on scalars.
  p = pb * bp + jnp.arange(bp, dtype=jnp.int32)
  ok = p < g.hw
  pc = jnp.minimum(p, g.hw - 1)
  return pc, ok, lax.div(pc, g.w), lax.rem(pc, g.w)


def _load_vec(ref, idx, ok):
  return plt.load(ref.at[idx], mask=ok, other=0.0).astype(jnp.float32)


class _Channels(NamedTuple):
  """Input-channel block cib: its group, its first padded channel, its real channels (clamped) and their validity."""
  grp: jax.Array  # scalar group index
  q0: jax.Array  # first padded channel, cib * bci: the block's rows of the padded weight
  l0: jax.Array  # first channel within the group's padded range: the block's columns of the per-group buffers
  ci: jax.Array  # (BCI,) real input channels, clamped into [0, Cin)
  valid: jax.Array  # (BCI,) channel exists (not group padding)


def _channels(cib, g: _Geom) -> _Channels:
  grp = lax.div(cib, g.nbg)
  l0 = pl.multiple_of(lax.rem(cib, g.nbg) * g.bci, g.bci)
  local = l0 + jnp.arange(g.bci, dtype=jnp.int32)
  valid = local < g.cpg
  ci = grp * g.cpg + jnp.minimum(local, g.cpg - 1)
  return _Channels(grp, pl.multiple_of(cib * g.bci, g.bci), l0, ci, valid)


def _gather(x_ref, pix, ok, ch: _Channels, g: _Geom):
  """x[pix, ch.ci] as a (BP, BCI) tile; zero where `ok` is false or the channel is padding (masked pointer loads)."""
  idx = pix[:, None] * g.cin + ch.ci[None, :]
  return plt.load(x_ref.at[idx], mask=ok[:, None] & ch.valid[None, :], other=0.0).astype(jnp.float32)


def _floor_split(pos, lo: float, hi: float):
  """Integer part and fraction of a sample coordinate, clipped to [lo, hi] where all corners are outside anyway."""
  pos = jnp.clip(pos, lo, hi)
  base = jnp.floor(pos)
  return base.astype(jnp.int32), pos - base


class _Corner(NamedTuple):
  pix: jax.Array  # (BP,) flat pixel index n*H*W + y*W + x, clamped into the image
  ok: jax.Array  # (BP,) corner inside the image and pixel valid
  wgt: jax.Array  # (BP,) bilinear weight
  dwy: jax.Array  # (BP,) d wgt / d y
  dwx: jax.Array  # (BP,) d wgt / d x


def _corners(n, py, px, ok, g: _Geom) -> list[_Corner]:
  y0, ly = _floor_split(py, -2.0, g.h + 1.0)
  x0, lx = _floor_split(px, -2.0, g.w + 1.0)
  hy = 1.0 - ly
  hx = 1.0 - lx
  out = []
  for a, b, wgt, dwy, dwx in ((0, 0, hy * hx, -hx, -hy), (0, 1, hy * lx, -lx, hy),
                              (1, 0, ly * hx, hx, -ly), (1, 1, ly * lx, lx, ly)):
    yi = y0 + a
    xi = x0 + b
    inside = ok & (yi >= 0) & (yi < g.h) & (xi >= 0) & (xi < g.w)
    pix = n * g.hw + jnp.clip(yi, 0, g.h - 1) * g.w + jnp.clip(xi, 0, g.w - 1)
    out.append(_Corner(pix, inside, wgt, dwy, dwx))
  return out


def _offset_index(n, pc, grp, t, g: _Geom):
  """Flat index of tap t's dy in group grp's offsets (dx follows): torchvision's channel g*2K + 2t."""
  return (n * g.hw + pc) * (2 * g.groups * g.taps) + grp * (2 * g.taps) + 2 * t


def _mask_index(n, pc, grp, t, g: _Geom):
  return (n * g.hw + pc) * (g.groups * g.taps) + grp * g.taps + t


def _tap_corners(n, t, grp, off_ref, pc, ok, row, col, squared: bool, g: _Geom):
  """The four corners of tap t in group grp for a block of pixels; squared offsets read the window's one (dy, dx)."""
  r = g.k // 2
  i, j = lax.div(t, g.k), lax.rem(t, g.k)
  base = (n * g.hw + pc) * 2 if squared else _offset_index(n, pc, grp, t, g)
  dy = _load_vec(off_ref, base, ok)
  dx = _load_vec(off_ref, base + 1, ok)
  py = (row + (i - r)).astype(jnp.float32) + dy
  px = (col + (j - r)).astype(jnp.float32) + dx
  return _corners(n, py, px, ok, g)


def _window(n, off_ref, pc, ok, row, col, g: _Geom):
  """Squared offsets: the (k+1) x (k+1) neighbourhood of a window and its shared bilinear fractions."""
  r = g.k // 2
  base = (n * g.hw + pc) * 2
  dy = _load_vec(off_ref, base, ok)
  dx = _load_vec(off_ref, base + 1, ok)
  y0, ly = _floor_split((row - r).astype(jnp.float32) + dy, -g.k - 1.0, g.h + 1.0)
  x0, lx = _floor_split((col - r).astype(jnp.float32) + dx, -g.k - 1.0, g.w + 1.0)
  row_ok, row_pix = zip(*[_window_row(n, y0, ok, a, g) for a in range(g.k + 1)])
  cols = [x0 + b for b in range(g.k + 1)]
  col_ok = [(x >= 0) & (x < g.w) for x in cols]
  col_pix = [jnp.clip(x, 0, g.w - 1) for x in cols]
  return list(row_ok), col_ok, list(row_pix), col_pix, ly[:, None], lx[:, None], y0


def _window_row(n, y0, ok, a, g: _Geom):
  """Row a (static or traced) of a window's neighbourhood: in-image flag and flat index of its first column."""
  y = y0 + a
  return ok & (y >= 0) & (y < g.h), n * g.hw + jnp.clip(y, 0, g.h - 1) * g.w


def _dval(g_ref, w_ref, n, p0, t, q0, bp: int, g: _Geom):
  """Sample gradient of tap t: g[pixels, :] @ weight[t, channel block at q0, :]^T as a (BP, BCI) tile."""
  def body(cob, acc):
    co0 = pl.multiple_of(cob * g.bco, g.bco)
    gt = g_ref[n, pl.ds(p0, bp), pl.ds(co0, g.bco)]
    wt = w_ref[t, pl.ds(q0, g.bci), pl.ds(co0, g.bco)]
    return acc + plt.dot(gt, wt, trans_b=True)
  return lax.fori_loop(0, g.ncob, body, jnp.zeros((bp, g.bci), jnp.float32))


def _scatter_x(dx_refs, n, slot, p0, pix, ok, ch: _Channels, contrib, bp: int, g: _Geom, atomic: bool):
  """Adds `contrib` (BP, BCI) to dx[pix, ch.ci]: atomics on GPU, per-slot buffers + jnp scatter off-GPU.

  Off-GPU, `slot` numbers the (group, tap or neighbour, corner) combinations: each slot holds one corner position
  per pixel and its contributions to that group's (padded) channels.
  """
  if atomic:
    (dx_ref,) = dx_refs
    idx = pix[:, None] * g.cin + ch.ci[None, :]
    plt.atomic_add(dx_ref, (idx,), contrib, mask=ok[:, None] & ch.valid[None, :])
  else:
    cx_ref, _ = dx_refs
    cx_ref[n, slot, pl.ds(p0, bp), pl.ds(ch.l0, g.bci)] = jnp.where(ok[:, None], contrib, 0.0)


def _store_pix(dx_refs, n, slot, p0, pix, bp: int, atomic: bool):
  if not atomic:
    _, pix_ref = dx_refs
    pix_ref[n, slot, pl.ds(p0, bp)] = pix


# ----------------------------------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------------------------------


def _fwd_kernel(x_ref, off_ref, m_ref, w_ref, b_ref, o_ref, *, g: _Geom, modulated: bool):
  n, pb, cob = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  co0 = pl.multiple_of(cob * g.bco, g.bco)
  pc, ok, row, col = _pixels(pb, _BP, g)

  def tap(t, acc):
    def group(grp, acc):
      corners = _tap_corners(n, t, grp, off_ref, pc, ok, row, col, False, g)
      wgts = [c.wgt for c in corners]
      if modulated:
        m = _load_vec(m_ref, _mask_index(n, pc, grp, t, g), ok)
        wgts = [wt * m for wt in wgts]

      def cblock(b, acc):
        ch = _channels(grp * g.nbg + b, g)
        s = sum(wt[:, None] * _gather(x_ref, c.pix, c.ok, ch, g) for c, wt in zip(corners, wgts))
        return acc + plt.dot(s, w_ref[t, pl.ds(ch.q0, g.bci), pl.ds(co0, g.bco)])
      return lax.fori_loop(0, g.nbg, cblock, acc)
    return lax.fori_loop(0, g.groups, group, acc)
  acc = lax.fori_loop(0, g.taps, tap, jnp.zeros((_BP, g.bco), jnp.float32))
  acc = acc + b_ref[pl.ds(co0, g.bco)][None, :]
  o_ref[n, pl.ds(pl.multiple_of(pb * _BP, _BP), _BP), pl.ds(co0, g.bco)] = acc


def _sq_fwd_kernel(x_ref, off_ref, w_ref, b_ref, o_ref, *, g: _Geom):
  """Squared offsets: each window reads one (k+1)^2 neighbourhood, interpolated row by row (separable bilinear)."""
  n, pb, cob = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  co0 = pl.multiple_of(cob * g.bco, g.bco)
  pc, ok, row, col = _pixels(pb, _BP_SMALL, g)
  row_ok, col_ok, row_pix, col_pix, ly, lx, _ = _window(n, off_ref, pc, ok, row, col, g)
  hy, hx = 1.0 - ly, 1.0 - lx

  def body(cib, acc):
    ch = _channels(cib, g)
    prev = None
    for a in range(g.k + 1):
      v = [_gather(x_ref, row_pix[a] + col_pix[b], row_ok[a] & col_ok[b], ch, g) for b in range(g.k + 1)]
      cur = [hx * v[j] + lx * v[j + 1] for j in range(g.k)]
      if prev is not None:
        for j in range(g.k):
          s = hy * prev[j] + ly * cur[j]
          acc = acc + plt.dot(s, w_ref[(a - 1) * g.k + j, pl.ds(ch.q0, g.bci), pl.ds(co0, g.bco)])
      prev = cur
    return acc
  acc = lax.fori_loop(0, g.ncib, body, jnp.zeros((_BP_SMALL, g.bco), jnp.float32))
  acc = acc + b_ref[pl.ds(co0, g.bco)][None, :]
  o_ref[n, pl.ds(pl.multiple_of(pb * _BP_SMALL, _BP_SMALL), _BP_SMALL), pl.ds(co0, g.bco)] = acc


def _wgrad_kernel(x_ref, off_ref, m_ref, g_ref, dw_ref, *, g: _Geom, modulated: bool, squared: bool, splits: int):
  """dW[t] partial sums: sum over this program's pixel blocks of samples_t^T @ g (no atomics)."""
  split, t, blk = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  cib, cob = lax.div(blk, g.ncob), lax.rem(blk, g.ncob)
  ch = _channels(cib, g)
  co0 = pl.multiple_of(cob * g.bco, g.bco)
  npb = g.hw_pad // _BP
  nblocks = g.n * npb

  def body(it, acc):
    gb = split + it * splits
    live = gb < nblocks
    gb = jnp.minimum(gb, nblocks - 1)
    n, pb = lax.div(gb, npb), lax.rem(gb, npb)
    pc, ok, row, col = _pixels(pb, _BP, g)
    ok = ok & live
    corners = _tap_corners(n, t, ch.grp, off_ref, pc, ok, row, col, squared, g)
    wgts = [c.wgt for c in corners]
    if modulated:
      m = _load_vec(m_ref, _mask_index(n, pc, ch.grp, t, g), ok)
      wgts = [wt * m for wt in wgts]
    s = sum(wt[:, None] * _gather(x_ref, c.pix, c.ok, ch, g) for c, wt in zip(corners, wgts))
    gt = g_ref[n, pl.ds(pl.multiple_of(pb * _BP, _BP), _BP), pl.ds(co0, g.bco)]
    return acc + plt.dot(s, gt, trans_a=True)
  acc = lax.fori_loop(0, common.cdiv(nblocks, splits), body, jnp.zeros((g.bci, g.bco), jnp.float32))
  dw_ref[split, t, pl.ds(ch.q0, g.bci), pl.ds(co0, g.bco)] = acc


def _ibwd_kernel(x_ref, off_ref, m_ref, w_ref, g_ref, *refs, g: _Geom, modulated: bool, atomic: bool):
  """Per-point offsets: x, offset and mask gradients of BP pixels, all groups, taps and channels."""
  *dx_refs, doff_ref, dm_ref = refs
  n, pb = pl.program_id(0), pl.program_id(1)
  p0 = pl.multiple_of(pb * _BP_SMALL, _BP_SMALL)
  pc, ok, row, col = _pixels(pb, _BP_SMALL, g)
  zero = jnp.zeros((_BP_SMALL,), jnp.float32)

  def tap(t, carry):
    def group(grp, carry):
      corners = _tap_corners(n, t, grp, off_ref, pc, ok, row, col, False, g)
      m = _load_vec(m_ref, _mask_index(n, pc, grp, t, g), ok) if modulated else None
      slot0 = (grp * g.taps + t) * 4
      for c_id, c in enumerate(corners):
        _store_pix(dx_refs, n, slot0 + c_id, p0, c.pix, _BP_SMALL, atomic)

      def cblock(b, acc):
        dm, dpy, dpx = acc
        ch = _channels(grp * g.nbg + b, g)
        dval = _dval(g_ref, w_ref, n, p0, t, ch.q0, _BP_SMALL, g)
        vals = [_gather(x_ref, c.pix, c.ok, ch, g) for c in corners]
        if modulated:
          dm = dm + jnp.sum(sum(c.wgt[:, None] * v for c, v in zip(corners, vals)) * dval, axis=1)
          dval = m[:, None] * dval
        dpy = dpy + jnp.sum(sum(c.dwy[:, None] * v for c, v in zip(corners, vals)) * dval, axis=1)
        dpx = dpx + jnp.sum(sum(c.dwx[:, None] * v for c, v in zip(corners, vals)) * dval, axis=1)
        for c_id, c in enumerate(corners):
          _scatter_x(dx_refs, n, slot0 + c_id, p0, c.pix, c.ok, ch, c.wgt[:, None] * dval, _BP_SMALL, g, atomic)
        return dm, dpy, dpx
      dm, dpy, dpx = lax.fori_loop(0, g.nbg, cblock, (zero, zero, zero))
      o = grp * (2 * g.taps) + 2 * t
      doff_ref[n, o, pl.ds(p0, _BP_SMALL)] = dpy
      doff_ref[n, o + 1, pl.ds(p0, _BP_SMALL)] = dpx
      if modulated:
        dm_ref[n, grp * g.taps + t, pl.ds(p0, _BP_SMALL)] = dm
      return carry
    return lax.fori_loop(0, g.groups, group, carry)
  lax.fori_loop(0, g.taps, tap, 0)


def _sq_ibwd_kernel(x_ref, off_ref, w_ref, g_ref, *refs, g: _Geom, atomic: bool):
  """Squared offsets: x and offset gradients from one (k+1)^2 neighbourhood per window, processed row by row.

  With s_ij = hy * hrow_i[j] + ly * hrow_{i+1}[j] and hrow_a[j] = hx * v_a[j] + lx * v_a[j+1], neighbourhood row a
  receives e = dval of tap row a (weight hy) and f = dval of tap row a-1 (weight ly): dy += (f - e) . hrow_a,
  dx += (hy e + ly f) . (v_a[j+1] - v_a[j]), and x[a, b] += hx (hy e + ly f)_b + lx (hy e + ly f)_{b-1}.

  The neighbourhood rows are a loop (`fori_loop`, not unrolled) that carries f, the previous row's dval: f = 0 for
  the first row and e = 0 for the last (a `cond` skips its dots), which gives the one-sided terms. Unrolled,
  the 16 positions' indices and masks and every row's tiles were live at once: 255 registers, kilobytes of spills
  and 100 KB of shared memory (benchmarks/triton_report.py, BENCHMARKS.md).
  """
  *dx_refs, doff_ref = refs
  n, pb = pl.program_id(0), pl.program_id(1)
  p0 = pl.multiple_of(pb * _BP_SMALL, _BP_SMALL)
  pc, ok, row, col = _pixels(pb, _BP_SMALL, g)
  row_ok, col_ok, row_pix, col_pix, ly, lx, y0 = _window(n, off_ref, pc, ok, row, col, g)
  del row_ok, row_pix  # rows are recomputed inside the row loop
  hy, hx = 1.0 - ly, 1.0 - lx
  kk = g.k + 1
  if not atomic:
    def store_row(a, carry):
      _, rpix = _window_row(n, y0, ok, a, g)
      for b in range(kk):
        _store_pix(dx_refs, n, a * kk + b, p0, rpix + col_pix[b], _BP_SMALL, atomic)
      return carry
    lax.fori_loop(0, kk, store_row, 0)
  zero_tile = jnp.zeros((_BP_SMALL, g.bci), jnp.float32)

  def body(cib, carry):
    ch = _channels(cib, g)

    def neighbourhood_row(a, carry):
      dpy, dpx, prev = carry
      rok, rpix = _window_row(n, y0, ok, a, g)
      v = [_gather(x_ref, rpix + col_pix[b], rok & col_ok[b], ch, g) for b in range(kk)]
      cur = lax.cond(a < g.k,  # no tap row a below the last one: e = 0 there
                     lambda: tuple(_dval(g_ref, w_ref, n, p0, a * g.k + j, ch.q0, _BP_SMALL, g) for j in range(g.k)),
                     lambda: (zero_tile,) * g.k)
      dvh = []
      for j in range(g.k):
        hrow = hx * v[j] + lx * v[j + 1]
        e, f = cur[j], prev[j]
        dpy = dpy + jnp.sum((f - e) * hrow, axis=1)
        dvh_j = hy * e + ly * f
        dpx = dpx + jnp.sum(dvh_j * (v[j + 1] - v[j]), axis=1)
        dvh.append(dvh_j)
      for b in range(kk):
        if b == 0:
          contrib = hx * dvh[0]
        elif b == g.k:
          contrib = lx * dvh[g.k - 1]
        else:
          contrib = hx * dvh[b] + lx * dvh[b - 1]
        _scatter_x(dx_refs, n, a * kk + b, p0, rpix + col_pix[b], rok & col_ok[b], ch, contrib, _BP_SMALL, g,
                   atomic)
      return dpy, dpx, tuple(cur)

    dpy, dpx = carry
    dpy, dpx, _ = lax.fori_loop(0, kk, neighbourhood_row, (dpy, dpx, (zero_tile,) * g.k))
    return dpy, dpx
  zero = jnp.zeros((_BP_SMALL,), jnp.float32)
  dpy, dpx = lax.fori_loop(0, g.ncib, body, (zero, zero))
  doff_ref[n, 0, pl.ds(p0, _BP_SMALL)] = dpy
  doff_ref[n, 1, pl.ds(p0, _BP_SMALL)] = dpx


# ----------------------------------------------------------------------------------------------------------------------
# Pallas calls and the custom VJP
# ----------------------------------------------------------------------------------------------------------------------


def _pad_weight(weight, g: _Geom):
  """(k,k,Cin,Cout) -> (K, G*cpg_pad, cout_pad): each group's input channels padded to whole channel blocks."""
  w = weight.astype(jnp.float32).reshape(g.taps, g.groups, g.cpg, g.cout)
  w = jnp.pad(w, ((0, 0), (0, 0), (0, g.cpg_pad - g.cpg), (0, g.cout_pad - g.cout)))
  return w.reshape(g.taps, g.cin_pad, g.cout_pad)


def _pad_bias(bias, g: _Geom):
  if bias is None:
    return jnp.zeros((g.cout_pad,), jnp.float32)
  return jnp.pad(bias.astype(jnp.float32), (0, g.cout_pad - g.cout))


def _flat(a):
  return jnp.zeros((1,), jnp.float32) if a is None else a.astype(jnp.float32).reshape(-1)


def _forward(x, offset, weight, bias, mask, squared: bool, groups: int, interpret: bool | None):
  g = _geom(x.shape, weight.shape, groups)
  out_shape = jax.ShapeDtypeStruct((g.n, g.hw_pad, g.cout_pad), jnp.float32)
  grid = (g.n, g.hw_pad // (_BP_SMALL if squared else _BP), g.ncob)
  args = [_flat(x), _flat(offset)]
  if squared:
    kernel = functools.partial(_sq_fwd_kernel, g=g)
  else:
    kernel = functools.partial(_fwd_kernel, g=g, modulated=mask is not None)
    args.append(_flat(mask))
  args += [_pad_weight(weight, g), _pad_bias(bias, g)]
  out = common.triton_call(kernel, out_shape=out_shape, grid=grid,
                            num_warps=_SQ_FWD_WARPS if squared else _FWD_WARPS,
                            num_stages=_SQ_FWD_STAGES if squared else 2, interpret=interpret,
                            name="sq_deform_fwd" if squared else "deform_fwd")(*args)
  return out[:, :g.hw, :g.cout].reshape(g.n, g.h, g.w, g.cout)


def _pad_cotangent(ct, g: _Geom):
  ct = ct.astype(jnp.float32).reshape(g.n, g.hw, g.cout)
  return jnp.pad(ct, ((0, 0), (0, g.hw_pad - g.hw), (0, g.cout_pad - g.cout)))


def _weight_grad(x, offset, mask, gp, squared: bool, interpret: bool | None, g: _Geom):
  nblocks = g.n * (g.hw_pad // _BP)
  splits = max(1, min(nblocks, _WGRAD_PROGRAMS // (g.taps * g.ncib * g.ncob)))
  kernel = functools.partial(_wgrad_kernel, g=g, modulated=mask is not None, squared=squared, splits=splits)
  out_shape = jax.ShapeDtypeStruct((splits, g.taps, g.cin_pad, g.cout_pad), jnp.float32)
  parts = common.triton_call(kernel, out_shape=out_shape, grid=(splits, g.taps, g.ncib * g.ncob),
                              num_warps=_WGRAD_WARPS, interpret=interpret,
                              name="deform_wgrad")(_flat(x), _flat(offset), _flat(mask), gp)
  dw = jnp.sum(parts, axis=0).reshape(g.taps, g.groups, g.cpg_pad, g.cout_pad)[:, :, :g.cpg, :g.cout]
  return dw.reshape(g.k, g.k, g.cin, g.cout)


def _input_grad(x, offset, weight, mask, gp, squared: bool, interpret: bool | None, g: _Geom):
  """x, offset and mask gradients. Returns (dx (N,H,W,Cin), doff NHWC, dmask NHWC or None)."""
  atomic = common.on_gpu() if interpret is None else not interpret
  slots = (g.k + 1) ** 2 if squared else 4 * g.taps  # corner positions per group and pixel
  n_off = 2 if squared else 2 * g.groups * g.taps
  modulated = mask is not None
  out_shape = []
  aliases = {}
  args = [_flat(x), _flat(offset)]
  if not squared:
    args.append(_flat(mask))
  args += [_pad_weight(weight, g), gp]
  if atomic:
    aliases = {len(args): 0}  # atomics need a zero-initialised dx buffer: pass one in and alias it to the output
    args.append(jnp.zeros((g.n * g.hw * g.cin,), jnp.float32))
    out_shape.append(jax.ShapeDtypeStruct((g.n * g.hw * g.cin,), jnp.float32))
  else:
    out_shape.append(jax.ShapeDtypeStruct((g.n, g.groups * slots, g.hw_pad, g.cpg_pad), jnp.float32))
    out_shape.append(jax.ShapeDtypeStruct((g.n, g.groups * slots, g.hw_pad), jnp.int32))
  out_shape.append(jax.ShapeDtypeStruct((g.n, n_off, g.hw_pad), jnp.float32))
  if squared:
    kernel = functools.partial(_sq_ibwd_kernel, g=g, atomic=atomic)
  else:
    out_shape.append(jax.ShapeDtypeStruct((g.n, g.groups * g.taps if modulated else 1, g.hw_pad), jnp.float32))
    kernel = functools.partial(_ibwd_kernel, g=g, modulated=modulated, atomic=atomic)
  if atomic:
    kernel = _drop_aliased_input(kernel, len(args) - 1)
  outs = common.triton_call(kernel, out_shape=tuple(out_shape), grid=(g.n, g.hw_pad // _BP_SMALL), num_warps=_BWD_WARPS,
                             interpret=interpret, input_output_aliases=aliases,
                             name="sq_deform_bwd" if squared else "deform_bwd")(*args)
  if atomic:
    dx, doff, *rest = outs
  else:
    contrib, pix, doff, *rest = outs
    # Interpret-mode stand-in for the atomics: one scatter-add of the per-corner contributions, slot s belonging to
    # group s // slots.
    grp = jnp.broadcast_to(jnp.repeat(jnp.arange(g.groups, dtype=jnp.int32), slots)[None, :, None], pix.shape)
    dx = jnp.zeros((g.n * g.hw, g.groups, g.cpg_pad), jnp.float32)
    dx = dx.at[pix.reshape(-1), grp.reshape(-1)].add(contrib.reshape(-1, g.cpg_pad))[..., :g.cpg]
  dx = dx.reshape(g.n, g.h, g.w, g.cin)
  doff = jnp.transpose(doff[:, :, :g.hw], (0, 2, 1)).reshape(g.n, g.h, g.w, n_off)
  dm = None
  if modulated:
    dm = jnp.transpose(rest[0][:, :, :g.hw], (0, 2, 1)).reshape(g.n, g.h, g.w, g.groups * g.taps)
  return dx, doff, dm


def _drop_aliased_input(kernel, index: int):
  """The aliased zero buffer arrives both as an input ref and as the output ref; the kernel uses the output."""
  def wrapped(*refs):
    return kernel(*refs[:index], *refs[index + 1:])
  return wrapped


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _deform_op(x, offset, weight, bias, mask, squared, groups, interpret):
  return _forward(x, offset, weight, bias, mask, squared, groups, interpret).astype(x.dtype)


def _deform_op_fwd(x, offset, weight, bias, mask, squared, groups, interpret):
  out = _forward(x, offset, weight, bias, mask, squared, groups, interpret).astype(x.dtype)
  return out, (x, offset, weight, bias, mask)


def _deform_op_bwd(squared, groups, interpret, res, ct):
  x, offset, weight, bias, mask = res
  g = _geom(x.shape, weight.shape, groups)
  gp = _pad_cotangent(ct, g)
  dw = _weight_grad(x, offset, mask, gp, squared, interpret, g)
  dx, doff, dm = _input_grad(x, offset, weight, mask, gp, squared, interpret, g)
  db = None if bias is None else jnp.sum(ct.astype(jnp.float32), axis=(0, 1, 2)).astype(bias.dtype)
  dm = None if mask is None else dm.astype(mask.dtype)
  return dx.astype(x.dtype), doff.astype(offset.dtype), dw.astype(weight.dtype), db, dm


_deform_op.defvjp(_deform_op_fwd, _deform_op_bwd)


def _check_int32(*arrays):
  for a in arrays:
    if a is not None and a.size >= 2 ** 31:
      raise ValueError(f"the Pallas deformable conv addresses its inputs with int32 indices; got {a.size} elements")


def deform_conv_pallas(x: jax.Array, offset: jax.Array, weight: jax.Array, bias: jax.Array | None = None,
                       mask: jax.Array | None = None, *, offset_groups: int = 1,
                       interpret: bool | None = None) -> jax.Array:
  """Pallas deformable convolution (forward and backward kernels). `interpret=None`: interpret mode off-GPU."""
  _check(x, offset, weight, mask, squared=False, groups=offset_groups)
  _check_int32(x, offset, mask)
  return _deform_op(x, offset, weight, bias, mask, False, int(offset_groups), interpret)


def squared_deform_conv_pallas(x: jax.Array, offset: jax.Array, weight: jax.Array, bias: jax.Array | None = None, *,
                               interpret: bool | None = None) -> jax.Array:
  """Pallas squared deformable convolution. `interpret=None`: interpret mode off-GPU."""
  _check(x, offset, weight, None, squared=True)
  _check_int32(x, offset)
  return _deform_op(x, offset, weight, bias, None, True, 1, interpret)


def deform_conv(x: jax.Array, offset: jax.Array, weight: jax.Array, bias: jax.Array | None = None,
                mask: jax.Array | None = None, *, offset_groups: int = 1, impl: str = "auto") -> jax.Array:
  """Deformable convolution, DCN v1 (`mask=None`) or v2 (modulated), with G deformable groups; module docstring.

  Args:
    x: (N,H,W,Cin) input.
    offset: (N,H,W,2*G*k*k) (dy, dx) in pixels: channel g*2K + 2t is dy and g*2K + 2t + 1 is dx of tap t
      (row-major) for the input channels of group g (torchvision's convention).
    weight: (k,k,Cin,Cout), odd k, as in Flax's `nn.Conv`.
    bias: optional (Cout,).
    mask: optional (N,H,W,G*k*k) modulation (DCN v2), channel g*K + t.
    offset_groups: G, a divisor of Cin: group g samples channels [g*Cin/G, (g+1)*Cin/G) at its own offsets.
    impl: "pallas" (interpret mode off-GPU), "xla" (the `jnp` reference) or "auto": the reference off-GPU; on a
      GPU `common.auto_choice("deform_conv")` for the forward and `"deform_conv.backward"` for the backward (until
      GPU timings say otherwise: the Pallas forward, differentiated by XLA, since the Pallas input gradient is
      made of fenced atomics; pallas_kernels/README.md).
  Returns:
    (N,H,W,Cout) in x's dtype; stride 1, "same" padding.
  Raises:
    ValueError: shapes that do not fit together, or G not a divisor of Cin.
  """
  pallas = lambda *a, interpret=None: deform_conv_pallas(*a, offset_groups=offset_groups, interpret=interpret)
  reference = lambda *a: deform_conv_reference(*a, offset_groups=offset_groups)
  return _dispatch("deform_conv", impl, pallas, reference, (x, offset, weight, bias, mask))


def squared_deform_conv(x: jax.Array, offset: jax.Array, weight: jax.Array, bias: jax.Array | None = None, *,
                        impl: str = "auto") -> jax.Array:
  """Squared deformable convolution (Eq. (5), SDAN): `offset` (N,H,W,2) = one (dy, dx) per window.

  `impl` as for `deform_conv`, with the keys "squared_deform_conv" and "squared_deform_conv.backward".
  """
  pallas = lambda *a, interpret=None: squared_deform_conv_pallas(*a, interpret=interpret)
  return _dispatch("squared_deform_conv", impl, pallas, squared_deform_conv_reference, (x, offset, weight, bias))


def _dispatch(op: str, impl: str, pallas, reference, args, interpret: bool | None = None):
  """Runs `op` as `impl` resolves; "auto" on a GPU may pair a forward of one impl with the backward of the other
  (`common.split_vjp`). `interpret` reaches the Pallas kernels (tests run the split in interpret mode)."""
  resolved = common.resolve_impl(impl, op=op)
  fwd = resolved
  bwd = common.auto_choice(f"{op}.backward") if impl == "auto" and common.on_gpu() else resolved
  impls = {"pallas": functools.partial(pallas, interpret=interpret), "xla": reference}
  if fwd == bwd:
    return impls[fwd](*args)
  return common.split_vjp(impls[fwd], impls[bwd])(*args)
