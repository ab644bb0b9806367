"""Released weights: PyTorch state_dicts -> Flax parameter trees, without needing torch at training or test time.

Architectures (`ARCHS`), each the original code's state_dict layout and the jaxvfi module it fills:
  * "sepconv": sniklaus/sepconv-slomo `network-l1.pytorch` / `network-lf.pytorch` (Niklaus et al. 2017), keys
    `netConv1.0.weight`, ..., `netUpsample5.1.weight`, ..., `netHorizontal2.7.bias`; the files still use the older
    `moduleConv1.0.weight` names, which `run.py` renames "module" -> "net" on load, as done here. Target:
    `jaxvfi.models.sepconv.SepConvInterpolator` (21,675,452 parameters, tree `{"sepconv": ...}`).
  * "superslomo": avinashpaliwal/Super-SloMo `SuperSloMo.ckpt`, a dict holding `state_dictFC` (the flow UNet, 6->4)
    and `state_dictAT` (the arbitrary-time interpolation UNet, 20->5) beside training metadata (epoch, losses, ...),
    which is not weights and is skipped; keys are flattened to `state_dictFC.conv1.weight`, ...,
    `state_dictAT.up5.conv2.bias`. Target: `jaxvfi.models.superslomo.FlowInterpolator(variant="superslomo")`
    (19,794,116 + 19,816,357 parameters, tree `{"flow": {"unet": ...}, "interpolation": ...}`).
  * "pwcnet": sniklaus/pytorch-pwc (the flow module of ReFIn, footnote 1), keys `netExtractor.netOne.0.weight`,
    ..., `netTwo.netUpflow.weight`, ..., `netRefiner.netMain.12.bias`; the released `network-default.pytorch` uses
    the older `module...` names, renamed like the SepConv ones. Target: `jaxvfi.models.pwcnet.PWCNet` (9,374,274
    parameters in 126 arrays, 63 layers).
  * "vgg19": torchvision `vgg19()` state_dict, keys `features.{j}.weight/bias` for the 16 convs. The classifier
    (`classifier.{0,3,6}`, the fully connected head) is dropped on purpose: perceptual losses use the features only.
    Target: `jaxvfi.models.vgg.VGG19` (20,024,384 parameters).
  * "lpips_alex" / "lpips_vgg": LPIPS v0.1 (`jaxvfi.models.lpips.LPIPS(net="alex" | "vgg")`) from two files: the
    torchvision trunk (`alexnet-owt-7be5be79.pth`: `features.{0,3,6,8,10}`; `vgg16-397923af.pth`: the 13 convs of
    `features`; classifiers dropped) and the linear heads that ship inside the `lpips` package
    (`lpips/weights/v0.1/{alex,vgg}.pth`: `lin{0..4}.model.1.weight`, (1, C, 1, 1), no bias). Without a heads file
    the converter reads the installed `lpips` package's.

Conversion: Conv2d weight (out, in, kh, kw) -> Flax (kh, kw, in, out). ConvTranspose2d weight (in, out, kh, kw) ->
(kh, kw, out, in) for `nn.ConvTranspose(transpose_kernel=True)`, which flips the kernel itself: with that flag
`lax.conv_transpose` is the gradient of a conv, exactly PyTorch's definition, so no manual flip is needed
(tests/test_weights.py checks both against NumPy loops on the original weights, tests/test_parity.py whole networks
against the original code's outputs). Every source key is used exactly once (besides the documented classifier
keys): missing or unused keys raise one ValueError listing them, and shapes that differ from the original layout one
ValueError naming each key, its shape and the expected one.

Released weights need the original code's conventions where they differ from ours (SepConv's padding, upsampling
and channel order; Super-SloMo's last activation, warp sampling and mean): `RELEASED_MODEL_CONFIG[arch]` holds the
`config.model` fields that switch them on, documented in `jaxvfi/models/sepconv.py` and `superslomo.py`.

Readers: `.npz` (numpy) and `.safetensors` (the `safetensors.numpy` API) need no torch; `.pth` / `.pt` /
`.pytorch` / `.ckpt` are read with torch, imported only then (torch is not a dependency of jaxvfi).

CLI, run once where torch is installed, so training and inference need no torch:
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
import math
import os
import sys
from typing import Any, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

ARCHS = ("sepconv", "superslomo", "pwcnet", "vgg19", "lpips_alex", "lpips_vgg")
TORCH_SUFFIXES = (".pth", ".pt", ".pytorch", ".ckpt")
_PWC_NAMES = ("One", "Two", "Thr", "Fou", "Fiv", "Six")  # the port's level and layer names, 1..6

RELEASED_MODEL_CONFIG: dict[str, dict[str, Any]] = {
    "sepconv": dict(kernel_size=51, padding="replicate", upsample_align_corners=True, bgr=True, input_multiple=128,
                    input_border=0),
    "superslomo": dict(flow="unet", interpolation_backbone="unet", warp_padding="zeros", unet_output_leaky_relu=True,
                       warp_sample_shift=-0.5, input_mean=(0.429, 0.431, 0.397), warp_centered=True),
}
"""`config.model` fields that reproduce the original code around its released weights (sepconv-slomo `run.py` with
its default "improved" padding; Super-SloMo `model.py` / `video_to_slomo.py` on a GPU, i.e. with the mean)."""

# Layer table: PyTorch layer prefix -> (Flax module path, kind); kind "conv" / "deconv" have weight and bias,
# "conv_nobias" only a weight.
Layers = dict[str, tuple[tuple[str, ...], str]]


def sepconv_layers() -> Layers:
  """sepconv-slomo `Network`: Basic = Sequential(conv, relu) x 3, Upsample = (upsample, conv, relu), Subnet = convs
  at 0, 2, 4 and, after the upsampling, 7."""
  layers = {}
  basics = [(f"netConv{l}", f"conv{l}") for l in range(1, 6)] + [(f"netDeconv{l}", f"deconv{l}") for l in (5, 4, 3, 2)]
  for torch_name, flax_name in basics:
    for k in range(3):
      layers[f"{torch_name}.{2 * k}"] = (("sepconv", flax_name, f"conv{k}"), "conv")
  for l in (5, 4, 3, 2):
    layers[f"netUpsample{l}.1"] = (("sepconv", f"upsample{l}", "conv"), "conv")
  subnets = {"netVertical1": "kv0", "netHorizontal1": "kh0", "netVertical2": "kv1", "netHorizontal2": "kh1"}
  for torch_name, flax_name in subnets.items():
    for index, conv in ((0, "conv0"), (2, "conv1"), (4, "conv2"), (7, "head")):
      layers[f"{torch_name}.{index}"] = (("sepconv", flax_name, conv), "conv")
  return layers


def superslomo_unet_layers(prefix: str, path: tuple[str, ...]) -> Layers:
  """Super-SloMo `model.UNet`: conv1, conv2, down1..5.conv1/2, up1..5.conv1/2, conv3; jaxvfi's UNet uses the names."""
  names = ["conv1", "conv2"] + [f"{b}{i}.conv{j}" for b in ("down", "up") for i in range(1, 6) for j in (1, 2)]
  return {f"{prefix}.{n}": (path + tuple(n.split(".")), "conv") for n in names + ["conv3"]}


def superslomo_layers() -> Layers:
  return {**superslomo_unet_layers("state_dictFC", ("flow", "unet")),
          **superslomo_unet_layers("state_dictAT", ("interpolation",))}


def pwcnet_layers() -> Layers:
  """PyTorch layer prefix -> (Flax module path, "conv" | "deconv") for `PWCNet`."""
  layers = {}
  for level, name in enumerate(_PWC_NAMES, start=1):
    for k in range(3):  # Sequential(conv, leaky, conv, leaky, conv, leaky)
      layers[f"netExtractor.net{name}.{2 * k}"] = (("extractor", f"level{level}_conv{k}"), "conv")
  for level in range(2, 7):
    decoder = f"net{_PWC_NAMES[level - 1]}"
    for k in range(6):  # netOne .. netSix, each Sequential(conv[, leaky])
      layers[f"{decoder}.net{_PWC_NAMES[k]}.0"] = ((f"decoder{level}", f"conv{k}"), "conv")
    if level < 6:
      layers[f"{decoder}.netUpflow"] = ((f"decoder{level}", "upflow"), "deconv")
      layers[f"{decoder}.netUpfeat"] = ((f"decoder{level}", "upfeat"), "deconv")
  for k in range(7):  # Sequential(conv, leaky, ..., conv)
    layers[f"netRefiner.netMain.{2 * k}"] = (("refiner", f"conv{k}"), "conv")
  return layers


def vgg_layers(blocks, path: tuple[str, ...] = ()) -> Layers:
  """torchvision `features.{j}` -> Flax `conv{b}_{i}`; j counts conv, ReLU and the max-pool after each block."""
  layers, j = {}, 0
  for b, widths in enumerate(blocks, start=1):
    for i in range(1, len(widths) + 1):
      layers[f"features.{j}"] = (path + (f"conv{b}_{i}",), "conv")
      j += 2
    j += 1
  return layers


def vgg19_layers() -> Layers:
  from jaxvfi.models import vgg  # pylint: disable=g-import-not-at-top
  return vgg_layers(vgg.BLOCKS)


def lpips_layers(net: str) -> Layers:
  """torchvision trunk under "net" (AlexNet `features.{0,3,6,8,10}` -> conv1..5, VGG-16 as `vgg_layers`) and the
  package's heads `lin{k}.model.1` (Sequential(Dropout, Conv2d(C, 1, 1, bias=False))) -> `lin{k}`."""
  from jaxvfi.models import vgg  # pylint: disable=g-import-not-at-top
  if net == "alex":
    layers = {f"features.{j}": (("net", f"conv{i}"), "conv") for i, j in enumerate((0, 3, 6, 8, 10), start=1)}
  else:
    layers = vgg_layers(vgg.VGG16_BLOCKS, ("net",))
  for k in range(5):
    layers[f"lin{k}.model.1"] = ((f"lin{k}",), "conv_nobias")
  return layers


_CLASSIFIER = lambda indices: tuple(f"classifier.{j}.{p}" for j in indices for p in ("weight", "bias"))
VGG19_IGNORED = _CLASSIFIER((0, 3, 6))
IGNORED = {"vgg19": VGG19_IGNORED, "lpips_vgg": VGG19_IGNORED, "lpips_alex": _CLASSIFIER((1, 4, 6))}
"""Keys of the source files that are dropped on purpose: the ImageNet classifiers (torchvision's VGG-16 and VGG-19
share the classifier's key names; AlexNet's sit after its dropouts)."""


def _layers(arch: str) -> tuple[Layers, tuple[str, ...]]:
  tables = {"sepconv": sepconv_layers, "superslomo": superslomo_layers, "pwcnet": pwcnet_layers,
            "vgg19": vgg19_layers, "lpips_alex": lambda: lpips_layers("alex"), "lpips_vgg": lambda: lpips_layers("vgg")}
  if arch not in tables:
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
  return tables[arch](), IGNORED.get(arch, ())


def normalize_keys(arch: str, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """sniklaus's ports load `{key.replace("module", "net"): ...}` (their files use the older names); others as is."""
  if arch in ("pwcnet", "sepconv"):
    renamed = {k.replace("module", "net"): v for k, v in state.items()}
    if len(renamed) != len(state):
      raise ValueError("renaming 'module' -> 'net' made two keys collide")
    return renamed
  return dict(state)


def convert_kernel(weight: np.ndarray, kind: str) -> np.ndarray:
  """OIHW conv -> HWIO; (in, out, kh, kw) transposed conv -> (kh, kw, out, in) for `transpose_kernel=True`."""
  if weight.ndim != 4 or kind not in ("conv", "deconv", "conv_nobias"):
    raise ValueError(f"expected a 4-D {kind} weight, got shape {weight.shape}")
  return np.transpose(weight, (2, 3, 1, 0))


def model(arch: str):
  """The Flax module that `arch`'s converted parameters fill, with the original code's conventions (for SepConv and
  Super-SloMo `RELEASED_MODEL_CONFIG`), and example inputs for `init`."""
  if arch not in ARCHS:
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
  if arch == "sepconv":
    from jaxvfi.models import sepconv  # pylint: disable=g-import-not-at-top
    frames = jnp.zeros((1, 32, 32, 3))
    return sepconv.build(RELEASED_MODEL_CONFIG[arch]), ({"frame0": frames, "frame1": frames},)
  if arch == "superslomo":
    from jaxvfi.models import superslomo  # pylint: disable=g-import-not-at-top
    frames = jnp.zeros((1, 32, 32, 3))
    return (superslomo.FlowInterpolator(variant="superslomo", **RELEASED_MODEL_CONFIG[arch]),
            ({"frame0": frames, "frame1": frames, "t": jnp.full((1,), 0.5)},))
  if arch == "pwcnet":
    from jaxvfi.models import pwcnet  # pylint: disable=g-import-not-at-top
    return pwcnet.PWCNet(), (jnp.zeros((1, 64, 64, 3)),) * 2
  if arch == "vgg19":
    from jaxvfi.models import vgg  # pylint: disable=g-import-not-at-top
    return vgg.VGG19(output_layer=vgg.LAYERS[-1]), (jnp.zeros((1, 32, 32, 3)),)
  from jaxvfi.models import lpips  # pylint: disable=g-import-not-at-top
  return lpips.LPIPS(net=arch.split("_")[1]), (jnp.zeros((1, 64, 64, 3)),) * 2


def expected_shapes(arch: str) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Parameter shapes of the Flax module, from `jax.eval_shape` (no compute)."""
  module, args = model(arch)
  variables = jax.eval_shape(module.init, jax.random.key(0), *args)
  return {k: tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(variables["params"]).items()}


def torch_layout(arch: str) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
  """PyTorch key -> (its shape in the original layout, the Flax parameter path it becomes)."""
  layers, _ = _layers(arch)
  shapes = expected_shapes(arch)
  layout = {}
  for prefix, (path, kind) in layers.items():
    kh, kw, a, b = shapes[path + ("kernel",)]  # conv (kh, kw, in, out), deconv (kh, kw, out, in)
    layout[f"{prefix}.weight"] = ((b, a, kh, kw), path + ("kernel",))
    if kind != "conv_nobias":
      layout[f"{prefix}.bias"] = (shapes[path + ("bias",)], path + ("bias",))
  unmapped = sorted("/".join(k) for k in set(shapes) - {path for _, path in layout.values()})
  if unmapped:
    raise AssertionError(f"{arch}: Flax parameters without a PyTorch key: {unmapped}")
  return layout


def convert_state_dict(arch: str, state: Mapping[str, Any]) -> dict[str, Any]:
  """Converts a state_dict (any key naming `normalize_keys` accepts) to the Flax `params` tree; validates keys and
  shapes (module docstring)."""
  layout = torch_layout(arch)
  _, ignored = _layers(arch)
  state = normalize_keys(arch, state)
  missing = sorted(set(layout) - set(state))
  unused = sorted(set(state) - set(layout) - set(ignored))
  if missing or unused:
    raise ValueError(f"{arch} state_dict does not match the layout: {len(missing)} missing keys {missing}; "
                     f"{len(unused)} unused keys {unused}")
  bad = [f"{key} ({'/'.join(path)}): got {tuple(np.shape(state[key]))}, expected {shape}"
         for key, (shape, path) in layout.items() if tuple(np.shape(state[key])) != shape]
  if bad:
    raise ValueError(f"{arch}: {len(bad)} arrays have the wrong shape: {'; '.join(bad)}")
  layers, _ = _layers(arch)
  kinds = {path: kind for path, kind in layers.values()}
  flat = {}
  for key, (_, path) in layout.items():
    value = np.asarray(state[key], np.float32)
    flat[path] = convert_kernel(value, kinds[path[:-1]]) if path[-1] == "kernel" else value
  return flax.traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})


def random_state_dict(arch: str, seed: int) -> dict[str, np.ndarray]:
  """A state_dict in `arch`'s original layout filled from `np.random.default_rng(seed)`.

  Keys in sorted order, each array drawn in turn: weights N(0, 2 / fan_in) with fan_in = the product of the PyTorch
  shape but its first axis (He initialisation, so activations keep their scale through deep stacks), biases
  N(0, 0.1^2), LPIPS heads |N(0, 1 / C)| (the trained heads are non-negative). The parity fixtures
  (tools/make_parity_fixtures.py) load these into the original code; tests/test_parity.py rebuilds them.
  """
  rng = np.random.default_rng(seed)
  state = {}
  for key, (shape, _) in sorted(torch_layout(arch).items()):
    if key.endswith(".bias"):
      value = 0.1 * rng.standard_normal(shape)
    else:
      value = rng.standard_normal(shape) * math.sqrt(2.0 / math.prod(shape[1:]))
      if key.startswith("lin"):
        value = np.abs(value) / math.sqrt(2.0)
    state[key] = value.astype(np.float32)
  return state


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads `.npz`, `.safetensors` (no torch) or `.pth` / `.pt` / `.pytorch` / `.ckpt` (torch) into name -> NumPy
  array. Nested dicts (Super-SloMo's checkpoint) are flattened with "." and non-tensor entries (metadata) skipped."""
  path = os.fspath(path)
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in (".npz", ".safetensors") + TORCH_SUFFIXES:
    raise ValueError(f"unknown weights format {suffix!r} for {path}; expected .npz, .safetensors or {TORCH_SUFFIXES}")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"weights file {path} does not exist")
  if suffix == ".npz":
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  if suffix == ".safetensors":
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return load_file(path)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"reading {path} needs torch, which jaxvfi does not depend on: install it, or convert "
                      f"the file once elsewhere with `python -m jaxvfi.weights convert --arch=... --src={path} "
                      f"--dst=X.npz` and load the .npz") from e
  state = _flatten(torch.load(path, map_location="cpu", weights_only=True))
  return {k: v.detach().cpu().float().numpy() for k, v in state.items() if isinstance(v, torch.Tensor)}


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
  return normalize_keys(arch, merged)


def load_params(arch: str, path: str | os.PathLike) -> dict[str, Any]:
  """The Flax `params` tree of `model(arch)` from a weights file (e.g. the .npz `convert` wrote)."""
  return convert_state_dict(arch, read_state_dict(path))


def _write(arch: str, state: Mapping[str, np.ndarray], dst: str | os.PathLike) -> dict[str, np.ndarray]:
  from jaxvfi import utils  # pylint: disable=g-import-not-at-top
  if os.path.splitext(os.fspath(dst))[1].lower() != ".npz":
    raise ValueError(f"dst must end in .npz, got {dst}")
  convert_state_dict(arch, state)
  _, ignored = _layers(arch)
  kept = {k: np.asarray(v, np.float32) for k, v in state.items() if k not in ignored}
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
