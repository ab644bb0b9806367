"""The one trainer every jaxvfi model family uses: `train_and_evaluate`, `evaluate` and `summarize`.

Nothing here knows a paper. The family (`jaxvfi.families`, resolved once from `config.model.name`) brings its module,
its example batch, its loss terms and its train setup (`jaxvfi.steps.TrainSetup`: a pure step and its state's
`init`; a GAN's two networks and two optimizers). The step runs under `jax.jit` on one device and under `jax.pmap`
over all devices when there are several (`jaxvfi.parallel`). Evaluation is by type (`jaxvfi.evaluators`).

Resuming is exact for every family: the checkpoint holds every field of the state and the rng
(`jaxvfi.checkpoints`); the data of step s is a pure function of (seed, s)
(`input_pipeline.create_train_iterator(start_step=s)`), and the step rng is `fold_in(rng, s)`. So k steps, a new
process, and k more give the state of 2k steps straight.
"""
from __future__ import annotations

import json
import logging as py_logging
import os
import re
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from jaxvfi import checkpoints
from jaxvfi import data_config as data_config_lib
from jaxvfi import families
from jaxvfi import input_pipeline
from jaxvfi import model_file
from jaxvfi import parallel
from jaxvfi import steps
from jaxvfi import torch_weights
from jaxvfi import utils
from jaxvfi import weights as weights_lib
from jaxvfi.evaluators import registry
from jaxvfi.evaluators import report


class TrainingError(RuntimeError):
  """A run cannot go on (non-finite loss, missing checkpoint, ...): one clear message, nothing half-written."""


# ----------------------------------------------------------------------------------------------------------------
# Setup shared by the modes.


def _steps_per_epoch(config) -> float:
  return input_pipeline.num_examples(config.data, config.data.train_split) / float(config.batch_size)


def total_train_steps(config) -> int:
  if int(config.num_train_steps) > 0:
    return int(config.num_train_steps)
  if float(config.get("num_epochs", 0)) > 0:
    return int(np.ceil(config.num_epochs * _steps_per_epoch(config)))
  raise ValueError("set num_train_steps > 0 or num_epochs > 0")


def _group_lrs(schedules, step) -> dict[str, float]:
  return {name: float(s(step)) for name, s in schedules.items()}


def _check_batch_size(config, num_devices: int) -> None:
  total = num_devices * jax.process_count()
  if config.batch_size % total:
    raise ValueError(f"batch_size {config.batch_size} is not divisible by the {total} devices "
                     f"({jax.process_count()} processes x {num_devices})")


def _resume(mngr, template, config, workdir: str, restore_step):
  """(state, rng) of the checkpoint `restore_step` names (`train_and_evaluate`), with one TrainingError line for a
  checkpoint that does not fit the config or is damaged."""
  saved = sorted(mngr.all_steps())
  if restore_step in (None, "latest"):
    step = saved[-1]
  elif restore_step == "intact":
    step = checkpoints.newest_intact_step(mngr, template)
    if step is None:
      raise TrainingError(f"no checkpoint step in {mngr.directory} is intact (steps {saved})")
  else:
    step = int(restore_step)
    if step not in saved:
      raise TrainingError(f"--restore_step={step}: {mngr.directory} holds steps {saved}")
  try:
    state, rng = checkpoints.restore_checkpoint(mngr, template, step)
  except checkpoints.StructureMismatch as e:
    raise TrainingError(f"{e}{_config_differences(config, workdir, ('model', 'optimizer'))}; resume with the "
                        "config the run was trained with, or start a new workdir from this one's parameters with "
                        f"--config.init_from={workdir}") from e
  except checkpoints.DamagedCheckpoint as e:
    intact = checkpoints.newest_intact_step(mngr, template, below=step)
    offer = (f"step {intact} is intact: rerun with --restore_step={intact} to resume from it (the newer steps are then "
             f"moved to {os.path.join(workdir, 'discarded_checkpoints')})" if intact is not None
             else "no older step is intact")
    raise TrainingError(f"{e}; {offer}") from e
  moved = checkpoints.discard_steps_after(mngr, step, workdir)
  if moved:
    logging.warning("resuming from step %d: the newer steps %s were moved to %s", step, moved,
                    os.path.join(workdir, "discarded_checkpoints"))
  logging.info("resuming from the checkpoint of step %d in %s", step, mngr.directory)
  return state, rng


# ----------------------------------------------------------------------------------------------------------------
# Modes.


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, restore_step: str | int | None = None) -> dict:
  """Trains with periodic evaluation and checkpoints; resumes from `workdir` if it holds checkpoints.

  Args:
    config: the run's config.
    workdir: checkpoints, config.json, logs, TensorBoard events and eval records go here.
    restore_step: which checkpoint a run resumes from: None or "latest" (the default), "intact" (the newest step
      that reads without error) or a step number. Steps newer than the one restored are moved to
      `workdir/discarded_checkpoints/` (nothing is deleted).

  Returns the last eval record (the content of `workdir/eval_<step>.json`).

  Raises:
    TrainingError: a non-finite loss, a damaged checkpoint (naming the newest intact step), a checkpoint that holds
      another state than `config` builds (naming the config fields that differ from the run's config.json). The
      workdir's config.json is rewritten only once the restore has succeeded.
  """
  utils.prepare_workdir(workdir)
  log_handler = utils.add_file_logging(workdir) if parallel.is_primary() else None
  try:
    return _train_and_evaluate(config, workdir, restore_step)
  finally:
    if log_handler is not None:
      py_logging.getLogger("absl").removeHandler(log_handler)
      log_handler.close()


def _check_dataset_names(config) -> None:
  """Every dataset the run reads, named before training: a mixture trains on its components and evaluates on
  `data.name`, so a misspelt `data.name` would otherwise surface only at the first evaluation."""
  names = [c.name for c, _ in data_config_lib.mixture_components(config.data)] + [config.data.name]
  names += [e["dataset"] for e in registry.entries(config) if e.get("dataset")]
  for name in names:
    input_pipeline.check_dataset_name(name)


def _train_and_evaluate(config, workdir, restore_step):
  ckpt_dir = os.path.join(workdir, "checkpoints")
  resuming = checkpoints.latest_step(ckpt_dir) is not None
  if not resuming and config.get("require_init_from") and not config.get("init_from"):
    raise ValueError("this config fine-tunes a trained model: set --config.init_from=<workdir of the first stage>")
  family = families.of(config)
  family.check_config(config)  # before the data is prepared: a config that cannot train fails at once
  _check_dataset_names(config)
  num_devices = jax.local_device_count() if config.get("use_pmap", True) else 1
  _check_batch_size(config, num_devices)
  if num_devices > 1 or jax.process_count() > 1:
    logging.info("data-parallel training (pmap) over %d local devices%s: %d examples per device, global batch %d",
                 num_devices, f" in each of {jax.process_count()} processes" if jax.process_count() > 1 else "",
                 config.batch_size // (num_devices * jax.process_count()), config.batch_size)
  else:
    logging.info("training on one device (%s), batch %d", jax.devices()[0].device_kind, config.batch_size)

  total_steps = total_train_steps(config)
  steps_per_epoch = _steps_per_epoch(config)
  model = family.build(config.model)
  loss_fn, notes = family.make_loss_fn(config)
  init_batch = family.example_batch(config)
  setup = family.make_train_setup(config, model, loss_fn, init_batch, total_steps, steps_per_epoch)

  rng = jax.random.PRNGKey(config.seed)
  init_rng, train_rng = jax.random.split(rng)
  state = setup.init(init_rng)
  params, pretrained_notes = family.load_pretrained(state.params, config)
  state = state.replace(params=params)
  for line in pretrained_notes:
    logging.info("%s", line)
  for note in notes:
    logging.warning("%s", note)

  mngr = checkpoints.checkpoint_manager(workdir, config.keep_checkpoints)
  if mngr.latest_step() is not None:
    state, train_rng = _resume(mngr, state, config, workdir, restore_step)
  elif config.get("init_from"):
    init, from_step = checkpoints.restore_params(config.init_from, state.params)
    state = state.replace(params=init)
    logging.info("initialised the parameters from step %d of %s", from_step, config.init_from)
  if parallel.is_primary():  # only now: a run that cannot resume leaves the workdir's config.json as it was
    utils.atomic_write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  start = int(state.step)
  counts = steps.param_counts(model, init_batch)
  logging.info("parameters: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))

  writer = report.summary_writer(workdir)
  runner = parallel.StepRunner(setup.step, num_devices)
  tta = family.check_test_time_augmentation(config)
  predict_fn = families.make_predict_fn(model, tta)
  notes = notes + report.tta_notes(tta)
  periodic, benchmarks = report.split_entries(config)
  record = None

  def evaluate_now(done, final):
    todo = [e for e in periodic if final or (registry.every_steps(e, config) > 0
                                             and done % registry.every_steps(e, config) == 0)]
    return report.run_evals(predict_fn, runner.get(dstate).params, config, workdir, done, notes, todo, writer) \
        if todo else None

  if start >= total_steps:
    logging.info("nothing to train: the checkpoint is at step %d and num_train_steps is %d", start, total_steps)
    dstate = runner.put(state)
  else:
    logging.info("training steps %d -> %d (%.1f steps per epoch)", start, total_steps, steps_per_epoch)
    train_iter = input_pipeline.create_train_iterator(config.data, config.batch_size, config.seed, start_step=start)
    dstate = runner.put(state)
    bar = utils.progress_bar(total=total_steps, initial=start,
                             enabled=config.get("progress_bar", True) and parallel.is_primary())
    t_log, steps_since_log = time.perf_counter(), 0
    nonfinite_saves = set()
    try:
      for step in range(start, total_steps):
        batch = next(train_iter)
        dstate, m = runner(dstate, batch, jax.random.fold_in(train_rng, step))
        m = jax.device_get(runner.unreplicated_metrics(m))
        done = step + 1
        loss = float(m["loss"])
        if not np.isfinite(loss):
          raise TrainingError(_non_finite_message(loss, done, mngr, workdir, nonfinite_saves))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")
        steps_since_log += 1
        if done % config.log_every_steps == 0 or done == total_steps:
          elapsed = time.perf_counter() - t_log
          sps = steps_since_log / max(elapsed, 1e-9)
          for k, v in m.items():
            writer.add_scalar(f"train/{k}", float(v), done)
          for name, lr in _group_lrs(setup.schedules, done - 1).items():
            writer.add_scalar(f"train/lr_{name}", lr, done)
          writer.add_scalar("train/steps_per_sec", sps, done)
          logging.info("step %d/%d: %s, %.3f steps/s", done, total_steps,
                       ", ".join(f"{k} {float(v):.4g}" for k, v in sorted(m.items())), sps)
          t_log, steps_since_log = time.perf_counter(), 0
        if done % config.checkpoint_every_steps == 0 or done == total_steps:
          saved_state = runner.get(dstate)
          if not _all_finite(saved_state.params):
            nonfinite_saves.add(done)
          checkpoints.save_checkpoint(mngr, saved_state, train_rng)
        record = evaluate_now(done, final=done == total_steps) or record
    except KeyboardInterrupt:
      _checkpoint_on_interrupt(mngr, runner.get(dstate), train_rng, start)
      raise
    finally:
      bar.close()
      writer.flush()
  if record is None:
    record = evaluate_now(int(runner.get(dstate).step), final=True)
  state = runner.get(dstate)
  report.run_benchmark_entries(predict_fn, state.params, config, workdir, int(state.step), writer, benchmarks)
  writer.close()
  mngr.close()
  return record


def _all_finite(tree) -> bool:
  return all(np.all(np.isfinite(x)) for x in jax.tree.leaves(jax.device_get(tree))
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


def _non_finite_message(loss: float, done: int, mngr, workdir: str, nonfinite_saves: set[int]) -> str:
  """The NaN guard's one line. A checkpoint of step k holds the parameters after update k; the loss of step k + 1 is
  computed from them. So the last good checkpoint is the newest step k <= done - 2 (every loss from k + 1 on was
  finite) whose parameters are finite; newer steps are suspect."""
  saved = sorted(mngr.all_steps())
  good = [k for k in saved if k <= done - 2 and k not in nonfinite_saves]
  suspect = [k for k in saved if k not in good]
  if not good:
    where = "no good checkpoint exists" + (f" (steps {suspect} hold the parameters that led here)" if suspect else "")
  elif suspect:
    where = (f"the last good checkpoint is step {good[-1]} in {mngr.directory}; steps {suspect} hold the parameters "
             f"that led here: resume with --restore_step={good[-1]} (they are then moved to "
             f"{os.path.join(workdir, 'discarded_checkpoints')}) and a smaller learning rate or gradient clipping")
  else:
    where = f"the last good checkpoint is step {good[-1]} in {mngr.directory}"
  return f"non-finite loss ({loss}) at step {done}: training stopped; nothing was saved for step {done}; {where}"


def _checkpoint_on_interrupt(mngr, state, rng: jax.Array, start: int) -> None:
  """Ctrl-C, SIGTERM or SIGHUP (`utils.termination_as_interrupt`) during training: saves the state of the last
  finished step, so that the same command resumes exactly there (the input position is the step). The state is the
  one the loop holds, which only ever moves from one finished step to the next. A multi-process run keeps its last
  scheduled checkpoint: saving is collective, and a signal may reach one process only."""
  step = int(jax.device_get(state.step))
  if jax.process_count() > 1:
    logging.warning("interrupted at step %d: a multi-process run resumes from its last scheduled checkpoint (step "
                    "%s)", step, mngr.latest_step())
  elif step == mngr.latest_step():
    logging.warning("interrupted at step %d, which is already saved", step)
  elif step == start:
    logging.warning("interrupted before the first step finished: nothing to save")
  else:
    checkpoints.save_checkpoint(mngr, state, rng)
    logging.warning("interrupted at step %d: checkpoint saved in %s; the same command resumes from it", step,
                    mngr.directory)


def eval_tag(data_config, split: str | None = None, test_time_augmentation: bool = False) -> str:
  """`<data.name>_<split>[_<basename of data.dir>][_tta]`, file-name safe: names what `--mode=eval` scored."""
  parts = [data_config.name, split or data_config.eval_split]
  if data_config.get("dir"):
    parts.append(os.path.basename(os.path.normpath(data_config.dir)))
  if test_time_augmentation:
    parts.append("tta")
  return re.sub(r"[^A-Za-z0-9._+-]+", "-", "_".join(str(p) for p in parts))


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None,
             weights: str | None = None) -> dict:
  """Evaluates the latest checkpoint in `workdir`, or the parameters of `weights` (a released model's name, fetched
  on first use, or a weights file: `weights_model`) at step 0: validation entries on `split` (default their own)
  and the benchmarks whose folders are given.

  The record goes to `eval_<step>_<data>_<split>[_<folder>][_tta].json` (`eval_tag`), never over the training run's own
  `eval_<step>.json`: evaluating on other data or another split keeps what training measured.
  """
  if weights is not None:
    utils.prepare_workdir(workdir)
    config, model, params = weights_model(config, weights_lib.resolve(weights))
    step = 0
    family = families.of(config)
  else:
    ckpt_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
    if checkpoints.latest_step(ckpt_dir) is None:
      raise TrainingError(f"no checkpoint to evaluate in {ckpt_dir}")
    family = families.of(config)
    model = family.build(config.model)
    try:
      params, step = checkpoints.restore_params(workdir, checkpoints.params_template(model, config))
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(utils.error_reason(e) + _model_config_differences(config, workdir)) from e
  _, notes = family.make_loss_fn(config)
  tta = family.check_test_time_augmentation(config)
  predict_fn = families.make_predict_fn(model, tta)
  periodic, benchmarks = report.split_entries(config)
  writer = report.summary_writer(workdir)
  record = report.run_evals(predict_fn, params, config, workdir, step, notes + report.tta_notes(tta), periodic,
                            writer, split=split, tag=eval_tag(config.data, split, tta))
  report.run_benchmark_entries(predict_fn, params, config, workdir, step, writer, benchmarks)
  writer.close()
  return record


def weights_model(config: ml_collections.ConfigDict, path: str):
  """(config, model, params) for evaluating a weights file with `config` (the paper's config: data, evals, metrics).

  A model file (`jaxvfi.model_file`) must hold `config`'s family; its model config (with the released conventions,
  or an exported run's model section) replaces `config.model`. A bare converted file (.npz, .pth) of a family with
  released weights gets the family's `RELEASED_MODEL_CONFIG` on `config.model`.

  Raises:
    ValueError: another family's file, a file of a family without released weights, or parameters that do not fit.
  """
  family = families.of(config)
  config = config.copy_and_resolve_references()
  if model_file.is_model_file(path):
    file_config = model_file.read_config(path)
    if file_config.model.get("name") != family.name:
      raise ValueError(f"{path} holds a {file_config.model.get('name')!r} model, but --config is {family.name!r}")
    with config.unlocked():
      config.model = file_config.model
    model, params, config, _ = weights_lib.load_model_file(path, config)
    return config, model, params
  if family.released_model_config is None or family.torch_layout is None:
    raise ValueError(f"{path} is not a model file (.safetensors with jaxvfi's metadata) and {family.name} has no "
                     "released-weights layout to read it with")
  with config.unlocked():
    config.model.update(family.released_model_config)
  model = family.build(config.model)
  params = torch_weights.load_params(family.torch_layout, path)
  diffs = checkpoints.structure_differences(params, checkpoints.params_template(model, config))
  if diffs:
    raise ValueError(f"{path}: the parameters do not fit the {family.name} model ({'; '.join(diffs[:3])})")
  return config, model, params


def _changed_fields(config, workdir: str, sections: tuple[str, ...]) -> list[str]:
  """["model.x: a there, b here", ...] for the fields of `sections` where `config` differs from the workdir's
  config.json; [] when it has none or cannot be read."""
  try:
    saved_config = checkpoints.read_config(workdir)
  except (FileNotFoundError, ValueError):
    return []
  out = []
  for section in sections:
    # JSON both, so that a tuple equals its saved list.
    saved = utils.flatten_keys(json.loads(saved_config[section].to_json_best_effort())) if section in saved_config else {}
    given = utils.flatten_keys(json.loads(config[section].to_json_best_effort())) if section in config else {}
    out += [f"{section}.{k}: {saved.get(k)!r} there, {given.get(k)!r} here"
            for k in sorted(set(saved) | set(given)) if saved.get(k) != given.get(k)]
  return out


def _config_differences(config, workdir: str, sections: tuple[str, ...]) -> str:
  """'; the run's config.json differs in <fields>' (`_changed_fields`), or ''."""
  changed = _changed_fields(config, workdir, sections)
  if not changed:
    return ""
  return (f"; --config differs from the run's {os.path.join(workdir, 'config.json')} in {', '.join(changed[:4])}"
          f"{', ...' if len(changed) > 4 else ''}")


def _model_config_differences(config, workdir: str) -> str:
  """'; --config builds another model than the run's config.json (model.x: a there, b here)', or '' when the
  workdir has no readable config.json or its model fields equal `config.model`'s."""
  changed = _changed_fields(config, workdir, ("model",))
  if not changed:
    return ""
  return (f"; --config builds another model than the run's {os.path.join(workdir, 'config.json')} "
          f"({', '.join(changed[:4])}{', ...' if len(changed) > 4 else ''}): evaluate with the config the run was "
          "trained with")


def summarize(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Builds the model abstractly (`jax.eval_shape`), prints a per-module table, writes `workdir/summary.json`."""
  utils.prepare_workdir(workdir)
  family = families.of(config)
  counts = steps.param_counts(family.build(config.model), family.example_batch(config))
  width = max(len(k) for k in counts)
  lines = [f"{'module':<{width}}  {'parameters':>14}"] + [f"{k:<{width}}  {v:>14,}" for k, v in counts.items()]
  print("\n".join(lines))
  record = {"params": counts}
  utils.atomic_write_json(os.path.join(workdir, "summary.json"), record)
  return record
