"""The package-level API of pallas_kernels is the tested implementation, and works through its public names."""
import jax.numpy as jnp
import numpy as np
import pytest

import pallas_kernels
from pallas_kernels import common
from pallas_kernels import deform
from pallas_kernels import separable
from pallas_kernels import warp


def test_public_names_are_the_tested_functions():
  assert pallas_kernels.sepconv is separable.sepconv
  assert pallas_kernels.sepconv_composite is separable.sepconv_composite
  assert pallas_kernels.backward_warp is warp.backward_warp
  assert pallas_kernels.deform_conv is deform.deform_conv
  assert pallas_kernels.squared_deform_conv is deform.squared_deform_conv
  assert pallas_kernels.squared_offset_mask is deform.squared_offset_mask


@pytest.mark.parametrize("impl", ["pallas", "auto", "xla", "cpu"])
def test_sepconv_through_the_package_name(impl):
  rng = np.random.default_rng(0)
  k, h, w = 3, 5, 6
  x = rng.random((1, h + k - 1, w + k - 1, 2)).astype(np.float32)
  kv = rng.random((1, h, w, k)).astype(np.float32)
  kh = rng.random((1, h, w, k)).astype(np.float32)
  expected = np.zeros((1, h, w, 2), np.float32)
  for y in range(h):
    for xx in range(w):
      expected[0, y, xx] = np.einsum("ijc,i,j->c", x[0, y:y + k, xx:xx + k], kv[0, y, xx], kh[0, y, xx])
  out = pallas_kernels.sepconv(jnp.asarray(x), jnp.asarray(kv), jnp.asarray(kh), impl=impl)
  np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-6)


def test_triton_call_target_is_jaxs_own_name_where_exported():
  """The lowering tests count Triton launches by jax's exported custom-call name (jax 0.11+), else the 0.10 literal."""
  assert common.TRITON_CALL_TARGET == getattr(common.plt, "CUSTOM_CALL_TARGET_NAME", "__gpu$xla.gpu.triton")
  assert common.count_triton_calls(f"a @{common.TRITON_CALL_TARGET}(x) b @{common.TRITON_CALL_TARGET}(y)") == 2
