r"""SDAN (Mei, Ye & Huang, "Squared Deformable Alignment Network for Learning Misaligned Optical Zoom"; paper 004).

An SRResNet whose head features are aligned to a reference before super-resolution (Fig. 1-2, Sec. 3):

  F^X  = ReLU(head(X))                                        X: the low-resolution input (RAW mosaic or RGB)
  F^Y' = ReLU(ref_conv([Y', flip_h Y', flip_w Y', flip_hw Y']))  Y': the reference, 3 channels at X's size
  Theta = offset branch([F^X, F^Y'])  = conv-CPA-ReLU, conv-CPA-ReLU, conv -> one (dy, dx) per pixel
  F^X' = ReLU(SDCN(F^X, Theta))                                 squared deformable conv, Eq. (4)-(5)
  X'   = aligned_head(F^X')                                     the "temporally aligned" LR image of Sec. 3.3
  X~   = tail(F^X' + body(F^X'))                                16 residual blocks, then x4 pixel shuffle
  M    = [0 <= y + dy < H and 0 <= x + dx < W]                  mask of Eq. (6), no gradient

Training takes {X, Y'} with Y' the bicubic downscale of the target Y (Sec. 3.1); inference takes {X, X}: the input
is its own reference ("input" below). For the RAW input the reference must be RGB, so "its own reference" is the
input shot's camera RGB (`lr_rgb`), as the authors' validation step does.

Layers (n_feats = 64; the authors' `models/dfs.py` and `models/common.py`, MKFMIKU/SDAN):
  head             conv3x3 Cin -> 64 + ReLU                    Cin = 1 (RAW mosaic, the authors' default) or 3
  ref_conv         conv3x3 12 -> 64 + ReLU                     the four flips of Y' concatenated (3 -> 64 without)
  offset_conv0/1   conv3x3 128 -> 64 / 64 -> 64, each then CPA and ReLU
  offset_out       conv3x3 64 -> 2 (squared) or 2 k^2 = 18 (per-point DCN); kaiming_normal(a = 0.02), zero bias
  align_conv       3x3 deformable conv 64 -> 64 with bias, then ReLU
  aligned_head     conv3x3 64 -> 3 (X')
  body             16 x (conv3x3 - ReLU - conv3x3, no bias) + conv3x3 (no bias), global skip
  upsample_0/1     conv3x3 64 -> 256, pixel shuffle x2, ReLU
  tail             conv3x3 64 -> 3
Parameters: 1,671,818 with the 1-channel mosaic input and 1,672,970 with RGB input (papers README); per-point
offsets add 9,232 (64 * 9 * 16 + 16).

Paper / code differences, each a field of `SDAN` (the paper is the default where it is specific):
  * shared_reference_conv: Sec. 3.2 says F^Y' comes from Y' "via three different flip augmentation operations and
    the same convolutional layer"; the code gives the reference its own `ref_conv` on Y' and its three flips
    concatenated (12 channels). "The same convolutional layer" can mean a layer like F^X's (conv + ReLU) or F^X's
    very layer; the first reading is the code's and the only one that gives the paper's parameter count, so it is
    the default. True is the second: each of the four views of Y' goes through `head` and ReLU and the four
    feature maps are averaged (F^{X+Y'} keeps the 2C channels of Sec. 3.2). It needs Cin = 3 (RGB input);
    1,665,994 parameters.
  * Table 2's rows (`offsets`, `attention`, `reference_flips`):
      DCN              per_point, none, no flips
      SDCN             squared,   none, no flips
      + CL-Attention   squared,   cl,   no flips       SE-style channel attention (the code's DFS_CL_Attention
                                                       order: conv - ReLU - CA, squeeze 16)
      + CP-Attention   squared,   cpa,  no flips
      ++ Flip Augment  squared,   cpa,  flips           = SDAN
    "Flip augmentation" is the four flips of Y' fed to the reference conv (the code's Sq_DFS_Attention against
    DFS_Attention, whose ref_conv takes Y' alone), not a data augmentation.
  * For per-point offsets the mask tests the centre tap's offset (the code's DCN variant has no mask at all).
  * inference_reference: "input" ({X, X}, Sec. 3.1) or "target": the bicubic downscale of the ground truth also at
    evaluation, as the authors' `test_step` does (it reads the answer; only for comparing with their numbers).
  * reference_antialias: Y' is "down-sampled from Y" (Sec. 3.1); we use an antialiased bicubic (MATLAB imresize
    style, `jax.image.resize(..., antialias=True)`); the code's `F.interpolate(mode="bicubic")` does not antialias
    (False here; PyTorch's cubic has a = -0.75 where JAX's has a = -0.5, so even then the two differ slightly).

Input size: H and W of X are padded (edge, bottom and right; the packed RAW before unpacking, so the Bayer phase is
kept) to multiples of `pack_size` for CPA, and every output is cropped back.

The family (`jaxvfi.families` docstring): `build`, `example_batch`, `make_loss_fn` (Eq. (6)), `baselines` (bicubic
x4), `EVALUATOR = "restoration"`, `ROTATION_EQUIVARIANT = False`. Batches are those of `jaxvfi.input_pipeline`'s
"sdan" preset:
  lr_raw (B, c, c, 4) packed RAW in [0, 1] (R, G, B, G at positions (0,0), (0,1), (1,1), (1,0) of the RGGB cell),
  lr_rgb (B, 2c, 2c, 3) the input shot's camera RGB, hr_rgb (B, 8c, 8c, 3) the target.
Predictions: image (B, 8c, 8c, 3) = X~; aligned (B, 2c, 2c, 3) = X'; mask (B, 2c, 2c, 1) = M; offset
(B, 2c, 2c, 2 or 18) in LR pixels, (dy, dx); reference (B, 2c, 2c, 3) = Y'.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvfi import losses
from jaxvfi.layers import deform
from jaxvfi.models.unet import pad_to_multiple
from pallas_kernels import squared_offset_mask

INPUTS = {"raw": 1, "rgb": 3}
OFFSETS = ("squared", "per_point")
ATTENTIONS = ("cpa", "cl", "none")
REFERENCES = ("input", "target")
MASK_WINDOWS = {"centre": 1, "window": 3}
EVALUATOR = "restoration"
# Rotating packed RAW by 180 degrees swaps R and B within each RGGB cell, so test-time augmentation by rotation
# (`jaxvfi.families.predict`) would feed the network colours it never saw.
ROTATION_EQUIVARIANT = False

# Table 2 rows -> (offsets, attention, reference_flips).
TABLE2 = {
    "dcn": ("per_point", "none", False),
    "sdcn": ("squared", "none", False),
    "cl": ("squared", "cl", False),
    "cp": ("squared", "cpa", False),
    "flip": ("squared", "cpa", True),
}

# The authors initialise the offset branch with kaiming_normal_(w, a=0.02) (fan_in, leaky-ReLU gain) and zero bias.
OFFSET_INIT = nn.initializers.variance_scaling(2.0 / (1.0 + 0.02 ** 2), "fan_in", "normal")

# Positions of the packed channels R, G, B, G (`jaxvfi.datasets.sr_raw`) in the RGGB cell, row-major: cell slot
# (0,0) <- 0, (0,1) <- 1, (1,0) <- 3, (1,1) <- 2 (the authors' `reshape_back_raw`).
_CELL_ORDER = (0, 1, 3, 2)


def unpack_bayer(packed: jax.Array) -> jax.Array:
  """(N, h, w, 4) packed RAW -> (N, 2h, 2w, 1) mosaic, the released 1-channel input (`reshape_back_raw`)."""
  if packed.shape[-1] != 4:
    raise ValueError(f"packed RAW must have 4 channels (R, G, B, G), got shape {packed.shape}")
  cell = packed[..., list(_CELL_ORDER)]
  return einops.rearrange(cell, "n h w (a b) -> n (h a) (w b) 1", a=2, b=2)


def pack(x: jax.Array, size: int) -> jax.Array:
  """Space-to-depth (N, H, W, C) -> (N, H/K, W/K, K*K*C), channels ordered (row, column, channel) in the block."""
  return einops.rearrange(x, "n (h a) (w b) c -> n h w (a b c)", a=size, b=size)


def unpack(x: jax.Array, size: int) -> jax.Array:
  """Depth-to-space, the exact inverse of `pack`."""
  return einops.rearrange(x, "n h w (a b c) -> n (h a) (w b) c", a=size, b=size)


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """(N, H, W, C r^2) -> (N, rH, rW, C) with PyTorch's PixelShuffle channel order (c, i, j)."""
  return einops.rearrange(x, "n h w (c a b) -> n (h a) (w b) c", a=factor, b=factor)


def flips(image: jax.Array) -> jax.Array:
  """[Y', flip_h Y', flip_w Y', flip_hw Y'] concatenated on channels (the code's order: dims H, W, both)."""
  return jnp.concatenate([image, image[:, ::-1], image[:, :, ::-1], image[:, ::-1, ::-1]], axis=-1)


def _conv(features: int, name: str, kernel_size: int = 3, **kwargs) -> nn.Conv:
  return nn.Conv(features, (kernel_size, kernel_size), padding=kernel_size // 2, name=name, **kwargs)


class CrossPackingAttention(nn.Module):
  """CPA (Sec. 3.2, SDAN; the code's `PatchAttn`): channel attention on space-to-depth packed features.

  Pack K x K blocks into channels, X: (C' = K*K*C) x L with L = HW / K^2 block positions; E = X X^T (C' x C');
  A = softmax(rowmax(E) - E) over the last axis (DANet's channel attention; the row max is a per-row constant, so
  A = softmax(-E)); Y = gamma A X + X, gamma a scalar initialised at 0 (so CPA starts as the identity); unpack.
  E sums over every block position: the attention is global over the image. Input (N, H, W, C), H and W multiples
  of K; output the same shape.
  """
  pack_size: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    gamma = self.param("gamma", nn.initializers.zeros_init(), (1,), jnp.float32)
    k = self.pack_size
    if x.shape[1] % k or x.shape[2] % k:
      raise ValueError(f"CrossPackingAttention needs H and W multiples of {k}, got {x.shape[1]}x{x.shape[2]}")
    packed = pack(x, k)
    flat = packed.reshape(x.shape[0], -1, packed.shape[-1])  # (N, L, C')
    energy = jnp.einsum("nlc,nld->ncd", flat, flat)
    attention = jax.nn.softmax(jnp.max(energy, axis=-1, keepdims=True) - energy, axis=-1)
    out = jnp.einsum("ncd,nld->nlc", attention, flat)
    return unpack((gamma * out + flat).reshape(packed.shape), k)


class ChannelAttention(nn.Module):
  """Squeeze-and-excitation channel attention (Hu et al. 2018; the code's RCAN `ChannelAttention`, squeeze 16):
  x * sigmoid(conv1x1(ReLU(conv1x1(mean_HW x)))). Table 2's "CL-Attention"."""
  squeeze: int = 16

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = jnp.mean(x, axis=(1, 2), keepdims=True)
    y = nn.relu(nn.Conv(max(c // self.squeeze, 1), (1, 1), name="squeeze")(y))
    return x * nn.sigmoid(nn.Conv(c, (1, 1), name="excite")(y))


class ResBlock(nn.Module):
  """conv3x3 - ReLU - conv3x3, no bias, no normalisation, plus the input (the code's ClassicalResINBlock)."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = nn.relu(_conv(self.features, "conv0", use_bias=False)(x))
    return x + _conv(self.features, "conv1", use_bias=False)(y)


class SDAN(nn.Module):
  """The SDAN network (module docstring); `__call__(batch, train)` returns the prediction dict."""
  input: str = "raw"
  features: int = 64
  num_blocks: int = 16
  scale: int = 4
  offsets: str = "squared"
  attention: str = "cpa"
  reference_flips: bool = True
  shared_reference_conv: bool = False
  pack_size: int = 8
  kernel_size: int = 3
  mask_window: str = "centre"
  reference_antialias: bool = True
  inference_reference: str = "input"
  impl: str = "auto"

  def setup(self):
    _check_choice("model.input", self.input, INPUTS)
    _check_choice("model.offsets", self.offsets, OFFSETS)
    _check_choice("model.attention", self.attention, ATTENTIONS)
    _check_choice("model.inference_reference", self.inference_reference, REFERENCES)
    _check_choice("model.mask_window", self.mask_window, MASK_WINDOWS)
    if self.shared_reference_conv and INPUTS[self.input] != 3:
      raise ValueError("model.shared_reference_conv (the paper's 'same layer' reading) needs RGB input: the head "
                       f"takes {INPUTS[self.input]} channel(s) and the reference Y' has 3")
    if self.scale < 2 or self.scale & (self.scale - 1):
      raise ValueError(f"model.scale must be a power of two >= 2 (pixel-shuffle x2 stages), got {self.scale}")
    f, k = self.features, self.kernel_size
    self.head = _conv(f, "head")
    self.ref_conv = None if self.shared_reference_conv else _conv(f, "ref_conv")
    self.offset_convs = [_conv(f, f"offset_conv{i}", kernel_init=OFFSET_INIT) for i in range(2)]
    if self.attention == "cpa":
      self.offset_attention = [CrossPackingAttention(self.pack_size, name=f"offset_cpa{i}") for i in range(2)]
    elif self.attention == "cl":
      self.offset_attention = [ChannelAttention(name=f"offset_ca{i}") for i in range(2)]
    n_off = 2 if self.offsets == "squared" else 2 * k * k
    self.offset_out = _conv(n_off, "offset_out", kernel_init=OFFSET_INIT)
    if self.offsets == "squared":
      self.align_conv = deform.SquaredDeformConv(f, k, impl=self.impl, name="align_conv")
    else:
      self.align_conv = deform.DeformConv(f, k, impl=self.impl, name="align_conv")
    self.aligned_head = _conv(3, "aligned_head")
    self.body = [ResBlock(f, name=f"body_{i}") for i in range(self.num_blocks)]
    self.body_conv = _conv(f, "body_conv", use_bias=False)
    self.upsample = [_conv(4 * f, f"upsample_{i}") for i in range(int(math.log2(self.scale)))]
    self.tail = _conv(3, "tail")

  # ------------------------------------------------------------------------------------------------ branches

  def _reference_features(self, reference: jax.Array) -> jax.Array:
    if self.shared_reference_conv:
      views = [reference, reference[:, ::-1], reference[:, :, ::-1], reference[:, ::-1, ::-1]]
      views = views if self.reference_flips else views[:1]
      return sum(nn.relu(self.head(v)) for v in views) / len(views)
    return nn.relu(self.ref_conv(flips(reference) if self.reference_flips else reference))

  def _offsets(self, feat: jax.Array, reference: jax.Array) -> jax.Array:
    y = jnp.concatenate([feat, self._reference_features(reference)], axis=-1)
    for i, conv in enumerate(self.offset_convs):
      y = conv(y)
      if self.attention == "cpa":  # conv - CPA - ReLU (Fig. 2; the code's Sq_DFS_Attention)
        y = nn.relu(self.offset_attention[i](y))
      elif self.attention == "cl":  # conv - ReLU - CA (the code's DFS_CL_Attention)
        y = self.offset_attention[i](nn.relu(y))
      else:
        y = nn.relu(y)
    return self.offset_out(y)

  def _reconstruct(self, feat: jax.Array, offset: jax.Array) -> dict[str, jax.Array]:
    aligned = nn.relu(self.align_conv(feat, offset))
    x = aligned
    for block in self.body:
      x = block(x)
    x = aligned + self.body_conv(x)
    for conv in self.upsample:
      x = nn.relu(pixel_shuffle(conv(x), 2))
    return {"image": self.tail(x), "aligned": self.aligned_head(aligned)}

  def reconstruct_reach(self) -> int:
    """How far (LR px, rounded up) an output of `reconstruct` sees around its position with zero offsets: head,
    deformable conv, body and its conv (1 each per 3x3 conv), the x2 stages (1/2^i at 2^i times the size), tail."""
    k = self.kernel_size // 2
    stages = int(math.log2(self.scale))
    reach = k * (2 + 2 * self.num_blocks + 1) + sum(k / 2 ** i for i in range(stages)) + k / self.scale
    return int(math.ceil(reach))

  def mask(self, offset: jax.Array) -> jax.Array:
    """M of Eq. (6): (N, H, W, 1) float32, 1 where the (centre tap's) shifted window centre stays in the image."""
    if self.offsets == "per_point":
      centre = self.kernel_size * self.kernel_size // 2
      offset = offset[..., 2 * centre:2 * centre + 2]
    return squared_offset_mask(offset, kernel_size=MASK_WINDOWS[self.mask_window])

  # ------------------------------------------------------------------------------------------ entry points

  def predict_offsets(self, x: jax.Array, reference: jax.Array) -> jax.Array:
    """Theta for an input X (N, H, W, Cin) and reference Y' (N, H, W, 3); H, W multiples of `pack_size`."""
    return self._offsets(nn.relu(self.head(x)), reference)

  def reconstruct(self, x: jax.Array, offset: jax.Array) -> dict[str, jax.Array]:
    """{"image": X~ (N, sH, sW, 3), "aligned": X' (N, H, W, 3)} from X and given offsets (any H, W).

    Every layer here is a local convolution, so a tile of X with enough context gives the matching tile of X~
    (`jaxvfi.zoom` tiles large photos this way; CPA, whose attention is global, is in `predict_offsets`).
    """
    return self._reconstruct(nn.relu(self.head(x)), offset)

  def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> dict[str, jax.Array]:
    x, reference = model_inputs(batch, self.input, train, self.inference_reference, self.reference_antialias)
    h, w = x.shape[1:3]
    if self.input == "raw":  # pad the packed grid, so the mosaic keeps its Bayer phase
      x = unpack_bayer(pad_to_multiple(batch["lr_raw"], self.pack_size // 2)[0])
    else:
      x = pad_to_multiple(x, self.pack_size)[0]
    reference = pad_to_multiple(reference, self.pack_size)[0]
    feat = nn.relu(self.head(x))
    offset = self._offsets(feat, reference)
    preds = self._reconstruct(feat, offset)
    preds.update(mask=self.mask(offset), offset=offset, reference=reference)
    s = self.scale
    return {k: v[:, :s * h, :s * w] if k == "image" else v[:, :h, :w] for k, v in preds.items()}


def _check_choice(field: str, value: Any, choices) -> None:
  if value not in choices:
    raise ValueError(f"{field} must be one of {', '.join(choices)}, got {value!r}")


def bicubic_resize(image: jax.Array, height: int, width: int, antialias: bool = True) -> jax.Array:
  """(N, H, W, C) -> (N, height, width, C), bicubic (Keys a = -0.5), antialiased when shrinking if asked."""
  return jax.image.resize(image, (image.shape[0], height, width, image.shape[-1]), "bicubic", antialias=antialias)


def model_inputs(batch: dict[str, jax.Array], input_format: str, train: bool, inference_reference: str = "input",
                 antialias: bool = True) -> tuple[jax.Array, jax.Array]:
  """(X, Y') of a batch: X the 1-channel mosaic (from lr_raw) or lr_rgb; Y' (N, H, W, 3) the reference.

  Training (and inference_reference="target"): Y' = bicubic downscale of hr_rgb to X's size (Sec. 3.1).
  Inference: Y' = lr_rgb, the input itself for RGB input ({X, X}) and its camera RGB for RAW input.
  """
  x = unpack_bayer(batch["lr_raw"]) if input_format == "raw" else batch["lr_rgb"]
  h, w = x.shape[1:3]
  if train or inference_reference == "target":
    reference = bicubic_resize(batch["hr_rgb"], h, w, antialias)
  else:
    reference = batch["lr_rgb"]
    if reference.shape[1:3] != (h, w):
      raise ValueError(f"lr_rgb is {reference.shape[1]}x{reference.shape[2]} but the input is {h}x{w}")
  return x, reference


# ------------------------------------------------------------------------------------------------ the family


def model_kwargs(model_config) -> dict[str, Any]:
  """`SDAN` fields from `config.model` (a `table2` row name sets offsets, attention and reference_flips)."""
  get = model_config.get
  offsets, attention, flips_ = get("offsets", "squared"), get("attention", "cpa"), get("reference_flips", True)
  row = get("table2")
  if row:
    if row not in TABLE2:
      raise ValueError(f"model.table2 must be one of {', '.join(TABLE2)}, got {row!r}")
    offsets, attention, flips_ = TABLE2[row]
  return dict(input=get("input", "raw"), features=get("features", 64), num_blocks=get("num_blocks", 16),
              scale=get("scale", 4), offsets=offsets, attention=attention, reference_flips=bool(flips_),
              shared_reference_conv=bool(get("shared_reference_conv", False)), pack_size=get("pack_size", 8),
              mask_window=get("mask_window", "centre"), reference_antialias=bool(get("reference_antialias", True)),
              inference_reference=get("inference_reference", "input"), impl=get("impl", "auto"))


def build(model_config) -> SDAN:
  return SDAN(**model_kwargs(model_config))


PAPER_CROP = 64  # packed RAW crop of Sec. 4.1 (64x64 RAW, 128x128 RGB, 512x512 HR): the "sdan" preset's crop_size


def _packed_crop(config) -> int:
  """The training crop on the packed grid: data.augmentation_args.crop_size, else the preset's (the paper's) 64.

  Read from the config rather than the input pipeline, so the inference tools do not import grain and TFDS."""
  crop = dict(config.data.get("augmentation_args") or {}).get("crop_size") or PAPER_CROP
  return int(crop) if np.isscalar(crop) else int(crop[0])


def example_batch(config, batch_size: int = 1) -> dict[str, jax.Array]:
  """Zeros at the training shapes: packed RAW c x c (`data` crop, 64 by default), RGB 2c, target 8c."""
  c = _packed_crop(config)
  zeros = lambda size, ch: jnp.zeros((batch_size, size, size, ch), jnp.float32)
  return {"lr_raw": zeros(c, 4), "lr_rgb": zeros(2 * c, 3), "hr_rgb": zeros(8 * c, 3)}


def baselines(batch: dict[str, jax.Array], config) -> dict[str, jax.Array]:
  """Bicubic x`scale` of the input's camera RGB (Table 1's "Bicubic", RGB format)."""
  s = int(config.model.get("scale", 4))
  rgb = jnp.asarray(batch["lr_rgb"])
  return {"bicubic": bicubic_resize(rgb, s * rgb.shape[1], s * rgb.shape[2])}


# ------------------------------------------------------------------------------------------------ loss, Eq. (6)

PENALTIES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "l1": jnp.abs,
    "charbonnier": lambda d: jnp.sqrt(d * d + 1e-12),  # the code's charbonnier_loss, eps 1e-12
}


def _crop(x: jax.Array, border: int) -> jax.Array:
  if min(x.shape[1:3]) <= 2 * border:
    raise ValueError(f"loss.border crops {border} px per side of {x.shape[1]}x{x.shape[2]} images: nothing is left; "
                     "train on larger crops or lower loss.border")
  return x[:, border:x.shape[1] - border, border:x.shape[2] - border] if border else x


def align_loss(preds, batch, ctx) -> jax.Array:
  """mean(|X' - Y'| * M') over the LR crop (Eq. (6), first term); Y' is preds["reference"]."""
  del batch
  b = ctx["border"] // ctx["scale"]
  diff = ctx["penalty"](_crop(preds["aligned"], b) - _crop(preds["reference"], b))
  return jnp.mean(diff * _crop(preds["mask"], b))


def sr_loss(preds, batch, ctx) -> jax.Array:
  """mean(|X~ - Y| * M) over the HR crop, M the nearest-neighbour upsample of the LR mask (Eq. (6), second term)."""
  s, border = ctx["scale"], ctx["border"]
  mask = _crop(preds["mask"], border // s)
  mask = jnp.repeat(jnp.repeat(mask, s, axis=1), s, axis=2)
  diff = ctx["penalty"](_crop(preds["image"], border) - _crop(batch["hr_rgb"], border))
  return jnp.mean(diff * mask)


LOSS_TERMS = {"align": align_loss, "sr": sr_loss}


# Paper 004's Table 1 (SR-RAW 4x test split, Y channel, 32 px border crop): (PSNR dB, SSIM, LPIPS).
TABLE1 = {"raw": (30.53, 0.870, 0.133), "rgb": (29.05, 0.858, 0.149), "bicubic": (20.15, 0.615, 0.344)}


def notes(config) -> list[str]:
  """What every log and eval JSON of an SDAN run says beside its numbers: the paper's Table 1."""
  fmt = lambda row: f"{row[0]:.2f} dB / {row[1]:.3f} / {row[2]:.3f}"
  input_format = config.model.get("input", "raw")
  return [f"paper 004 Table 1 (SR-RAW 4x test, Y, 32 px crop; PSNR / SSIM / LPIPS): SDAN {input_format.upper()} "
          f"{fmt(TABLE1[input_format])}, bicubic {fmt(TABLE1['bicubic'])}"]


def make_loss_fn(config):
  """Eq. (6): L = |X' - Y'| * M' + |X~ - Y| * M, each a mean over all pixels and channels of the cropped images
  (the code's `torch.mean(loss * mask)`: masked-out pixels count in the denominator). The code crops `border`
  = 32 px per side at HR and 32 / scale = 8 at LR first. `config.loss`: weights {align, sr} (1, 1), penalty
  "l1" (the paper's |.|) or "charbonnier" (the code's sqrt(d^2 + 1e-12)), border. Returns (loss_fn, `notes`)."""
  loss_config = config.loss
  penalty = loss_config.get("penalty", "l1")
  _check_choice("loss.penalty", penalty, PENALTIES)
  scale, border = int(config.model.get("scale", 4)), int(loss_config.get("border", 32))
  if border % scale:
    raise ValueError(f"loss.border {border} must be a multiple of the scale {scale}")
  ctx = {"penalty": PENALTIES[penalty], "scale": scale, "border": border}
  weights = dict(loss_config.get("weights", {"align": 1.0, "sr": 1.0}))
  return losses.weighted_loss(weights, LOSS_TERMS, ctx), notes(config)
