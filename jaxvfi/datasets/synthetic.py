"""`jaxvfi_synthetic`: the embedded default dataset of rendered clips with exact intermediate frames.

Each example is one clip from `jaxvfi.data.render` (a background photo and 1-3 independently moving foreground
layers, all from scikit-image's bundled photos; train and validation use disjoint photos). Clips are written in
ArrayRecord format, so building and reading need no TensorFlow:

  builder = JaxvfiSynthetic(data_dir=..., config=synthetic_config(num_train=8), file_format="array_record")
  builder.download_and_prepare()
  source = builder.as_data_source(split="train")   # random access, source[i] is clip i (no TFDS shuffling)

Clip i of a split is rendered from `np.random.default_rng([seed, SPLIT_INDEX[split], i])`, so every clip is a pure
function of (seed, split, i), independent of how many clips are built or in which order.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxvfi.data import render

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


def synthetic_config(num_train: int = 512, num_validation: int = 64, size: tuple[int, int] = (128, 128),
                     num_frames: int = 9, seed: int = 0) -> SyntheticConfig:
  """The builder config for these parameters; non-default ones get their own name (and so their own directory)."""
  config = SyntheticConfig(name="", num_train=num_train, num_validation=num_validation, size=tuple(size),
                           num_frames=num_frames, seed=seed)
  fields = ("num_train", "num_validation", "size", "num_frames", "seed")
  if all(getattr(config, f) == getattr(_DEFAULT, f) for f in fields):
    return _DEFAULT  # TFDS refuses a second config object named like a registered one.
  config.name = f"{num_train}train_{num_validation}val_{size[0]}x{size[1]}_{num_frames}f_seed{seed}"
  return config


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
