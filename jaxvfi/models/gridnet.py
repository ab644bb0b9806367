"""GridNet (Fourure et al. 2017) in the Context-aware Synthesis form (Niklaus & Liu 2018) used by ReFIn.

Appendix A and Figure 7, ReFIn: R rows (streams at scales 1, 1/2, ..., channels 32/64/96 for GridNet-3 and
32/64/96/128 for GridNet-4) and 6 columns; the first 3 columns carry features down, the last 3 carry them up.

  lateral  row i, column j-1 -> j       x + conv(prelu(conv(prelu(x))))                C_i -> C_i -> C_i, residual
  down     row i-1 -> i, columns 0-2    conv(prelu(conv_stride2(prelu(x))))            C_i-1 -> C_i -> C_i
  up       row i+1 -> i, columns 3-5    conv(prelu(conv(prelu(bilinear_x2(x)))))       C_i+1 -> C_i -> C_i
  head     input -> row 0, column 0     conv(prelu(conv(prelu(x))))                    Cin -> 32 -> 32, no skip
  tail     row 0, column 5 -> output    conv(prelu(conv(prelu(x))))                    32 -> Cout -> Cout, no skip
(all convs 3x3)

A node sums what reaches it: X(i, j) = lateral(X(i, j-1)) + down(X(i-1, j)) for j in 1..2, the same with
up(X(i+1, j)) for j in 3..5; column 0 is the head and the down blocks only, the bottom row of columns 3..5 has only
its lateral. Every PReLU has one parameter (PyTorch's `nn.PReLU()` default, initialised to 0.25).

Derivation from the parameter counts (Table 3, ReFIn, printed 2.2493 / 2.2497 and 5.0813 / 5.0817 M). Write
conv(a, b) = 9ab + b and count one parameter per PReLU. Per row: 5 laterals of 2 conv(C, C) + 2. Between rows i and
i+1: 3 down blocks of conv(C_i, C_i+1) + conv(C_i+1, C_i+1) + 2 and 3 up blocks of conv(C_i+1, C_i) + conv(C_i, C_i)
+ 2. That gives 1,292,190 + 581,580 + 360,012 = 2,233,782 (GridNet-3) and 2,768,040 + 1,356,498 + 941,202 =
5,065,740 (GridNet-4), leaving 15,567 for head + tail in the 16 -> 5 model of both. The 16 -> 5 and 20 -> 3 models
differ by 428 in both: the head's first 3x3 conv to 32 gains 4 * 9 * 32 = 1,152 and the tail conv(32, c) +
conv(c, c) + 2 goes from 1,677 (c = 5) to 953 (c = 3), -724; 1,152 - 724 = 428, and head 13,890 + tail 1,677 =
15,567. Alternatives miss: a one-conv tail gives 574, 1x1 skip projections on head and tail give 490, 3x3 shortcut
convs 1,002. Totals: GridNet-3 16 -> 5 2,249,349, 20 -> 3 2,249,777; GridNet-4 16 -> 5 5,081,307, 20 -> 3 5,081,735.

Strided convs use PyTorch's padding of 1 (not Flax "SAME", which pads 0/1 on even sizes), so kernels imported from
a PyTorch GridNet line up. No activation on the output, no dropout (the original GridNet's total dropout is not
mentioned by ReFIn).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jaxvfi.models.unet import check_aligned, upsample2x

PRELU_INIT = 0.25  # PyTorch nn.PReLU() default


def _conv(features: int, name: str, stride: int = 1) -> nn.Conv:
  return nn.Conv(features, (3, 3), strides=(stride, stride), padding=((1, 1), (1, 1)), name=name)


def _prelu(name: str) -> nn.PReLU:
  return nn.PReLU(negative_slope_init=PRELU_INIT, name=name)


class Lateral(nn.Module):
  """PReLU-conv-PReLU-conv, with the identity skip when `residual` (laterals) and without (head and tail)."""
  features: int
  residual: bool = True

  @nn.compact
  def __call__(self, x):
    y = _conv(self.features, "conv1")(_prelu("prelu1")(x))
    y = _conv(self.features, "conv2")(_prelu("prelu2")(y))
    return x + y if self.residual else y


class Down(nn.Module):
  """PReLU, stride-2 3x3 conv, PReLU, 3x3 conv."""
  features: int

  @nn.compact
  def __call__(self, x):
    x = _conv(self.features, "conv1", stride=2)(_prelu("prelu1")(x))
    return _conv(self.features, "conv2")(_prelu("prelu2")(x))


class Up(nn.Module):
  """Bilinear x2 (not a transposed conv, against checkerboard artefacts), PReLU, 3x3 conv, PReLU, 3x3 conv."""
  features: int

  @nn.compact
  def __call__(self, x):
    x = _conv(self.features, "conv1")(_prelu("prelu1")(upsample2x(x)))
    return _conv(self.features, "conv2")(_prelu("prelu2")(x))


class GridNet(nn.Module):
  """GridNet `(N, H, W, Cin) -> (N, H, W, out_channels)`; `channels` (32, 64, 96) = GridNet-3, + 128 = GridNet-4.

  H and W must be multiples of 2 ** (rows - 1) (4 for GridNet-3, 8 for GridNet-4). The class attribute `ALIGN` = 8
  is the multiple that serves both published configurations (what a caller padding by class can rely on).
  """
  out_channels: int
  channels: Sequence[int] = (32, 64, 96)

  ALIGN = 8
  COLUMNS = 6

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    rows = len(self.channels)
    check_aligned(x, 2 ** (rows - 1), f"GridNet with {rows} rows")
    half = self.COLUMNS // 2
    nodes = [Lateral(self.channels[0], residual=False, name="head")(x)]
    for i in range(1, rows):
      nodes.append(Down(self.channels[i], name=f"down{i}_0")(nodes[i - 1]))
    for j in range(1, half):
      for i in range(rows):
        nodes[i] = Lateral(self.channels[i], name=f"lateral{i}_{j}")(nodes[i])
        if i > 0:
          nodes[i] = nodes[i] + Down(self.channels[i], name=f"down{i}_{j}")(nodes[i - 1])
    for j in range(half, self.COLUMNS):
      for i in reversed(range(rows)):
        nodes[i] = Lateral(self.channels[i], name=f"lateral{i}_{j}")(nodes[i])
        if i < rows - 1:
          nodes[i] = nodes[i] + Up(self.channels[i], name=f"up{i}_{j}")(nodes[i + 1])
    return Lateral(self.out_channels, residual=False, name="tail")(nodes[0])
