"""VGG-19 features (Simonyan & Zisserman 2015) in torchvision's layout, for perceptual losses.

Used by the perceptual term of Eq. (5), ReFIn (phi = a VGG-19 layer; relu4_4 also in SepConv's L1 + 1e-4 VGG
recipe). torchvision's `vgg19().features` is 16 3x3 convs (padding 1), each followed by ReLU, in five blocks
64, 64 | 128, 128 | 256 x 4 | 512 x 4 | 512 x 4 with a 2x2 max-pool after each of the first four blocks (floor mode):
20,024,384 parameters. Flax names `conv{b}_{i}` line up with torchvision's `features.{j}` (see jaxvfi.weights).
torchvision's `vgg16().features` (LPIPS's "vgg" trunk, `jaxvfi.models.lpips`) is `VGG(blocks=VGG16_BLOCKS)`.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))  # LPIPS's "vgg" trunk


def layer_names(blocks) -> tuple[str, ...]:
  return tuple(f"relu{b}_{i}" for b, widths in enumerate(blocks, start=1) for i in range(1, len(widths) + 1))


LAYERS = layer_names(BLOCKS)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG(nn.Module):
  """torchvision's `make_layers` features: blocks of 3x3 convs (padding 1) + ReLU, a 2x2 max-pool between blocks.

  `(N, H, W, 3)` -> {"relu1_1": ..., ..., output_layer: ...}, stopping at `output_layer`. With `normalize` the
  input is RGB in [0, 1] and the ImageNet normalisation torchvision's weights expect is applied inside; without,
  the input goes to the first conv as it is (LPIPS scales it itself). Only the convs up to `output_layer` have
  parameters; a full converted tree can still be passed to `apply` (Flax ignores the unused convs).
  """
  blocks: tuple[tuple[int, ...], ...] = BLOCKS
  output_layer: str = "relu4_4"
  normalize: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    if self.output_layer not in layer_names(self.blocks):
      raise ValueError(f"output_layer must be one of {layer_names(self.blocks)}, got {self.output_layer!r}")
    if self.normalize:
      x = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
    outputs = {}
    for b, widths in enumerate(self.blocks, start=1):
      if b > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for i, features in enumerate(widths, start=1):
        x = nn.relu(nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{b}_{i}")(x))
        outputs[f"relu{b}_{i}"] = x
        if f"relu{b}_{i}" == self.output_layer:
          return outputs
    raise AssertionError("unreachable: output_layer was validated")


class VGG19(VGG):
  """VGG-19 (module docstring): `VGG` with its blocks, RGB [0, 1] input normalised inside."""
