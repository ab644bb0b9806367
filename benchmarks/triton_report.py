r"""What the GPU compiler makes of each Pallas kernel, on a CPU-only machine (issue 28, item 2).

Lowers each kernel at real sizes for CUDA under an abstract H100 (`pallas_kernels.common.lowered_for_cuda`), takes
the Triton IR out of each Triton custom call, compiles it with the PyPI `triton` wheel for sm_90a (H100) and sm_89
(L4 / RTX 40) with the call's num_warps and num_stages, runs the wheel's `ptxas -v` on the PTX, and prints one table
row per kernel: registers, spill stores/loads (bytes), shared memory (bytes, Triton's allocation) and the static counts
of shuffles (`shfl.sync`), atomics (`atom.`/`red.`) and FMAs (`fma.`) in the PTX, for the whole kernel: static
instruction counts, not per executed iteration, so a ratio such as shuffles per FMA compares kernels and versions
of one kernel, not absolute work.

  pip install triton            # optional dependency of this script only (it ships ptxas)
  python benchmarks/triton_report.py [--arch 90a,89] [--only sepconv]

Sizes: SepConv at 1080p (1920x1080, K = 51, C = 3); the backward warp at 1080p with C = 3, differentiated for
both arguments and for the flow only (a constant image: warping input frames); DSFN's deformable conv
(128 channels, 8 groups, v1, 180x320 feature maps: 720p / 4); a modulated DCN (v2) with 64 channels in one group at
128x128 (SDAN's non-squared variant, `offsets="dcn"`); SDAN's squared deformable conv (64 channels, 128x128).
Uses private jax APIs (the abstract device, the Triton dialect's context) and exits with a message if they moved.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import warnings

import jax
import jax.numpy as jnp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from pallas_kernels import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import deform  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import separable  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import warp  # pylint: disable=g-import-not-at-top,wrong-import-position

try:
  from jax._src.lib.mlir import ir  # pylint: disable=g-import-not-at-top
  from jax._src.pallas.triton import lowering as triton_lowering  # pylint: disable=g-import-not-at-top
except ImportError as e:  # private jax API
  sys.exit(f"triton_report: jax {jax.__version__} moved a private API this script needs: {e}")

try:
  import triton  # pylint: disable=g-import-not-at-top
  from triton.backends.compiler import GPUTarget  # pylint: disable=g-import-not-at-top
  from triton.backends.nvidia import compiler as nvidia_compiler  # pylint: disable=g-import-not-at-top
except ImportError:
  triton = GPUTarget = nvidia_compiler = None

f32 = jnp.float32
S = jax.ShapeDtypeStruct


def _grad(fn, nargs, argnums=None):
  return jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(nargs)) if argnums is None else argnums)


def cases():
  """(label, function built with interpret=False, abstract args): forward and forward + backward of each op."""
  h, w, k, c = 1080, 1920, 51, 3
  sep = lambda x, kv, kh: separable.sepconv(x, kv, kh, impl="pallas", interpret=False)
  sep_args = (S((1, h + k - 1, w + k - 1, c), f32), S((1, h, w, k), f32), S((1, h, w, k), f32))
  wp = lambda im, fl: warp.backward_warp_pallas(im, fl, interpret=False)
  wp_args = (S((1, h, w, 3), f32), S((1, h, w, 2), f32))
  dh, dw = 180, 320
  dcn = lambda x, o, wt: deform.deform_conv_pallas(x, o, wt, offset_groups=8, interpret=False)
  dcn_args = (S((1, dh, dw, 128), f32), S((1, dh, dw, 2 * 8 * 9), f32), S((3, 3, 128, 128), f32))
  dcn2 = lambda x, o, wt, m: deform.deform_conv_pallas(x, o, wt, mask=m, interpret=False)
  dcn2_args = (S((1, 128, 128, 64), f32), S((1, 128, 128, 18), f32), S((3, 3, 64, 64), f32),
               S((1, 128, 128, 9), f32))
  sq = lambda x, o, wt: deform.squared_deform_conv_pallas(x, o, wt, interpret=False)
  sq_args = (S((1, 128, 128, 64), f32), S((1, 128, 128, 2), f32), S((3, 3, 64, 64), f32))
  return [("sepconv 1080p K=51", _grad(sep, 3), sep_args),
          ("warp 1080p C=3", _grad(wp, 2), wp_args),
          ("warp 1080p C=3, flow grad only", _grad(wp, 2, argnums=1), wp_args),  # warping input frames
          ("DCN DSFN 180x320 C=128 G=8", _grad(dcn, 3), dcn_args),
          ("DCN v2 128x128 C=64 G=1", _grad(dcn2, 4), dcn2_args),
          ("squared DCN SDAN 128x128 C=64", _grad(sq, 3), sq_args)]


def triton_kernels(lowered) -> list[dict]:
  """Each Triton custom call of a lowered module: name, TTIR text, num_warps, num_stages."""
  found = []

  def walk(op):
    for region in op.regions:
      for block in region.blocks:
        for child in block.operations:
          child = child.operation
          if child.name == "stablehlo.custom_call" and \
             ir.StringAttr(child.attributes["call_target_name"]).value == common.TRITON_CALL_TARGET:
            found.append(child)
          walk(child)

  module = lowered.compiler_ir("stablehlo")
  walk(module.operation)
  ctx = triton_lowering._new_ir_context()  # pylint: disable=protected-access  (jax's Triton dialect, private)
  out = []
  for op in found:
    cfg = op.attributes["mhlo.backend_config"]
    with ctx:
      ttir = ir.Module.parse(ir.StringAttr(cfg["ir"]).value_bytes).operation.get_asm(enable_debug_info=False)
    out.append({"name": ir.StringAttr(cfg["name"]).value, "ttir": ttir,
                "num_warps": ir.IntegerAttr(cfg["num_warps"]).value,
                "num_stages": ir.IntegerAttr(cfg["num_stages"]).value})
  return out


# Largest shared memory per block (opt-in), CUDA programming guide: 227 KB on sm_90, 99 KB on sm_89 (and sm_86).
SMEM_LIMIT = {"90a": 227 * 1024, "89": 99 * 1024}


def _ptxas(cap: int) -> str:
  """The ptxas that Triton itself uses for compute capability `cap` (the wheel ships two: sm_90+ needs the newer)."""
  return nvidia_compiler.get_ptxas(cap).path


def compile_stats(kernel: dict, arch: str) -> dict:
  """Compiles one kernel's TTIR for `arch` ("90a", "89") and reads ptxas -v and the PTX."""
  cap = int(arch.rstrip("a"))
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, f"{kernel['name']}.ttir")
    with open(path, "w", encoding="utf-8") as f:
      f.write(kernel["ttir"])
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      compiled = triton.compile(path, target=GPUTarget("cuda", cap, 32),
                                options={"num_warps": kernel["num_warps"], "num_stages": kernel["num_stages"]})
    ptx = compiled.asm["ptx"]
    ptx_path = os.path.join(tmp, "k.ptx")
    with open(ptx_path, "w", encoding="utf-8") as f:
      f.write(ptx)
    gpu = f"sm_{arch}"
    r = subprocess.run([_ptxas(cap), "-v", f"--gpu-name={gpu}", ptx_path, "-o", os.path.join(tmp, "k.cubin")],
                       capture_output=True, text=True, check=True)
  info = r.stderr
  num = lambda pat: int(m.group(1)) if (m := re.search(pat, info)) else 0
  return {"regs": num(r"Used (\d+) registers"), "spill_st": num(r"(\d+) bytes spill stores"),
          "spill_ld": num(r"(\d+) bytes spill loads"), "smem": int(compiled.metadata.shared),
          "shfl": len(re.findall(r"\bshfl\.sync", ptx)), "atomics": len(re.findall(r"\b(?:atom|red)\.", ptx)),
          "fma": len(re.findall(r"\bfma\.", ptx))}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--arch", default="90a,89", help="comma-separated sm architectures")
  p.add_argument("--only", default="", help="run only the cases whose label contains this text (e.g. sepconv)")
  a = p.parse_args(argv)
  if triton is None:
    print("triton_report: needs the `triton` wheel (pip install triton)", file=sys.stderr)
    return 2
  archs = [x for x in a.arch.split(",") if x]
  print(f"jax {jax.__version__}, triton {triton.__version__}; static PTX counts per kernel (module docstring)\n")
  print("| op | kernel | warps/stages | arch | regs | spill st/ld B | smem B | shfl | atomics | fma | shfl/fma |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")  # smem over the arch's per-block limit is marked "(over)"
  for label, fn, args in cases():
    if a.only not in label:
      continue
    try:
      kernels = triton_kernels(common.lowered_for_cuda(fn, *args))
    except common.CudaLoweringUnavailable as e:
      print(f"triton_report: {e}", file=sys.stderr)
      return 2
    for kernel in kernels:
      for arch in archs:
        try:
          s = compile_stats(kernel, arch)
        except Exception as e:  # pylint: disable=broad-except
          detail = e.stderr if isinstance(e, subprocess.CalledProcessError) else str(e)
          print(f"| {label} | {kernel['name']} | | sm_{arch} | compile failed: {type(e).__name__}: "
                f"{' '.join(str(detail).split())[:200]} |||||||", flush=True)
          continue
        ratio = f"{s['shfl'] / s['fma']:.2f}" if s["fma"] else "-"
        over = " (over)" if s["smem"] > SMEM_LIMIT.get(arch, 1 << 30) else ""
        print(f"| {label} | {kernel['name']} | {kernel['num_warps']}/{kernel['num_stages']} | sm_{arch} | "
              f"{s['regs']} | {s['spill_st']}/{s['spill_ld']} | {s['smem']}{over} | {s['shfl']} | {s['atomics']} | "
              f"{s['fma']} | {ratio} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
