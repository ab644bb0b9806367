"""Where the time goes on CPU: per-op times of one benchmark case from a `jax.profiler` trace.

  python benchmarks/profile_cpu.py --case refin_train
  python benchmarks/profile_cpu.py --case sepconv_fwd_bwd --impl xla     # the jnp reference, for comparison

Runs the case (compiled and warmed up), traces `--steps` calls, and prints the time of every XLA:CPU thunk (fusions,
convolutions, copies, while loops, ...) summed over the runtime's threads and divided by the number of calls: first
by kind (the fusion name without its number), then the `--top` ops, each with the source op it came from (its HLO
`op_name`: e.g. `transpose(jvp(FlowInterpolator))/flow/unet/down5/conv1` is that layer's input gradient). On a
machine shared with other jobs the times include waiting for a core, so read the shares, not the absolute values.
"""
from __future__ import annotations

import argparse
import collections
import glob
import re
import sys
import tempfile
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jax_cases  # pylint: disable=g-import-not-at-top,wrong-import-position

_RUNTIME_EVENTS = ("ThunkExecutor", "Slinky", "ThreadpoolListener")


def op_times(trace_dir: str) -> collections.Counter:
  """Nanoseconds per HLO op name, summed over the XLA:CPU worker threads of every trace file in `trace_dir`."""
  per_op = collections.Counter()
  for path in glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True):
    for plane in jax.profiler.ProfileData.from_file(path).planes:
      for line in plane.lines:
        if not line.name.startswith("tf_XLAEigen"):
          continue
        for event in line.events:
          if not event.name.startswith(_RUNTIME_EVENTS) and not event.name.startswith("end: "):
            per_op[event.name] += event.duration_ns
  return per_op


def describe(hlo_text: str, op: str) -> str:
  """Shape and source (`op_name` metadata) of an HLO instruction, from the compiled module's text."""
  m = re.search(r"^\s*(?:ROOT )?%" + re.escape(op) + r" = (\S+) .*$", hlo_text, re.M)
  if not m:
    return ""
  src = re.search(r'op_name="([^"]*)"', m.group(0))
  return f"{m.group(1)}  {src.group(1) if src else ''}"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--case", default="refin_train", choices=sorted(jax_cases.CASES))
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--top", type=int, default=25)
  parser.add_argument("--impl", default="auto", help="sepconv cases: auto | cpu | xla")
  parser.add_argument("--no-donate", action="store_true", help="train cases: do not donate params/optimizer state")
  args = parser.parse_args(argv)

  builder = jax_cases.CASES[args.case][1]
  kwargs = {}
  if args.case.startswith("sepconv_f"):
    kwargs["impl"] = args.impl
  if args.case.endswith("_train") and args.no_donate:
    kwargs["donate"] = False
  case = builder(**kwargs)
  hlo = case.fn.lower(*case.args).compile().as_text()
  for _ in range(2):
    jax_cases.run(case)
  with tempfile.TemporaryDirectory() as trace_dir:
    with jax.profiler.trace(trace_dir):
      for _ in range(args.steps):
        jax_cases.run(case)
    per_op = op_times(trace_dir)
  total = sum(per_op.values())
  by_kind = collections.Counter()
  for name, ns in per_op.items():
    by_kind[re.sub(r"\.\d+$", "", name)] += ns
  print(f"{jax_cases.CASES[args.case][0]}: {total / args.steps / 1e6:.1f} ms of op time per call "
        f"(summed over threads; {jax.device_count()} device, load average {_load()})")
  print("\nby kind:")
  for kind, ns in by_kind.most_common(args.top):
    print(f"  {ns / args.steps / 1e6:9.1f} ms  {100 * ns / total:5.1f}%  {kind}")
  print(f"\ntop {args.top} ops:")
  for name, ns in per_op.most_common(args.top):
    print(f"  {ns / args.steps / 1e6:9.1f} ms  {100 * ns / total:5.1f}%  {name}  {describe(hlo, name)[:150]}")


def _load() -> str:
  try:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
  except OSError:
    return "unknown"


if __name__ == "__main__":
  main()
