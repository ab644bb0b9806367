"""Train states and pure train steps: what a family needs to say how it trains, without the trainer's loop.

A family's `make_train_setup(config, model, loss_fn, init_batch, total_steps, steps_per_epoch)` returns a
`TrainSetup`: a pure step `(state, batch, rng, axis_name) -> (state, metrics)` and its state's `init`. The default is
`supervised_setup`: one parameter tree, one optax transformation from `config.optimizer`. The trainer
(`jaxvfi.train`) runs the step under `jax.jit` or `jax.pmap` (`jaxvfi.parallel`) and checkpoints every field of the
state (`jaxvfi.checkpoints`).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvfi import optim


@flax.struct.dataclass
class TrainState:
  """The supervised state. Any family's state is a `flax.struct.dataclass` with `step` and `params` (the parameters
  that make predictions) and whatever else it needs; the trainer checkpoints every field."""
  step: jax.Array
  params: Any
  opt_state: Any


@dataclasses.dataclass(frozen=True)
class TrainSetup:
  """How a family trains (`jaxvfi.families`, `make_train_setup`).

  Attributes:
    init: rng -> state, a `flax.struct.dataclass` with an int32 `step` and the prediction `params`.
    step: (state, batch, rng, axis_name) -> (state, metrics), pure. With `axis_name` (data-parallel pmap) it
      averages gradients and metrics over that axis (`lax.pmean`). metrics must hold a scalar "loss", which the
      trainer checks for non-finite values.
    schedules: {name: optax schedule}, logged as train/lr_<name>.
  """
  init: Callable[[jax.Array], Any]
  step: Callable[..., tuple[Any, dict[str, jax.Array]]]
  schedules: dict[str, Callable] = dataclasses.field(default_factory=dict)


# XLA:CPU spends most of the compilation of a model's init program on the threefry random bits of its initialisers,
# and the optimisation level decides that time: for ReFIn with PWC-Net and UNets (218 parameter arrays) 75 s at the
# default level, 29 s at level 1 and 15 s at level 0, against 11 s for its forward pass (BENCHMARKS.md). Level 1
# gives the default level's bits (tests/test_train.py); level 0 changes kernels in their last bit. The program runs
# once, so its own speed does not matter.
_CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def init_params(model: nn.Module, batch: dict, rng) -> Any:
  """`model.init(rng, batch, train=False)["params"]`, jitted (on CPU, compiled at XLA's backend optimisation level
  1, which gives the same bits 2.5x sooner). `batch`: the family's example batch (`Family.example_batch`)."""
  init = jax.jit(lambda r: model.init(r, batch, train=False)["params"])
  if jax.default_backend() != "cpu" or isinstance(rng, jax.core.Tracer):  # traced (e.g. jax.eval_shape): staged
    return init(rng)
  return init.lower(rng).compile(compiler_options=_CPU_INIT_COMPILER_OPTIONS)(rng)


def param_shapes(model: nn.Module, batch: dict) -> Any:
  """The parameter tree as `jax.ShapeDtypeStruct`s (`jax.eval_shape` of init on `batch`): no FLOPs, no memory."""
  return jax.eval_shape(lambda r: model.init(r, batch, train=False)["params"], jax.random.PRNGKey(0))


def param_counts(model: nn.Module, batch: dict) -> dict[str, int]:
  """Per top-level module parameter counts and their "total" (`param_shapes`)."""
  counts = {k: int(sum(np.prod(x.shape) for x in jax.tree.leaves(v)))
            for k, v in param_shapes(model, batch).items()}
  counts["total"] = int(sum(counts.values()))
  return counts


def supervised_step(state: TrainState, batch: dict, rng: jax.Array, axis_name: str | None = None, *,
                    apply_fn: Callable, loss_fn: Callable, tx: optax.GradientTransformation):
  """One optimisation step; pure. Under pmap, gradients and metrics are averaged over `axis_name`."""

  def compute_loss(params):
    preds = apply_fn({"params": params}, batch, train=True, rngs={"dropout": rng})
    return loss_fn(preds, batch)

  (_, metrics), grads = jax.value_and_grad(compute_loss, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.pmean(grads, axis_name)
    metrics = jax.lax.pmean(metrics, axis_name)
  metrics["grad_norm"] = optax.tree.norm(grads)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def supervised_setup(config, model: nn.Module, loss_fn: Callable, init_batch: dict, total_steps: int,
                     steps_per_epoch: float, opt_config=None) -> TrainSetup:
  """The default setup: params initialised on `init_batch`, one optax transformation from `config.optimizer` (or
  `opt_config`; per-module rates by `optimizer.groups`), `supervised_step`."""
  tx, schedules = optim.make_optimizer(opt_config or config.optimizer, param_shapes(model, init_batch), total_steps,
                                       steps_per_epoch)

  def init(rng):
    params = init_params(model, init_batch, rng)
    return TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params))

  step = functools.partial(supervised_step, apply_fn=model.apply, loss_fn=loss_fn, tx=tx)
  return TrainSetup(init=init, step=step, schedules=schedules)
