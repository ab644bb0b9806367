"""A non-editable install works on its own: a wheel built offline from this checkout, installed with `pip --target`
into a temporary folder and run from another directory, interpolates two frames with released-layout SepConv weights
(its config comes from the installed `jaxvfi.configs`, not from the checkout's configs/), and inference imports no
training stack (grain, TFDS, `jaxvfi.train`, `jaxvfi.input_pipeline`). Its `jaxvfi-interpolate` console script, with
`--model=sepconv-lf`, fetches the released file from a local HTTP server playing the authors' site (random weights
in torch's format), checks, converts and caches it, and interpolates; the second run is offline.

The wheel is built without build isolation (no network): the environment's setuptools must build wheels itself,
which takes setuptools >= 70.1 (or the `wheel` package beside an older one); the `test` extra asks for it.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib

import numpy as np
from PIL import Image
import pytest
import setuptools

from conftest import ROOT
from helpers import serve, sha256
import torch_files
from jaxvfi import released
from jaxvfi import weights

# Top-level modules that inference must not import.
TRAINING_STACK = ("grain", "tensorflow_datasets", "jaxvfi.train", "jaxvfi.input_pipeline")

# Run in the subprocess, from a folder outside the checkout, with only the installed copy on PYTHONPATH: the CLI's
# main in-process (so that sys.modules afterwards is what interpolating imported), then one line of module names.
_SCRIPT = """
import sys
from jaxvfi import interpolate
assert interpolate.__file__.startswith({target!r}), interpolate.__file__
args = interpolate.build_parser().parse_args(
    ["--model=sepconv", "--weights=sepconv.npz", "--frames", "a.png", "b.png", "--output", "mid.png", "--no_progress"])
interpolate.main(args)
print("MODULES", " ".join(sorted(sys.modules)))
"""


def _can_build_wheels() -> bool:
  major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
  return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def test_packages_list_names_every_package():
  """pyproject.toml lists packages explicitly (configs/ is mapped to jaxvfi.configs): a new package must be added."""
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    setup = tomllib.load(f)["tool"]["setuptools"]
  found = set(setuptools.find_packages(ROOT, include=["jaxvfi*", "pallas_kernels*"])) | {"jaxvfi.configs"}
  assert set(setup["packages"]) == found, "pyproject.toml's [tool.setuptools] packages is not every package"
  assert setup["package-dir"] == {"jaxvfi.configs": "configs"}


@pytest.mark.skipif(not _can_build_wheels(), reason="building a wheel offline needs setuptools >= 70.1 or the wheel "
                    "package in this environment: pip install -e '.[test]'")
def test_wheel_install_interpolates_without_the_training_stack(tmp_path):
  # A copy of the sources, so that the build's build/ and *.egg-info never land in the checkout.
  src = tmp_path / "src"
  ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
  for name in ("jaxvfi", "pallas_kernels", "configs"):
    shutil.copytree(os.path.join(ROOT, name), src / name, ignore=ignore)
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), src / name)
  pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
  wheels, target = tmp_path / "wheels", tmp_path / "target"
  r = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(src)],
                     capture_output=True, text=True, timeout=300, check=False)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  r = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target),
                      *glob.glob(str(wheels / "*.whl"))], capture_output=True, text=True, timeout=300, check=False)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  assert os.path.isfile(target / "jaxvfi" / "configs" / "sepconv.py")

  run_dir = tmp_path / "elsewhere"
  run_dir.mkdir()
  assert weights.main(["random", "--arch=sepconv", "--seed=0", f"--dst={run_dir / 'sepconv.npz'}"]) == 0
  rng = np.random.default_rng(0)
  for name in ("a.png", "b.png"):
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(run_dir / name)
  env = {**os.environ, "PYTHONPATH": str(target)}
  r = subprocess.run([sys.executable, "-c", _SCRIPT.format(target=str(target))], cwd=run_dir, env=env,
                     capture_output=True, text=True, timeout=600, check=False)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  with Image.open(run_dir / "mid.png") as img:
    assert img.size == (40, 24) and img.mode == "RGB"
  modules = next(line for line in r.stdout.splitlines() if line.startswith("MODULES ")).split()[1:]
  imported = sorted(s for s in TRAINING_STACK if any(m == s or m.startswith(s + ".") for m in modules))
  assert not imported, f"interpolating imported the training stack: {', '.join(imported)}"

  # The console script with a released name: fetched from the "authors' site" on 127.0.0.1, then from the cache.
  script = target / "bin" / "jaxvfi-interpolate"
  assert os.path.isfile(script), sorted(os.listdir(target / "bin")) if os.path.isdir(target / "bin") else "no bin/"
  site = tmp_path / "site"
  site.mkdir()
  torch_files.save_zip(site / "network-lf.pytorch", weights.random_state_dict("sepconv", 0))
  env = {**env, released.CACHE_ENV: str(tmp_path / "cache"),
         released.SHA256_ENV: sha256(site / "network-lf.pytorch")}
  command = [sys.executable, str(script), "--model=sepconv-lf", "--frames", "a.png", "b.png", "--no_progress",
             "--output"]
  with serve(site) as (url, handler):
    r = subprocess.run([*command, "fetched.png"], cwd=run_dir, env={**env, released.MIRROR_ENV: url},
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert handler.requests == ["/network-lf.pytorch"]
  r = subprocess.run([*command, "cached.png"], cwd=run_dir, env=env, capture_output=True, text=True, timeout=600,
                     check=False)
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
  assert os.listdir(tmp_path / "cache") == ["sepconv-lf.safetensors"]
  with Image.open(run_dir / "fetched.png") as a, Image.open(run_dir / "cached.png") as b:
    assert a.size == (40, 24) and np.array_equal(np.asarray(a), np.asarray(b))
