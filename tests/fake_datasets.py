"""Tiny fakes of the real datasets in their official folder layouts, for the dataset, pipeline and evaluator tests.

Every writer returns the pixel arrays it wrote, so tests compare builder output against them. PNGs round-trip
exactly; JPGs are lossy, so for those the oracle is what Pillow decodes from the written file.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
import sys

import numpy as np
import pytest
import tifffile
from PIL import ExifTags
from PIL import Image


def write_png(path: Path, array: np.ndarray) -> np.ndarray:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path)
  return array


def random_frame(rng: np.random.Generator, height: int = 6, width: int = 10) -> np.ndarray:
  return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def make_vimeo(root: Path, kind: str, lists: dict[str, list[str]], unlisted: tuple[str, ...] = (),
               seed: int = 0) -> dict[str, np.ndarray]:
  """`root/vimeo_<kind>/` with list files and sequences; returns sequence id -> (N, H, W, 3) frames."""
  rng = np.random.default_rng(seed)
  folder, prefix, count = {"triplet": ("vimeo_triplet", "tri", 3), "septuplet": ("vimeo_septuplet", "sep", 7)}[kind]
  base = root / folder
  frames = {}
  for ident in [i for ids in lists.values() for i in ids] + list(unlisted):
    frames[ident] = np.stack([write_png(base / "sequences" / ident / f"im{k}.png", random_frame(rng))
                              for k in range(1, count + 1)])
  for split, ids in lists.items():
    (base / f"{prefix}_{split}list.txt").write_text("\n".join(ids) + "\n\n")  # Official lists end in a blank line.
  return frames


def make_ucf(root: Path, names: list[str], seed: int = 1) -> dict[str, np.ndarray]:
  """`root/ucf101_interp_ours/<seq>/` with DVF's file names (plus its frame_01_ours.png, which must be ignored)."""
  rng = np.random.default_rng(seed)
  frames = {}
  for name in names:
    seq = root / "ucf101_interp_ours" / name
    frames[name] = np.stack([write_png(seq / f, random_frame(rng))
                             for f in ("frame_00.png", "frame_01_gt.png", "frame_02.png")])
    write_png(seq / "frame_01_ours.png", random_frame(rng))
  return frames


def make_middlebury(root: Path, with_truth: list[str], without_truth: list[str],
                    seed: int = 2) -> dict[str, np.ndarray]:
  """`root/other-data/<seq>/frame07..14.png` and `root/other-gt-interp/<seq>/frame10i11.png` for `with_truth`."""
  rng = np.random.default_rng(seed)
  frames = {}
  for name in with_truth + without_truth:
    data = {k: write_png(root / "other-data" / name / f"frame{k:02d}.png", random_frame(rng)) for k in range(7, 15)}
    if name in with_truth:
      truth = write_png(root / "other-gt-interp" / name / "frame10i11.png", random_frame(rng))
      frames[name] = np.stack([data[10], truth, data[11]])
  return frames


def make_clip(folder: Path, num_frames: int, rng: np.random.Generator, digits: int = 5) -> np.ndarray:
  """A folder of `num_frames` sharp frames named 1, 2, ... zero-padded (BIN's ffmpeg naming); returns them."""
  return np.stack([write_png(folder / f"{k:0{digits}d}.png", random_frame(rng, 4, 6))
                   for k in range(1, num_frames + 1)])


def write_dng(path: Path, mosaic: np.ndarray, cfa: tuple[int, int, int, int] = (0, 1, 1, 2),
              black: int = 512, white: int = 16383) -> None:
  """A minimal uncompressed DNG of a uint16 CFA mosaic (CFAPattern `cfa`: 0=R, 1=G, 2=B; default RGGB).

  No ARW writer exists, so the SR-RAW fakes hold DNG data under the .ARW name; LibRaw (rawpy) identifies files by
  content, not by name. LibRaw refuses images under 22 pixels a side.
  """
  extratags = [
      (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
      (33422, "B", 4, cfa, True),  # CFAPattern
      (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
      (271, "s", 0, "Sony", True),  # Make
      (272, "s", 0, "jaxvfi fake", True),  # Model
      (50708, "s", 0, "jaxvfi fake", True),  # UniqueCameraModel
      (50714, "H", 1, black, True),  # BlackLevel
      (50717, "H", 1, white, True),  # WhiteLevel
      (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True),  # ColorMatrix1 = identity
      (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
  ]
  path.parent.mkdir(parents=True, exist_ok=True)
  tifffile.imwrite(path, mosaic, photometric=32803, extratags=extratags, metadata=None)


def write_jpg(path: Path, array: np.ndarray, focal: float | None) -> np.ndarray:
  """A JPG with EXIF FocalLength `focal` (mm; None writes no EXIF); returns what Pillow decodes from it."""
  exif = Image.Exif()
  if focal is not None:
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLength] = float(focal)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path, exif=exif, quality=95)
  with Image.open(path) as image:
    return np.asarray(image.convert("RGB"))


def make_srraw_sequence(seq: Path, focals: dict[int, float], size: tuple[int, int], rng: np.random.Generator,
                        cfa: tuple[int, int, int, int] = (0, 1, 1, 2)) -> dict[int, dict[str, np.ndarray]]:
  """Shots k -> {"mosaic": uint16 (H, W), "jpg": decoded uint8 (H, W, 3)} written as 0000k.ARW / 0000k.JPG."""
  shots = {}
  for k, focal in focals.items():
    mosaic = rng.integers(512, 16384, size=size, dtype=np.uint16)
    write_dng(seq / f"{k:05d}.ARW", mosaic, cfa=cfa)
    jpg = write_jpg(seq / f"{k:05d}.JPG", rng.integers(0, 256, size=(*size, 3), dtype=np.uint8), focal)
    shots[k] = {"mosaic": mosaic, "jpg": jpg}
  return shots


@contextlib.contextmanager
def frame_size(height: int, width: int):
  """Every fake written inside the block has height x width frames (the default 6x10 is too small for SSIM's 11x11
  window and for the augmentation presets' crops)."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(sys.modules[__name__], "random_frame",
                  lambda rng, *_: rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    yield
