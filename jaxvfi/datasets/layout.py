"""Layout checks and frame decoding shared by the real-dataset builders (Vimeo-90K, UCF101, Middlebury, Adobe240,
GOPRO, SR-RAW).

Every builder checks the folder the user unpacked (`manual_dir`) before it writes anything, and stops at the first
problem with ONE error that starts with the builder's name and names the offending path:
  FileNotFoundError  a required file or folder is missing;
  ValueError         a path is there but unusable (frames of different sizes in one example, a 16-bit PNG, a
                     folder from another distribution of the dataset).

Frames are decoded with Pillow to uint8 RGB (H, W, 3). Grayscale ("L", "1") is replicated to three channels, palette
images are expanded through their palette, and an alpha channel ("LA", "RGBA", "PA") is dropped, not composited, so
the colour values stay the stored ones. 16-bit and float images are refused rather than silently clipped to 8 bits:
none of these datasets ships them, so one means the wrong files were unpacked.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from jaxvfi import utils

_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def require_file(name: str, path: Path) -> Path:
  if not path.is_file():
    raise FileNotFoundError(f"{name}: expected {path}")
  return path


def require_dir(name: str, path: Path) -> Path:
  if not path.is_dir():
    raise FileNotFoundError(f"{name}: expected folder {path}/")
  return path


def manual_path(manual_dir) -> Path:
  """`dl_manager.manual_dir` (an etils path) as a local `pathlib.Path`."""
  return Path(os.fspath(manual_dir))


def find_root(name: str, manual_dir: Path, folder: str, marker: str) -> Path:
  """The dataset folder `folder`: either `manual_dir/folder` or `manual_dir` itself, told apart by `marker`."""
  if (manual_dir / marker).exists():
    return manual_dir
  if (manual_dir / folder / marker).exists():
    return manual_dir / folder
  raise FileNotFoundError(f"{name}: expected {manual_dir / folder / marker} "
                          f"(or {manual_dir / marker} if {manual_dir} is the {folder} folder itself)")


def read_lines(name: str, path: Path) -> list[str]:
  """The non-empty lines of a list file, stripped (the official lists end with a blank line)."""
  lines = [line.strip() for line in require_file(name, path).read_text().splitlines()]
  lines = [line for line in lines if line]
  if not lines:  # TFDS would fail later, mid-build, with "No examples were yielded"
    raise ValueError(f"{name}: the list file {path} names no sequences")
  return lines


def subdirs(path: Path) -> list[Path]:
  """Subfolders of `path` in natural order, without hidden ones and the __MACOSX folder macOS zips carry."""
  return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX"),
                key=lambda p: utils.natural_key(p.name))


def pngs(name: str, folder: Path) -> list[Path]:
  """The PNG frames of a folder in natural name order; a folder without any is an error."""
  frames = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
                  key=lambda p: utils.natural_key(p.name))
  if not frames:
    raise FileNotFoundError(f"{name}: expected PNG frames {folder}/*.png")
  return frames


def to_rgb(name: str, image: Image.Image, path: Path) -> np.ndarray:
  """uint8 (H, W, 3) from a decoded Pillow image, converting modes as the module docstring says."""
  if image.mode in _DEEP_MODES:
    raise ValueError(f"{name}: {path} is a {image.mode} (16-bit or float) image; expected 8-bit RGB or grayscale")
  if image.mode != "RGB":
    image = image.convert("RGB")  # Pillow's RGBA/LA -> RGB drops alpha; L -> RGB replicates.
  return np.asarray(image, dtype=np.uint8)


def read_rgb(name: str, path: Path) -> np.ndarray:
  with Image.open(require_file(name, path)) as image:
    return to_rgb(name, image, path)


def check_same_size(name: str, first: Path, first_shape: tuple, path: Path, shape: tuple) -> None:
  if shape != first_shape:
    raise ValueError(f"{name}: frame sizes differ within one example: {first} is {first_shape[1]}x{first_shape[0]} "
                     f"but {path} is {shape[1]}x{shape[0]} (width x height)")


def read_frames(name: str, paths: Sequence[Path]) -> np.ndarray:
  """uint8 (T, H, W, 3) from T frame files that must share one size."""
  frames = [read_rgb(name, p) for p in paths]
  for path, frame in zip(paths, frames):
    check_same_size(name, paths[0], frames[0].shape, path, frame.shape)
  return np.stack(frames)


def interpolation_example(name: str, ident: str, paths: Sequence[Path], times: Sequence[float]) -> dict:
  """One example in the canonical interpolation features (`synthetic.clip_features`): frames, times, id."""
  return {"frames": read_frames(name, paths), "times": np.asarray(times, np.float32), "id": ident}
