"""Shared plumbing for the Pallas kernels: backend choice, the Triton call wrapper, CUDA lowering checks.

Every kernel in this package goes through :func:`triton_call`, the one place that knows how a kernel reaches the
Triton lowering. The Triton lowering is deprecated since jax 0.11 (its successor is official Triton through
`jax_triton`); when it moves, only this file changes.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import warnings
from typing import Any, Callable, Sequence

import jax
from jax.experimental import pallas as pl

with warnings.catch_warnings():  # jax 0.11+ warns that the Triton lowering is deprecated (module docstring)
  warnings.simplefilter("ignore", DeprecationWarning)
  from jax.experimental.pallas import triton as plt

# The custom call that carries a Triton kernel in the lowered HLO. jax exports its name from 0.11 on; jax 0.10 spells
# it only inside `jax._src.pallas.triton.pallas_call_registration`, so fall back to that literal there.
TRITON_CALL_TARGET = getattr(plt, "CUSTOM_CALL_TARGET_NAME", "__gpu$xla.gpu.triton")

IMPLS = ("auto", "pallas", "xla")
CPU_IMPL = "cpu"


def on_gpu() -> bool:
  return jax.default_backend() == "gpu"


# ---------------------------------------------------------------------------------------------------------------------
# What "auto" means on a GPU, per op and part (pallas_kernels/README.md, "impl='auto' on a GPU", and BENCHMARKS.md).
# No kernel has run on a GPU yet, so the defaults follow the compiled-code report (benchmarks/triton_report.py) and
# roofline arithmetic; `tools/gpu_check.py --auto-out FILE` derives the same table from measured timings, and such a
# file takes precedence when named by the PALLAS_KERNELS_AUTO environment variable (or pasted into AUTO_GPU_MEASURED).
# ---------------------------------------------------------------------------------------------------------------------

AUTO_GPU_DEFAULT = {
    # XLA's reference re-reads the whole (N,H,W,K) horizontal-kernel tensor for each of the K vertical taps (a scan):
    # >= 51 x 423 MB = 21.6 GB per 1080p forward, >= 6 ms on an H100's 3.35 TB/s, and about 4x that for the
    # backward; the Pallas kernels read each tensor once and are bounded by ~1.1 ms of fp32 FMAs (no spills, no
    # shuffles in the report).
    "sepconv": "pallas",
    # Forward, and the backward when the image is a constant (warping input frames): gathers only, one kernel,
    # no atomics, no spills in the report; XLA does the same gathers in more passes.
    "backward_warp": "pallas",
    # The backward when the image is differentiated: Pallas' Triton lowering emits every atomic_add as
    # `atom.global.gpu.acq_rel` (a GPU-scope fence per element; jax 0.10.2 exposes no relaxed form), 4*C per
    # pixel, where XLA's scatter-add adds the same elements with its own atomics (expected unfenced; no GPU has
    # checked it).
    "backward_warp.image_grad": "xla",
    # Forward: an implicit GEMM that gathers the samples on the fly; XLA's reference gathers one (N,H,W,C) sample
    # tensor per tap before its matmul (~2 GB of traffic at DSFN's size if materialised, as expected).
    "deform_conv": "pallas",
    # Backward: the Pallas input gradient is ~1.06 G fenced atomics per call at DSFN's size (4 corners x 9 taps x
    # 128 channels x 230 k pixels); XLA's scatter adds as many elements (expected unfenced). The whole backward goes
    # to XLA (its vjp of the reference, which recomputes the samples tap by tap), not the input gradient alone: the
    # weight gradient comes with it at little extra cost.
    "deform_conv.backward": "xla",
    # Squared offsets: one (k+1)^2 neighbourhood per window (16 fenced atomics per channel and pixel in the Pallas
    # input gradient against 36 for the DCN); same reasoning for both parts.
    "squared_deform_conv": "pallas",
    "squared_deform_conv.backward": "xla",
}
# Choices measured on a GPU (`tools/gpu_check.py --auto-out`), same keys; empty until a GPU has run the check.
AUTO_GPU_MEASURED: dict[str, str] = {}
AUTO_ENV = "PALLAS_KERNELS_AUTO"


@functools.lru_cache(maxsize=8)
def _auto_file(path: str, mtime: float) -> dict[str, str]:
  del mtime  # part of the cache key only: an edited file is read again
  with open(path, encoding="utf-8") as f:
    table = json.load(f)
  table = table.get("auto", table) if isinstance(table, dict) else table
  bad = {k: v for k, v in table.items() if k not in AUTO_GPU_DEFAULT or v not in ("pallas", "xla")}
  if bad:
    raise ValueError(f"{AUTO_ENV}={path}: unknown keys or values {bad}; keys are {sorted(AUTO_GPU_DEFAULT)}, "
                     "values 'pallas' or 'xla'")
  return table


def auto_table() -> dict[str, str]:
  """The table "auto" uses on a GPU: the defaults, updated by AUTO_GPU_MEASURED, updated by $PALLAS_KERNELS_AUTO."""
  table = {**AUTO_GPU_DEFAULT, **AUTO_GPU_MEASURED}
  path = os.environ.get(AUTO_ENV)
  if path:
    table.update(_auto_file(path, os.path.getmtime(path)))
  return table


def auto_choice(key: str) -> str:
  """ "pallas" or "xla": what "auto" runs on a GPU for `key` (an op, or "<op>.backward" / "<op>.image_grad")."""
  return auto_table()[key]


def resolve_impl(impl: str, *, has_cpu_impl: bool = False, op: str | None = None) -> str:
  """Maps `impl` to "pallas", "xla" or (ops with `has_cpu_impl`) "cpu".

  "auto" is, on a GPU backend, the choice of `auto_choice(op)` (Pallas for an op without an entry) and elsewhere the
  op's "cpu" formulation where it has one (plain `jnp` laid out for XLA:CPU, tested against the reference) and the
  `jnp` reference "xla" otherwise. Ops whose backward "auto" may run differently from their forward look up
  "<op>.backward" themselves.
  """
  allowed = IMPLS + ((CPU_IMPL,) if has_cpu_impl else ())
  if impl not in allowed:
    raise ValueError(f"impl must be one of {allowed}, got {impl!r}")
  if impl == "auto":
    if on_gpu():
      return auto_table().get(op, "pallas") if op else "pallas"
    return CPU_IMPL if has_cpu_impl else "xla"
  return impl


def split_vjp(forward: Callable, backward_of: Callable) -> Callable:
  """`forward(*args)` as the value, differentiated as `backward_of` (another implementation of the same function).

  The backward rule runs `jax.vjp(backward_of, *args)`: it recomputes `backward_of`'s forward (what its vjp needs)
  and then its backward. `args` are arrays or None; static arguments must be closed over.
  """
  @jax.custom_vjp
  def fn(*args):
    return forward(*args)

  def fn_fwd(*args):
    return forward(*args), args

  def fn_bwd(args, g):
    return jax.vjp(backward_of, *args)[1](g)

  fn.defvjp(fn_fwd, fn_bwd)
  return fn


def next_pow2(n: int) -> int:
  """Smallest power of two >= n (Triton block shapes must be powers of two)."""
  return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def cdiv(a: int, b: int) -> int:
  return -(-a // b)


def triton_call(kernel: Callable, *, out_shape: Any, grid: Sequence[int], in_specs: Any = None,
                out_specs: Any = None, num_warps: int = 4, num_stages: int = 2, name: str | None = None,
                interpret: bool | None = None, input_output_aliases: dict[int, int] | None = None) -> Callable:
  """`pl.pallas_call` with the Triton lowering on GPU and interpret mode elsewhere.

  Interpret mode is the only way to run a Pallas kernel on CPU; it is more permissive than the GPU lowering
  (see pallas_kernels/README.md), so each kernel also has a CUDA-lowering test (`lower_for_cuda`).
  """
  if interpret is None:
    interpret = not on_gpu()
  kwargs = {}
  if in_specs is not None:
    kwargs["in_specs"] = in_specs
  if out_specs is not None:
    kwargs["out_specs"] = out_specs
  if input_output_aliases:
    kwargs["input_output_aliases"] = input_output_aliases
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    return pl.pallas_call(kernel, out_shape=out_shape, grid=tuple(grid), name=name, interpret=interpret,
                          compiler_params=plt.CompilerParams(num_warps=num_warps, num_stages=num_stages),
                          **kwargs)


class CudaLoweringUnavailable(RuntimeError):
  """The private abstract-device API used to lower for CUDA on a CPU machine moved; tests skip on this."""


H100_DEVICE_KIND = "NVIDIA H100 80GB HBM3"


@contextlib.contextmanager
def _abstract_gpu_mesh():
  try:
    from jax._src.mesh import AbstractDevice  # pylint: disable=g-import-not-at-top
    dev = AbstractDevice(device_kind=H100_DEVICE_KIND, num_cores=132, platform="gpu")
    mesh = jax.sharding.AbstractMesh((1,), ("x",), abstract_device=dev)
    ctx = jax.sharding.use_abstract_mesh(mesh)
  except (ImportError, TypeError, AttributeError) as e:  # private API moved
    raise CudaLoweringUnavailable(f"abstract GPU device API unavailable in jax {jax.__version__}: {e}") from e
  with ctx:
    yield


def lowered_for_cuda(fn: Callable, *args: Any) -> jax.stages.Lowered:
  """`jax.jit(fn)` traced under an abstract H100 and lowered for CUDA, on any machine (see `lower_for_cuda`).

  Raises:
    CudaLoweringUnavailable: the private abstract-device API moved.
  """
  with _abstract_gpu_mesh():
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",))


def lower_for_cuda(fn: Callable, *args: Any, interpret: bool = False) -> str:
  """Lowers `fn(*args)` for CUDA on any machine and returns the StableHLO text.

  `args` may be arrays or `jax.ShapeDtypeStruct`s. The kernels must be built with `interpret=False` for this to
  exercise the real Triton lowering (block-shape rules, unsupported primitives); `fn` is responsible for that.
  """
  del interpret
  return lowered_for_cuda(fn, *args).as_text()


def count_triton_calls(hlo_text: str) -> int:
  """Number of Triton kernel launches in lowered HLO text (custom calls to `TRITON_CALL_TARGET`)."""
  return hlo_text.count(TRITON_CALL_TARGET)


del functools
