"""The one trainer every jaxvfi model uses: `train_and_evaluate`, `evaluate` and `summarize`.

A model family brings its Flax module (`build(config.model)`, called as `module.apply(vars, batch, train)` and
returning a dict of predictions with at least "image"), its loss terms (`jaxvfi.losses`) and its recipe (the
config). The train step is generic and pure: `(state, batch, rng) -> (state, metrics)`; it runs under `jax.jit` on
one device and under `jax.pmap` with `lax.pmean` over all local devices when there are several.

Resuming is exact: the checkpoint holds the step, params, optimizer state and rng; the data of step s is a pure
function of (seed, s) (`input_pipeline.create_train_iterator(start_step=s)`), and the step rng is
`fold_in(rng, s)`. So k steps, a new process, and k more give the parameters of 2k steps straight.
"""
from __future__ import annotations

import functools
import importlib
import json
import logging as py_logging
import os
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

from jaxvfi import evaluators
from jaxvfi import input_pipeline
from jaxvfi import losses
from jaxvfi import optim
from jaxvfi import utils

# Model families: config.model.name -> module with `build(model_config) -> nn.Module`.
MODEL_FAMILIES = {
    "superslomo": "jaxvfi.models.superslomo",
    "refin": "jaxvfi.models.superslomo",
    "sepconv": "jaxvfi.models.sepconv",
}


class TrainingError(RuntimeError):
  """A run cannot go on (non-finite loss, missing checkpoint, ...): one clear message, nothing half-written."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


# ----------------------------------------------------------------------------------------------------------------
# Model, state, step.


def build_model(model_config) -> nn.Module:
  name = model_config.get("name")
  if name not in MODEL_FAMILIES:
    raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_FAMILIES))}")
  return importlib.import_module(MODEL_FAMILIES[name]).build(model_config)


def example_batch(config, batch_size: int = 1) -> dict:
  """A zero batch to initialise parameters (their shapes do not depend on the frame size; 64 when no crop)."""
  s = int(config.data.crop_size or 0) or 64
  img = jnp.zeros((batch_size, s, s, 3), jnp.float32)
  return {"frame0": img, "frame1": img, "target": img, "t": jnp.full((batch_size,), 0.5, jnp.float32)}


def init_params(model: nn.Module, config, rng) -> Any:
  return jax.jit(lambda r: model.init(r, example_batch(config), train=False)["params"])(rng)


def param_counts(model: nn.Module, config) -> dict[str, int]:
  """Per top-level module parameter counts via `jax.eval_shape` (no FLOPs, no memory)."""
  shapes = jax.eval_shape(lambda r: model.init(r, example_batch(config), train=False)["params"],
                          jax.random.PRNGKey(0))
  counts = {k: int(sum(np.prod(x.shape) for x in jax.tree.leaves(v))) for k, v in shapes.items()}
  counts["total"] = int(sum(counts.values()))
  return counts


def train_step(state: TrainState, batch: dict, rng: jax.Array, *, apply_fn: Callable, loss_fn: Callable,
               tx: optax.GradientTransformation, axis_name: str | None = None):
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


def replicate(tree, n: int):
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree)


def unreplicate(tree):
  """The first replica of a pmapped tree, read from device 0's shard.

  Indexing the sharded array instead (`x[0]`) would compile and run a cross-device gather per leaf, with CPU
  collective rendezvous that abort when a 2-core machine is busy.
  """
  return jax.tree.map(lambda x: x.addressable_shards[0].data[0], tree)


def shard(batch: dict, n: int) -> dict:
  def split(x):
    if x.shape[0] % n:
      raise ValueError(f"global batch {x.shape[0]} is not divisible by {n} devices")
    return x.reshape((n, x.shape[0] // n) + x.shape[1:])
  return jax.tree.map(split, batch)


class StepRunner:
  """Runs the generic train step on one device (jit) or data-parallel on all local devices (pmap)."""

  def __init__(self, apply_fn, loss_fn, tx, num_devices: int):
    self.n = num_devices
    step = functools.partial(train_step, apply_fn=apply_fn, loss_fn=loss_fn, tx=tx)
    if self.n > 1:
      self._step = jax.pmap(functools.partial(step, axis_name="batch"), axis_name="batch",
                            devices=jax.local_devices()[:self.n])
    else:
      self._step = jax.jit(step)

  def put(self, state: TrainState) -> TrainState:
    return replicate(state, self.n) if self.n > 1 else state

  def get(self, state: TrainState) -> TrainState:
    return unreplicate(state) if self.n > 1 else state

  def __call__(self, state, batch, rng):
    if self.n > 1:
      return self._step(state, shard(batch, self.n), jax.random.split(rng, self.n))
    return self._step(state, batch, rng)

  def unreplicated_metrics(self, metrics):
    return unreplicate(metrics) if self.n > 1 else metrics


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints.


def checkpoint_manager(workdir: str, keep: int = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"), options=options)


def save_checkpoint(mngr: ocp.CheckpointManager, state: TrainState, rng: jax.Array) -> None:
  state = jax.device_get(state)
  step = int(state.step)
  extra = {"step": step, "rng": [int(v) for v in np.asarray(jax.random.key_data(rng)).ravel()],
           "data_position": step}
  mngr.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(state.params),
                                          opt_state=ocp.args.StandardSave(state.opt_state),
                                          extra=ocp.args.JsonSave(extra)), force=True)
  mngr.wait_until_finished()


def restore_checkpoint(mngr: ocp.CheckpointManager, template: TrainState, step: int | None = None):
  step = mngr.latest_step() if step is None else step
  abstract = lambda tree: jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
  restored = mngr.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract(template.params)),
                                                        opt_state=ocp.args.StandardRestore(
                                                            abstract(template.opt_state)),
                                                        extra=ocp.args.JsonRestore()))
  extra = restored["extra"]
  state = TrainState(step=jnp.asarray(extra["step"], jnp.int32), params=restored["params"],
                     opt_state=restored["opt_state"])
  rng = jnp.asarray(np.asarray(extra["rng"], np.uint32))
  return state, rng


def restore_params(path: str, template_params) -> tuple[Any, int]:
  """Params of the latest checkpoint under `path` (a workdir or its checkpoints/ folder), for eval and init_from."""
  path = os.path.abspath(path)
  ckpt_dir = path if os.path.basename(path.rstrip("/")) == "checkpoints" else os.path.join(path, "checkpoints")
  if not os.path.isdir(ckpt_dir):
    raise FileNotFoundError(f"no checkpoints folder at {ckpt_dir}")
  mngr = ocp.CheckpointManager(ckpt_dir)
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {ckpt_dir}")
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template_params)
  restored = mngr.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract)))
  return restored["params"], step


# ----------------------------------------------------------------------------------------------------------------
# Evaluation.


def make_predict_fn(model: nn.Module) -> Callable:
  return jax.jit(lambda params, batch: model.apply({"params": params}, batch, train=False)["image"])


def run_eval(predict_fn: Callable, params, config, split: str | None = None, desc: str = "eval"):
  """Model PSNR/SSIM on the eval split beside the frame-average and repeat-frame baselines.

  Returns (metrics dict of means, number of examples, image grid of the first examples as uint8 HWC).
  """
  bs = int(config.eval_batch_size)
  batches = input_pipeline.create_eval_batches(config.data, bs, split=split)
  names = tuple(config.get("eval_metrics", ("psnr", "ssim")))
  result = evaluators.score(predict_fn, params, batches, bs, names=names,
                            limit=int(config.get("num_eval_examples", -1)), keep=int(config.num_image_summaries),
                            desc=desc, progress=config.get("progress_bar", True))
  if result.count == 0:
    raise ValueError("the eval split has no examples")
  rows = [utils.grid_row(*example) for example in result.examples]
  grid = np.concatenate(rows, axis=0) if rows else None
  means, count = result.means, result.count
  return means, count, grid


def write_eval(workdir: str, step: int, means: dict, count: int, split: str, notes: list[str], grid, writer=None):
  split_name = split or "validation"
  record = {"step": int(step), "split": split_name, "num_examples": int(count),
            "metrics": {k: float(v) for k, v in sorted(means.items())}, "notes": list(notes)}
  utils.atomic_write_json(os.path.join(workdir, f"eval_{int(step)}.json"), record)
  if grid is not None:
    utils.atomic_write_png(os.path.join(workdir, "samples", f"eval_{int(step)}.png"), grid)
  if writer is not None:
    for k, v in means.items():
      writer.add_scalar(f"eval/{k}", float(v), int(step))
    if grid is not None:
      writer.add_image("eval/frame0_prediction_target_error", grid, int(step), dataformats="HWC")
    writer.flush()
  model = ", ".join(f"{k} {v:.4f}" for k, v in sorted(means.items()) if not k.startswith(("frame_", "repeat_")))
  logging.info("eval @ step %d on %d examples: PSNR %.3f dB (frame average %.3f, repeat frame %.3f); %s",
               step, count, means["psnr"], means["frame_average_psnr"], means["repeat_frame_psnr"], model)
  return record


# ----------------------------------------------------------------------------------------------------------------
# Setup shared by the modes.


def _untrained_pwcnet(config) -> bool:
  return config.model.get("flow") == "pwcnet" and not config.model.get("flow_weights")


def _notes_for_model(config) -> list[str]:
  notes = []
  if _untrained_pwcnet(config):
    notes.append("flow module PWC-Net has no pretrained weights (model.flow_weights unset): it trains from scratch "
                 "at the interpolation module's learning rate")
  return notes


def _optimizer_config(config):
  """`config.optimizer`, less the fixed small rate of a flow module that has no pretrained weights to keep.

  ReFIn trains pretrained PWC-Net at a fixed 1e-6; from scratch that rate would leave it random, so the flow module
  then follows the default schedule (and `_notes_for_model` says so).
  """
  opt = config.optimizer
  if _untrained_pwcnet(config) and "flow" in (opt.get("groups") or {}):
    opt = ml_collections.ConfigDict(opt.to_dict())
    opt.groups = {k: v for k, v in opt.groups.to_dict().items() if k != "flow"}
  return opt


def _load_flow_weights(config, params):
  path = config.model.get("flow_weights")
  if not path:
    return params
  from jaxvfi import weights  # pylint: disable=g-import-not-at-top
  if config.model.get("flow") != "pwcnet":
    raise ValueError(f"model.flow_weights is set but model.flow is {config.model.get('flow')!r}; pretrained flow "
                     "weights exist for pwcnet only")
  pwc = weights.load_params("pwcnet", path)
  if jax.tree.map(jnp.shape, params["flow"]["pwcnet"]) != jax.tree.map(jnp.shape, pwc):
    raise ValueError(f"model.flow_weights {path}: parameter shapes do not match the PWC-Net module")
  params = {**params, "flow": {"pwcnet": jax.tree.map(jnp.asarray, pwc)}}
  logging.info("loaded pretrained PWC-Net weights from %s", path)
  return params


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


# ----------------------------------------------------------------------------------------------------------------
# Modes.


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains with periodic evaluation and checkpoints; resumes from `workdir` if it holds checkpoints.

  Returns the last eval record (the content of `workdir/eval_<step>.json`).
  """
  utils.prepare_workdir(workdir)
  log_handler = utils.add_file_logging(workdir)
  try:
    return _train_and_evaluate(config, workdir)
  finally:
    py_logging.getLogger("absl").removeHandler(log_handler)
    log_handler.close()


def _train_and_evaluate(config, workdir):
  ckpt_dir = os.path.join(workdir, "checkpoints")
  resuming = os.path.isdir(ckpt_dir) and ocp.CheckpointManager(ckpt_dir).latest_step() is not None
  if not resuming and config.get("require_init_from") and not config.get("init_from"):
    raise ValueError("this config fine-tunes a trained model: set --config.init_from=<workdir of the first stage>")
  utils.atomic_write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  num_devices = jax.local_device_count() if config.get("use_pmap", True) else 1
  if config.batch_size % num_devices:
    raise ValueError(f"batch_size {config.batch_size} is not divisible by the {num_devices} local devices")
  if num_devices > 1:
    logging.info("data-parallel training (pmap) over %d local devices: %d examples per device, global batch %d",
                 num_devices, config.batch_size // num_devices, config.batch_size)
  else:
    logging.info("training on one device (%s), batch %d", jax.devices()[0].device_kind, config.batch_size)

  total_steps = total_train_steps(config)
  steps_per_epoch = _steps_per_epoch(config)
  model = build_model(config.model)
  loss_fn, notes = losses.make_loss_fn(config.loss, config.model)
  notes = _notes_for_model(config) + notes
  for note in notes:
    logging.warning("%s", note)

  rng = jax.random.PRNGKey(config.seed)
  init_rng, train_rng = jax.random.split(rng)
  params = init_params(model, config, init_rng)
  params = _load_flow_weights(config, params)
  tx, schedules = optim.make_optimizer(_optimizer_config(config), params, total_steps, steps_per_epoch)
  state = TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params))

  mngr = checkpoint_manager(workdir, config.keep_checkpoints)
  last_saved = mngr.latest_step()
  if last_saved is not None:
    state, train_rng = restore_checkpoint(mngr, state)
    logging.info("resuming from the checkpoint of step %d in %s", last_saved, mngr.directory)
  elif config.get("init_from"):
    init, from_step = restore_params(config.init_from, state.params)
    state = TrainState(step=state.step, params=init, opt_state=tx.init(init))
    logging.info("initialised the parameters from step %d of %s", from_step, config.init_from)
  start = int(state.step)
  counts = param_counts(model, config)
  logging.info("parameters: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))

  writer = utils.summary_writer(workdir)
  runner = StepRunner(model.apply, loss_fn, tx, num_devices)
  predict_fn = make_predict_fn(model)
  record = None
  if start >= total_steps:
    logging.info("nothing to train: the checkpoint is at step %d and num_train_steps is %d", start, total_steps)
  else:
    logging.info("training steps %d -> %d (%.1f steps per epoch)", start, total_steps, steps_per_epoch)
    train_iter = input_pipeline.create_train_iterator(config.data, config.batch_size, config.seed, start_step=start)
    dstate = runner.put(state)
    bar = utils.progress_bar(total=total_steps, initial=start, enabled=config.get("progress_bar", True))
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
          for name, lr in _group_lrs(schedules, done - 1).items():
            writer.add_scalar(f"train/lr_{name}", lr, done)
          writer.add_scalar("train/steps_per_sec", sps, done)
          logging.info("step %d/%d: %s, %.3f steps/s", done, total_steps,
                       ", ".join(f"{k} {float(v):.4g}" for k, v in sorted(m.items())), sps)
          t_log, steps_since_log = time.perf_counter(), 0
        if done % config.checkpoint_every_steps == 0 or done == total_steps:
          save_checkpoint(mngr, runner.get(dstate), train_rng)
        if done % config.eval_every_steps == 0 or done == total_steps:
          means, count, grid = run_eval(predict_fn, runner.get(dstate).params, config)
          record = write_eval(workdir, done, means, count, config.data.eval_split, notes, grid, writer)
    finally:
      bar.close()
      writer.flush()
    state = runner.get(dstate)
  if record is None:
    means, count, grid = run_eval(predict_fn, state.params, config)
    record = write_eval(workdir, int(state.step), means, count, config.data.eval_split, notes, grid, writer)
  _run_benchmarks(predict_fn, state.params, config, workdir, int(state.step), writer)
  writer.close()
  mngr.close()
  return record


def _run_benchmarks(predict_fn, params, config, workdir, step, writer):
  """The configured benchmarks (`config.evals` with a folder), as a Table-1-style results_<step>.md."""
  if not evaluators.benchmark_entries(config):
    return
  results = evaluators.run_benchmarks(predict_fn, params, config, workdir, step)
  for bench in results["benchmarks"]:
    for metric, value in bench["scores"]["model"].items():
      writer.add_scalar(f"benchmarks/{bench['name']}/{metric}", value, step)
  logging.info("benchmarks at step %d:\n%s", step, evaluators.format_table(results))


def evaluate(config: ml_collections.ConfigDict, workdir: str, split: str | None = None) -> dict:
  """Evaluates the latest checkpoint in `workdir` on `split` (default `config.data.eval_split`)."""
  ckpt_dir = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(ckpt_dir) or ocp.CheckpointManager(ckpt_dir).latest_step() is None:
    raise TrainingError(f"no checkpoint to evaluate in {ckpt_dir}")
  model = build_model(config.model)
  _, notes = losses.make_loss_fn(config.loss, config.model)
  notes = _notes_for_model(config) + notes
  params_template = init_params(model, config, jax.random.PRNGKey(0))
  params, step = restore_params(workdir, params_template)
  split = split or config.data.eval_split
  predict_fn = make_predict_fn(model)
  means, count, grid = run_eval(predict_fn, params, config, split=split)
  writer = utils.summary_writer(workdir)
  record = write_eval(workdir, step, means, count, split, notes, grid, writer)
  _run_benchmarks(predict_fn, params, config, workdir, step, writer)
  writer.close()
  return record


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
