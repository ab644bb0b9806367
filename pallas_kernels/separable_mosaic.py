"""The dense local separable convolution's forward as a Mosaic GPU kernel (issue 28, item 5; `separable.py` has the op).

  out[n, y, x, c] = Σᵢ Σⱼ x_padded[n, y + i, x + j, c] · kv[n, y, x, i] · kh[n, y, x, j],   i, j ∈ [0, K)

Pallas' Triton lowering, which `separable.py`'s kernels use, is deprecated since jax 0.11; Mosaic GPU is its
successor (pallas_kernels/README.md, "Past the deprecated Triton lowering"). The separable convolution needs no
per-lane gather (every tap reads a contiguous window of a row at a static offset), so it maps onto Mosaic GPU's model:
bulk (TMA) copies from global to shared memory, then whole-warpgroup arithmetic on windows of shared memory.

One program per (image, output row, 128 output columns), one warpgroup (128 threads, one output pixel each):
  1. copy the program's kv and kh, (K, 128) each with taps leading, to shared memory;
  2. per channel: copy the band of K input rows, BWIN = next power of two ≥ 128 + K - 1 columns wide, to shared
     memory; for each vertical tap i (a loop), the horizontal sum r = Σⱼ kh[j] · band[i, j : j + 128] runs over
     static windows, every thread summing its own pixel's taps in registers (no cross-lane reduction, as in the
     Triton kernels' static taps); acc += kv[i] · r; the row of 128 results goes back through shared memory.
Layouts around the call: x (N, C, Hp, Wq) and kv, kh (N, H, K, Wk), padded so every copy is whole (Wk a multiple of
128, Wq = Wk + BWIN - 128): copies of whole boxes keep every transfer a multiple of 128 bytes, which Mosaic GPU needs.

Scope: the dense op (`separable.dense_offsets`), forward only; the backward of `sepconv_mosaic` is the `jnp`
reference's (`separable.sepconv_reference`), so it trains, but only the forward is a Mosaic kernel. fp32 compute.
`interpret=True` runs the kernel in Mosaic GPU's interpret mode on any machine (the tests' oracle check on CPU); its
parameters are a private jax name in jax 0.10 (`_interpret_params`), so that path may need updating on a jax upgrade.
`separable.sepconv(impl=...)` does not dispatch here: nothing has timed this kernel on a GPU (BENCHMARKS.md).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from pallas_kernels import common
from pallas_kernels import separable

BLOCK_W = 128  # output columns per program: one warpgroup, one pixel per thread


def _interpret_params():
  """Mosaic GPU's interpret-mode parameters (a private jax module in jax 0.10-0.11), or a clear error."""
  try:
    from jax._src.pallas.mosaic_gpu.interpret import params  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # moved in another jax release
    raise NotImplementedError(f"this jax ({jax.__version__}) has no Mosaic GPU interpret mode where pallas_kernels "
                              "looks for it (jax._src.pallas.mosaic_gpu.interpret.params)") from e
  return params.InterpretGPUParams()


def _band_width(k: int) -> int:
  return common.next_pow2(BLOCK_W + k - 1)


def _forward_call(shape_n_c_h_wk: tuple[int, int, int, int], k: int, interpret: bool):
  """The `plgpu.kernel` for x (N, C, H + K - 1, Wq), kv and kh (N, H, K, Wk) -> out (N, C, H, Wk)."""
  n, c_dim, h, wk = shape_n_c_h_wk
  bwin = _band_width(k)

  def body(x_gmem, kv_gmem, kh_gmem, o_gmem, band, kv_smem, kh_smem, o_smem, barrier):
    ni, y, xb = lax.axis_index("n"), lax.axis_index("y"), lax.axis_index("x")
    x0 = pl.multiple_of(xb * BLOCK_W, BLOCK_W)
    plgpu.copy_gmem_to_smem(kv_gmem.at[ni, y, :, pl.ds(x0, BLOCK_W)], kv_smem, barrier)
    plgpu.barrier_wait(barrier)
    plgpu.copy_gmem_to_smem(kh_gmem.at[ni, y, :, pl.ds(x0, BLOCK_W)], kh_smem, barrier)
    plgpu.barrier_wait(barrier)
    for ci in range(c_dim):  # static: C is 3 (RGB) in SepConv
      plgpu.copy_gmem_to_smem(x_gmem.at[ni, ci, pl.ds(y, k), pl.ds(x0, bwin)], band, barrier)
      plgpu.barrier_wait(barrier)

      def vertical_tap(i, acc):
        row = band[i, pl.ds(0, BLOCK_W)] * kh_smem[0, :]
        for j in range(1, k):  # static windows: each thread sums its own pixel's K taps
          row = row + band[i, pl.ds(j, BLOCK_W)] * kh_smem[j, :]
        return acc + kv_smem[i, :] * row

      zeros = jnp.zeros((BLOCK_W,), jnp.float32)
      if not interpret:  # the carry must enter in the layout the body gives it (a row loaded from shared memory);
        # the interpret mode has no rule for layout_cast and needs none
        zeros = plgpu.layout_cast(zeros, plgpu.Layout.WG_STRIDED((BLOCK_W,), vec_size=1))
      acc = lax.fori_loop(0, k, vertical_tap, zeros)
      o_smem[...] = acc
      plgpu.commit_smem()
      plgpu.copy_smem_to_gmem(o_smem, o_gmem.at[ni, ci, y, pl.ds(x0, BLOCK_W)])
      plgpu.wait_smem_to_gmem(0)  # the band and o_smem are reused by the next channel

  return plgpu.kernel(
      body, out_type=jax.ShapeDtypeStruct((n, c_dim, h, wk), jnp.float32),
      grid=(n, h, wk // BLOCK_W), grid_names=("n", "y", "x"),
      scratch_types=[plgpu.SMEM((k, bwin), jnp.float32), plgpu.SMEM((k, BLOCK_W), jnp.float32),
                     plgpu.SMEM((k, BLOCK_W), jnp.float32), plgpu.SMEM((BLOCK_W,), jnp.float32),
                     plgpu.Barrier(num_arrivals=1)],
      interpret=_interpret_params() if interpret else None)


def _forward(x_padded, kv, kh, interpret: bool):
  n, h, w, k = kv.shape
  c_dim = x_padded.shape[-1]
  wk = common.cdiv(w, BLOCK_W) * BLOCK_W
  wq = wk + _band_width(k) - BLOCK_W
  # Zero columns beyond the image: they meet only output columns >= W, which are cut off below.
  x_t = jnp.pad(jnp.transpose(x_padded.astype(jnp.float32), (0, 3, 1, 2)),
                ((0, 0), (0, 0), (0, 0), (0, wq - x_padded.shape[2])))
  to_taps_first = lambda a: jnp.pad(jnp.transpose(a.astype(jnp.float32), (0, 1, 3, 2)),
                                    ((0, 0), (0, 0), (0, 0), (0, wk - w)))
  out = _forward_call((n, c_dim, h, wk), k, interpret)(x_t, to_taps_first(kv), to_taps_first(kh))
  return jnp.transpose(out[..., :w], (0, 2, 3, 1)).astype(x_padded.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _sepconv_mosaic(x_padded, kv, kh, interpret):
  return _forward(x_padded, kv, kh, interpret)


def _sepconv_mosaic_fwd(x_padded, kv, kh, interpret):
  return _forward(x_padded, kv, kh, interpret), (x_padded, kv, kh)


def _sepconv_mosaic_bwd(interpret, res, g):
  del interpret
  _, vjp = jax.vjp(separable.sepconv_reference, *res)
  return vjp(g)


_sepconv_mosaic.defvjp(_sepconv_mosaic_fwd, _sepconv_mosaic_bwd)


def sepconv_mosaic(x_padded: jax.Array, kv: jax.Array, kh: jax.Array, *, interpret: bool | None = None) -> jax.Array:
  """Dense local separable convolution (paper 001 §2) with a Mosaic GPU forward kernel (module docstring).

  Args:
    x_padded: (N, H + K - 1, W + K - 1, C) input, already padded by the caller (as `separable.sepconv`).
    kv, kh: (N, H, W, K) per-pixel vertical and horizontal kernels.
    interpret: run Mosaic GPU's interpret mode (any machine); None: interpret unless on a GPU.
  Returns:
    (N, H, W, C) in x_padded's dtype (fp32 accumulation). Gradients: the `jnp` reference's.
  Raises:
    ValueError: shapes that do not fit one another (as `separable.sepconv_reference`).
  """
  jax.eval_shape(separable.sepconv_reference, x_padded, kv, kh)  # the op's shape checks (ValueError)
  if interpret is None:
    interpret = not common.on_gpu()
  return _sepconv_mosaic(x_padded, kv, kh, bool(interpret))
