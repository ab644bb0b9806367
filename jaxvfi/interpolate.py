r"""Interpolate your own frames and videos with a trained jaxvfi model: a small library and its command line.

  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output mid.png            (t = 0.5)
  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output out/ --times=0.25,0.5,0.75
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output slow.mp4 --factor=4     (4x the frame rate)
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output frames/                 (a folder of PNGs)
  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output mid.png --pixel_shader   (paper 003 Alg. 1)

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

Time. Super-SloMo takes any t in (0, 1) (it is trained on t in {1/8, ..., 7/8}); ReFIn takes t through the
intermediate-flow approximation, Eq. (1) of ReFIn, but is trained at t = 0.5 only, so other times are an
extrapolation of what it learnt (a log line says so). SepConv has no time input at all: it always makes the middle
frame, so other times are made by recursive bisection (t = 1/4 is the middle of frame0 and the t = 1/2 frame) and must
be dyadic, k / 2^n (video factors 2, 4, 8, ...).

Frames of any size are processed whole, in one call: the models pad H and W to their alignment and crop back. Each
frame size is compiled once.

Inputs: PNG/JPEG/... frames are read with Pillow (EXIF orientation applied; grayscale and palette -> RGB; alpha
dropped, with a log line; 16-bit PNGs scaled to 8 bits), videos with imageio's ffmpeg plugin (imageio-ffmpeg). Bad
input gives one clear error naming the file before the model is loaded. Outputs are written atomically: PNGs through
a temporary file renamed into place, a video into a temporary file beside the destination renamed at the end, so an
interrupted run leaves neither a half-written file nor temporary files. The output video keeps the input's codec
family and pixel format at N times its frame rate; audio is not carried over.
"""
from __future__ import annotations

import argparse
from fractions import Fraction
import os
import sys
import tempfile
import warnings
from typing import Any, Iterator, Sequence

from absl import app
from absl import logging
from absl.flags import argparse_flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
from PIL import ImageOps
import tqdm

from jaxvfi import checkpoints
from jaxvfi import models
from jaxvfi import pixel_shader as pixel_shader_lib
from jaxvfi import utils

MAX_BISECTION_DEPTH = 8  # t = k / 256 at the finest

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".m4v", ".webm")
# Decoder name (ffmpeg's, as imageio reports it) -> encoder of the same family, and the options that keep quality.
_ENCODERS = {
    "h264": ("libx264", ["-crf", "16"]),
    "hevc": ("libx265", ["-crf", "18"]),
    "vp8": ("libvpx", ["-crf", "10", "-b:v", "8M"]),
    "vp9": ("libvpx-vp9", ["-crf", "20", "-b:v", "0"]),
    "av1": ("libaom-av1", ["-crf", "20", "-b:v", "0"]),
    "mpeg4": ("mpeg4", ["-q:v", "2"]),
    "mpeg2video": ("mpeg2video", ["-q:v", "2"]),
    "mjpeg": ("mjpeg", ["-q:v", "2"]),
    "prores": ("prores_ks", []),
    "ffv1": ("ffv1", []),
    "huffyuv": ("huffyuv", []),
    "utvideo": ("utvideo", []),
    "png": ("png", []),
    "qtrle": ("qtrle", []),
    "rawvideo": ("rawvideo", []),
}
_DEFAULT_CODEC = "h264"


# ----------------------------------------------------------------------------------------------------------------
# Reading frames and videos.


def _first_line(e: BaseException) -> str:
  text = str(e).strip() or type(e).__name__
  return text.splitlines()[0]


def _check_file(path: str, what: str) -> None:
  if not os.path.exists(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  if not os.path.isfile(path):
    raise ValueError(f"{what} {path} is not a file")


def _to_rgb8(img: Image.Image, path: str) -> np.ndarray:
  """Any Pillow mode -> uint8 HxWx3."""
  if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
    # 16-bit grayscale PNGs (Pillow's "I;16", or "I" holding 0..65535); 65535 / 257 = 255 maps white to white.
    gray = np.round(np.asarray(img, np.float64) / 257.0).clip(0, 255).astype(np.uint8)
    logging.info("%s: 16-bit grayscale scaled to 8 bits and copied to R, G, B", path)
    return np.repeat(gray[..., None], 3, axis=-1)
  if img.mode == "F":
    raise ValueError(f"cannot read image {path}: floating-point images (mode F) are not supported")
  if "A" in img.getbands() or "transparency" in img.info:
    logging.info("%s: alpha channel dropped (%s -> RGB)", path, img.mode)
  elif img.mode != "RGB":
    logging.info("%s: converted from %s to RGB", path, img.mode)
  # Pillow itself reduces 16-bit RGB PNGs to 8 bits (the high byte) when it decodes them.
  return np.asarray(img.convert("RGB"), np.uint8)


def read_frame(path: str) -> np.ndarray:
  """One image file as uint8 HxWx3 RGB (module docstring); FileNotFoundError or ValueError naming the file."""
  _check_file(path, "frame")
  try:
    with Image.open(path) as img:
      img.load()  # Image.open is lazy: a truncated file only fails here
      img = ImageOps.exif_transpose(img)
  except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
    raise ValueError(f"cannot read image {path}: {_first_line(e)}") from e
  return _to_rgb8(img, path)


def read_frame_pair(path0: str, path1: str) -> tuple[np.ndarray, np.ndarray]:
  frame0, frame1 = read_frame(path0), read_frame(path1)
  if frame0.shape != frame1.shape:
    (h0, w0), (h1, w1) = frame0.shape[:2], frame1.shape[:2]
    raise ValueError(f"frame sizes differ: {path0} is {w0}x{h0} and {path1} is {w1}x{h1} (width x height); "
                     "both frames must have the same size")
  return frame0, frame1


class VideoReader:
  """Frames of a video file as uint8 HxWx3, streamed (never all in memory), with its frame rate and codec."""

  def __init__(self, path: str):
    import imageio.v2 as iio  # pylint: disable=g-import-not-at-top
    _check_file(path, "video")
    self.path = path
    try:
      self._reader = iio.get_reader(path, format="FFMPEG")
      meta = self._reader.get_meta_data()
    except Exception as e:  # imageio raises OSError, RuntimeError, IndexError... for what ffmpeg cannot open
      raise ValueError(f"cannot read video {path}: {_first_line(e)}") from e
    self.fps = Fraction(float(meta.get("fps") or 0.0)).limit_denominator(100_000)
    if self.fps <= 0:
      self.close()
      raise ValueError(f"cannot read video {path}: no frame rate in its metadata")
    self.codec = (str(meta.get("codec") or "").replace(",", " ").split() or [""])[0]  # imageio says e.g. "ffv1,"
    self.pix_fmt = str(meta.get("pix_fmt") or "").split("(")[0].strip()
    duration = float(meta.get("duration") or 0.0)
    self.approx_num_frames = int(round(duration * float(self.fps))) or None

  def __iter__(self) -> Iterator[np.ndarray]:
    try:
      for frame in self._reader:
        yield np.asarray(frame, np.uint8)[..., :3]
    except Exception as e:  # a stream that breaks off in the middle
      raise ValueError(f"cannot read video {self.path}: {_first_line(e)}") from e

  def close(self) -> None:
    self._reader.close()


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
  return times


def _dyadic(t: float) -> Fraction | None:
  f = Fraction(t).limit_denominator(2 ** MAX_BISECTION_DEPTH)
  if abs(float(f) - t) > 1e-9 or f.denominator & (f.denominator - 1):
    return None
  return f


# ----------------------------------------------------------------------------------------------------------------
# The model.


class Interpolator:
  """A trained model and its parameters; `interpolate` makes the frames between two frames."""

  def __init__(self, model: nn.Module, params: Any, config: ml_collections.ConfigDict, step: int = 0,
               pixel_shader: str | None = None):
    self.model = model
    self.pixel_shader = pixel_shader  # None, or a `jaxvfi.pixel_shader.SHADERS` name applied to every made frame
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
    self._warned_time = False
    self._predict = jax.jit(self._apply)

  def _apply(self, params, batch):
    self.num_traces += 1  # runs at trace time only: once per frame size
    image = self.model.apply({"params": params}, batch, train=False)["image"]
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
    elif self.trained_t is not None and not self._warned_time and any(abs(t - self.trained_t) > 1e-9 for t in times):
      self._warned_time = True
      logging.warning("this %s model was trained at t = %g only; t = %s extrapolates what it learnt", self.name,
                      self.trained_t, ", ".join(f"{t:g}" for t in times if abs(t - self.trained_t) > 1e-9))
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
               weights: str | None = None, model: str | None = None, pixel_shader: str | None = None) -> Interpolator:
  """The model of a training run's workdir with the parameters of its latest checkpoint, or released weights.

  Args:
    workdir: a `python -m jaxvfi.main` workdir, holding `config.json` and `checkpoints/<step>/`.
    config: the run's config; None reads `workdir/config.json` (with `weights`: `configs/<model>.py`'s defaults).
    weights: instead of a workdir, a .npz from `python -m jaxvfi.weights convert --arch=<model>`.
    model: the family of `weights`, one of `jaxvfi.weights.RELEASED_MODEL_CONFIG` ("sepconv", "superslomo"); its
      config gets the switches those weights need.
    pixel_shader: None, or "paper" | "code": SepConv-GAN's shader (`jaxvfi.pixel_shader`) on every frame made.

  Raises:
    FileNotFoundError: the workdir has no config.json (and no config was given) or no checkpoint; the weights file
      or the family's config file does not exist.
    ValueError: config.json is unreadable, the checkpoint or weights do not fit the model the config builds, or the
      arguments name neither or both sources.
  """
  if weights is not None or model is not None:
    if workdir is not None:
      raise ValueError("give a training workdir, or released weights and their model, not both")
    return _load_released(weights, model, config, pixel_shader)
  if workdir is None:
    raise ValueError("give a training workdir, or released weights and their model (weights=..., model=...)")
  model, params, config, step = checkpoints.load_trained(workdir, config)
  logging.info("loaded %s from step %d of %s", config.model.get("name"), step, os.path.abspath(workdir))
  return Interpolator(model, jax.device_put(params), config, step, pixel_shader=pixel_shader)


def _load_released(path: str | None, name: str | None, config: ml_collections.ConfigDict | None,
                   pixel_shader: str | None = None) -> Interpolator:
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
  return Interpolator(module, jax.device_put(params), config, 0, pixel_shader=pixel_shader)


# ----------------------------------------------------------------------------------------------------------------
# Writing results.


def frame_output_paths(output: str, times: Sequence[float]) -> list[str]:
  """`output` itself for one time (a .png), else t0.2500.png, t0.5000.png, ... in the folder `output`."""
  is_png = os.path.splitext(output)[1].lower() == ".png"
  if len(times) == 1 and not os.path.isdir(output):
    if not is_png:
      raise ValueError(f"--output {output} must end in .png (one time gives one PNG)")
    return [output]
  if is_png:
    raise ValueError(f"--output {output} names a PNG but {len(times)} times give {len(times)} frames: name a folder")
  return [os.path.join(output, f"t{t:.4f}.png") for t in times]


def video_output_ext(output: str) -> str:
  """The video extension of `output`, or "" for a folder of PNGs."""
  ext = os.path.splitext(output)[1].lower()
  if ext and ext not in VIDEO_EXTENSIONS:
    raise ValueError(f"--output {output} must be a video ({', '.join(VIDEO_EXTENSIONS)}) or a folder for PNGs")
  return ext


def interpolate_frame_files(interp: Interpolator, path0: str, path1: str, output: str,
                            times: Sequence[float] = (0.5,), frames: tuple[np.ndarray, np.ndarray] | None = None
                            ) -> list[str]:
  """Writes the frames between two image files as PNGs: `output` is the file for one time, a folder for several.

  Several times are named t0.2500.png, t0.5000.png, ... Returns the paths written. `frames` skips re-reading.
  """
  times = list(times)
  paths = frame_output_paths(output, times)
  frame0, frame1 = frames if frames is not None else read_frame_pair(path0, path1)
  for path, img in zip(paths, interp.interpolate(frame0, frame1, times)):
    utils.atomic_write_png(path, img)
  return paths


class _PngFolderSink:
  """frame_000000.png, frame_000001.png, ... each written atomically."""

  def __init__(self, folder: str):
    self.folder = folder
    self.count = 0

  def write(self, frame: np.ndarray) -> None:
    utils.atomic_write_png(os.path.join(self.folder, f"frame_{self.count:06d}.png"), frame)
    self.count += 1

  def commit(self) -> None:
    pass

  def abort(self) -> None:
    pass


class _VideoSink:
  """A video written to a temporary file beside `path` and renamed onto it by `commit`."""

  def __init__(self, path: str, fps: Fraction, codec: str, pix_fmt: str):
    import imageio.v2 as iio  # pylint: disable=g-import-not-at-top
    self.path = path
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(path)[1]
    fd, self.tmp = tempfile.mkstemp(prefix=".tmp_", suffix=ext, dir=folder)  # ffmpeg picks the container by ext
    os.close(fd)
    if codec not in _ENCODERS:
      logging.warning("input codec %r has no encoder here; writing %s", codec or "unknown", _DEFAULT_CODEC)
      codec, pix_fmt = _DEFAULT_CODEC, "yuv420p"
    encoder, params = _ENCODERS[codec]
    if encoder == "libx264" and pix_fmt.startswith(("gbr", "rgb", "bgr")):
      encoder = "libx264rgb"  # H.264 in RGB (what libx264rgb writes) stays RGB
    self.count = 0
    try:
      # macro_block_size=1: imageio would otherwise resize frames to a multiple of 16.
      self._writer = iio.get_writer(self.tmp, format="FFMPEG", fps=fps, codec=encoder, pixelformat=pix_fmt or None,
                                    quality=None, ffmpeg_params=params, macro_block_size=1, ffmpeg_log_level="error")
    except BaseException:
      os.remove(self.tmp)
      raise

  def write(self, frame: np.ndarray) -> None:
    self._writer.append_data(frame)
    self.count += 1

  def commit(self) -> None:
    try:
      self._writer.close()
    except Exception as e:  # ffmpeg failing at the end (e.g. a codec the container does not take)
      raise ValueError(f"writing {self.path} failed: {_first_line(e)}") from e
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp made it private; the video gets the mode of any new file
    os.replace(self.tmp, self.path)

  def abort(self) -> None:
    try:
      self._writer.close()
    except Exception:  # pylint: disable=broad-except  (the first error is the one to report)
      pass
    if os.path.exists(self.tmp):
      os.remove(self.tmp)


def interpolate_video(interp: Interpolator, path: str, output: str, factor: int = 2,
                      reader: VideoReader | None = None, progress_bar: bool = True) -> int:
  """Writes `path` with factor - 1 frames inserted between each pair: a video at factor x the frame rate if `output`
  ends in a video extension (the input's codec family), else a folder of PNGs. Returns the frames written."""
  times = times_for_factor(factor)
  ext = video_output_ext(output)
  reader = reader or VideoReader(path)
  try:
    interp.check_times(times)  # before anything is written
    frames = iter(reader)
    prev = next(frames, None)
    if prev is None:
      raise ValueError(f"video {path} has no frames")
    first_pair = next(frames, None)
    if first_pair is None:
      raise ValueError(f"video {path} has one frame: interpolation needs at least two")
    if ext:
      sink = _VideoSink(output, reader.fps * factor, reader.codec, reader.pix_fmt)
      logging.info("writing %s at %s fps (%s x %d), codec family %s; audio is not carried over", output,
                   float(reader.fps * factor), float(reader.fps), factor, reader.codec or _DEFAULT_CODEC)
    else:
      sink = _PngFolderSink(output)
    total = reader.approx_num_frames - 1 if reader.approx_num_frames else None
    bar = tqdm.tqdm(total=total, desc="interpolate", unit="pair", dynamic_ncols=True, disable=not progress_bar)
    try:
      sink.write(prev)
      cur = first_pair
      while cur is not None:
        for mid in interp.interpolate(prev, cur, times):
          sink.write(mid)
        sink.write(cur)
        bar.update(1)
        prev, cur = cur, next(frames, None)
      sink.commit()
    except BaseException:
      sink.abort()
      raise
    finally:
      bar.close()
  finally:
    reader.close()
  return sink.count


# ----------------------------------------------------------------------------------------------------------------
# Command line.

# Errors that mean bad input rather than a bug: one line, exit status 1.
_USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError)


class _Parser(argparse_flags.ArgumentParser):
  """argparse with absl's flags (--verbosity, ...); a usage error is one `jaxvfi: error:` line and exit 1."""

  def error(self, message):
    print(f"jaxvfi: error: {message}", file=sys.stderr)
    sys.exit(1)


def _parse_flags(argv: list[str]) -> argparse.Namespace:
  parser = _Parser(prog="python -m jaxvfi.interpolate", description="\n\n".join(__doc__.split("\n\n")[:3]),
                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", help="workdir of a training run (config.json, checkpoints/)")
  parser.add_argument("--weights", help="instead of --workdir: released weights converted by jaxvfi.weights (.npz)")
  parser.add_argument("--model", help="with --weights: their model family (sepconv, superslomo)")
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--frames", nargs=2, metavar=("FRAME0", "FRAME1"), help="two image files of one size")
  source.add_argument("--video", help="a video file")
  parser.add_argument("--output", required=True,
                      help="frames: a .png for one time, a folder for several; video: a video file or a folder")
  parser.add_argument("--factor", type=int, default=None, help="N: insert N - 1 frames (t = k/N); default 2")
  parser.add_argument("--times", default=None, help="frames only: comma-separated times in (0, 1), e.g. 0.25,0.5")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  parser.add_argument("--pixel_shader", nargs="?", const="paper", default=None,
                      choices=tuple(pixel_shader_lib.SHADERS),
                      help="blend every made frame towards the inputs' average where they barely differ (SepConv-GAN "
                           "Algorithm 1, jaxvfi.pixel_shader); constants: paper (default) or code")
  return parser.parse_args(argv[1:])


def run(args: argparse.Namespace) -> list[str]:
  """What the command line does; returns the paths written. Inputs are checked before the model is loaded."""
  if args.times is not None and args.video:
    raise ValueError("--times is for --frames; a video takes --factor")
  if args.times is not None and args.factor is not None:
    raise ValueError("give --factor or --times, not both")
  if (args.workdir is None) == (args.weights is None and args.model is None):
    raise ValueError("give --workdir (a training run), or --model and --weights (released weights), not both")
  if args.workdir is None and (args.weights is None or args.model is None):
    raise ValueError("released weights need both --model and --weights")
  if args.weights is not None:
    _check_file(args.weights, "--weights")
  source = {"workdir": args.workdir} if args.workdir is not None else {"weights": args.weights, "model": args.model}
  times = parse_times(args.times) if args.times is not None else times_for_factor(args.factor or 2)
  if args.frames:
    frame_output_paths(args.output, times)
    frames = read_frame_pair(*args.frames)
    interp = load_model(**source, pixel_shader=args.pixel_shader)
    return interpolate_frame_files(interp, *args.frames, args.output, times, frames=frames)
  video_output_ext(args.output)
  reader = VideoReader(args.video)
  try:
    interp = load_model(**source, pixel_shader=args.pixel_shader)
  except BaseException:
    reader.close()
    raise
  interpolate_video(interp, args.video, args.output, args.factor or 2, reader=reader,
                    progress_bar=not args.no_progress)
  return [args.output]


def main(args: argparse.Namespace) -> None:
  # ffmpeg is started by fork + exec (no Python runs in the child), which Python flags once JAX has started threads.
  warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
  try:
    for path in run(args):
      logging.info("wrote %s", path)
  except _USER_ERRORS as e:
    logging.error("%s: %s", type(e).__name__, e)
    print(f"jaxvfi: error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
