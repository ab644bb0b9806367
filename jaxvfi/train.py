"""The one trainer every jaxvfi model family uses: `train_and_evaluate`, `evaluate` and `summarize`.

Nothing here knows a paper. A family (`jaxvfi.models`, looked up from `config.model.name`) brings its module, its
example batch, its loss terms and, if it needs one, its own train setup (`make_train_setup`: a GAN's two networks
and two optimizers); the default is `supervised_setup`, one parameter tree and one optax transformation. A
`TrainSetup` is a pure step `(state, batch, rng, axis_name) -> (state, metrics)` and its state's `init`: the step
runs under `jax.jit` on one device and under `jax.pmap` with `lax.pmean` over all devices (all processes' devices in
a multi-process run, `initialize_distributed`) when there are several. Evaluation is by type (`jaxvfi.evaluators`).

Resuming is exact for every family: the checkpoint holds every field of the state and the rng
(`jaxvfi.checkpoints`); the data of step s is a pure function of (seed, s)
(`input_pipeline.create_train_iterator(start_step=s)`), and the step rng is `fold_in(rng, s)`. So k steps, a new
process, and k more give the state of 2k steps straight.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging as py_logging
import os
import re
import time
from typing import Any, Callable

from absl import logging
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from jaxvfi import checkpoints
from jaxvfi import evaluators
from jaxvfi import input_pipeline
from jaxvfi import models
from jaxvfi import optim
from jaxvfi import utils
# Re-exported: checkpointing lives in jaxvfi.checkpoints (no grain / TFDS there, for the inference tools).
from jaxvfi.checkpoints import checkpoint_manager, restore_checkpoint, restore_params, save_checkpoint  # noqa: F401

build_model = models.build_model


class TrainingError(RuntimeError):
  """A run cannot go on (non-finite loss, missing checkpoint, ...): one clear message, nothing half-written."""


@flax.struct.dataclass
class TrainState:
  """The supervised state. Any family's state is a `flax.struct.dataclass` with `step` and `params` (the parameters
  that make predictions) and whatever else it needs; the trainer checkpoints every field."""
  step: jax.Array
  params: Any
  opt_state: Any


@dataclasses.dataclass(frozen=True)
class TrainSetup:
  """How a family trains (`jaxvfi.models` docstring, `make_train_setup`).

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


# ----------------------------------------------------------------------------------------------------------------
# Model, state, step.


def example_batch(config, batch_size: int = 1) -> dict:
  """The family's zero batch (`jaxvfi.models.example_batch`)."""
  return models.example_batch(config, batch_size)


# XLA:CPU spends most of the compilation of a model's init program on the threefry random bits of its initialisers,
# and the optimisation level decides that time: for ReFIn with PWC-Net and UNets (218 parameter arrays) 75 s at the
# default level, 29 s at level 1 and 15 s at level 0, against 11 s for its forward pass (BENCHMARKS.md). Level 1
# gives the default level's bits (tests/test_train.py); level 0 changes kernels in their last bit. The program runs
# once, so its own speed does not matter.
_CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def init_params(model: nn.Module, config, rng) -> Any:
  """`model.init(rng, example_batch(config), train=False)["params"]`, jitted (on CPU, compiled at XLA's backend
  optimisation level 1, which gives the same bits 2.5x sooner)."""
  init = jax.jit(lambda r: model.init(r, example_batch(config), train=False)["params"])
  if jax.default_backend() != "cpu" or isinstance(rng, jax.core.Tracer):  # traced (e.g. jax.eval_shape): staged
    return init(rng)
  return init.lower(rng).compile(compiler_options=_CPU_INIT_COMPILER_OPTIONS)(rng)


def param_counts(model: nn.Module, config) -> dict[str, int]:
  """Per top-level module parameter counts via `jax.eval_shape` (no FLOPs, no memory)."""
  shapes = jax.eval_shape(lambda r: model.init(r, example_batch(config), train=False)["params"],
                          jax.random.PRNGKey(0))
  counts = {k: int(sum(np.prod(x.shape) for x in jax.tree.leaves(v))) for k, v in shapes.items()}
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


def supervised_setup(config, model: nn.Module, loss_fn: Callable, total_steps: int, steps_per_epoch: float,
                     opt_config=None) -> TrainSetup:
  """The default setup: params from the family's example batch, one optax transformation from `config.optimizer`
  (or `opt_config`; per-module rates by `optimizer.groups`), `supervised_step`."""
  shapes = jax.eval_shape(lambda r: model.init(r, example_batch(config), train=False)["params"],
                          jax.random.PRNGKey(0))
  tx, schedules = optim.make_optimizer(opt_config or config.optimizer, shapes, total_steps, steps_per_epoch)

  def init(rng):
    params = init_params(model, config, rng)
    return TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params))

  step = functools.partial(supervised_step, apply_fn=model.apply, loss_fn=loss_fn, tx=tx)
  return TrainSetup(init=init, step=step, schedules=schedules)


def make_train_setup(config, model, loss_fn, total_steps: int, steps_per_epoch: float) -> TrainSetup:
  """The family's `make_train_setup`, or `supervised_setup`."""
  family = models.get_family(config.model.get("name"))
  make = getattr(family, "make_train_setup", supervised_setup)
  return make(config, model, loss_fn, total_steps, steps_per_epoch)


def replicate(tree, n: int):
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree)


def unreplicate(tree):
  """The first replica of a pmapped tree, read from this process's first device.

  Indexing the sharded array instead (`x[0]`) would compile and run a cross-device gather per leaf, with CPU
  collective rendezvous that abort when a 2-core machine is busy.
  """
  return jax.tree.map(lambda x: x.addressable_shards[0].data[0], tree)


def shard(batch: dict, n: int) -> dict:
  def split(x):
    if x.shape[0] % n:
      raise ValueError(f"batch {x.shape[0]} is not divisible by {n} devices")
    return x.reshape((n, x.shape[0] // n) + x.shape[1:])
  return jax.tree.map(split, batch)


class StepRunner:
  """Runs a setup's step on one device (jit) or data-parallel (pmap) over the local devices of every process.

  `traces` counts how often the step was traced (compiled): once per batch shape.
  """

  def __init__(self, step_fn: Callable, num_devices: int):
    self.n = num_devices  # this process's devices
    self.traces = 0

    def counted(state, batch, rng, axis_name=None):
      self.traces += 1  # runs at trace time only
      return step_fn(state, batch, rng, axis_name)

    if self.n > 1 or jax.process_count() > 1:
      # All processes' devices: pmean then averages over the global batch.
      devices = jax.devices() if jax.process_count() > 1 else jax.local_devices()[:self.n]
      self._step = jax.pmap(functools.partial(counted, axis_name="batch"), axis_name="batch", devices=devices)
      self.parallel = True
    else:
      self._step = jax.jit(counted)
      self.parallel = False

  def put(self, state):
    return replicate(state, self.n) if self.parallel else state

  def get(self, state):
    return unreplicate(state) if self.parallel else state

  def __call__(self, state, batch, rng):
    if self.parallel:
      rngs = jax.random.split(jax.random.fold_in(rng, jax.process_index()), self.n)
      return self._step(state, shard(batch, self.n), rngs)
    return self._step(state, batch, rng)

  def unreplicated_metrics(self, metrics):
    return unreplicate(metrics) if self.parallel else metrics


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """JAX's multi-process runtime (`jax.distributed.initialize`), from the arguments or the environment.

  With no argument JAX reads the cluster from the environment (SLURM's variables, among others). On CPU the
  cross-process collectives use gloo. Call once, before anything touches a device.
  """
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # only the CPU backend reads it
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)
  logging.info("process %d of %d (%d local devices, %d in all)", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


# ----------------------------------------------------------------------------------------------------------------
# Evaluation.


def make_predict_fn(model: nn.Module, test_time_augmentation: bool = False) -> Callable:
  """(params, batch) -> the family's whole prediction dict, jitted (one compilation per batch shape); with
  `test_time_augmentation`, "image" averaged over the 180-degree rotation (`jaxvfi.models.predict`)."""
  return jax.jit(functools.partial(models.predict, model, test_time_augmentation=test_time_augmentation))


class _NullWriter:
  """The summary writer of a process other than the first (only process 0 writes files)."""

  def __getattr__(self, name):
    return lambda *args, **kwargs: None


def _primary() -> bool:
  return jax.process_index() == 0


def _describe(result: dict[str, Any]) -> str:
  fmt = lambda name, v: f"PSNR {v:.3f} dB" if name.endswith("psnr") else f"{name.upper()} {v:.4f}"
  scores = result["scores"]
  text = ", ".join(fmt(k, v) for k, v in scores["model"].items() if "/" not in k)
  others = [f"{m.replace('_', ' ')}: " + ", ".join(fmt(k, v) for k, v in s.items() if "/" not in k)
            for m, s in scores.items() if m != "model"]
  return text + (f" ({'; '.join(others)})" if others else "")


def run_evals(predict_fn: Callable, params, config, workdir: str, step: int, notes: list[str], eval_entries,
              writer=None, split: str | None = None, tag: str = "") -> dict[str, Any]:
  """Runs validation-type entries and writes eval_<step>[_<tag>].json, samples/eval_<step>[_<tag>][_<name>].png and
  scalars (under eval[_<tag>]/).

  Returns the record written: {step, split, num_examples, metrics (of the entry named "validation", else the
  first), notes, evals: {name: {split, num_examples, metrics}}}.
  """
  stem = f"eval_{int(step)}" + (f"_{tag}" if tag else "")
  results = {}
  for entry in eval_entries:
    entry = dict(entry, split=split) if split else entry
    result = evaluators.make(predict_fn, config, entry).run(params)
    results[result["name"]] = result
    logging.info("%s @ step %d on %d examples: %s", "eval" if result["name"] == "validation" else result["name"],
                 step, result["num_examples"], _describe(result))
  main = results.get("validation") or next(iter(results.values()))
  notes = list(notes) + [n for r in results.values() for n in r.get("notes", []) if n not in notes]
  record = {"step": int(step), "split": main["split"], "num_examples": int(main["num_examples"]),
            "metrics": {k: float(v) for k, v in sorted(main["metrics"].items())}, "notes": notes,
            "evals": {name: {"split": r["split"], "num_examples": int(r["num_examples"]),
                             "metrics": {k: float(v) for k, v in sorted(r["metrics"].items())}}
                      for name, r in results.items()}}
  if not _primary():
    return record
  utils.atomic_write_json(os.path.join(workdir, f"{stem}.json"), record)
  top = "eval" + (f"_{tag}" if tag else "")
  for name, result in results.items():
    prefix = top if name == "validation" else f"{top}/{name}"
    for image_name, image in result["images"].items():
      suffix = "" if name == "validation" else f"_{name}"
      utils.atomic_write_png(os.path.join(workdir, "samples", f"{stem}{suffix}.png"), image)
      if writer is not None:
        writer.add_image(f"{prefix}/{image_name}", image, int(step), dataformats="HWC")
    if writer is not None:
      for k, v in result["metrics"].items():
        writer.add_scalar(f"{prefix}/{k}", float(v), int(step))
  if writer is not None:
    writer.flush()
  return record


def _tta_notes(test_time_augmentation: bool) -> list[str]:
  """The eval record's note on test-time augmentation, also logged once."""
  notes = (["test-time augmentation: every prediction is the mean of the model's on the inputs and, rotated back, on "
            "the inputs rotated by 180 degrees"] if test_time_augmentation else [])
  for note in notes:
    logging.info("%s", note)
  return notes


def _run_benchmarks(predict_fn, params, config, workdir, step, writer, benchmark_entries):
  """The benchmark entries (`config.evals` with a dataset and its folder): results_<step>.json and .md."""
  if not benchmark_entries:
    return
  results = evaluators.run_benchmarks(predict_fn, params, config, workdir, step, benchmark_entries)
  for bench in results["benchmarks"]:
    for metric, value in bench["scores"]["model"].items():
      writer.add_scalar(f"benchmarks/{bench['name']}/{metric}", value, step)
  with open(os.path.join(workdir, evaluators.results_stem(config, step) + ".md")) as f:
    logging.info("benchmarks at step %d:\n%s", step, f.read())


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


def _split_entries(config):
  all_entries = evaluators.entries(config)
  return ([e for e in all_entries if not evaluators.is_benchmark(e)],
          [e for e in all_entries if evaluators.is_benchmark(e)])


def _check_batch_size(config, num_devices: int) -> None:
  total = num_devices * jax.process_count()
  if config.batch_size % total:
    raise ValueError(f"batch_size {config.batch_size} is not divisible by the {total} devices "
                     f"({jax.process_count()} processes x {num_devices})")


# ----------------------------------------------------------------------------------------------------------------
# Modes.


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains with periodic evaluation and checkpoints; resumes from `workdir` if it holds checkpoints.

  Returns the last eval record (the content of `workdir/eval_<step>.json`).
  """
  utils.prepare_workdir(workdir)
  log_handler = utils.add_file_logging(workdir) if _primary() else None
  try:
    return _train_and_evaluate(config, workdir)
  finally:
    if log_handler is not None:
      py_logging.getLogger("absl").removeHandler(log_handler)
      log_handler.close()


def _train_and_evaluate(config, workdir):
  ckpt_dir = os.path.join(workdir, "checkpoints")
  resuming = checkpoints.latest_step(ckpt_dir) is not None
  if not resuming and config.get("require_init_from") and not config.get("init_from"):
    raise ValueError("this config fine-tunes a trained model: set --config.init_from=<workdir of the first stage>")
  models.check_config(config)  # before the data is prepared: a config that cannot train fails at once
  if _primary():
    utils.atomic_write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
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
  model = build_model(config.model)
  loss_fn, notes = models.make_loss_fn(config)
  setup = make_train_setup(config, model, loss_fn, total_steps, steps_per_epoch)

  rng = jax.random.PRNGKey(config.seed)
  init_rng, train_rng = jax.random.split(rng)
  state = setup.init(init_rng)
  params, pretrained_notes = models.load_pretrained(state.params, config)
  state = state.replace(params=params)
  for line in pretrained_notes:
    logging.info("%s", line)
  for note in notes:
    logging.warning("%s", note)

  mngr = checkpoint_manager(workdir, config.keep_checkpoints)
  last_saved = mngr.latest_step()
  if last_saved is not None:
    state, train_rng = restore_checkpoint(mngr, state)
    logging.info("resuming from the checkpoint of step %d in %s", last_saved, mngr.directory)
  elif config.get("init_from"):
    init, from_step = restore_params(config.init_from, state.params)
    state = state.replace(params=init)
    logging.info("initialised the parameters from step %d of %s", from_step, config.init_from)
  start = int(state.step)
  counts = param_counts(model, config)
  logging.info("parameters: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))

  writer = utils.summary_writer(workdir) if _primary() else _NullWriter()
  runner = StepRunner(setup.step, num_devices)
  tta = models.check_test_time_augmentation(config)
  predict_fn = make_predict_fn(model, tta)
  notes = notes + _tta_notes(tta)
  periodic, benchmarks = _split_entries(config)
  record = None

  def evaluate_now(done, final):
    todo = [e for e in periodic if final or (evaluators.every_steps(e, config) > 0
                                             and done % evaluators.every_steps(e, config) == 0)]
    return run_evals(predict_fn, runner.get(dstate).params, config, workdir, done, notes, todo, writer) \
        if todo else None

  if start >= total_steps:
    logging.info("nothing to train: the checkpoint is at step %d and num_train_steps is %d", start, total_steps)
    dstate = runner.put(state)
  else:
    logging.info("training steps %d -> %d (%.1f steps per epoch)", start, total_steps, steps_per_epoch)
    train_iter = input_pipeline.create_train_iterator(config.data, config.batch_size, config.seed, start_step=start)
    dstate = runner.put(state)
    bar = utils.progress_bar(total=total_steps, initial=start,
                             enabled=config.get("progress_bar", True) and _primary())
    t_log, steps_since_log = time.perf_counter(), 0
    try:
      for step in range(start, total_steps):
        batch = next(train_iter)
        dstate, m = runner(dstate, batch, jax.random.fold_in(train_rng, step))
        m = jax.device_get(runner.unreplicated_metrics(m))
        done = step + 1
        loss = float(m["loss"])
        if not np.isfinite(loss):
          where = (f"the last good checkpoint is step {mngr.latest_step()} in {mngr.directory}"
                   if mngr.latest_step() is not None else "no checkpoint had been written yet")
          raise TrainingError(f"non-finite loss ({loss}) at step {done}: training stopped; {where}; nothing was "
                              f"saved for step {done}")
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
          save_checkpoint(mngr, runner.get(dstate), train_rng)
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
  _run_benchmarks(predict_fn, state.params, config, workdir, int(state.step), writer, benchmarks)
  writer.close()
  mngr.close()
  return record


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
    save_checkpoint(mngr, state, rng)
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


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None) -> dict:
  """Evaluates the latest checkpoint in `workdir`: validation entries on `split` (default their own) and the
  benchmarks whose folders are given.

  The record goes to `eval_<step>_<data>_<split>[_<folder>][_tta].json` (`eval_tag`), never over the training run's own
  `eval_<step>.json`: evaluating on other data or another split keeps what training measured.
  """
  ckpt_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
  if checkpoints.latest_step(ckpt_dir) is None:
    raise TrainingError(f"no checkpoint to evaluate in {ckpt_dir}")
  model = build_model(config.model)
  _, notes = models.make_loss_fn(config)
  try:
    params, step = restore_params(workdir, checkpoints.params_template(model, config))
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(utils.error_reason(e) + _model_config_differences(config, workdir)) from e
  tta = models.check_test_time_augmentation(config)
  predict_fn = make_predict_fn(model, tta)
  periodic, benchmarks = _split_entries(config)
  writer = utils.summary_writer(workdir) if _primary() else _NullWriter()
  record = run_evals(predict_fn, params, config, workdir, step, notes + _tta_notes(tta), periodic, writer,
                     split=split, tag=eval_tag(config.data, split, tta))
  _run_benchmarks(predict_fn, params, config, workdir, step, writer, benchmarks)
  writer.close()
  return record


def _model_config_differences(config, workdir: str) -> str:
  """'; --config builds another model than the run's config.json (model.x: a there, b here)', or '' when the
  workdir has no readable config.json or its model fields equal `config.model`'s."""
  try:
    saved = json.loads(checkpoints.read_config(workdir).model.to_json_best_effort())
  except (FileNotFoundError, ValueError):
    return ""
  given = json.loads(config.model.to_json_best_effort())  # JSON both, so that a tuple equals its saved list
  keys = sorted(k for k in set(saved) | set(given) if saved.get(k) != given.get(k))
  if not keys:
    return ""
  shown = ", ".join(f"model.{k}: {saved.get(k)!r} there, {given.get(k)!r} here" for k in keys[:4])
  return (f"; --config builds another model than the run's {os.path.join(workdir, 'config.json')} ({shown}"
          f"{', ...' if len(keys) > 4 else ''}): evaluate with the config the run was trained with")


def summarize(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Builds the model abstractly (`jax.eval_shape`), prints a per-module table, writes `workdir/summary.json`."""
  utils.prepare_workdir(workdir)
  model = build_model(config.model)
  counts = param_counts(model, config)
  width = max(len(k) for k in counts)
  lines = [f"{'module':<{width}}  {'parameters':>14}"] + [f"{k:<{width}}  {v:>14,}" for k, v in counts.items()]
  print("\n".join(lines))
  record = {"params": counts}
  utils.atomic_write_json(os.path.join(workdir, "summary.json"), record)
  return record
