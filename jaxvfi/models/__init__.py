"""Model families: the contract between a paper's code and the shared trainer, evaluators and tools.

A paper is one family module, one config (`configs/<paper>.py`) and its loss terms. `config.model.name` names the
family: a bare name ("refin") imports `jaxvfi.models.refin`; a dotted path ("mypkg.my_family") imports a module of
your own package, so a new paper needs no edit to `jaxvfi/`. `get_family(name)` does the import; `build_model`,
`example_batch`, `make_loss_fn`, `load_pretrained` and `traits` below call the family's hooks or their defaults.

A family module exposes:
  build(model_config) -> flax.linen.Module
      Called as `module.apply({"params": params}, batch, train=bool, rngs={"dropout": rng})`; returns a prediction
      dict with at least "image" (the frames the evaluators compare with the ground truth).
  example_batch(config, batch_size=1) -> dict[str, jax.Array]
      A zero batch of the family's batch scheme at the training shapes of `config.data`; the one place used to
      initialise parameters for training, `--mode=summary` and inference.
  make_loss_fn(config) -> (loss_fn, notes)                                    optional
      `loss_fn(preds, batch) -> (total, metrics)`; notes are sentences the log and the eval JSON carry.
      Default: `jaxvfi.losses.make_loss_fn(config.loss)`, the generic terms.
  check_config(config) -> None                                                optional
      Raises one ValueError for a config that cannot train (e.g. missing weights), before any data is prepared.
  load_pretrained(params, config) -> (params, notes)                          optional
      Pretrained weights a config names (e.g. ReFIn's PWC-Net). Default: unchanged, no notes.
  make_train_setup(config, model, loss_fn, total_steps, steps_per_epoch) -> jaxvfi.train.TrainSetup   optional
      The train state and the pure step. Default: `jaxvfi.train.supervised_setup` (one parameter tree, one optax
      transformation from `config.optimizer`). A GAN returns a state holding both networks and both optimizer
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

Batch schemes (numpy float32 in [0, 1], channels last; B examples):
  triplet (ReFIn, Super-SloMo, SepConv, SepConv-GAN):
    frame0, frame1: (B, H, W, 3) the frames at t = 0 and t = 1;  target: (B, H, W, 3) the frame at t;  t: (B,).
    Predictions: image (B, H, W, 3), plus the family's intermediates (flows, kernels, ...).
  restoration sequence (DSFN):
    blurry: (B, N, h, w, 3) blurry low-resolution inputs;  sharp: (B, 2N-1, H, W, 3) sharp high-resolution ground
    truth at sharp_times;  blurry_times: (B, N);  sharp_times: (B, 2N-1).
    Predictions: image (B, T, H, W, 3), the frames scored against the ground truth, plus per-level outputs.
  reference SR (SDAN):
    lr_raw: (B, c, c, 4) packed RAW;  lr_rgb: (B, 2c, 2c, 3) the input shot's camera RGB;  hr_rgb: (B, 8c, 8c, 3)
    the 4x target (see `jaxvfi.input_pipeline`).  Predictions: image (B, 8c, 8c, 3), plus the aligned head and mask.

Shared files never compare family names: what differs between papers is a hook or a trait here.
"""
from __future__ import annotations

import importlib
import types
from typing import Any

import jax
import jax.numpy as jnp


def get_family(name: str | None) -> types.ModuleType:
  """The family module of `config.model.name` (module docstring); one ValueError naming what is wrong."""
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
  return module


def build_model(model_config):
  """The family's Flax module for `config.model`."""
  return get_family(model_config.get("name")).build(model_config)


def example_batch(config, batch_size: int = 1) -> dict[str, Any]:
  """The family's zero batch (module docstring) for `config`."""
  family = get_family(config.model.get("name"))
  if not hasattr(family, "example_batch"):
    raise ValueError(f"model family {config.model.name!r} has no example_batch(config, batch_size)")
  return family.example_batch(config, batch_size)


def triplet_example_batch(config, batch_size: int = 1) -> dict[str, jax.Array]:
  """A zero triplet batch; parameter shapes do not depend on the frame size (`data.crop_size`, 64 when none)."""
  s = int(config.data.get("crop_size") or 0) or 64
  img = jnp.zeros((batch_size, s, s, 3), jnp.float32)
  return {"frame0": img, "frame1": img, "target": img, "t": jnp.full((batch_size,), 0.5, jnp.float32)}


def make_loss_fn(config):
  """(loss_fn, notes) of the family's `make_loss_fn`, or the generic terms of `config.loss`."""
  family = get_family(config.model.get("name"))
  if hasattr(family, "make_loss_fn"):
    return family.make_loss_fn(config)
  from jaxvfi import losses  # pylint: disable=g-import-not-at-top
  return losses.make_loss_fn(config.loss)


def check_config(config) -> None:
  """The family's `check_config` (one ValueError for a config that cannot train), or nothing; and
  `check_test_time_augmentation`."""
  check_test_time_augmentation(config)
  family = get_family(config.model.get("name"))
  if hasattr(family, "check_config"):
    family.check_config(config)


def load_pretrained(params, config):
  """(params, notes) after the family's `load_pretrained`, or unchanged."""
  family = get_family(config.model.get("name"))
  if hasattr(family, "load_pretrained"):
    return family.load_pretrained(params, config)
  return params, []


def traits(model_config) -> dict[str, Any]:
  """The family's traits: has_time_input (default True), evaluator (default "vfi_triplet") and
  rotation_equivariant (default True)."""
  family = get_family(model_config.get("name"))
  return {"has_time_input": bool(getattr(family, "HAS_TIME_INPUT", True)),
          "evaluator": str(getattr(family, "EVALUATOR", "vfi_triplet")),
          "rotation_equivariant": bool(getattr(family, "ROTATION_EQUIVARIANT", True))}


def rotate180(x):
  """An image array (..., H, W, C) rotated by 180 degrees (flipped in H and W); arrays of rank < 4 (t, times) are
  returned unchanged."""
  return jnp.flip(x, (-3, -2)) if jnp.ndim(x) >= 4 else x


def predict(model, params, batch: dict, test_time_augmentation: bool = False) -> dict[str, Any]:
  """The prediction dict of `model` at inference (`train=False`).

  With `test_time_augmentation`, preds["image"] is the mean of the prediction on `batch` and the prediction on the
  batch rotated by 180 degrees (`rotate180` of every image), rotated back: RIFE's TTA (Huang et al., ECCV 2022,
  `Model.inference(..., TTA=True)`), at twice the cost. The other keys are those of the plain prediction. Check the
  family's `rotation_equivariant` trait before asking for it (`check_test_time_augmentation`).
  """
  preds = model.apply({"params": params}, batch, train=False)
  if not test_time_augmentation:
    return preds
  rotated = model.apply({"params": params}, jax.tree.map(rotate180, batch), train=False)["image"]
  return {**preds, "image": 0.5 * (preds["image"] + rotate180(rotated))}


def check_test_time_augmentation(config) -> bool:
  """`config.test_time_augmentation`, or one ValueError when the family's inputs cannot be rotated."""
  if not config.get("test_time_augmentation", False):
    return False
  if not traits(config.model)["rotation_equivariant"]:
    raise ValueError(f"test_time_augmentation: model {config.model.name!r} takes inputs that a 180-degree rotation "
                     "does not keep valid (its family sets ROTATION_EQUIVARIANT = False); set it to False")
  return True
