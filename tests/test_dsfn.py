"""Tests of the DSFN family (paper 002): parameter counts, output shapes, Eqs. (8)-(12) against hand computations."""
from __future__ import annotations

import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import ROOT
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi.models import dsfn


def _batch_struct(low: int = 16, batch: int = 1):
  return {"blurry": jax.ShapeDtypeStruct((batch, 4, low, low, 3), jnp.float32)}


def _counts(module, low: int = 16) -> dict[str, int]:
  shapes = jax.eval_shape(lambda r, b: module.init(r, b)["params"], jax.random.PRNGKey(0), _batch_struct(low))
  return {k: int(sum(np.prod(x.shape) for x in jax.tree.leaves(v))) for k, v in shapes.items()}


def test_default_reading_has_the_papers_parameter_count():
  # Table 3 of paper 002: 10.9 M; level 1 is the two weight-shared DSFN1s, level 2 the DSFN2 (240 input channels).
  counts = _counts(dsfn.build(ml_collections.ConfigDict({"name": "dsfn"})))
  assert counts == {"level1": 5_383_184, "level2": 5_516_240}
  assert sum(counts.values()) == 10_899_424
  assert _counts(dsfn.build(ml_collections.ConfigDict({"name": "dsfn", "levels": 1}))) == {"level1": 5_383_184}


def test_hand_count_of_one_level():
  """conv(a -> b) = 9 a b + b; SubModule(a -> m) = conv(a -> m) + 4 conv(m -> m) (two residual blocks)."""
  conv = lambda a, b: 9 * a * b + b
  sub = lambda a, m: conv(a, m) + 4 * conv(m, m)
  level = lambda c_in: (sub(c_in, 64) + sub(64, 128) + 3 * sub(128, 128) + 2 * sub(128, 128)  # encoder, JDSR, TFBFI
                        + conv(128, 2 * 8 * 2 * 9) + 2 * conv(128, 128)  # offset head (2 DCNs x 8 groups), DCNs
                        + sub(128, 64) + conv(64, 3 * 16))  # decoder
  assert (level(9), level(5 * 48)) == (5_383_184, 5_516_240)


def test_docstring_table_of_readings():
  """Every row of the module docstring's table of readings is the count the model builds."""
  rows = re.findall(r"\| (\d) \| (True|False)\s*\| (True|False)\s*\| \**([\d,]+)", dsfn.__doc__)
  assert len(rows) == 8
  for groups, modulated, shared, count in rows:
    module = dsfn.DSFN(offset_groups=int(groups), modulated=modulated == "True", shared_dcn=shared == "True")
    assert sum(_counts(module).values()) == int(count.replace(",", "")), (groups, modulated, shared)


@pytest.mark.parametrize("levels", (1, 2))
def test_output_shapes_for_64px_inputs(levels):
  out = jax.eval_shape(lambda b: dsfn.DSFN(levels=levels).init_with_output(jax.random.PRNGKey(0), b)[0],
                       _batch_struct(64, batch=2))
  want = {"level1": (2, 5, 256, 256, 3), "image": (2, 3, 256, 256, 3)}
  if levels == 2:
    want["level2"] = (2, 3, 256, 256, 3)
  assert {k: v.shape for k, v in out.items()} == want


def test_pixel_shuffle_follows_pytorchs_channel_order():
  rng = np.random.default_rng(0)
  r, c, h, w = 3, 2, 4, 5
  x = rng.normal(size=(h, w, c * r * r)).astype(np.float32)
  want = np.zeros((h * r, w * r, c), np.float32)
  for yy in range(h):
    for xx in range(w):
      for ch in range(c):
        for i in range(r):
          for j in range(r):
            want[yy * r + i, xx * r + j, ch] = x[yy, xx, ch * r * r + i * r + j]
  np.testing.assert_array_equal(np.asarray(dsfn.pixel_shuffle(jnp.asarray(x), r)), want)
  np.testing.assert_array_equal(np.asarray(dsfn.pixel_unshuffle(jnp.asarray(want), r)), x)


@pytest.mark.parametrize("scale", (2, 4))
def test_pixel_shuffle_of_repeated_channels_is_nearest_upsampling(scale):
  """PS(Rep(B)) = nearest-neighbour upsampling of B (Eqs. (10)-(11)): the channel order of f^{H,0}."""
  img = np.random.default_rng(1).uniform(size=(2, 5, 7, 3)).astype(np.float32)
  nearest = np.repeat(np.repeat(img, scale, axis=1), scale, axis=2)
  got = dsfn.pixel_shuffle(dsfn.repeat_channels(jnp.asarray(img), scale), scale)
  np.testing.assert_array_equal(np.asarray(got), nearest)


def _zero_decoders(params):
  """The decoders' last convs set to zero: every output is then its residual alone."""
  def zero(path, x):
    return jnp.zeros_like(x) if any(getattr(p, "key", None) == "decoder_out" for p in path) else x
  return jax.tree_util.tree_map_with_path(zero, params)


def test_residuals_of_both_levels():
  """With the decoders silenced, level 1 gives nearest-upsampled key frames and neighbour means (Eqs. (9)-(10), the
  duplicate t-1 averaged) and level 2 repeats level 1 (Eq. (8))."""
  rng = np.random.default_rng(2)
  blurry = rng.uniform(size=(1, 4, 6, 5, 3)).astype(np.float32)
  model = dsfn.DSFN(scale=2, impl="xla")
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), {"blurry": blurry})["params"]
  params = jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.05, s.shape), jnp.float32), shapes)
  preds = model.apply({"params": _zero_decoders(params)}, {"blurry": blurry})
  up = np.repeat(np.repeat(blurry[0], 2, axis=1), 2, axis=2)  # nearest x2 of B_{t-4}, B_{t-2}, B_t, B_{t+2}
  want = np.stack([(up[0] + up[1]) / 2, up[1], (up[1] + up[2]) / 2, up[2], (up[2] + up[3]) / 2])
  np.testing.assert_allclose(np.asarray(preds["level1"][0]), want, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(np.asarray(preds["level2"][0]), want[1:4], rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(preds["image"]), np.asarray(preds["level2"]))


def test_bad_inputs():
  with pytest.raises(ValueError, match=r"\(B, 4, h, w, 3\)"):
    dsfn.DSFN().init(jax.random.PRNGKey(0), {"blurry": jnp.zeros((1, 3, 4, 4, 3))})
  with pytest.raises(ValueError, match="levels"):
    dsfn.DSFN(levels=3).init(jax.random.PRNGKey(0), {"blurry": jnp.zeros((1, 4, 4, 4, 3))})


def test_baseline_is_bicubic_key_frames_and_their_mean():
  rng = np.random.default_rng(3)
  blurry = rng.uniform(size=(2, 4, 5, 6, 3)).astype(np.float32)
  config = ml_collections.ConfigDict({"model": {"name": "dsfn", "scale": 4}})
  got = np.asarray(dsfn.baselines({"blurry": blurry}, config)["bicubic"])
  up = lambda f: np.asarray(jax.image.resize(jnp.asarray(f), (2, 20, 24, 3), "bicubic"))
  k1, k2 = up(blurry[:, 1]), up(blurry[:, 2])
  np.testing.assert_allclose(got, np.stack([k1, (k1 + k2) / 2, k2], axis=1), rtol=1e-6, atol=1e-6)


def test_eq12_loss_by_hand():
  """Sharp frame k is 0.1 k everywhere; level 1 predicts 0 and level 2 predicts 0.25. Eq. (12): (1/5) (0.1 + 0.2 + 0.3
  + 0.4 + 0.5) = 0.3 for the level-1 frames 1 ... 5, (1/3) (0.05 + 0.05 + 0.15) = 1/12 for the level-2 frames 2, 3, 4."""
  sharp = np.broadcast_to((0.1 * np.arange(7, dtype=np.float32))[None, :, None, None, None], (2, 7, 4, 8, 3))
  preds = {"level1": jnp.zeros((2, 5, 4, 8, 3)), "level2": jnp.full((2, 3, 4, 8, 3), 0.25)}
  config = config_lib.load_config(os.path.join(ROOT, "configs", "dsfn.py"))
  loss_fn, notes = families.of(config).make_loss_fn(config)
  total, metrics = loss_fn(preds, {"sharp": jnp.asarray(sharp)})
  assert notes == []
  assert float(metrics["loss_level1_l1"]) == pytest.approx(0.3, rel=1e-6)
  assert float(metrics["loss_level2_l1"]) == pytest.approx(1 / 12, rel=1e-6)
  assert float(total) == pytest.approx(0.3 + 1 / 12, rel=1e-6)
  single_config = config_lib.load_config(os.path.join(ROOT, "configs", "dsfn.py"), "levels=1")
  single, _ = families.of(single_config).make_loss_fn(single_config)
  total, metrics = single({"level1": preds["level1"]}, {"sharp": jnp.asarray(sharp)})
  assert float(total) == pytest.approx(0.3, rel=1e-6) and "loss_level2_l1" not in metrics


def test_config_recipe_and_variants():
  load = lambda arg=None: config_lib.load_config(os.path.join(ROOT, "configs", "dsfn.py"), arg)
  c = load()
  assert (c.batch_size, c.num_train_steps, c.model.scale, c.model.offset_groups) == (8, 300_000, 4, 8)
  assert c.data.name == "jaxvfi_synthetic_blur" and c.data.augmentation == "dsfn" and c.data.builder_config == "blurry4"
  assert dict(c.loss.weights) == {"level1_l1": 1.0, "level2_l1": 1.0}
  assert c.optimizer.name == "adam" and c.optimizer.schedule.name == "cosine"
  assert set(c.evals) == {"validation", "adobe240", "gopro"}
  assert list(c.evals.adobe240.reference) == ["DSFN, paper Table 1"]
  single = load("levels=1,data=gopro")
  assert single.model.levels == 1 and single.loss.weights.level2_l1 == 0.0
  assert single.data.name == "gopro" and single.data.eval_split == "test"
  assert list(single.evals.gopro.reference) == ["DSFN single-level, paper Table 2"]
  local = load("runlocal")
  assert local.data.augmentation_args.noise_std == 0.01 and local.num_train_steps == 600
  for bad, message in (("levels=3", "levels must be 1 or 2"), ("data=vimeo", "data must be one of")):
    with pytest.raises(ValueError, match=message):
      load(bad)
