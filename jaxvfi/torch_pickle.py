"""Reads PyTorch checkpoints (`torch.save` files) into NumPy without torch and without running code from the file.

`load(path)` returns the saved object with every tensor as a NumPy array: dicts (OrderedDict kept), lists, tuples
and plain values as they were saved. Both of torch's formats are read:

  zip (torch >= 1.6): a zip archive `<name>/data.pkl` (the object pickle) + `<name>/data/<key>` (each storage's raw
    bytes) + an optional `<name>/byteorder` ("little" when absent, as torch assumes).
  legacy (torch < 1.6, `_use_new_zipfile_serialization=False`; e.g. Super-SloMo's 2018 checkpoint): pickles in a
    row: the magic number, the protocol version (1001), sys info (byte order), the object pickle, the list of
    storage keys; then per key an 8-byte element count and the storage's raw bytes.

Safety: the object pickle is read by an unpickler whose `find_class` allows only what a weights file needs
(`ALLOWED_GLOBALS`: torch's tensor / parameter rebuild functions, the storage types, `collections.OrderedDict`,
`torch.Size` as a plain tuple, `_codecs.encode` for bytes pickled at protocol 2, and `datetime.datetime`, which
Super-SloMo's train.py stores as its `timestamp`). Anything else raises `pickle.UnpicklingError` naming the global,
before anything is called. Each allowed global is a stand-in defined here (torch is never imported), and the
stand-ins refuse pickle's BUILD, so a file cannot set attributes on them.

Tensors: dtype from the storage type (bfloat16, which NumPy lacks, becomes float32 exactly), shape, strides and
storage offset as saved (views of one storage and non-contiguous tensors read right), checked against the storage's
size; each comes back as its own C-contiguous array in native byte order (tensors that shared a storage in torch
no longer alias each other).
"""
from __future__ import annotations

import collections
import datetime
import io
import math
import os
import pickle
import struct
import zipfile
from typing import Any, Callable

import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

# torch storage type -> NumPy dtype of one element (little-endian; the file's byte order is applied on reading).
STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?", "ComplexFloatStorage": "<c8", "ComplexDoubleStorage": "<c16", "UntypedStorage": "u1",
}


class CorruptCheckpointError(ValueError):
  """The file is truncated, corrupt, or not a PyTorch checkpoint."""


class RefusedPickleError(pickle.UnpicklingError):
  """The pickle asks for a global or an operation a weights file has no need of; nothing of it was run."""


class _Guarded:
  """Base of the stand-ins the unpickler hands out: pickle's BUILD (`__setstate__`) on them is refused."""
  __slots__ = ()

  def __setstate__(self, state):
    raise RefusedPickleError(f"the pickle sets state on {self!r}; refused")


class _StorageType(_Guarded):
  """Stands for `torch.<Name>Storage`: only its element dtype is used (it is never called)."""
  __slots__ = ("name", "dtype")

  def __init__(self, name: str):
    self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])

  @property
  def bfloat16(self) -> bool:
    return self.name == "BFloat16Storage"

  def __repr__(self):
    return f"torch.{self.name}"


class _Storage(_Guarded):
  """A storage named by a persistent id; `array` (1-D, the file's byte order) is filled once its bytes are read."""
  __slots__ = ("key", "type", "numel", "array", "view")

  def __init__(self, key: str, storage_type: _StorageType, numel: int):
    self.key, self.type, self.numel, self.array, self.view = key, storage_type, numel, None, None

  def __repr__(self):
    return f"<storage {self.key}>"


class _Tensor(_Guarded):
  """A tensor from `_rebuild_tensor(_v2)`, made a NumPy array once the storages are read (`_materialize`)."""
  __slots__ = ("storage", "offset", "size", "stride")

  def __init__(self, storage, offset, size, stride):
    if not isinstance(storage, _Storage):
      raise RefusedPickleError(f"a tensor built on {type(storage).__name__}, not a storage")
    if not _is_index(offset) or not _is_shape(size) or not _is_shape(stride) or len(size) != len(stride):
      raise RefusedPickleError(f"a tensor with offset {offset!r}, size {size!r}, stride {stride!r}")
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def __repr__(self):
    return f"<tensor {self.size} on storage {self.storage.key}>"


class _Call(_Guarded):
  """An allowed global: a named function the pickle may call (REDUCE), nothing else."""
  __slots__ = ("name", "fn")

  def __init__(self, name: str, fn: Callable[..., Any]):
    self.name, self.fn = name, fn

  def __call__(self, *args):
    return self.fn(*args)

  def __repr__(self):
    return self.name


def _is_index(x) -> bool:
  return type(x) is int and x >= 0  # pylint: disable=unidiomatic-typecheck  (bool is no index)


def _is_shape(x) -> bool:
  return isinstance(x, (tuple, list)) and all(_is_index(n) for n in x)


def _rebuild_tensor(storage, offset, size, stride):
  return _Tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks, metadata=None):
  del requires_grad, backward_hooks, metadata  # autograd state: nothing for NumPy
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
  del requires_grad, backward_hooks, state
  if not isinstance(data, _Tensor):
    raise RefusedPickleError(f"a parameter wrapping {type(data).__name__}, not a tensor")
  return data


def _ordered_dict(*args):
  if args and not (len(args) == 1 and isinstance(args[0], (list, tuple, dict))):
    raise RefusedPickleError("OrderedDict called with arguments other than its items")
  return collections.OrderedDict(*args)


def _size(items=()):
  if not _is_shape(items):
    raise RefusedPickleError(f"torch.Size of {items!r}")
  return tuple(items)


def _encode(text, encoding="latin1"):
  """`_codecs.encode(str, "latin1")`: how protocol 2 pickles a bytes object."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise RefusedPickleError(f"_codecs.encode of {type(text).__name__} in {encoding!r}")
  return text.encode("latin1")


def _datetime(*args):
  if not all(isinstance(a, (bytes, int)) for a in args):
    raise RefusedPickleError("datetime.datetime with arguments other than bytes / ints")
  return datetime.datetime(*args)


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _Call("torch._utils._rebuild_tensor", _rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Call("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _Call("torch._utils._rebuild_parameter", _rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Call("torch._utils._rebuild_parameter_with_state",
                                                             _rebuild_parameter),
    ("collections", "OrderedDict"): _Call("collections.OrderedDict", _ordered_dict),
    ("torch", "Size"): _Call("torch.Size", _size),
    ("_codecs", "encode"): _Call("_codecs.encode", _encode),
    ("datetime", "datetime"): _Call("datetime.datetime", _datetime),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}
"""(module, name) -> what the unpickler hands out for it; every other global is refused."""


class _Unpickler(pickle.Unpickler):
  """The object pickle of either format: `find_class` only from `ALLOWED_GLOBALS`; persistent ids name storages."""

  def __init__(self, file, storages: dict[str, _Storage], legacy: bool):
    super().__init__(file, encoding="utf-8")
    self.storages, self.legacy = storages, legacy

  def find_class(self, module, name):
    try:
      return ALLOWED_GLOBALS[(module, name)]
    except (KeyError, TypeError):
      raise RefusedPickleError(f"global {module}.{name} is not allowed in a weights file (only tensors, storages "
                               "and plain containers are read)") from None

  def persistent_load(self, pid):
    if not isinstance(pid, tuple) or not pid:
      raise RefusedPickleError(f"persistent id {pid!r}")
    typename = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if typename != "storage":  # "module": the legacy format's saved source of whole nn.Modules
      raise RefusedPickleError(f"persistent id of type {typename!r} (only storages are read)")
    fields = pid[1:]
    if len(fields) != (5 if self.legacy else 4):
      raise RefusedPickleError(f"storage persistent id {pid!r}")
    storage_type, key, location, numel = fields[:4]
    key = key.decode("ascii") if isinstance(key, bytes) else key
    del location  # the device it was saved from: everything here is host memory
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_index(numel):
      raise RefusedPickleError(f"storage persistent id {pid!r}")
    storage = self.storages.get(key)
    if storage is None:
      storage = self.storages[key] = _Storage(key, storage_type, numel)
    view = fields[4] if self.legacy else None
    if view is None:
      return storage
    # Old torch (< 0.4) saved storage views: (view key, offset, size) in elements of the root storage.
    if not (isinstance(view, tuple) and len(view) == 3 and _is_index(view[1]) and _is_index(view[2])):
      raise RefusedPickleError(f"storage view {view!r}")
    view_key = view[0].decode("ascii") if isinstance(view[0], bytes) else str(view[0])
    if view_key not in self.storages:
      self.storages[view_key] = _Storage(view_key, storage.type, view[2])
      self.storages[view_key].view = (storage, view[1])
    return self.storages[view_key]


def _storage_array(raw: bytes | memoryview, dtype: np.dtype, numel: int, byteorder: str, what: str) -> np.ndarray:
  dtype = dtype.newbyteorder(byteorder)
  if len(raw) != numel * dtype.itemsize:
    raise CorruptCheckpointError(f"{what}: {len(raw)} bytes for {numel} elements of {dtype.itemsize} bytes")
  return np.frombuffer(raw, dtype=dtype, count=numel)


def _tensor_array(t: _Tensor) -> np.ndarray:
  storage = t.storage
  if storage.view is not None:
    root, start = storage.view
    if root.array is not None and start + storage.numel > root.array.size:
      raise CorruptCheckpointError(f"storage view {storage.key} runs past its storage {root.key}")
    data = None if root.array is None else root.array[start:start + storage.numel]
  else:
    data = storage.array
  if data is None:
    raise CorruptCheckpointError(f"storage {storage.key} is used by a tensor but its bytes were never stored")
  if math.prod(t.size) == 0:
    out = np.zeros(t.size, data.dtype.newbyteorder("="))
  else:
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if last >= data.size:
      raise CorruptCheckpointError(f"tensor of size {t.size}, stride {t.stride}, offset {t.offset} reaches element "
                                   f"{last} of storage {storage.key}, which has {data.size}")
    view = np.lib.stride_tricks.as_strided(data[t.offset:], shape=t.size,
                                           strides=[s * data.itemsize for s in t.stride], writeable=False)
    out = np.array(view, dtype=data.dtype.newbyteorder("="), order="C")
  if storage.type.bfloat16:  # the upper half of a float32: exact
    out = (out.astype(np.uint32) << 16).view(np.float32)
  return out


def _materialize(obj, memo: dict[int, Any]):
  """Replaces every `_Tensor` in obj (dicts and lists in place) by its array; obj may share or nest containers."""
  if id(obj) in memo:
    return memo[id(obj)]
  if isinstance(obj, _Tensor):
    memo[id(obj)] = _tensor_array(obj)
  elif isinstance(obj, _Guarded):
    raise RefusedPickleError(f"the checkpoint holds {obj!r} outside a tensor")
  elif isinstance(obj, dict):
    memo[id(obj)] = obj
    for k in list(obj):
      obj[k] = _materialize(obj[k], memo)
  elif isinstance(obj, list):
    memo[id(obj)] = obj
    obj[:] = [_materialize(x, memo) for x in obj]
  elif isinstance(obj, tuple):
    memo[id(obj)] = obj  # a tuple reached again through itself keeps its stand-ins; checkpoints have no such cycle
    memo[id(obj)] = tuple(_materialize(x, memo) for x in obj)
  else:
    memo[id(obj)] = obj
  return memo[id(obj)]


def _load_zip(path: str) -> tuple[Any, dict[str, _Storage]]:
  try:
    with zipfile.ZipFile(path) as archive:  # read record by record: the file is never held in memory twice
      names = set(archive.namelist())
      pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
      if len(pickles) != 1:
        raise CorruptCheckpointError(f"{path}: a zip file but not a PyTorch checkpoint (no single <name>/data.pkl)")
      prefix = pickles[0][:-len("data.pkl")]
      byteorder = archive.read(prefix + "byteorder").decode("ascii") if prefix + "byteorder" in names else "little"
      if byteorder not in ("little", "big"):
        raise CorruptCheckpointError(f"{path}: unknown byte order {byteorder!r}")
      storages: dict[str, _Storage] = {}
      obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages, legacy=False).load()
      for key, storage in storages.items():
        name = f"{prefix}data/{key}"
        if name not in names:
          raise CorruptCheckpointError(f"{path}: storage record {name} is missing")
        storage.array = _storage_array(archive.read(name), storage.type.dtype, storage.numel,
                                       "<" if byteorder == "little" else ">", f"{path}: storage {key}")
    return obj, storages
  except (zipfile.BadZipFile, EOFError, OSError, struct.error) as e:
    raise CorruptCheckpointError(f"{path}: truncated or corrupt zip-format PyTorch checkpoint ({e})") from None


def _load_legacy(path: str, data: bytes) -> tuple[Any, dict[str, _Storage]]:
  f = io.BytesIO(data)
  try:
    magic = _Plain(f).load()  # it and the two pickles after it are plain values: no global is allowed
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as e:
    if isinstance(e, RefusedPickleError):
      raise
    magic = None
  if type(magic) is not int or magic != LEGACY_MAGIC:  # pylint: disable=unidiomatic-typecheck
    raise CorruptCheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip nor torch's legacy magic number)")
  protocol, sys_info = _Plain(f).load(), _Plain(f).load()
  if protocol != LEGACY_PROTOCOL or not isinstance(sys_info, dict):
    raise CorruptCheckpointError(f"{path}: legacy PyTorch checkpoint of protocol {protocol!r}, expected "
                                 f"{LEGACY_PROTOCOL}")
  byteorder = "<" if sys_info.get("little_endian", True) else ">"
  storages: dict[str, _Storage] = {}
  obj = _Unpickler(f, storages, legacy=True).load()
  keys = _Plain(f).load()
  if not isinstance(keys, list):
    raise CorruptCheckpointError(f"{path}: storage key list is {type(keys).__name__}")
  for key in keys:
    key = key.decode("ascii") if isinstance(key, bytes) else key
    storage = storages.get(key)
    if storage is None or storage.view is not None:
      raise CorruptCheckpointError(f"{path}: stored bytes for storage {key!r}, which no tensor names")
    head = f.read(8)
    if len(head) != 8:
      raise EOFError(f"the element count of storage {key}")
    (numel,) = struct.unpack(byteorder + "q", head)
    start = f.tell()
    end = start + numel * storage.type.dtype.itemsize
    if numel < 0 or end > len(data):
      raise EOFError(f"storage {key} of {numel} elements runs past the end of the file")
    storage.array = _storage_array(memoryview(data)[start:end], storage.type.dtype, numel, byteorder,
                                   f"{path}: storage {key}")
    storage.numel = numel
    f.seek(end)
  return obj, storages


class _Plain(pickle.Unpickler):
  """The legacy format's header pickles and key list: plain values only."""

  def find_class(self, module, name):
    raise RefusedPickleError(f"global {module}.{name} is not allowed in a checkpoint's header")

  def persistent_load(self, pid):
    raise RefusedPickleError(f"persistent id {pid!r} in a checkpoint's header")


def load(path: str | os.PathLike) -> Any:
  """The object `torch.save` wrote to path, tensors as NumPy arrays (module docstring), no torch needed.

  Raises:
    FileNotFoundError: no such file.
    pickle.UnpicklingError (`RefusedPickleError`): the file names a global outside `ALLOWED_GLOBALS`, or asks for
      something else a weights file never needs; nothing it names was called.
    ValueError (`CorruptCheckpointError`): truncated, corrupt, or not a PyTorch checkpoint.
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    zip_format = f.read(4) == b"PK\x03\x04"
    data = None if zip_format else f.seek(0) or f.read()
  try:
    obj, storages = _load_zip(path) if zip_format else _load_legacy(path, data)
    return _materialize(obj, {})
  except RefusedPickleError:
    raise
  except CorruptCheckpointError:
    raise
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
          RecursionError, struct.error, MemoryError) as e:
    what = "zip-format" if zip_format else "legacy-format"
    raise CorruptCheckpointError(f"{path}: truncated or corrupt {what} PyTorch checkpoint "
                                 f"({type(e).__name__}: {e})") from None

