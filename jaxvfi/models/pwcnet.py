"""PWC-Net (Sun et al. 2018), the flow module of ReFIn (§3), laid out as the PyTorch port sniklaus/pytorch-pwc.

ReFIn's footnote 1 points at that port and its released `network-default.pytorch`; this module mirrors it layer for
layer so `jaxvfi.weights.load_params("pwcnet", path)` can load those weights:

  extractor  6 levels (16, 32, 64, 96, 128, 196 channels), 3 3x3 convs each, the first with stride 2, LeakyReLU(0.1)
  decoder L  for L = 6 (1/64) down to 2 (1/4):
             L = 6: feat = leaky(corr(f1, f2))                                                   81 channels
             L < 6: flow = deconv(flow_prev), up = deconv(feat_prev)           (4x4, stride 2, padding 1, 2 out)
                    feat = [leaky(corr(f1, backwarp(f2, flow * s_L))), f1, flow, up]       s_L = 0.625 (L=5),
                                                                                  1.25 (4), 2.5 (3), 5.0 (2)
             dense block: feat = [leaky(conv(feat)), feat] for 128, 128, 96, 64, 32 (new features first);
             flow = conv(feat) to 2 channels
  refiner    dilated convs 128, 128, 128, 96, 64, 32, 2 with dilations 1, 2, 4, 8, 16, 1, 1; output flow + refiner(feat)

Parameters: 9,374,274. corr is the cost volume with max displacement 4: channel (dy + 4) * 9 + (dx + 4) holds
mean_c f1[y, x, c] * f2[y + dy, x + dx, c], zero outside the image (the port's CUDA kernel). Flows inside the network
are in units of 20 full-resolution pixels (Caffe PWC-Net's training scale): at 1/4 resolution one unit is 20 / 4 = 5
pixels, hence s_L = 20 / 2^L.

The port's backwarp (reproduced): it warps [f2, 1] with `grid_sample(padding="zeros")` and keeps only samples whose
warped ones channel is > 0.999 (a sample touching the outside at all is zeroed). Since its commit ed3af4f
(2023-06-15, checked by tests/test_parity.py against fc21888) it normalises the flow by (W - 1) / 2 with
`align_corners=True`, i.e. it warps by exactly the flow, like the original Caffe model: `port_warp_scaling=False`
(default). From 6da0853 (2020-08) to then it used `align_corners=False` with the same normalisation, so the
displacement it applied was flow * W / (W - 1) horizontally and flow * H / (H - 1) vertically;
`port_warp_scaling=True` reproduces that version, which differs at the coarse levels (W = 2 at 1/32 of a 64-pixel
image doubles the step).

Inputs and outputs (`__call__`, the port's `estimate()`): RGB frames in [0, 1]. The port feeds BGR (its `run.py`
reverses PIL's RGB channels with `[:, :, ::-1]`), so the channels are reversed here. Frames are resized bilinearly
(`align_corners=False`, no antialiasing) to multiples of 64, the quarter-resolution flow is resized back to (H, W),
multiplied by 20 and by the size ratio per axis. Output: flow frame0 -> frame1, (N, H, W, 2) = (dx, dy) in pixels,
i.e. frame1 sampled at p + flow(p) matches frame0 at p.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi import torch_weights
import pallas_kernels

LEVEL_CHANNELS = (16, 32, 64, 96, 128, 196)  # extractor levels 1..6
DECODER_CHANNELS = (128, 128, 96, 64, 32)
REFINER = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1))  # (features, dilation); then 2 with dilation 1
MAX_DISPLACEMENT = 4
FLOW_SCALE = 20.0
ALIGN = 64  # six stride-2 levels; __call__ resizes to it, so any size is accepted


def backwarp_scale(level: int) -> float:
  """s_L = 20 / 2^L: flow units (20 px at full resolution) to pixels at level L (the port's `fltBackwarp`)."""
  return FLOW_SCALE / 2 ** level


def _leaky(x):
  return nn.leaky_relu(x, negative_slope=0.1)


def conv3x3(features: int, name: str, stride: int = 1, dilation: int = 1) -> nn.Conv:
  """PyTorch `Conv2d(3, stride, padding=dilation, dilation)`: explicit padding, as Flax "SAME" differs at stride 2."""
  return nn.Conv(features, (3, 3), strides=(stride, stride), padding=((dilation, dilation), (dilation, dilation)),
                 kernel_dilation=(dilation, dilation), name=name)


def deconv4x4(features: int, name: str) -> nn.ConvTranspose:
  """PyTorch `ConvTranspose2d(kernel_size=4, stride=2, padding=1)`, exactly 2x upsampling.

  `transpose_kernel=True` makes this the gradient of a conv, which is what PyTorch computes; the kernel is stored
  (kh, kw, out, in) and is PyTorch's (in, out, kh, kw) weight transposed by (2, 3, 1, 0), no flip (see weights.py).
  Explicit padding in `lax.conv_transpose` pads the stride-dilated input: k - 1 - p = 2 on each side.
  """
  return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), transpose_kernel=True,
                          name=name)


def resize_bilinear(x: jax.Array, height: int, width: int) -> jax.Array:
  """PyTorch `interpolate(mode="bilinear", align_corners=False)` (no antialiasing, also when shrinking)."""
  n, h, w, c = x.shape
  if (h, w) == (height, width):
    return x
  return jax.image.resize(x, (n, height, width, c), method="linear", antialias=False)


def correlation(first: jax.Array, second: jax.Array, max_displacement: int = MAX_DISPLACEMENT) -> jax.Array:
  """Cost volume: channel (dy + d) * (2d + 1) + (dx + d) = mean over channels of first(p) * second(p + (dx, dy)).

  A `lax.map` over the 81 displacements: unrolled, the 81 slices of 5 levels took minutes to compile on CPU.
  """
  d = max_displacement
  n, h, w, c = first.shape
  padded = jnp.pad(second, ((0, 0), (d, d), (d, d), (0, 0)))
  offsets = jnp.asarray([(dy, dx) for dy in range(2 * d + 1) for dx in range(2 * d + 1)], jnp.int32)

  def one(offset):
    return jnp.mean(first * jax.lax.dynamic_slice(padded, (0, offset[0], offset[1], 0), (n, h, w, c)), axis=-1)

  return jnp.moveaxis(jax.lax.map(one, offsets), 0, -1)


def backwarp(features: jax.Array, flow: jax.Array, port_warp_scaling: bool = False) -> jax.Array:
  """The port's `backwarp`: bilinear backward warp, zeroing every sample that reaches outside the image."""
  h, w = flow.shape[1:3]
  if port_warp_scaling:
    flow = flow * jnp.asarray([w / max(w - 1, 1), h / max(h - 1, 1)], flow.dtype)
  ones = jnp.ones(features.shape[:3] + (1,), features.dtype)
  warped = pallas_kernels.backward_warp(jnp.concatenate([features, ones], axis=-1), flow, padding="zeros")
  # The port thresholds in place, so no gradient flows through the mask.
  mask = jax.lax.stop_gradient((warped[..., -1:] > 0.999).astype(features.dtype))
  return warped[..., :-1] * mask


class Extractor(nn.Module):
  """Feature pyramid: levels 1..6 at 1/2 .. 1/64 resolution (`netExtractor`)."""

  @nn.compact
  def __call__(self, x):
    pyramid = []
    for level, features in enumerate(LEVEL_CHANNELS, start=1):
      for k in range(3):
        x = _leaky(conv3x3(features, f"level{level}_conv{k}", stride=2 if k == 0 else 1)(x))
      pyramid.append(x)
    return pyramid


class Decoder(nn.Module):
  """Flow decoder at one pyramid level (`netTwo` .. `netSix`); returns (flow, features) in 20-pixel units."""
  level: int
  port_warp_scaling: bool = False

  @nn.compact
  def __call__(self, first, second, previous=None):
    if previous is None:
      feat = _leaky(correlation(first, second))
    else:
      flow = deconv4x4(2, "upflow")(previous[0])
      up = deconv4x4(2, "upfeat")(previous[1])
      warped = backwarp(second, flow * backwarp_scale(self.level), self.port_warp_scaling)
      feat = jnp.concatenate([_leaky(correlation(first, warped)), first, flow, up], axis=-1)
    for k, features in enumerate(DECODER_CHANNELS):
      feat = jnp.concatenate([_leaky(conv3x3(features, f"conv{k}")(feat)), feat], axis=-1)
    return conv3x3(2, f"conv{len(DECODER_CHANNELS)}")(feat), feat


class Refiner(nn.Module):
  """Dilated context network (`netRefiner`): a flow residual from the level-2 decoder features."""

  @nn.compact
  def __call__(self, feat):
    for k, (features, dilation) in enumerate(REFINER):
      feat = _leaky(conv3x3(features, f"conv{k}", dilation=dilation)(feat))
    return conv3x3(2, f"conv{len(REFINER)}")(feat)


class PWCNet(nn.Module):
  """`(frame0, frame1)` RGB in [0, 1], (N, H, W, 3), any H and W -> flow 0->1 (N, H, W, 2) in pixels."""
  port_warp_scaling: bool = False

  @nn.compact
  def __call__(self, frame0: jax.Array, frame1: jax.Array) -> jax.Array:
    if frame0.shape != frame1.shape or frame0.ndim != 4 or frame0.shape[-1] != 3:
      raise ValueError(f"PWCNet expects two (N, H, W, 3) RGB frames of one shape, got {frame0.shape}, {frame1.shape}")
    n, h, w, _ = frame0.shape
    hp, wp = ALIGN * math.ceil(h / ALIGN), ALIGN * math.ceil(w / ALIGN)
    frames = resize_bilinear(jnp.concatenate([frame0, frame1], axis=0)[..., ::-1], hp, wp)  # RGB -> BGR
    pyramid = Extractor(name="extractor")(frames)  # one pass for both frames, shared weights
    estimate = None
    for level in range(6, 1, -1):
      feats = pyramid[level - 1]
      estimate = Decoder(level, self.port_warp_scaling, name=f"decoder{level}")(feats[:n], feats[n:], estimate)
    flow, feat = estimate
    flow = flow + Refiner(name="refiner")(feat)  # quarter resolution, 20-pixel units (the port's Network.forward)
    flow = FLOW_SCALE * resize_bilinear(flow, h, w)
    return flow * jnp.asarray([w / wp, h / hp], flow.dtype)


_PORT_NAMES = ("One", "Two", "Thr", "Fou", "Fiv", "Six")  # the port's level and layer names, 1..6


def torch_layers() -> torch_weights.Layers:
  """sniklaus/pytorch-pwc layer prefix -> (Flax module path, "conv" | "deconv")."""
  layers = {}
  for level, name in enumerate(_PORT_NAMES, start=1):
    for k in range(3):  # Sequential(conv, leaky, conv, leaky, conv, leaky)
      layers[f"netExtractor.net{name}.{2 * k}"] = (("extractor", f"level{level}_conv{k}"), "conv")
  for level in range(2, 7):
    decoder = f"net{_PORT_NAMES[level - 1]}"
    for k in range(6):  # netOne .. netSix, each Sequential(conv[, leaky])
      layers[f"{decoder}.net{_PORT_NAMES[k]}.0"] = ((f"decoder{level}", f"conv{k}"), "conv")
    if level < 6:
      layers[f"{decoder}.netUpflow"] = ((f"decoder{level}", "upflow"), "deconv")
      layers[f"{decoder}.netUpfeat"] = ((f"decoder{level}", "upfeat"), "deconv")
  for k in range(7):  # Sequential(conv, leaky, ..., conv)
    layers[f"netRefiner.netMain.{2 * k}"] = (("refiner", f"conv{k}"), "conv")
  return layers


TORCH_LAYOUT = torch_weights.TorchLayout(
    name="pwcnet", layers=torch_layers, module=lambda: (PWCNet(), (jnp.zeros((1, 64, 64, 3)),) * 2),
    rename_module_to_net=True)
"""sniklaus/pytorch-pwc (the flow module of ReFIn, footnote 1), keys `netExtractor.netOne.0.weight`, ...,
`netTwo.netUpflow.weight`, ..., `netRefiner.netMain.12.bias`; the released `network-default.pytorch` uses the older
`module...` names, which the port renames on load (9,374,274 parameters in 126 arrays, 63 layers)."""
