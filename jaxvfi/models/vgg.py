"""VGG-19 features (Simonyan & Zisserman 2015) in torchvision's layout, for perceptual losses.

Used by the perceptual term of Eq. (5), ReFIn (phi = a VGG-19 layer; relu4_4 also in SepConv's L1 + 1e-4 VGG
recipe). torchvision's `vgg19().features` is 16 3x3 convs (padding 1), each followed by ReLU, in five blocks
64, 64 | 128, 128 | 256 x 4 | 512 x 4 | 512 x 4 with a 2x2 max-pool after each of the first four blocks (floor mode):
20,024,384 parameters. Flax names `conv{b}_{i}` line up with torchvision's `features.{j}` (see jaxvfi.weights).
torchvision's `vgg16().features` (LPIPS's "vgg" trunk, `jaxvfi.models.lpips`) is `VGG(blocks=VGG16_BLOCKS)`.

Outputs: every `relu{b}_{i}` up to `output_layer`; `output_layer` may also be `pool{b}`, the 2x2 max-pool after
block b (Keras' `block{b}_pool`): `output_layer="pool5"` runs the whole feature stack (SepConv-GAN's discriminator reads
`block5_pool`, paper 003 Fig. 4, and its perceptual loss `relu4_4` from the same pass).

Input preprocessing (`preprocessing`, applied when `normalize`), for RGB input in [0, 1]:
  * "torchvision" (default): (x - IMAGENET_MEAN) / IMAGENET_STD, for torchvision's `vgg19` weights.
  * "caffe": 255 x, RGB -> BGR, minus CAFFE_BGR_MEAN: the input the original (Oxford / Caffe) VGG-19 weights
    expect, which Keras' `VGG19(weights="imagenet")` uses and SepConv-GAN's loss weights were tuned for (paper 003;
    its code subtracts [103.939, 116.779, 123.68] from BGR 0-255 frames). Use it with those weights in torchvision's
    layout, e.g. jcjohnson/pytorch-vgg's `vgg19-d01eb7cb.pth` (converted by `python -m jaxvfi.weights`); with
    torchvision's weights it gives features of the wrong scale and colour order.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi import torch_weights

BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))  # LPIPS's "vgg" trunk


def layer_names(blocks) -> tuple[str, ...]:
  return tuple(f"relu{b}_{i}" for b, widths in enumerate(blocks, start=1) for i in range(1, len(widths) + 1))


def pool_names(blocks) -> tuple[str, ...]:
  return tuple(f"pool{b}" for b in range(1, len(blocks) + 1))


LAYERS = layer_names(BLOCKS)
POOLS = pool_names(BLOCKS)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
PREPROCESSING = ("torchvision", "caffe")


def preprocess(x: jax.Array, mode: str) -> jax.Array:
  """RGB in [0, 1] (..., 3) -> the network input of `mode` (module docstring)."""
  if mode == "torchvision":
    return (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
  if mode == "caffe":
    return 255.0 * x[..., ::-1] - jnp.asarray(CAFFE_BGR_MEAN, x.dtype)
  raise ValueError(f"VGG preprocessing must be one of {PREPROCESSING}, got {mode!r}")


class VGG(nn.Module):
  """torchvision's `make_layers` features: blocks of 3x3 convs (padding 1) + ReLU, a 2x2 max-pool between blocks.

  `(N, H, W, 3)` -> {"relu1_1": ..., ..., output_layer: ...}, stopping at `output_layer`; the dict holds every ReLU
  output up to `output_layer` and `output_layer` itself (a pool only when it is asked). With `normalize` the input
  is RGB in [0, 1] and the normalisation of `preprocessing` (module docstring) is applied inside; without, the input
  goes to the first conv as it is (LPIPS scales it itself). Only the convs up to `output_layer` have parameters; a
  full converted tree can still be passed to `apply` (Flax ignores the unused convs). Max-pools are 2x2, stride 2,
  floor mode (an odd side loses its last row or column).
  """
  blocks: tuple[tuple[int, ...], ...] = BLOCKS
  output_layer: str = "relu4_4"
  normalize: bool = True
  preprocessing: str = "torchvision"

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    names = layer_names(self.blocks) + pool_names(self.blocks)
    if self.output_layer not in names:
      raise ValueError(f"output_layer must be one of {names}, got {self.output_layer!r}")
    if self.normalize:
      x = preprocess(x, self.preprocessing)
    outputs = {}
    for b, widths in enumerate(self.blocks, start=1):
      for i, features in enumerate(widths, start=1):
        x = nn.relu(nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{b}_{i}")(x))
        outputs[f"relu{b}_{i}"] = x
        if f"relu{b}_{i}" == self.output_layer:
          return outputs
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
      if f"pool{b}" == self.output_layer:
        outputs[self.output_layer] = x
        return outputs
    raise AssertionError("unreachable: output_layer was validated")


class VGG19(VGG):
  """VGG-19 (module docstring): `VGG` with its blocks, RGB [0, 1] input normalised inside."""


def torch_layers(blocks, path: tuple[str, ...] = ()) -> torch_weights.Layers:
  """torchvision `features.{j}` -> Flax `conv{b}_{i}`; j counts conv, ReLU and the max-pool after each block."""
  layers, j = {}, 0
  for b, widths in enumerate(blocks, start=1):
    for i in range(1, len(widths) + 1):
      layers[f"features.{j}"] = (path + (f"conv{b}_{i}",), "conv")
      j += 2
    j += 1
  return layers


def classifier_keys(indices) -> tuple[str, ...]:
  """The keys of torchvision's ImageNet classifier layers `classifier.{j}` (dropped: the features never use them)."""
  return tuple(f"classifier.{j}.{p}" for j in indices for p in ("weight", "bias"))


VGG_CLASSIFIER = classifier_keys((0, 3, 6))  # torchvision's VGG-16 and VGG-19 share these key names

TORCH_LAYOUT = torch_weights.TorchLayout(
    name="vgg19", layers=lambda: torch_layers(BLOCKS),
    module=lambda: (VGG19(output_layer=LAYERS[-1]), (jnp.zeros((1, 32, 32, 3)),)), ignored=VGG_CLASSIFIER)
"""torchvision `vgg19()` state_dict, keys `features.{j}.weight/bias` for the 16 convs; the classifier
(`classifier.{0,3,6}`, the fully connected head) is dropped on purpose: perceptual losses use the features only."""
