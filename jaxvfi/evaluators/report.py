"""Running a config's evaluations and reporting them: eval JSON, sample grids, TensorBoard scalars and the log.

The trainer and `--mode=eval` call `run_evals` for the validation entries (`eval_<step>[_<tag>].json`) and
`run_benchmark_entries` for the benchmarks (`results_<step>.json` and `.md`, `jaxvfi.evaluators.registry`). Only
process 0 writes files.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from absl import logging

from jaxvfi import parallel
from jaxvfi import utils
from jaxvfi.evaluators import registry


def describe(result: dict[str, Any]) -> str:
  """One log line's scores: the model's metrics, then each baseline's in parentheses, named by the result's
  `method_names` (lower-cased) where it has them, else by its key."""
  fmt = lambda name, v: f"PSNR {v:.3f} dB" if name.endswith("psnr") else f"{name.upper()} {v:.4f}"
  scores = result["scores"]
  names = result.get("method_names") or {}
  label = lambda m: names[m][0].lower() + names[m][1:] if names.get(m) else m.replace("_", " ")
  text = ", ".join(fmt(k, v) for k, v in scores["model"].items() if "/" not in k)
  others = [f"{label(m)}: " + ", ".join(fmt(k, v) for k, v in s.items() if "/" not in k)
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
    result = registry.make(predict_fn, config, entry).run(params)
    results[result["name"]] = result
    logging.info("%s @ step %d on %d examples: %s", "eval" if result["name"] == "validation" else result["name"],
                 step, result["num_examples"], describe(result))
  main = results.get("validation") or next(iter(results.values()))
  notes = list(notes) + [n for r in results.values() for n in r.get("notes", []) if n not in notes]
  record = {"step": int(step), "split": main["split"], "num_examples": int(main["num_examples"]),
            "metrics": {k: float(v) for k, v in sorted(main["metrics"].items())}, "notes": notes,
            "evals": {name: {"split": r["split"], "num_examples": int(r["num_examples"]),
                             "metrics": {k: float(v) for k, v in sorted(r["metrics"].items())}}
                      for name, r in results.items()}}
  if not parallel.is_primary():
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


def tta_notes(test_time_augmentation: bool) -> list[str]:
  """The eval record's note on test-time augmentation, also logged once."""
  notes = (["test-time augmentation: every prediction is the mean of the model's on the inputs and, rotated back, on "
            "the inputs rotated by 180 degrees"] if test_time_augmentation else [])
  for note in notes:
    logging.info("%s", note)
  return notes


def run_benchmark_entries(predict_fn, params, config, workdir, step, writer, benchmark_entries) -> None:
  """The benchmark entries (`config.evals` with a dataset and its folder): results_<step>.json and .md, their
  scalars under benchmarks/<name>/ (the model's as <metric>, a baseline's as <baseline>_<metric>) and the markdown
  in the log."""
  if not benchmark_entries:
    return
  results = registry.run_benchmarks(predict_fn, params, config, workdir, step, benchmark_entries)
  for bench in results["benchmarks"]:
    for method, scores in bench["scores"].items():
      for metric, value in scores.items():
        name = metric if method == "model" else f"{method}_{metric}"
        writer.add_scalar(f"benchmarks/{bench['name']}/{name}", value, step)
  with open(os.path.join(workdir, registry.results_stem(config, step) + ".md")) as f:
    logging.info("benchmarks at step %d:\n%s", step, f.read())


def split_entries(config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
  """(validation entries, benchmark entries) of `config.evals` (`registry.entries`)."""
  all_entries = registry.entries(config)
  return ([e for e in all_entries if not registry.is_benchmark(e)],
          [e for e in all_entries if registry.is_benchmark(e)])


class NullWriter:
  """The summary writer of a process other than the first (only process 0 writes files)."""

  def __getattr__(self, name):
    return lambda *args, **kwargs: None


def summary_writer(workdir: str):
  """TensorBoard's writer on process 0, a `NullWriter` elsewhere."""
  return utils.summary_writer(workdir) if parallel.is_primary() else NullWriter()
