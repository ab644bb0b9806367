"""Model families: the contract between a paper's code and the shared trainer, evaluators and tools.

A paper is one family module, one config (`configs/<paper>.py`) and its loss terms. `config.model.name` names the
family: a bare name ("refin") imports `jaxvfi.models.refin`; a dotted path ("mypkg.my_family") imports a module of
your own package, so a new paper needs no edit to `jaxvfi/`. `get_family(name)` imports it once and resolves it into
a `Family`: its hooks, with the defaults filled in, which the trainer, the evaluators and the tools hold.

A family module exposes:
  build(model_config) -> flax.linen.Module
      Called as `module.apply({"params": params}, batch, train=bool, rngs={"dropout": rng})`; returns a prediction
      dict with at least "image" (`jaxvfi.batches`).
  example_batch(config, batch_size=1) -> dict[str, jax.Array]
      A zero batch of the family's batch scheme (`jaxvfi.batches`) at the training shapes of `config.data`; the one
      place used to initialise parameters for training, `--mode=summary` and inference.
  make_loss_fn(config) -> (loss_fn, notes)                                    optional
      `loss_fn(preds, batch) -> (total, metrics)`; notes are sentences the log and the eval JSON carry.
      Default: `jaxvfi.losses.make_loss_fn(config.loss)`, the generic terms.
  check_config(config) -> None                                                optional
      Raises one ValueError for a config that cannot train (e.g. missing weights), before any data is prepared.
  load_pretrained(params, config) -> (params, notes)                          optional
      Pretrained weights a config names (e.g. ReFIn's PWC-Net). Default: unchanged, no notes.
  make_train_setup(config, model, loss_fn, init_batch, total_steps, steps_per_epoch) -> jaxvfi.steps.TrainSetup
      optional. The train state and the pure step. Default: `jaxvfi.steps.supervised_setup` (one parameter tree, one
      optax transformation from `config.optimizer`). A GAN returns a state holding both networks and both optimizer
      states; the trainer checkpoints every field of the state, so any family resumes exactly.
  baselines(batch, config) -> dict[str, jax.Array]                            optional
      Trivial predictions in the layout of preds["image"] that the `restoration` evaluator scores beside the model
      (e.g. bicubic upsampling).
  HAS_TIME_INPUT: bool                                                        triplet families
      False: the network makes the middle frame only, and `jaxvfi.interpolate` reaches other times by bisection.
  EVALUATOR: str                                                              optional, default "vfi_triplet"
      The evaluator type of periodic validation (`config.evals.validation.type` when the config leaves it unset).
  ROTATION_EQUIVARIANT: bool                                                  optional, default True
      False: rotating every input image by 180 degrees is not a valid input (e.g. packed Bayer RAW, whose colour
      phase the rotation changes), so `predict` refuses test-time augmentation.
  RELEASED_MODEL_CONFIG: dict, TORCH_LAYOUT: jaxvfi.torch_weights.TorchLayout  optional, both or neither
      The `config.model` fields that reproduce the original code around its released weights, and the layout of
      those weights (`jaxvfi.weights`).

Shared files never compare family names: what differs between papers is a hook or a trait here.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
import types
from typing import Any, Callable

import jax

from jaxvfi import batches
from jaxvfi import losses
from jaxvfi import steps
from jaxvfi import torch_weights
import jaxvfi.models as models_package


def _default_loss_fn(config):
  return losses.make_loss_fn(config.loss)


def _no_check(config) -> None:
  del config


def _no_pretrained(params, config):
  del config
  return params, []


@dataclasses.dataclass(frozen=True)
class Family:
  """A resolved family (module docstring): every hook callable, every trait a value."""
  name: str
  module: types.ModuleType
  build: Callable
  example_batch: Callable
  make_loss_fn: Callable
  check_family_config: Callable
  load_pretrained: Callable
  make_train_setup: Callable
  baselines: Callable | None
  has_time_input: bool
  evaluator: str
  rotation_equivariant: bool
  released_model_config: dict[str, Any] | None
  torch_layout: torch_weights.TorchLayout | None

  def check_config(self, config) -> None:
    """One ValueError for a config that cannot train: the family's `check_config` and
    `check_test_time_augmentation`."""
    self.check_test_time_augmentation(config)
    self.check_family_config(config)

  def check_test_time_augmentation(self, config) -> bool:
    """`config.test_time_augmentation`, or one ValueError when the family's inputs cannot be rotated."""
    if not config.get("test_time_augmentation", False):
      return False
    if not self.rotation_equivariant:
      raise ValueError(f"test_time_augmentation: model {self.name!r} takes inputs that a 180-degree rotation does "
                       "not keep valid (its family sets ROTATION_EQUIVARIANT = False); set it to False")
    return True


@functools.lru_cache(maxsize=None)
def get_family(name: str | None) -> Family:
  """The `Family` of `config.model.name` (module docstring); one ValueError naming what is wrong."""
  if not name:
    raise ValueError("config.model.name is not set: name a model family, e.g. refin, sepconv, or mypkg.my_family")
  path = name if "." in name else f"jaxvfi.models.{name}"
  try:
    module = importlib.import_module(path)
  except ModuleNotFoundError as e:
    if e.name is not None and not path.startswith(e.name) and not e.name.startswith(path):
      raise  # the family exists but one of its own imports is missing: show the real error
    raise ValueError(f"unknown model {name!r}: no module {path} (a family is jaxvfi.models.<name> or a dotted "
                     "path to your own module)") from None
  if not callable(getattr(module, "build", None)):
    raise ValueError(f"unknown model {name!r}: module {path} is not a model family (it has no build(model_config))")
  if not callable(getattr(module, "example_batch", None)):
    raise ValueError(f"model family {name!r} has no example_batch(config, batch_size)")
  return Family(
      name=name, module=module, build=module.build, example_batch=module.example_batch,
      make_loss_fn=getattr(module, "make_loss_fn", _default_loss_fn),
      check_family_config=getattr(module, "check_config", _no_check),
      load_pretrained=getattr(module, "load_pretrained", _no_pretrained),
      make_train_setup=getattr(module, "make_train_setup", steps.supervised_setup),
      baselines=getattr(module, "baselines", None),
      has_time_input=bool(getattr(module, "HAS_TIME_INPUT", True)),
      evaluator=str(getattr(module, "EVALUATOR", "vfi_triplet")),
      rotation_equivariant=bool(getattr(module, "ROTATION_EQUIVARIANT", True)),
      released_model_config=getattr(module, "RELEASED_MODEL_CONFIG", None),
      torch_layout=getattr(module, "TORCH_LAYOUT", None))


def released_families() -> list[str]:
  """The names of jaxvfi's families whose authors released weights (`RELEASED_MODEL_CONFIG` and `TORCH_LAYOUT`)."""
  names = [m.name for m in pkgutil.iter_modules(models_package.__path__) if not m.name.startswith("_")]
  out = []
  for name in sorted(names):
    try:
      family = get_family(name)
    except ValueError:  # a network module, not a family
      continue
    if family.released_model_config is not None and family.torch_layout is not None:
      out.append(name)
  return out


def of(config) -> Family:
  """The family of `config` (`config.model.name`)."""
  return get_family(config.model.get("name"))


def build_model(model_config):
  """The family's Flax module for `config.model`."""
  return get_family(model_config.get("name")).build(model_config)


def predict(model, params, batch: dict, test_time_augmentation: bool = False) -> dict[str, Any]:
  """The prediction dict of `model` at inference (`train=False`).

  With `test_time_augmentation`, preds["image"] is the mean of the prediction on `batch` and the prediction on the
  batch rotated by 180 degrees (`batches.rotate180` of every image), rotated back: RIFE's TTA (Huang et al., ECCV
  2022, `Model.inference(..., TTA=True)`), at twice the cost. The other keys are those of the plain prediction.
  Check the family's `rotation_equivariant` trait before asking for it (`Family.check_test_time_augmentation`).
  """
  preds = model.apply({"params": params}, batch, train=False)
  if not test_time_augmentation:
    return preds
  rotated = model.apply({"params": params}, jax.tree.map(batches.rotate180, batch), train=False)["image"]
  return {**preds, "image": 0.5 * (preds["image"] + batches.rotate180(rotated))}


def make_predict_fn(model, test_time_augmentation: bool = False) -> Callable:
  """(params, batch) -> the family's whole prediction dict, jitted (one compilation per batch shape); with
  `test_time_augmentation`, "image" averaged over the 180-degree rotation (`predict`)."""
  return jax.jit(functools.partial(predict, model, test_time_augmentation=test_time_augmentation))
