"""Test-time adaptation: fine-tune an interpolation model on the footage it is about to interpolate.

A user's own frames are the only ground truth they have. Every three consecutive input frames (f[i], f[i+1],
f[i+2]) are a training triplet whose middle frame is known: the model is fine-tuned on them for a few hundred steps
(`adapt_params`), then interpolates the same footage at its own frame interval with the adapted parameters. The
triplets span twice the interval the model will then fill, so their motion is twice as large; the run's
augmentation (`config.data`: crop, random downscale, flips, time reversal, channel reversal, as training drew them,
`jaxvfi.transforms.clip.ClipTransform`) shows them at smaller scales too. Nothing is written: the workdir and its
checkpoints are unchanged, and the adapted parameters live as long as the `Interpolator`.

  triplets = adapt.collect_triplets(frames, max_triplets=64)     # (K, 3, H, W, 3) uint8
  stats = adapt.adapt(interp, triplets, adapt.AdaptOptions(steps=150))
  retime.interpolate_video(interp, "in.mp4", "out.mp4")          # with the adapted parameters

The loss is the family's own (`Family.make_loss_fn`, e.g. Eq. (5) of ReFIn), the step the supervised step of
training (`jaxvfi.steps.supervised_step`), the optimiser Adam with a cosine decay of the learning rate to zero over
the steps. A family that trains with its own step (SepConv-GAN's adversarial one) adapts its generator on that
supervised loss alone. Issue 30 and BENCHMARKS.md ("Test-time adaptation") measure what it gains.

Not a paper's method: self-supervised fine-tuning on the test video's own frames, as in "Scene-Adaptive Video Frame
Interpolation via Meta-Learning" (Choi et al., CVPR 2020), which fine-tunes on the triplets of the input sequence
the same way, without the meta-learned initialisation.
"""
from __future__ import annotations

import dataclasses
import functools
import time as time_lib
from typing import Iterable, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from jaxvfi import data_config
from jaxvfi import families
from jaxvfi import steps as steps_lib
from jaxvfi import video_io
from jaxvfi.transforms import clip

DEFAULT_MAX_TRIPLETS = 64
"""Triplets kept from a long input, spread evenly over it (each holds three frames in memory, uint8)."""
DEFAULT_CROP = 128
"""Crop side when the run trained on whole frames (`data.crop_size` = 0)."""
DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_BATCH = 8


@dataclasses.dataclass(frozen=True)
class AdaptOptions:
  """How `adapt` fine-tunes.

  Attributes:
    steps: optimisation steps (0: no adaptation).
    learning_rate: Adam's peak rate, decayed to 0 over `steps` by a cosine.
    batch_size: triplets per step (drawn with replacement).
    crop_size: side of the square training crops in pixels; None: the run's `data.crop_size`, or DEFAULT_CROP if it
      trained on whole frames. On a side where the frames are smaller the crop is the frame's size (a log line).
    seed: draws of triplets, crops and flips (numpy) and dropout (jax); the result is a function of it.
  """
  steps: int
  learning_rate: float = DEFAULT_LEARNING_RATE
  batch_size: int = DEFAULT_BATCH
  crop_size: int | None = None
  seed: int = 0

  def check(self) -> None:
    """One ValueError for an option out of range."""
    if int(self.steps) != self.steps or self.steps < 0:
      raise ValueError(f"adaptation steps must be an integer >= 0, got {self.steps}")
    if not self.learning_rate > 0:
      raise ValueError(f"adaptation learning rate must be > 0, got {self.learning_rate:g}")
    if self.batch_size < 1:
      raise ValueError(f"adaptation batch size must be >= 1, got {self.batch_size}")
    if self.crop_size is not None and self.crop_size < 8:
      raise ValueError(f"adaptation crop must be at least 8 pixels, got {self.crop_size}")


def triplet_starts(num_frames: int, max_triplets: int = DEFAULT_MAX_TRIPLETS) -> list[int]:
  """Indices i of the triplets (f[i], f[i+1], f[i+2]) to keep from `num_frames` frames: all of them, or
  `max_triplets` spread evenly from the first to the last (rounded to the nearest index, no repeats)."""
  count = num_frames - 2
  if count <= 0:
    return []
  if count <= max_triplets:
    return list(range(count))
  return sorted({int(round(x)) for x in np.linspace(0, count - 1, max_triplets)})


def collect_triplets(frames: Iterable[np.ndarray], num_frames: int | None = None,
                     max_triplets: int = DEFAULT_MAX_TRIPLETS,
                     scene_threshold: float | None = video_io.SCENE_THRESHOLD) -> np.ndarray:
  """Training triplets from a sequence of frames, read once.

  Args:
    frames: uint8 (H, W, 3) RGB frames in time order, all one size (an iterator is read once).
    num_frames: how many `frames` yields, if known (a video's frame count); None: the frames are all read first.
    max_triplets: at most this many triplets, spread evenly over the sequence (`triplet_starts`).
    scene_threshold: a triplet with a scene cut between its frames (`video_io.scene_score` above it) is dropped;
      None keeps every triplet.

  Returns:
    uint8 (K, 3, H, W, 3): (frame0, middle, frame1) per triplet.

  Raises:
    ValueError: frames of different sizes or not RGB, or no triplet left (fewer than 3 frames, or every triplet
      across a cut).
  """
  if num_frames is None:
    frames = list(frames)
    num_frames = len(frames)
  wanted = set(triplet_starts(num_frames, max_triplets))
  window, kept, cuts, shape = [], [], 0, None
  for index, frame in enumerate(frames):
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
      raise ValueError(f"adaptation frames must be uint8 HxWx3 RGB, frame {index} is {frame.dtype} {frame.shape}")
    if shape is None:
      shape = frame.shape
    elif frame.shape != shape:
      raise ValueError(f"adaptation frames differ in size: frame 0 is {shape[1]}x{shape[0]}, frame {index} "
                       f"{frame.shape[1]}x{frame.shape[0]} (width x height)")
    window = (window + [frame])[-3:]
    start = index - 2
    if start in wanted and len(window) == 3:
      if scene_threshold is not None and max(video_io.scene_score(window[0], window[1]),
                                             video_io.scene_score(window[1], window[2])) > scene_threshold:
        cuts += 1
        continue
      kept.append(np.stack(window))
  if not kept:
    why = (f"{num_frames} frames whose triplet{'s' if cuts != 1 else ''} all span a scene cut" if cuts else
           f"{num_frames} frame{'s' if num_frames != 1 else ''}")
    raise ValueError(f"test-time adaptation needs at least 3 consecutive frames of one shot, got {why}")
  if cuts:
    logging.info("adaptation: %d of %d triplets dropped (a scene cut between their frames)", cuts, cuts + len(kept))
  return np.stack(kept)


def _augmentation(config, crop_size: int | None, frame_hw: tuple[int, int]) -> clip.ClipTransform:
  """The run's training augmentation (`config.data`) for triplets at t = 0.5, with the adaptation's crop (cut to the
  frame size on a side where the frames are smaller)."""
  params = dict(data_config.augmentation_params(config.data))
  crop = data_config.crop_shape(params.get("crop_size")) if crop_size is None else (crop_size, crop_size)
  if crop is None:
    crop = (DEFAULT_CROP, DEFAULT_CROP)
  fitted = (min(crop[0], frame_hw[0]), min(crop[1], frame_hw[1]))
  if fitted != crop:
    logging.info("adaptation: crops of %dx%d, the whole frame on a side shorter than the %dx%d crop (width x "
                 "height)", fitted[1], fitted[0], crop[1], crop[0])
  params.update(crop_size=fitted, t_sampling="fixed", t=0.5)
  return clip.ClipTransform(params, flow_crop=False)  # plain crops: SepConv-GAN's offset crops need its frame sizes


@dataclasses.dataclass(frozen=True)
class AdaptStats:
  """What `adapt` did: steps; the loss on one fixed batch of the triplets (centre crops, no augmentation) before and
  after, which unlike the training losses of random crops is comparable; wall seconds."""
  steps: int
  loss_before: float
  loss_after: float
  seconds: float


def adapt_params(model, params, config, triplets: np.ndarray, options: AdaptOptions,
                 progress_bar: bool = False, stop_after: int | None = None) -> tuple[object, AdaptStats]:
  """`params` fine-tuned on `triplets` (module docstring); pure in its inputs and `options.seed`.

  Args:
    model: the family's Flax module; params: its parameters; config: the run's config (model, data, loss).
    triplets: uint8 (K, 3, H, W, 3) from `collect_triplets`.
    options: `AdaptOptions`.
    progress_bar: a tqdm bar with the running loss.
    stop_after: run only the first this many steps of the `options.steps` schedule (what a longer run passes
      through on its way: benchmarks score it); None: all.

  Returns:
    (adapted params, AdaptStats). With options.steps = 0, `params` itself.

  Raises:
    ValueError: bad options or triplets; FloatingPointError: the loss became NaN or infinite (lower the rate).
  """
  options.check()
  triplets = np.asarray(triplets)
  if triplets.ndim != 5 or triplets.shape[1] != 3 or triplets.shape[-1] != 3 or triplets.dtype != np.uint8:
    raise ValueError(f"triplets must be uint8 (K, 3, H, W, 3), got {triplets.dtype} {triplets.shape}")
  run = options.steps if stop_after is None else min(int(stop_after), options.steps)
  if run <= 0:
    return params, AdaptStats(0, float("nan"), float("nan"), 0.0)
  started = time_lib.time()
  transform = _augmentation(config, options.crop_size, triplets.shape[2:4])
  fixed = _fixed_batch(triplets, transform.crop, options.batch_size)
  loss_fn, notes = families.of(config).make_loss_fn(config)
  for note in notes:  # e.g. a perceptual term dropped for want of VGG weights on this machine
    logging.info("adaptation loss: %s", note)
  schedule = optax.cosine_decay_schedule(options.learning_rate, options.steps)
  tx = optax.adam(schedule)
  step_fn = jax.jit(functools.partial(steps_lib.supervised_step, apply_fn=model.apply, loss_fn=loss_fn, tx=tx))
  fixed_loss = jax.jit(lambda p: loss_fn(model.apply({"params": p}, fixed, train=False), fixed)[0])
  loss_before = float(fixed_loss(params))
  state = steps_lib.TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params))
  rng = np.random.default_rng(options.seed)
  key = jax.random.PRNGKey(options.seed)
  times = np.array([0.0, 0.5, 1.0], np.float32)
  with tqdm.tqdm(total=run, desc="adapt", unit="step", dynamic_ncols=True,
                 disable=not progress_bar) as bar:
    for step in range(run):
      elements = [transform({"frames": triplets[k], "times": times, "id": f"adapt_{k}"}, rng)
                  for k in rng.integers(0, len(triplets), options.batch_size)]
      batch = {name: jnp.asarray(np.stack([e[name] for e in elements])) for name in elements[0]}
      state, metrics = step_fn(state, batch, jax.random.fold_in(key, step))
      loss = float(metrics["loss"])
      if not np.isfinite(loss):
        raise FloatingPointError(f"test-time adaptation: the loss is {loss} at step {step + 1}; lower the learning "
                                 f"rate (now {options.learning_rate:g})")
      bar.set_postfix(train_loss=f"{loss:.4f}", refresh=False)  # of this step's random crops
      bar.update(1)
  stats = AdaptStats(run, loss_before, float(fixed_loss(state.params)), time_lib.time() - started)
  return state.params, stats


def _fixed_batch(triplets: np.ndarray, crop: tuple[int, int], size: int) -> dict[str, jax.Array]:
  """Centre crops of `size` triplets spread over `triplets` (all of them if fewer): the batch on which `adapt_params`
  reports the loss before and after."""
  picks = np.unique(np.linspace(0, len(triplets) - 1, min(size, len(triplets))).round().astype(int))
  h, w = triplets.shape[2:4]
  y, x = (h - crop[0]) // 2, (w - crop[1]) // 2
  crops = triplets[picks, :, y:y + crop[0], x:x + crop[1]].astype(np.float32) / np.float32(255)
  return {"frame0": jnp.asarray(crops[:, 0]), "target": jnp.asarray(crops[:, 1]), "frame1": jnp.asarray(crops[:, 2]),
          "t": jnp.full((len(picks),), 0.5, jnp.float32)}


def adapt(interp, triplets: np.ndarray, options: AdaptOptions, progress_bar: bool = False) -> AdaptStats:
  """Fine-tunes `interp` (a `jaxvfi.inference.interpolator.Interpolator`) on `triplets` in place: its parameters
  become the adapted ones (`adapt_params`), and a log line gives the loss before and after."""
  params, stats = adapt_params(interp.model, interp.params, interp.config, triplets, options, progress_bar)
  interp.params = params
  if stats.steps:
    logging.info("adapted %s on %d triplet%s of the input: %d step%s, %.1f s; the run's training loss on a fixed "
                 "batch of their centre crops %.4f -> %.4f", interp.name, len(triplets),
                 "s" if len(triplets) != 1 else "", stats.steps, "s" if stats.steps != 1 else "", stats.seconds,
                 stats.loss_before, stats.loss_after)
  return stats


def triplets_of_source(source, max_triplets: int = DEFAULT_MAX_TRIPLETS,
                       scene_threshold: float | None = video_io.SCENE_THRESHOLD) -> np.ndarray:
  """`collect_triplets` over a `jaxvfi.inference.retime.FrameSource` (a video or a folder), read once; RGBA frames
  give their colour (read as the run reads them, so nothing is logged twice)."""
  reader = source.open(source.alpha)
  try:
    return collect_triplets((np.ascontiguousarray(frame[..., :3]) for _, frame in reader.frames()),
                            source.num_frames or None, max_triplets, scene_threshold)
  finally:
    reader.close()

