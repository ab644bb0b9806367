"""UNet++ (Zhou et al. 2018) in the 4-level form ReFIn uses for its interpolation and refinement modules.

Appendix A and Figure 6, ReFIn: nodes X(i, j) on levels i = 0..3 (channels 32, 64, 96, 128) with 4, 3, 2 and 1
convolutional blocks from the top level down; every block is two 3x3 convs, each followed by a LeakyReLU; max-pooling
goes down and bilinear x2 upsampling comes up; the output block is one 1x1 conv on X(0, 3).

  X(i, 0) = block(X(0, 0) input, or maxpool(X(i-1, 0)))
  X(i, j) = block(concat[X(i, 0), ..., X(i, j-1), up(X(i+1, j-1))])      j >= 1 (nested dense skips)

Parameter counts (Table 3, ReFIn; the table prints 1.1764 / 1.1775 M): 16 -> 5 channels 1,176,485 and
20 -> 3 channels 1,177,571. The counts fix everything that shapes parameters; two things they cannot fix are choices
documented here: the LeakyReLU slope (not stated; 0.1 as in Super-SloMo's UNet, which ReFIn builds on) and the
concatenation order (the reference UNet++ order above). Following the caller's contract there is no activation on the
1x1 output.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi.models.unet import check_aligned, upsample2x

CHANNELS = (32, 64, 96, 128)
ALIGN = 2 ** (len(CHANNELS) - 1)  # three 2x max-pools


class ConvBlock(nn.Module):
  """Two 3x3 convs, each followed by LeakyReLU (Appendix A, ReFIn)."""
  features: int
  negative_slope: float = 0.1

  @nn.compact
  def __call__(self, x):
    for k in (1, 2):
      x = nn.leaky_relu(nn.Conv(self.features, (3, 3), name=f"conv{k}")(x), self.negative_slope)
    return x


class UNetPP(nn.Module):
  """UNet++ `(N, H, W, Cin) -> (N, H, W, out_channels)`; H and W multiples of `ALIGN` (8); no output activation."""
  out_channels: int
  negative_slope: float = 0.1

  ALIGN = ALIGN

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    check_aligned(x, ALIGN, "UNetPP")
    levels = len(CHANNELS)
    nodes = [[] for _ in range(levels)]  # nodes[i][j] = X(i, j)
    for i, features in enumerate(CHANNELS):
      inp = x if i == 0 else nn.max_pool(nodes[i - 1][0], (2, 2), strides=(2, 2))
      nodes[i].append(ConvBlock(features, self.negative_slope, name=f"x{i}_0")(inp))
    for j in range(1, levels):
      for i in range(levels - j):
        inp = jnp.concatenate(nodes[i][:j] + [upsample2x(nodes[i + 1][j - 1])], axis=-1)
        nodes[i].append(ConvBlock(CHANNELS[i], self.negative_slope, name=f"x{i}_{j}")(inp))
    return nn.Conv(self.out_channels, (1, 1), name="out")(nodes[0][levels - 1])
