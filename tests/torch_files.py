"""Writes small PyTorch checkpoints in torch's zip format without torch, for tests that play the authors' sites.

`save_zip(path, state)` writes what `torch.save(state_dict, path)` writes for float32 CPU tensors (torch >= 1.6):
a zip archive `archive/data.pkl` (a protocol-2 pickle of a dict whose tensors are `torch._utils._rebuild_tensor_v2`
calls on persistent storage ids) + `archive/data/<key>` (each storage's raw little-endian bytes) + `archive/version`.
The pickle names torch's globals by reference; they are stand-ins registered in `sys.modules` only while pickling.
`jaxvfi.torch_pickle` (and torch itself) reads the result.
"""
from __future__ import annotations

import collections
import contextlib
import io
import pickle
import sys
import types
import zipfile
from typing import Iterator, Mapping

import numpy as np


def _rebuild_tensor_v2(*args):  # a name for pickle to reference; never called here
  raise NotImplementedError(args)


class FloatStorage:  # a name for pickle to reference; never instantiated
  pass


class _Storage:
  def __init__(self, key: str, array: np.ndarray):
    self.key, self.array = key, array


class _Tensor:
  def __init__(self, storage: _Storage, shape: tuple[int, ...]):
    self.storage, self.shape = storage, shape

  def __reduce__(self):
    strides, acc = [], 1
    for n in reversed(self.shape):
      strides.insert(0, acc)
      acc *= n
    return (_rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), tuple(strides), False,
                                 collections.OrderedDict()))


class _Pickler(pickle.Pickler):
  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      return ("storage", FloatStorage, obj.key, "cpu", int(obj.array.size))
    return None


@contextlib.contextmanager
def _torch_names() -> Iterator[None]:
  """`torch.FloatStorage` and `torch._utils._rebuild_tensor_v2` resolvable by pickle for the duration."""
  saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
  torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
  torch.FloatStorage, torch._utils = FloatStorage, utils  # pylint: disable=protected-access
  utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # pylint: disable=protected-access
  old = (FloatStorage.__module__, FloatStorage.__qualname__, _rebuild_tensor_v2.__module__)
  FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
  sys.modules.update({"torch": torch, "torch._utils": utils})
  try:
    yield
  finally:
    FloatStorage.__module__, FloatStorage.__qualname__, _rebuild_tensor_v2.__module__ = old
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = module


def save_zip(path, state: Mapping[str, np.ndarray]) -> None:
  """Writes `state` (name -> array, stored as float32) as torch's zip-format checkpoint at `path`."""
  storages, tensors = [], {}
  for i, (name, value) in enumerate(state.items()):
    array = np.ascontiguousarray(np.asarray(value, "<f4"))
    storage = _Storage(str(i), array)
    storages.append(storage)
    tensors[name] = _Tensor(storage, array.shape)
  buf = io.BytesIO()
  with _torch_names():
    _Pickler(buf, protocol=2).dump(tensors)
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/version", "3\n")
    for storage in storages:
      z.writestr(f"archive/data/{storage.key}", storage.array.tobytes())
