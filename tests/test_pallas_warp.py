"""Tests of `pallas_kernels.warp` against an independent float64 NumPy oracle (a per-pixel loop) and SciPy.

The Pallas kernels run in interpret mode on CPU (`common.triton_call` picks it off-GPU). Interpret mode takes the
scatter-add path for the image gradient, so the GPU `atomic_add` path is only checked to lower for CUDA here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from helpers import pallas_call_names
from pallas_kernels import common
from pallas_kernels import warp

PADDINGS = ("zeros", "border")
# Small blocks so the tests cover several pixel blocks, a masked pixel tail (2*6*7 = 84 pixels is not a multiple of
# 16) and, with C = 5, two channel blocks with a masked channel tail.
SMALL_BLOCK = (16, 4)


def _oracle(image, flow, padding, cot=None):
  """Naive per-pixel bilinear sampling in float64; with a cotangent also the analytic image and flow gradients.

  Written from the definition (Jaderberg et al. 2015, Eqs. (5)-(7)), independent of the `jnp` reference.
  """
  image = np.asarray(image, np.float64)
  flow = np.asarray(flow, np.float64)
  n, h, w, c = image.shape
  cot = np.zeros((n, h, w, c)) if cot is None else np.asarray(cot, np.float64)
  out = np.zeros((n, h, w, c))
  gimg = np.zeros_like(image)
  gflow = np.zeros_like(flow)
  for b in range(n):
    for i in range(h):
      for j in range(w):
        x = j + flow[b, i, j, 0]
        y = i + flow[b, i, j, 1]
        sx = sy = 1.0
        if padding == "border":
          sx = 1.0 if 0 < x < w - 1 else 0.0
          sy = 1.0 if 0 < y < h - 1 else 0.0
          x = min(max(x, 0.0), w - 1.0)
          y = min(max(y, 0.0), h - 1.0)
        x0 = int(np.floor(x))
        y0 = int(np.floor(y))
        fx = x - x0
        fy = y - y0
        dxo = dyo = 0.0
        for oy in (0, 1):
          for ox in (0, 1):
            yi, xi = y0 + oy, x0 + ox
            if not (0 <= yi < h and 0 <= xi < w):
              continue
            wy = fy if oy else 1.0 - fy
            wx = fx if ox else 1.0 - fx
            v = image[b, yi, xi]
            out[b, i, j] += wy * wx * v
            gimg[b, yi, xi] += wy * wx * cot[b, i, j]
            dxo += wy * (1.0 if ox else -1.0) * np.dot(v, cot[b, i, j])
            dyo += wx * (1.0 if oy else -1.0) * np.dot(v, cot[b, i, j])
        gflow[b, i, j] = (dxo * sx, dyo * sy)
  return out, gimg, gflow


def _scipy_warp(image, flow, padding):
  """`scipy.ndimage.map_coordinates(order=1)`: 'grid-constant' with cval 0 is the zeros padding; the border padding
  clamps the coordinates first."""
  image = np.asarray(image, np.float64)
  n, h, w, c = image.shape
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  out = np.zeros_like(image)
  for b in range(n):
    y = ys + np.asarray(flow[b, ..., 1], np.float64)
    x = xs + np.asarray(flow[b, ..., 0], np.float64)
    if padding == "border":
      y, x = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
    for ch in range(c):
      out[b, ..., ch] = ndimage.map_coordinates(image[b, ..., ch], [y, x], order=1, mode="grid-constant", cval=0.0)
  return out


def _positions(flow):
  n, h, w, _ = flow.shape
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  return xs + np.asarray(flow[..., 0]), ys + np.asarray(flow[..., 1])


def _make(kind, shape=(2, 6, 7, 5), seed=0):
  """Image and a flow that leaves the image on every side, fully and by less than one pixel."""
  rng = np.random.default_rng(seed)
  n, h, w, _ = shape
  image = rng.normal(size=shape).astype(np.float32)
  # Target positions from 3 pixels before to 3 after the image; the flow is the target minus the pixel position.
  tx = rng.integers(-3, w + 3, size=(n, h, w)).astype(np.float64)
  ty = rng.integers(-3, h + 3, size=(n, h, w)).astype(np.float64)
  if kind != "integer":
    # Fractional parts in [0.2, 0.8]: away from the grid lines and from the clamp bounds, where the derivative jumps.
    tx += rng.uniform(0.2, 0.8, size=tx.shape)
    ty += rng.uniform(0.2, 0.8, size=ty.shape)
  xs, ys = _positions(np.zeros((n, h, w, 2)))
  flow = np.stack([tx - xs, ty - ys], -1).astype(np.float32)
  x, y = _positions(flow)
  for p, size in ((x, w), (y, h)):  # Guard the coverage this test claims, on both sides of both axes.
    assert (p < -1).any() and (p > size).any() and ((p > 0) & (p < size - 1)).any()
    if kind == "integer":
      assert (p == -1).any() and (p == size).any()
    else:  # Partly outside: one corner in the image, one out.
      assert ((p > -1) & (p < 0)).any() and ((p > size - 1) & (p < size)).any()
  return image, flow


def _forward_fns():
  return {
      "reference": lambda im, fl, pad: warp.backward_warp_reference(im, fl, pad),
      "pallas": lambda im, fl, pad: warp.backward_warp_pallas(im, fl, pad, block=SMALL_BLOCK),
      "pallas-default-block": lambda im, fl, pad: warp.backward_warp(im, fl, padding=pad, impl="pallas"),
      "auto": lambda im, fl, pad: warp.backward_warp(im, fl, padding=pad, impl="auto"),
      "cpu": lambda im, fl, pad: warp.backward_warp(im, fl, padding=pad, impl="cpu"),
  }


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("kind", ["fractional", "integer"])
def test_oracle_agrees_with_scipy(padding, kind):
  image, flow = _make(kind)
  np.testing.assert_allclose(_oracle(image, flow, padding)[0], _scipy_warp(image, flow, padding), atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("kind", ["fractional", "integer"])
@pytest.mark.parametrize("impl", list(_forward_fns()))
def test_forward_matches_oracle(impl, kind, padding):
  image, flow = _make(kind)
  got = _forward_fns()[impl](jnp.asarray(image), jnp.asarray(flow), padding)
  assert got.dtype == jnp.float32 and got.shape == image.shape
  np.testing.assert_allclose(np.asarray(got), _oracle(image, flow, padding)[0], atol=2e-6, rtol=1e-6)


def test_integer_flow_is_a_shift():
  """Hand-computed: an integer flow (1, -2) copies pixels; rows and columns shifted in from outside are zero."""
  image = np.random.default_rng(7).normal(size=(1, 6, 7, 3)).astype(np.float32)
  flow = np.broadcast_to(np.array([1.0, -2.0], np.float32), (1, 6, 7, 2))
  expected = np.zeros_like(image)
  expected[:, 2:, :-1] = image[:, :-2, 1:]
  got = warp.backward_warp_pallas(jnp.asarray(image), jnp.asarray(flow), "zeros", block=SMALL_BLOCK)
  np.testing.assert_array_equal(np.asarray(got), expected)
  expected_border = image[:, np.clip(np.arange(6) - 2, 0, 5)][:, :, np.clip(np.arange(7) + 1, 0, 6)]
  got = warp.backward_warp_pallas(jnp.asarray(image), jnp.asarray(flow), "border", block=SMALL_BLOCK)
  np.testing.assert_array_equal(np.asarray(got), expected_border)


@pytest.mark.parametrize("impl", ["reference", "pallas", "cpu"])
def test_bfloat16(impl):
  image, flow = _make("fractional")
  image_bf16 = jnp.asarray(image, jnp.bfloat16)
  got = _forward_fns()[impl](image_bf16, jnp.asarray(flow), "zeros")
  assert got.dtype == jnp.bfloat16
  # The sum is formed in float32 from the bfloat16 pixels, then rounded once to bfloat16 (relative 2**-8).
  want = _oracle(np.asarray(image_bf16.astype(jnp.float32)), flow, "zeros")[0]
  np.testing.assert_allclose(np.asarray(got.astype(jnp.float32)), want, rtol=2**-8, atol=1e-6)
  cot = np.random.default_rng(1).normal(size=image.shape)
  _, vjp = jax.vjp(lambda im, fl: _forward_fns()[impl](im, fl, "zeros"), image_bf16, jnp.asarray(flow))
  gimg, gflow = vjp(jnp.asarray(cot, jnp.bfloat16))
  assert gimg.dtype == jnp.bfloat16 and gflow.dtype == jnp.float32
  _, want_gimg, want_gflow = _oracle(np.asarray(image_bf16.astype(jnp.float32)), flow, "zeros",
                                     np.asarray(jnp.asarray(cot, jnp.bfloat16).astype(jnp.float32)))
  np.testing.assert_allclose(np.asarray(gimg.astype(jnp.float32)), want_gimg, rtol=2e-2, atol=2e-2)
  np.testing.assert_allclose(np.asarray(gflow), want_gflow, rtol=1e-5, atol=1e-5)


def _grad_fns():
  return {
      "reference": lambda im, fl, pad: warp.backward_warp(im, fl, padding=pad, impl="xla"),
      "pallas": lambda im, fl, pad: warp.backward_warp_pallas(im, fl, pad, block=SMALL_BLOCK),
      "cpu": lambda im, fl, pad: warp.backward_warp(im, fl, padding=pad, impl="cpu"),
  }


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("impl", ["reference", "pallas", "cpu"])
def test_gradients_match_analytic_oracle(impl, padding):
  image, flow = _make("fractional")
  cot = np.random.default_rng(2).normal(size=image.shape).astype(np.float32)
  fn = jax.jit(lambda im, fl: jax.vjp(lambda a, b: _grad_fns()[impl](a, b, padding), im, fl)[1](jnp.asarray(cot)))
  gimg, gflow = fn(jnp.asarray(image), jnp.asarray(flow))
  _, want_gimg, want_gflow = _oracle(image, flow, padding, cot)
  np.testing.assert_allclose(np.asarray(gimg), want_gimg, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(gflow), want_gflow, atol=1e-5, rtol=1e-5)
  if padding == "border":  # The clamp must have cut some flow gradients.
    assert (want_gflow == 0).any() and (want_gflow != 0).any()


@pytest.mark.parametrize("padding", PADDINGS)
def test_oracle_gradient_vs_finite_differences(padding):
  """The analytic oracle gradient against central differences of the oracle in float64, element by element."""
  image, flow = _make("fractional")
  cot = np.random.default_rng(3).normal(size=image.shape)
  loss = lambda im, fl: float(np.sum(_oracle(im, fl, padding)[0] * cot))
  _, gimg, gflow = _oracle(image, flow, padding, cot)
  flow64 = flow.astype(np.float64)
  eps = 1e-3  # Far below the 0.2 distance to a grid line, so the sample stays in its cell.
  for idx in np.ndindex(flow.shape):
    d = np.zeros_like(flow64)
    d[idx] = eps
    np.testing.assert_allclose((loss(image, flow64 + d) - loss(image, flow64 - d)) / (2 * eps), gflow[idx],
                               atol=1e-8)
  # The output is linear in the image: one directional difference per random direction suffices.
  v = np.random.default_rng(4).normal(size=image.shape)
  np.testing.assert_allclose((loss(image + v, flow64) - loss(image - v, flow64)) / 2, np.sum(gimg * v), rtol=1e-10)


@pytest.mark.parametrize("padding", PADDINGS)
def test_pallas_gradient_vs_finite_differences(padding):
  """Directional central differences of the Pallas kernel itself (float32); bilinear sampling is quadratic along a
  line inside a cell, so central differences are exact up to rounding."""
  image, flow = _make("fractional")
  rng = np.random.default_rng(5)
  cot = jnp.asarray(rng.normal(size=image.shape), jnp.float32)
  fwd = jax.jit(lambda im, fl: jnp.sum(warp.backward_warp_pallas(im, fl, padding, block=SMALL_BLOCK) * cot))
  gimg, gflow = jax.jit(jax.grad(lambda im, fl: jnp.sum(
      warp.backward_warp_pallas(im, fl, padding, block=SMALL_BLOCK) * cot), argnums=(0, 1)))(image, flow)
  v = rng.normal(size=flow.shape).astype(np.float32)
  eps = 0.05
  fd = (fwd(image, flow + eps * v) - fwd(image, flow - eps * v)) / (2 * eps)
  np.testing.assert_allclose(float(fd), float(jnp.sum(gflow * v)), rtol=1e-3)
  u = rng.normal(size=image.shape).astype(np.float32)
  fd = (fwd(image + u, flow) - fwd(image - u, flow)) / 2
  np.testing.assert_allclose(float(fd), float(jnp.sum(gimg * u)), rtol=1e-4)


@pytest.mark.parametrize("impl", ["reference", "pallas", "cpu"])
def test_image_gradient_with_duplicate_indices(impl):
  """Every output pixel samples (x, y) = (2.25, 1.5): 128 pixels, 8 pixel blocks, all hitting the same 4 inputs.

  Hand-computed: with an all-ones cotangent on channel 0 (twos on channel 1), input (1, 2) receives
  128 * 0.5 * 0.75 = 48, (1, 3) and (2, 3) get 128 * 0.5 * 0.25 = 16, (2, 2) gets 48; all others 0.
  """
  h, w = 8, 16
  ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  flow = np.stack([2.25 - xs, 1.5 - ys], -1)[None].astype(np.float32)
  image = np.random.default_rng(6).normal(size=(1, h, w, 2)).astype(np.float32)
  cot = np.ones((1, h, w, 2), np.float32) * np.array([1.0, 2.0], np.float32)
  _, vjp = jax.vjp(lambda im, fl: _grad_fns()[impl](im, fl, "zeros"), jnp.asarray(image), jnp.asarray(flow))
  gimg, gflow = vjp(jnp.asarray(cot))
  want = np.zeros((h, w))
  want[1, 2] = want[2, 2] = 48.0
  want[1, 3] = want[2, 3] = 16.0
  np.testing.assert_allclose(np.asarray(gimg[0]), want[..., None] * np.array([1.0, 2.0]), rtol=1e-6)
  _, want_gimg, want_gflow = _oracle(image, flow, "zeros", cot)
  np.testing.assert_allclose(np.asarray(gimg), want_gimg, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(gflow), want_gflow, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", PADDINGS)
def test_cpu_backward_equals_reference_autodiff(padding):
  """12 channels (the summed, not unrolled, channel path), flows with ties on the border, and a flow-only gradient."""
  rng = np.random.default_rng(9)
  image = jnp.asarray(rng.normal(size=(2, 7, 9, 12)), jnp.float32)
  flow = rng.normal(size=(2, 7, 9, 2)) * 4
  flow[0, 0, :, 0] = -np.arange(9)  # x lands exactly on the left border: the clamp's tie
  flow = jnp.asarray(flow, jnp.float32)
  cot = jnp.asarray(rng.normal(size=image.shape), jnp.float32)
  grads = {impl: jax.vjp(lambda a, b: warp.backward_warp(a, b, padding=padding, impl=impl), image, flow)[1](cot)
           for impl in ("xla", "cpu")}
  for got, want in zip(grads["cpu"], grads["xla"]):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
  flow_only = jax.vjp(lambda b: warp.backward_warp(image, b, padding=padding, impl="cpu"), flow)[1](cot)[0]
  np.testing.assert_allclose(np.asarray(flow_only), np.asarray(grads["xla"][1]), rtol=1e-5, atol=1e-5)


def test_argument_checks():
  image = jnp.zeros((1, 4, 4, 3))
  flow = jnp.zeros((1, 4, 4, 2))
  with pytest.raises(ValueError, match="padding"):
    warp.backward_warp(image, flow, padding="reflect", impl="pallas")
  with pytest.raises(ValueError, match="same N,H,W"):
    warp.backward_warp(image, flow[:, :3], impl="pallas")
  with pytest.raises(ValueError, match="powers of 2"):
    warp.backward_warp_pallas(image, flow, block=(24, 4))
  with pytest.raises(ValueError, match="impl"):
    warp.backward_warp(image, flow, impl="cuda")
  with pytest.raises(ValueError, match="same N,H,W"):
    warp.backward_warp(image, flow[:, :3], impl="cpu")


@pytest.mark.parametrize("dtype,c,padding", [(jnp.float32, 3, "zeros"), (jnp.bfloat16, 64, "border")])
def test_cuda_lowering(dtype, c, padding):
  """Forward and backward kernels lower through the real Triton lowering (interpret=False) under an abstract H100."""
  image = jax.ShapeDtypeStruct((2, 9, 11, c), dtype)  # 198 pixels: a masked tail for every block size.
  flow = jax.ShapeDtypeStruct((2, 9, 11, 2), jnp.float32)
  fwd = lambda im, fl: warp.backward_warp_pallas(im, fl, padding, interpret=False)
  grad = jax.grad(lambda im, fl: jnp.sum(fwd(im, fl).astype(jnp.float32)), argnums=(0, 1))
  try:
    fwd_text = common.lower_for_cuda(fwd, image, flow)
    grad_text = common.lower_for_cuda(grad, image, flow)
  except common.CudaLoweringUnavailable as e:
    pytest.skip(str(e))
  assert common.count_triton_calls(fwd_text) == 1
  assert common.count_triton_calls(grad_text) == 2  # Forward (for the residuals) and backward kernels.
  # The serialized Triton module names its ops: the GPU image gradient is the atomic path, not the scatter.
  assert "atomic_rmw" in grad_text and "atomic_rmw" not in fwd_text


@pytest.mark.parametrize("padding", PADDINGS)
def test_flow_only_gradient_skips_image_gradient(padding):
  """A constant image (warping input frames): the flow gradient equals the reference's and the full kernel's, and
  only the flow-gradient kernel runs (no per-corner image contributions, no scatter); with the image differentiated
  the full backward kernel runs as before. Under `jit` the undifferentiated image is a traced argument, not a
  closed-over constant, and is still recognised (`custom_vjp` symbolic zeros: it is not perturbed)."""
  image, flow = _make("fractional")
  cot = jnp.asarray(np.random.default_rng(11).normal(size=image.shape), jnp.float32)
  loss = lambda im, fl: jnp.sum(warp.backward_warp_pallas(im, fl, padding, block=SMALL_BLOCK) * cot)
  ref_loss = lambda im, fl: jnp.sum(warp.backward_warp_reference(im, fl, padding) * cot)
  flow_only = jax.jit(jax.grad(loss, argnums=1))
  both = jax.jit(jax.grad(loss, argnums=(0, 1)))
  got = flow_only(jnp.asarray(image), jnp.asarray(flow))
  want = jax.grad(ref_loss, argnums=1)(jnp.asarray(image), jnp.asarray(flow))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(both(jnp.asarray(image), jnp.asarray(flow))[1]))
  _, want_gimg, want_gflow = _oracle(image, flow, padding, np.asarray(cot))
  np.testing.assert_allclose(np.asarray(got), want_gflow, atol=1e-5, rtol=1e-5)
  closed = jax.grad(lambda fl: loss(jnp.asarray(image), fl))(jnp.asarray(flow))  # the image closed over
  np.testing.assert_array_equal(np.asarray(closed), np.asarray(got))

  flow_jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=1))(image, flow)
  both_jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(image, flow)
  flow_names, both_names = pallas_call_names(flow_jaxpr), pallas_call_names(both_jaxpr)
  assert sorted(flow_names) == ["backward_warp_bwd_flow", "backward_warp_fwd"], flow_names
  assert sorted(both_names) == ["backward_warp_bwd", "backward_warp_fwd"], both_names
  assert "scatter" not in str(flow_jaxpr) and "scatter" in str(both_jaxpr)  # interpret mode's image-gradient sum


def test_cuda_lowering_flow_only_gradient_has_no_atomics():
  """On the GPU path the flow-only backward is the atomics-free kernel; with the image differentiated it is not."""
  image = jax.ShapeDtypeStruct((2, 9, 11, 3), jnp.float32)
  flow = jax.ShapeDtypeStruct((2, 9, 11, 2), jnp.float32)
  loss = lambda im, fl: jnp.sum(warp.backward_warp_pallas(im, fl, "zeros", interpret=False))
  try:
    flow_text = common.lower_for_cuda(jax.grad(loss, argnums=1), image, flow)
    both_text = common.lower_for_cuda(jax.grad(loss, argnums=(0, 1)), image, flow)
  except common.CudaLoweringUnavailable as e:
    pytest.skip(str(e))
  assert common.count_triton_calls(flow_text) == 2 and common.count_triton_calls(both_text) == 2
  assert "backward_warp_bwd_flow" in flow_text and "atomic_rmw" not in flow_text
  assert "backward_warp_bwd_flow" not in both_text and "atomic_rmw" in both_text
