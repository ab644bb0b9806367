"""The one scoring loop every evaluator type uses, and the options they share.

Shared entry options (`config.evals.<name>`): split, batch_size, metrics (names in `jaxvfi.metrics.METRICS`),
color ("rgb" or "y": BT.601 luma as MATLAB's rgb2ycbcr), crop_border (pixels removed on each side before scoring),
num_examples (-1: the whole split), num_images (examples in the image grid), every_steps (0: after training and in
--mode=eval only).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import jax.numpy as jnp
import numpy as np

from jaxvfi import augment
from jaxvfi import metrics as metrics_lib
from jaxvfi import utils


@dataclasses.dataclass
class Scores:
  """What `score` returns: per-frame means, the frame count and sizes, and the first examples for image grids."""
  means: dict[str, float]
  count: int
  frame_sizes: list[str]
  examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (context, prediction, target) frames in [0, 1]


def as_prediction_dict(preds) -> dict[str, Any]:
  """A family's prediction dict; a bare array is taken as {"image": array}."""
  return dict(preds) if isinstance(preds, Mapping) else {"image": preds}


def _frames(x: np.ndarray) -> np.ndarray:
  """(B, H, W, C) or a sequence (B, T, H, W, C) as frames (B * T, H, W, C)."""
  x = np.asarray(x)
  return x.reshape((-1,) + x.shape[-3:]) if x.ndim == 5 else x


def frame_group(spec) -> tuple[list[int], int]:
  """A frame group of an entry: a list of indices along T, or {"frames": [...], "downscale": factor}."""
  if hasattr(spec, "items"):  # a dict or a ConfigDict
    spec = dict(spec.items())
    if set(spec) - {"frames", "downscale"} or "frames" not in spec:
      raise ValueError(f"frame group {spec}: expected indices or {{frames: [...], downscale: factor}}")
    return [int(i) for i in spec["frames"]], int(spec.get("downscale") or 1)
  return [int(i) for i in spec], 1


def score(predict_fn: Callable, params, batches: Iterable[dict], batch_size: int, *,
          select: Callable[[dict, dict], tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]],
          context: Callable[[dict, dict], np.ndarray] | None = None, names=("psnr", "ssim"), color: str = "rgb",
          crop_border: int = 0, groups: Mapping[str, Any] | None = None, lpips: Callable | None = None,
          limit: int = -1, keep: int = 0, desc: str = "eval", progress: bool = True) -> Scores:
  """Means over frames of the model's metrics (`names`, keyed by name) and of the baselines (`<baseline>_<name>`).

  Args:
    predict_fn: (params, batch) -> prediction dict (or the image array).
    batches: dicts of numpy arrays; a short batch is padded to `batch_size` (one compilation) and the padding
      dropped.
    select: (predictions, batch) of the real examples -> (prediction frames, target frames, {baseline: frames});
      each (B, H, W, 3) or sequences (B, T, H, W, 3), scored frame by frame.
    context: (predictions, batch) -> frames shown left of the prediction in the image grid (default the target).
    groups: {name: indices along T, or {"frames": indices, "downscale": factor}}: each group of a sequence's frames
      is also scored alone, as <name>/<metric> and <name>/<baseline>_<metric>. With `downscale`, the prediction
      (quantised to 8 bits, as a saved frame), the baselines (likewise) and the target are first bicubic-downscaled
      by that factor (antialiased, MATLAB-like: `augment.bicubic_downscale`, as the inputs of restoration datasets
      are made): e.g. restored frames scored at their inputs' scale.
    lpips: `metrics.lpips_fn(path)` when "lpips" is among `names` (else it is left out).
    limit: > 0 stops after that many examples. keep: the first `keep` examples are returned for image grids.
  """
  sums: dict[str, float] = {}
  counts: dict[str, int] = {}
  examples = 0
  sizes = set()
  kept = []
  options = dict(names=tuple(names), color=color, crop_border=crop_border, lpips=lpips)

  def add(prefix, pred, target, base):
    pred, target = _frames(pred), _frames(target)
    scores = dict(metrics_lib.frame_metrics(jnp.asarray(pred), jnp.asarray(target), **options))
    for baseline, frames in base.items():
      for key, value in metrics_lib.frame_metrics(jnp.asarray(_frames(frames)), jnp.asarray(target),
                                                  **options).items():
        scores[f"{baseline}_{key}"] = value
    for key, value in scores.items():
      sums[prefix + key] = sums.get(prefix + key, 0.0) + float(np.sum(np.asarray(value, np.float64)))
      counts[prefix + key] = counts.get(prefix + key, 0) + pred.shape[0]
    return pred, target

  total = len(batches) if hasattr(batches, "__len__") else None
  for batch in utils.progress(batches, desc=desc, enabled=progress, total=total):
    real = int(next(iter(batch.values())).shape[0])
    if limit > 0:
      real = min(real, limit - examples)
      if real <= 0:
        break
    preds = as_prediction_dict(predict_fn(params, utils.pad_batch(batch, batch_size)))
    preds = {k: np.asarray(v)[:real] for k, v in preds.items()}
    batch = {k: np.asarray(v)[:real] for k, v in batch.items()}
    pred, target, base = select(preds, batch)
    for group, spec in (groups or {}).items():
      idx, factor = frame_group(spec)
      gp, gt, gb = pred[:, idx], target[:, idx], {k: v[:, idx] for k, v in base.items()}
      if factor > 1:
        down = lambda x: augment.bicubic_downscale(np.asarray(metrics_lib.quantize(jnp.asarray(x))), factor)
        gp, gt, gb = down(gp), augment.bicubic_downscale(gt, factor), {k: down(v) for k, v in gb.items()}
      add(f"{group}/", gp, gt, gb)
    pred, target = add("", pred, target, base)
    examples += real
    sizes.add(f"{target.shape[2]}x{target.shape[1]}")
    if len(kept) < keep:
      shown = _frames(context(preds, batch)) if context is not None else target
      per_example = pred.shape[0] // real  # frames per example: show each example's middle frame
      for i in range(min(real, keep - len(kept))):
        j = i * per_example + per_example // 2
        kept.append((shown[j], pred[j], target[j]))
  count = max((v for k, v in counts.items() if "/" not in k), default=0)  # frames scored
  return Scores({k: v / counts[k] for k, v in sums.items()}, count, sorted(sizes), kept)


def lpips_option(config, names) -> tuple[Callable | None, list[str]]:
  """(`metrics.lpips_fn(config.lpips_weights)`, []) when "lpips" is asked for and its weights given; otherwise
  (None, [the reason it is not reported]) or (None, [])."""
  if "lpips" not in names:
    return None, []
  path = config.get("lpips_weights")
  if not path:
    return None, [metrics_lib.LPIPS_NO_WEIGHTS]
  return metrics_lib.lpips_fn(path), []


def unreported_notes(names, means: Mapping[str, float]) -> list[str]:
  """Why a metric asked for has no mean: MS-SSIM is skipped on frames too small for its scales (`frame_metrics`)."""
  if "ms_ssim" in names and "ms_ssim" not in means:
    return [f"ms_ssim not computed: the frames (after any border crop) are under {metrics_lib.MS_SSIM_MIN_SIDE} "
            f"pixels a side, which its {len(metrics_lib.MS_SSIM_WEIGHTS)} scales with an 11x11 window need"]
  return []


def grid(examples) -> np.ndarray | None:
  """The image summary: one row context | prediction | target | |error| x 4 per example, uint8 HWC."""
  rows = [utils.grid_row(*example) for example in examples]
  return np.concatenate(rows, axis=0) if rows else None


def split_scores(means: Mapping[str, float], names, baselines) -> dict[str, dict[str, float]]:
  """{"model": {metric: v}, baseline: {metric: v}, ...} from `score`'s flat means."""
  out = {"model": {n: means[n] for n in names if n in means}}
  for b in baselines:
    out[b] = {n: means[f"{b}_{n}"] for n in names if f"{b}_{n}" in means}
  return out


def data_config(config, entry: Mapping[str, Any], **fields):
  """config.data for an entry: pointed at its dataset and folder when it names one (no augmentation preset then)."""
  data = config.data.copy_and_resolve_references()
  if entry.get("dataset"):
    data.name = entry["dataset"]
    data.dir = entry.get("dir")
    data.builder_config = entry.get("builder_config")
    data.augmentation_args = {}
  for k, v in fields.items():
    data[k] = v
  return data
