r"""Zoom your own photos 4x with a trained SDAN model (paper 004): a small library and its command line.

  python -m jaxvfi.zoom --workdir=W --input photo.png --output photo_x4.png
  python -m jaxvfi.zoom --workdir=W --input photos/ --output zoomed/           (every image of a folder, as PNGs)

W is the workdir of an SDAN run with RGB input (`configs/sdan.py:input=rgb`; a RAW-input model needs the camera's
mosaic, which a photo file does not have). `--weights=FILE` takes a one-file model of such a run instead
(`python -m jaxvfi.weights export --workdir=W --dst=sdan.safetensors`).

Library use:

  zoomer = zoom.load_model("/tmp/sdan_rgb")
  big = zoomer.zoom(photo)               # uint8 HxWx3 in, uint8 (4H)x(4W)x3 out

How. The input is its own reference ({X, X}, Sec. 3.1 of the paper). Any size: the photo is padded (edge, bottom
and right) to a multiple of 32, the authors' inference alignment, and the result cropped back. The offsets Theta
come from one pass over the whole photo, because cross packing attention is global (its energy sums over every block
of the image). Everything after the offsets (deformable conv, 16 residual blocks, x4 tail) is local, so a large
photo is zoomed in tiles of `tile` x `tile` input pixels, each cut with `overlap` pixels of context on every side
(clamped at the photo's border, so all tiles share one shape and compile once), and only each tile's core is kept.
The default overlap is the network's reach after the offsets (`SDAN.reconstruct_reach`: 37 px with 16 blocks)
plus the largest offset, so the tiled result equals the untiled one up to float rounding (tested to 1e-5, seams
included); a smaller --overlap changes pixels near the seams only.

Inputs: PNG/JPEG/... read by `jaxvfi.video_io.read_frame` (EXIF orientation applied, grayscale -> RGB, alpha
dropped); a bad file gives one error naming it, before the model loads. Outputs are PNGs written atomically; a
folder's images are written as <name>.png into the output folder, each complete or absent. An output folder may hold
only those names (an earlier zoom of the same images) and is refused if it holds anything else; an existing PNG that
is replaced says so in a log line.
"""
from __future__ import annotations

import argparse
import math
import os
import re
from typing import Any, Sequence

from absl import app
from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxvfi import checkpoints
from jaxvfi import model_file
from jaxvfi import utils
from jaxvfi import weights as weights_lib
from jaxvfi import video_io
from jaxvfi.inference import cli
from jaxvfi.inference import frames
from jaxvfi.models import sdan
from jaxvfi.models.unet import pad_to_multiple

ALIGNMENT = 32
DEFAULT_TILE = 256
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class Zoomer:
  """An SDAN model with its parameters; `zoom` makes the 4x image of a photo."""

  def __init__(self, model: sdan.SDAN, params: Any, config: ml_collections.ConfigDict | None = None, step: int = 0,
               tile: int = DEFAULT_TILE, overlap: int | None = None):
    if model.input != "rgb":
      raise ValueError(f"this SDAN model takes {model.input.upper()} input (config.model.input={model.input!r}); "
                       "zooming a photo needs a model trained with RGB input (configs/sdan.py:input=rgb)")
    if tile < 1 or (overlap is not None and overlap < 0):
      raise ValueError(f"tile must be >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    self.model, self.params, self.config, self.step = model, params, config, step
    self.tile, self.overlap = int(tile), overlap
    self.scale = model.scale
    self._offsets = jax.jit(lambda p, x: model.apply({"params": p}, x, x, method=sdan.SDAN.predict_offsets))
    self._reconstruct = jax.jit(
        lambda p, x, o: model.apply({"params": p}, x, o, method=sdan.SDAN.reconstruct)["image"])

  def context(self, offset: np.ndarray) -> int:
    """Context pixels per tile side: `overlap`, or the reach after the offsets plus the largest offset."""
    if self.overlap is not None:
      return self.overlap
    return self.model.reconstruct_reach() + int(math.ceil(float(np.abs(offset).max(initial=0.0))))

  def zoom(self, image: np.ndarray, progress: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] -> uint8 (sH, sW, 3), s = the model's scale (4)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
      raise ValueError(f"image must be HxWx3 RGB, got shape {image.shape} (jaxvfi.video_io.read_frame reads files)")
    return utils.to_uint8(self.zoom_float(image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0),
                                          progress))

  def zoom_float(self, image: np.ndarray, progress: bool = False) -> np.ndarray:
    """The network's float output (sH, sW, 3) for a float (H, W, 3) image, unclipped."""
    h, w = image.shape[:2]
    x, _ = pad_to_multiple(jnp.asarray(image[None], jnp.float32), ALIGNMENT)
    offset = np.asarray(self._offsets(self.params, x))
    out = self._tiled(np.asarray(x), offset, progress)
    return out[:self.scale * h, :self.scale * w]

  def _tiled(self, x: np.ndarray, offset: np.ndarray, progress: bool) -> np.ndarray:
    _, hp, wp, _ = x.shape
    s = self.scale
    if hp <= self.tile and wp <= self.tile:
      return np.asarray(self._reconstruct(self.params, x, offset))[0]
    out = np.zeros((s * hp, s * wp, 3), np.float32)
    windows = frames.tile_windows(hp, wp, self.tile, self.context(offset))
    for rows, cols, core_rows, core_cols in tqdm.tqdm(windows, desc="zoom", disable=not progress, leave=False):
      tile = np.asarray(self._reconstruct(self.params, x[:, rows, cols], offset[:, rows, cols]))[0]
      hr = lambda sl: slice(s * sl.start, s * sl.stop)  # LR rows or columns -> the HR ones they make
      out[hr(rows), hr(cols)][hr(core_rows), hr(core_cols)] = tile[hr(core_rows), hr(core_cols)]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Loading a run.


def load_model(workdir: str | None, config: ml_collections.ConfigDict | None = None, tile: int = DEFAULT_TILE,
               overlap: int | None = None, weights: str | None = None) -> Zoomer:
  """The SDAN model of a training run's workdir with the parameters of its latest checkpoint, or of a model file
  (`weights`, `jaxvfi.model_file`; then `workdir` is None).

  Raises:
    FileNotFoundError: no config.json (and no config given) or no checkpoint in the workdir; no weights file.
    ValueError: config.json unreadable, not an SDAN model, a RAW-input model, or parameters that do not fit.
  """
  source = workdir if weights is None else weights
  if config is None:
    config = checkpoints.read_config(workdir) if weights is None else model_file.read_config(weights)
  workdir = source
  if config.model.get("name") != "sdan":
    raise ValueError(f"{workdir} holds a {config.model.get('name')!r} run; jaxvfi.zoom needs an SDAN run "
                     "(configs/sdan.py:input=rgb)")
  if config.model.get("input") != "rgb":
    raise ValueError(f"the SDAN model of {workdir} takes {str(config.model.get('input')).upper()} input; zooming a "
                     "photo needs a model trained with RGB input (configs/sdan.py:input=rgb)")
  if weights is not None:
    model, params, config, step = weights_lib.load_model_file(weights, config)
  else:
    model, params, config, step = checkpoints.load_trained(workdir, config)
  logging.info("loaded SDAN from step %d of %s", step, source)
  return Zoomer(model, jax.device_put(params), config, step, tile, overlap)


# ----------------------------------------------------------------------------------------------------------------
# Files.


def plan(input_path: str, output: str) -> list[tuple[str, str]]:
  """(input file, output PNG) pairs; one clear error before anything is loaded or written: a missing input, a file
  that is not an image (its header), a bad output name, an output that is an input, or an output folder holding
  files other than the PNGs this run writes."""
  if os.path.isdir(input_path):
    names = sorted(n for n in os.listdir(input_path) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
                   and os.path.isfile(os.path.join(input_path, n)))
    if not names:
      raise FileNotFoundError(f"--input folder {input_path} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
    if os.path.splitext(output)[1].lower() == ".png" or (os.path.exists(output) and not os.path.isdir(output)):
      raise NotADirectoryError(f"--output {output} must be a folder when --input is a folder")
    stems = [os.path.splitext(n)[0] for n in names]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
      raise ValueError(f"--input folder {input_path} has several images named {clash[0]}.*: they would write one "
                       f"{clash[0]}.png")
    pairs = [(os.path.join(input_path, n), os.path.join(output, f"{s}.png")) for n, s in zip(names, stems)]
  else:
    if not os.path.exists(input_path):
      raise FileNotFoundError(f"--input {input_path} does not exist")
    if os.path.splitext(output)[1].lower() != ".png":
      raise ValueError(f"--output {output} must end in .png (one input image gives one PNG)")
    pairs = [(input_path, output)]
  for _, dst in pairs:
    video_io.check_not_an_input(dst, [src for src, _ in pairs])
  if os.path.isdir(input_path):
    # The folder may hold only the PNGs this run writes (an earlier zoom of the same images), never anything else.
    video_io.StagedFolder.check(os.path.abspath(output), "|".join(re.escape(os.path.basename(d)) for _, d in pairs))
  for src, _ in pairs:
    video_io.image_header(src)  # every input is an image, checked before the model loads
  return pairs


def zoom_files(zoomer: Zoomer, pairs: Sequence[tuple[str, str]], progress: bool = True) -> list[str]:
  """Reads, zooms and writes each (input, output) pair; returns the paths written."""
  written = []
  for src, dst in tqdm.tqdm(pairs, desc="images", disable=not progress or len(pairs) < 2):
    image = video_io.read_frame(src)
    replaced = os.path.exists(dst)
    utils.atomic_write_png(dst, zoomer.zoom(image, progress=progress))
    if replaced:
      logging.info("%s: replaced the earlier file of that name", dst)
    written.append(dst)
  return written


MODELS = cli.ToolModels("an RGB-input SDAN", "SDAN", ("sdan",))
"""The models this tool runs (`--model` takes the released ones: none yet)."""


def _parse_flags(argv: list[str]) -> argparse.Namespace:
  parser = cli.make_parser("python -m jaxvfi.zoom", __doc__, 3)
  cli.add_model_flags(parser, MODELS)
  parser.add_argument("--input", required=True, help="an image file, or a folder of images")
  parser.add_argument("--output", required=True, help="a .png for one image, a folder for a folder")
  parser.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tile core side in input pixels")
  parser.add_argument("--overlap", type=int, default=None, help="context pixels per tile side (default: exact)")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  return parser.parse_args(argv[1:])


def run(args: argparse.Namespace) -> list[str]:
  """What the command line does; returns the paths written. Inputs are checked before the model is loaded."""
  weights = cli.model_file_of(args, MODELS)
  pairs = plan(args.input, args.output)
  zoomer = load_model(args.workdir, tile=args.tile, overlap=args.overlap, weights=weights)
  return zoom_files(zoomer, pairs, progress=not args.no_progress)


def main(args: argparse.Namespace) -> None:
  cli.run_tool(run, args)


def console_main() -> None:
  """The `jaxvfi-zoom` console script."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
