"""SepConv (Niklaus et al. 2017, "Video Frame Interpolation via Adaptive Separable Convolution"; paper 001 §2).

A U-Net predicts, for every output pixel, four 1-D kernels (vertical and horizontal, one pair per input frame); the
frame is the sum of the two local separable convolutions (paper 001 Fig. 2.1-2.2):

  Î = sepconv(pad(I0), kv0, kh0) + sepconv(pad(I1), kv1, kh1).

Layout (Niklaus et al.; pinned by the papers README at 21,675,452 parameters for K = 51): encoder blocks of three
3×3 conv + ReLU with 32, 64, 128, 256, 512 channels, each followed by 2×2 average pooling; decoder blocks of three
conv + ReLU with 512, 256, 128, 64 channels, each followed by ×2 bilinear upsampling + conv + ReLU and added to the
encoder output of the same resolution; four subnets conv 64 - conv 64 - conv K (ReLU after each), ×2 bilinear
upsampling, conv K (linear). Input H and W must be multiples of 32 (five poolings).

Padding of the frames before the local convolution: paper 001 zero-pads ("the frame must be zero-padding with 25
pixels", §2, `tf.pad(..., "CONSTANT")`), so "zeros" is the default; Niklaus et al.'s release pads by replication
("replicate").
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi import models
from jaxvfi.models.unet import pad_to_multiple, upsample2x
from pallas_kernels import separable as sepconv_lib

PADDINGS = {"zeros": "constant", "replicate": "edge"}
ALIGNMENT = 32


def _conv(features: int, name: str | None = None) -> nn.Conv:
  return nn.Conv(features, (3, 3), padding=1, name=name)


class _Basic(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    for i in range(3):
      x = nn.relu(_conv(self.features, f"conv{i}")(x))
    return x


class _Upsample(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    return nn.relu(_conv(self.features, "conv")(upsample2x(x)))


class _Subnet(nn.Module):
  """One kernel head: conv 64 - conv 64 - conv K, ×2 bilinear upsampling, conv K (no activation)."""
  kernel_size: int

  @nn.compact
  def __call__(self, x):
    x = nn.relu(_conv(64, "conv0")(x))
    x = nn.relu(_conv(64, "conv1")(x))
    x = nn.relu(_conv(self.kernel_size, "conv2")(x))
    return _conv(self.kernel_size, "head")(upsample2x(x))


class SepConvNet(nn.Module):
  """Adaptive separable convolution network (module docstring).

  Attributes:
    kernel_size: K, taps of each 1-D kernel (51 in the paper).
    padding: "zeros" (paper 001) or "replicate" (Niklaus et al.'s code); frames are padded by K // 2 on every side.
    impl: `pallas_kernels.sepconv` implementation, "auto" | "pallas" | "xla".
  """
  kernel_size: int = 51
  padding: str = "zeros"
  impl: str = "auto"

  @nn.compact
  def __call__(self, frame0: jax.Array, frame1: jax.Array) -> dict[str, jax.Array]:
    if self.padding not in PADDINGS:
      raise ValueError(f"padding must be one of {tuple(PADDINGS)}, got {self.padding!r}")
    if frame0.shape != frame1.shape or frame0.ndim != 4:
      raise ValueError(f"frame0 and frame1 must be (N, H, W, C) of one shape, got {frame0.shape} and {frame1.shape}")
    h, w = frame0.shape[1:3]
    if h % ALIGNMENT or w % ALIGNMENT:
      raise ValueError(f"SepConvNet needs H and W to be multiples of {ALIGNMENT} (five 2x2 poolings), got {h}x{w}; "
                       "pad the frames first (e.g. jaxvfi.models.unet.pad_to_multiple) and crop the output")

    x = jnp.concatenate([frame0, frame1], axis=-1)
    skips = []
    for level, features in enumerate((32, 64, 128, 256, 512), start=1):
      x = _Basic(features, name=f"conv{level}")(x)
      skips.append(x)
      x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    for level, features in zip((5, 4, 3, 2), (512, 256, 128, 64)):
      x = _Basic(features, name=f"deconv{level}")(x)
      x = _Upsample(features, name=f"upsample{level}")(x) + skips[level - 1]

    kernels = {name: _Subnet(self.kernel_size, name=name)(x) for name in ("kv0", "kh0", "kv1", "kh1")}
    r = self.kernel_size // 2
    pad = lambda f: jnp.pad(f, ((0, 0), (r, r), (r, r), (0, 0)), mode=PADDINGS[self.padding])
    image = (sepconv_lib.sepconv(pad(frame0), kernels["kv0"], kernels["kh0"], impl=self.impl)
             + sepconv_lib.sepconv(pad(frame1), kernels["kv1"], kernels["kh1"], impl=self.impl))
    return {"image": image, **kernels}


class SepConvInterpolator(nn.Module):
  """Trainer-facing wrapper (`module.apply(vars, batch, train)`): pads frames to a multiple of 32, crops back."""
  kernel_size: int = 51
  padding: str = "zeros"
  impl: str = "auto"

  @nn.compact
  def __call__(self, batch: dict, train: bool = False) -> dict[str, jax.Array]:
    del train  # no dropout or batch norm
    frame0, (h, w) = pad_to_multiple(batch["frame0"], ALIGNMENT)
    frame1, _ = pad_to_multiple(batch["frame1"], ALIGNMENT)
    preds = SepConvNet(self.kernel_size, self.padding, self.impl, name="sepconv")(frame0, frame1)
    return {k: v[:, :h, :w] for k, v in preds.items()}


# The family (`jaxvfi.models` docstring). The network has no time input: it makes the middle frame.
HAS_TIME_INPUT = False
example_batch = models.triplet_example_batch


def build(model_config) -> SepConvInterpolator:
  return SepConvInterpolator(kernel_size=model_config.get("kernel_size", 51),
                             padding=model_config.get("padding", "zeros"), impl=model_config.get("impl", "auto"))
