"""Example transforms of the "sdan" preset (paper 004, Sec. 4.1): an SR-RAW pair (lr_raw, black_level,
white_level, lr_rgb, hr_rgb) -> normalised packed RAW, input RGB and HR target (`jaxvfi.input_pipeline`'s
docstring)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from jaxvfi import augment
from jaxvfi import data_config

SDAN_SCALES = (1, 2, 8)  # lr_raw, lr_rgb, hr_rgb sizes in units of the packed-RAW grid (`jaxvfi.datasets.sr_raw`).


def _sdan_element(raw: np.ndarray, rgb: np.ndarray, hr: np.ndarray, element: dict[str, Any]) -> data_config.Batch:
  return {"lr_raw": augment.normalize_raw(raw, element["black_level"], element["white_level"]),
          "lr_rgb": rgb.astype(np.float32) / np.float32(255), "hr_rgb": hr.astype(np.float32) / np.float32(255)}


class SdanTransform:
  """SDAN training example (paper 004, Sec. 4.1): aligned RAW / RGB / HR crops, the same flips on all three."""

  def __init__(self, params: dict[str, Any]):
    self.crop = data_config.crop_shape(params["crop_size"])
    self.flip_h = bool(params["random_flip_h"])
    self.flip_v = bool(params["random_flip_v"])

  def __call__(self, element: dict[str, Any], rng: np.random.Generator) -> data_config.Batch:
    arrays = [element["lr_raw"], element["lr_rgb"], element["hr_rgb"]]
    if self.crop is not None:
      arrays = augment.random_aligned_crop(arrays, SDAN_SCALES, rng, self.crop)
    arrays = augment.random_flip(arrays, rng, self.flip_h, self.flip_v)
    return _sdan_element(*arrays, element)


def eval_element(element: dict[str, Any]) -> data_config.Batch:
  """Evaluation: the whole pair, normalised."""
  return _sdan_element(element["lr_raw"], element["lr_rgb"], element["hr_rgb"], element)


def eval_transform(params: dict[str, Any]) -> Callable[[dict[str, Any]], data_config.Batch]:
  """Evaluation: `eval_element` (the preset's parameters only shape training)."""
  del params
  return eval_element
