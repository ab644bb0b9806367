"""Released weights: PyTorch state_dicts -> Flax parameter trees, without needing torch at training or test time.

Architectures (`ARCHS`), each the original code's state_dict layout (documented at the network's `TORCH_LAYOUT`)
and the jaxvfi module it fills:
  * "sepconv": sniklaus/sepconv-slomo `network-l1.pytorch` / `network-lf.pytorch` -> `jaxvfi.models.sepconv`.
  * "superslomo": avinashpaliwal/Super-SloMo `SuperSloMo.ckpt` -> `jaxvfi.models.superslomo.FlowInterpolator`.
  * "pwcnet": sniklaus/pytorch-pwc `network-default.pytorch` (ReFIn's flow module) -> `jaxvfi.models.pwcnet`.
  * "vgg19": torchvision `vgg19()` (features only) -> `jaxvfi.models.vgg.VGG19`.
  * "lpips_alex" / "lpips_vgg": the torchvision trunk plus the `lpips` package's v0.1 heads ->
    `jaxvfi.models.lpips.LPIPS`; without a heads file the converter reads the installed `lpips` package's.

Conversion and reading are `jaxvfi.torch_weights` (no torch needed, `.pth` files included), over the layout each
network declares (`TORCH_LAYOUT`); this module is the table of architectures and the command line.

Released weights need the original code's conventions where they differ from ours (SepConv's padding, upsampling
and channel order; Super-SloMo's last activation, warp sampling and mean): `RELEASED_MODEL_CONFIG[arch]` (each family's
`RELEASED_MODEL_CONFIG`) holds the `config.model` fields that switch them on, documented in `jaxvfi/models/sepconv.py`
and `superslomo.py`.

CLI (no torch needed: PyTorch files are read by `jaxvfi.torch_pickle`):
  python -m jaxvfi.weights convert --arch=sepconv --src=network-lf.pytorch --dst=sepconv-lf.npz
  python -m jaxvfi.weights convert --arch=superslomo --src=SuperSloMo.ckpt --dst=superslomo.npz
  python -m jaxvfi.weights convert --arch=pwcnet --src=network-default.pytorch --dst=pwcnet.npz
  python -m jaxvfi.weights convert --arch=vgg19 --src=vgg19-dcbb9e9d.pth --dst=vgg19.npz
  python -m jaxvfi.weights convert --arch=lpips_alex --src=alexnet-owt-7be5be79.pth [--src=.../v0.1/alex.pth] \
      --dst=lpips_alex.npz
  python -m jaxvfi.weights random --arch=sepconv --seed=0 --dst=random.npz      (random weights, for trying things)
The .npz holds the validated state_dict in PyTorch layout and naming (keys normalised, classifiers and metadata
dropped), not the Flax tree: it stays readable by any PyTorch tool, and `load_params` converts it on load.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, Mapping, Sequence

import numpy as np

from jaxvfi import torch_weights
from jaxvfi import utils
from jaxvfi.models import lpips
from jaxvfi.models import pwcnet
from jaxvfi.models import sepconv
from jaxvfi.models import superslomo
from jaxvfi.models import vgg

LAYOUTS: dict[str, torch_weights.TorchLayout] = {
    "sepconv": sepconv.TORCH_LAYOUT, "superslomo": superslomo.TORCH_LAYOUT, "pwcnet": pwcnet.TORCH_LAYOUT,
    "vgg19": vgg.TORCH_LAYOUT, "lpips_alex": lpips.TORCH_LAYOUTS["alex"], "lpips_vgg": lpips.TORCH_LAYOUTS["vgg"]}
ARCHS = tuple(LAYOUTS)
TORCH_SUFFIXES = torch_weights.TORCH_SUFFIXES

RELEASED_MODEL_CONFIG: dict[str, dict[str, Any]] = {
    "sepconv": sepconv.RELEASED_MODEL_CONFIG, "superslomo": superslomo.RELEASED_MODEL_CONFIG}
"""`config.model` fields that reproduce the original code around its released weights (sepconv-slomo `run.py` with
its default "improved" padding; Super-SloMo `model.py` / `video_to_slomo.py` on a GPU, i.e. with the mean)."""

read_state_dict = torch_weights.read_state_dict
convert_kernel = torch_weights.convert_kernel


def layout(arch: str) -> torch_weights.TorchLayout:
  """The `TorchLayout` of an architecture name; one ValueError for an unknown one."""
  if arch not in LAYOUTS:
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
  return LAYOUTS[arch]


def expected_shapes(arch: str) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Parameter shapes of the architecture's Flax module (`torch_weights.expected_shapes`)."""
  return torch_weights.expected_shapes(layout(arch))


def torch_layout(arch: str) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
  """PyTorch key -> (its shape in the original layout, the Flax parameter path it becomes)."""
  return torch_weights.torch_layout(layout(arch))


def convert_state_dict(arch: str, state: Mapping[str, Any]) -> dict[str, Any]:
  """The Flax `params` tree of `arch` from a state_dict (`torch_weights.convert_state_dict`)."""
  return torch_weights.convert_state_dict(layout(arch), state)


def random_state_dict(arch: str, seed: int) -> dict[str, np.ndarray]:
  """A random state_dict in `arch`'s original layout (`torch_weights.random_state_dict`)."""
  return torch_weights.random_state_dict(layout(arch), seed)


def load_params(arch: str, path: str | os.PathLike) -> dict[str, Any]:
  """The Flax `params` tree of `arch` from a weights file (e.g. the .npz `convert` wrote)."""
  return torch_weights.load_params(layout(arch), path)


def lpips_package_heads(net: str) -> str:
  """Path of the v0.1 linear heads inside the installed `lpips` package (found without importing it)."""
  spec = importlib.util.find_spec("lpips")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(f"LPIPS needs its linear heads: pass the `lpips` package's weights/v0.1/{net}.pth as a "
                            f"second --src, or `pip install lpips` so it is found")
  path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "v0.1", f"{net}.pth")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"the installed lpips package has no {path}")
  return path


def read_sources(arch: str, srcs: Sequence[str | os.PathLike]) -> dict[str, np.ndarray]:
  """Reads and merges the state_dicts of `srcs` (a key in two files is an error) and normalises their keys; LPIPS
  without heads among them gets the installed package's."""
  if not srcs:
    raise ValueError("no source file given")
  srcs = list(srcs)
  if arch.startswith("lpips_") and len(srcs) == 1:
    first = read_state_dict(srcs[0])
    if not any(k.startswith("lin") for k in first):
      srcs.append(lpips_package_heads(arch.split("_")[1]))
  merged, origin = {}, {}
  for src in srcs:
    for key, value in read_state_dict(src).items():
      if key in merged:
        raise ValueError(f"key {key} is in both {origin[key]} and {src}")
      merged[key], origin[key] = value, src
  return torch_weights.normalize_keys(layout(arch), merged)


def _write(arch: str, state: Mapping[str, np.ndarray], dst: str | os.PathLike) -> dict[str, np.ndarray]:
  if os.path.splitext(os.fspath(dst))[1].lower() != ".npz":
    raise ValueError(f"dst must end in .npz, got {dst}")
  convert_state_dict(arch, state)
  kept = {k: np.asarray(v, np.float32) for k, v in state.items() if k not in layout(arch).ignored}
  utils.atomic_write_npz(os.fspath(dst), kept)
  return kept


def convert_file(arch: str, src: str | os.PathLike | Sequence[str | os.PathLike],
                 dst: str | os.PathLike) -> dict[str, np.ndarray]:
  """Validates `src` (one file, or several merged) by a full conversion, then writes its normalised PyTorch-layout
  arrays to the .npz `dst` (atomically)."""
  srcs = [src] if isinstance(src, (str, os.PathLike)) else list(src)
  return _write(arch, read_sources(arch, srcs), dst)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxvfi.weights", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  convert = sub.add_parser("convert", help="PyTorch/safetensors/npz state_dict -> validated .npz (PyTorch layout)")
  convert.add_argument("--arch", required=True, choices=ARCHS)
  convert.add_argument("--src", required=True, action="append",
                       help="source file; repeat to merge several (LPIPS: trunk and heads)")
  convert.add_argument("--dst", required=True)
  random = sub.add_parser("random", help="a random-weights .npz in an architecture's layout (random_state_dict)")
  random.add_argument("--arch", required=True, choices=ARCHS)
  random.add_argument("--seed", type=int, default=0)
  random.add_argument("--dst", required=True)
  args = parser.parse_args(argv)
  if args.command == "convert":
    kept = convert_file(args.arch, args.src, args.dst)
  else:
    kept = _write(args.arch, random_state_dict(args.arch, args.seed), args.dst)
  print(f"{args.arch}: wrote {len(kept)} arrays, {sum(v.size for v in kept.values()):,} parameters to {args.dst}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
