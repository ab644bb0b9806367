"""One-file models: a safetensors file that holds a model's parameters and everything needed to build it.

A jaxvfi model file is a `.safetensors` file whose metadata (string -> string, stored in the file's header) says
what the arrays are and how to build the network they fill:

  format               "jaxvfi.model/1" (`FORMAT`).
  layout               "torch": the arrays are a PyTorch state_dict in the original code's layout and naming (what
                       `python -m jaxvfi.weights convert` and `fetch` write; any PyTorch tool reads it, and
                       `torch_weights.load_params` converts it on load); "flax": the Flax `params` tree, keys joined
                       with "/" (what `python -m jaxvfi.weights export` writes from a training workdir).
  arch                 torch layout: the `jaxvfi.weights` architecture (sepconv, superslomo, pwcnet, vgg19, ...).
  family               the model family that builds the network (`config.model.name`), when the file is a whole
                       model (not a part such as PWC-Net or VGG-19).
  model_config         JSON of `config.model`: the family's packaged defaults with `RELEASED_MODEL_CONFIG` for
                       released weights, the run's own `model` section for an export.
  data_config          JSON of `config.data` (exports): the shapes the tools build the model at.
  released_model_config  JSON of the conventions `RELEASED_MODEL_CONFIG` set (released weights), else "{}".
  source_sha256        comma-separated sha256 of the files the arrays came from (released weights), else "".
  name, step, workdir  the released model's name (`jaxvfi.released`); an export's checkpoint step and workdir.

`read(path)` returns a `ModelFile` (arrays and metadata); `ModelFile.config()` is the config the tools build the
model with. This module is the format only: `jaxvfi.weights` turns a file into parameters (`load_model_file`),
writes them (`convert`, `fetch`, `export`). Files without this metadata (plain safetensors, `.npz`) are read by
`jaxvfi.torch_weights` with an architecture the caller gives, as before.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import flax
import jax
import ml_collections
import numpy as np
from safetensors import numpy as safetensors_numpy
import safetensors

from jaxvfi import config_lib
from jaxvfi import utils

FORMAT = "jaxvfi.model/1"
SUFFIX = ".safetensors"


@dataclasses.dataclass(frozen=True)
class ModelFile:
  """A read model file: its arrays and metadata (module docstring)."""
  path: str
  arrays: dict[str, np.ndarray]
  metadata: dict[str, str]

  @property
  def layout(self) -> str:
    return self.metadata.get("layout", "torch")

  @property
  def arch(self) -> str | None:
    return self.metadata.get("arch") or None

  @property
  def family(self) -> str | None:
    return self.metadata.get("family") or None

  @property
  def step(self) -> int:
    return int(self.metadata.get("step", "0") or 0)

  def json_field(self, key: str) -> dict[str, Any] | None:
    text = self.metadata.get(key)
    return json.loads(text) if text else None

  def config(self) -> ml_collections.ConfigDict:
    """The config the model is built with (`config_from_metadata`)."""
    return config_from_metadata(self.metadata, self.path)


def config_from_metadata(metadata: Mapping[str, str], path: str = "the model file") -> ml_collections.ConfigDict:
  """The config a model file's network is built with: the family's packaged config (when jaxvfi ships one), its
  `model` section replaced by the file's `model_config` and its `data` section by `data_config` when it has one.

  Raises:
    ValueError: the file names no family (a network part such as PWC-Net, not a model the tools run).
  """
  family = metadata.get("family")
  if not family:
    raise ValueError(f"{path} holds {metadata.get('arch') or 'a network part'} weights, not a whole model: it has no "
                     "model family (use it where a config names such weights, e.g. --config.model.flow_weights=)")
  try:
    config = config_lib.packaged_config(family)
  except ModuleNotFoundError:  # a family of the user's own package: the file's sections are the whole config
    config = ml_collections.ConfigDict({"model": {}, "data": {}})
  config = config.copy_and_resolve_references()
  with config.unlocked():
    for section in ("model", "data"):
      text = metadata.get(f"{section}_config")
      if text:
        config[section] = ml_collections.ConfigDict(json.loads(text))
  return config


def read_config(path: str | os.PathLike) -> ml_collections.ConfigDict:
  """`config_from_metadata` of a model file, reading its header only; ValueError for a file that is not one."""
  path = os.fspath(path)
  if not is_model_file(path):
    raise ValueError(f"{path} is not a jaxvfi model file (.safetensors with jaxvfi's metadata: python -m "
                     "jaxvfi.weights export --workdir=W --dst=FILE.safetensors makes one)")
  return config_from_metadata(read_metadata(path), path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
  """The header metadata of a safetensors file ({} for one without), without reading its arrays."""
  with safetensors.safe_open(os.fspath(path), framework="numpy") as f:
    return dict(f.metadata() or {})


def is_model_file(path: str | os.PathLike) -> bool:
  """Whether `path` is a jaxvfi model file (a .safetensors whose metadata has `format` = FORMAT).

  Raises:
    ValueError: a .safetensors file whose header cannot be read (cut short or damaged).
  """
  path = os.fspath(path)
  if not path.lower().endswith(SUFFIX) or not os.path.isfile(path):
    return False
  try:
    return read_metadata(path).get("format") == FORMAT
  except (OSError, ValueError, safetensors.SafetensorError) as e:
    raise ValueError(f"cannot read weights file {path}: {utils.error_reason(e)} (a file cut short or damaged?)") from e


def family_of(path: str | os.PathLike) -> str | None:
  """The family a model file names, or None (not a model file, or a network part)."""
  return read_metadata(path).get("family") or None if is_model_file(path) else None


def read(path: str | os.PathLike) -> ModelFile:
  """Reads a jaxvfi model file.

  Raises:
    FileNotFoundError: no such file.  ValueError: not a safetensors file, or one without jaxvfi's metadata.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"weights file {path} does not exist")
  try:
    metadata = read_metadata(path)
    arrays = safetensors_numpy.load_file(path)
  except (OSError, safetensors.SafetensorError) as e:
    raise ValueError(f"{path} is not a readable safetensors file ({e})") from e
  if metadata.get("format") != FORMAT:
    raise ValueError(f"{path} is a safetensors file without jaxvfi's model metadata (format {FORMAT}): convert it "
                     "with python -m jaxvfi.weights convert --arch=... --dst=FILE.safetensors")
  return ModelFile(path=path, arrays=arrays, metadata=metadata)


def _json(value: Mapping[str, Any] | ml_collections.ConfigDict | None) -> str:
  if value is None:
    return ""
  if isinstance(value, ml_collections.ConfigDict):
    return value.to_json_best_effort(sort_keys=True)
  return json.dumps(value, sort_keys=True)


def write(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *, layout: str, arch: str | None = None,
          family: str | None = None, model_config=None, data_config=None,
          released_model_config: Mapping[str, Any] | None = None, source_sha256: tuple[str, ...] = (),
          extra: Mapping[str, str] | None = None) -> None:
  """Writes a model file atomically (a temporary file beside `path`, renamed into place; removed on any error).

  Args:
    path: the destination, ending in .safetensors.
    arrays: name -> array ("torch" layout: the state_dict; "flax": the params tree flattened with "/").
    layout: "torch" or "flax" (module docstring).
    arch, family, model_config, data_config, released_model_config, source_sha256, extra: the metadata.

  Raises:
    ValueError: a bad suffix or layout.  OSError: the file cannot be written (e.g. the disk is full); nothing is
      left behind.
  """
  path = os.fspath(path)
  if not path.lower().endswith(SUFFIX):
    raise ValueError(f"a model file must end in {SUFFIX}, got {path}")
  if layout not in ("torch", "flax"):
    raise ValueError(f"layout must be torch or flax, got {layout!r}")
  metadata = {"format": FORMAT, "layout": layout, "arch": arch or "", "family": family or "",
              "model_config": _json(model_config), "data_config": _json(data_config),
              "released_model_config": _json(released_model_config or {}),
              "source_sha256": ",".join(source_sha256), **dict(extra or {})}
  tensors = {k: np.ascontiguousarray(np.asarray(v)) for k, v in arrays.items()}
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  utils.remove_stale_temps(path)
  tmp = os.path.join(directory, f"{utils.temp_prefix(path)}tmp")
  try:
    safetensors_numpy.save_file(tensors, tmp, metadata=metadata)
    os.chmod(tmp, 0o666 & ~utils.UMASK)  # a model file should read like any other new file
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def flax_arrays(params) -> dict[str, np.ndarray]:
  """A params tree flattened to "a/b/kernel" -> host array (the "flax" layout)."""
  flat = flax.traverse_util.flatten_dict(jax.device_get(params))
  return {"/".join(str(p) for p in k): np.asarray(v) for k, v in flat.items()}


def unflatten(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """The params tree of "flax"-layout arrays ("a/b/kernel" keys), the inverse of `flax_arrays`."""
  return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in arrays.items()})
