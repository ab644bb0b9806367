"""Helpers shared by the files in configs/: the arg-string parser and the fields every config has; loading a
config file from Python (notebooks, tests) with the same overrides `--config.a.b=v` gives on the command line."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, Mapping

import ml_collections
from ml_collections import config_dict

from jaxvfi import data_config


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses a config arg string "a=1,b=x,flag" into typed values (types taken from `defaults`).

  A bare name sets a boolean default to True. Unknown keys raise, so a typo in a variant name is one clear error.
  """
  out = ml_collections.ConfigDict(defaults)
  if not arg:
    return out
  for item in arg.split(","):
    item = item.strip()
    if not item:
      continue
    key, eq, value = item.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config arg {key!r}; known: {', '.join(sorted(defaults))}")
    default = defaults[key]
    if not eq:
      if not isinstance(default, bool):
        raise ValueError(f"config arg {key!r} needs a value ({key}=...)")
      out[key] = True
    elif isinstance(default, bool):
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"config arg {key}={value!r}: expected true or false")
      out[key] = value.lower() in ("true", "1")
    else:
      out[key] = type(default)(value)
  return out


def base_config() -> ml_collections.ConfigDict:
  """Fields every jaxvfi config has, whatever its task; a paper's config fills them from its recipe and adds its
  benchmarks to `evals` (e.g. `vfi_benchmarks`)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 4                     # global, split across local devices
  c.num_train_steps = -1               # > 0 wins over num_epochs
  c.num_epochs = 0.0                   # one epoch = one pass over data.train_split
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.log_every_steps = 50
  c.keep_checkpoints = 3
  c.eval_batch_size = 4
  c.num_eval_examples = -1             # -1: the whole eval split
  c.num_image_summaries = 4            # examples in the TensorBoard / PNG grid
  c.eval_metrics = ("psnr", "ssim")    # jaxvfi.metrics.METRICS, and "lpips"; "ms_ssim" needs frames >= 176 px
  # Evaluation (and jaxvfi.interpolate) averages each prediction with the one on the 180-degree rotated inputs:
  # RIFE's TTA, twice the cost (jaxvfi.families.predict). Off in every paper's recipe, as the papers report.
  c.test_time_augmentation = False
  c.lpips_weights = config_dict.placeholder(str)  # .npz of `python -m jaxvfi.weights convert --arch=lpips_alex`
  c.use_pmap = True                    # data-parallel over all local devices when there are several
  c.init_from = config_dict.placeholder(str)  # workdir or checkpoint dir whose params initialise the model
  c.require_init_from = False          # e.g. ReFIn stage 2: refuse to start from random parameters
  c.progress_bar = True
  c.data = data_config.default_data_config()
  # Evaluations by type (jaxvfi.evaluators). "validation" scores data.eval_split every eval_every_steps with the
  # family's evaluator type; a paper's config adds its benchmarks, which run after training and in --mode=eval once
  # their folder is given.
  c.evals = ml_collections.ConfigDict({
      "validation": {"type": config_dict.placeholder(str), "split": config_dict.placeholder(str),
                     "every_steps": config_dict.placeholder(int), "color": "rgb", "crop_border": 0}})
  c.model = ml_collections.ConfigDict()
  c.loss = ml_collections.ConfigDict()
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, grad_clip_norm=0.0,
      schedule=dict(name="constant", init_value=1e-4),
      # Per-module learning rates: {top-level module name: schedule dict}; modules not named use `schedule`.
      groups={},
  ))
  return c


def vfi_benchmarks() -> dict[str, dict[str, Any]]:
  """The interpolation benchmarks of the VFI configs, entries of `config.evals`: Vimeo-90K, UCF101 and Middlebury
  triplets, each run once its folder is given (--config.evals.vimeo90k.dir=/data/vimeo_triplet), into
  results_<step>.md in the layout of ReFIn's Table 1. A config adds them with `c.evals.update(vfi_benchmarks())`."""
  return {name: {"type": "vfi_triplet", "dataset": dataset, "dir": config_dict.placeholder(str), "split": "test"}
          for name, dataset in (("vimeo90k", "vimeo90k_triplet"), ("ucf101", "ucf101_triplet"),
                                ("middlebury", "middlebury_other"))}


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Mapping[str, Any] | None) -> ml_collections.ConfigDict:
  """Sets dotted keys ("data.crop_size") like `--config.data.crop_size=...`; an unknown key raises KeyError."""
  for key, value in (overrides or {}).items():
    node = config
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    if last not in node:
      raise KeyError(f"unknown config field {key!r}")
    node[last] = value
  return config


def load_config(path: str | os.PathLike, arg: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of a configs/<paper>.py file, with `overrides` applied (see `apply_overrides`)."""
  spec = importlib.util.spec_from_file_location(f"jaxvfi_config_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # a config file may define dataclasses, which look their module up
  spec.loader.exec_module(module)
  return apply_overrides(module.get_config(arg), overrides)


def packaged_config_path(path: str) -> str | None:
  """The file of the packaged config that a `--config` path names when that path does not exist from the current
  directory: `configs/<name>.py` (or `<name>.py`, or any `.../configs/<name>.py`) of a config shipped as
  `jaxvfi.configs.<name>`; None when the path exists, or names no packaged config. So the repository's
  `--config=configs/refin.py` works from any directory of an installed jaxvfi."""
  if not path or os.path.exists(path):
    return None
  folder, filename = os.path.split(os.path.normpath(path))
  name, ext = os.path.splitext(filename)
  if ext != ".py" or not name.isidentifier() or os.path.basename(folder) not in ("", "configs"):
    return None
  try:
    spec = importlib.util.find_spec(f"jaxvfi.configs.{name}")
  except ImportError:
    return None
  return spec.origin if spec is not None and spec.origin and os.path.isfile(spec.origin) else None


def packaged_config_argv(argv: list[str]) -> tuple[list[str], str | None]:
  """`argv` with a `--config=configs/<paper>.py[:arg]` that does not exist from the current directory replaced by
  the packaged config of that name (`packaged_config_path`), so that the repository's commands work from
  any directory of an installed jaxvfi; and a note saying which file was used (None when nothing was replaced)."""
  argv = list(argv)
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      value, prefix = arg[len("--config="):], "--config="
    elif arg == "--config" and i + 1 < len(argv):
      value, prefix, i = argv[i + 1], "", i + 1
    else:
      continue
    path, colon, config_arg = value.partition(".py:")
    path = path + ".py" if colon else value
    packaged = packaged_config_path(path)
    if packaged is None:
      return argv, None
    argv[i] = prefix + packaged + (":" + config_arg if colon else "")
    return argv, (f"--config={path}: no such file in the current directory {os.getcwd()}; using the packaged "
                  f"config of that name, {packaged}")
  return argv, None


def packaged_config(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the config shipped in the installed package as `jaxvfi.configs.<name>` (the repository's
  `configs/<name>.py`, mapped there by pyproject.toml), so that tools work from any install and any directory.

  Raises:
    ModuleNotFoundError: no config of that name is shipped (or an editable install predates the mapping: reinstall).
  """
  return importlib.import_module(f"jaxvfi.configs.{name}").get_config(arg)
