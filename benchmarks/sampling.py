"""Benchmarks of the sampling kernels (`pallas_kernels`): Pallas against the `jnp` reference in one run.

Sections (each a `bench_<name>(args)` registered in `SECTIONS`):
  warp: backward warp (bilinear sampling), forward and forward+backward, at 1920x1080 with C = 3 and C = 64.
  deform: deformable convolution (DCN v1, v2, SDAN's squared offsets) at DSFN sizes: batch 4, C = 128, k = 3,
    64x64 and 180x320; `--deform-sizes 16x16 --deform-batch 1 --deform-channels 16` for a quick CPU run.

  python benchmarks/sampling.py                                  # full size, all sections (meant for a GPU)
  python benchmarks/sampling.py --height 64 --width 96 --iters 3  # quick run on CPU (Pallas in interpret mode)

Timings are medians over `--iters` runs after `--warmup` runs of a jitted function, each ended with
`block_until_ready`. Off-GPU the Pallas kernels run in interpret mode, so their CPU timings say nothing about GPU speed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pallas_kernels import common
from pallas_kernels import deform
from pallas_kernels import warp


def _time(fn: Callable, *args, warmup: int, iters: int) -> float:
  """Median wall time in milliseconds of the jitted `fn(*args)`; the warm-up runs absorb compilation."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append((time.perf_counter() - start) * 1e3)
  return statistics.median(times)


def _print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
  widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
  print(f"\n{title}")
  for row in [header, ["-" * w for w in widths], *rows]:
    print("  ".join(str(v).rjust(w) for v, w in zip(row, widths)))


def bench_warp(args: argparse.Namespace) -> list[dict]:
  """Backward warp: Pallas vs reference, forward and forward+backward (image and flow gradients).

  `GB/s` divides the unavoidable traffic (read image and flow once, write the output; for forward+backward also read
  the output cotangent and write both gradients) by the time: a lower bound on the bandwidth actually used.
  """
  dtype = jnp.dtype(args.dtype)
  rng = np.random.default_rng(0)
  n, h, w = args.batch, args.height, args.width
  flow = jnp.asarray(rng.normal(scale=args.flow_scale, size=(n, h, w, 2)), jnp.float32)
  impls = {"pallas": lambda im, fl: warp.backward_warp(im, fl, padding=args.padding, impl="pallas"),
           "reference": lambda im, fl: warp.backward_warp(im, fl, padding=args.padding, impl="xla")}
  results = []
  for c in args.channels:
    image = jnp.asarray(rng.normal(size=(n, h, w, c)), dtype)
    cot = jnp.asarray(rng.normal(size=(n, h, w, c)), dtype)
    pix_bytes = n * h * w
    fwd_bytes = pix_bytes * (2 * c * dtype.itemsize + 8)
    bwd_bytes = fwd_bytes + pix_bytes * (2 * c * dtype.itemsize + 8)
    for impl in args.impls:
      fn = impls[impl]

      def fwd_bwd(im, fl, ct, f=fn):
        out, vjp = jax.vjp(f, im, fl)
        return out, vjp(ct)  # Returning `out` keeps the forward from being dead-code eliminated.

      modes = {"forward": (jax.jit(fn), (image, flow), fwd_bytes),
               "fwd+bwd": (jax.jit(fwd_bwd), (image, flow, cot), bwd_bytes)}
      for mode, (jitted, operands, nbytes) in modes.items():
        ms = _time(jitted, *operands, warmup=args.warmup, iters=args.iters)
        results.append(dict(c=c, mode=mode, impl=impl, ms=ms, gbps=nbytes / ms / 1e6))
  ref = {(r["c"], r["mode"]): r["ms"] for r in results if r["impl"] == "reference"}
  rows = [[r["c"], r["mode"], r["impl"], f"{r['ms']:.3f}", f"{r['gbps']:.1f}",
           f"{ref[(r['c'], r['mode'])] / r['ms']:.2f}x" if (r["c"], r["mode"]) in ref else "-"] for r in results]
  _print_table(f"backward_warp  N={n} H={h} W={w} {dtype.name} padding={args.padding} (median of {args.iters})",
               ["C", "mode", "impl", "ms", "GB/s", "speed-up vs ref"], rows)
  return results


def bench_deform(args: argparse.Namespace) -> list[dict]:
  """Deformable convolution: Pallas vs reference, forward and forward+backward (gradients of every input).

  `TFLOP/s` counts the implicit GEMM only (2 * N*H*W * k*k * Cin * Cout per forward, three times that for
  forward+backward); the bilinear sampling is extra work on top. `max rel diff` is the largest difference from the
  reference's output (forward) or gradients (forward+backward), relative to the reference's largest entry.
  """
  rng = np.random.default_rng(0)
  n, c, k, g = args.deform_batch, args.deform_channels, 3, args.deform_groups
  ops = {
      "v1": lambda impl: lambda x, o, m, w, b: deform.deform_conv(x, o, w, b, offset_groups=g, impl=impl),
      "v2": lambda impl: lambda x, o, m, w, b: deform.deform_conv(x, o, w, b, m, offset_groups=g, impl=impl),
      "squared": lambda impl: lambda x, o, m, w, b: deform.squared_deform_conv(x, o[..., :2], w, b, impl=impl),
  }
  impl_names = {"pallas": "pallas", "reference": "xla"}
  results = []
  for size in args.deform_sizes:
    h, w = (int(v) for v in size.lower().split("x"))
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    off = jnp.asarray(rng.normal(scale=args.deform_offset_scale, size=(n, h, w, 2 * g * k * k)), jnp.float32)
    mask = jnp.asarray(rng.uniform(size=(n, h, w, g * k * k)), jnp.float32)
    wgt = jnp.asarray(rng.normal(scale=(k * k * c) ** -0.5, size=(k, k, c, c)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=(c,)), jnp.float32)
    cot = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    flops = 2 * n * h * w * k * k * c * c
    for variant in args.deform_variants:
      want = {}
      for impl in sorted(args.impls, key=lambda i: i != "reference"):  # the reference first, for the diff column
        op = ops[variant](impl_names[impl])
        grads = lambda x, o, m, w, b, ct, op=op: jax.vjp(op, x, o, m, w, b)[1](ct)
        modes = {"forward": (jax.jit(op), (x, off, mask, wgt, bias), flops),
                 "fwd+bwd": (jax.jit(grads), (x, off, mask, wgt, bias, cot), 3 * flops)}
        for mode, (fn, operands, nflop) in modes.items():
          ms = _time(fn, *operands, warmup=args.warmup, iters=args.iters)
          got = jax.tree_util.tree_leaves(fn(*operands))
          diff = "-"
          if impl == "reference":
            want[mode] = got
          elif mode in want:
            scale = max(float(jnp.max(jnp.abs(r))) for r in want[mode])
            diff = f"{max(float(jnp.max(jnp.abs(a - r))) for a, r in zip(got, want[mode])) / scale:.1e}"
          results.append(dict(size=size, variant=variant, mode=mode, impl=impl, ms=ms, tflops=nflop / ms / 1e9,
                              diff=diff))
  ref = {(r["size"], r["variant"], r["mode"]): r["ms"] for r in results if r["impl"] == "reference"}
  rows = []
  for r in results:
    key = (r["size"], r["variant"], r["mode"])
    rows.append([r["size"], r["variant"], r["mode"], r["impl"], f"{r['ms']:.3f}", f"{r['tflops']:.2f}",
                 f"{ref[key] / r['ms']:.2f}x" if key in ref else "-", r["diff"]])
  _print_table(f"deform_conv  N={n} C={c} k={k} G={g} (squared: 1) float32 offsets ~N(0, "
               f"{args.deform_offset_scale}^2) "
               f"(median of {args.iters})",
               ["HxW", "variant", "mode", "impl", "ms", "TFLOP/s", "speed-up vs ref", "max rel diff"], rows)
  return results


SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {"warp": bench_warp, "deform": bench_deform}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
  p.add_argument("--batch", type=int, default=1)
  p.add_argument("--height", type=int, default=1080)
  p.add_argument("--width", type=int, default=1920)
  p.add_argument("--channels", type=int, nargs="+", default=[3, 64])
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--impls", nargs="+", default=["pallas", "reference"], choices=["pallas", "reference"])
  p.add_argument("--padding", default="zeros", choices=list(warp.PADDINGS))
  p.add_argument("--flow-scale", type=float, default=8.0, help="standard deviation of the random flow, pixels")
  p.add_argument("--deform-sizes", nargs="+", default=["64x64", "180x320"], help="HxW of the deform section")
  p.add_argument("--deform-batch", type=int, default=4)
  p.add_argument("--deform-channels", type=int, default=128, help="Cin = Cout of the deformable conv")
  p.add_argument("--deform-groups", type=int, default=8, help="deformable groups of v1 and v2 (DSFN: 8)")
  p.add_argument("--deform-variants", nargs="+", default=["v1", "v2", "squared"], choices=["v1", "v2", "squared"])
  p.add_argument("--deform-offset-scale", type=float, default=2.0, help="standard deviation of the offsets, pixels")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--iters", type=int, default=10)
  return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(argv)
  dev = jax.devices()[0]
  mode = "Triton lowering" if common.on_gpu() else "interpret mode (CPU timings of Pallas are not GPU-meaningful)"
  print(f"device: {dev.device_kind} ({dev.platform}), jax {jax.__version__}, Pallas in {mode}")
  for name in args.sections:
    SECTIONS[name](args)


if __name__ == "__main__":
  main(sys.argv[1:])
