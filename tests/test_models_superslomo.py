"""Super-SloMo / ReFIn: parameter counts (Table 3, ReFIn) and the equations of §3 on hand-made inputs."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from helpers import unet_count_by_hand
from jaxvfi import classical_flow
from jaxvfi import families
from jaxvfi import steps
from jaxvfi.models import superslomo
from jaxvfi.models import unet


@pytest.mark.parametrize("cin,cout,expected", [(6, 4, 19_794_116), (20, 5, 19_816_357), (16, 5, 19_810_085),
                                               (20, 3, 19_815_779)])
def test_unet_parameter_counts(cin, cout, expected):
  shapes = jax.eval_shape(unet.UNet(cout).init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, cin)))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)) == expected


@pytest.mark.parametrize("width", [0.5, 0.25, 1.5])
def test_unet_width_scales_every_layer(width):
  assert unet_count_by_hand(6, 4, 1.0) == 19_794_116  # the hand count reproduces Table 3 at the papers' width
  shapes = jax.eval_shape(unet.UNet(4, width=width).init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 6)))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)) == unet_count_by_hand(6, 4, width)
  out = jax.eval_shape(unet.UNet(4, width=width).apply, shapes, jnp.zeros((2, 64, 32, 6)))
  assert out.shape == (2, 64, 32, 4)


def test_unet_width_reaches_every_unet_of_the_model():
  c = _config("refin")
  c.model.unet_width = 0.5
  counts = steps.param_counts(families.build_model(c.model), families.of(c).example_batch(c))
  assert counts == {"flow": unet_count_by_hand(6, 4, 0.5), "interpolation": unet_count_by_hand(16, 5, 0.5),
                    "refinement": unet_count_by_hand(20, 3, 0.5),
                    "total": sum(unet_count_by_hand(i, o, 0.5) for i, o in ((6, 4), (16, 5), (20, 3)))}
  # Other backbones keep their size: only the flow UNet narrows.
  c.model.interpolation_backbone = c.model.refinement_backbone = "unetpp"
  narrow = steps.param_counts(families.build_model(c.model), families.of(c).example_batch(c))
  c.model.unet_width = 1.0
  full = steps.param_counts(families.build_model(c.model), families.of(c).example_batch(c))
  assert narrow["flow"] == unet_count_by_hand(6, 4, 0.5) and full["flow"] == 19_794_116
  assert (narrow["interpolation"], narrow["refinement"]) == (full["interpolation"], full["refinement"])
  with pytest.raises(ValueError, match="width must be positive"):
    jax.eval_shape(unet.UNet(4, width=0.0).init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 6)))


def _config(variant):
  c = ml_collections.ConfigDict()
  c.model = dict(name=variant, flow="unet", interpolation_backbone="unet",
                 refinement_backbone="unet", use_refinement=True)
  c.data = dict(crop_size=32)
  return c


def test_module_counts_refin_and_superslomo():
  c = _config("refin")
  counts = steps.param_counts(families.build_model(c.model), families.of(c).example_batch(c))
  assert counts == {"flow": 19_794_116, "interpolation": 19_810_085, "refinement": 19_815_779,
                    "total": 19_794_116 + 19_810_085 + 19_815_779}
  c = _config("superslomo")
  counts = steps.param_counts(families.build_model(c.model), families.of(c).example_batch(c))
  assert counts == {"flow": 19_794_116, "interpolation": 19_816_357, "total": 19_794_116 + 19_816_357}


def test_intermediate_flows_eq1():
  f01 = jnp.full((1, 1, 1, 2), 4.0)
  f10 = jnp.full((1, 1, 1, 2), -2.0)
  t = jnp.array([0.25])
  ft0, ft1 = superslomo.intermediate_flows(f01, f10, t)
  # F^t->0 = -(0.75)(0.25)(4) + 0.0625(-2) = -0.75 - 0.125; F^t->1 = 0.5625*4 - 0.25*0.75*(-2) = 2.25 + 0.375
  np.testing.assert_allclose(ft0, -0.875)
  np.testing.assert_allclose(ft1, 2.625)


def test_blend_eq3():
  w0 = jnp.full((1, 1, 1, 3), 0.2)
  w1 = jnp.full((1, 1, 1, 3), 0.8)
  v = jnp.full((1, 1, 1, 1), 0.25)
  t = jnp.array([0.4])
  out = superslomo.blend(w0, w1, v, t)
  a, b = 0.6 * 0.25, 0.4 * 0.75
  np.testing.assert_allclose(out, (a * 0.2 + b * 0.8) / (a + b), rtol=1e-6)


def test_forward_pads_unaligned_frames_and_returns_all_predictions():
  c = _config("refin")
  model = families.build_model(c.model)
  params = steps.init_params(model, families.of(c).example_batch(c), jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  batch = {"frame0": jnp.asarray(rng.random((1, 40, 36, 3)), jnp.float32),
           "frame1": jnp.asarray(rng.random((1, 40, 36, 3)), jnp.float32), "t": jnp.array([0.5])}
  preds = model.apply({"params": params}, batch)
  assert preds["image"].shape == (1, 40, 36, 3)
  assert preds["flow_t0"].shape == (1, 40, 36, 2) and preds["visibility_t0"].shape == (1, 40, 36, 1)
  assert np.all(np.isfinite(np.asarray(preds["image"])))
  # Eq. (4): the refined image is the blend plus a residual; Eq. (2): residual flows added to Eq. (1) flows.
  assert not np.allclose(preds["image"], preds["image_blend"])
  ft0, _ = superslomo.intermediate_flows(preds["flow_01"], preds["flow_10"], batch["t"])
  np.testing.assert_allclose(ft0, preds["flow_t0_approx"], atol=1e-5)


def _warp(img, flow, **switches):
  model = superslomo.FlowInterpolator(warp_impl="xla", **switches)
  return np.asarray(model.apply({}, jnp.asarray(img), jnp.asarray(flow), method=superslomo.FlowInterpolator._warp))


def test_release_warp_samples_half_a_pixel_up_left_like_backwarp():
  """backWarp's grid 2 (x + u) / W - 1 read by grid_sample(align_corners=False) is pixel x + u - 0.5: with zero flow
  each output is the mean of its 2x2 up-left neighbourhood, the outside counting as zero (padding "zeros")."""
  img = np.arange(1.0, 7.0, dtype=np.float32).reshape(1, 2, 3, 1)  # [[1, 2, 3], [4, 5, 6]]
  flow = np.zeros((1, 2, 3, 2), np.float32)
  np.testing.assert_allclose(_warp(img, flow)[0, :, :, 0], img[0, :, :, 0])  # ours: pixel centres
  want = np.array([[1, 3, 5], [5, 12, 16]]) / 4.0  # e.g. (1 + 2 + 4 + 5) / 4 = 3 at (1, 1)
  np.testing.assert_allclose(_warp(img, flow, warp_sample_shift=-0.5)[0, :, :, 0], want, atol=1e-6)


def test_release_warps_mean_subtracted_frames():
  """warp_centered: bw(I - m) + m, so a sample fully outside is the mean colour instead of black."""
  img = np.full((1, 2, 2, 3), 0.9, np.float32)
  flow = np.zeros((1, 2, 2, 2), np.float32)
  flow[..., 0] = 5.0  # every sample 5 pixels to the right: outside
  mean = (0.429, 0.431, 0.397)
  np.testing.assert_allclose(_warp(img, flow), 0.0)
  np.testing.assert_allclose(_warp(img, flow, warp_centered=True, input_mean=mean), np.broadcast_to(mean, img.shape),
                             atol=1e-6)


def test_unet_output_leaky_relu_is_the_release_head():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 32, 32, 2)), jnp.float32)
  shapes = jax.eval_shape(unet.UNet(3).init, jax.random.PRNGKey(0), x)
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.05, s.shape), jnp.float32), shapes)
  linear = np.asarray(unet.UNet(3).apply(params, x))
  leaky = np.asarray(unet.UNet(3, output_leaky_relu=True).apply(params, x))
  assert (linear < 0).any() and (linear > 0).any()
  np.testing.assert_allclose(leaky, np.where(linear > 0, linear, 0.1 * linear), rtol=1e-6, atol=1e-7)


def _shifted_pair(shift=(3, 2), size=64, seed=0):
  """A smooth random texture and the same texture moved by `shift` (x, y) pixels: (1, size, size, 3) float32."""
  rng = np.random.default_rng(seed)
  coarse = rng.random((size // 8 + 2, size // 8 + 2, 3)).astype(np.float32)
  big = np.asarray(jax.image.resize(jnp.asarray(coarse), ((size // 8 + 2) * 8, (size // 8 + 2) * 8, 3), "cubic"))
  frame0 = np.clip(big[8:8 + size, 8:8 + size], 0, 1)
  frame1 = np.clip(big[8 - shift[1]:8 - shift[1] + size, 8 - shift[0]:8 - shift[0] + size], 0, 1)
  return frame0[None], frame1[None]


def _dis_model_and_params(**switches):
  c = _config("refin")
  c.model.flow = "dis"
  c.model.update(switches)
  model = families.build_model(c.model)
  return model, steps.init_params(model, families.of(c).example_batch(c), jax.random.PRNGKey(0))


@pytest.mark.skipif(not classical_flow.available(), reason=classical_flow.UNAVAILABLE_NOTE)
def test_dis_flow_module_gives_opencv_dis_flows_and_no_parameters():
  frame0, frame1 = _shifted_pair()
  model, params = _dis_model_and_params()
  assert set(params) == {"interpolation", "refinement"}  # the classical flow has nothing to train
  preds = jax.jit(model.apply)({"params": params}, {"frame0": jnp.asarray(frame0), "frame1": jnp.asarray(frame1),
                                                      "t": jnp.array([0.5])})
  want01, want10 = classical_flow.dis_flows(frame0[0], frame1[0])
  np.testing.assert_array_equal(np.asarray(preds["flow_01"][0]), want01)
  np.testing.assert_array_equal(np.asarray(preds["flow_10"][0]), want10)
  # The texture moved by (3, 2): DIS finds it inside the frame (borders excepted).
  np.testing.assert_allclose(np.median(want01[8:-8, 8:-8].reshape(-1, 2), axis=0), (3, 2), atol=0.25)


@pytest.mark.skipif(not classical_flow.available(), reason=classical_flow.UNAVAILABLE_NOTE)
def test_untrained_dis_model_with_zero_heads_is_the_classical_baseline():
  """zero_heads: no residual flow, visibility 0.5 and no refinement, so Eq. (3) at t = 0.5 is the classical
  baseline's linear blend of the two warps (the border rule "border" is its replicated border). The oracle is
  `classical_flow.interpolate` (cv2.remap, whose bilinear weights are quantised to 1/32 pixel)."""
  frame0, frame1 = _shifted_pair()
  model, params = _dis_model_and_params(zero_heads=True, warp_padding="border")
  preds = model.apply({"params": params}, {"frame0": jnp.asarray(frame0), "frame1": jnp.asarray(frame1),
                                           "t": jnp.array([0.5])})
  want = classical_flow.interpolate(frame0[0], frame1[0], 0.5)
  got = np.asarray(preds["image"][0])
  np.testing.assert_array_equal(np.asarray(preds["visibility_t0"]), 0.5)
  np.testing.assert_array_equal(np.asarray(preds["image"]), np.asarray(preds["image_blend"]))
  assert np.max(np.abs(got - want)) < 0.02 and np.mean(np.abs(got - want)) < 2e-3
  # Without zero heads the untrained UNets move the result away from the baseline.
  model, params = _dis_model_and_params(warp_padding="border")
  other = np.asarray(model.apply({"params": params}, {"frame0": jnp.asarray(frame0), "frame1": jnp.asarray(frame1),
                                                      "t": jnp.array([0.5])})["image"][0])
  assert np.mean(np.abs(other - want)) > 1e-2


@pytest.mark.skipif(not classical_flow.available(), reason=classical_flow.UNAVAILABLE_NOTE)
def test_dis_model_trains_its_heads_through_the_host_flow():
  """pure_callback has no derivative, but the frames carry none: the gradient reaches the zero heads (and only them at
  the first step, the bodies' gradient passing through the zero heads)."""
  frame0, frame1 = _shifted_pair()
  target = 0.5 * (frame0 + frame1)
  model, params = _dis_model_and_params(zero_heads=True)
  batch = {"frame0": jnp.asarray(frame0), "frame1": jnp.asarray(frame1), "t": jnp.array([0.5])}
  loss = lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, batch)["image"] - target))
  grads = jax.jit(jax.grad(loss))(params)
  for module in ("interpolation", "refinement"):
    head = grads[module]["conv3"]
    assert np.all(np.isfinite(np.asarray(head["kernel"]))) and np.any(np.asarray(head["kernel"]) != 0), module
    assert np.all(np.asarray(grads[module]["conv1"]["kernel"]) == 0), module


def test_zero_head_unet_outputs_zeros():
  x = jnp.asarray(np.random.default_rng(0).random((1, 32, 32, 6)), jnp.float32)
  net = unet.UNet(5, zero_head=True, width=0.25)
  params = net.init(jax.random.PRNGKey(0), x)
  np.testing.assert_array_equal(np.asarray(net.apply(params, x)), 0.0)
  assert np.any(np.asarray(params["params"]["conv2"]["kernel"]) != 0)  # only the head starts at zero
