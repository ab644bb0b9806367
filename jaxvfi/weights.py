"""Pretrained weights: PyTorch state_dicts -> Flax parameter trees, without needing torch at training time.

Two layouts are supported:
  * "pwcnet": sniklaus/pytorch-pwc (the flow module of ReFIn, footnote 1), keys `netExtractor.netOne.0.weight`, ...,
    `netTwo.netUpflow.weight`, ..., `netRefiner.netMain.12.bias`. The released `network-default.pytorch` still uses
    the older `module...` names; like the port's `load_state_dict` call, every "module" in a key becomes "net".
    Target: `jaxvfi.models.pwcnet.PWCNet` (9,374,274 parameters in 126 arrays, 63 layers).
  * "vgg19": torchvision `vgg19()` state_dict, keys `features.{j}.weight/bias` for the 16 convs. The classifier
    (`classifier.{0,3,6}.weight/bias`, the fully connected head) is dropped on purpose: perceptual losses use the
    features only. Target: `jaxvfi.models.vgg.VGG19` (20,024,384 parameters).

Conversion: Conv2d weight (out, in, kh, kw) -> Flax (kh, kw, in, out). ConvTranspose2d weight (in, out, kh, kw) ->
(kh, kw, out, in) for `nn.ConvTranspose(transpose_kernel=True)`, which flips the kernel itself: with that flag
`lax.conv_transpose` is the gradient of a conv, exactly PyTorch's definition, so no manual flip is needed
(tests/test_weights.py checks both against NumPy loops on the original weights). Every source key must be used
exactly once (besides the documented classifier keys): missing or unused keys, or a shape that differs from the
Flax module's, raise a ValueError listing them.

Readers: `.npz` (numpy) and `.safetensors` (the `safetensors.numpy` API) need no torch; `.pth` / `.pt` / `.pytorch`
are read with torch, imported only then (torch is not a dependency of jaxvfi).

CLI, run once where torch is installed, so training needs no torch:
  python -m jaxvfi.weights convert --arch=pwcnet --src=network-default.pytorch --dst=pwcnet.npz
  python -m jaxvfi.weights convert --arch=vgg19 --src=vgg19-dcbb9e9d.pth --dst=vgg19.npz
The .npz holds the validated state_dict in PyTorch layout and naming (keys normalised, classifier dropped), not the
Flax tree: it stays readable by any PyTorch tool, and `load_params` converts it on load (milliseconds).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

ARCHS = ("pwcnet", "vgg19")
TORCH_SUFFIXES = (".pth", ".pt", ".pytorch")
_PWC_NAMES = ("One", "Two", "Thr", "Fou", "Fiv", "Six")  # the port's level and layer names, 1..6


def pwcnet_layers() -> dict[str, tuple[tuple[str, ...], str]]:
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


def vgg19_layers() -> dict[str, tuple[tuple[str, ...], str]]:
  """torchvision `features.{j}` -> Flax `conv{b}_{i}`; j counts conv, ReLU and the max-pool after blocks 1-4."""
  from jaxvfi.models import vgg  # pylint: disable=g-import-not-at-top
  layers, j = {}, 0
  for b, widths in enumerate(vgg.BLOCKS, start=1):
    for i in range(1, len(widths) + 1):
      layers[f"features.{j}"] = ((f"conv{b}_{i}",), "conv")
      j += 2
    j += 1
  return layers


VGG19_IGNORED = tuple(f"classifier.{j}.{p}" for j in (0, 3, 6) for p in ("weight", "bias"))


def normalize_keys(arch: str, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The port loads `{key.replace("module", "net"): ...}`; VGG keys are used as they are."""
  if arch == "pwcnet":
    renamed = {k.replace("module", "net"): v for k, v in state.items()}
    if len(renamed) != len(state):
      raise ValueError("renaming 'module' -> 'net' made two keys collide")
    return renamed
  return dict(state)


def _layers(arch: str) -> tuple[dict[str, tuple[tuple[str, ...], str]], tuple[str, ...]]:
  if arch == "pwcnet":
    return pwcnet_layers(), ()
  if arch == "vgg19":
    return vgg19_layers(), VGG19_IGNORED
  raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def convert_kernel(weight: np.ndarray, kind: str) -> np.ndarray:
  """OIHW conv -> HWIO; (in, out, kh, kw) transposed conv -> (kh, kw, out, in) for `transpose_kernel=True`."""
  if weight.ndim != 4 or kind not in ("conv", "deconv"):
    raise ValueError(f"expected a 4-D {kind} weight, got shape {weight.shape}")
  return np.transpose(weight, (2, 3, 1, 0))


def convert_state_dict(arch: str, state: Mapping[str, Any]) -> dict[str, Any]:
  """Converts a (normalised) state_dict to the Flax `params` tree; validates keys and shapes."""
  layers, ignored = _layers(arch)
  state = normalize_keys(arch, state)
  expected = {f"{prefix}.{p}" for prefix in layers for p in ("weight", "bias")}
  missing = sorted(expected - set(state))
  unused = sorted(set(state) - expected - set(ignored))
  if missing or unused:
    raise ValueError(f"{arch} state_dict does not match the layout: {len(missing)} missing keys {missing}; "
                     f"{len(unused)} unused keys {unused}")
  flat = {}
  for prefix, (path, kind) in layers.items():
    flat[path + ("kernel",)] = convert_kernel(np.asarray(state[f"{prefix}.weight"], np.float32), kind)
    flat[path + ("bias",)] = np.asarray(state[f"{prefix}.bias"], np.float32)
  _check_shapes(arch, flat)
  return flax.traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})


def expected_shapes(arch: str) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Parameter shapes of the Flax module, from `jax.eval_shape` (no compute)."""
  if arch == "pwcnet":
    from jaxvfi.models import pwcnet  # pylint: disable=g-import-not-at-top
    model, args = pwcnet.PWCNet(), (jnp.zeros((1, 64, 64, 3)),) * 2
  else:
    from jaxvfi.models import vgg  # pylint: disable=g-import-not-at-top
    model, args = vgg.VGG19(output_layer=vgg.LAYERS[-1]), (jnp.zeros((1, 32, 32, 3)),)
  variables = jax.eval_shape(model.init, jax.random.key(0), *args)
  return {k: tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(variables["params"]).items()}


def _check_shapes(arch: str, flat: Mapping[tuple[str, ...], np.ndarray]) -> None:
  want = expected_shapes(arch)
  bad = [f"{'/'.join(k)}: got {None if k not in flat else flat[k].shape}, want {want.get(k)}"
         for k in sorted(set(want) | set(flat)) if k not in flat or k not in want or flat[k].shape != want[k]]
  if bad:
    raise ValueError(f"{arch}: converted parameters do not fit the Flax module: {bad}")


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads `.npz`, `.safetensors` (no torch) or `.pth` / `.pt` / `.pytorch` (torch) into name -> NumPy array."""
  path = os.fspath(path)
  suffix = os.path.splitext(path)[1].lower()
  if suffix == ".npz":
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  if suffix == ".safetensors":
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return load_file(path)
  if suffix in TORCH_SUFFIXES:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError(f"reading {path} needs torch, which jaxvfi does not depend on: install it, or convert "
                        f"the file once elsewhere with `python -m jaxvfi.weights convert --arch=... --src={path} "
                        f"--dst=X.npz` and load the .npz") from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.detach().cpu().float().numpy() for k, v in state.items()}
  raise ValueError(f"unknown weights format {suffix!r} for {path}; expected .npz, .safetensors or {TORCH_SUFFIXES}")


def load_params(arch: str, path: str | os.PathLike) -> dict[str, Any]:
  """The Flax `params` tree of `PWCNet()` ("pwcnet") or `VGG19()` ("vgg19", all 16 convs) from a weights file."""
  return convert_state_dict(arch, read_state_dict(path))


def convert_file(arch: str, src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, np.ndarray]:
  """Validates `src` by a full conversion, then writes its normalised PyTorch-layout arrays to the .npz `dst`."""
  if os.path.splitext(os.fspath(dst))[1].lower() != ".npz":
    raise ValueError(f"dst must end in .npz, got {dst}")
  state = normalize_keys(arch, read_state_dict(src))
  convert_state_dict(arch, state)
  _, ignored = _layers(arch)
  kept = {k: np.asarray(v, np.float32) for k, v in state.items() if k not in ignored}
  np.savez(dst, **kept)
  return kept


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxvfi.weights", description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  convert = sub.add_parser("convert", help="PyTorch/safetensors/npz state_dict -> validated .npz (PyTorch layout)")
  convert.add_argument("--arch", required=True, choices=ARCHS)
  convert.add_argument("--src", required=True)
  convert.add_argument("--dst", required=True)
  args = parser.parse_args(argv)
  kept = convert_file(args.arch, args.src, args.dst)
  print(f"{args.arch}: wrote {len(kept)} arrays, {sum(v.size for v in kept.values()):,} parameters to {args.dst}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
