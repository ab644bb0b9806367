"""Evaluators by type (big_vision's pattern): each entry of `config.evals` names the module that scores it.

`config.evals` is a dict {entry name: entry} (or a list of entries). An entry's `type` names an evaluator module: a
bare name ("vfi_triplet", "restoration") is `jaxvfi.evaluators.<type>`, a dotted path a module of your own. Unset,
it is the model family's `EVALUATOR` trait (`jaxvfi.families`). Each module has
  Evaluator(predict_fn, config, **entry) with run(params) -> {name, split, num_examples, scores, metrics, images}
  format_table(results) -> markdown for `results_<step>.md`
where `predict_fn(params, batch)` returns the family's whole prediction dict.

Two kinds of entries:
  * an entry without `dataset` scores the config's own eval split (`config.data.eval_split`, or its `split`): the
    periodic validation, every `every_steps` (default `config.eval_every_steps`) and after training. The trainer
    writes them to `eval_<step>.json` (the entry named "validation" gives its top-level metrics), TensorBoard and
    `samples/`.
  * an entry with a `dataset` is a benchmark: it runs after training and in `--mode=eval` (and every `every_steps`
    if set) once its folder is given (`--config.evals.vimeo90k.dir=/data/vimeo_triplet`; in the list form always),
    and `run_benchmarks` writes `results_<step>.json` and `results_<step>.md`.
"""
from __future__ import annotations

import importlib
import os
import types
from typing import Any, Callable

from jaxvfi import families
from jaxvfi import utils


def get_module(type_name: str) -> types.ModuleType:
  """The evaluator module of an entry's `type`; one ValueError when there is none."""
  path = type_name if "." in type_name else f"jaxvfi.evaluators.{type_name}"
  try:
    module = importlib.import_module(path)
  except ModuleNotFoundError:
    module = None
  if module is None or not hasattr(module, "Evaluator"):
    raise ValueError(f"unknown evaluator type {type_name!r}: no module {path} with an Evaluator (known: vfi_triplet, "
                     "restoration, or a dotted path to your own)")
  return module


def entries(config) -> list[dict[str, Any]]:
  """The entries of `config.evals` that run (module docstring), each with `name` and a resolved `type`."""
  evals = config.get("evals") or []
  if hasattr(evals, "items"):
    named = [(k, dict(v)) for k, v in evals.items() if not dict(v).get("dataset") or dict(v).get("dir")]
  else:
    named = [(None, dict(v)) for v in evals]
  default_type = families.of(config).evaluator if config.get("model") is not None else "vfi_triplet"
  out = []
  for key, entry in named:
    entry = {k: v for k, v in entry.items() if v is not None}
    entry.setdefault("type", default_type)
    if key is not None and not entry.get("dataset"):
      entry.setdefault("name", key)
    out.append(entry)
  return out


def is_benchmark(entry) -> bool:
  return bool(entry.get("dataset"))


def every_steps(entry, config) -> int:
  """How often an entry runs during training: 0 means after training (and in --mode=eval) only."""
  if entry.get("every_steps") is not None:
    return int(entry["every_steps"])
  return 0 if is_benchmark(entry) else int(config.get("eval_every_steps", 0))


def make(predict_fn: Callable, config, entry: dict[str, Any]):
  """The Evaluator of one entry."""
  entry = dict(entry)
  return get_module(entry["type"]).Evaluator(predict_fn, config, **entry)


def run_benchmarks(predict_fn: Callable, params, config, workdir: str, step: int,
                   benchmark_entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
  """Runs the benchmark entries (default: those of `config.evals`) and writes `results_stem`.json and .md.

  Returns {"step", "method": config.model.name (+ " + TTA"), "benchmarks": [each evaluator's result less its
  images]}; the markdown holds one table per evaluator type (its module's `format_table`).
  """
  todo = [e for e in entries(config) if is_benchmark(e)] if benchmark_entries is None else benchmark_entries
  if not todo:
    raise ValueError("config.evals is empty: list the benchmarks to run, e.g. "
                     "[{'dataset': 'vimeo90k_triplet', 'dir': '/data/vimeo'}]")
  evaluators = [make(predict_fn, config, e) for e in todo]  # every entry is checked before any runs
  model = config.get("model")
  benchmarks = []
  for entry, evaluator in zip(todo, evaluators):
    result = evaluator.run(params)
    result.pop("images", None)
    benchmarks.append({"type": entry["type"], **result})
  method = (model.get("name") if model is not None else None) or "model"
  if config.get("test_time_augmentation"):
    method += " + TTA"
  results = {"step": int(step), "method": method, "benchmarks": benchmarks}
  tables = []
  for type_name in dict.fromkeys(b["type"] for b in benchmarks):
    part = {**results, "benchmarks": [b for b in benchmarks if b["type"] == type_name]}
    tables.append(get_module(type_name).format_table(part))
  stem = results_stem(config, step)
  utils.atomic_write_json(os.path.join(workdir, f"{stem}.json"), results)
  utils.atomic_write_text(os.path.join(workdir, f"{stem}.md"), "\n".join(tables))
  return results


def results_stem(config, step: int) -> str:
  """results_<step>, or results_<step>_tta with `config.test_time_augmentation` (a run's plain results are kept)."""
  return f"results_{int(step)}" + ("_tta" if config.get("test_time_augmentation") else "")
