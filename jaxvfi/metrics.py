"""Image quality metrics for evaluation: PSNR and SSIM (dm-pix), MS-SSIM and LPIPS, per example.

Conventions (those of the published VFI tables): images in [0, 1], predictions clipped and quantised to 8 bits
before scoring (as if saved to PNG), PSNR and SSIM computed per frame over all three channels and averaged over
frames. SSIM is Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, averaged over the
valid region and channels: it equals `skimage.metrics.structural_similarity(..., channel_axis=-1,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)` on uint8 images.

LPIPS (v0.1, `jaxvfi.models.lpips`, lower is better) needs weights converted once with `jaxvfi.weights`; the
evaluators build it with `lpips_fn(path)` and pass it to `frame_metrics`; without weights it is not computed and
`LPIPS_NO_WEIGHTS` is the reason to report.
"""
from __future__ import annotations

import os
from typing import Callable

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

from jaxvfi import torch_weights
from jaxvfi.models import lpips as lpips_lib


def quantize(x: jax.Array) -> jax.Array:
  return jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0) / 255.0


def psnr(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-example PSNR in dB of (N, H, W, C) images in [0, 1]."""
  return pix.psnr(a.astype(jnp.float32), b.astype(jnp.float32))


def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-example SSIM of (N, H, W, C) images in [0, 1] (H, W >= 11)."""
  return pix.ssim(a.astype(jnp.float32), b.astype(jnp.float32), max_val=1.0)


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = 11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # an 11x11 window at the coarsest of 5 scales: 176


def ms_ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-example multi-scale SSIM (Wang, Simoncelli & Bovik 2003), the third metric of SepConv 001's Tables 4.1-4.2.

  Five scales with the weights of the paper; between scales both images are 2x2 average-pooled. At each of the
  first four scales the contrast-structure term cs is kept, at the last the full SSIM; negative cs values are
  clipped at 0 before the power, as in TensorFlow's `ssim_multiscale`. Needs H, W >= 176.
  """
  h, w = a.shape[1:3]
  if min(h, w) < MS_SSIM_MIN_SIDE:
    raise ValueError(f"MS-SSIM needs frames of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} (five scales of an "
                     f"11x11 window), got {h}x{w}")
  a = a.astype(jnp.float32)
  b = b.astype(jnp.float32)
  out = jnp.ones(a.shape[0], jnp.float32)
  for i, weight in enumerate(MS_SSIM_WEIGHTS):
    last = i == len(MS_SSIM_WEIGHTS) - 1
    ssim_map = pix.ssim(a, b, max_val=1.0, return_map=True)
    if last:
      value = jnp.mean(ssim_map, axis=(1, 2, 3))
    else:
      value = jnp.mean(_contrast_structure(a, b), axis=(1, 2, 3))
      a = _pool2(a)
      b = _pool2(b)
    out = out * jnp.maximum(value, 0.0) ** weight
  return out


def _gaussian_filter_valid(x: jax.Array) -> jax.Array:
  """11x11 Gaussian (sigma 1.5) filtering over H and W, 'valid', per channel: the window of `pix.ssim`."""
  coords = jnp.arange(11, dtype=jnp.float32) - 5.0
  g = jnp.exp(-0.5 * (coords / 1.5) ** 2)
  g = g / jnp.sum(g)
  x = jnp.moveaxis(x, -1, 1)  # N, C, H, W
  n, c, h, w = x.shape
  x = x.reshape(n * c, 1, h, w)
  hi = jax.lax.Precision.HIGHEST
  x = jax.lax.conv_general_dilated(x, g.reshape(1, 1, 11, 1), (1, 1), "VALID", precision=hi)
  x = jax.lax.conv_general_dilated(x, g.reshape(1, 1, 1, 11), (1, 1), "VALID", precision=hi)
  return jnp.moveaxis(x.reshape(n, c, h - 10, w - 10), 1, -1)


def _contrast_structure(a, b, k2=0.03):
  c2 = k2 ** 2
  mu_a, mu_b = _gaussian_filter_valid(a), _gaussian_filter_valid(b)
  var_a = _gaussian_filter_valid(a * a) - mu_a ** 2
  var_b = _gaussian_filter_valid(b * b) - mu_b ** 2
  cov = _gaussian_filter_valid(a * b) - mu_a * mu_b
  return (2.0 * cov + c2) / (var_a + var_b + c2)


def _pool2(x):
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


METRICS = {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim}
WEIGHTED_METRICS = ("lpips",)  # need a weights file: built by `lpips_fn`, passed to `frame_metrics`

LPIPS_NO_WEIGHTS = ("lpips not computed: no LPIPS weights given; convert them once with `python -m jaxvfi.weights "
                    "convert --arch=lpips_alex --src=alexnet-owt-7be5be79.pth --dst=lpips_alex.npz` (the linear "
                    "heads come from the installed lpips package) and pass the .npz")
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}  # AlexNet: conv 11/4 and two 3/2 max-pools; VGG-16: four 2x2 max-pools


COLORS = ("rgb", "y")


def rgb_to_y(x: jax.Array) -> jax.Array:
  """Luma Y of ITU-R BT.601 for [0, 1] RGB, as MATLAB's `rgb2ycbcr`: (16 + 65.481 R + 128.553 G + 24.966 B) / 255.

  (N, H, W, 3) -> (N, H, W, 1), in [16/255, 235/255]: the channel the SR literature scores (SDAN's Table 1).
  """
  w = jnp.asarray([65.481, 128.553, 24.966], jnp.float32)
  return ((16.0 + jnp.tensordot(x.astype(jnp.float32), w, axes=[[-1], [0]])) / 255.0)[..., None]


def lpips_net(state) -> str:
  """"alex" or "vgg": the trunk an LPIPS state_dict is for, read from its second head's width (192 or 128)."""
  width = np.shape(state["lin1.model.1.weight"])[1] if "lin1.model.1.weight" in state else None
  nets = {192: "alex", 128: "vgg"}
  if width not in nets:
    raise ValueError(f"not an LPIPS v0.1 AlexNet/VGG state_dict: lin1.model.1.weight has shape "
                     f"{None if width is None else np.shape(state['lin1.model.1.weight'])}, expected (1, 192, 1, 1) "
                     "or (1, 128, 1, 1)")
  return nets[width]


def lpips_fn(weights_path: str | os.PathLike) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """LPIPS v0.1 (Zhang et al. 2018) as `fn(pred, target) -> (N,)` for (N, H, W, 3) images in [0, 1].

  `weights_path`: a .npz from `python -m jaxvfi.weights convert --arch=lpips_alex | lpips_vgg` (the trunk, AlexNet
  or VGG-16, is read from the file). `fn.net` names it. Frames must be at least `LPIPS_MIN_SIDE[net]` pixels.
  Raises FileNotFoundError / ValueError for a missing or wrong file.
  """
  state = torch_weights.read_state_dict(weights_path)
  net = lpips_net(state)
  params = torch_weights.convert_state_dict(lpips_lib.TORCH_LAYOUTS[net], state)
  apply = jax.jit(lpips_lib.LPIPS(net=net).apply)

  def fn(pred: jax.Array, target: jax.Array) -> jax.Array:
    if min(pred.shape[1:3]) < LPIPS_MIN_SIDE[net]:
      raise ValueError(f"LPIPS-{net} needs frames of at least {LPIPS_MIN_SIDE[net]} px, got "
                       f"{pred.shape[2]}x{pred.shape[1]}")
    return apply({"params": params}, pred.astype(jnp.float32), target.astype(jnp.float32))

  fn.net = net
  return fn


def frame_metrics(pred: jax.Array, target: jax.Array, names=("psnr", "ssim"), color: str = "rgb",
                  crop_border: int = 0,
                  lpips: Callable[[jax.Array, jax.Array], jax.Array] | None = None) -> dict[str, jax.Array]:
  """The named metrics (`METRICS`, and "lpips") of 8-bit-quantised predictions against the targets, per example.

  Args:
    pred, target: (N, H, W, 3) in [0, 1]; the prediction is clipped and quantised to 8 bits first.
    names: keys of `METRICS`, and "lpips".
    color: "rgb" (all three channels) or "y" (BT.601 luma, `rgb_to_y`, computed from the quantised RGB).
    crop_border: pixels removed from each side before scoring (the SR protocol's border crop).
    lpips: `lpips_fn(path)`; "lpips" is scored on the (cropped) RGB images whatever `color`, and skipped (not
      reported) when this is None: report `LPIPS_NO_WEIGHTS` then.

  MS-SSIM is skipped (not reported) for frames smaller than 176 px, where it is undefined.
  """
  pred = quantize(pred)
  unknown = sorted(set(names) - set(METRICS) - set(WEIGHTED_METRICS))
  if unknown:
    raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS) + list(WEIGHTED_METRICS)}")
  if color not in COLORS:
    raise ValueError(f"unknown color {color!r}; known: {', '.join(COLORS)}")
  if crop_border:
    c = int(crop_border)
    if min(pred.shape[1:3]) <= 2 * c:
      raise ValueError(f"crop_border {c} leaves nothing of {pred.shape[1]}x{pred.shape[2]} frames")
    pred, target = pred[:, c:-c, c:-c], target[:, c:-c, c:-c]
  out = {}
  if "lpips" in names and lpips is not None:
    out["lpips"] = lpips(pred, target)
  if color == "y":
    pred, target = rgb_to_y(pred), rgb_to_y(target)
  out.update({n: METRICS[n](pred, target) for n in names if n in METRICS
              and not (n == "ms_ssim" and min(pred.shape[1:3]) < MS_SSIM_MIN_SIDE)})
  return {n: out[n] for n in names if n in out}


def baselines(batch: dict, names=("psnr", "ssim"), **options) -> dict[str, jax.Array]:
  """The two trivial interpolators every triplet eval reports beside the model, so progress is readable.

  frame_average: (I0 + I1) / 2.  repeat_frame: the input frame nearer in time (I0 for t <= 0.5). `options` are
  `frame_metrics`'s color and crop_border.
  """
  t = batch["t"].reshape(-1, 1, 1, 1)
  out = {}
  avg = frame_metrics(0.5 * (batch["frame0"] + batch["frame1"]), batch["target"], names, **options)
  rep = frame_metrics(jnp.where(t <= 0.5, batch["frame0"], batch["frame1"]), batch["target"], names, **options)
  for k, v in avg.items():
    out[f"frame_average_{k}"] = v
  for k, v in rep.items():
    out[f"repeat_frame_{k}"] = v
  return out
