"""Tests of `jaxvfi.layers.deform` against Flax's own `nn.Conv` (zero offsets) and hand-computed parameter counts."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvfi.layers import deform as layers

N, H, W, CIN, COUT = 2, 6, 7, 3, 4


def _data(seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(N, H, W, CIN)), jnp.float32)
  return x, jax.random.PRNGKey(seed)


def _conv(params, x):
  """`nn.Conv` with the deformable layer's own parameters: the oracle for zero offsets."""
  conv = nn.Conv(COUT, (3, 3), padding="SAME", precision=jax.lax.Precision.HIGHEST)
  return conv.apply({"params": params}, x)


def _n_params(module, *args):
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *args)
  return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(shapes))


def test_parameter_names_and_counts():
  x = jax.ShapeDtypeStruct((1, 8, 8, 128), jnp.float32)
  off = jax.ShapeDtypeStruct((1, 8, 8, 18), jnp.float32)
  # DSFN's TFBFI deformable conv on 128 channels: 3*3*128*128 + 128 = 147,584.
  assert _n_params(layers.DeformConv(128), x, off) == 147_584
  assert _n_params(layers.DeformConv(128, use_bias=False), x, off) == 147_456
  mask = jax.ShapeDtypeStruct((1, 8, 8, 9), jnp.float32)
  assert _n_params(layers.DeformConv(128, modulated=True), x, off, mask) == 147_584
  x64 = jax.ShapeDtypeStruct((1, 8, 8, 64), jnp.float32)
  sq_off = jax.ShapeDtypeStruct((1, 8, 8, 2), jnp.float32)
  assert _n_params(layers.SquaredDeformConv(64), x64, sq_off) == 9 * 64 * 64 + 64  # 36,928
  off5 = jax.ShapeDtypeStruct((1, 8, 8, 50), jnp.float32)
  shapes = jax.eval_shape(layers.DeformConv(128, kernel_size=5).init, jax.random.PRNGKey(0), x, off5)["params"]
  assert {k: v.shape for k, v in shapes.items()} == {"kernel": (5, 5, 128, 128), "bias": (128,)}


@pytest.mark.parametrize("impl", ("xla", "pallas"))
def test_zero_offset_equals_nn_conv(impl):
  x, key = _data()
  off = jnp.zeros((N, H, W, 18))
  for module, args in ((layers.DeformConv(COUT, impl=impl), (x, off)),
                       (layers.DeformConv(COUT, modulated=True, impl=impl), (x, off, jnp.ones((N, H, W, 9)))),
                       (layers.SquaredDeformConv(COUT, impl=impl), (x, off[..., :2]))):
    variables = module.init(key, *args)
    variables = jax.tree_util.tree_map(lambda p: p + 0.1, variables)  # a non-zero bias
    np.testing.assert_allclose(np.asarray(module.apply(variables, *args)), np.asarray(_conv(variables["params"], x)),
                               rtol=1e-5, atol=1e-5)


def test_parameter_gradients_equal_nn_conv():
  x, key = _data(1)
  module = layers.DeformConv(COUT)
  off = jnp.zeros((N, H, W, 18))
  params = module.init(key, x, off)["params"]
  cot = jax.random.normal(jax.random.PRNGKey(2), (N, H, W, COUT))
  got = jax.grad(lambda p: jnp.sum(module.apply({"params": p}, x, off) * cot))(params)
  want = jax.grad(lambda p: jnp.sum(_conv(p, x) * cot))(params)
  for name in ("kernel", "bias"):
    np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=1e-4, atol=1e-4)


def test_squared_integer_offset_is_shifted_nn_conv():
  x, key = _data(3)
  module = layers.SquaredDeformConv(COUT)
  off = jnp.broadcast_to(jnp.array([-1.0, 2.0]), (N, H, W, 2))
  variables = module.init(key, x, off)
  got = np.asarray(module.apply(variables, x, off))
  conv = np.asarray(_conv(variables["params"], x))
  # Windows shifted by (-1, 2) stay inside for rows 2..5 and columns 0..3 (hand-worked: i - 2 >= 0 and i < 6;
  # j + 1 >= 0 and j + 3 < 7); there out[i, j] = conv[i - 1, j + 2].
  np.testing.assert_allclose(got[:, 2:6, 0:4], conv[:, 1:5, 2:6], rtol=1e-5, atol=1e-5)


def test_fractional_offset_moves_output_and_has_offset_gradient():
  x, key = _data(4)
  module = layers.DeformConv(COUT)
  off = jnp.full((N, H, W, 18), 0.4)
  variables = module.init(key, x, off)
  zero = module.apply(variables, x, jnp.zeros_like(off))
  moved = module.apply(variables, x, off)
  assert float(jnp.max(jnp.abs(moved - zero))) > 1e-2
  g = jax.grad(lambda o: jnp.sum(module.apply(variables, x, o) ** 2))(off)
  assert g.shape == off.shape and float(jnp.max(jnp.abs(g))) > 1e-3


def test_mask_argument_must_match_modulated():
  x, key = _data()
  off = jnp.zeros((N, H, W, 18))
  with pytest.raises(ValueError, match="needs a mask"):
    layers.DeformConv(COUT, modulated=True).init(key, x, off)
  with pytest.raises(ValueError, match="needs no mask"):
    layers.DeformConv(COUT).init(key, x, off, jnp.ones((N, H, W, 9)))


def test_offset_groups_shift_their_own_channels():
  """G = 2: group 0 (channels 0-1) at offset 0 and group 1 (channels 2-3) shifted one row down are two `nn.Conv`s on
  the channel halves, the second read one row lower; the parameters do not depend on G."""
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.normal(size=(N, H, W, 4)), jnp.float32)
  off = np.zeros((N, H, W, 36), np.float32)
  off[..., 18::2] = 1.0  # dy of every tap of group 1
  module = layers.DeformConv(COUT, offset_groups=2)
  variables = module.init(jax.random.PRNGKey(0), x, jnp.asarray(off))
  assert _n_params(module, x, jnp.asarray(off)) == _n_params(layers.DeformConv(COUT), x, jnp.zeros((N, H, W, 18)))
  got = np.asarray(module.apply(variables, x, jnp.asarray(off)))
  kernel, bias = variables["params"]["kernel"], variables["params"]["bias"]
  half = lambda c: {"kernel": kernel[:, :, c], "bias": bias * 0}
  want = np.asarray(_conv(half(slice(0, 2)), x[..., :2]))[:, :H - 1] + bias
  want = want + np.asarray(_conv(half(slice(2, 4)), x[..., 2:]))[:, 1:]
  np.testing.assert_allclose(got[:, :H - 1], want, rtol=1e-5, atol=1e-5)
