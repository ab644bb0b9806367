"""`jaxvfi_synthetic_blur`: embedded blurry 30-fps clips with sharp ground truth, in the features of `adobe240`.

DSFN's training data (paper 002, Sec. 4.1) made from rendered scenes instead of Adobe240 videos, so that a DSFN run
needs no download. Each example is one `jaxvfi.datasets.render` scene (a background photo and 1-3 independently moving
foreground layers; train and validation use disjoint scikit-image photos, as `jaxvfi_synthetic`) rendered as
consecutive sharp "240-fps" sub-frames, and blurred exactly as `adobe240` blurs real frames:
  * blurry frame k is the mean of `BLUR_WINDOW` = 11 consecutive sub-frames centred on sub-frame 5 + 8 k (240 -> 30
    fps), truncated to uint8 (`adobe240.synthesize_blur`);
  * the sharp ground truth is the sub-frame at each blurry frame's centre and the one half-way (4 sub-frames) between
    two centres.
Time: one unit is one blurry-frame interval (8 sub-frames); each layer moves 2-15 px per unit at 128 px (scaled with
the frame size), the motion of `jaxvfi_synthetic`'s clips per input interval, so blurs span about 3-20 px at 128 px.
Frames are stored at the full (high) resolution; the `dsfn` preset (`jaxvfi.transforms.dsfn`) crops and downscales
them (bicubic x1/4), as it does Adobe240's.

Features (`adobe240.blur_features`): blurry uint8 (N, H, W, 3), blurry_times 0..N-1, sharp uint8 (2N-1, H, W, 3),
sharp_times 0, 0.5, ..., N-1, id "<split>/<index>". Example i of a split is rendered from
`np.random.default_rng([seed, SPLIT_INDEX[split], i, 2])`, a pure function of (seed, split, i).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxvfi.datasets import render
from jaxvfi.datasets import adobe240
from jaxvfi.datasets import synthetic

BLUR_WINDOW = adobe240.BLUR_WINDOW  # sub-frames averaged per blurry frame
BLUR_STRIDE = adobe240.BLUR_STRIDE  # sub-frames between blurry frames
_HALF = BLUR_WINDOW // 2
_REFERENCE_SIZE = 128  # motion range of `render.sample_scene` per unit time is meant for 128 px frames
_STREAM = 2  # the rng stream of these examples, apart from jaxvfi_synthetic's clips (none) and the zoom pairs (1)


@dataclasses.dataclass(eq=False, kw_only=True)
class SyntheticBlurConfig(tfds.core.BuilderConfig):
  """Example counts, frame size (H, W), blurry frames per example and the seed."""
  num_train: int = 512
  num_validation: int = 64
  size: tuple[int, int] = (128, 128)
  num_blurry: int = 4
  seed: int = 0


_DEFAULT = SyntheticBlurConfig(name="default", description="512/64 examples of 4 blurry frames at 128x128.")


def synthetic_blur_config(num_train: int = 512, num_validation: int = 64, size: tuple[int, int] = (128, 128),
                          num_blurry: int = 4, seed: int = 0) -> SyntheticBlurConfig:
  """The builder config for these parameters; non-default ones get their own name (and so their own directory)."""
  if num_blurry < 2:
    raise ValueError(f"jaxvfi_synthetic_blur needs at least 2 blurry frames per example, got {num_blurry}")
  return synthetic.named_config(_DEFAULT, f"{num_train}train_{num_validation}val_{size[0]}x{size[1]}_{num_blurry}"
                                f"blurry_seed{seed}", num_train=num_train, num_validation=num_validation,
                                size=tuple(size), num_blurry=num_blurry, seed=seed)


def config_from_data(data_config) -> SyntheticBlurConfig:
  """The builder config of `config.data`: synthetic_num_train, synthetic_num_val, synthetic_size, synthetic_seed,
  and builder_config "blurry2" | "blurry3" | "blurry4" (default) for the blurry frames per example, as `adobe240`."""
  size = data_config.get("synthetic_size", 128)
  name = data_config.get("builder_config") or "blurry4"
  known = {c.name: c.num_blurry for c in adobe240.blur_configs()}
  if name not in known:
    raise ValueError(f"data.builder_config={name!r}: jaxvfi_synthetic_blur takes {', '.join(known)}")
  return synthetic_blur_config(num_train=data_config.get("synthetic_num_train", 512),
                               num_validation=data_config.get("synthetic_num_val", 64),
                               size=(size, size) if np.isscalar(size) else tuple(size), num_blurry=known[name],
                               seed=data_config.get("synthetic_seed", 0))


def subframe_times(num_blurry: int) -> np.ndarray:
  """Times of the sub-frames an example needs (units of the blurry interval; blurry frame k is centred on k)."""
  count = BLUR_STRIDE * (num_blurry - 1) + BLUR_WINDOW
  return (np.arange(count) - _HALF) / BLUR_STRIDE


def blur_example(subframes: np.ndarray, num_blurry: int) -> dict[str, np.ndarray]:
  """blurry, blurry_times, sharp, sharp_times from the uint8 sub-frames (T, H, W, 3) at `subframe_times`."""
  centres = [_HALF + BLUR_STRIDE * k for k in range(num_blurry)]
  blurry = np.stack([adobe240.synthesize_blur(subframes[c - _HALF:c + _HALF + 1]) for c in centres])
  sharp = subframes[centres[0]:centres[-1] + 1:BLUR_STRIDE // 2]
  return {"blurry": blurry, "blurry_times": np.arange(num_blurry, dtype=np.float32), "sharp": sharp,
          "sharp_times": np.arange(2 * num_blurry - 1, dtype=np.float32) / 2}


def make_example(split: str, index: int, *, size: tuple[int, int] = (128, 128), num_blurry: int = 4,
                 seed: int = 0) -> dict[str, object]:
  """Example `index` of `split` (module docstring)."""
  rng = np.random.default_rng([seed, synthetic.SPLIT_INDEX[split], index, _STREAM])
  times = subframe_times(num_blurry)
  motion = min(size) / _REFERENCE_SIZE
  scene = render.sample_scene(rng, render.load_photos(split), tuple(size), displacement=(2.0 * motion, 15.0 * motion),
                              time_range=(float(times[0]), float(times[-1])))
  return {**blur_example(render.render_clip(scene, times), num_blurry), "id": f"{split}/{index:06d}"}


class JaxvfiSyntheticBlur(tfds.core.GeneratorBasedBuilder):
  """Rendered blurry/sharp examples (module docstring); splits "train" and "validation"."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [_DEFAULT]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.splitlines()[0],
        features=adobe240.blur_features(self.builder_config.num_blurry),
        disable_shuffling=True,  # source[i] is example i; evaluation order is the generation order.
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the photos ship with scikit-image.
    config = self.builder_config
    return {"train": self._generate_examples("train", config.num_train),
            "validation": self._generate_examples("validation", config.num_validation)}

  def _generate_examples(self, split: str, count: int):
    config = self.builder_config
    for index in range(count):
      yield index, make_example(split, index, size=config.size, num_blurry=config.num_blurry, seed=config.seed)
