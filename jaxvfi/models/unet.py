"""The 23-layer UNet of Super-SloMo (Jiang et al. 2018), used by ReFIn (Appendix A, Figure 5) for the flow,
interpolation and refinement modules.

Encoder: two 7x7 convs (32) at full resolution, then five down blocks (average-pool, two convs) with 5x5 kernels for
the first (64) and 3x3 for the rest (128, 256, 512, 512). Decoder: five up blocks (bilinear x2, a conv, then a conv
on the concatenation with the skip), 512, 256, 128, 64, 32, and a 3x3 head. LeakyReLU(0.1) after every conv but the
head; the authors' released code (avinashpaliwal/Super-SloMo `model.py`, whose `SuperSloMo.ckpt` weights
`jaxvfi.weights` converts) applies one after the head too: `output_leaky_relu=True` reproduces it (it also scales
negative flows by 0.1). Parameter counts (Table 3, ReFIn; Super-SloMo): 6->4 19,794,116; 20->5 19,816,357;
16->5 19,810,085; 20->3 19,815,779.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvfi.layers import conv as conv_lib

ALIGN = 32  # five 2x average pools

# nn.Conv with XLA:CPU's slow convolution shapes worked around (jaxvfi.layers.conv); same parameters.
Conv = conv_lib.Conv


def leaky_relu(x):
  return nn.leaky_relu(x, negative_slope=0.1)


def upsample2x(x: jax.Array, align_corners: bool = False) -> jax.Array:
  """Bilinear x2 of (N, H, W, C).

  `align_corners=False`: half-pixel centres, PyTorch `interpolate(mode="bilinear", align_corners=False)`.
  `align_corners=True`: PyTorch's `align_corners=True`, output pixel i samples the input at i (n - 1) / (2n - 1), so
  the corner pixels of input and output coincide (Niklaus et al.'s SepConv release upsamples this way).
  """
  n, h, w, c = x.shape
  if not align_corners:
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")
  for axis, size in ((1, h), (2, w)):
    pos = np.arange(2 * size) * ((size - 1) / max(2 * size - 1, 1))
    lo = np.floor(pos).astype(np.int32)
    hi = np.minimum(lo + 1, size - 1)
    frac = jnp.asarray((pos - lo).astype(np.float32), x.dtype).reshape((-1,) + (1,) * (3 - axis))
    x = jnp.take(x, lo, axis=axis) * (1 - frac) + jnp.take(x, hi, axis=axis) * frac
  return x


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
  """Super-SloMo UNet: `(N, H, W, Cin) -> (N, H, W, out_channels)`, H and W multiples of 32.

  Attributes:
    out_channels: channels of the head.
    output_leaky_relu: False (default: a linear head, flows and logits unbounded) or True (the released code's
      LeakyReLU(0.1) after the head, needed by its weights).
    width: multiplies every layer's channels (32 ... 512 at 1.0, the papers' network). Ours, for CPU budgets: at 0.5
      a step costs about a quarter of the FLOPs and the parameters drop about 4x (configs/refin.py:cpu).
    zero_head: False (default: the head initialised like every conv) or True (ours: the head's kernel and bias start
      at zero, so an untrained UNet outputs zeros and a module that adds its output, a residual flow or image, starts
      as the identity; the head's gradient is not zero, so it trains as usual).
  """
  out_channels: int
  output_leaky_relu: bool = False
  width: float = 1.0
  zero_head: bool = False

  ALIGN = ALIGN

  @nn.compact
  def __call__(self, x):
    check_aligned(x, ALIGN, "UNet")
    if not self.width > 0:
      raise ValueError(f"UNet width must be positive, got {self.width}")
    f = lambda n: max(1, round(n * self.width))
    x = leaky_relu(Conv(f(32), (7, 7), name="conv1")(x))
    s1 = leaky_relu(Conv(f(32), (7, 7), name="conv2")(x))
    s2 = Down(f(64), 5, name="down1")(s1)
    s3 = Down(f(128), 3, name="down2")(s2)
    s4 = Down(f(256), 3, name="down3")(s3)
    s5 = Down(f(512), 3, name="down4")(s4)
    x = Down(f(512), 3, name="down5")(s5)
    x = Up(f(512), name="up1")(x, s5)
    x = Up(f(256), name="up2")(x, s4)
    x = Up(f(128), name="up3")(x, s3)
    x = Up(f(64), name="up4")(x, s2)
    x = Up(f(32), name="up5")(x, s1)
    init = {"kernel_init": nn.initializers.zeros, "bias_init": nn.initializers.zeros} if self.zero_head else {}
    x = Conv(self.out_channels, (3, 3), name="conv3", **init)(x)
    return leaky_relu(x) if self.output_leaky_relu else x
