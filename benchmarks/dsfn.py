"""DSFN inference time: seconds per output frame at Adobe240's size (640x352 output, 160x88 inputs), as Table 3.

  python benchmarks/dsfn.py                             # 640x352, two levels and one, the deformable-conv paths
  python benchmarks/dsfn.py --impls xla --levels 2      # what a CPU run is for

One call of the network takes four blurry LR frames and makes three sharp x4 frames (two key frames and the frame
between them). Enhancing a video (`jaxvfi.enhance`) slides that window one input frame at a time, so each call adds
two frames to the output (a key frame and an in-between frame): "s / output frame" is the time of one call divided
by 2 (the paper's Table 3: 0.02 s/frame on a Titan Xp, averaged over 30 frames with torch.cuda.synchronize).
Times are the median of `--repeats` calls after `--warmup` calls (the first compiles), each ended by
`block_until_ready`, batch 1, float32, random weights with random (non-zero) offset heads. The deformable convs run
the `jnp` reference ("xla") or the Pallas kernel ("pallas"); off GPU the Pallas kernel runs in interpret mode, which
times nothing about the GPU kernel, so CPU runs default to "xla".
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from jaxvfi.models import dsfn  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import common  # pylint: disable=g-import-not-at-top,wrong-import-position

NEW_FRAMES_PER_CALL = 2  # in a video, each window adds one key frame and one in-between frame


def _parse_size(text: str) -> tuple[int, int]:
  w, h = (int(v) for v in text.lower().split("x"))
  return w, h


def time_dsfn(width: int, height: int, levels: int, impl: str, warmup: int, repeats: int) -> dict[str, float]:
  """Median and best seconds of one DSFN call making 3 frames of width x height (output size)."""
  scale = 4
  if width % scale or height % scale:
    raise ValueError(f"the output size {width}x{height} must be a multiple of the scale {scale}")
  model = dsfn.DSFN(levels=levels, scale=scale, offset_init="conv_init", impl=impl)
  rng = np.random.default_rng(0)
  blurry = jnp.asarray(rng.uniform(size=(1, 4, height // scale, width // scale, 3)), jnp.float32)
  params = jax.jit(lambda key, b: model.init(key, {"blurry": b})["params"])(jax.random.PRNGKey(0), blurry)
  predict = jax.jit(lambda p, b: model.apply({"params": p}, {"blurry": b})["image"])
  for _ in range(warmup):
    jax.block_until_ready(predict(params, blurry))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(predict(params, blurry))
    times.append(time.perf_counter() - t0)
  return {"median": statistics.median(times), "best": min(times)}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sizes", default="640x352", help="comma-separated output WxH (inputs are 1/4 of it)")
  parser.add_argument("--levels", default="2,1", help="comma-separated: 2 (the paper's network) and/or 1")
  parser.add_argument("--impls", default=None,
                      help="deformable conv: pallas and/or xla (default: pallas,xla on a GPU, xla elsewhere)")
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  impls = (args.impls or ("pallas,xla" if common.on_gpu() else "xla")).split(",")

  dev = jax.devices()[0]
  print(f"device: {dev.platform} / {dev.device_kind} (jax {jax.__version__}); batch 1, float32; median of "
        f"{args.repeats} calls after {args.warmup} warm-up")
  if not common.on_gpu():
    print("no GPU: the deformable convs run the jnp reference ('xla'); 'pallas' would be interpret mode")
  header = f"{'output':>9} {'levels':>6} {'dcn':>6} {'s / call':>9} {'best s':>8} {'s / output frame':>17}"
  print(header)
  print("-" * len(header))
  for size in args.sizes.split(","):
    width, height = _parse_size(size)
    for levels in (int(v) for v in args.levels.split(",")):
      for impl in impls:
        t = time_dsfn(width, height, levels, impl, args.warmup, args.repeats)
        print(f"{size:>9} {levels:>6} {impl:>6} {t['median']:9.3f} {t['best']:8.3f} "
              f"{t['median'] / NEW_FRAMES_PER_CALL:17.3f}")


if __name__ == "__main__":
  main()
