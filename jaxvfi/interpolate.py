r"""Interpolate your own frames and videos with a trained jaxvfi model: a small library and its command line.

  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output mid.png            (t = 0.5)
  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output out/ --times=0.25,0.5,0.75
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output slow.mp4 --factor=4     (4x the frame rate)
  python -m jaxvfi.interpolate --workdir=W --video in.mov --output smooth.mp4 --fps=60      (any rate, e.g. 24000/1001)
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output frames/                 (a folder of PNGs)
  python -m jaxvfi.interpolate --workdir=W --frames shots/ --input_fps=24 --output out.mp4  (a folder of images in)
  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output mid.png --pixel_shader   (paper 003 Alg. 1)
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output out.mp4 --tta         (test-time augmentation)

W is a training run's workdir (`python -m jaxvfi.main`): its `config.json` builds the model and the latest
`checkpoints/<step>/` gives the parameters. Or, with no workdir, the authors' released weights converted by
`python -m jaxvfi.weights convert --arch=sepconv|superslomo`:

  python -m jaxvfi.interpolate --model=sepconv --weights=sepconv-lf.npz --video in.mp4 --output out.mp4
  python -m jaxvfi.interpolate --model=superslomo --weights=superslomo.npz --frames A.png B.png --output mid.png

The config is then the family's defaults (`configs/<model>.py`) with the original code's conventions that the
weights need (`jaxvfi.weights.RELEASED_MODEL_CONFIG`). Library use:

  interp = interpolate.load_model("/tmp/run")                                    # or
  interp = interpolate.load_model(weights="sepconv-lf.npz", model="sepconv")
  middle, = interp.interpolate(frame0, frame1)          # uint8 HxWx3 in, uint8 HxWx3 out
  interpolate.interpolate_video(interp, "in.mp4", "out.mp4", fps=Fraction(60))

`--tta` (RIFE's test-time augmentation, `jaxvfi.models.predict`) makes each frame twice, from the inputs and from
the inputs rotated by 180 degrees, and averages them; a workdir whose config sets `test_time_augmentation` (the CPU
recipe, configs/refin.py:cpu) does so unless `--no_tta` is given.

Time. Super-SloMo takes any t in (0, 1) (it is trained on t in {1/8, ..., 7/8}); ReFIn takes t through the
intermediate-flow approximation, Eq. (1) of ReFIn, but is trained at t = 0.5 only, so other times are an
extrapolation of what it learnt (a log line says so). SepConv has no time input at all: it always makes the middle
frame, so other times are made by recursive bisection (t = 1/4 is the middle of frame0 and the t = 1/2 frame).
Explicit `--times` must then be dyadic, k / 2^n; when a video is retimed (`--fps`, or a `--factor` that is not a
power of two), each t is rounded to the nearest k / 2^D (D = `--dyadic_depth`, 4 by default: the frame is then shown
up to 1/32 of the input's frame interval early or late); the log and the final line give the largest such error.

Video timing is exact. Rates are rationals read from the stream (24000/1001, never 23.976), and every output frame
has the exact time it stands for. `--factor=N` on a constant-rate input writes N x its rate (24000/1001 x 2 =
48000/1001): each input frame and N - 1 new ones after it, the last input frame held for its whole duration, so the
output lasts exactly as long as the input. On a variable-rate input `--factor=N` keeps the input's timestamps and
splits each frame interval into N (log line; the output is variable-rate too). `--fps=R` makes a constant-rate
video at R from any input: frame k is at k / R and is made at its own t between the two input frames around it (or
is an input frame when it falls on one); its length is the input's rounded to the nearest output frame.

Video I/O is `jaxvfi.video_io` (PyAV, FFmpeg's libraries): anything FFmpeg probes as video is read (mp4, mkv, mov,
webm, avi, ts, m2ts, flv, 3gp, m4v, animated gif, ...). The output keeps the input's codec family when the output
container takes it, else the container's default codec (a log line says which); that choice is proved by writing one
frame into memory before the model is loaded, so a container that cannot hold a codec is one error, or a switch,
never a crash after inference. `--codec` forces an encoder. Audio tracks are copied unchanged, packet by packet, in
sync (re-encoded only where the container does not take the codec, with a log line); `--no_audio` drops them.

Alpha. RGBA stills and videos with alpha keep it: colour is interpolated premultiplied by alpha (so colour hidden
under transparent pixels does not bleed into the new frames) and alpha itself either through the model as a gray
image (`--alpha=model`, the default: it follows the motion), or as the linear blend (1 - t) a0 + t a1
(`--alpha=blend`, no extra model call). `--alpha=drop` writes RGB. Outputs that cannot hold alpha (mp4 with h264,
gif) are refused if the input's first frame has transparency, and written as RGB with a log line if it is opaque.

Scene cuts. Between two input frames that belong to different shots, the new frames repeat the earlier frame (no
cross-fade). A pair is a cut when `scene_score` (the smaller of the mean absolute pixel difference and the colour
histograms' total-variation distance, both in [0, 1]) exceeds `--scene_threshold` (0.12). Each cut is logged. Motion
changes the pixels but hardly the histograms, a change of shot changes both: on scikit-image's sample images, shifts
of up to 1/8 of the frame width score at most 0.08, while pairs of different images score 0.09 to 0.5 (median 0.29).
Fades and flashes can score above the threshold; `--no_scene_detect` turns detection off.

Large frames. Frames are processed whole, in one call (the models pad H and W to their alignment and crop back;
each frame size compiles once), unless `--tile=T`: then the frame is cut into T x T tiles, each run with
`--tile_overlap` pixels of real context around it (all windows one size: one compile), and only the tile's own
pixels are kept. The result equals the whole-frame result wherever the model's receptive field stays inside the
window; pixels near the seams and the frame border can differ.

Inputs: PNG/JPEG/... frames are read with Pillow (EXIF orientation applied; grayscale and palette -> RGB; 16-bit
PNGs scaled to 8 bits), `--frames DIR` takes a folder's images in natural order (2 before 10), all of one size,
with the rate `--input_fps` (needed for a video output or `--fps`); without it the frames have no durations, so
M of them give (M - 1) N + 1 under `--factor=N`, ending on the last one. Bad input, an impossible output and every
invalid flag give one `jaxvfi: error: ...` line before the model is loaded. Outputs never replace an input.
Outputs are written atomically: a PNG through a temporary file renamed into place, a video into a temporary file
beside the destination renamed at the end, a folder of frames built in a hidden sibling folder and swapped in whole
(an existing folder is replaced only if it holds nothing but frames this tool writes), so an interrupted run
leaves no half-written file, no temporary file and no mix of stale and new frames. A progress bar shows frames/s
and the time left; the final line gives frames in -> out, duration in -> out and the frame rates.
"""
from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction
import os
import sys
import time as time_lib
from typing import Any, Callable, Iterator, Sequence

from absl import app
from absl import logging
from absl.flags import argparse_flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxvfi import checkpoints
from jaxvfi import models
from jaxvfi import pixel_shader as pixel_shader_lib
from jaxvfi import utils
from jaxvfi import video_io
# Re-exported: other tools (enhance, zoom) and users import the readers from here.
from jaxvfi.video_io import VideoReader  # pylint: disable=unused-import
from jaxvfi.video_io import read_frame

MAX_BISECTION_DEPTH = 8  # t = k / 256 at the finest

SCENE_THRESHOLD = video_io.SCENE_THRESHOLD  # scene_score above which a pair is a cut (module docstring)
DEFAULT_DYADIC_DEPTH = 4
DEFAULT_TILE_OVERLAP = 32
ALPHA_MODES = ("model", "blend", "drop")
OWN_FRAME_NAMES = video_io.OWN_FRAME_NAMES

_first_line = video_io.first_line
_check_file = video_io.check_file


def read_frame_pair(path0: str, path1: str, keep_alpha: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Two image files of one size (`read_frame`); with `keep_alpha`, both RGBA if either has alpha."""
  frame0, frame1 = read_frame(path0, keep_alpha), read_frame(path1, keep_alpha)
  if frame0.shape[:2] != frame1.shape[:2]:
    (h0, w0), (h1, w1) = frame0.shape[:2], frame1.shape[:2]
    raise ValueError(f"frame sizes differ: {path0} is {w0}x{h0} and {path1} is {w1}x{h1} (width x height); "
                     "both frames must have the same size")
  if frame0.shape != frame1.shape:  # one RGBA, one RGB: the RGB one is opaque
    frame0, frame1 = (_with_alpha(f) for f in (frame0, frame1))
  return frame0, frame1


def _with_alpha(frame: np.ndarray) -> np.ndarray:
  if frame.shape[-1] == 4:
    return frame
  return np.concatenate([frame, np.full(frame.shape[:2] + (1,), 255, np.uint8)], axis=-1)


# ----------------------------------------------------------------------------------------------------------------
# Times.


def times_for_factor(factor: int) -> tuple[float, ...]:
  """The N - 1 times k / N (k = 1 .. N - 1) that multiply the frame rate by N."""
  if int(factor) != factor or factor < 2:
    raise ValueError(f"factor must be an integer >= 2, got {factor}")
  return tuple(k / factor for k in range(1, int(factor)))


def parse_times(text: str) -> tuple[float, ...]:
  try:
    times = tuple(float(s) for s in text.split(",") if s.strip())
  except ValueError as e:
    raise ValueError(f"--times must be comma-separated numbers, e.g. 0.25,0.5; got {text!r}") from e
  if not times:
    raise ValueError("--times is empty")
  bad = [t for t in times if not 0.0 < t < 1.0]
  if bad:
    raise ValueError(f"--times must lie strictly between 0 and 1, got {', '.join(f'{t:g}' for t in bad)}")
  return times


def _dyadic(t: float) -> Fraction | None:
  f = Fraction(t).limit_denominator(2 ** MAX_BISECTION_DEPTH)
  if abs(float(f) - t) > 1e-9 or f.denominator & (f.denominator - 1):
    return None
  return f


def nearest_dyadic(t: Fraction, depth: int) -> Fraction:
  """t rounded to the nearest k / 2^depth (ties to even k); may be 0 or 1."""
  return Fraction(round(Fraction(t) * 2 ** depth), 2 ** depth)


# ----------------------------------------------------------------------------------------------------------------
# The model.


class Interpolator:
  """A trained model and its parameters; `interpolate` makes the frames between two frames."""

  def __init__(self, model: nn.Module, params: Any, config: ml_collections.ConfigDict, step: int = 0,
               pixel_shader: str | None = None, test_time_augmentation: bool | None = None):
    self.model = model
    self.pixel_shader = pixel_shader  # None, or a `jaxvfi.pixel_shader.SHADERS` name applied to every made frame
    # Each frame averaged with the one made from the 180-degree rotated inputs (`jaxvfi.models.predict`); None: the
    # config's `test_time_augmentation`.
    self.test_time_augmentation = (models.check_test_time_augmentation(config) if test_time_augmentation is None
                                   else bool(test_time_augmentation))
    if self.test_time_augmentation:
      logging.info("test-time augmentation on: each frame is the mean of two model evaluations, on the inputs and on "
                   "the inputs rotated by 180 degrees (--no_tta turns it off)")
    self.params = params
    self.config = config
    self.step = step
    self.name = config.model.get("name")
    # A family without a time input (`HAS_TIME_INPUT = False`, e.g. SepConv) reaches other times by bisection.
    self.time_free = not models.traits(config.model)["has_time_input"]
    data = config.get("data") or ml_collections.ConfigDict()
    # The one t the model saw in training, or None for arbitrary-time training (data.t_sampling = "uniform").
    self.trained_t = float(data.get("t", 0.5)) if data.get("t_sampling", "fixed") == "fixed" else None
    self.num_traces = 0  # frame sizes compiled so far
    # Every time asked that is not trained_t, and those the one warning of check_times named: a video run names the
    # rest at its end (`_report_extrapolation`).
    self.extrapolated_times: set[float] = set()
    self.warned_times: set[float] = set()
    self._predict = jax.jit(self._apply)

  def _apply(self, params, batch):
    self.num_traces += 1  # runs at trace time only: once per frame size
    image = models.predict(self.model, params, batch, self.test_time_augmentation)["image"]
    if self.pixel_shader:
      image = pixel_shader_lib.pixel_shader(batch["frame0"], batch["frame1"], image, self.pixel_shader)
    return image

  def check_times(self, times: Sequence[float]) -> list[float]:
    """The times as floats, or one ValueError for times this model cannot make; warns once about untrained t."""
    times = [float(t) for t in times]
    if not times:
      raise ValueError("no times to interpolate")
    bad = [t for t in times if not 0.0 < t < 1.0]
    if bad:
      raise ValueError(f"times must lie strictly between 0 and 1, got {bad}")
    if self.time_free:
      odd = [t for t in times if _dyadic(t) is None]
      if odd:
        raise ValueError(f"{self.name} has no time input: it makes t = 0.5 and, by recursive bisection, t = k/2^n "
                         f"(k/{2 ** MAX_BISECTION_DEPTH} at the finest; video factors 2, 4, 8, ...); cannot make "
                         f"t = {', '.join(f'{t:g}' for t in odd)}")
    elif self.trained_t is not None:
      untrained = sorted({t for t in times if abs(t - self.trained_t) > 1e-9})
      if untrained and not self.warned_times:
        self.warned_times.update(untrained)
        logging.warning("this %s model was trained at t = %g only; t = %s extrapolates what it learnt", self.name,
                        self.trained_t, ", ".join(f"{t:g}" for t in untrained))
      self.extrapolated_times.update(untrained)
    return times

  def _middle(self, frame0: jax.Array, frame1: jax.Array, t: float) -> jax.Array:
    batch = {"frame0": frame0, "frame1": frame1, "t": jnp.full((1,), t, jnp.float32)}
    return self._predict(self.params, batch)

  def interpolate(self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float] = (0.5,)) -> list[np.ndarray]:
    """Frames at `times` between frame0 (t = 0) and frame1 (t = 1), as uint8 HxWx3.

    Args:
      frame0, frame1: HxWx3 RGB of one size, uint8 or float in [0, 1]. Any H and W: the models pad and crop back.
      times: each in (0, 1). Super-SloMo is trained for arbitrary t. ReFIn accepts any t (Eq. (1) of ReFIn scales
        the flows by t) but is trained at t = 0.5 only. SepConv has no time input and is trained at t = 0.5: other
        times come from recursive bisection and must be k / 2^n.

    Returns:
      One uint8 HxWx3 frame per time, in the order of `times`.
    """
    f0, f1 = _as_model_input(frame0, "frame0"), _as_model_input(frame1, "frame1")
    if f0.shape != f1.shape:
      raise ValueError(f"frame0 and frame1 must have one size, got {f0.shape[1:3]} and {f1.shape[1:3]}")
    times = self.check_times(times)
    if self.time_free:
      images = self._bisect(f0, f1, times)
    else:
      images = [self._middle(f0, f1, t) for t in times]
    return [utils.to_uint8(np.asarray(img[0])) for img in images]

  def _bisect(self, f0: jax.Array, f1: jax.Array, times: list[float]) -> list[jax.Array]:
    """Frames at dyadic times by repeated midpoints; each midpoint is computed once and kept in float."""
    known = {Fraction(0): f0, Fraction(1): f1}
    out = []
    for t in times:
      target, lo, hi = _dyadic(t), Fraction(0), Fraction(1)
      while True:
        mid = (lo + hi) / 2
        if mid not in known:
          # Clipped like a real frame: the next level takes it as an input frame.
          known[mid] = jnp.clip(self._middle(known[lo], known[hi], 0.5), 0.0, 1.0)
        if mid == target:
          break
        lo, hi = (lo, mid) if target < mid else (mid, hi)
      out.append(known[target])
    return out


def _as_model_input(frame: np.ndarray, name: str) -> jax.Array:
  frame = np.asarray(frame)
  if frame.ndim != 3 or frame.shape[-1] != 3:
    raise ValueError(f"{name} must be HxWx3 RGB, got shape {frame.shape} (read_frame converts files)")
  x = frame.astype(np.float32) / np.float32(255.0) if frame.dtype == np.uint8 else frame.astype(np.float32)
  return jnp.asarray(x[None])  # on the device once, for every time asked


CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def load_model(workdir: str | None = None, config: ml_collections.ConfigDict | None = None, *,
               weights: str | None = None, model: str | None = None, pixel_shader: str | None = None,
               test_time_augmentation: bool | None = None) -> Interpolator:
  """The model of a training run's workdir with the parameters of its latest checkpoint, or released weights.

  Args:
    workdir: a `python -m jaxvfi.main` workdir, holding `config.json` and `checkpoints/<step>/`.
    config: the run's config; None reads `workdir/config.json` (with `weights`: `configs/<model>.py`'s defaults).
    weights: instead of a workdir, a .npz from `python -m jaxvfi.weights convert --arch=<model>`.
    model: the family of `weights`, one of `jaxvfi.weights.RELEASED_MODEL_CONFIG` ("sepconv", "superslomo"); its
      config gets the switches those weights need.
    pixel_shader: None, or "paper" | "code": SepConv-GAN's shader (`jaxvfi.pixel_shader`) on every frame made.
    test_time_augmentation: average each frame with the one made from the 180-degree rotated inputs (RIFE's TTA,
      twice the time); None: the config's `test_time_augmentation` (False unless the run set it).

  Raises:
    FileNotFoundError: the workdir has no config.json (and no config was given) or no checkpoint; the weights file
      or the family's config file does not exist.
    ValueError: config.json is unreadable, the checkpoint or weights do not fit the model the config builds, or the
      arguments name neither or both sources.
  """
  if weights is not None or model is not None:
    if workdir is not None:
      raise ValueError("give a training workdir, or released weights and their model, not both")
    return _load_released(weights, model, config, pixel_shader, test_time_augmentation)
  if workdir is None:
    raise ValueError("give a training workdir, or released weights and their model (weights=..., model=...)")
  if config is None and os.path.isfile(os.path.join(os.path.abspath(os.path.expanduser(workdir)), "config.json")):
    config = checkpoints.read_config(workdir)
  if config is not None:
    _check_family(config, workdir)  # before the checkpoint is read: a DSFN or SDAN workdir is one clear error
  model, params, config, step = checkpoints.load_trained(workdir, config)
  logging.info("loaded %s from step %d of %s", config.model.get("name"), step, os.path.abspath(workdir))
  return Interpolator(model, jax.device_put(params), config, step, pixel_shader=pixel_shader,
                      test_time_augmentation=test_time_augmentation)


def _check_family(config, workdir: str) -> None:
  batch = models.example_batch(config)
  if "t" not in batch or not all(k in batch and batch[k].ndim == 4 for k in ("frame0", "frame1")):
    raise ValueError(f"workdir {workdir} holds a {config.model.get('name')!r} model, which does not interpolate "
                     "between two frames; jaxvfi.interpolate needs a frame interpolation model (configs/refin.py, "
                     "superslomo.py, sepconv.py, sepconv_gan.py); for DSFN use python -m jaxvfi.enhance, for SDAN "
                     "python -m jaxvfi.zoom")


def _load_released(path: str | None, name: str | None, config: ml_collections.ConfigDict | None,
                   pixel_shader: str | None = None, test_time_augmentation: bool | None = None) -> Interpolator:
  from jaxvfi import config_lib  # pylint: disable=g-import-not-at-top
  from jaxvfi import weights  # pylint: disable=g-import-not-at-top
  if not path or not name:
    raise ValueError("released weights need both a weights file and its model (--weights and --model)")
  if name not in weights.RELEASED_MODEL_CONFIG:
    raise ValueError(f"--model must be one of {', '.join(weights.RELEASED_MODEL_CONFIG)} (the families with "
                     f"released weights), got {name!r}")
  if config is None:
    config_path = os.path.join(CONFIGS_DIR, f"{name}.py")
    if not os.path.isfile(config_path):
      raise FileNotFoundError(f"no {config_path}: released weights take the family's defaults from the repository's "
                              "configs/ folder")
    config = config_lib.load_config(config_path)
  config = config.copy_and_resolve_references()
  config.model.update(weights.RELEASED_MODEL_CONFIG[name])
  module = models.build_model(config.model)
  params = weights.load_params(name, path)
  want = jax.tree.map(lambda x: tuple(x.shape), checkpoints.params_template(module, config))
  got = jax.tree.map(lambda x: tuple(x.shape), params)
  if got != want:
    raise ValueError(f"{path}: the converted {name} parameters do not fit the model that {name}'s config builds")
  logging.info("loaded %s from released weights %s", name, os.path.abspath(path))
  return Interpolator(module, jax.device_put(params), config, 0, pixel_shader=pixel_shader,
                      test_time_augmentation=test_time_augmentation)


# ----------------------------------------------------------------------------------------------------------------
# Making frames: alpha, tiles, scene cuts.


@dataclasses.dataclass(frozen=True)
class Options:
  """How new frames are made; the command line's flags of the same names (module docstring).

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
  dyadic_depth: int = DEFAULT_DYADIC_DEPTH


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


def _run_model(interp, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float], options: Options
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


def make_frames(interp, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                options: Options = Options()) -> list[np.ndarray]:
  """Frames at `times` between two uint8 frames of 3 (RGB) or 4 (RGBA) channels, in their channel count.

  RGB goes through the model (tiled per `options`). RGBA: colour premultiplied by alpha goes through the model; alpha
  goes through it too, as a gray image (options.alpha = "model", clipped to the inputs' alpha range: an opaque pair
  stays opaque), or is blended linearly ("blend"); the colour is then divided by the new alpha (transparent pixels
  get colour 0).
  """
  if frame0.shape[-1] == 3:
    return _run_model(interp, frame0, frame1, times, options)
  a0 = frame0[..., 3:].astype(np.float32) / np.float32(255)
  a1 = frame1[..., 3:].astype(np.float32) / np.float32(255)
  premul0 = frame0[..., :3].astype(np.float32) / np.float32(255) * a0
  premul1 = frame1[..., :3].astype(np.float32) / np.float32(255) * a1
  colours = _run_model(interp, premul0, premul1, times, options)
  if options.alpha == "model":
    gray = _run_model(interp, np.repeat(a0, 3, -1), np.repeat(a1, 3, -1), times, options)
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


def interpolate_frames(interp, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float],
                       options: Options = Options(), name: str = "frames") -> list[np.ndarray]:
  """`make_frames` with scene-cut detection: for a cut (options.scene_threshold) every time gets frame0."""
  if options.scene_threshold is not None:
    score = scene_score(frame0, frame1)
    if score > options.scene_threshold:
      logging.info("%s: scene cut (score %.3f > %.3g): frame 0 repeated instead of interpolating", name, score,
                   options.scene_threshold)
      return [frame0.copy() for _ in times]
  return make_frames(interp, frame0, frame1, times, options)


# ----------------------------------------------------------------------------------------------------------------
# Sequences of frames in (a video or a folder of images) and their retiming.


@dataclasses.dataclass
class FrameSource:
  """Input frames with exact times (seconds from the first frame), from a video or a folder of images."""
  name: str
  width: int
  height: int
  num_frames: int
  rate: Fraction | None  # None: a folder of images without --input_fps (the output is a folder; times are k)
  constant_rate: bool
  duration: Fraction | None
  time_base: Fraction  # unit of the input timestamps
  alpha: bool  # frames are RGBA
  transparent: bool  # the first frame has alpha < 255 somewhere
  info: video_io.VideoInfo | None  # a video's facts (audio, codec), else None
  open: Callable[[bool], Any]  # open(alpha) -> an object with frames() -> Iterator[(Fraction, ndarray)], close()
  inputs: tuple[str, ...]  # the files (and folder) read: an output may not replace them


def open_video_source(path: str, alpha: bool = True) -> FrameSource:
  """A video file as a FrameSource (probed now: errors before the model loads); alpha: read RGBA if it has alpha."""
  info = video_io.probe(path)
  keep = alpha and info.has_alpha
  return FrameSource(name=path, width=info.width, height=info.height, num_frames=info.num_frames, rate=info.rate,
                     constant_rate=info.constant_rate, duration=info.duration, time_base=info.time_base, alpha=keep,
                     transparent=keep and not info.first_frame_opaque, info=info,
                     open=lambda rgba: VideoReader(path, info, alpha=rgba), inputs=(path,))


class _FolderReader:

  def __init__(self, paths: Sequence[str], rate: Fraction, alpha: bool):
    self.paths, self.rate, self.alpha = paths, rate, alpha

  def frames(self) -> Iterator[tuple[Fraction, np.ndarray]]:
    for k, path in enumerate(self.paths):
      image = read_frame(path, keep_alpha=self.alpha)
      if self.alpha:
        image = _with_alpha(image)
      yield Fraction(k) / self.rate, image

  def close(self) -> None:
    pass


def open_folder_source(folder: str, rate: Fraction | None = None, alpha: bool = True) -> FrameSource:
  """A folder of images (natural order) as a FrameSource at `rate`; sizes are checked now, from the headers."""
  paths = video_io.list_frame_files(folder)
  sizes = [video_io.image_header(p) for p in paths]
  w, h, _ = sizes[0]
  for path, (wi, hi, _) in zip(paths, sizes):
    if (wi, hi) != (w, h):
      raise ValueError(f"frame sizes differ in {folder}: {paths[0]} is {w}x{h} and {path} is {wi}x{hi} (width x "
                       "height); all frames must have the same size")
  keep = alpha and any(a for _, _, a in sizes)
  transparent = False
  if keep:
    first = _with_alpha(read_frame(paths[0], keep_alpha=True))
    transparent = bool((first[..., 3] < 255).any())
  step = rate or Fraction(1)
  return FrameSource(name=folder, width=w, height=h, num_frames=len(paths), rate=rate, constant_rate=True,
                     duration=len(paths) / rate if rate else None, time_base=1 / step, alpha=keep,
                     transparent=transparent, info=None, open=lambda rgba: _FolderReader(paths, step, rgba),
                     inputs=(folder, *paths))


@dataclasses.dataclass(frozen=True)
class Retiming:
  """Where the output frames go in time.

  rate: the constant output rate (frame k at k / rate), or None to keep the input's timestamps with each interval
  split into `factor` (variable-rate input with --factor). time_base: unit of the output timestamps.
  """
  rate: Fraction | None
  factor: int | None
  time_base: Fraction
  num_frames: int  # expected output frames
  duration: Fraction | None


def plan_retiming(source: FrameSource, factor: int | None = None, fps: Fraction | None = None) -> Retiming:
  """--factor or --fps on `source` (module docstring: Video timing). Raises ValueError for an impossible pair."""
  if (factor is None) == (fps is None):
    raise ValueError("give exactly one of factor and fps")
  if factor is not None:
    times_for_factor(factor)  # validates
    if source.constant_rate:  # (gaps in the grid, if any, are interpolated across)
      rate = (source.rate or Fraction(1)) * factor
      # A folder without a rate has no durations to hold the last frame for: it ends on the last input.
      count = round(source.duration * rate) if source.duration else (source.num_frames - 1) * factor + 1
      return Retiming(rate=rate, factor=factor, time_base=1 / rate, num_frames=count, duration=source.duration)
    return Retiming(rate=None, factor=factor, time_base=source.time_base / factor,
                    num_frames=source.num_frames * factor, duration=source.duration)
  if source.rate is None or source.duration is None:
    raise ValueError(f"{source.name} has no frame rate: give --input_fps to use --fps")
  count = max(round(source.duration * fps), 1)
  return Retiming(rate=fps, factor=None, time_base=1 / fps, num_frames=count, duration=Fraction(count) / fps)


@dataclasses.dataclass
class Stats:
  """What a run did (the final line)."""
  frames_in: int = 0
  frames_out: int = 0
  duration_in: Fraction | None = None
  duration_out: Fraction | None = None
  rate_in: Fraction | None = None
  rate_out: Fraction | None = None
  variable_in: bool = False  # the input's rate is variable (rate_in is its mean)
  variable_out: bool = False
  scene_cuts: int = 0
  max_time_error: Fraction = Fraction(0)  # seconds; time-free models' rounding of t to k / 2^D
  seconds: float = 0.0

  def summary(self, output: str) -> str:
    if self.rate_in is None and self.duration_in is None and self.rate_out is None:
      return (f"{output}: frames {self.frames_in} -> {self.frames_out}, no frame rate (a folder without "
              f"--input_fps), {self.scene_cuts} scene cut(s), {self.seconds:.1f} s")
    dur = lambda d: "?" if d is None else f"{float(d):.3f} s"
    rate_in = video_io.format_rate(self.rate_in) + (" (mean, variable)" if self.variable_in else "")
    rate_out = video_io.format_rate(self.rate_out) + (" (mean, variable)" if self.variable_out else "")
    line = (f"{output}: frames {self.frames_in} -> {self.frames_out}, duration {dur(self.duration_in)} -> "
            f"{dur(self.duration_out)}, fps {rate_in} -> {rate_out}, {self.scene_cuts} scene cut(s)")
    if self.max_time_error:
      line += f", largest timing error {float(self.max_time_error) * 1000:.2f} ms (t rounded to k/2^D)"
    return line + f", {self.seconds:.1f} s"


def _report_extrapolation(interp) -> None:
  """Names every untrained t a sequence run used, unless the one warning of check_times already did: that warning
  names the first pair's times only, and with --fps the phase, so t, changes from pair to pair."""
  used = set(getattr(interp, "extrapolated_times", ()))
  if used <= set(getattr(interp, "warned_times", ())):
    return
  ts = sorted(used)
  named = ", ".join(f"{t:g}" for t in ts) if len(ts) <= 8 else f"{ts[0]:g} to {ts[-1]:g}"
  logging.warning("this %s model was trained at t = %g only; this run extrapolated to %d times: t = %s", interp.name,
                  interp.trained_t, len(ts), named)


@dataclasses.dataclass
class VideoJob:
  """Everything about a sequence run that can be checked before the model loads (`prepare_video_job`)."""
  source: FrameSource
  retiming: Retiming
  output: str
  plan: video_io.OutputPlan | None  # None: a folder of PNGs
  options: Options

  def run(self, interp, progress_bar: bool = True) -> Stats:
    """Makes and writes every output frame; the output appears whole at the end or not at all."""
    started = time_lib.time()
    source, retiming = self.source, self.retiming
    # Alpha is read (and made: a second model call per frame) only when the output keeps it.
    reader = source.open(source.alpha and (self.plan is None or self.plan.alpha))
    getattr(interp, "extrapolated_times", set()).clear()  # this run's, for _report_extrapolation
    try:
      sink = video_io.open_sink(self.output, self.plan, source.width, source.height,
                                time_base=retiming.time_base, rate=retiming.rate, source=source.info)
      bar = tqdm.tqdm(total=retiming.num_frames, desc="interpolate", unit="frame", dynamic_ncols=True,
                      disable=not progress_bar)
      try:
        stats = self._retime(interp, reader.frames(), sink, bar)
        sink.commit(stats.duration_out)
      except BaseException:
        sink.abort()
        raise
      finally:
        bar.close()
    finally:
      reader.close()
    stats.seconds = time_lib.time() - started
    _report_extrapolation(interp)
    return stats

  def _retime(self, interp, frames: Iterator[tuple[Fraction, np.ndarray]], sink, bar) -> Stats:
    source, retiming, options = self.source, self.retiming, self.options
    stats = Stats(duration_in=source.duration, rate_in=source.rate, variable_in=not source.constant_rate,
                  variable_out=retiming.rate is None)
    rate, factor = retiming.rate, retiming.factor
    time_free = bool(getattr(interp, "time_free", False))
    next_k = 0  # constant-rate output: the next frame's index

    def emit(image, when):
      sink.write(image, when)
      stats.frames_out += 1
      bar.update(1)

    first = next(frames, None)
    if first is None:
      raise ValueError(f"{source.name}: no frame could be decoded")
    stats.frames_in = 1
    prev_time, prev = first
    if rate is not None:  # output frames before the first decodable one (a damaged start) repeat it
      while Fraction(next_k) / rate < prev_time:
        emit(prev, Fraction(next_k) / rate)
        next_k += 1
    for cur_time, cur in frames:
      if cur_time <= prev_time:
        logging.warning("%s: a frame at %.6f s does not come after the one at %.6f s: skipped", source.name,
                        float(cur_time), float(prev_time))
        continue
      stats.frames_in += 1
      span = cur_time - prev_time
      if rate is not None:
        slots = []
        while Fraction(next_k) / rate < cur_time:
          when = Fraction(next_k) / rate
          slots.append((when, (when - prev_time) / span))
          next_k += 1
      else:
        slots = [(prev_time + span * Fraction(j, factor), Fraction(j, factor)) for j in range(factor)]
      for image, when in zip(self._pair(interp, prev, cur, slots, prev_time, span, time_free, stats), slots):
        emit(image, when[0])
      prev_time, prev = cur_time, cur
    # The last input frame, held for its duration; a folder without a rate has none, and ends on its last frame.
    untimed = source.rate is None and source.duration is None
    end = source.duration if source.duration is not None else prev_time + (1 / (source.rate or Fraction(1)))
    if rate is not None:
      last = max(round(prev_time * rate) + 1 if untimed else round(end * rate), next_k + (0 if next_k else 1))
      while next_k < last:
        emit(prev, Fraction(next_k) / rate)
        next_k += 1
      if not untimed:
        stats.duration_out = Fraction(next_k) / rate
        stats.rate_out = rate
    else:
      hold = end - prev_time
      for j in range(factor):
        emit(prev, prev_time + hold * Fraction(j, factor))
      stats.duration_out = end
      stats.rate_out = stats.frames_out / end if end else None
    return stats

  def _pair(self, interp, frame0, frame1, slots, start, span, time_free, stats) -> list[np.ndarray]:
    """The images of `slots` [(time, t)] between frame0 and frame1: copies at t = 0, the rest from the model."""
    options = self.options
    wanted = {}
    for _, t in slots:
      if t == 0:
        continue
      t_model = nearest_dyadic(t, options.dyadic_depth) if time_free else t
      if time_free:
        stats.max_time_error = max(stats.max_time_error, abs(t_model - t) * span)
      wanted[t] = t_model
    if wanted and options.scene_threshold is not None:
      score = scene_score(frame0, frame1)
      if score > options.scene_threshold:  # every frame up to the cut repeats the earlier shot's last frame
        stats.scene_cuts += 1
        logging.info("%s: scene cut between the frames at %.3f s and %.3f s (score %.3f > %.3g): frame repeated",
                     self.source.name, float(start), float(start + span), score, options.scene_threshold)
        return [frame0 for _ in slots]
    made = {Fraction(0): frame0, Fraction(1): frame1}
    model_times = sorted({t for t in wanted.values() if 0 < t < 1})
    if model_times:
      made.update(zip(model_times, make_frames(interp, frame0, frame1, [float(t) for t in model_times], options)))
    return [frame0 if t == 0 else made[wanted[t]] for _, t in slots]


def prepare_video_job(source: FrameSource, output: str, factor: int | None = None, fps: Fraction | None = None,
                      options: Options = Options(), codec: str | None = None, audio: bool = True) -> VideoJob:
  """Checks everything about a sequence run before any model: timing, output kind, codec, alpha, inputs kept.

  Raises ValueError (one line) for an output that would replace an input, a folder holding foreign files, a
  container that takes no usable codec, alpha that the output cannot hold while the first frame is transparent, or
  a video output from a folder without a rate.
  """
  retiming = plan_retiming(source, factor, fps)
  if source.rate is None and video_io.output_is_video(output):
    raise ValueError(f"{source.name} is a folder of images without a frame rate: give --input_fps (e.g. 24 or "
                     "24000/1001) to write a video")
  plan = video_io.plan_output(output, source.width, source.height, time_base=retiming.time_base,
                              rate=retiming.rate, inputs=source.inputs, source=source.info, alpha=source.alpha,
                              alpha_required=source.transparent, codec=codec, audio=audio, log_notes=False)
  if plan is not None and source.alpha and not plan.alpha:
    if source.transparent:
      raise ValueError(f"{source.name} has transparency (alpha) that {output} ({plan.format_name}, {plan.codec}) "
                       "cannot hold: write .mov, .mkv, .webm or a folder of PNGs, or pass --alpha=drop")
    logging.info("%s: its alpha channel is opaque in the first frame and %s cannot hold alpha: writing RGB",
                 source.name, output)
  for note in plan.notes if plan is not None else ():
    logging.info("%s", note)
  return VideoJob(source, retiming, output, plan, options)


def interpolate_video(interp, path: str, output: str, factor: int | None = 2, reader: VideoReader | None = None,
                      progress_bar: bool = True, fps: Fraction | None = None, options: Options = Options(),
                      codec: str | None = None, audio: bool = True) -> int:
  """Retimes the video `path` into `output` (module docstring) and returns the number of frames written.

  Args:
    interp: an Interpolator (`load_model`).
    path: any video FFmpeg reads.
    output: a video file (its extension picks the container) or a folder for frame_000000.png, ...
    factor: N: N x the frame rate (ignored when fps is given).
    reader: unused, kept for callers of the earlier API (the video is probed and read from `path`).
    progress_bar: show frames/s and the time left.
    fps: an exact output rate, e.g. Fraction(60) or Fraction(24000, 1001).
    options, codec, audio: see `Options`, `jaxvfi.video_io.plan_video_output`.
  """
  if reader is not None:
    reader.close()
  source = open_video_source(path, alpha=options.alpha != "drop")
  job = prepare_video_job(source, output, None if fps is not None else factor, fps, options, codec, audio)
  stats = job.run(interp, progress_bar)
  logging.info("%s", stats.summary(output))
  return stats.frames_out


def frame_output_paths(output: str, times: Sequence[float]) -> list[str]:
  """`output` itself for one time (a .png), else t0.2500.png, t0.5000.png, ... in the folder `output`.

  Raises ValueError for a name with an extension where frames go to a folder (a video name included: two frames
  never make a video), and for one time into anything but a .png."""
  hint = "; for a video, put the frames in a folder and pass --input_fps"
  if len(times) == 1 and not os.path.isdir(output):
    if os.path.splitext(output)[1].lower() != ".png":
      raise ValueError(f"--output {output} must end in .png (one time gives one PNG{hint})")
    return [output]
  if os.path.exists(output) and not os.path.isdir(output):
    raise ValueError(f"--output {output} is an existing file but {len(times)} times give {len(times)} frames: name "
                     "a folder")
  if video_io.output_is_video(output):  # The rule that sends a frames folder to a video file or a folder.
    raise ValueError(f"--output {output} names a file but {len(times)} times give {len(times)} frames: name a "
                     f"folder{hint}")
  return [os.path.join(output, f"t{t:.4f}.png") for t in times]


def check_frame_outputs(output: str, times: Sequence[float], inputs: Sequence[str]) -> list[str]:
  """The PNG paths for `times` (`frame_output_paths`), after refusing an output that would replace an input or a
  folder holding files this tool did not write. Runs before any model."""
  paths = frame_output_paths(output, times)
  video_io.check_not_an_input(output, inputs)
  video_io.check_writable(paths[0])
  if paths != [output]:
    video_io.StagedFolder.check(os.path.abspath(output), OWN_FRAME_NAMES)
  return paths


def interpolate_frame_files(interp, path0: str, path1: str, output: str,
                            times: Sequence[float] = (0.5,), frames: tuple[np.ndarray, np.ndarray] | None = None,
                            options: Options = Options()) -> list[str]:
  """Writes the frames between two image files as PNGs: `output` is the file for one time, a folder for several.

  Several times are named t0.2500.png, t0.5000.png, ... in a folder that is replaced whole (module docstring).
  RGBA inputs give RGBA PNGs (options.alpha). Returns the paths written. `frames` skips re-reading.
  """
  times = list(times)
  paths = check_frame_outputs(output, times, (path0, path1))
  frame0, frame1 = frames if frames is not None else read_frame_pair(path0, path1, options.alpha != "drop")
  images = interpolate_frames(interp, frame0, frame1, times, options, name=f"{path0} -> {path1}")
  if paths == [output]:
    utils.atomic_write_png(output, images[0])
    return paths
  staged = video_io.StagedFolder(output, OWN_FRAME_NAMES)
  try:
    for path, img in zip(paths, images):
      staged.write_png(os.path.basename(path), img)
    staged.commit()
  except BaseException:
    staged.abort()
    raise
  return paths


# ----------------------------------------------------------------------------------------------------------------
# Command line.

# Errors that mean bad input rather than a bug: one line, exit status 1.
_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError)


class _Parser(argparse_flags.ArgumentParser):
  """argparse with absl's flags (--verbosity, ...); a usage error is one `jaxvfi: error:` line and exit 1."""

  def error(self, message):
    print(f"jaxvfi: error: {message}", file=sys.stderr)
    sys.exit(1)


def build_parser(prog: str = "python -m jaxvfi.interpolate") -> _Parser:
  """The command line's parser. A new flag goes into one of its groups here and is checked in `check_args`."""
  parser = _Parser(prog=prog, description="\n\n".join(__doc__.split("\n\n")[:4]),
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  model = parser.add_argument_group("model (a training run, or released weights)")
  model.add_argument("--workdir", help="workdir of a training run (config.json, checkpoints/)")
  model.add_argument("--weights", help="instead of --workdir: released weights converted by jaxvfi.weights (.npz)")
  model.add_argument("--model", help="with --weights: their model family (sepconv, superslomo)")
  io = parser.add_argument_group("input and output")
  source = io.add_mutually_exclusive_group(required=True)
  source.add_argument("--frames", nargs="+", metavar="FRAME",
                      help="two image files of one size, or one folder of images (natural order)")
  source.add_argument("--video", help="a video file: anything ffmpeg reads as video (mp4, mkv, mov, gif, ts, ...)")
  io.add_argument("--output", required=True,
                  help="two frames: a .png for one time, a folder for several; a video or a folder of frames: a "
                  "video file (its extension picks the container) or a folder for frame_000000.png, ...")
  io.add_argument("--input_fps", default=None, help="the rate of a --frames folder, e.g. 24 or 24000/1001")
  io.add_argument("--codec", default=None,
                  help="video encoder to use, e.g. libx264, libx265, libvpx-vp9, ffv1, prores_ks, png (default: "
                  "the input's codec family if the container takes it, else the container's default)")
  io.add_argument("--no_audio", "--no-audio", dest="no_audio", action="store_true",
                  help="do not carry the input video's audio over")
  timing = parser.add_argument_group("timing")
  timing.add_argument("--factor", type=int, default=None,
                      help="N >= 2: N x the frame rate (two frames: t = k/N); default 2")
  timing.add_argument("--fps", default=None, help="output frame rate, exact: 60, 59.94 or 60000/1001")
  timing.add_argument("--times", default=None, help="two frames only: comma-separated times in (0, 1)")
  timing.add_argument("--dyadic_depth", type=int, default=DEFAULT_DYADIC_DEPTH,
                      help=f"models without a time input: retimed t rounded to k/2^D, 1 <= D <= "
                      f"{MAX_BISECTION_DEPTH}")
  making = parser.add_argument_group("making frames")
  making.add_argument("--alpha", choices=ALPHA_MODES, default="model",
                      help="alpha of RGBA input: through the model (default), blended linearly, or dropped")
  making.add_argument("--scene_threshold", type=float, default=None,
                      help=f"scene_score above which a pair is a cut and its frame is repeated; default "
                      f"{SCENE_THRESHOLD}")
  making.add_argument("--no_scene_detect", action="store_true", help="interpolate across scene cuts too")
  making.add_argument("--pixel_shader", nargs="?", const="paper", default=None,
                      choices=tuple(pixel_shader_lib.SHADERS),
                      help="blend every made frame towards the inputs' average where they barely differ (SepConv-GAN "
                           "Algorithm 1, jaxvfi.pixel_shader); constants: paper (default) or code")
  tta = making.add_mutually_exclusive_group()
  tta.add_argument("--tta", "--test_time_augmentation", dest="test_time_augmentation", action="store_true",
                   default=None, help="average each frame with the one made from the inputs rotated by 180 degrees "
                   "(RIFE's TTA; BENCHMARKS.md has its gain), two model evaluations a frame; default: the run's "
                   "config.test_time_augmentation (on in configs/refin.py:cpu)")
  tta.add_argument("--no_tta", "--no-tta", dest="test_time_augmentation", action="store_false",
                   help="one model evaluation a frame, whatever the run's config says")
  making.add_argument("--tile", type=int, default=0, help="process frames in T x T tiles (0: whole frames)")
  making.add_argument("--tile_overlap", type=int, default=None,
                      help=f"pixels of context around each tile; default {DEFAULT_TILE_OVERLAP}")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  return parser


def _parse_flags(argv: list[str]) -> argparse.Namespace:
  return build_parser().parse_args(argv[1:])


@dataclasses.dataclass(frozen=True)
class Request:
  """The command line after `check_args`: every value valid, every combination meaningful."""
  model_source: dict  # load_model's keywords: workdir=W or weights=F, model=M; and pixel_shader
  output: str
  pair: tuple[str, str] | None  # two image files
  folder: str | None  # a folder of images
  video: str | None
  times: tuple[float, ...] | None  # two frames
  factor: int | None  # a sequence: --factor (2 when neither --factor nor --fps is given)
  fps: Fraction | None
  input_fps: Fraction | None
  codec: str | None
  audio: bool
  options: Options
  progress: bool


def _ntsc_hint(fps: Fraction) -> None:
  """A decimal rate such as 29.97 is exactly 2997/100, not NTSC's 30000/1001: say so once."""
  for base in (24, 30, 48, 60, 120):
    ntsc = Fraction(base * 1000, 1001)
    if fps != ntsc and fps.denominator in (100, 1000) and abs(fps - ntsc) < Fraction(1, 100):
      logging.warning("--fps=%s is exactly %s fps; NTSC's rate is %d000/1001 (%.6f): write --fps=%d000/1001 for it",
                      float(fps), fps, base, float(ntsc), base)


def check_args(args: argparse.Namespace) -> Request:
  """Every flag's value and combination, checked in one place before anything is read; ValueError (one line)."""
  if args.workdir is None and args.weights is None and args.model is None:
    raise ValueError("give --workdir (a training run), or --model and --weights (released weights)")
  if args.workdir is not None and (args.weights is not None or args.model is not None):
    raise ValueError("give --workdir (a training run), or --model and --weights (released weights), not both")
  if args.workdir is None and (args.weights is None or args.model is None):
    raise ValueError("released weights need both --model and --weights")
  if args.weights is not None:
    _check_file(args.weights, "--weights")
  if not args.output:
    raise ValueError("--output is empty")
  pair = folder = None
  if args.frames:
    if len(args.frames) == 2:
      pair = (args.frames[0], args.frames[1])
    elif len(args.frames) == 1 and not os.path.isfile(args.frames[0]):
      folder = args.frames[0]
    else:
      raise ValueError(f"--frames takes two image files or one folder of images, got {len(args.frames)} "
                       f"file{'s' if len(args.frames) != 1 else ''}")
  given = [name for name in ("factor", "fps", "times") if getattr(args, name) is not None]
  if len(given) > 1:
    raise ValueError(f"give one of --factor, --fps and --times, not {' and '.join('--' + g for g in given)}")
  if args.factor is not None and args.factor < 2:
    raise ValueError(f"--factor must be an integer >= 2, got {args.factor}: --factor=N makes N frames per input "
                     "interval (N x the frame rate; 2 adds one frame between each pair)")
  times = None
  if args.times is not None:
    if not pair:
      raise ValueError("--times is for two frames (--frames A B); a video or a folder takes --factor or --fps")
    times = parse_times(args.times)
  elif pair:
    times = times_for_factor(args.factor or 2)
  fps = None
  if args.fps is not None:
    if pair:
      raise ValueError("--fps is for a video or a folder of frames; two frames take --times or --factor")
    fps = video_io.parse_rate(args.fps, "--fps")
    _ntsc_hint(fps)
  input_fps = None
  if args.input_fps is not None:
    if pair:
      raise ValueError("--input_fps is the rate of a --frames folder; two frames (--frames A B) take --times or "
                       "--factor")
    if not folder:
      raise ValueError("--input_fps is the rate of a --frames folder; a video has its own")
    input_fps = video_io.parse_rate(args.input_fps, "--input_fps")
  if not 1 <= args.dyadic_depth <= MAX_BISECTION_DEPTH:
    raise ValueError(f"--dyadic_depth must be in 1..{MAX_BISECTION_DEPTH}, got {args.dyadic_depth}")
  if args.no_scene_detect and args.scene_threshold is not None:
    raise ValueError("give --scene_threshold or --no_scene_detect, not both")
  threshold = SCENE_THRESHOLD if args.scene_threshold is None else args.scene_threshold
  if not 0.0 < threshold <= 1.0:
    raise ValueError(f"--scene_threshold must be in (0, 1], got {threshold:g}")
  if args.tile < 0 or 0 < args.tile < 8:
    raise ValueError(f"--tile must be 0 (whole frames) or at least 8 pixels, got {args.tile}")
  if args.tile_overlap is not None and not args.tile:
    raise ValueError("--tile_overlap applies with --tile")
  overlap = DEFAULT_TILE_OVERLAP if args.tile_overlap is None else args.tile_overlap
  if overlap < 0:
    raise ValueError(f"--tile_overlap must be >= 0, got {overlap}")
  if not args.video:
    for flag, value in (("--codec", args.codec), ("--no_audio", args.no_audio)):
      if value and (pair or flag == "--no_audio"):
        raise ValueError(f"{flag} applies to a video input{' or output' if flag == '--codec' else ''}")
  options = Options(alpha=args.alpha, scene_threshold=None if args.no_scene_detect else threshold, tile=args.tile,
                    tile_overlap=overlap, dyadic_depth=args.dyadic_depth)
  model_source = ({"workdir": args.workdir} if args.workdir is not None else
                  {"weights": args.weights, "model": args.model})
  model_source["pixel_shader"] = args.pixel_shader
  model_source["test_time_augmentation"] = args.test_time_augmentation
  return Request(model_source=model_source, output=args.output, pair=pair, folder=folder, video=args.video, times=times,
                 factor=None if pair or fps is not None else (args.factor or 2), fps=fps, input_fps=input_fps,
                 codec=args.codec, audio=not args.no_audio, options=options, progress=not args.no_progress)


def _check_times_for_model(model_source: dict, times: Sequence[float]) -> None:
  """Refuses, before the weights load, times that a family without a time input cannot make (Interpolator's
  check_times says the same after loading); a config that cannot be read is left to load_model to report."""
  try:
    if "workdir" in model_source:
      model_config = checkpoints.read_config(model_source["workdir"]).model
    else:
      model_config = ml_collections.ConfigDict({"name": model_source["model"]})
    name, has_time_input = model_config.get("name"), models.traits(model_config)["has_time_input"]
  except (OSError, ValueError, AttributeError, KeyError):
    return
  if not has_time_input:
    odd = [t for t in times if _dyadic(t) is None]
    if odd:
      raise ValueError(f"{name} has no time input: it makes t = 0.5 and, by recursive bisection, t = k/2^n "
                       f"(k/{2 ** MAX_BISECTION_DEPTH} at the finest; factors 2, 4, 8, ...); cannot make "
                       f"t = {', '.join(f'{t:g}' for t in odd)}")


def run(args: argparse.Namespace) -> list[str]:
  """What the command line does; returns the paths written. Everything is checked before the model is loaded."""
  req = check_args(args)
  keep_alpha = req.options.alpha != "drop"
  if req.pair:
    frames = read_frame_pair(*req.pair, keep_alpha=keep_alpha)
    paths = check_frame_outputs(req.output, req.times, req.pair)
    _check_times_for_model(req.model_source, req.times)
    interp = load_model(**req.model_source)
    started = time_lib.time()
    paths = interpolate_frame_files(interp, *req.pair, req.output, req.times, frames=frames, options=req.options)
    print(f"{req.output}: frames 2 -> {len(paths)} new at t = {', '.join(f'{t:g}' for t in req.times)}, "
          f"{time_lib.time() - started:.1f} s")
    return paths
  if req.video:
    source = open_video_source(req.video, alpha=keep_alpha)
  else:
    source = open_folder_source(req.folder, req.input_fps, alpha=keep_alpha)
  job = prepare_video_job(source, req.output, req.factor, req.fps, req.options, req.codec, req.audio)
  if not source.constant_rate:
    how = (f"converted to a constant {video_io.format_rate(req.fps)} fps" if req.fps else
           f"keeping its timestamps, each interval split into {req.factor} (--fps=R converts to a constant rate)")
    logging.info("%s has a variable frame rate (intervals %.2f to %.2f ms, mean %s fps): %s", source.name,
                 float(source.info.min_interval) * 1000, float(source.info.max_interval) * 1000,
                 video_io.format_rate(source.rate), how)
  interp = load_model(**req.model_source)
  if getattr(interp, "time_free", False) and (req.fps or (req.factor & (req.factor - 1))):
    logging.info("%s has no time input: each t is rounded to the nearest k/%d (--dyadic_depth=%d)", interp.name,
                 2 ** req.options.dyadic_depth, req.options.dyadic_depth)
  stats = job.run(interp, req.progress)
  print(stats.summary(req.output))
  return [req.output]


def main(args: argparse.Namespace) -> None:
  utils.run_tool(run, args, _USER_ERRORS, hard_exit=True)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
