r"""Checks every Pallas kernel on a GPU, times it against `impl="xla"`, and times one train step per paper.

On a GPU (issue 28; the exact command and the carried folder are in BENCHMARKS.md, "GPU kernels")::

  python tools/gpu_check.py --out gpu_check.jsonl                     # all phases, about 8 minutes on an H100
  python tools/gpu_check.py --phases timing --sizes 1080p --out ...   # rerun a part

On CPU, the whole script at tiny sizes with the kernels in interpret mode (tests/test_gpu_check.py runs this)::

  python tools/gpu_check.py --smoke

Phases (`--phases`, comma-separated; default all):
  values   every kernel with `impl="pallas"` (on a GPU: compiled, `interpret=False`; off-GPU: interpret mode) against
           its `jnp` reference, the values and every gradient (one random cotangent): odd sizes, bf16, composite
           dilation, flows far outside the frame and many flows onto one pixel (the image gradient's atomics), DCN
           v1/v2 with deformable groups and squared DCN, under float32 and under the default matmul precision (TF32
           on a GPU); also the separable convolution's Mosaic GPU forward (`sepconv_mosaic`, not in --smoke).
  timing   each op, forward and forward + backward, `impl="pallas"` against `impl="xla"`, at `--sizes` (256, 1080p,
           4k): median wall time of `--reps` runs after one compile run. The warp also with the flow differentiated
           alone (a constant image, as when warping input frames), and sepconv's Mosaic GPU forward as impl
           "mosaic" (not in --smoke). Then one "auto" record: the table of what
           `impl="auto"` should run per op and part (`auto_from_timings`), written to `--auto-out` if given; run
           with PALLAS_KERNELS_AUTO=<that file>, `impl="auto"` follows it (pallas_kernels/README.md).
  train    one train step per paper (its config with `impl`/`warp_impl` set to "pallas" and to "xla", the same
           parameters and batch): loss and gradient norm of each, and their relative difference, compile and step time.

Output: one JSON object per line and per check, printed and appended to `--out` (flushed at once, so a timeout keeps
what ran). Every record has "phase", "name", "ok" and "seconds"; a check that raises records "error" and the
script goes on. The exit status is 1 if any check failed, else 0. The last line is a summary record (phase
"summary").
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as `python tools/gpu_check.py` from anywhere: the repository's packages come first
  sys.path.insert(0, ROOT)

import pallas_kernels  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import separable  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import separable_mosaic  # pylint: disable=g-import-not-at-top,wrong-import-position

try:  # The kernel phases need only jax and pallas_kernels; the train phase needs the whole jaxvfi stack.
  from jaxvfi import config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
  from jaxvfi import families  # pylint: disable=g-import-not-at-top,wrong-import-position
  JAXVFI_IMPORT_ERROR = None
except ImportError as e:  # reported by every train record instead of stopping the kernel checks
  config_lib = models = train = None
  JAXVFI_IMPORT_ERROR = f"{type(e).__name__}: {e}"

PHASES = ("values", "timing", "train")
SIZES = {"256": (256, 256), "1080p": (1080, 1920), "4k": (2160, 3840)}
SMOKE_SIZES = {"smoke": (12, 20)}
PAPERS = ("refin", "superslomo", "sepconv", "sepconv_gan", "dsfn", "sdan")
# --smoke runs every phase and code path, but (CPU compiles of interpret-mode kernels take seconds each) one value case
# per kernel family, one op's timing and one paper's train step unless --papers says otherwise.
SMOKE_VALUE_CASES = ("sepconv_composite_p1", "warp_zeros_converging", "deform_conv_v2_g2", "squared_deform_conv")
SMOKE_PAPERS = ("superslomo",)

# Relative tolerances, as max |pallas - reference| / max |reference| per output and gradient. float32 sums of up to
# 51 x 51 products reorder freely between the kernels and XLA; bf16 inputs are accumulated in fp32 by both but rounded
# on output; TF32 dots keep 10 mantissa bits.
TOL = {"float32": 1e-4, "bfloat16": 2e-2, "tf32": 1e-2}


class Recorder:
  """Prints each record as one JSON line and appends it to `path`, flushing both at once."""

  def __init__(self, path: str | None):
    self.path = path
    self.failed = 0
    self.count = 0
    self.records = []

  def emit(self, record: dict[str, Any]) -> None:
    self.records.append(record)
    self.count += 1
    self.failed += 0 if record.get("ok", True) else 1
    line = json.dumps(record, default=_jsonable)
    print(line, flush=True)
    if self.path:
      with open(self.path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()

  def check(self, phase: str, name: str, fn: Callable[[], dict[str, Any]], **fields) -> None:
    """Runs `fn` (returning the record's measurements, with "ok" unless it is always true) and emits one record."""
    start = time.perf_counter()
    try:
      result = fn()
      record = {"phase": phase, "name": name, **fields, "ok": True, **result}
    except Exception as e:  # pylint: disable=broad-except
      record = {"phase": phase, "name": name, **fields, "ok": False, "error": f"{type(e).__name__}: {e}"[:2000],
                "traceback": traceback.format_exc(limit=6)[-3000:]}
      jax.clear_caches()  # an OOM or a failed compile must not poison the next check
    record["seconds"] = round(time.perf_counter() - start, 3)
    self.emit(record)


def _jsonable(x):
  if isinstance(x, (np.floating, np.integer)):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  return str(x)


def _block(tree):
  return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree)


def _rel_err(a, b) -> float:
  a = np.asarray(jnp.asarray(a, jnp.float32), np.float64)
  b = np.asarray(jnp.asarray(b, jnp.float32), np.float64)
  if not np.all(np.isfinite(a)):
    return math.inf
  scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
  return float(np.max(np.abs(a - b))) / scale if a.size else 0.0


# ----------------------------------------------------------------------------------------------------------------------
# Cases: (name, op(impl) -> fn(*args), args, differentiable argnums, tolerance key, matmul precision or None)
# ----------------------------------------------------------------------------------------------------------------------


def _rand(key, shape, dtype=jnp.float32, scale=1.0):
  return (jax.random.normal(key, shape, jnp.float32) * scale).astype(dtype)


def sepconv_args(key, n, h, w, c, k, dtype=jnp.float32, ext=None):
  ext = k if ext is None else ext
  kx, kv, kh = jax.random.split(key, 3)
  return (_rand(kx, (n, h + ext - 1, w + ext - 1, c), dtype), _rand(kv, (n, h, w, k), dtype, 0.2),
          _rand(kh, (n, h, w, k), dtype, 0.2))


def warp_args(key, n, h, w, c, flow_scale=3.0, dtype=jnp.float32):
  ki, kf = jax.random.split(key)
  return _rand(ki, (n, h, w, c), dtype), _rand(kf, (n, h, w, 2), jnp.float32, flow_scale)


def converging_flow(n, h, w, target=(1, 2)):
  """Every pixel's flow lands 0.25 px from one pixel: all samples share four corners (duplicate atomics)."""
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
  flow = jnp.stack([target[1] + 0.25 - xs, target[0] + 0.25 - ys], axis=-1)
  return jnp.broadcast_to(flow, (n, h, w, 2))


def deform_args(key, n, h, w, cin, cout, groups, modulated, squared=False, k=3):
  kx, ko, km, kw, kb = jax.random.split(key, 5)
  x = _rand(kx, (n, h, w, cin))
  offset = _rand(ko, (n, h, w, 2 if squared else 2 * groups * k * k), jnp.float32, 2.0)
  weight = _rand(kw, (k, k, cin, cout), jnp.float32, 1.0 / math.sqrt(k * k * cin))
  bias = _rand(kb, (cout,))
  mask = jax.nn.sigmoid(_rand(km, (n, h, w, groups * k * k))) if modulated else None
  return x, offset, weight, bias, mask


def value_cases(smoke: bool) -> list[dict[str, Any]]:
  """The `values` phase's cases. Sizes are odd (no block divides them); smoke shrinks them to interpret-mode sizes."""
  key = jax.random.PRNGKey(0)
  keys = iter(jax.random.split(key, 32))
  cases = []
  k, (h, w), c = (5, (7, 9), 2) if smoke else (51, (37, 45), 3)
  x, kv, kh = sepconv_args(next(keys), 1, h, w, c, k)
  sep = lambda impl: lambda a, b, cc: pallas_kernels.sepconv(a, b, cc, impl=impl)
  cases.append(dict(name="sepconv", op=sep, args=(x, kv, kh), tol="float32"))
  if not smoke:
    xb, kvb, khb = (a.astype(jnp.bfloat16) for a in (x, kv, kh))
    cases.append(dict(name="sepconv_bf16", op=sep, args=(xb, kvb, khb), tol="bfloat16"))
    cases.append(dict(name="sepconv_batch2", op=sep, args=sepconv_args(next(keys), 2, 33, 70, 3, 51),
                      tol="float32"))
    # The Mosaic GPU forward (issue 28, item 5) in the "pallas" slot; its backward is the reference's.
    mosaic = lambda impl: separable_mosaic.sepconv_mosaic if impl == "pallas" else sep("xla")
    cases.append(dict(name="sepconv_mosaic", op=mosaic, args=(x, kv, kh), tol="float32"))
  d_in, d_out = (3, 2) if smoke else (25, 26)
  offs = separable.composite_offsets(d_in, d_out, 0)
  xc, kvc, khc = sepconv_args(next(keys), 1, h, w, c, len(offs), ext=max(offs) + 1)
  for pattern in (0, 1):
    comp = lambda impl, p=pattern: lambda a, b, cc: pallas_kernels.sepconv_composite(a, b, cc, d_in, d_out, p,
                                                                                       impl=impl)
    cases.append(dict(name=f"sepconv_composite_p{pattern}", op=comp, args=(xc, kvc, khc), tol="float32"))

  (h, w), c = ((6, 7), 3) if smoke else ((67, 93), 3)
  for padding in ("zeros", "border"):
    wp = lambda impl, p=padding: lambda a, b: pallas_kernels.backward_warp(a, b, padding=p, impl=impl)
    cases.append(dict(name=f"warp_{padding}", op=wp, args=warp_args(next(keys), 2, h, w, c), tol="float32"))
    image, _ = warp_args(next(keys), 2, h, w, c)
    cases.append(dict(name=f"warp_{padding}_far_outside", op=wp,
                      args=(image, _rand(next(keys), (2, h, w, 2), jnp.float32, 3.0 * max(h, w))), tol="float32"))
    cases.append(dict(name=f"warp_{padding}_converging", op=wp, args=(image, converging_flow(2, h, w)),
                      tol="float32"))
  if not smoke:
    image, flow = warp_args(next(keys), 1, 64, 80, 64)
    warp = lambda impl: lambda a, b: pallas_kernels.backward_warp(a, b, impl=impl)
    cases.append(dict(name="warp_zeros_c64", op=warp, args=(image, flow), tol="float32"))
    cases.append(dict(name="warp_zeros_bf16", op=warp, args=(image.astype(jnp.bfloat16), flow), tol="bfloat16"))

  (h, w), cin, cout, groups = ((5, 6), 32, 16, 2) if smoke else ((23, 37), 128, 64, 8)
  precisions = ("float32",) if smoke else ("float32", "default")
  for modulated in (False, True):
    x, offset, weight, bias, mask = deform_args(next(keys), 2, h, w, cin, cout, groups, modulated)
    args = (x, offset, weight, bias) + ((mask,) if modulated else ())
    dcn = lambda impl, g=groups: lambda *a: pallas_kernels.deform_conv(*a[:4], a[4] if len(a) > 4 else None,
                                                                      offset_groups=g, impl=impl)
    for precision in precisions:
      cases.append(dict(name=f"deform_conv_{'v2' if modulated else 'v1'}_g{groups}", op=dcn, args=args,
                        tol="float32" if precision == "float32" else "tf32", precision=precision))
  x, offset, weight, bias, _ = deform_args(next(keys), 2, h, w, cin // 2, cout, 1, False, squared=True)
  for precision in precisions:
    cases.append(dict(name="squared_deform_conv", args=(x, offset, weight, bias),
                      op=lambda impl: lambda *a: pallas_kernels.squared_deform_conv(*a, impl=impl),
                      tol="float32" if precision == "float32" else "tf32", precision=precision))
  if smoke:  # interpret-mode compiles dominate on CPU: one case per kernel family keeps the CI test short
    cases = [c for c in cases if c["name"] in SMOKE_VALUE_CASES]
  return cases


def check_values(case: dict[str, Any]) -> dict[str, Any]:
  """Values and the VJP of one random cotangent, Pallas against the reference; ok when every error is within tol."""
  args = case["args"]
  precision = case.get("precision", "float32")
  with jax.default_matmul_precision(precision):
    results = {}
    for impl in ("pallas", "xla"):
      fn = case["op"](impl)
      out, vjp = jax.vjp(fn, *args)
      g = _rand(jax.random.PRNGKey(1), out.shape, out.dtype)
      results[impl] = _block((out, vjp(g)))
  (out_p, grads_p), (out_x, grads_x) = results["pallas"], results["xla"]
  errors = {"out": _rel_err(out_p, out_x)}
  for i, (gp, gx) in enumerate(zip(grads_p, grads_x)):
    errors[f"d_arg{i}"] = _rel_err(gp, gx)
  tol = TOL[case["tol"]]
  return {"ok": all(e <= tol for e in errors.values()), "rel_err": errors, "tol": tol,
          "dtype": str(args[0].dtype), "precision": precision, "shapes": [list(a.shape) for a in args]}


# ----------------------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------------------


def timing_cases(sizes: dict[str, tuple[int, int]], smoke: bool) -> list[dict[str, Any]]:
  """Ops at each size: SepConv at K = 51 (5 in smoke) with C = 3, the warp with C = 3, DSFN's deformable conv (128
  channels, 8 groups, v1) and SDAN's squared deformable conv (64 channels) on feature maps at a quarter of the size,
  as the models run them."""
  cases = []
  key = jax.random.PRNGKey(2)
  k = 5 if smoke else 51
  for size_name, (h, w) in sizes.items():
    ks = jax.random.split(jax.random.fold_in(key, h * 10007 + w), 4)
    cases.append(dict(name="sepconv", size=size_name, args=sepconv_args(ks[0], 1, h, w, 3, k),
                      op=lambda impl: lambda a, b, c: pallas_kernels.sepconv(a, b, c, impl=impl)))
    if not smoke:  # the Mosaic GPU forward, timed beside the same case's "pallas" and "xla" rows
      cases.append(dict(name="sepconv", size=size_name, args=cases[-1]["args"], impls=("mosaic",),
                        op=lambda impl: separable_mosaic.sepconv_mosaic))
    cases.append(dict(name="backward_warp", size=size_name, args=warp_args(ks[1], 1, h, w, 3),
                      op=lambda impl: lambda a, b: pallas_kernels.backward_warp(a, b, impl=impl)))
    # Warping an input frame: only the flow is differentiated (the Pallas backward without atomics).
    cases.append(dict(name="backward_warp_flow_only", size=size_name, args=warp_args(ks[1], 1, h, w, 3),
                      argnums=(1,), op=lambda impl: lambda a, b: pallas_kernels.backward_warp(a, b, impl=impl)))
    fh, fw = max(h // 4, 4), max(w // 4, 4)
    cin, groups = (32, 2) if smoke else (128, 8)
    x, offset, weight, bias, _ = deform_args(ks[2], 1, fh, fw, cin, cin, groups, False)
    cases.append(dict(name="deform_conv_v1", size=size_name, args=(x, offset, weight, bias),
                      op=lambda impl, g=groups: lambda *a: pallas_kernels.deform_conv(*a, offset_groups=g, impl=impl)))
    cin = 32 if smoke else 64
    x, offset, weight, bias, _ = deform_args(ks[3], 1, fh, fw, cin, cin, 1, False, squared=True)
    cases.append(dict(name="squared_deform_conv", size=size_name, args=(x, offset, weight, bias),
                      op=lambda impl: lambda *a: pallas_kernels.squared_deform_conv(*a, impl=impl)))
  if smoke:  # the timing code path once, on the op that compiles fastest in interpret mode
    cases = [c for c in cases if c["name"].startswith("backward_warp")]
  return cases


def _time(fn: Callable, args, reps: int) -> dict[str, float]:
  start = time.perf_counter()
  _block(fn(*args))
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    _block(fn(*args))
    times.append(time.perf_counter() - start)
  return {"compile_s": round(compile_s, 3), "median_ms": round(1e3 * float(np.median(times)), 4),
          "min_ms": round(1e3 * min(times), 4)}


def time_op(case: dict[str, Any], impl: str, reps: int) -> dict[str, Any]:
  fn = case["op"](impl)
  fwd = jax.jit(fn)
  loss = lambda *a: jnp.sum(fn(*a).astype(jnp.float32))
  argnums = case.get("argnums", tuple(range(len(case["args"]))))
  fwd_bwd = jax.jit(jax.value_and_grad(loss, argnums=argnums))
  return {"forward": _time(fwd, case["args"], reps), "forward_backward": _time(fwd_bwd, case["args"], reps),
          "argnums": list(argnums), "shapes": [list(a.shape) for a in case["args"]]}


# What "auto" runs on a GPU (`pallas_kernels.common.AUTO_GPU_DEFAULT`), decided from this run's timings: per key, the
# timing case and the time compared ("forward", "backward" = forward_backward - forward, or "forward_backward").
AUTO_EVIDENCE = {
    "sepconv": ("sepconv", "forward_backward"),
    "backward_warp": ("backward_warp_flow_only", "forward_backward"),
    "backward_warp.image_grad": ("backward_warp", "backward"),
    "deform_conv": ("deform_conv_v1", "forward"),
    "deform_conv.backward": ("deform_conv_v1", "backward"),
    "squared_deform_conv": ("squared_deform_conv", "forward"),
    "squared_deform_conv.backward": ("squared_deform_conv", "backward"),
}


def auto_from_timings(records: list[dict[str, Any]]) -> dict[str, Any]:
  """The "auto" table measured by the timing records: for each key of AUTO_EVIDENCE whose case ran (ok) under both
  impls, the faster impl at the largest size measured (by pixel count), with the milliseconds compared."""
  times = {}  # (case, size) -> impl -> {"forward": ms, "forward_backward": ms}
  for r in records:
    if r.get("phase") == "timing" and r.get("ok") and "forward" in r:
      times.setdefault((r["name"], r["size"]), {})[r["impl"]] = {
          "forward": r["forward"]["median_ms"], "forward_backward": r["forward_backward"]["median_ms"]}
  pixels = lambda size: np.prod((SIZES | SMOKE_SIZES).get(size, (0, 0)))
  table, evidence = {}, {}
  for key, (case, part) in AUTO_EVIDENCE.items():
    sizes = [size for (name, size), by_impl in times.items() if name == case and {"pallas", "xla"} <= set(by_impl)]
    if not sizes:
      continue
    size = max(sizes, key=pixels)
    ms = {}
    for impl, t in times[(case, size)].items():
      ms[impl] = t["forward_backward"] - t["forward"] if part == "backward" else t[part]
    table[key] = "pallas" if ms["pallas"] <= ms["xla"] else "xla"
    evidence[key] = {"case": case, "size": size, "part": part, "pallas_ms": round(ms["pallas"], 4),
                     "xla_ms": round(ms["xla"], 4)}
  return {"auto": table, "evidence": evidence}


# ----------------------------------------------------------------------------------------------------------------------
# One train step per paper. Everything that depends on jaxvfi's trainer API is in `paper_train_step`.
# ----------------------------------------------------------------------------------------------------------------------

# Per paper: the config argument, the model field that picks the kernels' impl, overrides for the GPU run (the papers'
# training crops where the config leaves the size to the data) and for --smoke (tiny models and crops).
PAPER_CONFIGS = {
    "refin": ("", "warp_impl", {"data.crop_size": 256},
              {"data.crop_size": 16, "model.flow": "unet", "model.unet_width": 0.125,
               "loss.weights": {"l1": 204.0, "warp": 102.0}}),
    "superslomo": ("", "warp_impl", {"data.crop_size": 352},
                   {"data.crop_size": 16, "model.unet_width": 0.125, "loss.weights": {"l1": 204.0, "warp": 102.0}}),
    "sepconv": ("", "impl", {}, {"data.crop_size": 16, "model.kernel_size": 5}),
    "sepconv_gan": ("", "impl", {}, {"model.input_size": 32, "model.kernel_size": 5}),
    "dsfn": ("", "impl", {}, {"model.levels": 1, "data.augmentation_args": {"crop_size": 16}}),
    "sdan": ("", "impl", {}, {"data.augmentation_args": {"crop_size": 4}, "model.features": 8, "model.num_blocks": 1}),
}


def paper_train_step(paper: str, impl: str, batch_size: int, reps: int, smoke: bool) -> dict[str, Any]:
  """One train step of configs/<paper>.py with the model's kernels on `impl`: loss, gradient norm and timings.

  The only function of this tool that uses jaxvfi's trainer API (config loading, family hooks, train setup), so a
  change of that API changes this function alone. The batch is the family's example batch filled with uniform
  noise in [0, 1) (seeded, the same for both impls), the parameters come from `setup.init` with a fixed seed, and the
  step is timed from that same state each time (it is not carried), so both impls see identical inputs.
  """
  if JAXVFI_IMPORT_ERROR:
    raise RuntimeError(f"jaxvfi does not import here: {JAXVFI_IMPORT_ERROR}")
  arg, impl_field, gpu_overrides, smoke_overrides = PAPER_CONFIGS[paper]
  overrides = {f"model.{impl_field}": impl, **(smoke_overrides if smoke else gpu_overrides)}
  config = config_lib.load_config(os.path.join(ROOT, "configs", f"{paper}.py"), arg or None, overrides)
  family = families.of(config)
  model = family.build(config.model)
  loss_fn, _ = family.make_loss_fn(config)
  setup = family.make_train_setup(config, model, loss_fn, family.example_batch(config), total_steps=1000,
                                  steps_per_epoch=100.0)
  state = setup.init(jax.random.PRNGKey(0))  # not jitted here: init_params compiles itself (faster on CPU)
  batch = family.example_batch(config, batch_size)
  keys = jax.random.split(jax.random.PRNGKey(3), len(batch))
  batch = {name: (jax.random.uniform(k, v.shape, v.dtype) if v.ndim >= 4 else v)
           for k, (name, v) in zip(keys, sorted(batch.items()))}
  step = jax.jit(lambda s, b, r: setup.step(s, b, r))
  timing = _time(step, (state, batch, jax.random.PRNGKey(4)), reps)
  _, metrics = step(state, batch, jax.random.PRNGKey(4))
  metrics = jax.device_get(metrics)
  grad_norm = metrics.get("grad_norm", metrics.get("generator_grad_norm"))
  return {"loss": float(metrics["loss"]), "grad_norm": None if grad_norm is None else float(grad_norm),
          "batch_shapes": {k: list(v.shape) for k, v in batch.items()}, **timing}


# ----------------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------------


def run(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--smoke", action="store_true", help="CPU, interpret mode, tiny sizes (CI)")
  p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {PHASES}")
  p.add_argument("--sizes", default=",".join(SIZES), help=f"timing sizes, subset of {tuple(SIZES)}")
  p.add_argument("--papers", default=None, help=f"train-phase papers, subset of {PAPERS} (default all; smoke: "
                                                f"{','.join(SMOKE_PAPERS)})")
  p.add_argument("--reps", type=int, default=None, help="timed runs per measurement (default 10, smoke 1)")
  p.add_argument("--batch-size", type=int, default=None, help="train-phase batch (default 4, smoke 1)")
  p.add_argument("--out", default=None, help="JSON-lines file to append to (default: stdout only)")
  p.add_argument("--auto-out", default=None,
                 help="write the 'auto' table the timings decide (JSON) here; PALLAS_KERNELS_AUTO=<file> makes "
                      "impl='auto' use it")
  a = p.parse_args(argv)
  phases = [x for x in a.phases.split(",") if x]
  papers = [x for x in (a.papers or ",".join(SMOKE_PAPERS if a.smoke else PAPERS)).split(",") if x]
  for name, allowed in (("phase", PHASES), ("paper", PAPERS)):
    bad = [x for x in (phases if name == "phase" else papers) if x not in allowed]
    if bad:
      p.error(f"unknown {name}(s) {bad}; choose from {allowed}")
  if a.smoke:
    sizes = SMOKE_SIZES
  else:
    bad = [s for s in a.sizes.split(",") if s not in SIZES]
    if bad:
      p.error(f"unknown size(s) {bad}; choose from {tuple(SIZES)}")
    sizes = {s: SIZES[s] for s in a.sizes.split(",") if s}
  reps = a.reps or (1 if a.smoke else 10)
  batch_size = a.batch_size or (1 if a.smoke else 4)

  rec = Recorder(a.out)
  dev = jax.devices()[0]
  on_gpu = jax.default_backend() == "gpu"
  rec.emit({"phase": "env", "name": "environment", "ok": a.smoke or on_gpu, "backend": jax.default_backend(),
            "device": dev.device_kind, "jax": jax.__version__, "python": platform.python_version(),
            "smoke": a.smoke, "interpret": not on_gpu, "phases": phases, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            **({} if a.smoke or on_gpu else {"error": "no GPU backend: the kernels would run in interpret mode; "
                                                    "use --smoke on CPU"})})
  if not (a.smoke or on_gpu):
    return 1
  start = time.perf_counter()
  if "values" in phases:
    for case in value_cases(a.smoke):
      rec.check("values", case["name"], lambda c=case: check_values(c))
  if "timing" in phases:
    for case in timing_cases(sizes, a.smoke):
      for impl in case.get("impls", ("pallas", "xla")):
        rec.check("timing", case["name"], lambda c=case, i=impl: time_op(c, i, reps), size=case["size"], impl=impl)

    def auto(out=a.auto_out):
      result = auto_from_timings(rec.records)
      if out:
        with open(out, "w", encoding="utf-8") as f:
          json.dump({**result, "device": dev.device_kind, "jax": jax.__version__, "smoke": a.smoke,
                     "time": time.strftime("%Y-%m-%d %H:%M:%S")}, f, indent=1)
      return result
    rec.check("auto", "auto_table", auto)
  if "train" in phases:
    for paper in papers:
      results = {}
      for impl in ("pallas", "xla"):
        def one(paper=paper, impl=impl):
          r = paper_train_step(paper, impl, batch_size, reps, a.smoke)
          results[impl] = r
          return {**r, "ok": bool(np.isfinite(r["loss"]))}
        rec.check("train", paper, one, impl=impl)
      if len(results) == 2:
        rec.check("train", paper, lambda r=results: _compare_steps(r), impl="pallas_vs_xla")
  rec.emit({"phase": "summary", "name": "summary", "ok": rec.failed == 0, "checks": rec.count, "failed": rec.failed,
            "seconds": round(time.perf_counter() - start, 3)})
  return 1 if rec.failed else 0


def _compare_steps(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
  """Relative differences of loss and gradient norm between the pallas and xla steps, and the step-time ratio."""
  rel = lambda a, b: abs(a - b) / max(abs(b), 1e-30)
  p, x = results["pallas"], results["xla"]
  out = {"loss_rel_diff": rel(p["loss"], x["loss"]),
         "speedup_xla_over_pallas": x["median_ms"] / max(p["median_ms"], 1e-9)}
  if p["grad_norm"] is not None and x["grad_norm"] is not None:
    out["grad_norm_rel_diff"] = rel(p["grad_norm"], x["grad_norm"])
  # TF32 dots and reordered sums: a train step's loss agrees to about 1e-3 under the default precision.
  out["ok"] = out["loss_rel_diff"] <= 1e-2 and out.get("grad_norm_rel_diff", 0.0) <= 5e-2
  return out


if __name__ == "__main__":
  sys.exit(run())
