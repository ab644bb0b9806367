"""Example transforms of the interpolation presets ("clip", "refin", "sepconv", "sepconv_gan"): a clip (frames,
times, id) -> frame0, frame1, target, t (`jaxvfi.input_pipeline`'s docstring). The presets' parameters are in
`jaxvfi.data_config` (`PRESET_PARAMS`, and the data config's own fields for "clip")."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from jaxvfi import augment
from jaxvfi import data_config

MOTION_FILTER_TRIES = 10  # preset sepconv_gan: redraws of a crop that fails the motion filter


def frame_at(times: np.ndarray, t: float) -> int | None:
  """Index of the frame whose time is t (float32 times, so compared with a tolerance), or None."""
  hits = np.flatnonzero(np.abs(np.asarray(times, np.float64) - t) < 1e-5)
  return int(hits[0]) if hits.size else None


def _triplet(frames: np.ndarray, times: np.ndarray, index: int) -> tuple[np.ndarray, float]:
  """(first, frames[index], last) stacked as (3, H, W, 3), and the target's time."""
  return np.stack([frames[0], frames[index], frames[-1]]), float(times[index])


def _to_batch_element(stack: np.ndarray, t: float) -> data_config.Batch:
  images = stack.astype(np.float32) / np.float32(255)
  return {"frame0": images[0], "frame1": images[2], "target": images[1], "t": np.float32(t)}


class ClipTransform:
  """Target selection and augmentation of one clip ("clip", "refin", "sepconv", "sepconv_gan")."""

  def __init__(self, params: dict[str, Any], flow_crop: bool):
    self.t_sampling = params["t_sampling"]
    self.t = float(params["t"])
    self.crop = data_config.crop_shape(params["crop_size"])
    self.flip_h = bool(params["random_flip_h"])
    self.flip_v = bool(params["random_flip_v"])
    self.swap = bool(params["temporal_swap"])
    # Presets other than "clip" and configs written before the field: off.
    self.channel_reverse = bool(params.get("random_channel_reverse"))
    self.flow_crop = flow_crop
    # sepconv_gan resizes by its own rule (`_resize`), so its preset has no random_downscale.
    min_scale = params.get("random_downscale")
    self.min_scale = 1.0 if min_scale is None else float(min_scale)  # None: a config written before the field
    if not 0.0 < self.min_scale <= 1.0:
      raise ValueError(f"data.random_downscale must be in (0, 1] (1: off), got {self.min_scale}")
    if self.min_scale < 1.0 and self.crop is None:
      raise ValueError("data.random_downscale needs a data.crop_size: downscaled whole frames would differ in size "
                       "within a batch")
    if flow_crop:
      if self.crop is None or self.crop[0] != self.crop[1]:
        raise ValueError(f"preset 'sepconv_gan' needs a square crop, got crop_size={params['crop_size']!r}")
      self.max_offset = int(params["max_offset"])
      self.independent = bool(params["independent_offsets"])
      self.resize = bool(params["random_resize"])
      self.max_height = params["max_height"]
      self.flip_mode = params["flip_mode"]
      if self.flip_mode not in ("independent", "one_of_three"):
        raise ValueError(f"preset 'sepconv_gan': flip_mode must be independent or one_of_three, got {self.flip_mode!r}")
      self.motion_filter = (float(params["motion_filter_mse"]), float(params["motion_filter_std"])) \
          if params["motion_filter"] else None
      self.real_frames = bool(params["discriminator_frames"])

  def _target_index(self, element: dict[str, Any], rng: np.random.Generator) -> int:
    times = element["times"]
    if self.t_sampling == "uniform":
      if len(times) < 3:
        raise ValueError(f"t_sampling='uniform' needs clips with interior frames; clip {element.get('id')!r} has "
                         f"times {times}")
      return int(rng.integers(1, len(times) - 1))
    index = frame_at(times, self.t)
    if index is None:
      raise ValueError(f"t_sampling='fixed' with t={self.t}, but clip {element.get('id')!r} has times {times}")
    return index

  def __call__(self, element: dict[str, Any], rng: np.random.Generator) -> data_config.Batch:
    stack, t = _triplet(element["frames"], element["times"], self._target_index(element, rng))
    if not self.flow_crop:
      if self.min_scale < 1.0:
        stack = augment.random_downscale(stack, rng, self.min_scale, self.crop)
      if self.crop is not None:
        stack = augment.random_crop(stack, rng, self.crop)
      return self._flip_and_swap(stack, t, rng)
    whole = stack
    for _ in range(MOTION_FILTER_TRIES if self.motion_filter else 1):
      stack = self._resize(whole, rng)
      stack = augment.random_flow_crop(stack, rng, self.crop[0], self.max_offset, self.independent)
      if self.motion_filter is None or augment.passes_motion_filter(stack, *self.motion_filter):
        break
    if self.flip_mode == "one_of_three":
      stack, t = augment.random_flip_or_reverse(stack, t, rng)
      out = _to_batch_element(stack, t)
    else:
      out = self._flip_and_swap(stack, t, rng)
    if self.real_frames:
      frame = element["frames"][int(rng.integers(0, len(element["frames"])))][None]
      real = augment.random_crop(self._resize(frame, rng), rng, self.crop)
      out["real"] = real[0].astype(np.float32) / np.float32(255)
    return out

  def _resize(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not self.resize:
      return frames
    return augment.random_resize(frames, rng, self.crop[0] + 2 * self.max_offset, self.max_height)

  def _flip_and_swap(self, stack: np.ndarray, t: float, rng: np.random.Generator) -> data_config.Batch:
    (stack,) = augment.random_flip([stack], rng, self.flip_h, self.flip_v)
    if self.swap:
      stack, t = augment.random_temporal_swap(stack, t, rng)
    if self.channel_reverse:  # Drawn last, so turning it on leaves the other draws of a seed as they were.
      stack = augment.random_channel_reverse(stack, rng)
    return _to_batch_element(stack, t)


def _eval_element(element: dict[str, Any], t: float) -> data_config.Batch:
  index = frame_at(element["times"], t)
  if index is None:
    index = len(element["times"]) // 2
  return _to_batch_element(*_triplet(element["frames"], element["times"], index))


def eval_transform(params: dict[str, Any]) -> Callable[[dict[str, Any]], data_config.Batch]:
  """Evaluation: the frame at the preset's t if the clip has one, else its middle frame; whole frames."""
  t = float(params["t"])
  return lambda element: _eval_element(element, t)
