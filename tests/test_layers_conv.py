"""jaxvfi.layers.conv.conv_general_dilated: values and gradients equal `lax.conv_general_dilated` (the oracle)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxvfi.layers import conv

NHWC = ("NHWC", "HWIO", "NHWC")


def _both(x, w, padding):
  ours = lambda a, b: conv.conv_general_dilated(a, b, (1, 1), padding, dimension_numbers=NHWC)
  ref = lambda a, b: lax.conv_general_dilated(a, b, (1, 1), padding, dimension_numbers=NHWC,
                                              precision=lax.Precision.HIGHEST)
  return ours, ref


@pytest.mark.parametrize("hw,k,padding,cout", [
    ((2, 2), 3, "SAME", 4),  # the UNet bottleneck on 64x64 crops: im2col path
    ((1, 1), 3, "SAME", 4),
    ((2, 3), 5, ((2, 2), (1, 3)), 4),  # explicit, asymmetric padding
    ((3, 3), 3, "VALID", 4),  # 1x1 output: its input gradient would be swapped
    ((4, 5), 3, "SAME", 40),  # 2 x 20 pixels <= 40 output channels: im2col path
    ((6, 5), 3, "SAME", 4),  # larger than the kernel, more pixels than channels: plain lax path
])
def test_values_and_gradients_match_lax(hw, k, padding, cout):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((2,) + hw + (5,)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((k, k, 5, cout)), jnp.float32)
  ours, ref = _both(x, w, padding)
  g = jnp.asarray(rng.standard_normal(ref(x, w).shape), jnp.float32)

  def value_and_grads(f):
    out, vjp = jax.vjp(f, x, w)
    return (out,) + vjp(g)

  got, want = value_and_grads(ours), value_and_grads(ref)
  for a, b in zip(got, want):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.abs(b).max()))


@pytest.mark.parametrize("x_shape,w_shape,convolutions", [
    ((4, 2, 2, 8), (3, 3, 8, 8), False),  # smaller than the kernel
    ((4, 4, 4, 8), (3, 3, 8, 64), False),  # a deep level: 64 pixels in the batch, 64 output channels
    ((4, 4, 4, 8), (3, 3, 8, 63), True),  # one channel fewer: convolutions
])
def test_small_maps_compile_without_a_convolution(x_shape, w_shape, convolutions):
  x, w = jnp.zeros(x_shape), jnp.zeros(w_shape)
  loss = lambda f: lambda a, b: jnp.sum(f(a, b) ** 2)
  ours, ref = _both(x, w, "SAME")
  hlo = lambda f: jax.jit(jax.grad(loss(f), argnums=(0, 1))).lower(x, w).compile().as_text()
  assert ("convolution(" in hlo(ours)) == convolutions
  assert "convolution(" in hlo(ref)  # the check can fail: XLA keeps convolutions for the plain op


def test_flax_conv_accepts_it_with_unchanged_parameters():
  x = jnp.ones((1, 2, 2, 3))
  plain = nn.Conv(4, (3, 3))
  ours = nn.Conv(4, (3, 3), conv_general_dilated=conv.conv_general_dilated)
  params = plain.init(jax.random.PRNGKey(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) == jax.tree.map(jnp.shape, params)
  np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), rtol=1e-5, atol=1e-6)
