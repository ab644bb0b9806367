"""A classical frame interpolator with no training: DIS optical flow, Super-SloMo's intermediate flows, backward warps.

Every VFI evaluation scores it beside the model, frame averaging and frame repetition (`jaxvfi.evaluators.
vfi_triplet`), so that a trained model is read against a method from 2016 that needs no training. For frames I0 at
t = 0 and I1 at t = 1:
  1. Flows both ways, F_0->1 and F_1->0: OpenCV's DIS optical flow (Kroeger et al., ECCV 2016) with its medium preset
     on the 8-bit grayscale frames (`cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)`).
  2. Flows from t to each input, Eq. (4) of Super-SloMo (Jiang et al., CVPR 2018), which assumes that the motion is
     locally smooth and the flows from t are those of the inputs' pixels at the same place:
       F_t->0 = -(1 - t) t F_0->1 + t^2 F_1->0,    F_t->1 = (1 - t)^2 F_0->1 - t (1 - t) F_1->0.
  3. Backward warps, `cv2.remap` with bilinear interpolation and replicated borders: warp(I, F)(x) = I(x + F(x)).
  4. A linear blend: I_t = (1 - t) warp(I0, F_t->0) + t warp(I1, F_t->1).

Sign convention (OpenCV's and Super-SloMo's): a flow F_a->b holds at each pixel x of frame a the displacement to
where that point lies in frame b, so I_a(x) ~ I_b(x + F_a->b(x)), and warping I_b by F_a->b rebuilds I_a. For content
translated by d per unit of time (I1(x) = I0(x - d)): F_0->1 = d, F_1->0 = -d, so F_t->0 = -t d and F_t->1 = (1 - t) d,
and both warps give I0(x - t d), the content translated by t d.

OpenCV (opencv-python-headless) is a dependency of jaxvfi; where it is missing anyway (an install without
dependencies) `available()` is False, `interpolate` raises, the evaluations leave the row out with `UNAVAILABLE_NOTE`
in their notes, and a model with `model.flow = "dis"` raises ImportError.
"""
from __future__ import annotations

import numpy as np

try:
  import cv2
except ImportError:  # optional dependency: the evaluations then note why the row is missing
  cv2 = None

KEY = "classical_flow"
"""The baseline's key in evaluation results: scores[KEY] and the flat metrics <KEY>_psnr, <KEY>_ssim, ..."""
DISPLAY_NAME = "Classical flow (DIS)"
MISSING_OPENCV = "OpenCV is not installed (pip install opencv-python-headless, a dependency of jaxvfi)"
UNAVAILABLE_NOTE = f"classical flow (DIS) baseline not computed: {MISSING_OPENCV}"


def available() -> bool:
  """Whether OpenCV is importable, so that the baseline can be computed."""
  return cv2 is not None


def _require_cv2() -> None:
  if cv2 is None:
    raise ImportError(UNAVAILABLE_NOTE)


def to_uint8(frame: np.ndarray) -> np.ndarray:
  """An RGB frame, uint8 or float in [0, 1], as uint8 (floats rounded, clipped)."""
  frame = np.asarray(frame)
  if frame.dtype == np.uint8:
    return frame
  return np.round(np.clip(frame.astype(np.float32), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def dis_flows(frame0: np.ndarray, frame1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(F_0->1, F_1->0) of DIS optical flow (medium preset) on the grayscale frames (module docstring, step 1).

  Args:
    frame0, frame1: (H, W, 3) RGB, uint8 or float in [0, 1].

  Returns:
    Two float32 (H, W, 2) flows in pixels, (x, y) displacements (module docstring: sign convention).

  Raises:
    ImportError: OpenCV is not installed.
  """
  _require_cv2()
  gray0 = cv2.cvtColor(to_uint8(frame0), cv2.COLOR_RGB2GRAY)
  gray1 = cv2.cvtColor(to_uint8(frame1), cv2.COLOR_RGB2GRAY)
  dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
  return dis.calc(gray0, gray1, None).astype(np.float32), dis.calc(gray1, gray0, None).astype(np.float32)


def intermediate_flows(flow01: np.ndarray, flow10: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
  """(F_t->0, F_t->1) from the inputs' flows by Eq. (4) of Super-SloMo (module docstring, step 2); float32 like them."""
  t = np.float32(t)
  flow_t0 = -(1 - t) * t * flow01 + t * t * flow10
  flow_t1 = (1 - t) * (1 - t) * flow01 - t * (1 - t) * flow10
  return flow_t0.astype(np.float32), flow_t1.astype(np.float32)


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
  """warp(image, flow)(x) = image(x + flow(x)): bilinear, borders replicated (`cv2.remap`, module docstring step 3).

  Args:
    image: (H, W, C) float32 (C <= 4).
    flow: (H, W, 2) float32, (x, y) in pixels.

  Returns:
    (H, W, C) float32.

  Raises:
    ImportError: OpenCV is not installed.
  """
  _require_cv2()
  height, width = flow.shape[:2]
  grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
  out = cv2.remap(np.asarray(image, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                  interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
  return out.reshape(np.shape(image))  # remap drops a trailing channel axis of size 1


def interpolate(frame0: np.ndarray, frame1: np.ndarray, t: float = 0.5) -> np.ndarray:
  """The frame at time t between frame0 (t = 0) and frame1 (t = 1) (module docstring, steps 1 to 4).

  Args:
    frame0, frame1: (H, W, 3) RGB of one size, uint8 or float in [0, 1].
    t: in [0, 1].

  Returns:
    (H, W, 3) float32 in [0, 1] (unclipped: bilinear blends of the inputs stay in their range).

  Raises:
    ImportError: OpenCV is not installed.
    ValueError: the frames differ in shape or are not RGB.
  """
  f0, f1 = np.asarray(frame0), np.asarray(frame1)
  if f0.shape != f1.shape or f0.ndim != 3 or f0.shape[-1] != 3:
    raise ValueError(f"frames must be (H, W, 3) of one shape, got {f0.shape} and {f1.shape}")
  return interpolate_from_flows(f0, f1, *dis_flows(f0, f1), t)


def interpolate_from_flows(frame0: np.ndarray, frame1: np.ndarray, flow01: np.ndarray, flow10: np.ndarray,
                           t: float = 0.5) -> np.ndarray:
  """Steps 2 to 4 of the module docstring with given flows F_0->1 and F_1->0 ((H, W, 2) float32, pixels): frames
  (H, W, 3) uint8 or float in [0, 1] -> (H, W, 3) float32. Raises ImportError without OpenCV."""
  flow_t0, flow_t1 = intermediate_flows(flow01, flow10, t)
  as_float = lambda f: f.astype(np.float32) / np.float32(255.0) if f.dtype == np.uint8 else f.astype(np.float32)
  t = np.float32(t)
  return (1 - t) * backward_warp(as_float(np.asarray(frame0)), flow_t0) + t * backward_warp(
      as_float(np.asarray(frame1)), flow_t1)


def interpolate_batch(frame0: np.ndarray, frame1: np.ndarray, t) -> np.ndarray:
  """`interpolate` over a batch: frames (B, H, W, 3), t a scalar or (B,) (or any shape of B values) -> (B, H, W, 3)
  float32."""
  frame0, frame1 = np.asarray(frame0), np.asarray(frame1)
  times = np.broadcast_to(np.asarray(t, np.float32).reshape(-1), (frame0.shape[0],))
  return np.stack([interpolate(a, b, float(ti)) for a, b, ti in zip(frame0, frame1, times)]).astype(np.float32)
