"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric").

The distance of richzhang/PerceptualSimilarity (the `lpips` package, `LPIPS(net=..., version="0.1")`), for images in
[0, 1] (its `normalize=True`):

  x   = (2 I - 1 - shift) / scale        shift = (-0.030, -0.088, -0.188), scale = (0.458, 0.448, 0.450)   (v0.1)
  f_l = the trunk's l-th ReLU output, divided by its L2 norm over channels (+ 1e-10), l = 1..5
  d   = sum_l mean_{h,w} w_l . (f_l(x0) - f_l(x1))^2         w_l >= 0: the linear heads `lin{l-1}` (1x1 conv, no bias)

Trunks, as torchvision builds them (their ImageNet weights and the package's heads are what `jaxvfi.weights`
converts, `--arch=lpips_alex | lpips_vgg`):
  "alex": AlexNet `features`: conv 11x11/4 (64, padding 2) | max-pool 3/2, conv 5x5 (192, padding 2) | max-pool 3/2,
          conv 3x3 384 | conv 3x3 256 | conv 3x3 256, taps after each ReLU (channels 64, 192, 384, 256, 256).
  "vgg":  VGG-16 `features`, taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (channels 64, 128, 256, 512, 512).
The dropout before each head is inactive at evaluation. Squeezenet and the spatial map (`spatial=True`) are not
ported.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi import torch_weights
from jaxvfi.models import vgg

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
VGG_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
ALEX_CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))  # (out, k, stride, pad)
EPS = 1e-10


class AlexNetFeatures(nn.Module):
  """torchvision `alexnet().features` up to the fifth ReLU: the five ReLU outputs, convs named conv1 .. conv5."""

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    taps = []
    for i, (features, k, stride, pad) in enumerate(ALEX_CONVS, start=1):
      if i in (2, 3):  # MaxPool2d(3, 2) before conv2 and conv3 (floor mode, no padding)
        x = nn.max_pool(x, (3, 3), strides=(2, 2))
      x = nn.relu(nn.Conv(features, (k, k), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                          name=f"conv{i}")(x))
      taps.append(x)
    return taps


class LPIPS(nn.Module):
  """`(image0, image1)`, (N, H, W, 3) RGB in [0, 1] -> (N,) LPIPS v0.1 distances (module docstring)."""
  net: str = "alex"

  @nn.compact
  def __call__(self, image0: jax.Array, image1: jax.Array) -> jax.Array:
    if self.net not in CHANNELS:
      raise ValueError(f"net must be one of {tuple(CHANNELS)}, got {self.net!r}")
    if image0.shape != image1.shape or image0.ndim != 4 or image0.shape[-1] != 3:
      raise ValueError(f"LPIPS expects two (N, H, W, 3) RGB images of one shape, got {image0.shape}, {image1.shape}")
    n = image0.shape[0]
    x = jnp.concatenate([image0, image1]).astype(jnp.float32) * 2.0 - 1.0
    x = (x - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)
    if self.net == "alex":
      taps = AlexNetFeatures(name="net")(x)
    else:
      outputs = vgg.VGG(blocks=vgg.VGG16_BLOCKS, output_layer=VGG_TAPS[-1], normalize=False, name="net")(x)
      taps = [outputs[k] for k in VGG_TAPS]
    distance = jnp.zeros((n,), jnp.float32)
    for k, feat in enumerate(taps):
      feat = feat / (jnp.sqrt(jnp.sum(feat * feat, axis=-1, keepdims=True)) + EPS)
      diff = (feat[:n] - feat[n:]) ** 2
      distance = distance + jnp.mean(nn.Conv(1, (1, 1), use_bias=False, name=f"lin{k}")(diff), axis=(1, 2, 3))
    return distance


def torch_layers(net: str) -> torch_weights.Layers:
  """torchvision trunk under "net" (AlexNet `features.{0,3,6,8,10}` -> conv1..5, VGG-16 as `vgg.torch_layers`) and
  the package's heads `lin{k}.model.1` (Sequential(Dropout, Conv2d(C, 1, 1, bias=False))) -> `lin{k}`."""
  if net == "alex":
    layers = {f"features.{j}": (("net", f"conv{i}"), "conv") for i, j in enumerate((0, 3, 6, 8, 10), start=1)}
  else:
    layers = vgg.torch_layers(vgg.VGG16_BLOCKS, ("net",))
  for k in range(5):
    layers[f"lin{k}.model.1"] = ((f"lin{k}",), "conv_nobias")
  return layers


TORCH_LAYOUTS = {
    net: torch_weights.TorchLayout(
        name=f"lpips_{net}", layers=lambda net=net: torch_layers(net),
        module=lambda net=net: (LPIPS(net=net), (jnp.zeros((1, 64, 64, 3)),) * 2),
        ignored=vgg.classifier_keys((1, 4, 6)) if net == "alex" else vgg.VGG_CLASSIFIER)
    for net in CHANNELS}
"""LPIPS v0.1 from two files: the torchvision trunk (`alexnet-owt-7be5be79.pth`: `features.{0,3,6,8,10}`;
`vgg16-397923af.pth`: the 13 convs of `features`; classifiers dropped: AlexNet's sit after its dropouts) and the
linear heads that ship inside the `lpips` package (`lpips/weights/v0.1/{alex,vgg}.pth`: `lin{0..4}.model.1.weight`,
(1, C, 1, 1), no bias)."""
