"""Still images and folders of them, through Pillow: reading an image file, its header, the scene score of two
frames, and a folder's images in natural order.

`read_frame` gives uint8 RGB (H, W, 3), or RGBA (H, W, 4) on request, whatever the file's mode (grayscale, palette,
16 bits), with its EXIF orientation applied. `list_frame_files` lists a folder's images in natural order (frame2
before frame10), the order `utils.natural_key` gives.
"""
from __future__ import annotations

import os

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageOps
import tifffile

from jaxvfi import utils


def check_file(path: str, what: str) -> None:
  """FileNotFoundError or ValueError, one line naming `what` (e.g. "frame", "video"), unless `path` is a file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  if not os.path.isfile(path):
    raise ValueError(f"{what} {path} is not a file")


def _to_rgb8(img: Image.Image, path: str, keep_alpha: bool) -> np.ndarray:
  """Any Pillow mode -> uint8 HxWx3, or HxWx4 when `keep_alpha` and the image has alpha or transparency."""
  if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
    # 16-bit grayscale PNGs (Pillow's "I;16", or "I" holding 0..65535); 65535 / 257 = 255 maps white to white.
    gray = np.round(np.asarray(img, np.float64) / 257.0).clip(0, 255).astype(np.uint8)
    logging.info("%s: 16-bit grayscale scaled to 8 bits and copied to R, G, B", path)
    return np.repeat(gray[..., None], 3, axis=-1)
  if img.mode == "F":
    raise ValueError(f"cannot read image {path}: floating-point images (mode F) are not supported")
  has_alpha = "A" in img.getbands() or "transparency" in img.info
  if has_alpha and keep_alpha:
    return np.asarray(img.convert("RGBA"), np.uint8)
  if has_alpha:
    logging.info("%s: alpha channel dropped (%s -> RGB)", path, img.mode)
  elif img.mode != "RGB":
    logging.info("%s: converted from %s to RGB", path, img.mode)
  return np.asarray(img.convert("RGB"), np.uint8)


def read_frame(path: str, keep_alpha: bool = False) -> np.ndarray:
  """One image file as uint8 RGB (H, W, 3); RGBA (H, W, 4) if `keep_alpha` and it has alpha or transparency.

  EXIF orientation is applied; grayscale and palette images become RGB; 16-bit grayscale is scaled by 1/257 and
  16-bit RGB keeps its high byte. Raises FileNotFoundError or ValueError naming the file.
  """
  check_file(path, "frame")
  try:
    with Image.open(path) as img:
      if img.format == "TIFF" and _orientation(img) != 1:
        img = _oriented_tiff(path, _orientation(img))
      # Pillow decodes 16-bit RGB(A) PNGs to 8 bits (the high byte); only the undecoded tiles still say 16 bits.
      sixteen = img.mode in ("RGB", "RGBA") and any(";16" in str(t.args) for t in getattr(img, "tile", ()))
      img.load()  # Image.open is lazy: a truncated file only fails here
      img = ImageOps.exif_transpose(img)
  except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
    raise ValueError(f"cannot read image {path}: {utils.error_reason(e)}") from e
  if sixteen:
    logging.info("%s: 16-bit %s reduced to 8 bits (the high byte of each sample)", path, img.mode)
  return _to_rgb8(img, path, keep_alpha)


def _orientation(img: Image.Image) -> int:
  return int(img.getexif().get(0x0112, 1) or 1)


# EXIF orientation -> the numpy transform of the stored (rows, columns) array that shows the image upright (the
# transposes of `ImageOps.exif_transpose`).
_ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
           8: lambda a: np.rot90(a, 1)}


def _oriented_tiff(path: str, orientation: int) -> Image.Image:
  """A TIFF with an orientation tag, decoded by tifffile as stored and turned upright here: Pillow 13 applies the tag
  to the size while decoding, and for 16-bit grayscale it decodes the pixels into the swapped size (a garbled
  image)."""
  array = np.ascontiguousarray(_ORIENT.get(orientation, _ORIENT[1])(tifffile.imread(path)))
  if array.dtype == np.uint16 and array.ndim == 3:  # Pillow has no 16-bit RGB: keep the high byte, as for PNG
    array = (array >> 8).astype(np.uint8)
  return Image.fromarray(array)


def image_header(path: str) -> tuple[int, int, bool]:
  """(width, height, has_alpha) of an image file from its header only (EXIF rotation applied to the size), the size
  `read_frame` gives."""
  check_file(path, "frame")
  try:
    with Image.open(path) as img:
      w, h = img.size
      # Orientations 5-8 swap width and height; Pillow's TIFF reader already reports the swapped size.
      if _orientation(img) in (5, 6, 7, 8) and img.format != "TIFF":
        w, h = h, w
      return w, h, "A" in img.getbands() or "transparency" in img.info
  except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
    raise ValueError(f"cannot read image {path}: {utils.error_reason(e)}") from e


SCENE_THRESHOLD = 0.12
"""`scene_score` above which two neighbouring frames are a scene cut (`jaxvfi.interpolate`, `video_clips`)."""


def scene_score(frame0: np.ndarray, frame1: np.ndarray) -> float:
  """How unlike two frames are, in [0, 1]: min(mean |I0 - I1| / 255, colour-histogram distance).

  The first term is the mean absolute difference over pixels and R, G, B (FFmpeg's `scdet`/`select` scene score
  starts from the same mean absolute frame difference); the second is the total-variation distance
  0.5 * sum_b |h0(b) - h1(b)| of the normalised histograms, averaged over R, G, B. Motion moves pixels but keeps the
  histograms, a cut changes both; the smaller of the two is high only for a cut (measured values: `jaxvfi.interpolate`).
  Histograms have 16 bins, fewer for frames under 5,600 pixels: the distance between two histograms of the
  same content sampled at N pixels with B bins is about 0.56 sqrt(B / N), which is kept under 0.03; frames under
  700 pixels get one bin, so they never score above 0 (too small to tell a cut from motion). Takes uint8 (H, W, 3)
  frames, or (H, W, 4) RGBA whose colour is premultiplied by alpha first (colour under transparent pixels is not
  seen, so it does not count).
  """
  a, b = (_visible_colour(f) for f in (frame0, frame1))
  mad = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0
  pixels = a.shape[0] * a.shape[1]
  bins = 1 << max(0, min(4, int(np.log2(max(pixels // 350, 1)))))
  shift = 8 - int(np.log2(bins))
  dist = 0.0
  for c in range(3):
    h0 = np.bincount((a[..., c] >> shift).ravel(), minlength=bins) / a[..., c].size
    h1 = np.bincount((b[..., c] >> shift).ravel(), minlength=bins) / b[..., c].size
    dist += 0.5 * float(np.abs(h0 - h1).sum()) / 3.0
  return min(mad, dist)


def _visible_colour(frame: np.ndarray) -> np.ndarray:
  frame = np.asarray(frame)
  if frame.shape[-1] == 3:
    return frame
  premultiplied = frame[..., :3].astype(np.uint16) * frame[..., 3:] + 127
  return (premultiplied // 255).astype(np.uint8)


def _image_extensions() -> frozenset[str]:
  return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def list_frame_files(folder: str) -> list[str]:
  """The image files of `folder` (Pillow's extensions; hidden files skipped) in natural order: 2 before 10.

  Raises FileNotFoundError / NotADirectoryError, or ValueError when it holds fewer than two images.
  """
  if not os.path.exists(folder):
    raise FileNotFoundError(f"frames folder {folder} does not exist")
  if not os.path.isdir(folder):
    raise NotADirectoryError(f"frames folder {folder} is not a folder")
  exts = _image_extensions()
  names = sorted((n for n in os.listdir(folder) if not n.startswith(".") and os.path.splitext(n)[1].lower() in exts
                  and os.path.isfile(os.path.join(folder, n))), key=utils.natural_key)
  if len(names) < 2:
    raise ValueError(f"frames folder {folder} holds {len(names)} image file(s): interpolation needs at least two")
  return [os.path.join(folder, n) for n in names]

