"""jaxvfi.layers.conv: values and gradients equal `lax.conv_general_dilated` (the oracle); each path taken where intended."""
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
    ((64, 64), 3, "SAME", 40),  # CPU: filter gradient in two slices of 32 channels, the second zero-padded
    ((66, 68), 5, ((1, 2), (2, 0)), 33),  # 64x64 output from asymmetric padding: 33 channels, two slices
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


def _count_convolutions(f, x, w):
  loss = lambda a, b: jnp.sum(f(a, b) ** 2)
  return str(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(x, w)).count("conv_general_dilated[")


@pytest.mark.parametrize("out_hw,cout,slices", [
    ((64, 64), 33, 2),  # the rule's edges: 64x64 = FILTER_GRAD_MIN_PIXELS output pixels, more than 32 channels
    ((64, 64), 32, 0),
    ((63, 64), 33, 0),
    ((32, 128), 96, 3),
])
def test_large_maps_take_the_filter_gradient_in_slices_of_32_channels(out_hw, cout, slices):
  assert jax.default_backend() == "cpu"  # the rule is for XLA:CPU only
  x, w = jnp.zeros((1,) + out_hw + (3,)), jnp.zeros((3, 3, 3, cout))
  ours, ref = _both(x, w, "SAME")
  assert _count_convolutions(ref, x, w) == 3  # forward, input gradient, filter gradient
  # the forward and the input gradient as before; the filter gradient as `slices` convolutions instead of one
  assert _count_convolutions(ours, x, w) == (3 if slices == 0 else 2 + slices)


def test_split_filter_gradient_has_second_derivatives():
  """Reverse over reverse (a gradient penalty's path) goes through the custom VJP's backward pass."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((1, 64, 64, 2)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 2, 34)), jnp.float32)
  ours, ref = _both(x, w, "SAME")

  def penalty(f):
    input_grad = jax.grad(lambda a, b: jnp.sum(jnp.tanh(f(a, b))))
    return jax.grad(lambda b: jnp.sum(input_grad(x, b) ** 2))(w)

  want = penalty(ref)
  np.testing.assert_allclose(penalty(ours), want, rtol=1e-4, atol=1e-5 * float(jnp.abs(want).max()))


def test_flax_conv_accepts_it_with_unchanged_parameters():
  x = jnp.ones((1, 2, 2, 3))
  plain = nn.Conv(4, (3, 3))
  ours = conv.Conv(4, (3, 3))
  params = plain.init(jax.random.PRNGKey(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) == jax.tree.map(jnp.shape, params)
  np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), rtol=1e-5, atol=1e-6)
