"""Per-example augmentation ops of the papers' training pipelines, as pure NumPy functions.

Every random op takes an `np.random.Generator` and draws from nothing else, so under grain's `random_map` (one
generator per global example index) a batch stays a pure function of (seed, step) and resuming is exact.
Images are NHWC-like stacks: spatial axes are always -3 (rows) and -2 (columns), so one call treats every frame of
an example (and, for aligned crops, arrays at several resolutions) alike.

Which paper uses which op (presets in `jaxvfi.input_pipeline`):
  random_crop, random_flip                        SepConv (paper 001, Sec. 3 "Training"): 128x128, h and v flips.
  random_resize, draw_flow_crop / flow_crop,      SepConv-GAN (paper 003, "Data augmentation"): resize, 160x160
  random_flip, random_temporal_swap               crops with [0, 12] offsets of I0 and I1, flips, "sorting";
  (random_flip_or_reverse, passes_motion_filter)  the author's code's one-of-three flip/reverse and sample filter.
  random_aligned_crop, random_flip,               DSFN (paper 002, Sec. 4.1): 256x256 HR crops, flips, colour
  color_jitter, bicubic_downscale, gaussian_noise jittering, 1/4 bicubic inputs, N(0, 0.01) noise.
  random_aligned_crop, random_flip, normalize_raw SDAN (paper 004, Sec. 4.1): 64x64 RAW / 128x128 RGB / 512x512 HR.
  random_downscale                                ours (preset "clip", data.random_downscale; the CPU recipe).
  random_channel_reverse                          RIFE's training loader (preset "clip", data.random_channel_reverse).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from PIL import Image

# ITU-R 601 luma, the grayscale torchvision's ColorJitter uses for contrast and saturation.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _hw(array: np.ndarray) -> tuple[int, int]:
  return int(array.shape[-3]), int(array.shape[-2])


def crop_origin(rng: np.random.Generator, size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
  """Top-left (y, x) of a uniformly drawn `crop` window inside `size`; every position, the last ones included."""
  (h, w), (ch, cw) = size, crop
  if ch > h or cw > w:
    raise ValueError(f"crop {crop} is larger than the frames {size}")
  return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))


def random_crop(frames: np.ndarray, rng: np.random.Generator, crop: tuple[int, int]) -> np.ndarray:
  """The same uniformly drawn `crop` window of every frame of (..., H, W, C) (SepConv's `tf.random_crop` on the
  channel-stacked triplet, paper 001 Sec. 3)."""
  y, x = crop_origin(rng, _hw(frames), crop)
  return frames[..., y:y + crop[0], x:x + crop[1], :]


def random_aligned_crop(arrays: Sequence[np.ndarray], scales: Sequence[int], rng: np.random.Generator,
                        crop: tuple[int, int]) -> list[np.ndarray]:
  """One window on a base grid, cut from arrays whose spatial size is `scale` times the base grid.

  `arrays[i]` must be (..., s_i h, s_i w, C) for a common base (h, w); the window (y, x, crop) on the base grid is
  (s_i y, s_i x, s_i crop) in array i, so every crop shows the same part of the scene (SDAN's RAW / RGB / HR
  triple: scales 1, 2, 8 on the packed-RAW grid).
  """
  base = [(h // s, w // s) for (h, w), s in zip(map(_hw, arrays), scales)]
  for array, scale, grid in zip(arrays, scales, base):
    if _hw(array) != (scale * grid[0], scale * grid[1]) or grid != base[0]:
      raise ValueError(f"array of spatial size {_hw(array)} is not {scale} x the base grid {base[0]}")
  y, x = crop_origin(rng, base[0], crop)
  return [a[..., s * y:s * (y + crop[0]), s * x:s * (x + crop[1]), :] for a, s in zip(arrays, scales)]


def random_flip(arrays: Sequence[np.ndarray], rng: np.random.Generator, horizontal: bool,
                vertical: bool) -> list[np.ndarray]:
  """Left-right, then up-down flip of all `arrays` together, each with probability 1/2 (independent coins)."""
  arrays = list(arrays)
  if horizontal and rng.random() < 0.5:
    arrays = [a[..., :, ::-1, :] for a in arrays]
  if vertical and rng.random() < 0.5:
    arrays = [a[..., ::-1, :, :] for a in arrays]
  return arrays


def random_channel_reverse(stack: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """With probability 1/2 reverse the channel axis of every frame of `stack` (..., C): RGB -> BGR.

  Not in the five papers: RIFE's Vimeo-90K loader (github.com/hzwer/ECCV2022-RIFE, dataset.py) reverses the channels
  of all three frames with probability 0.5, beside its flips and time reversal. It shows the model colours its
  training videos lack; the motion, and so the target, is unchanged.
  """
  if rng.random() < 0.5:
    return stack[..., ::-1]
  return stack


def random_temporal_swap(stack: np.ndarray, t: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
  """With probability 1/2 reverse time: (frame0, target, frame1) -> (frame1, target, frame0) and t -> 1 - t.

  SepConv-GAN's "Sorting" step (paper 003): I0 and I1 swapped, "reversing the time axis for the frames group".
  """
  if rng.random() < 0.5:
    return stack[::-1], 1.0 - t  # Seen from frame1, the target at t lies at 1 - t.
  return stack, t


def random_resize(frames: np.ndarray, rng: np.random.Generator, min_height: int,
                  max_height: int | None = None) -> np.ndarray:
  """Bilinear resize of every uint8 frame of (T, H, W, C) to one random size, keeping the aspect ratio.

  SepConv-GAN (paper 003, "Resize"): "randomly resized (with bilinear sampling, keeping the aspect ratio) to a
  target resolution between 1280x720 and 327x184". How the size is drawn follows the author's released loader
  (github.com/Sergio0694/sepconv-gan, training/dataset/dataset_loader.py): the new height is a uniform integer in
  [min_height, min(H, max_height)] with min_height = crop + 2 * max_offset (160 + 2 * 12 = 184) and the width is
  height * W // H (floor), which for 1280x720 frames gives exactly the paper's range 327x184 ... 1280x720. The
  paper's frames were all 1280x720 (§4), so `max_height` = 720 caps taller frames at the paper's largest size
  (None: no cap). Frames are never enlarged. Pillow's BILINEAR (area-aware when shrinking) does the sampling.
  """
  h, w = _hw(frames)
  top = h if max_height is None else min(h, int(max_height))
  if min_height > top:
    raise ValueError(f"random resize needs frames at least {min_height} pixels high (and max_height >= "
                     f"{min_height}), got {h}x{w} with max_height {max_height}")
  height = int(rng.integers(min_height, top + 1))
  if height == h:
    return frames
  width = height * w // h
  return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR))
                   for f in frames])


def random_downscale(frames: np.ndarray, rng: np.random.Generator, min_scale: float,
                     min_size: tuple[int, int]) -> np.ndarray:
  """Shrink every uint8 frame of (T, H, W, C) by one random factor, keeping the aspect ratio (`random_resize`).

  The new height is uniform in the integers [max(ceil(min_scale * H), min_size h, ceil(min_size w * H / W)), H] and
  the width height * W // H, so the result still covers `min_size` (the training crop) and is never enlarged. Ours,
  not a paper's: training clips cut at up to 448x256 then show the motion and detail of smaller footage too (the CPU
  recipe's validation video is 176x144). `min_scale` = 1, or frames already at the floor: returned unchanged, and
  nothing is drawn.

  Raises:
    ValueError: `min_scale` outside (0, 1].
  """
  if not 0.0 < min_scale <= 1.0:
    raise ValueError(f"random downscale: min_scale must be in (0, 1], got {min_scale}")
  h, w = _hw(frames)
  low = max(int(np.ceil(min_scale * h - 1e-9)), int(min_size[0]), int(np.ceil(min_size[1] * h / w - 1e-9)))
  if low >= h:
    return frames
  return random_resize(frames, rng, low)


@dataclasses.dataclass(frozen=True)
class FlowCrop:
  """Crop windows of SepConv-GAN's "Crop and flow": the target's top-left (y, x) and the offsets (dy, dx) by
  which frame0's window is moved back (up-left) and frame1's forward (down-right)."""
  y: int
  x: int
  offset0: tuple[int, int]
  offset1: tuple[int, int]


def draw_flow_crop(rng: np.random.Generator, size: tuple[int, int], crop: int, max_offset: int,
                   independent: bool = False) -> FlowCrop:
  """Draws the windows of `flow_crop` for frames of `size`.

  Paper 003 ("Crop and flow"): each frame is "clipped to 160x160, and a random offset in the [0, 12] range along
  both the X and Y axes was then applied to the frames I0 and I1. This allowed to increase the flow intensity".
  The author's loader makes it precise: the target window lies at least `max_offset` from every border, one offset
  (dy, dx) with dy, dx uniform integers in [0, max_offset] is drawn, and I0's window moves by -(dy, dx) and I1's by
  +(dy, dx): a uniform extra motion of 2 (dy, dx) from I0 to I1 with the target still half-way (t = 0.5).
  `independent=True` draws frame1's offset separately (dy1, dx1) instead, a variant that also moves the target off
  the middle of the added motion.
  """
  h, w = size
  margin = crop + 2 * max_offset
  if h < margin or w < margin:
    raise ValueError(f"flow crop {crop} with offsets up to {max_offset} needs frames of at least {margin}x{margin}, "
                     f"got {h}x{w}")
  y = int(rng.integers(max_offset, h - crop - max_offset + 1))
  x = int(rng.integers(max_offset, w - crop - max_offset + 1))
  offset0 = (int(rng.integers(0, max_offset + 1)), int(rng.integers(0, max_offset + 1)))
  offset1 = (int(rng.integers(0, max_offset + 1)), int(rng.integers(0, max_offset + 1))) if independent else offset0
  return FlowCrop(y, x, offset0, offset1)


def flow_crop(stack: np.ndarray, windows: FlowCrop, crop: int) -> np.ndarray:
  """(frame0, target, frame1) stack (3, H, W, C) -> (3, crop, crop, C) cut at `windows` (see `draw_flow_crop`)."""
  y, x = windows.y, windows.x
  (dy0, dx0), (dy1, dx1) = windows.offset0, windows.offset1
  return np.stack([stack[0, y - dy0:y - dy0 + crop, x - dx0:x - dx0 + crop],
                   stack[1, y:y + crop, x:x + crop],
                   stack[2, y + dy1:y + dy1 + crop, x + dx1:x + dx1 + crop]])


def random_flow_crop(stack: np.ndarray, rng: np.random.Generator, crop: int, max_offset: int,
                     independent: bool = False) -> np.ndarray:
  return flow_crop(stack, draw_flow_crop(rng, _hw(stack), crop, max_offset, independent), crop)


def random_flip_or_reverse(stack: np.ndarray, t: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
  """Exactly one of up-down flip, left-right flip, time reversal, each with probability 1/3, on a (frame0, target,
  frame1) stack; reversal maps t -> 1 - t. The author's later loader (`tf_preprocess_train_images`, "random
  permutations"), an option beside the paper's independent flips and 50% temporal swap."""
  choice = int(rng.integers(0, 3))
  if choice == 0:
    return stack[..., ::-1, :, :], t
  if choice == 1:
    return stack[..., :, ::-1, :], t
  return stack[::-1], 1.0 - t


def passes_motion_filter(stack: np.ndarray, min_mse: float = 220.0, min_std: float = 16.0) -> bool:
  """The author's sample filter (`tf_ensure_difference_min_threshold`): a (frame0, target, frame1) uint8 stack is
  kept only if the mean squared differences frame0-target and target-frame1 (0-255 scale, per value) both exceed
  `min_mse` and the target's standard deviation, averaged over its channels, exceeds `min_std` (it drops static
  and flat crops). The paper's dataset was filtered the same way before cropping (§4)."""
  x = stack.astype(np.float64)
  mses = [np.mean((x[0] - x[1]) ** 2), np.mean((x[1] - x[2]) ** 2)]
  std = np.mean(x[1].reshape(-1, x.shape[-1]).std(axis=0))
  return bool(min(mses) > min_mse and std > min_std)


def adjust_colors(frames: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
  """torchvision-style colour adjustment of float (..., H, W, 3) in [0, 1], the same map for every frame.

  In order, each result clipped to [0, 1]: brightness x * b; contrast c x + (1 - c) m around the mean luma m of
  ALL frames (torchvision takes each image's own mean; one mean keeps blurry inputs and sharp targets of an example
  under one colour map); saturation s x + (1 - s) luma(x) per pixel.
  """
  x = np.clip(frames * np.float32(brightness), 0, 1)
  mean = np.float32((x @ LUMA).mean())
  x = np.clip(np.float32(contrast) * x + np.float32(1 - contrast) * mean, 0, 1)
  gray = (x @ LUMA)[..., None]
  return np.clip(np.float32(saturation) * x + np.float32(1 - saturation) * gray, 0, 1).astype(np.float32)


def color_jitter(frames: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
  """DSFN's "color jittering" (paper 002, Sec. 4.1; amounts not stated): brightness, contrast and saturation
  factors each uniform in [1 - strength, 1 + strength] (torchvision ColorJitter(strength, strength, strength) with
  no hue change and a fixed order: our choice), one draw per example applied to all its frames."""
  if not strength:
    return frames
  b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
  return adjust_colors(frames, b, c, s)


def bicubic_downscale(images: np.ndarray, factor: int) -> np.ndarray:
  """float32 (..., H, W, C) -> (..., H / factor, W / factor, C), antialiased bicubic (Keys, a = -0.5).

  DSFN (paper 002, Sec. 4.1): patches "reduced to 1/4 size with the bicubic kernel". Pillow's BICUBIC on float
  ("F") images, kernel widened by the factor when shrinking like MATLAB's imresize; it equals
  `jax.image.resize(x, shape, "bicubic", antialias=True)` to float32 rounding (tested). No clipping: the bicubic
  overshoot near edges stays, as in the float reference.
  """
  h, w = _hw(images)
  if h % factor or w % factor:
    raise ValueError(f"bicubic x1/{factor} needs sizes divisible by {factor}, got {h}x{w}")
  lead, channels = images.shape[:-3], images.shape[-1]
  flat = np.asarray(images, np.float32).reshape(-1, h, w, channels)
  out = np.empty((flat.shape[0], h // factor, w // factor, channels), np.float32)
  for i, image in enumerate(flat):
    for c in range(channels):
      out[i, ..., c] = np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c]), mode="F").resize(
          (w // factor, h // factor), Image.Resampling.BICUBIC))
  return out.reshape(*lead, h // factor, w // factor, channels)


def gaussian_noise(images: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
  """images + N(0, std^2) per value, not clipped.

  DSFN (paper 002, Sec. 4.1): "adding Gaussian random noise of N(0, 0.01) to the images whose range was [0,1]".
  N(mean, variance) is the usual reading, so variance 0.01, std 0.1 (the preset's value); the paper does not say
  which, and std 0.01 is the other possible reading.
  """
  if not std:
    return images
  return (images + rng.normal(0.0, std, size=images.shape)).astype(np.float32)


def normalize_raw(raw: np.ndarray, black_level: np.ndarray, white_level: float) -> np.ndarray:
  """Packed Bayer sensor counts (..., 4) -> float32 in [0, 1]: (raw - black) / (white - black), clipped, per
  channel (SDAN's loader reads RAW with black 512 and white 16383; `sr_raw` stores the file's own levels)."""
  black = np.asarray(black_level, np.float32)
  scaled = (np.asarray(raw, np.float32) - black) / (np.float32(white_level) - black)
  return np.clip(scaled, 0, 1).astype(np.float32)
