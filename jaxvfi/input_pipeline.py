"""grain input pipeline: TFDS clip datasets -> numpy batches of interpolation triplets.

Every batch is a dict of numpy arrays
  frame0: float32 (B, h, w, 3) in [0, 1], the first frame of the clip (time 0);
  frame1: float32 (B, h, w, 3), the last frame (time 1);
  target: float32 (B, h, w, 3), the frame at time t;
  t:      float32 (B,), the target time in units of the input interval.
Clip datasets have the features of `jaxvfi.datasets.synthetic.clip_features` (frames, times, id).

Training batches are a pure function of (seed, step): source -> shuffle (reshuffled every epoch) -> repeat ->
random_map with a per-index generator -> batch -> this host's slice of the global batch -> [start_step:]. Resuming at
step k therefore yields exactly the batches k, k+1, ... of an uninterrupted run (the scenic practice of continuing,
not repeating, the example order on resume).

Fields of the data config (an `ml_collections.ConfigDict`; `default_data_config()` fills all of them):
  name: TFDS dataset name, one of `jaxvfi.datasets.BUILDERS` ("jaxvfi_synthetic").
  dir: manual-download directory for datasets that need one (must exist if set); None for "jaxvfi_synthetic".
  tfds_dir: where TFDS datasets are built and read ("~" is expanded).
  builder_config: optional TFDS builder config name for builders other than "jaxvfi_synthetic".
  train_split / eval_split: split names ("train" / "validation").
  crop_size: training crop side (int, or (h, w)); the same window for all frames of an example; None or 0: no crop.
  random_flip_h / random_flip_v: flip all frames of an example left-right / up-down with probability 1/2.
  temporal_swap: with probability 1/2 swap frame0 and frame1 and replace t by 1 - t.
  t_sampling: "fixed" (the frame whose time is `t`; it must exist) or "uniform" (a uniformly chosen interior frame,
    Super-SloMo's arbitrary-time training).
  t: target time for "fixed" training and for evaluation (evaluation falls back to the middle frame if absent).
  num_threads / prefetch_buffer_size: grain read options (threads decoding examples, batches read ahead).
  synthetic_num_train / synthetic_num_val / synthetic_size / synthetic_num_frames / synthetic_seed: the build of
    "jaxvfi_synthetic" (clip counts, frame side (int or (H, W)), frames per clip, render seed).
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import grain
import ml_collections
from ml_collections import config_dict
import numpy as np
import tensorflow_datasets as tfds

from jaxvfi import datasets
from jaxvfi.datasets import synthetic

Batch = dict[str, np.ndarray]
T_SAMPLINGS = ("fixed", "uniform")


def default_data_config() -> ml_collections.ConfigDict:
  """Every field the pipeline reads, with the defaults of the embedded synthetic dataset."""
  return ml_collections.ConfigDict({
      "name": "jaxvfi_synthetic",
      "dir": config_dict.placeholder(str),
      "tfds_dir": "~/tensorflow_datasets",
      "builder_config": config_dict.placeholder(str),
      "train_split": "train",
      "eval_split": "validation",
      "crop_size": 64,
      "random_flip_h": True,
      "random_flip_v": True,
      "temporal_swap": True,
      "t_sampling": "fixed",
      "t": 0.5,
      "num_threads": 2,
      "prefetch_buffer_size": 4,
      "synthetic_num_train": 512,
      "synthetic_num_val": 64,
      "synthetic_size": 128,
      "synthetic_num_frames": 9,
      "synthetic_seed": 0,
  })


def get_builder(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """The dataset's builder in `data_config.tfds_dir`, built (ArrayRecord, no TensorFlow) if it is not yet."""
  name = data_config.name
  if name not in datasets.BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(datasets.BUILDERS))}")
  if name not in datasets.CLIP_DATASETS:
    raise ValueError(f"dataset {name!r} does not have interpolation clip features (frames, times); the "
                     f"interpolation pipeline reads {', '.join(sorted(datasets.CLIP_DATASETS))}")
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
  else:
    config = data_config.get("builder_config")
  builder = datasets.BUILDERS[name](data_dir=os.path.expanduser(data_config.tfds_dir), config=config,
                                    file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def num_examples(data_config: ml_collections.ConfigDict, split: str) -> int:
  """Number of clips in `split`."""
  return get_builder(data_config).info.splits[split].num_examples


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


class _TrainTransform:
  """Target selection and augmentation of one clip; all randomness from the per-index generator grain passes."""

  def __init__(self, data_config: ml_collections.ConfigDict):
    self.t_sampling = data_config.t_sampling
    self.t = float(data_config.t)
    self.crop = _crop_shape(data_config.crop_size)
    self.flip_h = bool(data_config.random_flip_h)
    self.flip_v = bool(data_config.random_flip_v)
    self.swap = bool(data_config.temporal_swap)

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
    if self.crop is not None:
      (h, w), (ch, cw) = stack.shape[1:3], self.crop
      if ch > h or cw > w:
        raise ValueError(f"crop_size {self.crop} is larger than the frames ({h}, {w})")
      y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
      stack = stack[:, y:y + ch, x:x + cw]
    if self.flip_h and rng.random() < 0.5:
      stack = stack[:, :, ::-1]
    if self.flip_v and rng.random() < 0.5:
      stack = stack[:, ::-1]
    if self.swap and rng.random() < 0.5:
      stack, t = stack[::-1], 1.0 - t  # Time reversal: the target at t seen from frame1 lies at 1 - t.
    return _to_batch_element(stack, t)


def _eval_element(element: dict[str, Any], t: float) -> Batch:
  index = _frame_at(element["times"], t)
  if index is None:
    index = len(element["times"]) // 2
  return _to_batch_element(*_triplet(element["frames"], element["times"], index))


def _read_options(data_config: ml_collections.ConfigDict) -> grain.ReadOptions:
  return grain.ReadOptions(num_threads=data_config.get("num_threads", 2),
                           prefetch_buffer_size=data_config.get("prefetch_buffer_size", 4))


def make_train_dataset(source: Sequence[dict[str, Any]], data_config: ml_collections.ConfigDict,
                       global_batch_size: int, seed: int, *, process_index: int = 0,
                       process_count: int = 1) -> grain.MapDataset:
  """Infinite `MapDataset` whose element s is this process's part of the global training batch of step s.

  Args:
    source: random-access clips (a TFDS data source, or any sequence of clip dicts).
    data_config: see the module docstring.
    global_batch_size: examples per step over all processes; divisible by `process_count`.
    seed: the only source of randomness (shuffle and augmentation).
    process_index: this host's index; it gets rows [i * B / P, (i + 1) * B / P) of each global batch.
    process_count: number of hosts P.
  """
  if data_config.t_sampling not in T_SAMPLINGS:
    raise ValueError(f"data_config.t_sampling must be one of {T_SAMPLINGS}, got {data_config.t_sampling!r}")
  if data_config.t_sampling == "fixed" and _frame_at(source[0]["times"], data_config.t) is None:
    raise ValueError(f"t_sampling='fixed' with t={data_config.t}, but the clips have times {source[0]['times']}")
  if global_batch_size % process_count:
    raise ValueError(f"global batch size {global_batch_size} is not divisible by {process_count} processes")
  shuffle_seed, map_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
  dataset = grain.MapDataset.source(source).shuffle(shuffle_seed).repeat()
  dataset = dataset.random_map(_TrainTransform(data_config), seed=map_seed)
  # Batch i of size B/P holds global examples i*B/P ...; host p takes batches p, p + P, ..., which makes host p's
  # part of step s exactly rows [p B/P, (p + 1) B/P) of the global batch s.
  dataset = dataset.batch(global_batch_size // process_count, drop_remainder=True)
  return dataset[process_index::process_count]


def create_train_iterator(data_config: ml_collections.ConfigDict, global_batch_size: int, seed: int,
                          start_step: int = 0) -> Iterator[Batch]:
  """Training batches from step `start_step` on (see the module docstring); never ends.

  Multi-host: each process gets its `global_batch_size / jax.process_count()` rows of every global batch.
  """
  import jax  # pylint: disable=g-import-not-at-top  # Only for the process layout.
  source = get_builder(data_config).as_data_source(split=data_config.train_split)
  dataset = make_train_dataset(source, data_config, global_batch_size, seed, process_index=jax.process_index(),
                               process_count=jax.process_count())
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
  """All of `source` in order, full frames, no augmentation; the last batch may be smaller.

  Clips of different frame sizes (e.g. Middlebury) can only be batched with batch_size 1.
  """
  t = float(data_config.t)
  return grain.MapDataset.source(source).map(lambda element: _eval_element(element, t)).batch(batch_size)


def create_eval_batches(data_config: ml_collections.ConfigDict, batch_size: int,
                        split: str | None = None) -> _EvalBatches:
  """Deterministic batches over the whole of `split` (default `data_config.eval_split`), re-iterable, with len().

  The target is the frame at `data_config.t` if the clip has one, else its middle frame (index T // 2).
  """
  split = data_config.eval_split if split is None else split
  source = get_builder(data_config).as_data_source(split=split)
  return _EvalBatches(make_eval_dataset(source, data_config, batch_size), _read_options(data_config))
