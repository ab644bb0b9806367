"""Adobe240 (Su et al., CVPR 2017) with DSFN's blur synthesis: builder `adobe240`, splits `train` and `test`.

Blur synthesis (DSFN paper 002, Sec. 4.1, following BIN [13] = Shen et al., CVPR 2020, whose released script
`create_dataset_blur_N_frames_average.py` fixes the details the paper leaves out):
  * each blurry frame is the mean of 11 consecutive sharp 240-fps frames, taken directly on the stored 8-bit values
    (no inverse-CRF / gamma linearisation: the paper says "accumulating" and BIN's script averages the decoded PNGs)
    and truncated to uint8 as BIN's float mean followed by `astype("uint8")` does (= integer floor division);
  * blurry frames are centred every 8 sharp frames (240 -> 30 fps), at 0-based sharp indices 16, 24, ...,
    with BIN's count n // 8 - 2 for a clip of n frames (BIN's published test lists, e.g.
    Adobe_240fps_dataset/test_list/IMG_0004a_im_list.txt, name them 00017.png, 00025.png, ...);
  * the sharp frame at a blurry frame's centre is its ground truth, and the sharp frame half-way (4 frames) between
    two centres is the ground truth of the interpolated frame (DSFN's I_{t-1} between B_{t-2} and B_t).

Examples slide one blurry frame at a time over each clip; `num_blurry` (the builder config) consecutive blurry
frames per example:
  blurry        uint8 (N, H, W, 3)       synthesized blurry key frames
  blurry_times  float32 (N,)             0, 1, ..., N-1 (units of the 30-fps interval)
  sharp         uint8 (2N-1, H, W, 3)    sharp frames at the key times and half-way between them
  sharp_times   float32 (2N-1,)          0, 0.5, 1, ..., N-1
  id            text                     "<clip>/<file name stem of the first key frame's centre>"
Configs: `blurry2` (default; pairs: joint deblurring and x2 interpolation as in BIN), `blurry3` (one DSFN
level: three inputs, Sec. 3.7) and `blurry4` (two-level DSFN: four inputs, level-1 targets at times 0.5..2.5 and
level-2 targets at 1, 1.5, 2 for Eq. (12)). DSFN's 4x downscaling and 256 crops are left to the input pipeline.
Overlapping windows store each frame several times: budget about 3N-1 frames of disk per 30-fps frame.

Layout: one folder of sharp PNG frames per clip, frames in natural name order (BIN extracts every frame of the
240-fps videos with ffmpeg at 640x352 as 00001.png, 00002.png, ...). The split is not given in the papers; the one
used by BIN (its data script reads Super-SloMo's `data/adobe240fps/{train,test}_list.txt`; 8 test videos:
720p_240fps_1, GOPR9635, GOPR9637a, IMG_0004a, IMG_0015, IMG_0023, IMG_0179, IMG_0183) is given in one of two ways:
  A. <manual_dir>/train/<clip>/*.png and <manual_dir>/test/<clip>/*.png (BIN's own output folders), or
  B. <manual_dir>/<clip>/*.png with <manual_dir>/train_list.txt and test_list.txt (or train.txt, test.txt), one
     clip per line; a video extension (.mov, .mp4, .m4v) is stripped, so Super-SloMo's lists work as they are.
Clips in neither list are not read.
"""
from __future__ import annotations

import abc
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from jaxvfi.datasets import layout

BLUR_WINDOW = 11  # Sharp frames averaged per blurry frame (DSFN Sec. 4.1, BIN).
BLUR_STRIDE = 8  # 240 fps / 30 fps.
FIRST_CENTRE = 16  # BIN's first blurry centre (0-based sharp index).
_HALF = BLUR_WINDOW // 2
_VIDEO_SUFFIXES = (".mov", ".mp4", ".m4v")

_CITATION = """@inproceedings{su2017deep,
  title={Deep Video Deblurring for Hand-held Cameras},
  author={Su, Shuochen and Delbracio, Mauricio and Wang, Jue and Sapiro, Guillermo and Heidrich, Wolfgang
          and Wang, Oliver},
  booktitle={CVPR},
  year={2017}
}
@inproceedings{shen2020blurry,
  title={Blurry Video Frame Interpolation},
  author={Shen, Wang and Bao, Wenbo and Zhai, Guangtao and Chen, Li and Min, Xiongkuo and Gao, Zhiyong},
  booktitle={CVPR},
  year={2020}
}"""


@dataclasses.dataclass(eq=False, kw_only=True)
class BlurConfig(tfds.core.BuilderConfig):
  """`num_blurry` consecutive 30-fps blurry frames per example."""
  num_blurry: int = 2


def blur_configs() -> list[BlurConfig]:
  """Fresh config objects for one builder class (TFDS keys configs by name within a builder)."""
  return [
      BlurConfig(name="blurry2", num_blurry=2, description="Pairs of blurry frames; sharp targets at 0, 0.5, 1."),
      BlurConfig(name="blurry3", num_blurry=3, description="Three blurry frames (one DSFN level); 5 sharp targets."),
      BlurConfig(name="blurry4", num_blurry=4, description="Four blurry frames (two-level DSFN); 7 sharp targets."),
  ]


def blur_features(num_blurry: int) -> tfds.features.FeaturesDict:
  num_sharp = 2 * num_blurry - 1
  return tfds.features.FeaturesDict({
      "blurry": tfds.features.Tensor(shape=(num_blurry, None, None, 3), dtype=np.uint8, encoding="zlib"),
      "blurry_times": tfds.features.Tensor(shape=(num_blurry,), dtype=np.float32),
      "sharp": tfds.features.Tensor(shape=(num_sharp, None, None, 3), dtype=np.uint8, encoding="zlib"),
      "sharp_times": tfds.features.Tensor(shape=(num_sharp,), dtype=np.float32),
      "id": tfds.features.Text(),
  })


def blurry_centres(num_sharp: int) -> list[int]:
  """0-based sharp indices of the blurry frames' centres in a clip of `num_sharp` frames (BIN's indexing)."""
  return [FIRST_CENTRE + BLUR_STRIDE * k for k in range(num_sharp // BLUR_STRIDE - 2)]


def synthesize_blur(frames: np.ndarray) -> np.ndarray:
  """Blurry frame from (11, H, W, 3) uint8 sharp frames: their mean, truncated to uint8 as BIN does."""
  return (frames.astype(np.uint32).sum(axis=0) // frames.shape[0]).astype(np.uint8)


def clip_examples(name: str, clip: str, paths: Sequence[Path], num_blurry: int):
  """(key, example) pairs of one clip of sharp frames (module docstring); each frame is decoded once."""
  centres = blurry_centres(len(paths))
  half_step = BLUR_STRIDE // 2
  sharp_cache: dict[int, np.ndarray] = {}
  blurry_cache: dict[int, np.ndarray] = {}
  reference = []  # (path, shape) of the first frame decoded: all frames of a clip must match it.

  def sharp(i: int) -> np.ndarray:
    if i not in sharp_cache:
      frame = layout.read_rgb(name, paths[i])
      if not reference:
        reference.append((paths[i], frame.shape))
      layout.check_same_size(name, *reference[0], paths[i], frame.shape)
      sharp_cache[i] = frame
    return sharp_cache[i]

  def blurry(c: int) -> np.ndarray:
    if c not in blurry_cache:
      blurry_cache[c] = synthesize_blur(np.stack([sharp(i) for i in range(c - _HALF, c + _HALF + 1)]))
    return blurry_cache[c]

  for j in range(len(centres) - num_blurry + 1):
    keys = centres[j:j + num_blurry]
    # Windows only move forward: forget what lies before this one.
    for i in [i for i in sharp_cache if i < keys[0] - _HALF]:
      del sharp_cache[i]
    for c in [c for c in blurry_cache if c < keys[0]]:
      del blurry_cache[c]
    ident = f"{clip}/{paths[keys[0]].stem}"
    yield ident, {
        "blurry": np.stack([blurry(c) for c in keys]),
        "blurry_times": np.arange(num_blurry, dtype=np.float32),
        "sharp": np.stack([sharp(i) for i in range(keys[0], keys[-1] + 1, half_step)]),
        "sharp_times": np.arange(2 * num_blurry - 1, dtype=np.float32) / 2,
        "id": ident,
    }


def _clip_name(line: str) -> str:
  path = Path(line)
  return path.stem if path.suffix.lower() in _VIDEO_SUFFIXES else line


def _list_file(name: str, root: Path, split: str) -> Path:
  for candidate in (root / f"{split}_list.txt", root / f"{split}.txt"):
    if candidate.is_file():
      return candidate
  raise FileNotFoundError(f"{name}: expected clip folders {root}/train/<clip>/*.png and {root}/test/<clip>/*.png, "
                          f"or {root}/<clip>/*.png listed in {root}/{split}_list.txt")


def adobe_split_clips(name: str, root: Path) -> dict[str, list[Path]]:
  """Split -> clip folders, from split folders (layout A) or list files (layout B) of the module docstring."""
  if (root / "train").is_dir() or (root / "test").is_dir():
    return {split: layout.subdirs(layout.require_dir(name, root / split)) for split in ("train", "test")}
  clips = {split: [layout.require_dir(name, root / _clip_name(line))
                   for line in layout.read_lines(name, _list_file(name, root, split))]
           for split in ("train", "test")}
  listed = {clip.name for split_clips in clips.values() for clip in split_clips}
  unlisted = [clip.name for clip in layout.subdirs(root) if clip.name not in listed]
  if unlisted:
    logging.info("%s: clip folders in neither list are not read: %s", name, ", ".join(unlisted))
  return clips


class BlurSynthesisBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Examples from 240-fps clips by blur synthesis; subclasses say where the clips are (`_split_clips`)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  _HOMEPAGE: str
  _CITATION: str

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"{self.name}: 11-frame-average blurry 30-fps frames with sharp key and mid-way targets.",
        features=blur_features(self.builder_config.num_blurry),
        homepage=self._HOMEPAGE,
        citation=self._CITATION,
        disable_shuffling=True,  # Clip order, then time order.
    )

  @abc.abstractmethod
  def _split_clips(self, manual_dir: Path) -> dict[str, list[Path]]:
    """Split name -> clip folders of sharp frames, after checking the layout."""

  def _clip_id(self, clip: Path) -> str:
    return clip.name

  def _split_generators(self, dl_manager):
    clips = self._split_clips(layout.manual_path(dl_manager.manual_dir))
    return {split: self._generate_examples(frames=[(self._clip_id(clip), layout.pngs(self.name, clip))
                                                   for clip in found])
            for split, found in clips.items()}

  def _generate_examples(self, frames):
    for clip, paths in frames:
      yield from clip_examples(self.name, clip, paths, self.builder_config.num_blurry)


class Adobe240(BlurSynthesisBuilder):
  """Adobe240 sharp clips -> DSFN/BIN blurry 30-fps inputs with sharp targets (module docstring)."""

  name = "adobe240"
  BUILDER_CONFIGS = blur_configs()
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download DeepVideoDeblurring_Dataset_Original_High_FPS_Videos.zip (Su et al.), extract every frame of each 240-fps
  video into its own folder (BIN: `ffmpeg -i <video> -vf scale=640:352 -vsync 0 <clip>/%05d.png`), and put either
  <manual_dir>/train/<clip>/ and <manual_dir>/test/<clip>/, or <manual_dir>/<clip>/ plus train_list.txt and
  test_list.txt (e.g. Super-SloMo's data/adobe240fps lists, used by BIN)."""
  _HOMEPAGE = "https://www.cs.ubc.ca/labs/imager/tr/2017/DeepVideoDeblurring/"
  _CITATION = _CITATION

  def _split_clips(self, manual_dir: Path) -> dict[str, list[Path]]:
    return adobe_split_clips(self.name, manual_dir)
