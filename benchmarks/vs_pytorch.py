"""jaxvfi against PyTorch on the CPU: the same networks with the same weights, outputs checked equal, then timed.

  pip install -e ".[bench]"                                  # torch (CPU) is an optional extra
  python benchmarks/vs_pytorch.py                             # every case, 5 interleaved repeats
  python benchmarks/vs_pytorch.py --cases sepconv_fwd_bwd,superslomo_train --repeats 9
  python benchmarks/vs_pytorch.py --check-only                # equality checks only

For each case (`jax_cases.CASES`):
  1. Builds the jaxvfi function (library models, losses, optimizers; jitted, parameters and optimizer state donated)
     and its PyTorch copy (`torch_models`), and copies jaxvfi's random initialisation into the PyTorch model.
  2. Checks that the outputs agree (forward output; for training steps also the loss and every parameter gradient;
     for the separable convolution all three gradients) and stops with an error if they do not.
  3. Times both, interleaved (jaxvfi, PyTorch, jaxvfi, ...), after one warm-up call each (compilation excluded), each
     call ended by `block_until_ready` / returning the values. Training steps are real steps: each call takes the
     parameters and optimizer state the previous one returned.
  4. Prints min and median of each, their ratio (jaxvfi / PyTorch; below 1 means jaxvfi is faster), the thread
     counts and the load average before and after the case, and at the end a Markdown table for BENCHMARKS.md.

Threads: PyTorch gets `--threads` (default: the CPUs this process may use); XLA:CPU uses all of them. On a machine
shared with other jobs the ratios still compare like with like (interleaved runs see the same load), but both
frameworks lose more than their share: a loaded core makes every multi-threaded op wait for its slowest thread, and
PyTorch's many small ops (the separable convolution is K x K ops per image) suffer most. Say so with the numbers.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import jax_cases  # pylint: disable=g-import-not-at-top,wrong-import-position

try:
  import torch  # pylint: disable=g-import-not-at-top
except ImportError:  # pragma: no cover
  sys.exit("vs_pytorch.py needs PyTorch: pip install -e '.[bench]' (or pip install torch)")
import torch_models as tm  # pylint: disable=g-import-not-at-top,wrong-import-position

FORWARD_RTOL = 1e-4  # max |jax - torch| / max |torch|: float32 convolutions sum in different orders
# Gradients, per parameter tensor, as |g - g_torch64| / |g_torch64| (2-norms) against PyTorch in float64: a wrong
# layer or formula is off by O(1); float32 is not exact. Measured worst tensors: PyTorch float32 ~2e-5, jaxvfi
# float32 ~5e-4 (XLA:CPU's YNNPACK convolutions; 2e-4 with its Eigen ones), jaxvfi float64 ~2e-5.
GRAD_RTOL = 2e-3


def nchw(a) -> torch.Tensor:
  a = np.asarray(a)
  return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2) if a.ndim == 4 else a))


def rel_err(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def rel_norm_err(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


class TorchCase:
  """A PyTorch callable mirroring a jax_cases.Case, plus what the equality check compares."""

  def __init__(self, fn, check):
    self.fn = fn
    self.check = check  # () -> list of (name, rel_err, tolerance)


def _torch_batch(case):
  return {k: nchw(v) for k, v in case.batch.items()}


def torch_infer(case) -> TorchCase:
  model = tm.FlowInterpolator("superslomo").eval()
  tm.load_flax_params(model, case.params)
  b = _torch_batch(case)

  def fn():
    with torch.no_grad():
      return model(b["frame0"], b["frame1"], b["t"])["image"]

  def check():
    want = fn().numpy().transpose(0, 2, 3, 1)
    return [("image", rel_err(jax_cases.run(case), want), FORWARD_RTOL)]

  return TorchCase(fn, check)


def torch_train(name, case) -> TorchCase:
  if name == "sepconv_train":
    model = tm.SepConvInterpolator(51)
  else:
    model = tm.FlowInterpolator("refin" if name == "refin_train" else "superslomo")
  tm.load_flax_params(model, case.params)
  b = _torch_batch(case)
  if name == "refin_train":
    weights = dict(jax_cases.config("refin", "runlocal").loss.weights)
    weights.pop("perceptual", None)  # dropped by jaxvfi too without VGG weights
    loss_of = lambda preds, batch=b: tm.refin_loss(preds, batch, weights)
  else:
    loss_of = lambda preds, batch=b: tm.l1_loss(preds, batch)
  hp = case.extra["adam"]
  opt = torch.optim.Adam(model.parameters(), lr=hp["lr"], betas=(hp["b1"], hp["b2"]), eps=hp["eps"])

  def fn():
    opt.zero_grad(set_to_none=True)
    loss = loss_of(model(b["frame0"], b["frame1"], b["t"]))
    loss.backward()
    opt.step()
    return loss.detach()

  def check():
    """Forward and loss against PyTorch float32; gradients against PyTorch float64, as close as PyTorch float32's."""
    model.zero_grad(set_to_none=True)
    preds = model(b["frame0"], b["frame1"], b["t"])
    loss = loss_of(preds)
    loss.backward()
    g32 = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    model.double()
    b64 = {k: v.double() for k, v in b.items()}
    loss_of(model(b64["frame0"], b64["frame1"], b64["t"]), b64).backward()
    g64 = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.float()
    model.zero_grad(set_to_none=True)

    def jax_loss(p):
      jpreds = case.model.apply({"params": p}, case.batch, train=True)
      return case.loss_fn(jpreds, case.batch)[0], jpreds["image"]

    (jloss, jimage), jgrads = jax.jit(jax.value_and_grad(jax_loss, has_aux=True))(case.params)
    jerr = max((rel_norm_err(g, g64[n]), n) for n, g in tm.flax_grads_as_torch(jgrads).items())
    terr = max((rel_norm_err(g32[n], g64[n]), n) for n in g64)
    print(f"  PyTorch float32 gradients vs float64: worst {terr[0]:.1e} ({terr[1]})")
    return [("image", rel_err(jimage, preds["image"].detach().numpy().transpose(0, 2, 3, 1)), FORWARD_RTOL),
            ("loss", rel_err(jloss, loss.detach().numpy()), FORWARD_RTOL),
            (f"gradients vs PyTorch float64 (worst: {jerr[1]})", jerr[0], GRAD_RTOL)]

  return TorchCase(fn, check)


def torch_sepconv(name, case) -> TorchCase:
  x, kv, kh = (nchw(a) for a in case.args[:3])
  if name == "sepconv_fwd":
    def fn():
      with torch.no_grad():
        return tm.sepconv(x, kv, kh)

    def check():
      return [("out", rel_err(jax_cases.run(case), fn().numpy().transpose(0, 2, 3, 1)), FORWARD_RTOL)]

    return TorchCase(fn, check)

  g = nchw(case.args[3])
  leaves = [a.clone().requires_grad_() for a in (x, kv, kh)]

  def fn():
    for a in leaves:
      a.grad = None
    out = tm.sepconv(*leaves)
    out.backward(g)
    return out.detach(), leaves[0].grad, leaves[1].grad, leaves[2].grad

  def check():
    want = [a.numpy().transpose(0, 2, 3, 1) for a in fn()]
    got = jax_cases.run(case)
    return [(n, rel_err(a, b), FORWARD_RTOL) for n, a, b in zip(("out", "dx", "dkv", "dkh"), got, want)]

  return TorchCase(fn, check)


def build(name: str, sepconv_impl: str, donate: bool):
  kwargs = {"impl": sepconv_impl} if name.startswith("sepconv_f") else {}
  if name.endswith("_train"):
    kwargs["donate"] = donate
  case = jax_cases.CASES[name][1](**kwargs)
  if name == "superslomo_infer":
    return case, torch_infer(case)
  if name.endswith("_train"):
    return case, torch_train(name, case)
  return case, torch_sepconv(name, case)


def load() -> str:
  try:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
  except OSError:
    return "n/a"


def cpu_model() -> str:
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cases", default=",".join(jax_cases.CASES),
                      help=f"comma-separated, from {list(jax_cases.CASES)}")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls of each framework, interleaved")
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="PyTorch intra-op threads")
  parser.add_argument("--sepconv-impl", default="auto", help="jaxvfi sepconv impl for the sepconv_fwd* cases")
  parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each framework before timing")
  parser.add_argument("--no-donate", action="store_true", help="train steps without donating params/opt state")
  parser.add_argument("--check-only", action="store_true")
  args = parser.parse_args(argv)
  torch.set_num_threads(args.threads)
  cases = args.cases.split(",")
  unknown = sorted(set(cases) - set(jax_cases.CASES))
  if unknown:
    parser.error(f"unknown case(s) {unknown}")

  print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {cpu_model()}, "
        f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {platform.system()} {platform.release()}")
  print(f"jax {jax.__version__} (backend {jax.default_backend()}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}); "
        f"torch {torch.__version__}: {torch.get_num_threads()} intra-op threads, {torch.get_num_interop_threads()} "
        f"inter-op; numpy {np.__version__}; load average {load()}")
  print(f"jaxvfi from {jax_cases.ROOT}; sepconv impl {args.sepconv_impl!r}; train steps "
        f"{'without' if args.no_donate else 'with'} donated params/optimizer state; {args.warmup} warm-up + "
        f"{args.repeats} timed calls each, interleaved")
  rows = []
  for name in cases:
    desc = jax_cases.CASES[name][0]
    print(f"\n== {name}: {desc}", flush=True)
    t0 = time.perf_counter()
    jcase, tcase = build(name, args.sepconv_impl, not args.no_donate)
    for what, err, tol in tcase.check():
      status = "ok" if err <= tol else "MISMATCH"
      print(f"  check {what}: relative difference {err:.1e} (tolerance {tol:.0e}) {status}")
      if err > tol:
        sys.exit(f"{name}: jaxvfi and PyTorch disagree on {what}; not timing it")
    print(f"  built, compiled and checked in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.check_only:
      continue
    for _ in range(args.warmup):
      jax_cases.run(jcase)
      tcase.fn()
    load_before = load()
    tj, tt = [], []
    for _ in range(args.repeats):
      t = time.perf_counter()
      jax_cases.run(jcase)
      tj.append(time.perf_counter() - t)
      t = time.perf_counter()
      tcase.fn()
      tt.append(time.perf_counter() - t)
    row = dict(name=name, desc=desc, jmin=min(tj), jmed=statistics.median(tj), tmin=min(tt),
               tmed=statistics.median(tt), load=f"{load_before} -> {load()}")
    rows.append(row)
    print(f"  jaxvfi  min {row['jmin']:.3f} s  median {row['jmed']:.3f} s")
    print(f"  PyTorch min {row['tmin']:.3f} s  median {row['tmed']:.3f} s")
    print(f"  jaxvfi / PyTorch: median {row['jmed'] / row['tmed']:.2f}, min {row['jmin'] / row['tmin']:.2f}  "
          f"(load average {row['load']})", flush=True)

  if rows:
    print("\n| case | jaxvfi min / median | PyTorch min / median | jaxvfi / PyTorch (median) | load average |")
    print("|---|---|---|---|---|")
    for r in rows:
      print(f"| {r['desc']} | {r['jmin']:.3g} s / {r['jmed']:.3g} s | {r['tmin']:.3g} s / {r['tmed']:.3g} s | "
            f"{r['jmed'] / r['tmed']:.2f} | {r['load']} |")


if __name__ == "__main__":
  main()
