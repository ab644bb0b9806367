"""SR-RAW (Zhang et al., "Zoom to Learn, Learn to Zoom", CVPR 2019) as SDAN uses it: builder `sr_raw`, 4x
optical-zoom pairs, splits `train` and `test`.

SDAN (paper 004, Sec. 4.1): each sequence holds 7 shots of one scene at focal lengths {240, 150, 70, 70, 50, 35,
24} mm; for 4X zoom "each sequence contains 3 low and high resolution pairs"; inputs are the low-resolution RAW
(64x64 packed crops) or its camera RGB (128x128), targets the high-resolution camera RGB (512x512). The pairs
follow SDAN's released SR-RAW loader: target shot i with input shot i + 4, for i = 1, 2, 3 in training (240/50,
150/35 and 70/24 mm: nominally 4x) and only i = 2 in test (input 00006, the 35 mm shot zoom-learn-zoom tests
on). A pair is skipped when one of its four files (two JPGs, two ARWs) is missing, as a few sequences hold only 6
shots; the five target shots that loader excludes are excluded as well (`SDAN_EXCLUDED_TARGETS`, reason not given).

Each pair is prepared as that loader does before its random crops:
  * focal lengths f_in, f_target and f_ref (shot 00001, the longest) from the JPGs' EXIF FocalLength (tag 37386);
  * input RAW, input JPG and target JPG are centre-cropped to the field of view of shot 00001, keeping the fraction
    f / f_ref of each side (zoom-learn-zoom's `crop_fov`), so input and target show the same part of the scene;
  * the input RAW (rawpy `raw_image_visible`) is packed to half resolution with channels R, G, B, G (LibRaw's
    colours 0-3: the green on red's rows, then the green on blue's rows; for SR-RAW's Sony RGGB sensor this is
    zoom-learn-zoom's positional order (0,0), (0,1), (1,1), (1,0)) and left in sensor counts, with black and
    white levels stored beside it;
  * the input JPG is resized to exactly 2x the packed RAW grid and the target JPG to exactly 8x (= 4x the input
    RGB), bicubic (Pillow), as SDAN rescales the target by the focal-ratio offset so that every pair is exactly 4x.
EXIF orientation is ignored, so JPGs stay in sensor orientation like the RAW.

Builder configs (`data.builder_config`):
  "as_shot" (default): the pairs as above. SDAN's network is built to absorb the misalignment (squared deformable
    alignment, mask M of Eq. (6)), and the paper does not say the dataset's alignment was applied.
  "aligned": also what SDAN's released loader does with the files zoom-learn-zoom ships in every sequence:
    * `tform.txt` (2x3 ECC affines "00001-0000k", each shot against shot 00001; a missing entry is the identity,
      as in that loader): the target, scaled by f_ref / f_target to shot 00001's pixel grid, is warped by
      inv(T_input) T_target (bilinear, OpenCV's WARP_INVERSE_MAP convention: dst(p) = src(M p), zeros outside),
      cropped to the region where the warp is defined and scaled back; the input RAW and RGB are cut to that
      region (divided by 2 f_ref / f_input and f_ref / f_input);
    * `wb.txt` ("0000k:" then 4 gains R, G, G, B): the target and the input RGB are divided per channel by
      gain^(1/2.2) of their own shot (R by gains[0], G by gains[1], B by gains[3]) and clipped, after the resize.
    Pillow's antialiased bicubic replaces OpenCV's INTER_CUBIC for the scalings, as everywhere in this builder.

Features:
  lr_raw       uint16 (h, w, 4)     packed Bayer input, sensor counts
  black_level  float32 (4,)         per packed channel (rawpy black_level_per_channel)
  white_level  float32 ()           rawpy white_level
  lr_rgb       uint8 (2h, 2w, 3)    input camera JPG, same view
  hr_rgb       uint8 (8h, 8w, 3)    target camera JPG, same view
  lr_focal, hr_focal, ref_focal     float32 (), mm
  id           text                 "<seq>/<target shot>-<input shot>", e.g. "00123/00001-00005"

Layout (train.zip and/or test.zip unpacked into `manual_dir`; a missing split is not built):
  <manual_dir>/train/<seq>/00001.ARW 00001.JPG ... 00007.ARW 00007.JPG
  <manual_dir>/test/<seq>/...
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
from scipy import ndimage
import tensorflow_datasets as tfds
from PIL import Image

from jaxvfi import utils
from jaxvfi.datasets import layout

PAIRS = {"train": ((1, 5), (2, 6), (3, 7)), "test": ((2, 6),)}  # (target shot, input shot), SDAN's 4X loader.
SDAN_EXCLUDED_TARGETS = frozenset({"00350/00001", "00350/00002", "00350/00003", "00560/00003", "00267/00003"})
REFERENCE_SHOT = 1
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 37386
_CITATION = """@inproceedings{zhang2019zoom,
  title={Zoom to Learn, Learn to Zoom},
  author={Zhang, Xuaner and Chen, Qifeng and Ng, Ren and Koltun, Vladlen},
  booktitle={CVPR},
  year={2019}
}"""


def shot(seq: Path, index: int, extension: str) -> Path:
  return seq / f"{index:05d}.{extension}"


def focal_length(name: str, path: Path) -> float:
  """EXIF FocalLength (tag 37386, in the Exif IFD) of a JPG, in mm."""
  with Image.open(layout.require_file(name, path)) as image:
    value = image.getexif().get_ifd(_EXIF_IFD).get(_FOCAL_LENGTH)
  if value is None:
    raise ValueError(f"{name}: {path} has no EXIF FocalLength (tag 37386)")
  return float(value)


def pack_bayer(mosaic: np.ndarray, pattern: np.ndarray) -> np.ndarray:
  """(H, W) CFA mosaic -> (H // 2, W // 2, 4) with channels in colour order 0..3 of `pattern` (rawpy raw_pattern,
  colours "RGBG": R, G on red's rows, B, G on blue's rows). An odd last row or column is dropped."""
  height, width = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
  channels = []
  for colour in range(4):
    (y, x), = np.argwhere(pattern == colour)
    channels.append(mosaic[y:height:2, x:width:2])
  return np.stack(channels, axis=-1)


def read_raw(name: str, path: Path) -> tuple[np.ndarray, np.ndarray, float]:
  """Packed uint16 Bayer (H/2, W/2, 4), black level per packed channel, white level of a camera RAW file."""
  import rawpy  # pylint: disable=g-import-not-at-top  # Only building sr_raw needs it, not importing the registry.

  try:
    raw = rawpy.imread(str(layout.require_file(name, path)))
  except (rawpy.LibRawError, OSError) as e:  # a page saved under a .ARW name, a file cut short, ...
    reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else utils.error_reason(e)
    raise ValueError(f"{name}: cannot read the RAW file {path}: {reason or type(e).__name__} "
                     "(replace or remove it and build again)") from e
  with raw:
    pattern = np.asarray(raw.raw_pattern)
    if raw.color_desc != b"RGBG" or pattern.shape != (2, 2) or sorted(pattern.ravel()) != [0, 1, 2, 3]:
      raise ValueError(f"{name}: {path}: expected a 2x2 Bayer sensor (colours RGBG), got {raw.color_desc!r} "
                       f"pattern {pattern.tolist()}")
    packed = pack_bayer(raw.raw_image_visible, pattern).astype(np.uint16)  # A copy: LibRaw's buffer dies on close.
    black = np.asarray(raw.black_level_per_channel, np.float32)  # Indexed by colour, as the packed channels are.
    return packed, black, float(raw.white_level)


def crop_fov(image: np.ndarray, focal: float, ref_focal: float) -> np.ndarray:
  """Centre crop to the field of view of a `ref_focal` shot: [ceil((n - k) / 2), floor((n + k) / 2)) per axis with
  k = n * focal / ref_focal, zoom-learn-zoom's `crop_fov` (k is formed in this order so that exact ratios stay
  exact in floating point)."""
  kept = [n * focal / ref_focal for n in image.shape[:2]]
  (top, bottom), (left, right) = [(math.ceil((n - k) / 2), math.floor((n + k) / 2))
                                  for n, k in zip(image.shape[:2], kept)]
  return image[top:bottom, left:right]


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bicubic resize of uint8 (H, W, 3); the identity when the size already matches."""
  return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def read_tform(name: str, path: Path, index: int) -> np.ndarray:
  """The 2x3 affine of shot `index` against shot 00001 in a zoom-learn-zoom `tform.txt` ("00001-0000k" and two
  rows); the identity when the file has no such entry (SDAN's loader does the same)."""
  lines = layout.require_file(name, path).read_text().splitlines()
  key = f"00001-{index:05d}"
  for i, line in enumerate(lines):
    if key in line:
      try:
        return np.array([[float(v) for v in lines[i + r].split()] for r in (1, 2)], np.float64).reshape(2, 3)
      except (ValueError, IndexError) as e:
        raise ValueError(f"{name}: {path}: entry {key} is not followed by two rows of three numbers") from e
  return np.eye(2, 3)


def read_wb(name: str, path: Path, index: int) -> np.ndarray:
  """The 4 white-balance gains (R, G, G, B) of shot `index` in a zoom-learn-zoom `wb.txt` ("0000k:" then a row)."""
  lines = layout.require_file(name, path).read_text().splitlines()
  key = f"{index:05d}:"
  for i, line in enumerate(lines):
    if key in line:
      try:
        gains = np.array([float(v) for v in lines[i + 1].split()], np.float64)
      except (ValueError, IndexError):
        gains = np.zeros(0)
      if gains.shape != (4,) or (gains <= 0).any():
        raise ValueError(f"{name}: {path}: entry {key} is not followed by four positive gains")
      return gains
  raise ValueError(f"{name}: {path} has no white balance for shot {index:05d}")


def _affine3(m: np.ndarray) -> np.ndarray:
  return np.vstack([m, [0.0, 0.0, 1.0]])


def warp_inverse_map(image: np.ndarray, m: np.ndarray) -> np.ndarray:
  """dst(x, y) = src(m (x, y, 1)) with (x, y) = (column, row), bilinear, zeros outside: OpenCV's `warpAffine` with
  WARP_INVERSE_MAP on float (H, W, C) images, through `scipy.ndimage.affine_transform` in (row, column) order."""
  matrix = np.array([[m[1, 1], m[1, 0]], [m[0, 1], m[0, 0]]])
  offset = np.array([m[1, 2], m[0, 2]])
  return np.stack([ndimage.affine_transform(image[..., c], matrix, offset, order=1, mode="constant", cval=0.0)
                   for c in range(image.shape[-1])], axis=-1)


def valid_region(m: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
  """(top, bottom, left, right) of the axis-aligned box of `warp_inverse_map`'s output that comes from inside the
  source: the source's corners mapped by inv(m), inner edges rounded inwards (zoom-learn-zoom's
  `get_transformed_corner`)."""
  corners = np.linalg.inv(_affine3(m)) @ np.array([[0, 0, width, width], [0, height, 0, height], [1, 1, 1, 1]])
  left = max(0, math.ceil(max(corners[0, 0], corners[0, 1])))
  top = max(0, math.ceil(max(corners[1, 0], corners[1, 2])))
  right = min(width, math.floor(min(corners[0, 2], corners[0, 3])))
  bottom = min(height, math.floor(min(corners[1, 1], corners[1, 3])))
  return top, bottom, left, right


def _scale(image: np.ndarray, factor: float) -> np.ndarray:
  height, width = image.shape[:2]
  return resize(image, max(1, round(height * factor)), max(1, round(width * factor)))


def align_pair(name: str, seq: Path, target: int, source: int, raw: np.ndarray, lr_rgb: np.ndarray,
               hr_rgb: np.ndarray, ratio_input: float, ratio_target: float):
  """The "aligned" config's warp (module docstring): (raw, lr_rgb, hr_rgb) cut and warped onto one view.

  `ratio_*` are f_ref / f of the shot; the three images are the field-of-view crops of `pair_example`."""
  path = seq / "tform.txt"
  m = (np.linalg.inv(_affine3(read_tform(name, path, source))) @ _affine3(read_tform(name, path, target)))[:2]
  on_ref = _scale(hr_rgb, ratio_target)
  top, bottom, left, right = valid_region(m, *on_ref.shape[:2])
  if bottom - top < 1 or right - left < 1:
    raise ValueError(f"{name}: {path}: the affines of shots {source:05d} and {target:05d} leave no overlap")
  warped = warp_inverse_map(on_ref.astype(np.float32), m)[top:bottom, left:right]
  hr_rgb = _scale(np.clip(np.rint(warped), 0, 255).astype(np.uint8), 1 / ratio_target)
  cut = lambda image, f: image[int(top / f):int(bottom / f), int(left / f):int(right / f)]
  return cut(raw, 2 * ratio_input), cut(lr_rgb, ratio_input), hr_rgb


def white_balance(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
  """uint8 RGB divided by (R, G, B) = gains[[0, 1, 3]] ** (1 / 2.2), clipped (SDAN's loader, `wb.txt`)."""
  scaled = image.astype(np.float32) / np.power(gains[[0, 1, 3]], 1 / 2.2).astype(np.float32)
  return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def pair_example(name: str, seq: Path, target: int, source: int, align: bool = False,
                 balance: bool = False) -> dict:
  """One 4x pair as the module docstring describes (`align`, `balance`: the "aligned" config's steps)."""
  ref_focal = focal_length(name, shot(seq, REFERENCE_SHOT, "JPG"))
  focals = {}
  for index in (target, source):
    focals[index] = focal_length(name, shot(seq, index, "JPG"))
    if not 0 < focals[index] <= ref_focal:
      raise ValueError(f"{name}: {shot(seq, index, 'JPG')} has focal length {focals[index]} mm, outside "
                       f"(0, {ref_focal}] of the reference shot {shot(seq, REFERENCE_SHOT, 'JPG')}")
  raw, black, white = read_raw(name, shot(seq, source, "ARW"))
  raw = crop_fov(raw, focals[source], ref_focal)
  height, width = raw.shape[:2]
  if not height or not width:
    raise ValueError(f"{name}: {shot(seq, source, 'ARW')} crops to nothing at {focals[source]} / {ref_focal} mm")
  lr_rgb = crop_fov(layout.read_rgb(name, shot(seq, source, "JPG")), focals[source], ref_focal)
  hr_rgb = crop_fov(layout.read_rgb(name, shot(seq, target, "JPG")), focals[target], ref_focal)
  if align:
    raw, lr_rgb, hr_rgb = align_pair(name, seq, target, source, raw, lr_rgb, hr_rgb, ref_focal / focals[source],
                                     ref_focal / focals[target])
    height, width = raw.shape[:2]
  lr_rgb, hr_rgb = resize(lr_rgb, 2 * height, 2 * width), resize(hr_rgb, 8 * height, 8 * width)
  if balance:
    lr_rgb = white_balance(lr_rgb, read_wb(name, seq / "wb.txt", source))
    hr_rgb = white_balance(hr_rgb, read_wb(name, seq / "wb.txt", target))
  return {
      "lr_raw": raw,
      "black_level": black,
      "white_level": white,
      "lr_rgb": lr_rgb,
      "hr_rgb": hr_rgb,
      "lr_focal": focals[source],
      "hr_focal": focals[target],
      "ref_focal": ref_focal,
      "id": f"{seq.name}/{target:05d}-{source:05d}",
  }


@dataclasses.dataclass(eq=False, kw_only=True)
class SrRawConfig(tfds.core.BuilderConfig):
  """align: warp with tform.txt; white_balance: divide by wb.txt's gains (module docstring)."""
  align: bool = False
  white_balance: bool = False


class SrRaw(tfds.core.GeneratorBasedBuilder):
  """SR-RAW 4x optical-zoom pairs (packed RAW and camera RGB input, camera RGB target) as SDAN uses them."""

  name = "sr_raw"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      SrRawConfig(name="as_shot", description="Field-of-view crops as shot."),
      SrRawConfig(name="aligned", description="Also tform.txt alignment and wb.txt white balance, as SDAN's loader.",
                  align=True, white_balance=True),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download SR-RAW's train.zip and/or test.zip (https://github.com/ceciliavision/zoom-learn-zoom, "SR-RAW Dataset")
  and unzip them into manual_dir, giving <manual_dir>/train/<seq>/0000k.ARW, 0000k.JPG (k = 1..7) and
  <manual_dir>/test/<seq>/... Building needs rawpy."""

  def _info(self) -> tfds.core.DatasetInfo:
    image = lambda channels, dtype: tfds.features.Tensor(shape=(None, None, channels), dtype=dtype, encoding="zlib")
    return tfds.core.DatasetInfo(
        builder=self,
        description="SR-RAW 4x pairs cropped to one field of view: packed RAW and RGB input, RGB target.",
        features=tfds.features.FeaturesDict({
            "lr_raw": image(4, np.uint16),
            "black_level": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "white_level": np.float32,
            "lr_rgb": image(3, np.uint8),
            "hr_rgb": image(3, np.uint8),
            "lr_focal": np.float32,
            "hr_focal": np.float32,
            "ref_focal": np.float32,
            "id": tfds.features.Text(),
        }),
        homepage="https://github.com/ceciliavision/zoom-learn-zoom",
        citation=_CITATION,
        disable_shuffling=True,  # Sequence order, then pair order.
    )

  def _split_generators(self, dl_manager):
    manual_dir = layout.manual_path(dl_manager.manual_dir)
    splits = [split for split in PAIRS if (manual_dir / split).is_dir()]
    if not splits:
      raise FileNotFoundError(f"{self.name}: expected {manual_dir}/train/<seq>/00001.ARW or "
                              f"{manual_dir}/test/<seq>/00001.ARW")
    generators = {}
    for split in splits:
      sequences = layout.subdirs(manual_dir / split)
      if not sequences:
        raise FileNotFoundError(f"{self.name}: expected sequence folders {manual_dir / split}/<seq>/00001.JPG")
      pairs, skipped = [], 0
      for seq in sequences:
        layout.require_file(self.name, shot(seq, REFERENCE_SHOT, "JPG"))  # Defines every pair's field of view.
        for target, source in PAIRS[split]:
          complete = all(shot(seq, i, ext).is_file() for i in (target, source) for ext in ("JPG", "ARW"))
          if complete and f"{seq.name}/{target:05d}" not in SDAN_EXCLUDED_TARGETS:
            pairs.append((seq, target, source))
          else:
            skipped += 1
      logging.info("%s: %s: %d pairs, %d skipped (missing shots or excluded)", self.name, split, len(pairs), skipped)
      generators[split] = self._generate_examples(pairs=pairs)
    return generators

  def _generate_examples(self, pairs):
    config = self.builder_config
    for seq, target, source in pairs:
      example = pair_example(self.name, seq, target, source, config.align, config.white_balance)
      yield example["id"], example
