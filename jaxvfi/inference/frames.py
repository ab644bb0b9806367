"""Making the frames between two frames: tiling, alpha, scene cuts; reading a pair of image files.

`interpolate_pair` is the whole act for one pair: a scene cut (`scene_score` above `Options.scene_threshold`)
repeats frame0; otherwise `interpolate_rgba` sends colour premultiplied by alpha (and alpha, as a gray image, or
blended linearly) through `interpolate_tiled`, which calls the model on the whole frame or tile by tile
(`tile_windows`: every window one size, so one compile; only each tile's core is kept). The model is any object with
`interpolate(frame0, frame1, times)` (`jaxvfi.inference.interpolator.Interpolator`).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from absl import logging
import numpy as np

from jaxvfi import utils
from jaxvfi import video_io
from jaxvfi.inference import interpolator

SCENE_THRESHOLD = video_io.SCENE_THRESHOLD  # scene_score above which a pair is a cut
DEFAULT_TILE_OVERLAP = 32
ALPHA_MODES = ("model", "blend", "drop")


def read_frame_pair(path0: str, path1: str, keep_alpha: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Two image files of one size (`jaxvfi.video_io.read_frame`); with `keep_alpha`, both RGBA if either has alpha.

  Raises:
    ValueError: the sizes differ, or a file is not an image; FileNotFoundError: a file is missing.
  """
  frame0, frame1 = video_io.read_frame(path0, keep_alpha), video_io.read_frame(path1, keep_alpha)
  if frame0.shape[:2] != frame1.shape[:2]:
    (h0, w0), (h1, w1) = frame0.shape[:2], frame1.shape[:2]
    raise ValueError(f"frame sizes differ: {path0} is {w0}x{h0} and {path1} is {w1}x{h1} (width x height); "
                     "both frames must have the same size")
  if frame0.shape != frame1.shape:  # one RGBA, one RGB: the RGB one is opaque
    frame0, frame1 = (with_alpha(f) for f in (frame0, frame1))
  return frame0, frame1


def with_alpha(frame: np.ndarray) -> np.ndarray:
  """An (H, W, 3) uint8 frame with an opaque alpha channel appended; an (H, W, 4) frame as is."""
  if frame.shape[-1] == 4:
    return frame
  return np.concatenate([frame, np.full(frame.shape[:2] + (1,), 255, np.uint8)], axis=-1)


@dataclasses.dataclass(frozen=True)
class Options:
  """How new frames are made; `jaxvfi.interpolate`'s flags of the same names.

  alpha: "model" (alpha through the model as a gray image), "blend" ((1 - t) a0 + t a1) or "drop" (RGB out).
  scene_threshold: `scene_score` above which a pair is a cut and its new frames repeat the earlier frame; None: no
    detection.
  tile, tile_overlap: tile size and context in pixels; tile = 0 processes whole frames.
  dyadic_depth: for models without a time input, retimed t are rounded to k / 2^dyadic_depth.
  """
  alpha: str = "model"
  scene_threshold: float | None = SCENE_THRESHOLD
  tile: int = 0
  tile_overlap: int = DEFAULT_TILE_OVERLAP
  dyadic_depth: int = interpolator.DEFAULT_DYADIC_DEPTH


scene_score = video_io.scene_score


def tile_windows(height: int, width: int, tile: int, overlap: int) -> list[tuple[slice, slice, slice, slice]]:
  """(window_rows, window_cols, core_rows_in_window, core_cols_in_window) covering a frame with T x T tiles.

  The cores partition the frame; each window is the core with `overlap` pixels of context on every side, shifted
  inward at the frame border rather than cut, so every window has one size, min(T + 2 overlap, H) x min(..., W).
  """
  wh, ww = min(height, tile + 2 * overlap), min(width, tile + 2 * overlap)
  out = []
  for y0 in range(0, height, tile):
    y1 = min(y0 + tile, height)
    top = min(max(y0 - overlap, 0), height - wh)
    for x0 in range(0, width, tile):
      x1 = min(x0 + tile, width)
      left = min(max(x0 - overlap, 0), width - ww)
      out.append((slice(top, top + wh), slice(left, left + ww), slice(y0 - top, y1 - top),
                  slice(x0 - left, x1 - left)))
  return out


def interpolate_tiled(interp, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float], options: Options
               ) -> list[np.ndarray]:
  """interp.interpolate, tile by tile when options.tile is set; uint8 or float [0, 1] (H, W, 3) in, uint8 out."""
  h, w = frame0.shape[:2]
  if not options.tile or (h <= options.tile and w <= options.tile):
    return interp.interpolate(frame0, frame1, times)
  outs = [np.empty((h, w, 3), np.uint8) for _ in times]
  for rows, cols, core_rows, core_cols in tile_windows(h, w, options.tile, options.tile_overlap):
    pieces = interp.interpolate(frame0[rows, cols], frame1[rows, cols], times)
    for out, piece in zip(outs, pieces):
      out[rows, cols][core_rows, core_cols] = piece[core_rows, core_cols]
  return outs


def interpolate_rgba(interp, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                options: Options = Options()) -> list[np.ndarray]:
  """Frames at `times` between two uint8 frames of 3 (RGB) or 4 (RGBA) channels, in their channel count.

  RGB goes through the model (tiled per `options`). RGBA: colour premultiplied by alpha goes through the model; alpha
  goes through it too, as a gray image (options.alpha = "model", clipped to the inputs' alpha range: an opaque pair
  stays opaque), or is blended linearly ("blend"); the colour is then divided by the new alpha (transparent pixels
  get colour 0).
  """
  if frame0.shape[-1] == 3:
    return interpolate_tiled(interp, frame0, frame1, times, options)
  a0 = frame0[..., 3:].astype(np.float32) / np.float32(255)
  a1 = frame1[..., 3:].astype(np.float32) / np.float32(255)
  premul0 = frame0[..., :3].astype(np.float32) / np.float32(255) * a0
  premul1 = frame1[..., :3].astype(np.float32) / np.float32(255) * a1
  colours = interpolate_tiled(interp, premul0, premul1, times, options)
  if options.alpha == "model":
    gray = interpolate_tiled(interp, np.repeat(a0, 3, -1), np.repeat(a1, 3, -1), times, options)
    # Within the inputs' alpha range: a model's small errors must not make an opaque pair 254 here and there.
    lo = min(frame0[..., 3].min(), frame1[..., 3].min())
    hi = max(frame0[..., 3].max(), frame1[..., 3].max())
    alphas = [np.clip(np.round(g.astype(np.float32).mean(-1, keepdims=True)), lo, hi).astype(np.uint8) for g in gray]
  else:
    alphas = [utils.to_uint8((1 - t) * a0 + t * a1) for t in times]
  out = []
  for colour, alpha in zip(colours, alphas):
    a = alpha.astype(np.float32)
    straight = np.where(a > 0, colour.astype(np.float32) * 255 / np.maximum(a, 1), 0)
    out.append(np.concatenate([np.round(np.clip(straight, 0, 255)).astype(np.uint8), alpha], axis=-1))
  return out


def interpolate_pair(interp, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                       options: Options = Options(), name: str = "frames") -> list[np.ndarray]:
  """`interpolate_rgba` with scene-cut detection: for a cut (options.scene_threshold) every time gets frame0."""
  if options.scene_threshold is not None:
    score = scene_score(frame0, frame1)
    if score > options.scene_threshold:
      logging.info("%s: scene cut (score %.3f > %.3g): frame 0 repeated instead of interpolating", name, score,
                   options.scene_threshold)
      return [frame0.copy() for _ in times]
  return interpolate_rgba(interp, frame0, frame1, times, options)


