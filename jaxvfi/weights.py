"""Released weights: PyTorch state_dicts -> Flax parameter trees, without needing torch at training or test time.

Architectures (`ARCHS`), each the original code's state_dict layout (documented at the network's `TORCH_LAYOUT`)
and the jaxvfi module it fills:
  * "sepconv": sniklaus/sepconv-slomo `network-l1.pytorch` / `network-lf.pytorch` -> `jaxvfi.models.sepconv`.
  * "superslomo": avinashpaliwal/Super-SloMo `SuperSloMo.ckpt` -> `jaxvfi.models.superslomo.FlowInterpolator`.
  * "pwcnet": sniklaus/pytorch-pwc `network-default.pytorch` (ReFIn's flow module) -> `jaxvfi.models.pwcnet`;
    used as `--config.model.flow_weights=`.
  * "vgg19": torchvision `vgg19()` (features only; `vgg19-dcbb9e9d.pth`, or SepConv-GAN's Caffe VGG-19
    `vgg19-d01eb7cb.pth` from jcjohnson/pytorch-vgg) -> `jaxvfi.models.vgg.VGG19`; used as `--config.loss.vgg_weights=`
    and `--config.model.vgg_weights=`.
  * "lpips_alex" / "lpips_vgg": the torchvision trunk plus the `lpips` package's v0.1 heads ->
    `jaxvfi.models.lpips.LPIPS`; without a heads file the converter reads the installed `lpips` package's; used as
    `--config.lpips_weights=`.

Conversion and reading are `jaxvfi.torch_weights` (no torch needed, `.pth` files included), over the layout each
network declares (`TORCH_LAYOUT`); this module is the table of architectures and the command line.

Released weights need the original code's conventions where they differ from ours (SepConv's padding, upsampling
and channel order; Super-SloMo's last activation, warp sampling and mean): `RELEASED_MODEL_CONFIG[arch]` (each family's
`RELEASED_MODEL_CONFIG`) holds the `config.model` fields that switch them on, documented in `jaxvfi/models/sepconv.py`
and `superslomo.py`.

Released models by name (`jaxvfi.released`: the authors' URLs and sha256): `fetch` downloads, checks, converts and
caches a one-file model (`jaxvfi.model_file`), and prints its path; a second fetch reads the cache:
  python -m jaxvfi.weights fetch sepconv-lf [--sha256=HEX] [--src=FILE]      (python -m jaxvfi.weights list)
A training workdir of any family becomes one file that the tools take with --weights=FILE:
  python -m jaxvfi.weights export --workdir=W --dst=model.safetensors

CLI for files you have (no torch needed). `--dst` ending in .safetensors writes a model file with metadata (arch,
the sources' sha256, the family's conventions and model config); .npz writes the bare arrays as before:
  python -m jaxvfi.weights convert --arch=sepconv --src=network-lf.pytorch --dst=sepconv-lf.npz
  python -m jaxvfi.weights convert --arch=superslomo --src=SuperSloMo.ckpt --dst=superslomo.npz
  python -m jaxvfi.weights convert --arch=pwcnet --src=network-default.pytorch --dst=pwcnet.npz
  python -m jaxvfi.weights convert --arch=vgg19 --src=vgg19-dcbb9e9d.pth --dst=vgg19.npz
  python -m jaxvfi.weights convert --arch=lpips_alex --src=alexnet-owt-7be5be79.pth [--src=.../v0.1/alex.pth] \
      --dst=lpips_alex.npz
  python -m jaxvfi.weights random --arch=sepconv --seed=0 --dst=random.npz      (random weights, for trying things)
The .npz (and a converted .safetensors) holds the validated state_dict in PyTorch layout and naming (keys normalised,
classifiers and metadata dropped), not the Flax tree: it stays readable by any PyTorch tool, and `load_params`
converts it on load.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import model_file
from jaxvfi import released
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


def released_model_config(arch: str) -> ml_collections.ConfigDict | None:
  """`config.model` of the family that `arch` fills (the packaged defaults with its `RELEASED_MODEL_CONFIG`), or None
  for a network part (PWC-Net, VGG-19, LPIPS)."""
  if arch not in RELEASED_MODEL_CONFIG:
    return None
  model = config_lib.packaged_config(arch).model.copy_and_resolve_references()
  model.update(RELEASED_MODEL_CONFIG[arch])
  return model


def sha256_of(path: str | os.PathLike) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def write_converted(arch: str, state: Mapping[str, np.ndarray], dst: str | os.PathLike,
                    source_sha256: Sequence[str] = (), name: str | None = None) -> dict[str, np.ndarray]:
  """Validates `state` by a full conversion, then writes its arrays (PyTorch layout, the layout's ignored keys
  dropped) atomically: a .npz holds the arrays only, a .safetensors is a model file (`jaxvfi.model_file`) whose
  metadata gives the arch, the sources' sha256, the family's conventions and its model config."""
  suffix = os.path.splitext(os.fspath(dst))[1].lower()
  if suffix not in (".npz", model_file.SUFFIX):
    raise ValueError(f"dst must end in .npz or {model_file.SUFFIX}, got {dst}")
  convert_state_dict(arch, state)
  kept = {k: np.asarray(v, np.float32) for k, v in state.items() if k not in layout(arch).ignored}
  if suffix == ".npz":
    utils.atomic_write_npz(os.fspath(dst), kept)
  else:
    model = released_model_config(arch)
    model_file.write(dst, kept, layout="torch", arch=arch, family=arch if model is not None else None,
                     model_config=model, released_model_config=RELEASED_MODEL_CONFIG.get(arch),
                     source_sha256=tuple(source_sha256), extra={"name": name} if name else None)
  return kept


def convert_file(arch: str, src: str | os.PathLike | Sequence[str | os.PathLike],
                 dst: str | os.PathLike) -> dict[str, np.ndarray]:
  """Validates `src` (one file, or several merged) by a full conversion, then writes its normalised PyTorch-layout
  arrays to the .npz `dst` (atomically)."""
  srcs = [src] if isinstance(src, (str, os.PathLike)) else list(src)
  return write_converted(arch, read_sources(arch, srcs), dst, source_sha256=[sha256_of(p) for p in srcs])


# ----------------------------------------------------------------------------------------------------------------
# Released models by name, and one-file models.


def fetch(name: str, sha256: Sequence[str] | None = None, mirror: str | None = None,
          local: Mapping[str, str] | None = None, force: bool = False) -> str:
  """The cached converted file of the released model `name` (`jaxvfi.released`), fetched first if not cached.

  Args:
    name: a name of `released.MODELS` (e.g. "sepconv-lf").
    sha256: `--sha256` values for files without a stored sha256 (`released.parse_sha256`); files whose name carries
      a sha256 prefix (torchvision's) are checked against it without one.
    mirror: a base URL that serves the files by name instead of the authors' URLs (default $JAXVFI_WEIGHTS_MIRROR).
    local: filename -> a local copy to use instead of downloading it (still checked).
    force: fetch again even when cached.

  Returns:
    The path of `<cache>/<name>.safetensors`.
  Raises:
    released.FetchError: unknown name, no checkable sha256, a failed or cut download, a wrong checksum or a full disk;
      nothing is left in the cache (`jaxvfi.released`).
  """
  entry = released.get(name)
  dst = released.cached_path(name)
  if os.path.isfile(dst) and not force:
    return dst
  want = released.expected_sha256(entry, released.parse_sha256(sha256, entry))
  with released.download_folder() as folder:
    downloaded = released.download(entry, folder, want, mirror=mirror, local=local)
    try:
      write_converted(entry.arch, read_sources(entry.arch, [path for path, _ in downloaded]), dst,
                      source_sha256=[digest for _, digest in downloaded], name=name)
    except OSError as e:
      raise released.FetchError(f"{name}: writing {dst} failed ({utils.error_reason(e)}); nothing cached") from e
    except ValueError as e:
      raise released.FetchError(f"{name}: the downloaded files do not convert to {entry.arch} "
                                f"({utils.error_reason(e)}); nothing cached") from e
  return dst


def resolve(name_or_path: str, **fetch_args) -> str:
  """A weights file's path: an existing file as it is, a released name fetched (`fetch`); one error otherwise."""
  if os.path.isfile(name_or_path):
    return name_or_path
  if name_or_path in released.MODELS:
    return fetch(name_or_path, **fetch_args)
  raise FileNotFoundError(f"--weights={name_or_path}: neither a file nor a released model "
                          f"({', '.join(released.NAMES)})")


def model_file_params(mf: model_file.ModelFile) -> dict[str, Any]:
  """The Flax `params` tree of a model file (a "torch"-layout file converted through its arch's layout)."""
  if mf.layout == "flax":
    return model_file.unflatten(mf.arrays)
  if not mf.arch:
    raise ValueError(f"{mf.path}: a torch-layout model file names no arch")
  return convert_state_dict(mf.arch, mf.arrays)


def load_model_file(path: str | os.PathLike, config: ml_collections.ConfigDict | None = None):
  """(module, params, config, step) of a model file: the family's network built from `config` (default the file's,
  `ModelFile.config`) with the file's parameters, checked against the shapes that config builds.

  Raises:
    FileNotFoundError: no file.  ValueError: not a model file, a network part, or parameters that do not fit.
  """
  mf = model_file.read(path)
  config = mf.config() if config is None else config
  module = families.build_model(config.model)
  params = model_file_params(mf)
  diffs = checkpoints.structure_differences(params, checkpoints.params_template(module, config))
  if diffs:
    raise ValueError(f"{mf.path}: the parameters do not fit the {config.model.get('name')} model its config builds "
                     f"({len(diffs)} differences: {'; '.join(diffs[:3])}{'; ...' if len(diffs) > 3 else ''})")
  return module, params, config, mf.step


def export(workdir: str, dst: str | os.PathLike) -> tuple[int, int]:
  """Writes the params of a training workdir's latest intact checkpoint, with its config.json's `model` and `data`
  sections, as a "flax"-layout model file (any family: the network is rebuilt from the config to restore).

  Returns:
    (step, number of parameters).
  Raises:
    FileNotFoundError: no config.json or no checkpoint.  ValueError: a checkpoint that does not fit its config.
  """
  _, params, config, step = checkpoints.load_trained(workdir)
  arrays = model_file.flax_arrays(params)
  model_file.write(dst, arrays, layout="flax", family=config.model.get("name"), model_config=config.model,
                   data_config=config.data, extra={"step": str(step), "workdir": os.path.abspath(workdir)})
  return step, sum(int(v.size) for v in arrays.values())


def list_table() -> str:
  """`python -m jaxvfi.weights list`: a header line, then one line per released model (name, architecture, cached or
  not, what fetch checks without --sha256, licence)."""
  rows = [("NAME", "ARCH", "CACHED", "CHECK", "LICENCE")]
  for entry in released.MODELS.values():
    checks = {s.check for s in entry.sources}
    if None in checks:
      check = "--sha256 needed"
    elif checks == {"sha256"}:
      check = "sha256"
    else:
      check = "sha256 prefix"
    cached = "yes" if os.path.isfile(released.cached_path(entry.name)) else "no"
    rows.append((entry.name, entry.arch, cached, check, entry.licence))
  widths = [max(len(row[i]) for row in rows) for i in range(4)]
  return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def _fetch_line(name: str, path: str) -> str:
  entry = released.get(name)
  return f"{name}: {path} ({entry.arch}{', family ' + entry.family if entry.family else ''}; licence: {entry.licence})"


def main(argv: list[str] | None = None) -> int:
  """The command line (module docstring); returns the exit status. Errors are one `jaxvfi: error:` line, status 1."""
  parser = argparse.ArgumentParser(prog="jaxvfi-weights", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  convert = sub.add_parser("convert", help="PyTorch/safetensors/npz state_dict -> validated .npz or model file")
  convert.add_argument("--arch", required=True, choices=ARCHS)
  convert.add_argument("--src", required=True, action="append",
                       help="source file; repeat to merge several (LPIPS: trunk and heads)")
  convert.add_argument("--dst", required=True, help="a .npz (arrays only) or a .safetensors model file")
  random = sub.add_parser("random", help="a random-weights file in an architecture's layout (random_state_dict)")
  random.add_argument("--arch", required=True, choices=ARCHS)
  random.add_argument("--seed", type=int, default=0)
  random.add_argument("--dst", required=True)
  fetch_parser = sub.add_parser("fetch", help="download, check, convert and cache a released model")
  fetch_parser.add_argument("name", choices=released.NAMES)
  fetch_parser.add_argument("--sha256", action="append", default=None,
                            help="HEX or FILE=HEX: the sha256 you verified of a file jaxvfi stores none for "
                            "(python -m jaxvfi.weights list: CHECK)")
  fetch_parser.add_argument("--src", action="append", default=None,
                            help="a local copy of the source file, any name (e.g. one a browser downloaded), still "
                            "checked; for a model of several files, one --src per file under its published name")
  fetch_parser.add_argument("--mirror", default=None, help=f"base URL serving the files (default ${released.MIRROR_ENV})")
  fetch_parser.add_argument("--force", action="store_true", help="fetch again even when cached")
  sub.add_parser("list", help="the released models: name, architecture, cached or not, what fetch checks, licence")
  export_parser = sub.add_parser("export", help="a training workdir's latest checkpoint -> one model file")
  export_parser.add_argument("--workdir", required=True)
  export_parser.add_argument("--dst", required=True, help="the .safetensors to write")
  args = parser.parse_args(argv)
  try:
    if args.command == "fetch":
      local = released.local_sources(released.get(args.name), args.src)
      print(_fetch_line(args.name, fetch(args.name, args.sha256, args.mirror, local, args.force)))
      return 0
    if args.command == "list":
      print(list_table())
      return 0
    if args.command == "export":
      step, count = export(args.workdir, args.dst)
      print(f"{args.workdir}: wrote step {step}, {count:,} parameters to {args.dst}")
      return 0
    if args.command == "convert":
      kept = convert_file(args.arch, args.src, args.dst)
    else:
      kept = write_converted(args.arch, random_state_dict(args.arch, args.seed), args.dst)
  except utils.USER_ERRORS as e:
    print(f"jaxvfi: error: {utils.error_reason(e)}", file=sys.stderr)
    return 1
  print(f"{args.arch}: wrote {len(kept)} arrays, {sum(v.size for v in kept.values()):,} parameters to {args.dst}")
  return 0


def console_main() -> None:
  """The `jaxvfi-weights` console script."""
  sys.exit(main())


if __name__ == "__main__":
  sys.exit(main())
