"""Evaluator `restoration`: predicted frames (or sequences of frames) against ground truth, beside trivial baselines.

For restoration families (DSFN: deblurring + super-resolution + interpolation; SDAN: reference-based zoom). An entry
of `config.evals` with `type="restoration"` scores the config's eval split (no `dataset`) or a named dataset
(`dataset`, `dir`, `builder_config`). Options (besides those of `jaxvfi.evaluators.common`):
  pred_key:   the prediction compared with the ground truth (default "image"), (B, H, W, 3) or (B, T, H, W, 3);
  target_key: the batch's ground truth in the same layout (required);
  target_frames: optional indices along T of target_key: the ground-truth frames the prediction's T frames are
              (e.g. DSFN predicts 3 of the 7 sharp frames of an example);
  input_key:  a low-resolution input in the same layout at 1/`scale` the size: its bicubic upsampling
              (`jax.image.resize`, "bicubic") is the "bicubic" baseline, unless the family has `baselines`;
  scale:      the upsampling factor of input_key (default: target size / input size);
  frames:     optional {group name: [indices along T] or {"frames": [...], "downscale": factor}}: the model and the
              baselines are also scored on each group of a sequence, reported as <group>/<metric> (e.g. DSFN's key
              frames and interpolated frames); with `downscale`, after a bicubic x1/factor of prediction, baselines
              and ground truth alike (`common.score`; e.g. DSFN's "deblurred at input scale");
  group_means: optional {name: [group names]}: <name>/<metric> is the mean of those groups' values (e.g. a video
              that alternates key and interpolated frames scores their mean, DSFN's "enhanced video");
  reference:  optional {row name: {column: value}}: published numbers printed in the table beside ours (columns as
              in `scores`, e.g. "interpolated/psnr"); they are never computed, only shown;
  name, dataset, dir, builder_config, split, batch_size.
Baselines: the family's `baselines(batch, config) -> {name: frames}` (`jaxvfi.families` docstring) when it has one,
else the bicubic upsampling of input_key when given, else none.

`format_table(results)` lays the results of several entries out as one markdown table: a row per method (the model,
then each baseline, then the reference rows) and a column per entry and metric, with the colour space and border
crop of each entry in the caption.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxvfi import families
from jaxvfi import input_pipeline
from jaxvfi.evaluators import common

ENTRY_KEYS = frozenset({"name", "dataset", "dir", "builder_config", "split", "batch_size", "metrics", "color",
                        "crop_border", "num_examples", "num_images", "every_steps", "type", "pred_key", "target_key",
                        "input_key", "scale", "frames", "target_frames", "group_means", "reference"})


def bicubic_upsample(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """(..., h, w, C) -> (..., H, W, C) by `jax.image.resize` with the bicubic (Keys a = -0.5) kernel."""
  frames = jnp.asarray(frames, jnp.float32)
  shape = frames.shape[:-3] + tuple(size) + frames.shape[-1:]
  return np.asarray(jax.image.resize(frames, shape, method="bicubic"))


class Evaluator:
  """Scores a restoration model on one entry of `config.evals` (module docstring).

  `run(params)` returns {name, dataset, split, batch_size, num_examples (frames), frame_sizes, scores: {model |
  <baseline>: {metric: mean}}, metrics: flat means, images: {"context_prediction_target_error": uint8 grid}}.
  """

  def __init__(self, predict_fn: Callable, config, **entry):
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
      raise ValueError(f"config.evals entry {entry}: unknown keys {unknown}; known: {', '.join(sorted(ENTRY_KEYS))}")
    if not entry.get("target_key"):
      raise ValueError(f"config.evals entry {entry}: a restoration evaluation needs target_key (the ground truth)")
    self.predict_fn = predict_fn
    self.config = config
    self.dataset = entry.get("dataset")
    self.name = entry.get("name") or self.dataset or "validation"
    self.split = entry.get("split") or ("test" if self.dataset else config.data.eval_split)
    self.batch_size = int(entry.get("batch_size") or config.get("eval_batch_size", 1))
    self.metrics = tuple(entry.get("metrics") or config.get("eval_metrics", ("psnr", "ssim")))
    self.color = entry.get("color") or "rgb"
    self.lpips, self.notes = common.lpips_option(config, self.metrics)
    self.crop_border = int(entry.get("crop_border") or 0)
    self.pred_key = entry.get("pred_key") or "image"
    self.target_key = entry["target_key"]
    self.input_key = entry.get("input_key")
    self.scale = entry.get("scale")
    frames = entry.get("target_frames")
    self.target_frames = None if frames is None else [int(i) for i in frames]
    self.groups = {}
    for k, v in dict(entry.get("frames") or {}).items():
      idx, factor = common.frame_group(v)
      self.groups[str(k)] = {"frames": idx, "downscale": factor}
    self.group_means = {str(k): [str(g) for g in v] for k, v in dict(entry.get("group_means") or {}).items()}
    for name, parts in self.group_means.items():
      missing = [g for g in parts if g not in self.groups]
      if missing or not parts:
        raise ValueError(f"config.evals entry {self.name!r}: group_means.{name} names groups {missing or parts} that "
                         f"are not frame groups ({', '.join(self.groups) or 'none'})")
    self.reference = {str(row): {str(k): float(v) for k, v in dict(values).items()}
                      for row, values in dict(entry.get("reference") or {}).items()}
    default_limit = -1 if self.dataset else int(config.get("num_eval_examples", -1))
    self.limit = int(entry["num_examples"]) if entry.get("num_examples") is not None else default_limit
    self.num_images = int(entry["num_images"]) if entry.get("num_images") is not None else (
        0 if self.dataset else int(config.get("num_image_summaries", 0)))
    self.family_baselines = families.of(config).baselines
    self.data = common.data_config(config, entry)
    self._baseline_names: set[str] = set()

  def _baselines(self, batch: dict, target: np.ndarray) -> dict[str, np.ndarray]:
    if self.family_baselines is not None:
      return {k: np.asarray(v) for k, v in self.family_baselines(batch, self.config).items()}
    if not self.input_key:
      return {}
    low = np.asarray(batch[self.input_key])
    if self.scale:
      size = (low.shape[-3] * int(self.scale), low.shape[-2] * int(self.scale))
      if size != tuple(target.shape[-3:-1]):
        raise ValueError(f"{self.input_key} of {low.shape[-3]}x{low.shape[-2]} at scale {self.scale} does not give "
                         f"the {target.shape[-3]}x{target.shape[-2]} of {self.target_key}")
    return {"bicubic": bicubic_upsample(low, target.shape[-3:-1])}

  def _select(self, preds, batch):
    if self.pred_key not in preds:
      raise ValueError(f"the model's predictions have no {self.pred_key!r} (they have {', '.join(sorted(preds))})")
    if self.target_key not in batch:
      raise ValueError(f"the eval batches have no {self.target_key!r} (they have {', '.join(sorted(batch))})")
    pred, target = np.asarray(preds[self.pred_key]), np.asarray(batch[self.target_key])
    if self.target_frames is not None:
      if target.ndim != 5 or max(self.target_frames) >= target.shape[1]:
        raise ValueError(f"target_frames {self.target_frames} do not index the frames of {self.target_key} "
                         f"{target.shape}")
      target = target[:, self.target_frames]
    if pred.shape != target.shape:
      raise ValueError(f"prediction {self.pred_key} {pred.shape} and ground truth {self.target_key} {target.shape} "
                       "differ in shape")
    base = self._baselines(batch, target)
    self._baseline_names.update(base)
    return pred, target, base

  def run(self, params) -> dict[str, Any]:
    batches = input_pipeline.create_eval_batches(self.data, self.batch_size, split=self.split)
    context = lambda preds, batch: next(iter(self._select(preds, batch)[2].values()), batch[self.target_key])
    result = common.score(self.predict_fn, params, batches, self.batch_size, select=self._select, context=context,
                          names=self.metrics, color=self.color, crop_border=self.crop_border, groups=self.groups,
                          lpips=self.lpips,
                          limit=self.limit, keep=self.num_images, desc=self.name,
                          progress=self.config.get("progress_bar", True))
    if not result.count:
      raise ValueError(f"evaluation {self.name} ({self.dataset or self.data.name}, split {self.split!r}) has no "
                       "examples")
    baselines = sorted(self._baseline_names)
    scores = common.split_scores(result.means, self.metrics, baselines)
    for group in self.groups:
      part = {k[len(group) + 1:]: v for k, v in result.means.items() if k.startswith(f"{group}/")}
      for method, values in common.split_scores(part, self.metrics, baselines).items():
        scores[method].update({f"{group}/{k}": v for k, v in values.items()})
    means = dict(result.means)
    for name, parts in self.group_means.items():  # the mean of the groups' means, not of their frames
      for method, values in scores.items():
        prefix = "" if method == "model" else f"{method}_"
        for metric in self.metrics:
          keys = [f"{g}/{metric}" for g in parts]
          if all(k in values for k in keys):
            values[f"{name}/{metric}"] = means[f"{name}/{prefix}{metric}"] = float(np.mean([values[k] for k in keys]))
    grid = common.grid(result.examples)
    return {"name": self.name, "dataset": self.dataset or self.data.name, "split": self.split,
            "batch_size": self.batch_size, "num_examples": result.count, "frame_sizes": result.frame_sizes,
            "color": self.color, "crop_border": self.crop_border, "scores": scores, "metrics": means,
            "reference": self.reference,
            "notes": list(self.notes) + common.unreported_notes(self.metrics, result.means),
            "images": {} if grid is None else {"context_prediction_target_error": grid}}


def format_table(results: Mapping[str, Any]) -> str:
  """One markdown table: a row per method (the model, the baselines, then the entries' reference rows), a column per
  entry and metric; the caption gives each entry's frame count, colour space and border crop."""
  benchmarks = results["benchmarks"]
  columns = [(b, key) for b in benchmarks for key in b["scores"]["model"]]
  header = ["Method"] + [f"{b['name']} {key}" for b, key in columns]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * len(columns)) + "|"]
  fmt = lambda key, value: "" if value is None else (f"{value:.3f}" if "psnr" in key else f"{value:.4f}")
  methods = ["model"] + sorted({m for b in benchmarks for m in b["scores"] if m != "model"})
  for method in methods:
    cells = [results["method"] if method == "model" else method]
    cells += [fmt(key, b["scores"].get(method, {}).get(key)) for b, key in columns]
    lines.append("| " + " | ".join(cells) + " |")
  for row in dict.fromkeys(r for b in benchmarks for r in b.get("reference") or {}):
    cells = [row] + [fmt(key, (b.get("reference") or {}).get(row, {}).get(key)) for b, key in columns]
    lines.append("| " + " | ".join(cells) + " |")
  counts = ", ".join(f"{b['name']} {b['num_examples']} frames" for b in benchmarks)
  crop = lambda b: f"{b['crop_border']} px border crop" if b.get("crop_border") else "no border crop"
  space = lambda b: "RGB" if b.get("color", "rgb") == "rgb" else "Y (BT.601)"
  scoring = "; ".join(f"{b['name']}: {space(b)}, {crop(b)}" for b in benchmarks)
  lines += ["", f"At step {results['step']}; {counts}. Scored on {scoring}."]
  if any(b.get("reference") for b in benchmarks):
    lines.append("Rows after the baselines are published numbers, copied, not computed.")
  return "\n".join(lines) + "\n"
