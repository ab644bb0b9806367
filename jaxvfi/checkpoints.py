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
import sys
from typing import Any

from absl import logging
from etils import epath
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


class DamagedCheckpoint(ValueError):
  """A checkpoint step that cannot be read: a data file cut short, an item missing (an interrupted copy), ..."""

  def __init__(self, directory: str, step: int, problem: str):
    super().__init__(f"checkpoint step {step} in {directory} is damaged: {problem}")
    self.step = step
    _quiet_closed_loop_errors()


def _reason(e: BaseException) -> str:
  """The first line of a restore error, without the tensorstore spec (a kilobyte of JSON) that follows it."""
  return utils.error_reason(e).split(" [tensorstore_spec=")[0]


_QUIET = []


def _quiet_closed_loop_errors() -> None:
  """After orbax failed on a damaged file, tensorstore may still complete a read and call back into the event loop
  that orbax has closed: Python then prints a "RuntimeError: Event loop is closed" traceback through
  `sys.unraisablehook`, after the one-line error. Those (and only those) are dropped from then on."""
  if _QUIET:
    return
  previous = sys.unraisablehook

  def hook(unraisable):
    if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
      return
    previous(unraisable)

  sys.unraisablehook = hook
  _QUIET.append(hook)


class StructureMismatch(ValueError):
  """A readable checkpoint that holds another state than the one asked for (a config that changed the model or the
  optimizer since the checkpoint was written)."""


def _key_name(key) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def _leaf_shapes(tree) -> dict[str, tuple[int, ...]]:
  """{"a/b/0/c": shape} of a tree's leaves. Orbax's metadata turns named tuples into dicts and lists, so keys are
  compared by name or index alone."""
  leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
  return {"/".join(_key_name(k) for k in path): tuple(np.shape(leaf) if not hasattr(leaf, "shape") else leaf.shape)
          for path, leaf in leaves if leaf is not None}


def _item_metadata(mngr: ocp.CheckpointManager, step: int, names) -> dict[str, Any]:
  """The saved trees' metadata of `names` (the array items); DamagedCheckpoint when an item's folder is missing or
  its metadata cannot be read."""
  directory = str(mngr.directory)
  missing = [n for n in ["extra"] + list(names) if not os.path.isdir(os.path.join(directory, str(step), n))]
  if missing:
    raise DamagedCheckpoint(directory, step, f"its item {missing[0]!r} is missing (an interrupted save or copy?)")
  out = {}
  for name in names:
    try:
      item = ocp.StandardCheckpointHandler().metadata(epath.Path(directory) / str(step) / name)
    except Exception as e:  # pylint: disable=broad-except  (orbax raises many types for unreadable metadata)
      raise DamagedCheckpoint(directory, step, f"the metadata of its item {name!r} cannot be read "
                                               f"({_reason(e)})") from e
    out[name] = getattr(item, "tree", item)
  return out


def _count(diffs) -> str:
  return f"{len(diffs)} difference{'s' if len(diffs) != 1 else ''}"


def structure_differences(saved, template) -> list[str]:
  """What differs between a saved tree's metadata and a template: parameters only in one, or of another shape."""
  have, want = _leaf_shapes(saved), _leaf_shapes(template)
  out = [f"{k} only in the checkpoint" for k in sorted(set(have) - set(want))]
  out += [f"{k} only in this config's model" for k in sorted(set(want) - set(have))]
  out += [f"{k} has shape {have[k]} there, {want[k]} here" for k in sorted(set(have) & set(want))
          if tuple(have[k]) != tuple(want[k])]
  return out


def save_checkpoint(mngr: ocp.CheckpointManager, state, rng: jax.Array) -> None:
  """Saves every field of `state` (host copies) and {step, rng, data_position} under step `state.step`.

  Multi-process: every process calls this with the same (replicated) state; orbax writes it once. Orbax writes a
  step into a temporary folder and renames it when complete, so a process killed during a save leaves no step that
  looks complete.
  """
  state = jax.device_get(state)
  step = int(state.step)
  extra = {"step": step, "rng": [int(v) for v in np.asarray(jax.random.key_data(rng)).ravel()],
           "data_position": step}
  items = {name: ocp.args.StandardSave(value) for name, value in _fields(state).items()}
  mngr.save(step, args=ocp.args.Composite(extra=ocp.args.JsonSave(extra), **items), force=True)
  mngr.wait_until_finished()


def restore_checkpoint(mngr: ocp.CheckpointManager, template, step: int | None = None):
  """(state, rng) of checkpoint `step` (default the latest); `template` gives the state's type and shapes.

  Raises:
    StructureMismatch: the checkpoint is readable but holds another state (one line naming the first differences).
    DamagedCheckpoint: the step cannot be read (metadata, an item or a data file).
  """
  step = mngr.latest_step() if step is None else step
  fields = _fields(template)
  saved = _item_metadata(mngr, step, list(fields))
  diffs = [f"{name}/{d}" for name, value in fields.items() for d in structure_differences(saved[name], value)]
  if diffs:
    raise StructureMismatch(f"checkpoint step {step} in {mngr.directory} holds another train state than this config "
                            f"builds ({_count(diffs)}: {'; '.join(diffs[:3])}{'; ...' if len(diffs) > 3 else ''})")
  items = {name: ocp.args.StandardRestore(_abstract(value)) for name, value in fields.items()}
  try:
    restored = mngr.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore(), **items))
    extra = restored["extra"]
    state = template.replace(step=jnp.asarray(extra["step"], jnp.int32), **{k: restored[k] for k in items})
    rng = jnp.asarray(np.asarray(extra["rng"], np.uint32))
  except Exception as e:  # pylint: disable=broad-except  (tensorstore, orbax and JSON errors for damaged files)
    raise DamagedCheckpoint(str(mngr.directory), step, _reason(e)) from e
  return state, rng


def newest_intact_step(mngr: ocp.CheckpointManager, template, below: int | None = None) -> int | None:
  """The newest step (below `below` if given) that `restore_checkpoint` reads without error, or None."""
  for step in sorted(mngr.all_steps(), reverse=True):
    if below is not None and step >= below:
      continue
    try:
      restore_checkpoint(mngr, template, step)
    except (DamagedCheckpoint, StructureMismatch):
      continue
    return step
  return None


def discard_steps_after(mngr: ocp.CheckpointManager, step: int, workdir: str) -> list[int]:
  """Moves the checkpoint steps newer than `step` to `workdir/discarded_checkpoints/` (nothing is deleted), so that a
  run resumed from `step` writes its own steps after it; returns the steps moved."""
  moved = sorted(s for s in mngr.all_steps() if s > step)
  if moved and jax.process_index() == 0:
    dest = os.path.join(os.path.abspath(workdir), "discarded_checkpoints")
    os.makedirs(dest, exist_ok=True)
    for s in moved:
      target = os.path.join(dest, str(s))
      n = 1
      while os.path.exists(target):
        target, n = os.path.join(dest, f"{s}.{n}"), n + 1
      os.rename(os.path.join(str(mngr.directory), str(s)), target)
  mngr.reload()
  return moved


def checkpoint_dir(path: str) -> str:
  path = os.path.abspath(os.path.expanduser(path))
  return path if os.path.basename(path.rstrip("/")) == "checkpoints" else os.path.join(path, "checkpoints")


def latest_step(path: str) -> int | None:
  """The latest checkpoint step under `path` (a workdir or its checkpoints/ folder), or None."""
  ckpt_dir = checkpoint_dir(path)
  return ocp.CheckpointManager(ckpt_dir).latest_step() if os.path.isdir(ckpt_dir) else None


def restore_params(path: str, template_params) -> tuple[Any, int]:
  """Params of the latest intact checkpoint under `path` (a workdir or its checkpoints/ folder), for eval, init_from
  and the tools. A damaged latest step is skipped for the newest intact one, with a warning naming both.

  Raises:
    FileNotFoundError: no checkpoints folder or no checkpoint.
    ValueError: the checkpoint holds other parameters than `template_params` (one line naming the first
      differences), or no step is intact.
  """
  ckpt_dir = checkpoint_dir(path)
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"no checkpoints folder at {ckpt_dir}")
  mngr = ocp.CheckpointManager(ckpt_dir)
  all_steps = sorted(mngr.all_steps(), reverse=True)
  if not all_steps:
    raise FileNotFoundError(f"no checkpoint in {ckpt_dir}")
  damaged = []
  for step in all_steps:
    try:
      saved = _item_metadata(mngr, step, ["params"])["params"]
    except DamagedCheckpoint as e:
      damaged.append(str(e))
      continue
    diffs = structure_differences(saved, template_params)
    if diffs:
      raise ValueError(f"checkpoint {ckpt_dir}/{step} does not fit the model: {_count(diffs)}: "
                       f"{'; '.join(diffs[:3])}{'; ...' if len(diffs) > 3 else ''}")
    try:
      restored = mngr.restore(step,
                              args=ocp.args.Composite(params=ocp.args.StandardRestore(_abstract(template_params))))
    except Exception as e:  # pylint: disable=broad-except  (tensorstore and orbax errors for damaged files)
      damaged.append(str(DamagedCheckpoint(ckpt_dir, step, _reason(e))))
      continue
    for line in damaged:
      logging.warning("%s; using step %d, the newest intact one", line, step)
    return restored["params"], step
  raise ValueError(f"{damaged[0]}; no older step in {ckpt_dir} is intact either")


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
