"""Tests for jaxvfi.torch_pickle: torch.save files read without torch, and without running code from the file.

Oracles: tests/fixtures/torch_{zip,legacy}.pth, written by torch itself (tools/make_parity_fixtures.py) in its two
formats, and torch_expected.npz, what torch held for every tensor and plain value of them; two files written byte by
byte that call os.system; and legacy files built here with a stand-in `torch` module (only inside the test) for
what today's torch no longer writes (storage views, big-endian) and for broken tensors.
"""
from __future__ import annotations

import collections
import datetime
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from jaxvfi import torch_pickle
from jaxvfi import torch_weights
from jaxvfi import utils

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
FORMATS = ("zip", "legacy")


def expected() -> dict[str, np.ndarray]:
  with np.load(os.path.join(FIXTURES, "torch_expected.npz"), allow_pickle=False) as f:
    return {k: f[k] for k in f.files if k != "torch_version"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_value_is_what_torch_saved(fmt):
  loaded = torch_pickle.load(os.path.join(FIXTURES, f"torch_{fmt}.pth"))
  flat = utils.flatten_keys(loaded)
  want = expected()
  assert sorted(flat) == sorted(k.split("/", 1)[1] for k in want)
  for key, value in want.items():
    kind, name = key.split("/", 1)
    if kind == "tensor":
      got = flat[name]
      assert isinstance(got, np.ndarray), name
      assert got.dtype == value.dtype and got.shape == value.shape, (name, got.dtype, got.shape, value.dtype)
      np.testing.assert_array_equal(got, value, err_msg=name)
    else:
      assert repr(flat[name]) == str(value), name
  assert loaded["timestamp"] == datetime.datetime(2018, 6, 1, 12, 30, 5)
  assert isinstance(loaded["ordered"], collections.OrderedDict) and list(loaded["ordered"]) == ["z", "a"]
  assert isinstance(loaded["state_dictFC"], collections.OrderedDict)


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_of_one_storage_and_odd_strides(fmt):
  """shared_* and strided/transposed/expanded are views of one 48-float storage (`base`, `grid` = base.view(6, 8))."""
  edge = torch_pickle.load(os.path.join(FIXTURES, f"torch_{fmt}.pth"))["edge"]
  base = np.concatenate([edge["shared_head"], edge["shared_middle"][-3:]])  # base[0:10] and base[26:29]
  grid = np.concatenate([edge["transposed"].T[:1], edge["shared_rows"], edge["transposed"].T[5:]])
  np.testing.assert_array_equal(grid.reshape(-1)[:10], base[:10])
  np.testing.assert_array_equal(edge["shared_middle"], grid.reshape(-1)[13:29])
  np.testing.assert_array_equal(edge["strided"], grid[::2, 1::3])
  np.testing.assert_array_equal(edge["expanded"], np.broadcast_to(base[:3, None], (3, 4)))
  arrays = list(edge.values())
  assert all(v.flags.c_contiguous and v.flags.writeable for v in arrays)
  assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])  # no aliasing


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_state_dict_flattens_keeps_tensors_as_float32(fmt, tmp_path):
  src = tmp_path / "SuperSloMo.ckpt"
  src.write_bytes(open(os.path.join(FIXTURES, f"torch_{fmt}.pth"), "rb").read())
  state = torch_weights.read_state_dict(src)
  want = {k.split("/", 1)[1]: v for k, v in expected().items() if k.startswith("tensor/")}
  assert sorted(state) == sorted(want)
  for k, v in state.items():
    assert v.dtype == np.float32, k
    np.testing.assert_array_equal(v, want[k].astype(np.float32), err_msg=k)


@pytest.mark.parametrize("fmt", FORMATS)
def test_forbidden_global_is_refused_and_not_run(fmt, monkeypatch):
  calls = []
  monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
  path = os.path.join(FIXTURES, f"forbidden_global_{fmt}.pth")
  with pytest.raises(pickle.UnpicklingError, match=r"global os\.system is not allowed"):
    torch_pickle.load(path)
  with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
    torch_weights.read_state_dict(path)
  assert not calls


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file_is_one_clear_error(fmt, tmp_path):
  data = open(os.path.join(FIXTURES, f"torch_{fmt}.pth"), "rb").read()
  for cut in (30, len(data) // 3, len(data) // 2, len(data) - 40, len(data) - 1):
    path = tmp_path / f"cut{cut}.pth"
    path.write_bytes(data[:cut])
    with pytest.raises(torch_pickle.CorruptCheckpointError, match=f"truncated or corrupt {fmt}"):
      torch_pickle.load(path)
  assert issubclass(torch_pickle.CorruptCheckpointError, ValueError)


def test_not_a_checkpoint(tmp_path):
  path = tmp_path / "x.pth"
  path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
  with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
    torch_pickle.load(path)
  with pytest.raises(FileNotFoundError):
    torch_pickle.load(tmp_path / "missing.pth")


# ----------------------------------------------------------------------------------------------------------------
# Legacy files built here: a stand-in `torch` in sys.modules (this test only) lets pickle write torch's globals.


class Storage:

  def __init__(self, key, type_name, data, view=None):
    self.key, self.type_name, self.data, self.view = key, type_name, np.asarray(data), view


class Tensor:

  def __init__(self, storage, offset, size, stride, fn="_rebuild_tensor_v2"):
    self.args, self.fn = (storage, offset, size, stride), fn

  def __reduce__(self):
    fn = getattr(sys.modules["torch._utils"], self.fn)
    return fn, self.args + ((False, collections.OrderedDict()) if self.fn == "_rebuild_tensor_v2" else ())


@pytest.fixture
def stand_in_torch(monkeypatch):
  torch = types.ModuleType("torch")
  utils = types.ModuleType("torch._utils")
  for name in ("FloatStorage", "LongStorage", "HalfStorage"):
    setattr(torch, name, type(name, (), {"__module__": "torch"}))
  for name in ("_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter"):
    fn = lambda *a: None
    fn.__module__, fn.__name__, fn.__qualname__ = "torch._utils", name, name
    setattr(utils, name, fn)
  torch._utils = utils  # pylint: disable=protected-access
  monkeypatch.setitem(sys.modules, "torch", torch)
  monkeypatch.setitem(sys.modules, "torch._utils", utils)
  return torch


def legacy_file(path, obj, storages, little_endian=True, body: bytes | None = None):
  """torch < 1.6's layout: magic, protocol, sys info, the object (persistent ids for storages), keys, the bytes."""
  torch = sys.modules["torch"]

  class Pickler(pickle.Pickler):

    def persistent_id(self, o):
      if isinstance(o, Storage):
        return ("storage", getattr(torch, o.type_name), o.key, "cpu", o.data.size, o.view)
      return None

  buf = __import__("io").BytesIO()
  Pickler(buf, protocol=2).dump(obj)
  order = "<" if little_endian else ">"
  roots = [s for s in storages if s.view is None]
  out = [pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2), pickle.dumps(1001, protocol=2),
         pickle.dumps({"protocol_version": 1001, "little_endian": little_endian,
                       "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2),
         buf.getvalue() if body is None else body, pickle.dumps([s.key for s in roots], protocol=2)]
  for s in roots:
    out.append(struct.pack(order + "q", s.data.size) + s.data.astype(s.data.dtype.newbyteorder(order)).tobytes())
  path.write_bytes(b"".join(out))
  return path


def test_legacy_storage_views_and_big_endian(stand_in_torch, tmp_path):
  """Torch < 0.4 saved storage views (view key, offset, size); files from big-endian hosts swap every element."""
  del stand_in_torch
  root = Storage("1", "FloatStorage", np.arange(20, dtype=np.float32))
  view = Storage("1", "FloatStorage", np.zeros(8, np.float32), view=("2", 6, 8))  # root[6:14]
  longs = Storage("3", "LongStorage", np.arange(-3, 3, dtype=np.int64))
  obj = {"view": Tensor(view, 2, (2, 3), (3, 1)), "root": Tensor(root, 0, (4,), (5,), fn="_rebuild_tensor"),
         "long": Tensor(longs, 1, (2, 2), (1, 2))}
  for little in (True, False):
    got = torch_pickle.load(legacy_file(tmp_path / f"v{little}.pth", obj, [root, view, longs], little_endian=little))
    np.testing.assert_array_equal(got["view"], np.arange(8, 14, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(got["root"], [0, 5, 10, 15])
    np.testing.assert_array_equal(got["long"], [[-2, 0], [-1, 1]])
    assert got["long"].dtype == np.int64 and got["long"].dtype.isnative


def test_tensor_past_its_storage_is_refused(stand_in_torch, tmp_path):
  del stand_in_torch
  s = Storage("1", "FloatStorage", np.arange(6, dtype=np.float32))
  path = legacy_file(tmp_path / "oob.pth", {"w": Tensor(s, 2, (2, 3), (3, 1))}, [s])  # reaches element 7 of 6
  with pytest.raises(ValueError, match=r"reaches element 7 of storage 1, which has 6"):
    torch_pickle.load(path)
  path = legacy_file(tmp_path / "neg.pth", {"w": Tensor(s, 0, (2,), (-1,))}, [s])
  with pytest.raises(pickle.UnpicklingError, match="stride"):
    torch_pickle.load(path)


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("torch.nn.modules.conv", "Conv2d"),
                                          ("numpy.core.multiarray", "_reconstruct"), ("__builtin__", "getattr"),
                                          ("torch._utils", "_rebuild_device_tensor_from_numpy")])
def test_other_globals_are_refused(stand_in_torch, tmp_path, module, name):
  del stand_in_torch
  body = b"\x80\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode() + pickle.EMPTY_TUPLE + pickle.REDUCE + b"."
  with pytest.raises(pickle.UnpicklingError, match=f"global {module}.{name} is not allowed"):
    torch_pickle.load(legacy_file(tmp_path / "g.pth", None, [], body=body))


def test_state_cannot_be_set_on_allowed_globals(stand_in_torch, tmp_path):
  """BUILD on an allowed stand-in (e.g. to replace the rebuild function's defaults) is refused."""
  del stand_in_torch
  body = (b"\x80\x02" + pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n" + pickle.EMPTY_DICT + pickle.BUILD
          + b".")
  with pytest.raises(pickle.UnpicklingError, match="sets state on torch._utils._rebuild_tensor_v2"):
    torch_pickle.load(legacy_file(tmp_path / "b.pth", None, [], body=body))
