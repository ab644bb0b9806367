r"""Enhance a blurry low-resolution video with a trained DSFN: sharp, x r larger (r = 4), at twice the frame rate.

  python -m jaxvfi.enhance --workdir=W --video in.mp4 --output out.mp4          (a video at 2x the frame rate)
  python -m jaxvfi.enhance --workdir=W --video in.mp4 --output frames/          (a folder of PNGs)

W is the workdir of a DSFN training run (`python -m jaxvfi.main --config=configs/dsfn.py`): its `config.json`
builds the model and the latest `checkpoints/<step>/` gives the parameters. `--weights=FILE` takes a one-file model
instead (`python -m jaxvfi.weights export --workdir=W --dst=dsfn.safetensors`: the parameters and the run's model
config in one file). Library use:

  enhancer = enhance.load_enhancer("/tmp/dsfn")
  frames = list(enhancer.enhance(blurry_frames))      # M uint8 h x w x 3 in, 2M - 1 uint8 4h x 4w x 3 out

Windows. DSFN (paper 002, Fig. 2) takes four consecutive blurry frames (b_{j-1}, b_j, b_{j+1}, b_{j+2}) and makes
the sharp, up-scaled frames S_j, S_{j+1/2}, S_{j+1}: the two middle inputs deblurred and up-scaled and the frame
half-way between them. The enhancer slides this window one input frame at a time, j = 0 ... M-2 for M input frames,
so every pair of neighbours gets its in-between frame. Each inner key frame S_j (0 < j < M-1) is then made twice, as
the last frame of window j-1 and the first of window j, and the two estimates are averaged (as DSFN itself averages
its two level-1 estimates of t-1). Edges: the first window has no b_{-1} and the last no b_M, so the first and the
last input frames are repeated there: b_{-1} = b_0 and b_M = b_{M-1}. The output is S_0, S_{1/2}, S_1, ...,
S_{M-1}: 2M - 1 frames at twice the input frame rate. At least two input frames are needed.

Frames are processed whole (each size compiles once; about 10 GB of memory per input megapixel on a CPU), or with
`--tile=T` in T x T input tiles, each run with `--tile_overlap` input pixels of real context around it (every window
one size: one compile) and only its own pixels kept (`jaxvfi.inference.frames.tile_windows`). Tiles equal the whole
frame wherever the network's reach after its deformable offsets stays inside the window; pixels near the seams can
differ. Inputs are checked before the model is loaded,
as `jaxvfi.interpolate` checks them (`jaxvfi.video_io`, the same reader, output plan and writers): a missing or
unreadable video or a bad --output is one clear error and nothing is written. The output video is written to a
temporary file beside the destination and renamed at the end, so an interrupted run leaves neither a half-written
video nor temporary files; it keeps the input's codec family where the container allows, lasts as long as the input,
and carries its audio over.
"""
from __future__ import annotations

import argparse
from fractions import Fraction
import itertools
import os
import time
import warnings
from typing import Any, Iterable, Iterator, Sequence

from absl import app
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxvfi import checkpoints
from jaxvfi import families
from jaxvfi import model_file
from jaxvfi import utils
from jaxvfi import weights as weights_lib
from jaxvfi import video_io
from jaxvfi.inference import cli
from jaxvfi.inference import frames as frames_lib
from jaxvfi.inference import retime

WINDOW = 4  # input frames per DSFN call (B_{t-4}, B_{t-2}, B_t, B_{t+2})


def windows(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, ...]]:
  """(b_{j-1}, b_j, b_{j+1}, b_{j+2}) for j = 0 ... M-2, the first and last frames repeated past the ends.

  Raises ValueError for fewer than two frames.
  """
  it = iter(frames)
  first, second = next(it, None), None
  if first is not None:
    second = next(it, None)
  if second is None:
    raise ValueError("DSFN enhancement needs at least two frames, got " + ("none" if first is None else "one"))
  window = [first, first, second]
  for frame in it:
    window.append(frame)
    yield tuple(window)
    window.pop(0)
  window.append(window[-1])
  yield tuple(window)


DEFAULT_TILE_OVERLAP = 16  # input pixels of context per tile side


class Enhancer:
  """A trained DSFN and its parameters; `enhance` turns blurry frames into sharp, up-scaled frames at 2x the rate.

  `tile` > 0 runs frames larger than `tile` in tiles of `tile` x `tile` input pixels with `tile_overlap` pixels of
  context (module docstring); 0 runs them whole.
  """

  def __init__(self, model, params: Any, config: ml_collections.ConfigDict, step: int = 0, tile: int = 0,
               tile_overlap: int = DEFAULT_TILE_OVERLAP):
    if tile < 0 or tile_overlap < 0:
      raise ValueError(f"--tile and --tile_overlap must be >= 0, got {tile} and {tile_overlap}")
    self.model = model
    self.params = params
    self.config = config
    self.step = step
    self.tile, self.tile_overlap = int(tile), int(tile_overlap)
    self.num_traces = 0  # frame sizes compiled so far
    self._predict = jax.jit(self._apply)

  def _apply(self, params, blurry):
    self.num_traces += 1  # runs at trace time only: once per frame size
    return self.model.apply({"params": params}, {"blurry": blurry}, train=False)["image"][0]

  def window(self, frames: Sequence[np.ndarray]) -> np.ndarray:
    """Four uint8 (or [0, 1] float) h x w x 3 frames -> float32 (3, r h, r w, 3): S_j, S_{j+1/2}, S_{j+1}."""
    stack = np.stack([np.asarray(f) for f in frames])
    if stack.shape[0] != WINDOW or stack.ndim != 4 or stack.shape[-1] != 3:
      raise ValueError(f"a DSFN window is {WINDOW} frames h x w x 3 of one size, got {stack.shape}")
    x = stack.astype(np.float32) / np.float32(255) if stack.dtype == np.uint8 else stack.astype(np.float32)
    h, w = x.shape[1:3]
    if not self.tile or (h <= self.tile and w <= self.tile):
      return np.asarray(self._predict(self.params, jnp.asarray(x[None])))
    out = None
    for rows, cols, core_rows, core_cols in frames_lib.tile_windows(h, w, self.tile, self.tile_overlap):
      y = np.asarray(self._predict(self.params, jnp.asarray(x[None, :, rows, cols])))
      r = y.shape[1] // (rows.stop - rows.start)  # the model's scale
      if out is None:
        out = np.zeros((y.shape[0], r * h, r * w, y.shape[-1]), np.float32)
      out[:, r * (rows.start + core_rows.start):r * (rows.start + core_rows.stop),
          r * (cols.start + core_cols.start):r * (cols.start + core_cols.stop)] = \
          y[:, r * core_rows.start:r * core_rows.stop, r * core_cols.start:r * core_cols.stop]
    return out

  def enhance(self, frames: Iterable[np.ndarray], progress: tqdm.tqdm | None = None) -> Iterator[np.ndarray]:
    """M blurry frames (uint8 h x w x 3, streamed) -> the 2M - 1 uint8 frames S_0, S_{1/2}, ..., S_{M-1}."""
    pending = None  # the estimate of the next key frame made by the previous window
    for window in windows(frames):
      key, middle, next_key = self.window(window)
      yield utils.to_uint8(key if pending is None else 0.5 * (pending + key))
      yield utils.to_uint8(middle)
      pending = next_key
      if progress is not None:
        progress.update(1)
    yield utils.to_uint8(pending)


def load_enhancer(workdir: str | None, config: ml_collections.ConfigDict | None = None, tile: int = 0,
                  tile_overlap: int = DEFAULT_TILE_OVERLAP, weights: str | None = None) -> Enhancer:
  """The DSFN of a training run's workdir with the parameters of its latest checkpoint, or of a model file
  (`weights`, `jaxvfi.model_file`; then `workdir` is None).

  Raises:
    FileNotFoundError: the workdir has no config.json (and no config was given) or no checkpoint; no weights file.
    ValueError: the model does not take blurry frame sequences (not a DSFN-style family), or its parameters do not
      fit the model its config builds.
  """
  if weights is not None:
    config = model_file.read_config(weights) if config is None else config
    _check_family(config, weights)
    model, params, config, step = weights_lib.load_model_file(weights, config)
    logging.info("loaded %s from %s", config.model.get("name"), weights)
    return Enhancer(model, jax.device_put(params), config, step, tile, tile_overlap)
  if config is None and os.path.isfile(os.path.join(os.path.abspath(os.path.expanduser(workdir)), "config.json")):
    config = checkpoints.read_config(workdir)
  if config is not None:
    _check_family(config, workdir)  # before the checkpoint is read: a wrong workdir is one clear error
  model, params, config, step = checkpoints.load_trained(workdir, config)
  logging.info("loaded %s from step %d of %s", config.model.get("name"), step, workdir)
  return Enhancer(model, jax.device_put(params), config, step, tile, tile_overlap)


def _check_family(config, workdir: str) -> None:
  batch = families.of(config).example_batch(config)
  blurry = batch.get("blurry")
  if blurry is None or blurry.ndim != 5 or blurry.shape[1] != WINDOW:
    raise ValueError(f"{workdir} holds a {config.model.get('name')!r} model; jaxvfi.enhance needs a model "
                     f"that takes {WINDOW} blurry frames (configs/dsfn.py); for frame interpolation models use "
                     "python -m jaxvfi.interpolate, for SDAN python -m jaxvfi.zoom")


def _output_plan(output: str, path: str, info, scale: int):
  """`video_io.plan_output` for the enhanced video (2x the rate, `scale` x the size): every check before the model."""
  rate = info.rate * 2
  return video_io.plan_output(output, info.width * scale, info.height * scale, time_base=1 / rate, rate=rate,
                              inputs=[path], source=info)


def enhance_video(enhancer: Enhancer, path: str, output: str, reader: video_io.VideoReader | None = None,
                  progress_bar: bool = True, plan=None) -> int:
  """Writes the enhanced `path` to `output`: a video at exactly twice the frame rate, as long as the input, its audio
  copied (`jaxvfi.video_io`), if `output` names a video, else a folder of PNGs. Returns the frames written.

  The output frame i is at time i / (2 r) (r the input's rate; a variable-rate input is taken at its mean rate, with
  a log line) and the last one lasts until the input's end. Ends with a log line of frames, sizes and rates in and out.
  """
  start = time.perf_counter()
  reader = reader or video_io.VideoReader(path)
  try:
    info = reader.info
    if not info.constant_rate:
      logging.warning("%s has a variable frame rate: enhanced at its mean rate %s fps", path, float(info.rate))
    scale = int(enhancer.config.model.get("scale", 4))
    plan = plan if plan is not None else _output_plan(output, path, info, scale)
    frames = iter(reader)
    head = [f for f in (next(frames, None), next(frames, None)) if f is not None]
    if not head:
      raise ValueError(f"video {path} has no frames")
    if len(head) == 1:
      raise ValueError(f"video {path} has one frame: DSFN enhancement needs at least two")

    frames_in = 0

    def all_frames():
      nonlocal frames_in
      for frame in itertools.chain(head, frames):
        frames_in += 1
        yield frame

    rate = info.rate * 2
    h, w = head[0].shape[:2]
    sink = video_io.open_sink(output, plan, w * scale, h * scale, time_base=1 / rate, rate=rate, source=info)
    total = reader.approx_num_frames - 1 if reader.approx_num_frames else None
    bar = tqdm.tqdm(total=total, desc="enhance", unit="window", dynamic_ncols=True, disable=not progress_bar)
    count = 0
    with bar, retime.aborted_on_error(sink):
      for frame in enhancer.enhance(all_frames(), progress=bar):
        sink.write(frame, Fraction(count) / rate)
        count += 1
      sink.commit(Fraction(count + 1) / rate)
  finally:
    reader.close()
  logging.info("%s: frames %d -> %d, %dx%d -> %dx%d, fps %s -> %s, %.1f s", output, frames_in, count, w, h,
               w * scale, h * scale, video_io.format_rate(info.rate), video_io.format_rate(rate),
               time.perf_counter() - start)
  return count


# ----------------------------------------------------------------------------------------------------------------
# Command line.

MODELS = cli.ToolModels("a DSFN", "DSFN", ("dsfn",))
"""The models this tool runs (`--model` takes the released ones: none yet)."""


def _parse_flags(argv: list[str]) -> argparse.Namespace:
  parser = cli.make_parser("python -m jaxvfi.enhance", __doc__, 2)
  cli.add_model_flags(parser, MODELS)
  parser.add_argument("--video", required=True, help="a blurry low-resolution video file")
  parser.add_argument("--output", required=True, help="a video file (2x the frame rate) or a folder for PNGs")
  parser.add_argument("--tile", type=int, default=0, help="tile side in input pixels for large frames (0: whole "
                      "frames, about 10 GB of memory per input megapixel on a CPU)")
  parser.add_argument("--tile_overlap", type=int, default=DEFAULT_TILE_OVERLAP,
                      help="input pixels of context around each tile")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  return parser.parse_args(argv[1:])


def run(args: argparse.Namespace) -> list[str]:
  """What the command line does; returns the paths written. Inputs and output are checked before the model loads."""
  weights = cli.model_file_of(args, MODELS)
  reader = video_io.VideoReader(args.video)
  try:
    config = checkpoints.read_config(args.workdir) if weights is None else model_file.read_config(weights)
    scale = int(config.model.get("scale", 4))
    plan = _output_plan(args.output, args.video, reader.info, scale)
    if args.tile < 0 or args.tile_overlap < 0:
      raise ValueError(f"--tile and --tile_overlap must be >= 0, got {args.tile} and {args.tile_overlap}")
    enhancer = load_enhancer(args.workdir, tile=args.tile, tile_overlap=args.tile_overlap, weights=weights)
  except BaseException:
    reader.close()
    raise
  enhance_video(enhancer, args.video, args.output, reader=reader, progress_bar=not args.no_progress, plan=plan)
  return [args.output]


def main(args: argparse.Namespace) -> None:
  # ffmpeg is started by fork + exec (no Python runs in the child), which Python flags once JAX has started threads.
  warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
  cli.run_tool(run, args)


def console_main() -> None:
  """The `jaxvfi-enhance` console script."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
