"""Tests for the ReFIn backbones (UNet++, GridNet-3/4), PWC-Net and VGG-19 features.

Oracles: parameter counts from Table 3, ReFIn (and the README's derived table), PWC-Net's 9,374,274 and VGG-19's
20,024,384; hand-computed layer shapes; naive NumPy loops for the cost volume and PyTorch's bilinear resize formula;
hand-computed warps and flow scalings.
"""
from __future__ import annotations

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvfi.models import gridnet, pwcnet, unetpp, vgg

GRIDNET3 = (32, 64, 96)
GRIDNET4 = (32, 64, 96, 128)


def _count(model, *shapes):
  variables = jax.eval_shape(model.init, jax.random.key(0), *[jnp.zeros(s) for s in shapes])
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables["params"]))


def random_params(model, *args, seed=0):
  """He-scaled random kernels, small biases, PReLU slopes 0.25: `model.init` is not compiled (slow on CPU)."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    if path[-1].key == "kernel":
      return jnp.asarray(rng.normal(size=s.shape) * np.sqrt(2.0 / np.prod(s.shape[:-1])), jnp.float32)
    if path[-1].key == "bias":
      return jnp.asarray(0.01 * rng.normal(size=s.shape), jnp.float32)
    return jnp.full(s.shape, 0.25, jnp.float32)

  shapes = jax.eval_shape(model.init, jax.random.key(0), *args)["params"]
  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize("make, cin, cout, expected", [
    (lambda c: unetpp.UNetPP(c), 16, 5, 1_176_485),
    (lambda c: unetpp.UNetPP(c), 20, 3, 1_177_571),
    (lambda c: gridnet.GridNet(c, GRIDNET3), 16, 5, 2_249_349),
    (lambda c: gridnet.GridNet(c, GRIDNET3), 20, 3, 2_249_777),
    (lambda c: gridnet.GridNet(c, GRIDNET4), 16, 5, 5_081_307),
    (lambda c: gridnet.GridNet(c, GRIDNET4), 20, 3, 5_081_735),
])
def test_backbone_parameter_counts(make, cin, cout, expected):
  assert _count(make(cout), (1, 32, 32, cin)) == expected


def test_pwcnet_parameter_count():
  assert _count(pwcnet.PWCNet(), (1, 64, 64, 3), (1, 64, 64, 3)) == 9_374_274


def test_vgg19_parameter_counts():
  assert _count(vgg.VGG19(output_layer="relu5_4"), (1, 32, 32, 3)) == 20_024_384
  # Up to relu4_4 the last four 512 -> 512 convs (4 * 2,359,808) are absent.
  assert _count(vgg.VGG19(), (1, 32, 32, 3)) == 20_024_384 - 4 * (9 * 512 * 512 + 512)


def test_unetpp_nested_skip_widths():
  params = jax.eval_shape(unetpp.UNetPP(5).init, jax.random.key(0), jnp.zeros((1, 16, 16, 16)))["params"]
  channels = (32, 64, 96, 128)
  for i in range(4):
    for j in range(4 - i):
      # X(i, j) sees j earlier nodes of its level plus the upsampled X(i+1, j-1) (Figure 6, ReFIn).
      cin = (16 if i == 0 else channels[i - 1]) if j == 0 else j * channels[i] + channels[i + 1]
      assert params[f"x{i}_{j}"]["conv1"]["kernel"].shape == (3, 3, cin, channels[i])
  assert params["out"]["kernel"].shape == (1, 1, 32, 5)


def test_gridnet_prelus_are_scalars_initialised_to_pytorch_default():
  shapes = jax.eval_shape(gridnet.GridNet(3, GRIDNET3).init, jax.random.key(0), jnp.zeros((1, 8, 8, 4)))
  flat = flax.traverse_util.flatten_dict(shapes["params"])
  slopes = [v for k, v in flat.items() if k[-1] == "negative_slope"]
  # 2 per block: head, tail, 3 * 5 laterals, 2 * 3 down and 2 * 3 up blocks.
  assert len(slopes) == 2 * (2 + 15 + 6 + 6)
  assert all(s.shape == () for s in slopes)
  lateral = gridnet.Lateral(4).init(jax.random.key(0), jnp.zeros((1, 4, 4, 4)))["params"]
  assert float(lateral["prelu1"]["negative_slope"]) == float(lateral["prelu2"]["negative_slope"]) == 0.25


def test_gridnet_lateral_is_residual_prelu_conv_prelu_conv():
  x = jax.random.normal(jax.random.key(5), (1, 4, 4, 2))
  params = random_params(gridnet.Lateral(2), x)
  got = gridnet.Lateral(2).apply({"params": params}, x)
  head = gridnet.Lateral(2, residual=False).apply({"params": params}, x)

  def conv(v, p):  # 3x3, zero padding 1, as a naive loop
    v = np.pad(np.asarray(v[0]), ((1, 1), (1, 1), (0, 0)))
    k, b = np.asarray(p["kernel"]), np.asarray(p["bias"])
    return np.array([[np.einsum("hwc,hwco->o", v[i:i + 3, j:j + 3], k) + b for j in range(4)] for i in range(4)])[None]

  prelu = lambda v: np.where(v >= 0, v, 0.25 * v)
  want = conv(prelu(conv(prelu(np.asarray(x)), params["conv1"])), params["conv2"])
  np.testing.assert_allclose(head, want, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got, np.asarray(x) + want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model, cin", [
    (unetpp.UNetPP(5), 16),
    (gridnet.GridNet(3, GRIDNET3), 20),
    (gridnet.GridNet(5, GRIDNET4), 16),
])
def test_backbone_forward_32x32(model, cin):
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, cin))
  y = jax.jit(model.apply)({"params": random_params(model, x)}, x)
  assert y.shape == (2, 32, 32, model.out_channels)
  assert bool(jnp.all(jnp.isfinite(y)))
  # Two different samples must give different outputs (the network does not ignore its input).
  assert float(jnp.max(jnp.abs(y[0] - y[1]))) > 0.0


@pytest.mark.parametrize("model, ok, bad", [
    (unetpp.UNetPP(5), 40, 36),
    (gridnet.GridNet(5, GRIDNET3), 36, 34),
    (gridnet.GridNet(5, GRIDNET4), 40, 36),
])
def test_backbone_alignment(model, ok, bad):
  assert model.ALIGN % 2 ** (len(getattr(model, "channels", unetpp.CHANNELS)) - 1) == 0
  out = jax.eval_shape(model.init_with_output, jax.random.key(0), jnp.zeros((1, ok, 2 * ok, 16)))[0]
  assert out.shape == (1, ok, 2 * ok, 5)
  with pytest.raises(ValueError, match="multiples of"):
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, bad, ok, 16)))


def test_correlation_matches_naive_loop():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
  b = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
  want = np.zeros((2, 5, 6, 81), np.float32)
  for n in range(2):
    for y in range(5):
      for x in range(6):
        for dy in range(-4, 5):
          for dx in range(-4, 5):
            if 0 <= y + dy < 5 and 0 <= x + dx < 6:
              want[n, y, x, (dy + 4) * 9 + dx + 4] = np.dot(a[n, y, x], b[n, y + dy, x + dx]) / 3
  np.testing.assert_allclose(pwcnet.correlation(jnp.asarray(a), jnp.asarray(b)), want, rtol=1e-5, atol=1e-6)


def test_backwarp_scales_are_the_ports():
  # The port's fltBackwarp list [None, None, None, 5.0, 2.5, 1.25, 0.625, None][level + 1].
  assert [pwcnet.backwarp_scale(level) for level in (2, 3, 4, 5)] == [5.0, 2.5, 1.25, 0.625]


def test_backwarp_port_scaling_and_mask():
  img = jnp.arange(20, dtype=jnp.float32).reshape(1, 4, 5, 1)
  # The port of 2020-2023 moved by flow * W / (W - 1): a flow of 0.8 on a 5-wide image is a shift of one pixel.
  flow = jnp.zeros((1, 4, 5, 2)).at[..., 0].set(0.8)
  out = np.asarray(pwcnet.backwarp(img, flow, port_warp_scaling=True))[0, :, :, 0]
  want = np.asarray(img)[0, :, :, 0].copy()
  want[:, :-1] = want[:, 1:]
  want[:, -1] = 0.0  # sampled outside: the warped ones channel is 0 there
  np.testing.assert_allclose(out, want, atol=1e-5)
  # Without that scaling (the default, the port since 2023) a half-pixel flow interpolates, and the last column,
  # half outside, is zeroed.
  flow = jnp.zeros((1, 4, 5, 2)).at[..., 0].set(0.5)
  out = np.asarray(pwcnet.backwarp(img, flow))[0, :, :, 0]
  want = np.asarray(img)[0, :, :, 0].copy()
  want[:, :-1] = 0.5 * (want[:, :-1] + want[:, 1:])
  want[:, -1] = 0.0
  np.testing.assert_allclose(out, want, atol=1e-5)


def _torch_bilinear(x, height, width):
  """PyTorch `interpolate(bilinear, align_corners=False)` written out for an (H, W) array."""
  def axis(n_in, n_out):
    src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0
  y0, y1, ly = axis(x.shape[0], height)
  x0, x1, lx = axis(x.shape[1], width)
  out = np.zeros((height, width))
  for i in range(height):
    for j in range(width):
      out[i, j] = ((1 - ly[i]) * ((1 - lx[j]) * x[y0[i], x0[j]] + lx[j] * x[y0[i], x1[j]])
                   + ly[i] * ((1 - lx[j]) * x[y1[i], x0[j]] + lx[j] * x[y1[i], x1[j]]))
  return out


@pytest.mark.parametrize("size_in, size_out", [((10, 7), (6, 4)), ((4, 5), (9, 11)), ((50, 70), (64, 128))])
def test_resize_matches_pytorch_bilinear(size_in, size_out):
  x = np.random.default_rng(1).normal(size=size_in).astype(np.float32)
  got = pwcnet.resize_bilinear(jnp.asarray(x)[None, :, :, None], *size_out)[0, :, :, 0]
  np.testing.assert_allclose(got, _torch_bilinear(x, *size_out), rtol=1e-5, atol=1e-5)


def test_pwcnet_forward_64x64():
  model = pwcnet.PWCNet()
  f0, f1 = jax.random.uniform(jax.random.key(2), (2, 1, 64, 64, 3))
  flow = jax.jit(model.apply)({"params": random_params(model, f0, f1)}, f0, f1)
  assert flow.shape == (1, 64, 64, 2)
  assert bool(jnp.all(jnp.isfinite(flow)))


def test_pwcnet_estimate_preprocessing_and_flow_scaling():
  """Odd size 50x70: BGR frames resized to 64x128 go in; a constant network flow c comes out as 20 c (W/Wp, H/Hp)."""
  model = pwcnet.PWCNet()
  f0, f1 = jax.random.uniform(jax.random.key(3), (2, 1, 50, 70, 3))
  shapes = jax.eval_shape(model.init, jax.random.key(0), f0, f1)["params"]
  params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  params["refiner"]["conv6"]["bias"] = jnp.asarray([0.1, -0.2])

  @jax.jit
  def run(params, f0, f1):
    seen = {}

    def record_extractor_input(next_fun, args, kwargs, context):
      if isinstance(context.module, pwcnet.Extractor) and context.method_name == "__call__":
        seen["frames"] = args[0]
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(record_extractor_input):
      flow = model.apply({"params": params}, f0, f1)
    return flow, seen["frames"]

  flow, frames = run(params, f0, f1)
  assert flow.shape == (1, 50, 70, 2)
  np.testing.assert_allclose(flow[..., 0], 20 * 0.1 * 70 / 128, rtol=1e-5)
  np.testing.assert_allclose(flow[..., 1], 20 * -0.2 * 50 / 64, rtol=1e-5)
  frames = np.asarray(frames)
  assert frames.shape == (2, 64, 128, 3)
  for k, frame in enumerate((f0, f1)):
    for c in range(3):  # channel c of the network input is BGR channel c = RGB channel 2 - c
      np.testing.assert_allclose(frames[k, :, :, c], _torch_bilinear(np.asarray(frame[0, :, :, 2 - c]), 64, 128),
                                 rtol=1e-5, atol=1e-5)


def test_pwcnet_rejects_mismatched_frames():
  with pytest.raises(ValueError, match="RGB frames"):
    jax.eval_shape(pwcnet.PWCNet().init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 32, 3)))


def test_vgg19_layers_and_normalisation():
  x = jax.random.uniform(jax.random.key(4), (1, 16, 16, 3))
  model = vgg.VGG19(output_layer="relu3_1")
  variables = {"params": random_params(model, x)}
  out = jax.jit(model.apply)(variables, x)
  assert list(out) == ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1"]
  assert out["relu2_1"].shape == (1, 8, 8, 128) and out["relu3_1"].shape == (1, 4, 4, 256)
  # relu1_1 at an interior pixel, by hand: ImageNet-normalised 3x3 patch . kernel + bias, then ReLU.
  p = variables["params"]["conv1_1"]
  xn = (np.asarray(x[0]) - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD)
  want = np.maximum(np.einsum("hwc,hwco->o", xn[4:7, 5:8], np.asarray(p["kernel"])) + np.asarray(p["bias"]), 0.0)
  np.testing.assert_allclose(out["relu1_1"][0, 5, 6], want, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="output_layer"):
    jax.eval_shape(vgg.VGG19(output_layer="relu6_1").init, jax.random.key(0), x)


def test_vgg19_ignores_unused_convs_of_a_full_tree():
  x = jnp.zeros((1, 8, 8, 3))
  full = jax.eval_shape(vgg.VGG19(output_layer="relu5_4").init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), full["params"])
  out = vgg.VGG19(output_layer="relu1_2").apply({"params": params}, x)
  assert set(out) == {"relu1_1", "relu1_2"}
