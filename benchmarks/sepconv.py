"""Benchmark of the local separable convolution: Pallas kernel and "cpu" formulation vs the `jnp` reference.

  python benchmarks/sepconv.py                      # 256x256, 1280x720, 1920x1080; fp32 and bf16; K = 51
  python benchmarks/sepconv.py --sizes 256x256      # quick; what CPU runs are for

Times are the median of `--repeats` runs after `--warmup` runs (the first one compiles), each ended by
`block_until_ready`. Off GPU the Pallas kernel runs in interpret mode, which measures nothing about the GPU kernel:
there it is only run up to `--max-interpret-pixels`, `--interpret-repeats` times, and the table says so. The last
column is the largest difference from the reference's output (forward) or gradients (forward+backward), relative to
the reference's largest entry, so a fast but wrong kernel cannot go unnoticed.
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
from pallas_kernels import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import separable as sc  # pylint: disable=g-import-not-at-top,wrong-import-position

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _parse_size(text: str) -> tuple[int, int]:
  w, h = (int(v) for v in text.lower().split("x"))
  return w, h


def _inputs(n, h, w, c, k, dtype, seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  x = jax.random.uniform(keys[0], (n, h + k - 1, w + k - 1, c), jnp.float32).astype(dtype)
  # Kernels as the network makes them: magnitudes ~1/K so that the output stays O(1) in bf16.
  kv = (jax.random.normal(keys[1], (n, h, w, k), jnp.float32) / k).astype(dtype)
  kh = (jax.random.normal(keys[2], (n, h, w, k), jnp.float32) / k).astype(dtype)
  g = jax.random.normal(keys[3], (n, h, w, c), jnp.float32).astype(dtype)
  return x, kv, kh, g


def _fn(impl: str, mode: str):
  op = lambda x, kv, kh: sc.sepconv(x, kv, kh, impl=impl)
  if mode == "fwd":
    return jax.jit(lambda x, kv, kh, g: op(x, kv, kh))
  return jax.jit(lambda x, kv, kh, g: jax.vjp(op, x, kv, kh)[1](g))


def _time(fn, args, warmup: int, repeats: int) -> tuple[float, float, object]:
  for _ in range(warmup):
    out = jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times) * 1e3, min(times) * 1e3, out


def _rel_diff(a, b) -> float:
  a = [np.asarray(v, np.float32) for v in jax.tree.leaves(a)]
  b = [np.asarray(v, np.float32) for v in jax.tree.leaves(b)]
  return max(float(np.abs(u - v).max() / max(np.abs(v).max(), 1e-30)) for u, v in zip(a, b))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sizes", default="256x256,1280x720,1920x1080", help="comma-separated WxH")
  parser.add_argument("--dtypes", default="float32,bfloat16", help=f"comma-separated, from {list(DTYPES)}")
  parser.add_argument("--modes", default="fwd,fwd+bwd", help="fwd and/or fwd+bwd")
  parser.add_argument("--impls", default="pallas,cpu,xla", help="pallas, cpu and/or xla (xla = the jnp reference)")
  parser.add_argument("--kernel-size", type=int, default=51)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--interpret-repeats", type=int, default=1,
                      help="timed runs of the interpret-mode kernel off GPU (seconds each; it is a correctness check)")
  parser.add_argument("--max-interpret-pixels", type=int, default=256 * 256,
                      help="off GPU, time the interpret-mode kernel only up to this many output pixels")
  args = parser.parse_args(argv)

  dev = jax.devices()[0]
  print(f"device: {dev.platform} / {dev.device_kind} (jax {jax.__version__}); K={args.kernel_size}, "
        f"N={args.batch}, C={args.channels}; median of {args.repeats} after {args.warmup} warm-up")
  if not common.on_gpu():
    print("no GPU: 'pallas' runs the kernel in interpret mode (a correctness path, not a GPU timing)")
  header = f"{'size':>10} {'dtype':>9} {'mode':>8} {'impl':>7} {'median ms':>10} {'min ms':>9} {'vs xla':>7} " \
           f"{'rel diff':>9}"
  print(header)
  print("-" * len(header))
  impls = args.impls.split(",")
  for size in args.sizes.split(","):
    w, h = _parse_size(size)
    for dname in args.dtypes.split(","):
      inputs = _inputs(args.batch, h, w, args.channels, args.kernel_size, DTYPES[dname])
      for mode in args.modes.split(","):
        results = {}
        for impl in sorted(impls, key=lambda s: s != "xla"):  # reference first: the others are compared to it
          if impl == "pallas" and not common.on_gpu() and h * w > args.max_interpret_pixels:
            print(f"{size:>10} {dname:>9} {mode:>8} {impl:>7} {'skipped (interpret mode, too large)':>37}")
            continue
          interpret = impl == "pallas" and not common.on_gpu()
          repeats = args.interpret_repeats if interpret else args.repeats
          median, best, out = _time(_fn(impl, mode), inputs, args.warmup, repeats)
          results[impl] = (median, out)
          speedup = f"{results['xla'][0] / median:6.2f}x" if "xla" in results else "      -"
          diff = f"{_rel_diff(out, results['xla'][1]):9.1e}" if "xla" in results and impl != "xla" else \
              f"{'-':>9}"
          print(f"{size:>10} {dname:>9} {mode:>8} {impl:>7} {median:10.2f} {best:9.2f} {speedup:>7} {diff}")
          del out


if __name__ == "__main__":
  main()
