"""Schedules reproduce the recipes' numbers; per-module learning rates reach the right modules."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxvfi import optim


def test_cosine_refin_endpoints():
  s = optim.make_schedule({"name": "cosine", "init_value": 1e-4, "end_value": 1e-6}, total_steps=100,
                          steps_per_epoch=10)
  assert float(s(0)) == pytest.approx(1e-4)
  assert float(s(100)) == pytest.approx(1e-6)
  assert float(s(50)) == pytest.approx(1e-6 + 0.5 * (1e-4 - 1e-6), rel=1e-5)


def test_step_schedule_in_epochs():
  # Super-SloMo: x0.1 every 200 epochs; with 10 steps per epoch the boundaries are steps 2000 and 4000.
  s = optim.make_schedule({"name": "step", "init_value": 1e-4, "boundaries_epochs": [200, 400], "factor": 0.1},
                          total_steps=5000, steps_per_epoch=10)
  assert [float(s(i)) for i in (1999, 2000, 3999, 4000)] == pytest.approx([1e-4, 1e-5, 1e-5, 1e-6])


def test_exponential_schedule():
  s = optim.make_schedule({"name": "exponential", "init_value": 6e-4, "decay_rate": 0.99, "transition_epochs": 1,
                           "staircase": True}, total_steps=100, steps_per_epoch=5)
  assert float(s(4)) == pytest.approx(6e-4) and float(s(10)) == pytest.approx(6e-4 * 0.99 ** 2)


def test_per_module_learning_rates():
  params = {"flow": {"w": jnp.ones(3)}, "interpolation": {"w": jnp.ones(3)}}
  cfg = ml_collections.ConfigDict(dict(name="adam", b1=0.9, b2=0.999, eps=1e-8, grad_clip_norm=0.0,
                                       schedule=dict(name="constant", init_value=1e-4),
                                       groups=dict(flow=dict(name="constant", init_value=1e-6))))
  tx, schedules = optim.make_optimizer(cfg, params, 10, 1.0)
  assert set(schedules) == {"default", "flow"}
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  # Adam's first step moves every weight by lr (bias-corrected m / sqrt(v) = 1).
  np.testing.assert_allclose(updates["flow"]["w"], -1e-6, rtol=1e-4)
  np.testing.assert_allclose(updates["interpolation"]["w"], -1e-4, rtol=1e-4)
  cfg.groups = {"nope": dict(name="constant", init_value=1.0)}
  with pytest.raises(ValueError, match="nope"):
    optim.make_optimizer(cfg, params, 10, 1.0)
