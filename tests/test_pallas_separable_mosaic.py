"""The separable convolution's Mosaic GPU forward (`pallas_kernels.separable_mosaic`): Mosaic GPU's interpret mode on
CPU against the `jnp` reference (`separable.sepconv_reference`, itself checked against a per-pixel NumPy oracle in
test_pallas_separable.py), and the real Mosaic GPU lowering for CUDA at SepConv's size (its compiler rules run there).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import common
from pallas_kernels import separable
from pallas_kernels import separable_mosaic


def _inputs(n, h, w, c, k, seed=0, dtype=jnp.float32):
  a, b, d = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(a, (n, h + k - 1, w + k - 1, c), dtype)
  return x, jax.random.normal(b, (n, h, w, k), dtype), jax.random.normal(d, (n, h, w, k), dtype)


def _interpreted(*args):
  try:
    return separable_mosaic.sepconv_mosaic(*args, interpret=True)
  except NotImplementedError as e:  # a jax without the (private) Mosaic GPU interpreter where we look for it
    pytest.skip(str(e))


@pytest.mark.parametrize("n,h,w,c,k", [
    (1, 3, 20, 1, 5),     # one column block, mostly padding
    (2, 2, 130, 3, 7),    # two column blocks, the second 2 columns wide
    (1, 1, 128, 1, 51),   # SepConv's 51 taps: a band 256 columns wide
])
def test_interpreted_kernel_equals_the_reference(n, h, w, c, k):
  x, kv, kh = _inputs(n, h, w, c, k, seed=k)
  out = _interpreted(x, kv, kh)
  assert out.shape == (n, h, w, c) and out.dtype == x.dtype
  np.testing.assert_allclose(out, separable.sepconv_reference(x, kv, kh), rtol=1e-5, atol=1e-4)


def test_bf16_inputs_accumulate_in_fp32():
  x, kv, kh = _inputs(1, 2, 9, 3, 5, seed=1, dtype=jnp.bfloat16)
  out = _interpreted(x, kv, kh)
  assert out.dtype == jnp.bfloat16
  want = separable.sepconv_reference(*(a.astype(jnp.float32) for a in (x, kv, kh)))
  np.testing.assert_allclose(np.asarray(out, np.float32), want, rtol=2e-2, atol=5e-2)


def test_gradients_are_the_references():
  x, kv, kh = _inputs(1, 2, 6, 2, 3, seed=2)
  g = jax.random.normal(jax.random.key(3), (1, 2, 6, 2))
  loss = lambda f: lambda *a: jnp.sum(f(*a) * g)
  got = jax.grad(loss(lambda *a: separable_mosaic.sepconv_mosaic(*a, interpret=True)), argnums=(0, 1, 2))(x, kv, kh)
  want = jax.grad(loss(separable.sepconv_reference), argnums=(0, 1, 2))(x, kv, kh)
  for a, b in zip(got, want, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_mismatched_shapes_are_one_value_error():
  x, kv, kh = _inputs(1, 2, 6, 2, 3)
  with pytest.raises(ValueError, match="x_padded must be"):
    separable_mosaic.sepconv_mosaic(x[:, 1:], kv, kh, interpret=True)


def test_lowers_to_one_mosaic_gpu_kernel_for_cuda_at_sepconvs_size():
  """A 1080p-wide row block of 51 taps goes through Mosaic GPU's lowering (copy sizes, layouts, shared memory):
  one Mosaic GPU custom call, no Triton call."""
  k = 51
  s = jax.ShapeDtypeStruct
  fn = lambda *a: separable_mosaic.sepconv_mosaic(*a, interpret=False)
  text = common.lower_for_cuda(fn, s((1, 8 + k - 1, 1920 + k - 1, 3), jnp.float32), s((1, 8, 1920, k), jnp.float32),
                               s((1, 8, 1920, k), jnp.float32))
  assert text.count("mosaic_gpu") >= 1 and common.count_triton_calls(text) == 0
