"""Example transforms of the "dsfn" preset (paper 002, Sec. 4.1): a blur example (blurry, blurry_times, sharp,
sharp_times) -> blurry inputs bicubic x1/scale and sharp HR targets (`jaxvfi.input_pipeline`'s docstring)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from jaxvfi import augment
from jaxvfi import data_config


def _dsfn_element(blurry: np.ndarray, sharp: np.ndarray, element: dict[str, Any]) -> data_config.Batch:
  return {"blurry": blurry, "sharp": sharp, "blurry_times": np.asarray(element["blurry_times"], np.float32),
          "sharp_times": np.asarray(element["sharp_times"], np.float32)}


class DsfnTransform:
  """DSFN training example (paper 002, Sec. 4.1): HR crop, flips and colour jitter on all frames, then the blurry
  ones bicubic x1/scale with Gaussian noise."""

  def __init__(self, params: dict[str, Any]):
    self.crop = data_config.crop_shape(params["crop_size"])
    self.scale = int(params["scale"])
    if self.crop is not None and (self.crop[0] % self.scale or self.crop[1] % self.scale):
      raise ValueError(f"preset 'dsfn': crop_size {self.crop} is not a multiple of the scale {self.scale}")
    self.flip_h = bool(params["random_flip_h"])
    self.flip_v = bool(params["random_flip_v"])
    self.jitter = float(params["color_jitter"])
    self.noise_std = float(params["noise_std"])

  def __call__(self, element: dict[str, Any], rng: np.random.Generator) -> data_config.Batch:
    count = len(element["blurry"])
    frames = np.concatenate([element["blurry"], element["sharp"]])  # One HR grid: one window, one flip, one jitter.
    if self.crop is not None:
      frames = augment.random_crop(frames, rng, self.crop)
    (frames,) = augment.random_flip([frames], rng, self.flip_h, self.flip_v)
    frames = augment.color_jitter(frames.astype(np.float32) / np.float32(255), rng, self.jitter)
    blurry = augment.gaussian_noise(augment.bicubic_downscale(frames[:count], self.scale), rng, self.noise_std)
    return _dsfn_element(blurry, frames[count:], element)


def eval_element(element: dict[str, Any], scale: int) -> data_config.Batch:
  """Whole frames cut to a multiple of `scale` (the usual SR "modcrop"), blurry ones bicubic x1/scale, no noise."""
  count = len(element["blurry"])
  frames = np.concatenate([element["blurry"], element["sharp"]])
  height, width = frames.shape[1] // scale * scale, frames.shape[2] // scale * scale
  frames = frames[:, :height, :width].astype(np.float32) / np.float32(255)
  return _dsfn_element(augment.bicubic_downscale(frames[:count], scale), frames[count:], element)


def eval_transform(params: dict[str, Any]) -> Callable[[dict[str, Any]], data_config.Batch]:
  """Evaluation: `eval_element` at the preset's scale."""
  return functools.partial(eval_element, scale=int(params["scale"]))
