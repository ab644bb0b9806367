"""`jaxvfi_synthetic`: the embedded default dataset of rendered clips with exact intermediate frames; and
`jaxvfi_synthetic_zoom`: misaligned optical-zoom pairs in SR-RAW's layout (SDAN's embedded default, see below).

Each example is one clip from `jaxvfi.datasets.render` (a background photo and 1-3 independently moving foreground
layers, all from scikit-image's bundled photos; train and validation use disjoint photos). Clips are written in
ArrayRecord format, so building and reading need no TensorFlow:

  builder = JaxvfiSynthetic(data_dir=..., config=synthetic_config(num_train=8), file_format="array_record")
  builder.download_and_prepare()
  source = builder.as_data_source(split="train")   # random access, source[i] is clip i (no TFDS shuffling)

Clip i of a split is rendered from `np.random.default_rng([seed, SPLIT_INDEX[split], i])`, so every clip is a pure
function of (seed, split, i), independent of how many clips are built or in which order.

`jaxvfi_synthetic_zoom` (SDAN, paper 004): one still scene per example, shot by two cameras, standing in for
SR-RAW's long and short focal lengths. The target `hr_rgb` (S x S) is the scene rendered at the reference size and
taken as the long lens's sRGB JPEG. The short lens sees the same scene with its view moved by a known offset
d = (dy, dx) LR pixels (4 d target pixels); its optics blur (Gaussian, `lens_blur` target px) and its sensor
integrates the linear light (sRGB decoded) over 4 x 4 target pixels (antialiased bicubic x1/4). That linear image,
sampled on an RGGB Bayer grid, is `lr_raw` (S/8 x S/8 x 4 packed R, G, B, G in 14-bit counts over a black level
of 512, like SR-RAW's Sony files); its camera rendering `lr_rgb` (S/4 x S/4) applies the short camera's own white
balance and exposure (`lr_gains`, `lr_exposure`) and the sRGB curve, so, as in SR-RAW, the input shot's colours
are not the target's. So lr_rgb[y, x] shows the target's content at LR position (y + dy, x + dx), softer and in
other colours: the misalignment SDAN's alignment and mask M (Eq. (6)) absorb, and what bicubic x4 cannot undo.
Training offsets are uniform in [-max_shift, max_shift]^2 (3 LR px by default); validation pairs are aligned
(`validation_max_shift` 0), so a validation PSNR scores the zoom rather than the offset. Not a sensor model: no
noise, no demosaicking artefacts of a real ISP, one fixed camera pair.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage
import tensorflow_datasets as tfds

from jaxvfi import augment
from jaxvfi import utils
from jaxvfi.datasets import render

SPLIT_INDEX = {"train": 0, "validation": 1}
_REFERENCE_SIZE = 128  # `render.sample_scene`'s default motion (2-15 px per unit t) is meant for 128x128 frames.


def clip_features(num_frames: int | None = None, height: int | None = None,
                  width: int | None = None) -> tfds.features.FeaturesDict:
  """The clip features every jaxvfi interpolation builder writes.

  frames: uint8 (T, H, W, 3), zlib-compressed tensor (tfds.features.Image would need TensorFlow to encode);
  times: float32 (T,), in units of the input interval (first input frame at 0, second at 1);
  id: text naming the clip (decoded as bytes).
  """
  return tfds.features.FeaturesDict({
      "frames": tfds.features.Tensor(shape=(num_frames, height, width, 3), dtype=np.uint8, encoding="zlib"),
      "times": tfds.features.Tensor(shape=(num_frames,), dtype=np.float32),
      "id": tfds.features.Text(),
  })


@dataclasses.dataclass(eq=False, kw_only=True)
class SyntheticConfig(tfds.core.BuilderConfig):
  """Clip counts, frame size (H, W), frames per clip (times 0, 1/(T-1), ..., 1) and the seed."""
  num_train: int = 512
  num_validation: int = 64
  size: tuple[int, int] = (128, 128)
  num_frames: int = 9
  seed: int = 0


_DEFAULT = SyntheticConfig(name="default", description="512/64 clips of 9 frames at 128x128.")


def named_config(default: tfds.core.BuilderConfig, name: str, **fields) -> tfds.core.BuilderConfig:
  """The builder config of `default`'s class with `fields` (the others at the class's defaults), named `name`.

  `default` itself when `fields` equal its own: TFDS refuses a second config object named like a registered one.
  The name is the config's directory, so each set of parameters is built once, apart from the others.
  """
  if all(getattr(default, key) == value for key, value in fields.items()):
    return default
  return type(default)(name=name, **fields)


def synthetic_config(num_train: int = 512, num_validation: int = 64, size: tuple[int, int] = (128, 128),
                     num_frames: int = 9, seed: int = 0) -> SyntheticConfig:
  """The builder config for these parameters; non-default ones get their own name (and so their own directory)."""
  return named_config(_DEFAULT, f"{num_train}train_{num_validation}val_{size[0]}x{size[1]}_{num_frames}f_seed{seed}",
                      num_train=num_train, num_validation=num_validation, size=tuple(size), num_frames=num_frames,
                      seed=seed)


def clip_times(num_frames: int) -> np.ndarray:
  """Frame times 0, 1/(T-1), ..., 1 as float32, exactly representable for T - 1 a power of two."""
  return (np.arange(num_frames) / (num_frames - 1)).astype(np.float32)


def make_clip(split: str, index: int, *, size: tuple[int, int] = (128, 128), num_frames: int = 9,
              seed: int = 0) -> dict[str, object]:
  """Example `index` of `split`: {"frames": uint8 (T, H, W, 3), "times": float32 (T,), "id": str}."""
  rng = np.random.default_rng([seed, SPLIT_INDEX[split], index])
  motion = min(size) / _REFERENCE_SIZE
  scene = render.sample_scene(rng, render.load_photos(split), size, displacement=(2.0 * motion, 15.0 * motion))
  times = clip_times(num_frames)
  return {"frames": render.render_clip(scene, times), "times": times, "id": f"{split}/{index:06d}"}


class JaxvfiSynthetic(tfds.core.GeneratorBasedBuilder):
  """Rendered clips (see module docstring); splits "train" and "validation"."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [_DEFAULT]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    # DatasetInfo directly: `dataset_info_from_configs` wants a package directory with README/CITATIONS files.
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.splitlines()[0],
        features=clip_features(config.num_frames, *config.size),
        disable_shuffling=True,  # source[i] is clip i; evaluation order is the generation order.
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the photos ship with scikit-image.
    config = self.builder_config
    return {"train": self._generate_examples("train", config.num_train),
            "validation": self._generate_examples("validation", config.num_validation)}

  def _generate_examples(self, split: str, count: int):
    config = self.builder_config
    for index in range(count):
      yield index, make_clip(split, index, size=config.size, num_frames=config.num_frames, seed=config.seed)


# ---------------------------------------------------------------------------------------------------------- zoom

BLACK_LEVEL, WHITE_LEVEL = 512, 16383  # SR-RAW's Sony ARW levels (14 bit).
ZOOM = 4
LENS_BLUR = 1.5  # Gaussian sigma of the short lens, in target pixels
LR_GAINS = (1.15, 1.0, 0.8)  # the short camera's white balance (warmer) ...
LR_EXPOSURE = 0.7  # ... and exposure (half a stop darker), on linear RGB


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
  """IEC 61966-2-1 sRGB decoding of values in [0, 1]."""
  return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
  """IEC 61966-2-1 sRGB encoding; clips to [0, 1] first."""
  x = np.clip(x, 0.0, 1.0)
  return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


@dataclasses.dataclass(eq=False, kw_only=True)
class SyntheticZoomConfig(tfds.core.BuilderConfig):
  """Pair counts, target side S (a multiple of 8), offset bounds in LR pixels and the seed."""
  num_train: int = 512
  num_validation: int = 64
  size: int = 128
  max_shift: float = 3.0
  validation_max_shift: float = 0.0
  lens_blur: float = LENS_BLUR
  lr_gains: tuple[float, float, float] = LR_GAINS
  lr_exposure: float = LR_EXPOSURE
  seed: int = 0


_ZOOM_DEFAULT = SyntheticZoomConfig(name="default", description="512/64 pairs, 128x128 targets, offsets <= 3 LR px.")


def synthetic_zoom_config(num_train: int = 512, num_validation: int = 64, size: int = 128, max_shift: float = 3.0,
                          validation_max_shift: float = 0.0, seed: int = 0) -> SyntheticZoomConfig:
  """The zoom builder config for these parameters; non-default ones get their own name (and directory)."""
  if int(size) != size or size % (2 * ZOOM) or size <= 0:
    raise ValueError(f"jaxvfi_synthetic_zoom: the target side must be a positive multiple of {2 * ZOOM} (packed "
                     f"RAW grid), got {size}")
  name = f"{num_train}train_{num_validation}val_{int(size)}px_shift{max_shift:g}_val{validation_max_shift:g}_seed{seed}"
  return named_config(_ZOOM_DEFAULT, name, num_train=num_train, num_validation=num_validation, size=int(size),
                      max_shift=float(max_shift), validation_max_shift=float(validation_max_shift), seed=seed)


def bayer_pack(rgb: np.ndarray) -> np.ndarray:
  """(H, W, 3) float -> (H/2, W/2, 4) packed RGGB samples: R (0,0), G (0,1), B (1,1), G (1,0) of each cell."""
  return np.stack([rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1], rgb[1::2, 1::2, 2], rgb[1::2, 0::2, 1]], axis=-1)


def make_zoom_pair(split: str, index: int, *, size: int = 128, max_shift: float = 3.0, lens_blur: float = LENS_BLUR,
                   lr_gains: tuple[float, float, float] = LR_GAINS, lr_exposure: float = LR_EXPOSURE, seed: int = 0
                   ) -> dict[str, object]:
  """Pair `index` of `split` (module docstring): lr_raw, black_level, white_level, lr_rgb, hr_rgb, offset, id."""
  rng = np.random.default_rng([seed, SPLIT_INDEX[split], index, 1])  # 1: a stream apart from the clips'
  scene = render.sample_scene(rng, render.load_photos(split), (size, size))
  offset = rng.uniform(-max_shift, max_shift, size=2) if max_shift else np.zeros(2)
  hr = render.render_clip(scene, [0.0])[0]
  view = np.array([[1.0, 0.0, ZOOM * offset[0]], [0.0, 1.0, ZOOM * offset[1]]])
  light = srgb_to_linear(np.clip(render.composite(render.render_layers(scene, 0.0, view=view)) / 255, 0, 1))
  if lens_blur:
    light = ndimage.gaussian_filter(light, (lens_blur, lens_blur, 0), mode="nearest")
  light = np.clip(augment.bicubic_downscale(light, ZOOM), 0, 1)
  counts = BLACK_LEVEL + bayer_pack(light) * (WHITE_LEVEL - BLACK_LEVEL)
  lr_rgb = linear_to_srgb(light * lr_exposure * np.asarray(lr_gains, np.float32))
  return {"lr_raw": np.rint(counts).astype(np.uint16), "black_level": np.full(4, BLACK_LEVEL, np.float32),
          "white_level": np.float32(WHITE_LEVEL), "lr_rgb": utils.to_uint8(lr_rgb), "hr_rgb": hr,
          "offset": offset.astype(np.float32), "id": f"{split}/{index:06d}"}


class JaxvfiSyntheticZoom(tfds.core.GeneratorBasedBuilder):
  """Misaligned zoom pairs in SR-RAW's features (module docstring); splits "train" and "validation"."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [_ZOOM_DEFAULT]

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    image = lambda side, channels, dtype: tfds.features.Tensor(shape=(side, side, channels), dtype=dtype,
                                                               encoding="zlib")
    return tfds.core.DatasetInfo(
        builder=self,
        description="Misaligned synthetic 4x zoom pairs: packed RAW and RGB input, RGB target, known offset.",
        features=tfds.features.FeaturesDict({
            "lr_raw": image(s // 8, 4, np.uint16),
            "black_level": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "white_level": np.float32,
            "lr_rgb": image(s // 4, 3, np.uint8),
            "hr_rgb": image(s, 3, np.uint8),
            "offset": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "id": tfds.features.Text(),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    config = self.builder_config
    return {"train": self._generate_examples("train", config.num_train, config.max_shift),
            "validation": self._generate_examples("validation", config.num_validation, config.validation_max_shift)}

  def _generate_examples(self, split: str, count: int, max_shift: float):
    config = self.builder_config
    for index in range(count):
      yield index, make_zoom_pair(split, index, size=config.size, max_shift=max_shift, lens_blur=config.lens_blur,
                                  lr_gains=config.lr_gains, lr_exposure=config.lr_exposure, seed=config.seed)
