"""Local separable convolution: Pallas kernel (interpret mode on CPU), `jnp` reference and the "cpu" formulation vs a
naive NumPy loop.

The oracle loops over output pixels and contracts each pixel's explicit K×K patch (the formula of paper 003 §1 as
written); its gradient is the hand-derived one (paper 003 §1 "Backward pass") and is itself checked against central
finite differences.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import common
from pallas_kernels import separable as sc

SMALL_BLOCKS = dict(block_h=2, block_w=8, block_p=2, block_q=8)


def oracle(x, kv, kh, offsets):
  """out[n, y, x, c] = Σᵢ Σⱼ x[n, y + o_i, x + o_j, c] kv[n, y, x, i] kh[n, y, x, j], one pixel at a time."""
  x, kv, kh = (np.asarray(a, np.float64) for a in (x, kv, kh))
  o = np.asarray(offsets)
  n, h, w, _ = kv.shape
  out = np.zeros((n, h, w, x.shape[3]))
  for y in range(h):
    for xx in range(w):
      patch = x[:, y + o[:, None], xx + o[None, :], :]
      out[:, y, xx] = np.einsum("nijc,ni,nj->nc", patch, kv[:, y, xx], kh[:, y, xx])
  return out


def oracle_vjp(x, kv, kh, offsets, g):
  """Analytic gradients: dK = Σ_c P·g, dkv_i = Σⱼ dK_ij kh_j, dkh_j = Σᵢ dK_ij kv_i; dx scatters kv kh g back."""
  x, kv, kh, g = (np.asarray(a, np.float64) for a in (x, kv, kh, g))
  o = np.asarray(offsets)
  n, h, w, _ = kv.shape
  dx, dkv, dkh = np.zeros_like(x), np.zeros_like(kv), np.zeros_like(kh)
  for y in range(h):
    for xx in range(w):
      patch = x[:, y + o[:, None], xx + o[None, :], :]
      dk = np.einsum("nijc,nc->nij", patch, g[:, y, xx])
      dkv[:, y, xx] = np.einsum("nij,nj->ni", dk, kh[:, y, xx])
      dkh[:, y, xx] = np.einsum("nij,ni->nj", dk, kv[:, y, xx])
      dx[:, y + o[:, None], xx + o[None, :], :] += np.einsum("ni,nj,nc->nijc", kv[:, y, xx], kh[:, y, xx],
                                                             g[:, y, xx])
  return dx, dkv, dkh


def _inputs(seed, n, h, w, c, k, ext=None, dtype=np.float32):
  ext = k if ext is None else ext
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, h + ext - 1, w + ext - 1, c)).astype(dtype)
  kv = rng.standard_normal((n, h, w, k)).astype(dtype)
  kh = rng.standard_normal((n, h, w, k)).astype(dtype)
  g = rng.standard_normal((n, h, w, c)).astype(dtype)
  return x, kv, kh, g


def _check_vjp(fn, x, kv, kh, g, offsets, rtol):
  out, vjp = jax.vjp(fn, jnp.asarray(x), jnp.asarray(kv), jnp.asarray(kh))
  grads = vjp(jnp.asarray(g))
  want = [oracle(x, kv, kh, offsets)] + list(oracle_vjp(x, kv, kh, offsets, g))
  for name, got, ref in zip(("out", "dx", "dkv", "dkh"), [out] + list(grads), want):
    assert got.shape == ref.shape, name
    # Relative to the largest entry: sums of up to K² products of N(0, 1) values.
    err = np.abs(np.asarray(got, np.float64) - ref).max() / np.abs(ref).max()
    assert err < rtol, f"{name}: relative error {err:.2e}"


def test_oracle_gradient_matches_finite_differences():
  x, kv, kh, g = (a.astype(np.float64) for a in _inputs(0, 1, 3, 4, 2, 3))
  offsets = sc.dense_offsets(3)
  loss = lambda x_, kv_, kh_: float(np.sum(oracle(x_, kv_, kh_, offsets) * g))
  analytic = oracle_vjp(x, kv, kh, offsets, g)
  rng = np.random.default_rng(1)
  for arg, grad in enumerate(analytic):
    for _ in range(4):
      idx = tuple(rng.integers(0, s) for s in grad.shape)
      args = [x.copy(), kv.copy(), kh.copy()]
      args[arg][idx] += 1e-6
      plus = loss(*args)
      args[arg][idx] -= 2e-6
      minus = loss(*args)
      np.testing.assert_allclose((plus - minus) / 2e-6, grad[idx], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("k,n,h,w,c,blocks", [
    (1, 2, 7, 13, 3, SMALL_BLOCKS),
    (3, 2, 7, 13, 3, SMALL_BLOCKS),
    (5, 1, 6, 9, 2, {}),  # default blocks (4, 32): one partial tile
    (51, 1, 5, 6, 2, {}),
    (51, 1, 3, 9, 1, SMALL_BLOCKS),
])
@pytest.mark.parametrize("impl", ["pallas", "xla", "cpu"])
def test_sepconv_values_and_gradients(k, n, h, w, c, blocks, impl):
  x, kv, kh, g = _inputs(k, n, h, w, c, k)
  fn = lambda a, b, d: sc.sepconv(a, b, d, impl=impl, **(blocks if impl == "pallas" else {}))
  _check_vjp(fn, x, kv, kh, g, sc.dense_offsets(k), rtol=1e-5)


@pytest.mark.parametrize("composite", [False, True])
def test_unclamped_gpu_indexing_in_interpret_mode(composite):
  """The GPU path's loads rely on masks alone (`clamp=False`, issue 28); interpret mode reads masked lanes as zeros
  too, so the same index arithmetic is checked here against the oracle, partial tiles on every side included."""
  offsets = sc.composite_offsets(3, 2, 1) if composite else sc.dense_offsets(5)
  x, kv, kh, g = _inputs(11, 1, 7, 9, 2, len(offsets), ext=max(offsets) + 1)
  if composite:
    fn = lambda a, b, d: sc.sepconv_composite(a, b, d, 3, 2, 1, impl="pallas", clamp=False, **SMALL_BLOCKS)
  else:
    fn = lambda a, b, d: sc.sepconv(a, b, d, impl="pallas", clamp=False, **SMALL_BLOCKS)
  _check_vjp(fn, x, kv, kh, g, offsets, rtol=1e-5)


def test_reference_equals_pallas_under_jit():
  x, kv, kh, _ = _inputs(3, 2, 5, 11, 3, 7)
  ref = jax.jit(sc.sepconv_reference)(x, kv, kh)
  pal = jax.jit(lambda a, b, d: sc.sepconv(a, b, d, impl="pallas", **SMALL_BLOCKS))(x, kv, kh)
  np.testing.assert_allclose(pal, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["pallas", "xla", "cpu"])
def test_bf16_inputs_accumulate_in_fp32(impl):
  x, kv, kh, g = _inputs(7, 1, 5, 9, 3, 5, dtype=jnp.bfloat16)
  out, vjp = jax.vjp(lambda a, b, d: sc.sepconv(a, b, d, impl=impl), x, kv, kh)
  grads = vjp(g)
  assert out.dtype == jnp.bfloat16 and all(d.dtype == jnp.bfloat16 for d in grads)
  f64 = lambda a: np.asarray(a, np.float64)
  want = [oracle(f64(x), f64(kv), f64(kh), range(5))] + list(oracle_vjp(f64(x), f64(kv), f64(kh), range(5), f64(g)))
  for got, ref in zip([out] + list(grads), want):
    # Only the final rounding to bf16 (relative 2^-9) plus fp32 accumulation: far tighter than bf16 accumulation.
    np.testing.assert_allclose(f64(got), ref, rtol=2 ** -8, atol=2 ** -8 * np.abs(ref).max() * 0.05)


def test_composite_offsets_by_hand():
  # d_in = 3, d_out = 4: patch 11 wide, dense taps at 4..6, two ring taps per side (ring positions p = 1..4).
  assert sc.composite_offsets(3, 4, 0) == (4, 5, 6, 0, 2, 8, 10)  # p ∈ {2, 4}
  assert sc.composite_offsets(3, 4, 1) == (4, 5, 6, 0, 3, 7, 10)  # p ∈ {1, 4}
  assert sc.composite_offsets(5, 0, 1) == (0, 1, 2, 3, 4)
  # Fig. 11 of paper 003: d_in = 11, d_out = 10 -> 31-pixel patch from 21 taps, both patterns reach the border.
  for pattern in (0, 1):
    offs = sc.composite_offsets(11, 10, pattern)
    assert len(offs) == 21 and len(set(offs)) == 21 and min(offs) == 0 and max(offs) == 30
    assert offs[:11] == tuple(range(10, 21))
  for bad in [(4, 2, 0), (3, 3, 0), (3, 2, 2), (3, -2, 0)]:
    with pytest.raises(ValueError):
      sc.composite_offsets(*bad)


@pytest.mark.parametrize("d_in,d_out,pattern", [(3, 4, 0), (3, 4, 1), (1, 2, 1)])
@pytest.mark.parametrize("impl", ["pallas", "xla", "cpu"])
def test_composite_values_and_gradients(d_in, d_out, pattern, impl):
  offsets = sc.composite_offsets(d_in, d_out, pattern)
  x, kv, kh, g = _inputs(d_in + d_out, 2, 5, 9, 2, len(offsets), ext=d_in + 2 * d_out)
  kwargs = SMALL_BLOCKS if impl == "pallas" else {}
  fn = lambda a, b, d: sc.sepconv_composite(a, b, d, d_in, d_out, pattern, impl=impl, **kwargs)
  _check_vjp(fn, x, kv, kh, g, offsets, rtol=1e-5)


@pytest.mark.parametrize("impl", ["pallas", "xla", "cpu"])
def test_composite_without_ring_is_sepconv(impl):
  x, kv, kh, _ = _inputs(11, 1, 6, 7, 3, 5)
  dense = sc.sepconv(x, kv, kh, impl=impl)
  for pattern in (0, 1):
    np.testing.assert_array_equal(sc.sepconv_composite(x, kv, kh, 5, 0, pattern, impl=impl), dense)


def test_auto_off_gpu_is_the_cpu_formulation():
  if common.on_gpu():
    pytest.skip("impl='auto' selects Pallas on GPU")
  x, kv, kh, _ = _inputs(5, 1, 4, 6, 3, 3)
  np.testing.assert_array_equal(sc.sepconv(x, kv, kh, impl="auto"), sc.sepconv(x, kv, kh, impl="cpu"))


def test_cpu_formulation_equals_reference_under_jit():
  """Sizes beyond the NumPy loop's reach (51 taps, 24x40, two images, every gradient): the reference is the oracle."""
  x, kv, kh, g = _inputs(13, 2, 24, 40, 3, 51)

  def run(impl):
    def f(a, b, d, e):
      out, vjp = jax.vjp(lambda a_, b_, d_: sc.sepconv(a_, b_, d_, impl=impl), a, b, d)
      return (out,) + vjp(e)
    return jax.jit(f)(x, kv, kh, g)

  for name, got, ref in zip(("out", "dx", "dkv", "dkh"), run("cpu"), run("xla")):
    err = float(jnp.abs(got - ref).max() / jnp.abs(ref).max())
    assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_rejects_bad_shapes():
  x, kv, kh, _ = _inputs(5, 1, 4, 6, 3, 3)
  with pytest.raises(ValueError, match="x_padded must be"):
    sc.sepconv(x[:, 1:], kv, kh)
  with pytest.raises(ValueError, match="equal shape"):
    sc.sepconv(x, kv, kh[..., :2])
  with pytest.raises(ValueError, match="impl"):
    sc.sepconv(x, kv, kh, impl="cuda")
  with pytest.raises(ValueError, match="x_padded must be"):
    sc.sepconv(x[:, 1:], kv, kh, impl="cpu")


def _lower(fn, *args):
  try:
    return common.lower_for_cuda(fn, *args)
  except common.CudaLoweringUnavailable as e:
    pytest.skip(str(e))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("composite", [False, True])
def test_cuda_lowering_of_forward_and_backward(dtype, composite):
  """Traces the real Triton lowering (interpret=False) for an H100: block shapes, gathers, masks, reductions."""
  n, h, w, c = 1, 40, 72, 3  # not multiples of the blocks
  if composite:
    d_in, d_out = 11, 10
    k, ext = d_in + d_out, d_in + 2 * d_out
    fn = lambda a, b, d: sc.sepconv_composite(a, b, d, d_in, d_out, 1, impl="pallas", interpret=False)
  else:
    k = ext = 51
    fn = lambda a, b, d: sc.sepconv(a, b, d, impl="pallas", interpret=False)
  xs = jax.ShapeDtypeStruct((n, h + ext - 1, w + ext - 1, c), dtype)
  ks = jax.ShapeDtypeStruct((n, h, w, k), dtype)
  assert common.count_triton_calls(_lower(fn, xs, ks, ks)) == 1

  def fwd_bwd(a, b, d):
    out, vjp = jax.vjp(fn, a, b, d)
    return vjp(out)

  text = _lower(fwd_bwd, xs, ks, ks)
  assert common.count_triton_calls(text) == 4  # forward, kv grad, kh grad, x grad
  # The kernels read kv, kh and write their gradients in the callers' (N, H, W, K) layout: no transposes of them.
  transposes = [line for line in text.splitlines() if "stablehlo.transpose" in line]
  assert transposes and not any(f"{n}x{h}x{w}x{k}x" in line or f"{n}x{k}x{h}x{w}x" in line for line in transposes)


def test_cuda_lowering_rejects_non_power_of_two_blocks():
  """The lowering check is not vacuous: a 24-wide block breaks Triton's power-of-2 rule and must fail."""
  xs = jax.ShapeDtypeStruct((1, 20, 20, 3), jnp.float32)
  ks = jax.ShapeDtypeStruct((1, 16, 16, 5), jnp.float32)
  fn = lambda a, b, d: sc.sepconv(a, b, d, impl="pallas", interpret=False, block_w=24)
  with pytest.raises(ValueError, match="power of 2"):
    _lower(fn, xs, ks, ks)
