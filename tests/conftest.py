"""Shared fixtures: a tiny ReFIn config on a tiny embedded dataset, and a runner for the entry point."""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

import pytest

from jaxvfi import config_lib

# Two glibc malloc arenas per process instead of up to 8 per core: the same test modules peak 10% lower in RSS
# (4.40 GB against 4.88 GB, equal time). Set here, before pytest-xdist starts its workers, so that the workers and
# every test's subprocess inherit it: a CI run's two workers and a subprocess once reached 21.3 of 24 GiB.
os.environ.setdefault("MALLOC_ARENA_MAX", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every process of the test run shares one persistent compilation cache, so the entry-point subprocesses and the
# in-process runs compile each distinct program once.
CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(ROOT, ".pytest_cache", "jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# Overrides that shrink configs/refin.py:runlocal,data=rendered to seconds: 32x32 crops of a 8-clip, 32x32 embedded
# dataset.
TINY = {
    "batch_size": 2,
    "eval_batch_size": 2,
    "num_train_steps": 1,
    "eval_every_steps": 1000,
    "checkpoint_every_steps": 1000,
    "log_every_steps": 1,
    "num_image_summaries": 2,
    "progress_bar": False,
    "data.crop_size": 32,
    "data.synthetic_num_train": 8,
    "data.synthetic_num_val": 2,
    "data.synthetic_size": 32,
}

# Overrides that shrink configs/dsfn.py:runlocal to seconds: 4x4 inputs (16x16 crops) of 2 training examples of
# 48x48, one 48x48 validation example (12x12 inputs, which SSIM's 11x11 window needs for the input-scale column).
DSFN_TINY = {
    "batch_size": 1,
    "eval_batch_size": 1,
    "num_train_steps": 2,
    "checkpoint_every_steps": 1,
    "eval_every_steps": 1000,
    "log_every_steps": 1,
    "progress_bar": False,
    "data.synthetic_num_train": 2,
    "data.synthetic_num_val": 1,
    "data.synthetic_size": 48,
    "data.augmentation_args.crop_size": 16,
}


# configs/sdan.py:runlocal,input=rgb shrunk to seconds: a 1-block, 8-feature SDAN on 4 pairs of 128 px targets,
# 64 px training crops (8 packed), the loss border lowered to 8 px to leave something of them.
SDAN_TINY = {
    "model.features": 8, "model.num_blocks": 1, "data.synthetic_size": 128, "data.synthetic_num_train": 4,
    "data.synthetic_num_val": 2, "data.augmentation_args": {"crop_size": 8}, "loss.border": 8, "batch_size": 2,
    "eval_batch_size": 2, "num_train_steps": 2, "eval_every_steps": 2, "checkpoint_every_steps": 1,
    "log_every_steps": 1, "num_image_summaries": 1, "progress_bar": False,
}


# TINY for configs/refin.py, with every UNet at a quarter of the papers' width (3.7 M parameters instead of 59.4 M):
# the trainer does the same work, and each checkpoint (parameters and Adam's two moments) is 45 MB instead of 713 MB,
# which halves a one-step run once it is compiled. Tests of the papers' parameter counts set unet_width = 1.
REFIN_TINY = {**TINY, "model.unet_width": 0.25}


def tiny_config(tfds_dir: str, arg: str = "runlocal,data=rendered", **overrides):
  return config_lib.load_config(os.path.join(ROOT, "configs", "refin.py"), arg,
                                {**REFIN_TINY, "data.tfds_dir": tfds_dir, **overrides})


def cli_args(tfds_dir: str, **overrides) -> list[str]:
  return [f"--config.{k}={v}" for k, v in {**REFIN_TINY, "data.tfds_dir": tfds_dir, **overrides}.items()]


def multi_device_flags(devices: int) -> str:
  """XLA_FLAGS for `devices` fake CPU devices. The collective timeouts are raised from XLA's 40 s because on a busy
  2-core machine one device thread can wait that long for the others, and XLA then aborts the process."""
  return (f"--xla_force_host_platform_device_count={devices} --xla_cpu_collective_timeout_seconds=900 "
          "--xla_cpu_collective_call_terminate_timeout_seconds=900")


def run_main(args: list[str], devices: int = 1, timeout: int = 900) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  if devices > 1:
    env["XLA_FLAGS"] = multi_device_flags(devices)
  return subprocess.run([sys.executable, "-m", "jaxvfi.main"] + args, cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))



def pytest_configure(config):
  """Refuses `--dist loadgroup` where it would not group. The groups keep each family's trainings on one worker,
  where they share compiled programs and fixtures; pytest 9.2 dropped the node-id suffix that pytest-xdist 3.8 groups
  by (pytest-xdist#1386), and the suite then ran ungrouped, and slower, without a word (BENCHMARKS.md)."""
  if config.getoption("dist", "no") != "loadgroup":
    return
  version = lambda module: tuple(int(p) for p in re.findall(r"\d+", importlib.metadata.version(module))[:3])
  if version("pytest") >= (9, 2) and version("pytest-xdist") <= (3, 8, 0):
    raise pytest.UsageError(f"pytest {pytest.__version__} with pytest-xdist {importlib.metadata.version('pytest-xdist')} "
                            "ignores --dist loadgroup (pytest-xdist#1386): pip install -e \".[test]\" keeps pytest "
                            "below 9.2")
