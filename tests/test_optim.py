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


def _sgdr(epoch, v0=2e-4, v_min=1e-5, t0=20, t_mult=2):
  """PyTorch's CosineAnnealingWarmRestarts closed form (its `step(epoch)` branch for T_mult > 1), in floats."""
  n = int(np.log(epoch / t0 * (t_mult - 1) + 1) / np.log(t_mult) + 1e-9) if epoch >= t0 else 0
  t_cur = epoch - t0 * (t_mult ** n - 1) / (t_mult - 1)
  t_i = t0 * t_mult ** n
  return v_min + (v0 - v_min) * (1 + np.cos(np.pi * t_cur / t_i)) / 2


def test_cosine_warm_restarts_sdan():
  # SDAN's recipe: T_0 = 20 epochs, T_mult = 2, eta_min = 1e-5, 300 epochs = cycles of 20, 40, 80, 160 epochs.
  spec = {"name": "cosine_warm_restarts", "init_value": 2e-4, "end_value": 1e-5, "t0_epochs": 20, "t_mult": 2,
          "per_epoch": True}
  s = optim.make_schedule(spec, total_steps=3000, steps_per_epoch=10)
  for epoch in (0, 20, 60, 140):  # restarts: back to the initial value
    assert float(s(10 * epoch)) == pytest.approx(2e-4, rel=1e-6)
    assert float(s(10 * epoch + 9)) == pytest.approx(2e-4, rel=1e-6)  # held over the whole epoch
  for epoch in (1, 10, 19, 39, 59, 100, 139, 220, 299):
    assert float(s(10 * epoch + 5)) == pytest.approx(_sgdr(epoch), rel=1e-5), epoch
  assert float(s(10 * 10)) == pytest.approx((2e-4 + 1e-5) / 2, rel=1e-5)  # mid-cycle 1: the mean
  assert float(s(10 * 299)) == pytest.approx(1e-5 + 1.9e-4 * (1 + np.cos(np.pi * 159 / 160)) / 2, rel=1e-5)

  # Per step: the cycle of 200 steps, then 400, with the cosine moving every step.
  s = optim.make_schedule({**spec, "per_epoch": False}, total_steps=3000, steps_per_epoch=10)
  assert float(s(200)) == pytest.approx(2e-4, rel=1e-6) and float(s(600)) == pytest.approx(2e-4, rel=1e-6)
  assert float(s(205)) == pytest.approx(1e-5 + 1.9e-4 * (1 + np.cos(np.pi * 5 / 400)) / 2, rel=1e-5)
  assert float(s(199)) == pytest.approx(1e-5 + 1.9e-4 * (1 + np.cos(np.pi * 199 / 200)) / 2, rel=1e-5)
  with pytest.raises(ValueError, match="t0"):
    optim.make_schedule({"name": "cosine_warm_restarts", "init_value": 1.0}, 10, 1.0)
