"""Shared plumbing for the Pallas kernels: backend choice, the Triton call wrapper, CUDA lowering checks.

Every kernel in this package goes through :func:`triton_call`, the one place that knows how a kernel reaches the
Triton lowering. The Triton lowering is deprecated since jax 0.11 (its successor is official Triton through
`jax_triton`); when it moves, only this file changes.
"""
from __future__ import annotations

import contextlib
import functools
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


def resolve_impl(impl: str, *, has_cpu_impl: bool = False) -> str:
  """Maps `impl` to "pallas", "xla" or (ops with `has_cpu_impl`) "cpu".

  "auto" is Pallas on a GPU backend; elsewhere it is the op's "cpu" formulation where it has one (plain `jnp` laid
  out for XLA:CPU, tested against the reference) and the `jnp` reference "xla" otherwise.
  """
  allowed = IMPLS + ((CPU_IMPL,) if has_cpu_impl else ())
  if impl not in allowed:
    raise ValueError(f"impl must be one of {allowed}, got {impl!r}")
  if impl == "auto":
    return "pallas" if on_gpu() else (CPU_IMPL if has_cpu_impl else "xla")
  return impl


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
