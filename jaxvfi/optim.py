"""Optimizers and learning-rate schedules from `config.optimizer`, with per-module learning rates.

Schedule dicts (`config.optimizer.schedule` and each entry of `config.optimizer.groups`):
  {"name": "constant", "init_value": v}
  {"name": "cosine", "init_value": v0, "end_value": v1}            cosine from v0 to v1 over the whole run
  {"name": "exponential", "init_value": v0, "decay_rate": r, "transition_steps": s | "transition_epochs": e,
   "staircase": bool}                                              v0 * r ** (step / s)
  {"name": "step", "init_value": v0, "boundaries": [...] | "boundaries_epochs": [...], "factor": f}
                                                                   multiply by f at each boundary
  {"name": "cosine_warm_restarts", "init_value": v0, "end_value": v_min, "t0_steps": T_0 | "t0_epochs": e,
   "t_mult": m, "per_epoch": bool}                                 SGDR (Loshchilov & Hutter 2017): cycle i lasts
                                                                   T_i = T_0 m^i, and within it the value is
                                                                   v_min + (v0 - v_min)(1 + cos(pi T_cur / T_i)) / 2;
                                                                   per_epoch holds it over each epoch (PyTorch's
                                                                   CosineAnnealingWarmRestarts stepped once per
                                                                   epoch; t0 is then in epochs)
Durations in epochs are turned into steps with the run's steps per epoch.
"""
from __future__ import annotations

import jax.numpy as jnp
import optax


def _steps(spec, key: str, steps_per_epoch: float) -> list[int] | int | None:
  if key in spec:
    return spec[key]
  ekey = key.replace("steps", "epochs") if "steps" in key else key + "_epochs"
  if ekey in spec:
    val = spec[ekey]
    if isinstance(val, (list, tuple)):
      return [int(round(v * steps_per_epoch)) for v in val]
    return int(round(val * steps_per_epoch))
  return None


def make_schedule(spec, total_steps: int, steps_per_epoch: float) -> optax.Schedule:
  spec = dict(spec)
  name = spec.get("name", "constant")
  v0 = float(spec["init_value"])
  if name == "constant":
    return optax.constant_schedule(v0)
  if name == "cosine":
    v1 = float(spec.get("end_value", 0.0))
    return optax.cosine_decay_schedule(v0, decay_steps=max(int(total_steps), 1), alpha=v1 / v0)
  if name == "exponential":
    steps = _steps(spec, "transition_steps", steps_per_epoch)
    if not steps:
      raise ValueError(f"exponential schedule needs transition_steps or transition_epochs: {spec}")
    return optax.exponential_decay(v0, transition_steps=int(steps), decay_rate=float(spec["decay_rate"]),
                                   staircase=bool(spec.get("staircase", False)))
  if name == "step":
    bounds = _steps(spec, "boundaries", steps_per_epoch)
    if bounds is None:
      raise ValueError(f"step schedule needs boundaries or boundaries_epochs: {spec}")
    factor = float(spec.get("factor", 0.1))
    return optax.piecewise_constant_schedule(v0, {int(b): factor for b in bounds})
  if name == "cosine_warm_restarts":
    return _warm_restarts(spec, v0, total_steps, steps_per_epoch)
  raise ValueError(f"unknown schedule {name!r}; known: constant, cosine, exponential, step, cosine_warm_restarts")


def _warm_restarts(spec, v0: float, total_steps: int, steps_per_epoch: float) -> optax.Schedule:
  """Cosine annealing with warm restarts as one `optax.join_schedules` of cosine cycles (integer boundaries, so a
  restart lands exactly on its step; a closed form through log_m rounds wrongly at some boundaries)."""
  per_epoch = bool(spec.get("per_epoch", False))
  if per_epoch:
    t0 = spec.get("t0_epochs")
    if t0 is None:
      raise ValueError(f"cosine_warm_restarts with per_epoch needs t0_epochs: {spec}")
    unit_steps, horizon = float(steps_per_epoch), float(total_steps) / float(steps_per_epoch)
  else:
    t0 = _steps(spec, "t0_steps", steps_per_epoch)
    if t0 is None:
      raise ValueError(f"cosine_warm_restarts needs t0_steps or t0_epochs: {spec}")
    unit_steps, horizon = 1.0, float(total_steps)
  t0, t_mult = int(t0), int(spec.get("t_mult", 1))
  if t0 < 1 or t_mult < 1:
    raise ValueError(f"cosine_warm_restarts needs t0 >= 1 and an integer t_mult >= 1: {spec}")
  alpha = float(spec.get("end_value", 0.0)) / v0
  cycles, boundaries, start = [], [], 0
  while True:  # cycles up to the end of the run (at least one)
    length = t0 * t_mult ** len(cycles)
    cycles.append(optax.cosine_decay_schedule(v0, decay_steps=length, alpha=alpha))
    start += length
    if start > horizon:
      break
    boundaries.append(start)
  joined = optax.join_schedules(cycles, boundaries)
  if unit_steps == 1.0:
    return joined
  return lambda step: joined(jnp.floor(jnp.asarray(step, jnp.float32) / unit_steps).astype(jnp.int32))


def clip_by_tensor_norm(max_norm: float) -> optax.GradientTransformation:
  """Every gradient tensor g -> g * max_norm / max(|g|_2, max_norm), TF's `clip_by_norm` per variable."""
  def clip(g, _):
    norm = jnp.sqrt(jnp.sum(jnp.square(g)))
    return g * (max_norm / jnp.maximum(norm, max_norm))
  return optax.stateless_with_tree_map(clip)


def make_tx(opt_config, schedule) -> optax.GradientTransformation:
  """Adam or AdamW (`opt_config.name`) at `schedule`, after per-tensor clipping (`clip_per_tensor_norm`, SepConv-GAN)
  and/or global clipping (`grad_clip_norm`) when they are set."""
  name = opt_config.get("name", "adam")
  if name == "adam":
    tx = optax.adam(schedule, b1=opt_config.b1, b2=opt_config.b2, eps=opt_config.eps)
  elif name == "adamw":
    tx = optax.adamw(schedule, b1=opt_config.b1, b2=opt_config.b2, eps=opt_config.eps,
                     weight_decay=opt_config.get("weight_decay", 0.0))
  else:
    raise ValueError(f"unknown optimizer {name!r}; known: adam, adamw")
  clips = []
  if opt_config.get("clip_per_tensor_norm"):
    clips.append(clip_by_tensor_norm(float(opt_config.clip_per_tensor_norm)))
  if opt_config.get("grad_clip_norm"):
    clips.append(optax.clip_by_global_norm(float(opt_config.grad_clip_norm)))
  return optax.chain(*clips, tx) if clips else tx


def make_optimizer(opt_config, params, total_steps: int, steps_per_epoch: float):
  """Returns (tx, schedules) where schedules maps a group name ("default" or a module name) to its schedule."""
  groups = dict(opt_config.get("groups", {}) or {})
  unknown = sorted(set(groups) - set(params))
  if unknown:
    raise ValueError(f"optimizer.groups names module(s) {unknown} that the model does not have; "
                     f"modules: {sorted(params)}")
  schedules = {"default": make_schedule(opt_config.schedule, total_steps, steps_per_epoch)}
  for name, spec in groups.items():
    schedules[name] = make_schedule(spec, total_steps, steps_per_epoch)
  if not groups:
    return make_tx(opt_config, schedules["default"]), schedules
  labels = {k: (k if k in groups else "default") for k in params}
  txs = {name: make_tx(opt_config, sched) for name, sched in schedules.items()}
  return optax.multi_transform(txs, labels), schedules
