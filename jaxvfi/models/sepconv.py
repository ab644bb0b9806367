"""SepConv (Niklaus et al. 2017, "Video Frame Interpolation via Adaptive Separable Convolution"; paper 001 §2).

A U-Net predicts, for every output pixel, four 1-D kernels (vertical and horizontal, one pair per input frame); the
frame is the sum of the two local separable convolutions (paper 001 Fig. 2.1-2.2):

  Î = sepconv(pad(I0), kv0, kh0) + sepconv(pad(I1), kv1, kh1).

Layout (Niklaus et al.; pinned by the papers README at 21,675,452 parameters for K = 51): encoder blocks of three
3×3 conv + ReLU with 32, 64, 128, 256, 512 channels, each followed by 2×2 average pooling; decoder blocks of three
conv + ReLU with 512, 256, 128, 64 channels, each followed by ×2 bilinear upsampling + conv + ReLU and added to the
encoder output of the same resolution; four subnets conv 64 - conv 64 - conv K (ReLU after each), ×2 bilinear
upsampling, conv K (linear). Input H and W must be multiples of 32 (five poolings).

Ours (the defaults, for training from scratch) and Niklaus et al.'s release (sniklaus/sepconv-slomo `run.py`, whose
`network-l1.pytorch` / `network-lf.pytorch` `jaxvfi.weights` converts; `RELEASED_MODEL_CONFIG`
sets all four switches):

  switch                     ours (default)                        release
  padding                    "zeros": paper 001 zero-pads the      "replicate": `pad(mode="replicate")`
                             frames by K // 2 ("the frame must be
                             zero-padding with 25 pixels", §2)
  upsample_align_corners     False: half-pixel bilinear x2         True: `Upsample(mode="bilinear",
                             (PyTorch `align_corners=False`)       align_corners=True)` in the decoder and subnets
  bgr                        False: the network sees RGB           True: `run.py` reverses PIL's RGB to BGR; only the
                                                                   U-Net input changes, the local convolution filters
                                                                   each channel alike, so the output stays RGB
  input_multiple             32: frames edge-padded at the         128: `estimate()` replicate-pads to a multiple of
                             bottom/right to the 5 poolings        128 ("improved" padding, its default)
  input_border               0                                     0; its "paper" padding is 25 (replicate-padded by
                                                                   25 on every side first, then to the multiple)

The input padding changes the output only near the bottom/right border (the U-Net's receptive field); the others
change every pixel.

SepConv-GAN's generator (paper 003, `jaxvfi.models.sepconv_gan`) is this network with two more switches:
  * activation = "leaky_relu": LeakyReLU(0.2) after every conv but the kernel heads' last one (the authors' code,
    `tf.nn.leaky_relu`, whose slope is 0.2); the default "relu" is Niklaus et al.'s.
  * composite_dilation = (d_in, d_out): the kernel heads predict d_in + d_out taps, the first d_in dense and the rest
    the dilated outer ring (paper 003 §7 "Composite dilation", `pallas_kernels.sepconv_composite`); frames are padded
    by d_in // 2 + d_out. frame0 uses ring pattern 0 and frame1 pattern 1, the two configurations the paper
    alternates "to reduce to a minimum the unavoidable blindspots". With (11, 10): 21 taps per 1-D kernel over a
    31-pixel patch, 21,528,332 parameters. None (the default) is the dense kernel of `kernel_size` taps.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvfi import batches
from jaxvfi import torch_weights
from jaxvfi.layers import conv as conv_lib
from jaxvfi.models.unet import pad_to_multiple, upsample2x
from pallas_kernels import separable as sepconv_lib

PADDINGS = {"zeros": "constant", "replicate": "edge"}
ALIGNMENT = 32
ACTIVATIONS = {"relu": nn.relu, "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=0.2)}


def _conv(features: int, name: str | None = None) -> nn.Conv:
  return conv_lib.Conv(features, (3, 3), padding=1, name=name)


class _Basic(nn.Module):
  features: int
  activation: str = "relu"

  @nn.compact
  def __call__(self, x):
    for i in range(3):
      x = ACTIVATIONS[self.activation](_conv(self.features, f"conv{i}")(x))
    return x


class _Upsample(nn.Module):
  features: int
  align_corners: bool = False
  activation: str = "relu"

  @nn.compact
  def __call__(self, x):
    return ACTIVATIONS[self.activation](_conv(self.features, "conv")(upsample2x(x, self.align_corners)))


class _Subnet(nn.Module):
  """One kernel head: conv 64 - conv 64 - conv K, ×2 bilinear upsampling, conv K (no activation)."""
  kernel_size: int
  align_corners: bool = False
  activation: str = "relu"

  @nn.compact
  def __call__(self, x):
    act = ACTIVATIONS[self.activation]
    x = act(_conv(64, "conv0")(x))
    x = act(_conv(64, "conv1")(x))
    x = act(_conv(self.kernel_size, "conv2")(x))
    return _conv(self.kernel_size, "head")(upsample2x(x, self.align_corners))


class SepConvNet(nn.Module):
  """Adaptive separable convolution network (module docstring).

  Attributes:
    kernel_size: K, taps of each 1-D kernel (51 in the paper); ignored when `composite_dilation` is set.
    padding: "zeros" (paper 001) or "replicate" (Niklaus et al.'s code); frames are padded by K // 2 on every side.
    impl: `pallas_kernels.sepconv` implementation, "auto" | "pallas" | "xla".
    upsample_align_corners: bilinear x2 with `align_corners=True` (Niklaus et al.'s code) instead of half-pixel.
    bgr: feed the U-Net BGR frames (Niklaus et al.'s code); outputs stay in the frames' channel order.
    activation: "relu" (Niklaus et al., paper 001) or "leaky_relu" (slope 0.2, SepConv-GAN).
    composite_dilation: None, or (d_in, d_out) with d_in odd and d_out even (paper 003 §7): d_in + d_out taps per
      1-D kernel over a (d_in + 2 d_out)-pixel patch; frame0 uses ring pattern 0, frame1 pattern 1.
  """
  kernel_size: int = 51
  padding: str = "zeros"
  impl: str = "auto"
  upsample_align_corners: bool = False
  bgr: bool = False
  activation: str = "relu"
  composite_dilation: tuple[int, int] | None = None

  def _taps_and_radius(self) -> tuple[int, int]:
    if self.composite_dilation is None:
      return self.kernel_size, self.kernel_size // 2
    d_in, d_out = self.composite_dilation
    sepconv_lib.composite_offsets(d_in, d_out, 0)  # one ValueError for an even d_in or an odd d_out
    return d_in + d_out, d_in // 2 + d_out

  def _local_conv(self, frame, kv, kh, pattern: int):
    _, r = self._taps_and_radius()
    padded = jnp.pad(frame, ((0, 0), (r, r), (r, r), (0, 0)), mode=PADDINGS[self.padding])
    if self.composite_dilation is None:
      return sepconv_lib.sepconv(padded, kv, kh, impl=self.impl)
    return sepconv_lib.sepconv_composite(padded, kv, kh, *self.composite_dilation, pattern, impl=self.impl)

  @nn.compact
  def __call__(self, frame0: jax.Array, frame1: jax.Array) -> dict[str, jax.Array]:
    if self.padding not in PADDINGS:
      raise ValueError(f"padding must be one of {tuple(PADDINGS)}, got {self.padding!r}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
    if frame0.shape != frame1.shape or frame0.ndim != 4:
      raise ValueError(f"frame0 and frame1 must be (N, H, W, C) of one shape, got {frame0.shape} and {frame1.shape}")
    h, w = frame0.shape[1:3]
    if h % ALIGNMENT or w % ALIGNMENT:
      raise ValueError(f"SepConvNet needs H and W to be multiples of {ALIGNMENT} (five 2x2 poolings), got {h}x{w}; "
                       "pad the frames first (e.g. jaxvfi.models.unet.pad_to_multiple) and crop the output")

    if self.bgr:
      x = jnp.concatenate([frame0[..., ::-1], frame1[..., ::-1]], axis=-1)
    else:
      x = jnp.concatenate([frame0, frame1], axis=-1)
    align_corners = self.upsample_align_corners
    skips = []
    for level, features in enumerate((32, 64, 128, 256, 512), start=1):
      x = _Basic(features, self.activation, name=f"conv{level}")(x)
      skips.append(x)
      x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    for level, features in zip((5, 4, 3, 2), (512, 256, 128, 64)):
      x = _Basic(features, self.activation, name=f"deconv{level}")(x)
      x = _Upsample(features, align_corners, self.activation, name=f"upsample{level}")(x) + skips[level - 1]

    taps, _ = self._taps_and_radius()
    kernels = {name: _Subnet(taps, align_corners, self.activation, name=name)(x)
               for name in ("kv0", "kh0", "kv1", "kh1")}
    image = (self._local_conv(frame0, kernels["kv0"], kernels["kh0"], pattern=0)
             + self._local_conv(frame1, kernels["kv1"], kernels["kh1"], pattern=1))
    return {"image": image, **kernels}


class SepConvInterpolator(nn.Module):
  """Trainer-facing wrapper (`module.apply(vars, batch, train)`): pads the frames, runs `SepConvNet`, crops back.

  The frames are edge-padded by `input_border` on every side, then at the bottom/right to a multiple of
  `input_multiple` (a multiple of 32); the predictions are cropped back to (H, W). The other attributes are
  `SepConvNet`'s (module docstring: ours vs. the release).
  """
  kernel_size: int = 51
  padding: str = "zeros"
  impl: str = "auto"
  upsample_align_corners: bool = False
  bgr: bool = False
  input_multiple: int = ALIGNMENT
  input_border: int = 0
  activation: str = "relu"
  composite_dilation: tuple[int, int] | None = None

  @nn.compact
  def __call__(self, batch: dict, train: bool = False) -> dict[str, jax.Array]:
    del train  # no dropout or batch norm
    if self.input_multiple <= 0 or self.input_multiple % ALIGNMENT or self.input_border < 0:
      raise ValueError(f"input_multiple must be a positive multiple of {ALIGNMENT} and input_border >= 0, got "
                       f"{self.input_multiple} and {self.input_border}")
    b = self.input_border
    frames = []
    for frame in (batch["frame0"], batch["frame1"]):
      if b:
        frame = jnp.pad(frame, ((0, 0), (b, b), (b, b), (0, 0)), mode="edge")
      frames.append(pad_to_multiple(frame, self.input_multiple)[0])
    h, w = batch["frame0"].shape[1:3]
    net = SepConvNet(self.kernel_size, self.padding, self.impl, self.upsample_align_corners, self.bgr,
                     self.activation, self.composite_dilation, name="sepconv")
    preds = net(*frames)
    return {k: v[:, b:b + h, b:b + w] for k, v in preds.items()}


MODEL_FIELDS = ("kernel_size", "padding", "impl", "upsample_align_corners", "bgr", "input_multiple", "input_border",
                "activation", "composite_dilation")


# The family (`jaxvfi.families` docstring). The network has no time input: it makes the middle frame.
HAS_TIME_INPUT = False
example_batch = batches.triplet_example_batch


def build(model_config) -> SepConvInterpolator:
  """`SepConvInterpolator` from `config.model`; absent fields take the class defaults (ours)."""
  fields = {k: model_config[k] for k in MODEL_FIELDS if k in model_config}
  if fields.get("composite_dilation") is not None:  # a JSON round trip (config.json) gives a list
    fields["composite_dilation"] = tuple(int(d) for d in fields["composite_dilation"])
  return SepConvInterpolator(**fields)


# Released weights (`jaxvfi.families`: RELEASED_MODEL_CONFIG and TORCH_LAYOUT).
RELEASED_MODEL_CONFIG = dict(kernel_size=51, padding="replicate", upsample_align_corners=True, bgr=True,
                             input_multiple=128, input_border=0)
"""`config.model` fields that reproduce sepconv-slomo `run.py` around its released weights (with its default
"improved" padding; module docstring)."""


def torch_layers() -> torch_weights.Layers:
  """sepconv-slomo `Network`: Basic = Sequential(conv, relu) x 3, Upsample = (upsample, conv, relu), Subnet = convs
  at 0, 2, 4 and, after the upsampling, 7."""
  layers = {}
  basics = [(f"netConv{l}", f"conv{l}") for l in range(1, 6)] + [(f"netDeconv{l}", f"deconv{l}") for l in (5, 4, 3, 2)]
  for torch_name, flax_name in basics:
    for k in range(3):
      layers[f"{torch_name}.{2 * k}"] = (("sepconv", flax_name, f"conv{k}"), "conv")
  for l in (5, 4, 3, 2):
    layers[f"netUpsample{l}.1"] = (("sepconv", f"upsample{l}", "conv"), "conv")
  subnets = {"netVertical1": "kv0", "netHorizontal1": "kh0", "netVertical2": "kv1", "netHorizontal2": "kh1"}
  for torch_name, flax_name in subnets.items():
    for index, conv in ((0, "conv0"), (2, "conv1"), (4, "conv2"), (7, "head")):
      layers[f"{torch_name}.{index}"] = (("sepconv", flax_name, conv), "conv")
  return layers


def _released_module():
  frames = jnp.zeros((1, 32, 32, 3))
  return build(RELEASED_MODEL_CONFIG), ({"frame0": frames, "frame1": frames},)


TORCH_LAYOUT = torch_weights.TorchLayout(name="sepconv", layers=torch_layers, module=_released_module,
                                         rename_module_to_net=True)
"""sniklaus/sepconv-slomo `network-l1.pytorch` / `network-lf.pytorch`, keys `netConv1.0.weight`, ...,
`netUpsample5.1.weight`, ..., `netHorizontal2.7.bias`; the files still use the older `moduleConv1.0.weight` names,
which `run.py` renames "module" -> "net" on load (21,675,452 parameters, tree `{"sepconv": ...}`)."""
