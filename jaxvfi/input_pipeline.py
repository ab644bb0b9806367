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

The data config's fields, the augmentation presets and their parameters are in `jaxvfi.data_config`; each task's
example transforms in `jaxvfi.transforms` (`clip`, `dsfn`, `sdan`). This module builds the TFDS datasets and
assembles the grain pipelines; `PRESETS` ties each preset to its transforms.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterator, Sequence

from absl import logging
import grain
import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from jaxvfi import data_config as data_config_lib
from jaxvfi import utils
from jaxvfi.datasets import registry
from jaxvfi.datasets import synthetic
from jaxvfi.datasets import synthetic_blur
from jaxvfi.datasets import video_clips
from jaxvfi.transforms import clip
from jaxvfi.transforms import dsfn
from jaxvfi.transforms import sdan


@dataclasses.dataclass(frozen=True)
class Preset:
  """One augmentation preset, defined in one place.

  Attributes:
    features: the feature kind it reads (a key of `data_config.FEATURES`).
    params: its parameters (None: the data config's clip fields), overridable by `data.augmentation_args`.
    train: params -> (example, np.random.Generator) -> batch element.
    eval: params -> example -> batch element (whole frames, nothing random).
  """
  features: str
  params: dict[str, Any] | None
  train: Callable[[dict[str, Any]], Callable[[dict[str, Any], np.random.Generator], data_config_lib.Batch]]
  eval: Callable[[dict[str, Any]], Callable[[dict[str, Any]], data_config_lib.Batch]]


def _clip_preset(name: str, flow_crop: bool = False) -> Preset:
  return Preset("clip", data_config_lib.PRESET_PARAMS[name],
                lambda params: clip.ClipTransform(params, flow_crop=flow_crop), clip.eval_transform)


PRESETS: dict[str, Preset] = {
    "clip": _clip_preset("clip"),
    "refin": _clip_preset("refin"),
    "sepconv": _clip_preset("sepconv"),
    "sepconv_gan": _clip_preset("sepconv_gan", flow_crop=True),
    "dsfn": Preset("blur", data_config_lib.PRESET_PARAMS["dsfn"], dsfn.DsfnTransform, dsfn.eval_transform),
    "sdan": Preset("sr_raw", data_config_lib.PRESET_PARAMS["sdan"], sdan.SdanTransform, sdan.eval_transform),
}
"""Preset name (a key of `data_config.PRESET_PARAMS`) -> `Preset`."""


def _require_features(preset: str, *, dataset: str | None = None, example: dict[str, Any] | None = None) -> None:
  """One ValueError when the preset's feature kind is not the dataset's (by name, or by an example's keys)."""
  kind = PRESETS[preset].features
  keys, names = data_config_lib.FEATURES[kind]
  if dataset is not None:
    ok, got = dataset in names, f"dataset {dataset!r}"
  else:
    ok, got = all(k in example for k in keys), f"examples with features {sorted(example)}"
  if not ok:
    raise ValueError(f"data.augmentation={preset!r} reads datasets with the {kind} features ({', '.join(keys)}): "
                     f"{', '.join(sorted(names))}; got {got}")


_PREPARED: dict[tuple[Any, ...], tfds.core.DatasetBuilder] = {}


def check_dataset_name(name: str) -> None:
  """ValueError naming the known datasets unless `name` is one (`jaxvfi.datasets.registry.BUILDERS`)."""
  if name not in registry.BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(registry.BUILDERS))}")


def get_builder(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """The dataset's builder in `data_config.tfds_dir`, built (ArrayRecord, no TensorFlow) if it is not yet."""
  name = data_config.name
  check_dataset_name(name)
  _require_features(data_config_lib.preset_name(data_config), dataset=name)
  manual_dir = data_config.get("dir")
  if manual_dir is not None:
    manual_dir = os.path.expanduser(manual_dir)
    if not os.path.isdir(manual_dir):
      raise FileNotFoundError(f"data_config.dir {manual_dir!r} does not exist; dataset {name!r} is built from the "
                              "files you downloaded there (see its MANUAL_DOWNLOAD_INSTRUCTIONS)")
    if not any(not n.startswith(".") for n in os.listdir(manual_dir)):
      how = " ".join(str(getattr(registry.BUILDERS[name], "MANUAL_DOWNLOAD_INSTRUCTIONS", "") or "").split())
      raise FileNotFoundError(f"data_config.dir {manual_dir!r} is empty; dataset {name!r} is built from the files "
                              f"you downloaded there{': ' + how if how else ''}")
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
    make = lambda: registry.BUILDERS[name](data_dir=tfds_dir, config=config, file_format="array_record")
    _PREPARED[key] = _prepare(make, manual_dir)
  return _PREPARED[key]


def _is_built(builder: tfds.core.DatasetBuilder) -> bool:
  return os.path.isfile(os.path.join(os.fspath(builder.data_path), "dataset_info.json"))


def _prepare(make: Callable[[], tfds.core.DatasetBuilder], manual_dir: str | None) -> tfds.core.DatasetBuilder:
  """A built dataset's builder, made by `make` and built if it is not yet; safe when several processes (e.g. two
  trainings started at once on one tfds_dir) build the same dataset for the first time.

  TFDS builds into a temporary folder and renames it into place at the end, and a second build that finishes later
  fails on that rename (FileExistsError). So the build holds a lock file beside the dataset's folder: the others wait
  for it, then find the dataset built and read it. Where the lock cannot work (a file system without locks, or a
  process that took none), a build whose final rename fails because the same dataset is now complete takes that
  complete build instead of failing.
  """
  builder = make()
  if _is_built(builder):
    return builder
  with utils.file_lock(os.fspath(builder.data_path) + ".lock"):
    builder = make()  # made again under the lock: a build that finished meanwhile is read from disk
    try:
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except OSError:
      if not _is_built(builder):
        raise
      logging.info("%s was built by another process at the same time; using that build", builder.data_path)
      builder = make()
  return builder


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
    return sum(num_examples(c, c.train_split) for c, _ in data_config_lib.mixture_components(data_config))
  builder = get_builder(data_config)
  _check_split(builder, data_config, split)
  return builder.info.splits[split].num_examples


def _read_options(data_config: ml_collections.ConfigDict) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=data_config.get("num_threads", 2),
                           prefetch_buffer_size=data_config.get("prefetch_buffer_size", 4))


def _examples(source: Sequence[dict[str, Any]], data_config: ml_collections.ConfigDict,
              seed: int) -> grain.MapDataset:
  """Augmented training examples of one source, reshuffled every epoch, repeated forever."""
  preset = data_config_lib.preset_name(data_config)
  params = data_config_lib.augmentation_params(data_config)
  _require_features(preset, example=source[0])
  if params.get("t_sampling") == "fixed" and clip.frame_at(source[0]["times"], params["t"]) is None:
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
                          start_step: int = 0) -> Iterator[data_config_lib.Batch]:
  """Training batches from step `start_step` on (see the module docstring); never ends.

  Multi-host: each process gets its `global_batch_size / jax.process_count()` rows of every global batch.
  """
  import jax  # pylint: disable=g-import-not-at-top  # Only for the process layout.
  layout = dict(process_index=jax.process_index(), process_count=jax.process_count())
  if data_config.get("mixture"):
    components = [(data_source(c, c.train_split), c, w) for c, w in data_config_lib.mixture_components(data_config)]
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

  def __iter__(self) -> Iterator[data_config_lib.Batch]:
    return iter(self._dataset.to_iter_dataset(self._read_options))


def make_eval_dataset(source: Sequence[dict[str, Any]], data_config: ml_collections.ConfigDict,
                      batch_size: int) -> grain.MapDataset:
  """All of `source` in order, whole frames, no random augmentation; the last batch may be smaller.

  Examples of different frame sizes (e.g. Middlebury, SR-RAW) can only be batched with batch_size 1.
  """
  preset = data_config_lib.preset_name(data_config)
  params = data_config_lib.augmentation_params(data_config)
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
