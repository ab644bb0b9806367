"""SepConv network (paper 001; Niklaus et al. 2017): parameter count, shapes, and hand-set kernels through the net."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxvfi.models import sepconv

K = 51


def _count(tree):
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


@functools.lru_cache(maxsize=None)
def _shapes(kernel_size=K):
  f = jnp.zeros((1, 32, 32, 3))
  return jax.eval_shape(sepconv.SepConvNet(kernel_size).init, jax.random.PRNGKey(0), f, f)


def _random_params(seed=0):
  """Random values in the shapes `init` gives, without compiling `init` (slow on CPU for 21.7 M parameters)."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(0.0, 0.05, s.shape).astype(np.float32)), _shapes())


def _frames(seed=0, h=32, w=32):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.uniform(size=(2, h, w, 3)).astype(np.float32)),
          jnp.asarray(rng.uniform(size=(2, h, w, 3)).astype(np.float32)))


@functools.lru_cache(maxsize=None)
def _apply(padding):
  return jax.jit(sepconv.SepConvNet(K, padding=padding).apply)


def _with_heads(variables, taps):
  """Sets each subnet's last conv to a constant kernel: zero weights, bias = the given K-vector (or zeros)."""
  params = dict(variables["params"])
  for name in ("kv0", "kh0", "kv1", "kh1"):
    head = dict(params[name]["head"])
    head["kernel"] = jnp.zeros_like(head["kernel"])
    head["bias"] = jnp.asarray(taps.get(name, np.zeros(K)), jnp.float32)
    params[name] = {**params[name], "head": head}
  return {"params": params}


def _one_hot(i, scale=1.0):
  v = np.zeros(K)
  v[i] = scale
  return v


def test_parameter_count_matches_papers_readme():
  params = _shapes()["params"]
  assert _count(params) == 21_675_452
  # One subnet by hand: 2 × (9·64·64 + 64) + (9·64·51 + 51) + (9·51·51 + 51) = 126,743.
  assert _count(params["kv0"]) == 126_743
  assert _count(params["conv1"]) == 9 * 6 * 32 + 32 + 2 * (9 * 32 * 32 + 32)


def test_forward_shapes_on_a_32x32_pair():
  f0, f1 = _frames()
  out = _apply("zeros")(_random_params(), f0, f1)
  assert set(out) == {"image", "kv0", "kh0", "kv1", "kh1"}
  assert out["image"].shape == (2, 32, 32, 3)
  for name in ("kv0", "kh0", "kv1", "kh1"):
    assert out[name].shape == (2, 32, 32, K)
  assert np.isfinite(np.asarray(out["image"])).all()


def test_centre_taps_reproduce_the_frames():
  f0, f1 = _frames(1)
  params = _random_params(1)
  centre = K // 2
  out = _apply("zeros")(_with_heads(params, {"kv0": _one_hot(centre), "kh0": _one_hot(centre)}), f0, f1)
  np.testing.assert_allclose(out["image"], f0, atol=1e-6)
  np.testing.assert_array_equal(out["kv1"], 0.0)
  # Half of each frame: kv = e_c, kh = e_c / 2 for both frames.
  half = {"kv0": _one_hot(centre), "kh0": _one_hot(centre, 0.5), "kv1": _one_hot(centre), "kh1": _one_hot(centre, 0.5)}
  out = _apply("zeros")(_with_heads(params, half), f0, f1)
  np.testing.assert_allclose(out["image"], 0.5 * (f0 + f1), atol=1e-6)


@pytest.mark.parametrize("padding,np_mode", [("zeros", "constant"), ("replicate", "edge")])
def test_last_horizontal_tap_shifts_by_half_a_kernel_into_the_padding(padding, np_mode):
  """kh = e_{K-1} reads x + K // 2: the right 25 columns come from the padding, which shows the padding mode."""
  f0, f1 = _frames(2)
  out = _apply(padding)(_with_heads(_random_params(2), {"kv1": _one_hot(K // 2), "kh1": _one_hot(K - 1)}), f0, f1)
  r = K // 2
  want = np.pad(np.asarray(f1), ((0, 0), (0, 0), (0, r), (0, 0)), mode=np_mode)[:, :, r:r + 32]
  np.testing.assert_allclose(out["image"], want, atol=1e-6)


def test_rejects_unaligned_frames():
  f = jnp.zeros((1, 48, 40, 3))
  with pytest.raises(ValueError, match="multiples of 32"):
    jax.eval_shape(sepconv.SepConvNet(K).init, jax.random.PRNGKey(0), f, f)
  with pytest.raises(ValueError, match="padding"):
    jax.eval_shape(sepconv.SepConvNet(K, padding="reflect").init, jax.random.PRNGKey(0), f[:, :32, :32],
                   f[:, :32, :32])


def test_build_pads_to_32_and_crops_back():
  module = sepconv.build(ml_collections.ConfigDict({"name": "sepconv", "padding": "replicate"}))
  assert module.padding == "replicate" and module.kernel_size == K
  batch = {"frame0": jnp.zeros((1, 40, 36, 3)), "frame1": jnp.zeros((1, 40, 36, 3))}
  variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), batch)
  assert _count(variables["params"]) == 21_675_452
  out = jax.eval_shape(module.apply, variables, batch)
  assert out["image"].shape == (1, 40, 36, 3) and out["kv0"].shape == (1, 40, 36, K)


def test_upsample_half_pixel_and_align_corners_by_hand():
  from jaxvfi.models import unet  # pylint: disable=g-import-not-at-top
  x = jnp.asarray([0.0, 3.0, 6.0]).reshape(1, 1, 3, 1)
  # align_corners=True: output i samples i * 2 / 5, so the ramp 0..6 is spread over 6 samples, corners kept.
  np.testing.assert_allclose(unet.upsample2x(x, align_corners=True)[0, 0, :, 0], [0, 1.2, 2.4, 3.6, 4.8, 6.0],
                             atol=1e-6)
  # Half-pixel (PyTorch align_corners=False): i samples (i + 0.5) / 2 - 0.5, clamped at the borders.
  np.testing.assert_allclose(unet.upsample2x(x)[0, 0, :, 0], [0, 0.75, 2.25, 3.75, 5.25, 6.0], atol=1e-6)
  # Both axes: a bilinear ramp stays the same ramp with align_corners=True.
  ramp = jnp.arange(2.0)[:, None] * 10.0 + jnp.arange(3.0)[None, :]
  got = unet.upsample2x(ramp[None, :, :, None], align_corners=True)[0, :, :, 0]
  want = (np.arange(4) / 3.0)[:, None] * 10.0 + (np.arange(6) * 2 / 5)[None, :]
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_interpolator_input_border_and_multiple_crop_back_in_place():
  """Border 8 + bottom/right padding to 32 around 16x16 frames; kh0 = e_{c+3} reads 3 pixels to the right, so the
  output is frame0 shifted left by 3 (edge-replicated): any misplaced crop would shift it differently."""
  module = sepconv.SepConvInterpolator(K, padding="replicate", input_multiple=32, input_border=8)
  f0, f1 = _frames(3, 16, 16)
  heads = _with_heads(_random_params(3), {"kv0": _one_hot(K // 2), "kh0": _one_hot(K // 2 + 3)})
  out = jax.jit(module.apply)({"params": {"sepconv": heads["params"]}}, {"frame0": f0, "frame1": f1})
  want = np.pad(np.asarray(f0), ((0, 0), (0, 0), (0, 3), (0, 0)), mode="edge")[:, :, 3:]
  assert out["image"].shape == (2, 16, 16, 3) and out["kh0"].shape == (2, 16, 16, K)
  np.testing.assert_allclose(out["image"], want, atol=1e-6)
  with pytest.raises(ValueError, match="input_multiple must be a positive multiple of 32"):
    jax.eval_shape(sepconv.SepConvInterpolator(K, input_multiple=48).init, jax.random.PRNGKey(0),
                   {"frame0": f0, "frame1": f1})
