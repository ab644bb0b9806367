from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from jaxvfi import classical_flow
from jaxvfi import input_pipeline
from jaxvfi.evaluators import common

BENCHMARKS = {
    "vimeo90k_triplet": dict(name="Vimeo-90K", batch_size=None),
    "ucf101_triplet": dict(name="UCF101", batch_size=None),
    "middlebury_other": dict(name="Middlebury", batch_size=1),
}
"""TFDS name -> display name and batch size (None: config.eval_batch_size) of its protocol."""

METHODS = (("model", None), ("frame_average", "Frame average"), ("repeat_frame", "Repeat frame"),
           (classical_flow.KEY, classical_flow.DISPLAY_NAME))
"""Rows of the table: result key and display name (None: the model's name, `results["method"]`). The classical flow
row is left out where OpenCV is not installed (`jaxvfi.classical_flow`); a note then says so."""

ENTRY_KEYS = frozenset({"name", "dataset", "dir", "split", "t", "batch_size", "metrics", "color", "crop_border",
                        "num_examples", "num_images", "every_steps", "type"})


def select(preds, batch):
  """The model's frame, the target and the baselines: the two trivial interpolators (frame average, repeat frame)
  and, with OpenCV installed, classical optical flow (`jaxvfi.classical_flow`)."""
  t = np.asarray(batch["t"]).reshape(-1, 1, 1, 1)
  baselines = {"frame_average": np.float32(0.5) * (batch["frame0"] + batch["frame1"]),
               "repeat_frame": np.where(t <= 0.5, batch["frame0"], batch["frame1"])}
  if classical_flow.available():
    baselines[classical_flow.KEY] = classical_flow.interpolate_batch(batch["frame0"], batch["frame1"], batch["t"])
  return preds["image"], batch["target"], baselines


class Evaluator:
  """Scores a triplet model on one entry of `config.evals` (module docstring).

  `run(params)` returns {name, dataset, split, t, batch_size, num_examples, frame_sizes, scores: {model |
  frame_average | repeat_frame | classical_flow: {metric: mean}}, metrics: flat means (the model's by metric name, a
  baseline's as <baseline>_<metric>), method_names: {baseline: display name}, notes, images:
  {"frame0_prediction_target_error": uint8 grid} }. Without OpenCV, classical_flow is absent and a note says why.
  """

  def __init__(self, predict_fn: Callable, config, **entry):
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
      raise ValueError(f"config.evals entry {entry}: unknown keys {unknown}; known: {', '.join(sorted(ENTRY_KEYS))}")
    self.predict_fn = predict_fn
    self.config = config
    dataset = entry.get("dataset")
    if dataset is not None and dataset not in BENCHMARKS:
      raise ValueError(f"config.evals entry {entry}: dataset must be one of {', '.join(BENCHMARKS)}")
    protocol = BENCHMARKS.get(dataset, dict(name="validation", batch_size=None))
    self.dataset = dataset
    self.name = entry.get("name") or protocol["name"]
    self.split = entry.get("split") or ("test" if dataset else config.data.eval_split)
    self.t = float(entry.get("t") if entry.get("t") is not None else 0.5)
    self.batch_size = int(entry.get("batch_size") or protocol["batch_size"] or config.get("eval_batch_size", 1))
    self.metrics = tuple(entry.get("metrics") or config.get("eval_metrics", ("psnr", "ssim")))
    self.color = entry.get("color") or "rgb"
    self.lpips, self.notes = common.lpips_option(config, self.metrics)
    if not classical_flow.available():
      self.notes = list(self.notes) + [classical_flow.UNAVAILABLE_NOTE]
    self.crop_border = int(entry.get("crop_border") or 0)
    default_limit = -1 if dataset else int(config.get("num_eval_examples", -1))
    self.limit = int(entry["num_examples"]) if entry.get("num_examples") is not None else default_limit
    self.num_images = int(entry["num_images"]) if entry.get("num_images") is not None else (
        0 if dataset else int(config.get("num_image_summaries", 0)))
    fields = dict(augmentation="clip", t=self.t) if dataset else {}
    self.data = common.data_config(config, entry, **fields)

  def run(self, params) -> dict[str, Any]:
    batches = input_pipeline.create_eval_batches(self.data, self.batch_size, split=self.split)
    result = common.score(self.predict_fn, params, batches, self.batch_size, select=select,
                          context=lambda preds, batch: batch["frame0"], names=self.metrics, color=self.color,
                          crop_border=self.crop_border, lpips=self.lpips, limit=self.limit, keep=self.num_images,
                          desc=self.name, progress=self.config.get("progress_bar", True))
    if not result.count:
      raise ValueError(f"evaluation {self.name} ({self.dataset or self.data.name}, split {self.split!r}) has no "
                       "examples")
    grid = common.grid(result.examples)
    baselines = {m for m, _ in METHODS[1:] if any(k.startswith(f"{m}_") for k in result.means)}
    return {"name": self.name, "dataset": self.dataset or self.data.name, "split": self.split, "t": self.t,
            "batch_size": self.batch_size, "num_examples": result.count, "frame_sizes": result.frame_sizes,
            "scores": common.split_scores(result.means, self.metrics, [m for m, _ in METHODS[1:] if m in baselines]),
            "metrics": result.means, "method_names": {m: name for m, name in METHODS[1:] if m in baselines},
            "notes": list(self.notes) + common.unreported_notes(self.metrics, result.means),
            "images": {} if grid is None else {"frame0_prediction_target_error": grid}}


def format_table(results: Mapping[str, Any]) -> str:
  """Markdown table of `results` (as `run_benchmarks` returns), laid out like ReFIn's Table 1, with a caption."""
  benchmarks = results["benchmarks"]
  header = ["Method"] + [f"{b['name']} {metric}" for b in benchmarks for metric in ("PSNR", "SSIM")]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
  for method, display in METHODS:
    if not any(method in b["scores"] for b in benchmarks):
      continue  # the classical flow row without OpenCV: the note below says so
    cells = [display or results["method"]]
    for b in benchmarks:
      scores = b["scores"].get(method)
      cells += [f"{scores['psnr']:.2f}", f"{scores['ssim']:.4f}"] if scores else ["n/a", "n/a"]
    lines.append("| " + " | ".join(cells) + " |")
  counts = ", ".join(f"{b['name']} {b['num_examples']}" for b in benchmarks)
  lines += ["", f"PSNR (dB) and SSIM at step {results['step']}; examples: {counts}."]
  if any(classical_flow.UNAVAILABLE_NOTE in b.get("notes", ()) for b in benchmarks):
    lines += ["", classical_flow.UNAVAILABLE_NOTE[0].upper() + classical_flow.UNAVAILABLE_NOTE[1:] + "."]
  return "\n".join(lines) + "\n"


