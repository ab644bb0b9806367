"""VGG-19 features (Simonyan & Zisserman 2015) in torchvision's layout, for perceptual losses.

Used by the perceptual term of Eq. (5), ReFIn (phi = a VGG-19 layer; relu4_4 also in SepConv's L1 + 1e-4 VGG
recipe). torchvision's `vgg19().features` is 16 3x3 convs (padding 1), each followed by ReLU, in five blocks
64, 64 | 128, 128 | 256 x 4 | 512 x 4 | 512 x 4 with a 2x2 max-pool after each of the first four blocks (floor mode):
20,024,384 parameters. Flax names `conv{b}_{i}` line up with torchvision's `features.{j}` (see jaxvfi.weights).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
LAYERS = tuple(f"relu{b}_{i}" for b, widths in enumerate(BLOCKS, start=1) for i in range(1, len(widths) + 1))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19(nn.Module):
  """`(N, H, W, 3)` RGB in [0, 1] -> {"relu1_1": ..., ..., output_layer: ...}; stops at `output_layer`.

  The ImageNet normalisation torchvision's weights expect is applied inside. Only the convs up to `output_layer`
  have parameters; a full converted VGG-19 tree can still be passed to `apply` (Flax ignores the unused convs).
  """
  output_layer: str = "relu4_4"

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    if self.output_layer not in LAYERS:
      raise ValueError(f"output_layer must be one of {LAYERS}, got {self.output_layer!r}")
    x = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
    outputs = {}
    for b, widths in enumerate(BLOCKS, start=1):
      if b > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      for i, features in enumerate(widths, start=1):
        x = nn.relu(nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{b}_{i}")(x))
        outputs[f"relu{b}_{i}"] = x
        if f"relu{b}_{i}" == self.output_layer:
          return outputs
    raise AssertionError("unreachable: output_layer was validated")
