r"""Writes the PyTorch files that tests/test_torch_pickle.py and tests/test_parity.py read without torch.

Not run in CI: it needs torch (`pip install torch`); the tests do not. Called by tools/make_parity_fixtures.py, or
alone: python tools/make_torch_fixtures.py [--out=tests/fixtures]

Each is written by `torch.save` in both formats (`torch_zip*.pth`: the zip format of torch >= 1.6; `torch_legacy*.pth`:
`_use_new_zipfile_serialization=False`, the format of torch < 1.6 and of Super-SloMo's 2018 checkpoint):

  torch_{zip,legacy}.pth        a Super-SloMo-like checkpoint ({"state_dictFC": ..., "state_dictAT": ..., "epoch": 3,
                                "timestamp": a datetime, ...}, two small modules' state_dicts) and edge cases: views of
                                one storage at different offsets, non-contiguous strides, float16, bfloat16, float64,
                                int64, int32, uint8, bool, 0-d, empty, an nn.Parameter, an OrderedDict;
  torch_expected.npz            what torch itself holds for each: `tensor/<key>` (flattened with "."; bfloat16 as
                                float32), `plain/<key>` the repr of each other value;
  lpips_alex_heads_{zip,legacy}.pth  the v0.1 heads of lpips_alex.npz as a state_dict, like the `lpips` package's
                                weights/v0.1/alex.pth;
  forbidden_global_{zip,legacy}.pth  written byte by byte (no torch, nothing run): a checkpoint whose object pickle
                                calls `os.system`, which the reader must refuse.

"""
from __future__ import annotations

import argparse
import collections
import datetime
import io
import os
import pickle
import zipfile

import numpy as np
import torch

SEED = 0
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")




def checkpoint_object() -> dict:
  """The object saved in torch_{zip,legacy}.pth: Super-SloMo train.py's checkpoint layout, small, plus edge cases."""
  gen = torch.Generator().manual_seed(SEED)
  flow = torch.nn.Sequential(torch.nn.Conv2d(6, 4, 3), torch.nn.LeakyReLU(0.1), torch.nn.ConvTranspose2d(4, 2, 4))
  arb = torch.nn.Sequential(torch.nn.Conv2d(20, 5, 1), torch.nn.BatchNorm2d(5))  # BatchNorm: an int64 buffer
  with torch.no_grad():
    for p in list(flow.parameters()) + list(arb.parameters()):
      p.copy_(torch.randn(p.shape, generator=gen))
  base = torch.randn(48, generator=gen)
  grid = base.view(6, 8)
  return {
      "Detail": "End to end Super SloMo.", "epoch": 3, "timestamp": datetime.datetime(2018, 6, 1, 12, 30, 5),
      "learningRate": 1e-5, "loss": [[0.5, 0.25], [0.125]], "bytes": b"\x00\xffraw",
      "state_dictFC": flow.state_dict(), "state_dictAT": arb.state_dict(),
      "edge": {
          "shared_head": base[:10], "shared_middle": base[13:29], "shared_rows": grid[1:5],  # one storage, 3 offsets
          "strided": grid[::2, 1::3], "transposed": grid.t(), "expanded": base[:3].view(3, 1).expand(3, 4),
          "float16": torch.randn(3, 5, generator=gen).half(), "bfloat16": torch.randn(7, generator=gen).bfloat16(),
          "float64": torch.randn(2, 2, generator=gen).double(), "int64": torch.arange(-3, 9).view(3, 4),
          "int32": torch.tensor([1, -2, 2**31 - 1], dtype=torch.int32), "uint8": torch.arange(250, 256).byte(),
          "bool": torch.tensor([[True, False, True]]), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
          "parameter": torch.nn.Parameter(torch.randn(4, generator=gen)),
      },
      "ordered": collections.OrderedDict([("z", torch.ones(2)), ("a", torch.full((1, 2), 7.0))]),
  }


def expected_arrays(obj, prefix: str = "") -> dict[str, np.ndarray]:
  """torch's own view of obj: `tensor/<key>` (bfloat16 widened to float32, as NumPy has none), `plain/<key>` the
  repr of every other leaf."""
  out = {}
  for k, v in obj.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(expected_arrays(v, f"{key}."))
    elif isinstance(v, torch.Tensor):
      v = v.detach()
      out[f"tensor/{key}"] = (v.float() if v.dtype == torch.bfloat16 else v).numpy().copy()
    else:
      out[f"plain/{key}"] = np.array(repr(v))
  return out


def forbidden_pickle() -> bytes:
  """Protocol-2 opcodes of `os.system("echo pwned")` (GLOBAL, a string, TUPLE1, REDUCE): built, never run."""
  return (b"\x80\x02" + pickle.GLOBAL + b"os\nsystem\n" + pickle.SHORT_BINUNICODE + bytes([10]) + b"echo pwned"
          + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


def write_forbidden(out: str) -> None:
  evil = forbidden_pickle()
  legacy = (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 8}}, protocol=2)
            + evil + pickle.dumps([], protocol=2))
  with open(os.path.join(out, "forbidden_global_legacy.pth"), "wb") as f:
    f.write(legacy)
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("forbidden_global/data.pkl", evil)
    z.writestr("forbidden_global/byteorder", "little")
    z.writestr("forbidden_global/version", "3\n")
  with open(os.path.join(out, "forbidden_global_zip.pth"), "wb") as f:
    f.write(buf.getvalue())


def write_torch_files(out: str) -> None:
  obj = checkpoint_object()
  torch.save(obj, os.path.join(out, "torch_zip.pth"))
  torch.save(obj, os.path.join(out, "torch_legacy.pth"), _use_new_zipfile_serialization=False)
  np.savez_compressed(os.path.join(out, "torch_expected.npz"), **expected_arrays(obj),
                      torch_version=np.array(torch.__version__))
  with np.load(os.path.join(out, "lpips_alex.npz"), allow_pickle=False) as f:
    heads = collections.OrderedDict((k[len("heads/"):], torch.from_numpy(f[k])) for k in sorted(f.files)
                                    if k.startswith("heads/"))
  torch.save(heads, os.path.join(out, "lpips_alex_heads_zip.pth"))
  torch.save(heads, os.path.join(out, "lpips_alex_heads_legacy.pth"), _use_new_zipfile_serialization=False)
  write_forbidden(out)
  for name in sorted(os.listdir(out)):
    if name.endswith(".pth") or name == "torch_expected.npz":
      print(f"{name}: {os.path.getsize(os.path.join(out, name)) / 1024:.1f} KiB")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=FIXTURES, help="folder holding lpips_alex.npz; the files are written there")
  write_torch_files(parser.parse_args(argv).out)


if __name__ == "__main__":
  main()
