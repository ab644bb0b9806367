"""PyTorch state_dicts -> Flax parameter trees, over a layout each network declares (no torch needed to convert).

A network whose authors released PyTorch weights declares a `TorchLayout` beside its Flax module (e.g.
`jaxvfi.models.pwcnet.TORCH_LAYOUT`): which PyTorch layer prefix fills which Flax module path, how to build the Flax
module to learn its parameter shapes, the source keys dropped on purpose, and whether the original code renames its
keys on load. This module knows no network: the converter, the readers and the random-weights generator work from
the layout alone, and `jaxvfi.weights` (the command line and its table of architectures) sits above every network.

Conversion: Conv2d weight (out, in, kh, kw) -> Flax (kh, kw, in, out). ConvTranspose2d weight (in, out, kh, kw) ->
(kh, kw, out, in) for `nn.ConvTranspose(transpose_kernel=True)`, which flips the kernel itself: with that flag
`lax.conv_transpose` is the gradient of a conv, exactly PyTorch's definition, so no manual flip is needed
(tests/test_weights.py checks both against NumPy loops on the original weights, tests/test_parity.py whole networks
against the original code's outputs). Every source key is used exactly once (besides the layout's `ignored` keys):
missing or unused keys raise one ValueError listing them, and shapes that differ from the original layout one
ValueError naming each key, its shape and the expected one.

Readers: none needs torch. `.npz` (numpy), `.safetensors` (the `safetensors.numpy` API), and `.pth` / `.pt` /
`.pytorch` / `.ckpt` through `jaxvfi.torch_pickle` (both of torch's formats, with an unpickler that reads only
tensors and plain containers, so a checkpoint runs no code).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
import safetensors
from safetensors import numpy as safetensors_numpy

from jaxvfi import torch_pickle
from jaxvfi import utils

TORCH_SUFFIXES = (".pth", ".pt", ".pytorch", ".ckpt")

Layers = dict[str, tuple[tuple[str, ...], str]]
"""PyTorch layer prefix -> (Flax module path, kind); kinds "conv" / "deconv" have weight and bias, "conv_nobias"
only a weight."""


@dataclasses.dataclass(frozen=True)
class TorchLayout:
  """A released PyTorch network's state_dict layout and the Flax module it fills.

  Attributes:
    name: the architecture's name in messages (e.g. "pwcnet").
    layers: () -> `Layers`, the layer table.
    module: () -> (flax module, example args for `module.init` after the rng): parameter shapes come from
      `jax.eval_shape` of that init, so no compute.
    ignored: source keys dropped on purpose (e.g. an ImageNet classifier the features never use).
    rename_module_to_net: the original code loads `{key.replace("module", "net"): ...}` (sniklaus's ports: their
      files keep the older `module...` names).
  """
  name: str
  layers: Callable[[], Layers]
  module: Callable[[], tuple[Any, tuple]]
  ignored: tuple[str, ...] = ()
  rename_module_to_net: bool = False


def normalize_keys(layout: TorchLayout, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The keys the original code uses after loading (`TorchLayout.rename_module_to_net`); others as they are."""
  if not layout.rename_module_to_net:
    return dict(state)
  renamed = {k.replace("module", "net"): v for k, v in state.items()}
  if len(renamed) != len(state):
    raise ValueError("renaming 'module' -> 'net' made two keys collide")
  return renamed


def convert_kernel(weight: np.ndarray, kind: str) -> np.ndarray:
  """OIHW conv -> HWIO; (in, out, kh, kw) transposed conv -> (kh, kw, out, in) for `transpose_kernel=True`."""
  if weight.ndim != 4 or kind not in ("conv", "deconv", "conv_nobias"):
    raise ValueError(f"expected a 4-D {kind} weight, got shape {weight.shape}")
  return np.transpose(weight, (2, 3, 1, 0))


@functools.lru_cache(maxsize=None)
def expected_shapes(layout: TorchLayout) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Parameter shapes of the layout's Flax module, from `jax.eval_shape` (no compute)."""
  module, args = layout.module()
  variables = jax.eval_shape(module.init, jax.random.key(0), *args)
  return {k: tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(variables["params"]).items()}


def torch_layout(layout: TorchLayout) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
  """PyTorch key -> (its shape in the original layout, the Flax parameter path it becomes)."""
  shapes = expected_shapes(layout)
  keys = {}
  for prefix, (path, kind) in layout.layers().items():
    kh, kw, a, b = shapes[path + ("kernel",)]  # conv (kh, kw, in, out), deconv (kh, kw, out, in)
    keys[f"{prefix}.weight"] = ((b, a, kh, kw), path + ("kernel",))
    if kind != "conv_nobias":
      keys[f"{prefix}.bias"] = (shapes[path + ("bias",)], path + ("bias",))
  unmapped = sorted("/".join(k) for k in set(shapes) - {path for _, path in keys.values()})
  if unmapped:
    raise AssertionError(f"{layout.name}: Flax parameters without a PyTorch key: {unmapped}")
  return keys


def convert_state_dict(layout: TorchLayout, state: Mapping[str, Any]) -> dict[str, Any]:
  """Converts a state_dict (any key naming `normalize_keys` accepts) to the Flax `params` tree; validates keys and
  shapes (module docstring)."""
  keys = torch_layout(layout)
  state = normalize_keys(layout, state)
  missing = sorted(set(keys) - set(state))
  unused = sorted(set(state) - set(keys) - set(layout.ignored))
  if missing or unused:
    raise ValueError(f"{layout.name} state_dict does not match the layout: {len(missing)} missing keys {missing}; "
                     f"{len(unused)} unused keys {unused}")
  bad = [f"{key} ({'/'.join(path)}): got {tuple(np.shape(state[key]))}, expected {shape}"
         for key, (shape, path) in keys.items() if tuple(np.shape(state[key])) != shape]
  if bad:
    raise ValueError(f"{layout.name}: {len(bad)} arrays have the wrong shape: {'; '.join(bad)}")
  kinds = {path: kind for path, kind in layout.layers().values()}
  flat = {}
  for key, (_, path) in keys.items():
    value = np.asarray(state[key], np.float32)
    flat[path] = convert_kernel(value, kinds[path[:-1]]) if path[-1] == "kernel" else value
  return flax.traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})


def random_state_dict(layout: TorchLayout, seed: int) -> dict[str, np.ndarray]:
  """A state_dict in the layout's original form filled from `np.random.default_rng(seed)`.

  Keys in sorted order, each array drawn in turn: weights N(0, 2 / fan_in) with fan_in = the product of the PyTorch
  shape but its first axis (He initialisation, so activations keep their scale through deep stacks), biases
  N(0, 0.1^2), LPIPS heads (`lin*` keys) |N(0, 1 / C)| (the trained heads are non-negative). The parity fixtures
  (tools/make_parity_fixtures.py) load these into the original code; tests/test_parity.py rebuilds them.
  """
  rng = np.random.default_rng(seed)
  state = {}
  for key, (shape, _) in sorted(torch_layout(layout).items()):
    if key.endswith(".bias"):
      value = 0.1 * rng.standard_normal(shape)
    else:
      value = rng.standard_normal(shape) * math.sqrt(2.0 / math.prod(shape[1:]))
      if key.startswith("lin"):
        value = np.abs(value) / math.sqrt(2.0)
    state[key] = value.astype(np.float32)
  return state


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads `.npz`, `.safetensors` or `.pth` / `.pt` / `.pytorch` / `.ckpt` (either torch format, no torch needed)
  into name -> NumPy array. Nested dicts (Super-SloMo's checkpoint) are flattened with "." and non-tensor entries
  (metadata) skipped; PyTorch tensors come back as float32, whatever their dtype.

  Raises:
    ValueError: an unknown suffix, a PyTorch file that is truncated or corrupt (`torch_pickle.CorruptCheckpointError`)
      or holds no dict.  FileNotFoundError: no such file.  pickle.UnpicklingError: a PyTorch file naming a global a
      weights file never needs (e.g. os.system); nothing of it ran.
  """
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
    try:
      return safetensors_numpy.load_file(path)
    except (OSError, safetensors.SafetensorError) as e:
      raise ValueError(f"cannot read weights file {path}: {utils.error_reason(e)} (a file cut short or "
                       "damaged?)") from e
  saved = torch_pickle.load(path)
  if not isinstance(saved, Mapping):
    raise ValueError(f"{path} holds a {type(saved).__name__}, not a state_dict (a dict of tensors)")
  return {k: v.astype(np.float32, copy=False) for k, v in utils.flatten_keys(saved).items() if isinstance(v, np.ndarray)}


def load_params(layout: TorchLayout, path: str | os.PathLike) -> dict[str, Any]:
  """The Flax `params` tree of the layout's module from a weights file (e.g. the .npz `jaxvfi.weights` wrote)."""
  return convert_state_dict(layout, read_state_dict(path))
