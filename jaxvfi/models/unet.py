"""The 23-layer UNet of Super-SloMo (Jiang et al. 2018), used by ReFIn (Appendix A, Figure 5) for the flow,
interpolation and refinement modules.

Encoder: two 7x7 convs (32) at full resolution, then five down blocks (average-pool, two convs) with 5x5 kernels for
the first (64) and 3x3 for the rest (128, 256, 512, 512). Decoder: five up blocks (bilinear x2, a conv, then a conv
on the concatenation with the skip), 512, 256, 128, 64, 32, and a 3x3 head. LeakyReLU(0.1) after every conv but the
head. Parameter counts (Table 3, ReFIn; Super-SloMo): 6->4 19,794,116; 20->5 19,816,357; 16->5 19,810,085;
20->3 19,815,779.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi.layers import conv as conv_lib

ALIGN = 32  # five 2x average pools

# nn.Conv whose 3x3 convolutions on the 2x2 bottleneck of 64x64 crops run as matrix products (jaxvfi.layers.conv);
# same parameters.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_lib.conv_general_dilated)


def leaky_relu(x):
  return nn.leaky_relu(x, negative_slope=0.1)


def upsample2x(x: jax.Array) -> jax.Array:
  """Bilinear x2 with half-pixel centres, i.e. PyTorch `interpolate(mode="bilinear", align_corners=False)`."""
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")


def pad_to_multiple(x: jax.Array, multiple: int) -> tuple[jax.Array, tuple[int, int]]:
  """Edge-pads H and W at the bottom/right up to a multiple; returns the padded array and the original (H, W)."""
  h, w = x.shape[1:3]
  ph, pw = (-h) % multiple, (-w) % multiple
  if ph or pw:
    x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
  return x, (h, w)


def check_aligned(x: jax.Array, align: int, name: str) -> None:
  h, w = x.shape[1:3]
  if h % align or w % align:
    raise ValueError(f"{name} needs height and width that are multiples of {align}, got {h}x{w}; "
                     f"pad the frames first (jaxvfi.models.unet.pad_to_multiple)")


class Down(nn.Module):
  features: int
  kernel: int

  @nn.compact
  def __call__(self, x):
    x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = leaky_relu(Conv(self.features, (self.kernel, self.kernel), name="conv1")(x))
    return leaky_relu(Conv(self.features, (self.kernel, self.kernel), name="conv2")(x))


class Up(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, skip):
    x = leaky_relu(Conv(self.features, (3, 3), name="conv1")(upsample2x(x)))
    return leaky_relu(Conv(self.features, (3, 3), name="conv2")(jnp.concatenate([x, skip], axis=-1)))


class UNet(nn.Module):
  """Super-SloMo UNet: `(N, H, W, Cin) -> (N, H, W, out_channels)`, H and W multiples of 32, no output activation."""
  out_channels: int

  ALIGN = ALIGN

  @nn.compact
  def __call__(self, x):
    check_aligned(x, ALIGN, "UNet")
    x = leaky_relu(Conv(32, (7, 7), name="conv1")(x))
    s1 = leaky_relu(Conv(32, (7, 7), name="conv2")(x))
    s2 = Down(64, 5, name="down1")(s1)
    s3 = Down(128, 3, name="down2")(s2)
    s4 = Down(256, 3, name="down3")(s3)
    s5 = Down(512, 3, name="down4")(s4)
    x = Down(512, 3, name="down5")(s5)
    x = Up(512, name="up1")(x, s5)
    x = Up(256, name="up2")(x, s4)
    x = Up(128, name="up3")(x, s3)
    x = Up(64, name="up4")(x, s2)
    x = Up(32, name="up5")(x, s1)
    return Conv(self.out_channels, (3, 3), name="conv3")(x)
