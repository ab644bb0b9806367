"""Checkpoints of any train state (orbax), and building a trained model without the training stack.

A checkpoint `workdir/checkpoints/<step>/` holds every field of the train state (a `flax.struct.dataclass`: the
supervised state's params and opt_state, a GAN's two networks and two optimizer states, ...) as one orbax item per
field, plus a JSON item `extra` = {step, rng, data_position}. Whatever a family adds to its state is saved and
restored, so every family resumes exactly. Prediction reads the `params` field alone (`restore_params`), which is
why every state names the parameters that make predictions `params`.

This module imports neither grain nor tensorflow_datasets: `jaxvfi.interpolate` and the other tools use it to
restore a model for inference.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxvfi import families
from jaxvfi import steps
from jaxvfi import utils


def checkpoint_manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)


def _fields(state) -> dict[str, Any]:
  """The state's fields other than `step` (which goes into the JSON extra) and those without arrays (e.g. the
  empty state of a stateless optimizer, which orbax cannot save and the template restores as it is)."""
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if f.name != "step" and jax.tree.leaves(getattr(state, f.name))}


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def save_checkpoint(mngr: ocp.CheckpointManager, state, rng: jax.Array) -> None:
  """Saves every field of `state` (host copies) and {step, rng, data_position} under step `state.step`.

  Multi-process: every process calls this with the same (replicated) state; orbax writes it once.
  """
  state = jax.device_get(state)
  step = int(state.step)
  extra = {"step": step, "rng": [int(v) for v in np.asarray(jax.random.key_data(rng)).ravel()],
           "data_position": step}
  items = {name: ocp.args.StandardSave(value) for name, value in _fields(state).items()}
  mngr.save(step, args=ocp.args.Composite(extra=ocp.args.JsonSave(extra), **items), force=True)
  mngr.wait_until_finished()


def restore_checkpoint(mngr: ocp.CheckpointManager, template, step: int | None = None):
  """(state, rng) of checkpoint `step` (default the latest); `template` gives the state's type and shapes."""
  step = mngr.latest_step() if step is None else step
  items = {name: ocp.args.StandardRestore(_abstract(value)) for name, value in _fields(template).items()}
  restored = mngr.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore(), **items))
  extra = restored["extra"]
  state = template.replace(step=jnp.asarray(extra["step"], jnp.int32), **{k: restored[k] for k in items})
  rng = jnp.asarray(np.asarray(extra["rng"], np.uint32))
  return state, rng


def checkpoint_dir(path: str) -> str:
  path = os.path.abspath(os.path.expanduser(path))
  return path if os.path.basename(path.rstrip("/")) == "checkpoints" else os.path.join(path, "checkpoints")


def latest_step(path: str) -> int | None:
  """The latest checkpoint step under `path` (a workdir or its checkpoints/ folder), or None."""
  ckpt_dir = checkpoint_dir(path)
  return ocp.CheckpointManager(ckpt_dir).latest_step() if os.path.isdir(ckpt_dir) else None


def restore_params(path: str, template_params) -> tuple[Any, int]:
  """Params of the latest checkpoint under `path` (a workdir or its checkpoints/ folder), for eval and init_from."""
  ckpt_dir = checkpoint_dir(path)
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"no checkpoints folder at {ckpt_dir}")
  mngr = ocp.CheckpointManager(ckpt_dir)
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {ckpt_dir}")
  try:
    restored = mngr.restore(step,
                            args=ocp.args.Composite(params=ocp.args.StandardRestore(_abstract(template_params))))
  except ValueError as e:  # e.g. a concrete template of another shape: "Requested shape ... stored shape ..."
    raise ValueError(f"checkpoint {ckpt_dir}/{step} does not fit the model: {utils.error_reason(e)}") from e
  # Orbax restores an array in its saved shape when an abstract template's differs; a model built from another
  # config would then fail on its first batch, deep inside Flax.
  for (key, got), want in zip(jax.tree_util.tree_flatten_with_path(restored["params"])[0],
                              jax.tree.leaves(template_params)):
    if tuple(got.shape) != tuple(want.shape):
      raise ValueError(f"checkpoint {ckpt_dir}/{step} does not fit the model: parameter "
                       f"{jax.tree_util.keystr(key)} has shape {tuple(got.shape)} there and {tuple(want.shape)} in "
                       "the model")
  return restored["params"], step


def params_template(model, config) -> Any:
  """Parameter shapes only (`jax.eval_shape` of init on the family's example batch): no FLOPs, no memory."""
  return steps.param_shapes(model, families.of(config).example_batch(config))


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a training run saved as `workdir/config.json`."""
  path = os.path.join(os.path.abspath(os.path.expanduser(workdir)), "config.json")
  if not os.path.exists(os.path.dirname(path)):
    raise FileNotFoundError(f"workdir {os.path.dirname(path)} does not exist: give the workdir of a training run "
                            "(python -m jaxvfi.main --workdir=...)")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"workdir {os.path.dirname(path)} has no config.json: give the workdir of a training run "
                            "(python -m jaxvfi.main --workdir=...)")
  try:
    with open(path) as f:
      return ml_collections.ConfigDict(json.load(f))
  except (OSError, ValueError) as e:
    raise ValueError(f"cannot read {path}: {utils.error_reason(e)}") from e


def load_trained(workdir: str, config: ml_collections.ConfigDict | None = None):
  """(model, params, config, step) of a training run's workdir: its config.json and latest checkpoint.

  Raises:
    FileNotFoundError: no config.json (and no config given) or no checkpoint.
    ValueError: config.json is unreadable, or the checkpoint does not fit the model the config builds.
  """
  workdir = os.path.abspath(os.path.expanduser(workdir))
  step = latest_step(workdir)
  missing = [] if config is not None or os.path.isfile(os.path.join(workdir, "config.json")) else ["config.json"]
  missing += [] if step is not None else ["checkpoint (checkpoints/<step>/)"]
  if missing:
    raise FileNotFoundError(f"workdir {workdir} has no {' and no '.join(missing)}: give the workdir of a training run "
                            "(python -m jaxvfi.main --workdir=...)")
  config = read_config(workdir) if config is None else config
  model = families.build_model(config.model)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)  # orbax logs every stage of a checkpoint look-up and restore at INFO
  try:
    params, step = restore_params(workdir, params_template(model, config))
  except (ValueError, KeyError, TypeError) as e:
    why = utils.error_reason(e)
    prefix = f"checkpoint {checkpoint_dir(workdir)}/{step} does not fit the model"
    raise ValueError(f"{prefix} of {os.path.join(workdir, 'config.json')}: "
                     f"{why.removeprefix(prefix + ': ')}") from e
  finally:
    logging.set_verbosity(verbosity)
  return model, params, config, step
