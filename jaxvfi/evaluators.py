"""Benchmark evaluators: PSNR / SSIM on the standard VFI test sets, written as a table laid out like ReFIn's Table 1.

`run_benchmarks(predict_fn, params, config, workdir, step)` runs every entry of `config.evals`: a list of dicts, or
a dict of such dicts keyed by name of which only the entries with a `dir` run (the configs' form: `configs/*.py`
list Vimeo-90K, UCF101 and Middlebury with no folder, and `--config.evals.vimeo90k.dir=/data/vimeo_triplet` switches
one on). An entry has
  name:       display name in the table (default: the benchmark's usual name, e.g. "Vimeo-90K");
  dataset:    TFDS name, one of `BENCHMARKS` (vimeo90k_triplet, ucf101_triplet, middlebury_other);
  dir:        the manual-download folder the dataset is built from (None: already built in config.data.tfds_dir);
  split:      default "test" (the only split of UCF101 and Middlebury; Vimeo-90K's tri_testlist);
  t:          target time, default 0.5 (all three are triplets with the ground truth half-way);
  batch_size: default config.eval_batch_size, and 1 for Middlebury, whose sequences differ in size;
each by its benchmark protocol: the whole test split, whole frames (Vimeo-90K 448x256, UCF101 256x256, Middlebury
at its own sizes, which the model pads internally), no augmentation, and the metrics of `jaxvfi.metrics` (the
prediction clipped and quantised to 8 bits, PSNR and SSIM per frame, averaged over frames) for the model and the
two trivial interpolators of `metrics.baselines` (frame average, repeat frame). The short last batch is padded to the
batch size and the padding dropped, so a model compiles once per frame size.

Writes `workdir/results_<step>.json` (the dict returned) and `workdir/results_<step>.md` (`format_table`): one row
per method (the model, frame average, repeat frame) and a PSNR and an SSIM column per benchmark, PSNR with two
decimals and SSIM with four, as ReFIn (paper 000) prints Table 1.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterable, Mapping

import jax.numpy as jnp
import numpy as np

from jaxvfi import input_pipeline
from jaxvfi import metrics as metrics_lib
from jaxvfi import utils

BENCHMARKS = {
    "vimeo90k_triplet": dict(name="Vimeo-90K", batch_size=None),
    "ucf101_triplet": dict(name="UCF101", batch_size=None),
    "middlebury_other": dict(name="Middlebury", batch_size=1),
}
"""TFDS name -> display name and batch size (None: config.eval_batch_size) of its protocol."""

METHODS = (("model", None), ("frame_average", "Frame average"), ("repeat_frame", "Repeat frame"))
"""Rows of the table: result key and display name (None: the model's name, `results["method"]`)."""

_ENTRY_KEYS = frozenset({"name", "dataset", "dir", "split", "t", "batch_size"})


def _entry(entry: Mapping[str, Any], eval_batch_size: int) -> dict[str, Any]:
  """An entry of config.evals with every field filled (module docstring), or one ValueError."""
  entry = dict(entry)
  unknown = sorted(set(entry) - _ENTRY_KEYS)
  if unknown:
    raise ValueError(f"config.evals entry {entry}: unknown keys {unknown}; known: {', '.join(sorted(_ENTRY_KEYS))}")
  dataset = entry.get("dataset")
  if dataset not in BENCHMARKS:
    raise ValueError(f"config.evals entry {entry}: dataset must be one of {', '.join(BENCHMARKS)}")
  protocol = BENCHMARKS[dataset]
  batch_size = entry.get("batch_size") or protocol["batch_size"] or eval_batch_size
  return {"name": entry.get("name") or protocol["name"], "dataset": dataset, "dir": entry.get("dir"),
          "split": entry.get("split") or "test", "t": float(entry.get("t", 0.5)), "batch_size": int(batch_size)}


def _data_config(config, entry: dict[str, Any]):
  """config.data pointed at the benchmark: its dataset and folder, no augmentation preset, its t."""
  data = config.data.copy_and_resolve_references()
  data.name = entry["dataset"]
  data.dir = entry["dir"]
  data.builder_config = None
  data.augmentation = "clip"
  data.augmentation_args = {}
  data.t = entry["t"]
  return data


@dataclasses.dataclass
class Scores:
  """What `score` returns: per-frame means, the frame count and sizes, and the first examples for image grids."""
  means: dict[str, float]
  count: int
  frame_sizes: list[str]
  examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (frame0, prediction, target), uint8-range floats


def score(predict_fn: Callable, params, batches: Iterable[dict], batch_size: int, names=("psnr", "ssim"),
          limit: int = -1, keep: int = 0, desc: str = "eval", progress: bool = True) -> Scores:
  """Means over frames of the model's metrics (`names`, keyed by name) and of `metrics.baselines`.

  The one scoring loop of the trainer's evaluation and of the benchmarks. A short batch is padded to `batch_size`
  (one compilation) and the padding dropped; `limit` > 0 stops after that many frames; the first `keep` examples are
  returned for image grids.
  """
  sums: dict[str, float] = {}
  count = 0
  sizes = set()
  examples = []
  total = len(batches) if hasattr(batches, "__len__") else None
  for batch in utils.progress(batches, desc=desc, enabled=progress, total=total):
    real = int(batch["frame0"].shape[0])
    if limit > 0:
      real = min(real, limit - count)
      if real <= 0:
        break
    pred = np.asarray(predict_fn(params, utils.pad_batch(batch, batch_size)))[:real]
    batch = {k: np.asarray(v)[:real] for k, v in batch.items()}
    scores = dict(metrics_lib.frame_metrics(jnp.asarray(pred), jnp.asarray(batch["target"]), tuple(names)))
    scores.update(metrics_lib.baselines({k: jnp.asarray(v) for k, v in batch.items()}))
    for key, value in scores.items():
      sums[key] = sums.get(key, 0.0) + float(np.sum(np.asarray(value, np.float64)))
    count += real
    sizes.add(f"{batch['target'].shape[2]}x{batch['target'].shape[1]}")
    examples += [(batch["frame0"][i], pred[i], batch["target"][i]) for i in range(min(real, keep - len(examples)))]
  return Scores({k: v / count for k, v in sums.items()} if count else {}, count, sorted(sizes), examples)


def evaluate_benchmark(predict_fn: Callable, params, config, entry: Mapping[str, Any]) -> dict[str, Any]:
  """Mean PSNR / SSIM of the model and the baselines over one benchmark (one entry of config.evals)."""
  entry = _entry(entry, int(config.get("eval_batch_size", 1)))
  batches = input_pipeline.create_eval_batches(_data_config(config, entry), entry["batch_size"],
                                               split=entry["split"])
  result = score(predict_fn, params, batches, entry["batch_size"], desc=entry["name"],
                 progress=config.get("progress_bar", True))
  if not result.count:
    raise ValueError(f"benchmark {entry['name']} ({entry['dataset']}, split {entry['split']!r}) has no examples")
  key = lambda method, metric: metric if method == "model" else f"{method}_{metric}"
  scores = {method: {metric: result.means[key(method, metric)] for metric in ("psnr", "ssim")}
            for method, _ in METHODS}
  return {**{k: entry[k] for k in ("name", "dataset", "split", "t", "batch_size")}, "num_examples": result.count,
          "frame_sizes": result.frame_sizes, "scores": scores}


def format_table(results: Mapping[str, Any]) -> str:
  """Markdown table of `results` (as `run_benchmarks` returns), laid out like ReFIn's Table 1, with a caption."""
  benchmarks = results["benchmarks"]
  header = ["Method"] + [f"{b['name']} {metric}" for b in benchmarks for metric in ("PSNR", "SSIM")]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
  for method, display in METHODS:
    cells = [display or results["method"]]
    for b in benchmarks:
      cells += [f"{b['scores'][method]['psnr']:.2f}", f"{b['scores'][method]['ssim']:.4f}"]
    lines.append("| " + " | ".join(cells) + " |")
  counts = ", ".join(f"{b['name']} {b['num_examples']}" for b in benchmarks)
  lines += ["", f"PSNR (dB) and SSIM at step {results['step']}; examples: {counts}."]
  return "\n".join(lines) + "\n"


def benchmark_entries(config) -> list[dict[str, Any]]:
  """The entries of `config.evals` to run (module docstring): all of a list, the entries with a `dir` of a dict."""
  evals = config.get("evals") or []
  if hasattr(evals, "items"):
    return [dict(v) for v in evals.values() if v.get("dir")]
  return [dict(v) for v in evals]


def run_benchmarks(predict_fn: Callable, params, config, workdir: str, step: int) -> dict[str, Any]:
  """Runs every entry of `config.evals` (module docstring) and writes results_<step>.json and .md to `workdir`.

  `predict_fn(params, batch) -> (B, H, W, 3)` gets batches with frame0, frame1, target and t. Returns
  {"step", "method": config.model.name, "benchmarks": [{name, dataset, split, t, batch_size, num_examples,
  frame_sizes, scores: {model | frame_average | repeat_frame: {psnr, ssim}}}, ...]}.
  """
  evals = benchmark_entries(config)
  if not evals:
    raise ValueError("config.evals is empty: list the benchmarks to run, e.g. "
                     "[{'dataset': 'vimeo90k_triplet', 'dir': '/data/vimeo'}]")
  model = config.get("model")
  results = {"step": int(step), "method": (model.get("name") if model is not None else None) or "model",
             "benchmarks": [evaluate_benchmark(predict_fn, params, config, entry) for entry in evals]}
  utils.atomic_write_json(os.path.join(workdir, f"results_{int(step)}.json"), results)
  utils.atomic_write_text(os.path.join(workdir, f"results_{int(step)}.md"), format_table(results))
  return results
