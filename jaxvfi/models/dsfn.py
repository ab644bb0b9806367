r"""DSFN (Choi & Park, paper 002): joint deblurring, x4 super-resolution and x2 frame interpolation.

Four blurry low-resolution frames (B_{t-4}, B_{t-2}, B_t, B_{t+2}) (every other 30-fps frame of a 60-fps output
grid) become sharp x r frames. One DSFN (Fig. 3, §3.2-3.6) takes three consecutive frames concatenated (9 channels at
LR) and makes three high-resolution feature maps at LR size, r^2 * 3 channels each:

  f^L = N_enc(B_0, B_2, B_4)                                 Eq. (2)   encoder: SubModule(64) - SubModule(128)
  f_2^DSR = N_DSR(f^L)                                       Eq. (4)   JDSR: 3 x SubModule(128)
  (Phi_1, Phi_3) = N_FI(f^L)                                 Eq. (5)   TFBFI: 2 x SubModule(128), offset head
  f_i^DSR = DefConv(f_2^DSR, Phi_i), i = 1, 3                Eq. (6)   two 3x3 deformable convs 128 -> 128
  f_i^{H,1} = N_dec(f_i^DSR) + f_i^{H,0}                     Eq. (7)   decoder: SubModule(64) - conv 64 -> 3 r^2
  f_1^{H,0} = Rep((B_0 + B_2) / 2), f_2^{H,0} = Rep(B_2), f_3^{H,0} = Rep((B_2 + B_4) / 2)    Eqs. (9)-(10)
  I_i = PS(f_i^H)                                            Eq. (11)  periodic shuffling x r

with SubModule(m) = conv(-> m) + two residual blocks (conv - LReLU - conv + identity), 3x3 convs, stride 1, LeakyReLU
0.1 (§4.3), and the decoder shared by the three outputs. We put a LeakyReLU after the SubModule's first conv (Fig. 4,
which would show it, did not survive the text extraction; it adds no parameters).

Two levels (Fig. 2, §3.7, Eq. (8)). Level 1 is one DSFN1 applied, with shared weights, to (B_{t-4}, B_{t-2}, B_t) and
to (B_{t-2}, B_t, B_{t+2}); it gives f^{H,1} at t-3, t-2, t-1, t, t+1, the two estimates of t-1 averaged. Level 2 is
a DSFN2 with its own weights whose encoder takes those five maps concatenated in time order (5 * 3 r^2 = 240
channels at r = 4, Eq. (3)); its JDSR output is the frame t-1 and its deformable convs give t-2 and t, each with the
level-1 map as the residual: f_i^{H,2} = N_dec(f_i^DSR) + f_i^{H,1} (Eq. (8)). `levels=1` keeps level 1 alone (the
"Proposed (single)" rows of Tables 1-2).

Pixel shuffle and Rep. PS follows Shi et al. [23] as PyTorch's `PixelShuffle` does: channel c * r^2 + i * r + j of
the LR map goes to sub-pixel (i, j) of colour c. Rep repeats each colour r^2 times in a row (channels R..R G..G
B..B), the one order in which PS(Rep(B)) is the nearest-neighbour upsampling of B, so that the decoder learns a
residual over a plain upscaled input (tested).

Unstated details and their readings (config fields; parameter counts of the whole two-level network at r = 4, with
level 1 / level 2 for the default):
  offset head (`offset_head`): one 3x3 conv 128 -> 2 DCNs x G x 2 x 9 (x 3 x 9 for DCN v2: offsets and masks) at
    the end of TFBFI. One conv per DCN ("per_dcn") has the same count.
  deformable groups (`offset_groups`): G = 8, as in TDAN [51] which DSFN cites for its alignment.
  shared or separate DCNs (`shared_dcn`): separate.
  DCN v1 or v2 (`modulated`): v1, Dai et al. [50] as cited.
  | offset_groups | modulated | shared_dcn | parameters |
  |---|---|---|---|
  | 8 | False | False | **10,899,424** (5,383,184 + 5,516,240): the paper's 10.9 M (Table 3); the default |
  | 8 | False | True  | 10,604,256 |
  | 8 | True  | False | 11,231,488 |
  | 8 | True  | True  | 10,936,320 (also rounds to 10.9 M, but needs two unstated additions: masks and sharing) |
  | 1 | False | False | 10,318,312 |
  | 1 | False | True  | 10,023,144 |
  | 1 | True  | False | 10,359,820 |
  | 1 | True  | True  | 10,064,652 |
  | levels=1, default otherwise | | | 5,383,184 |
Initialisation (`conv_init`): "pytorch" (the authors' framework, §4.3: PyTorch's default conv init, weights and biases
uniform in +-1/sqrt(fan_in)) or "flax" (lecun_normal weights, zero biases). The offset head (`offset_init`): "zeros"
(each DCN starts as a plain conv; EDVR's and mmcv's DCN modules do this) or "conv_init" (as the other convs).

Batch (`jaxvfi.input_pipeline`, the restoration sequence scheme): blurry (B, 4, h, w, 3) and sharp (B, 7, r h, r w, 3)
at times 0, 0.5, ..., 3 in units of the blurry interval (B_{t-4} at 0). Predictions:
  image:  (B, 3, r h, r w, 3) the final frames at t-2, t-1, t (sharp indices 2, 3, 4): key frame, interpolated frame,
          key frame (level 2, or level 1 with levels=1);
  level1: (B, 5, r h, r w, 3) level-1 frames at t-3 ... t+1 (sharp indices 1 ... 5);
  level2: (B, 3, r h, r w, 3) level-2 frames at t-2, t-1, t (levels=2 only).
Loss (Eq. (12)): (1/5) sum of the per-frame mean absolute errors of level 1 + (1/3) the same over level 2: the loss
terms `level1_l1` and `level2_l1` (`make_loss_fn`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import einops
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvfi import losses
from jaxvfi.layers import deform

NUM_INPUTS = 4  # B_{t-4}, B_{t-2}, B_t, B_{t+2}
LEVEL1_FRAMES = (1, 2, 3, 4, 5)  # sharp indices (times 0.5 ... 2.5) of the level-1 outputs t-3 ... t+1
LEVEL2_FRAMES = (2, 3, 4)  # sharp indices (times 1, 1.5, 2) of the level-2 outputs t-2, t-1, t
IMAGE_FRAMES = LEVEL2_FRAMES  # preds["image"], for either number of levels
KEYFRAMES = (0, 2)  # indices into preds["image"]: the deblurred and up-scaled input frames B_{t-2}, B_t
INTERPOLATED = (1,)  # the interpolated frame t-1
OFFSET_HEADS = ("conv", "per_dcn")
OFFSET_INITS = ("zeros", "conv_init")
INITS = ("pytorch", "flax")
NEGATIVE_SLOPE = 0.1  # LeakyReLU slope (§4.3)


def lrelu(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, negative_slope=NEGATIVE_SLOPE)


def pytorch_conv_init(fan_in: int) -> tuple[Callable, Callable]:
  """PyTorch's default `nn.Conv2d` initialisation (kaiming_uniform with a = sqrt(5)): weights and biases uniform in
  +-1 / sqrt(fan_in)."""
  bound = 1.0 / np.sqrt(fan_in)
  uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)
  return uniform, uniform


def _inits(init: str, fan_in: int) -> tuple[Callable, Callable]:
  if init == "pytorch":
    return pytorch_conv_init(fan_in)
  if init == "flax":
    return nn.initializers.lecun_normal(), nn.initializers.zeros_init()
  if init == "zeros":
    return nn.initializers.zeros_init(), nn.initializers.zeros_init()
  raise ValueError(f"model.conv_init must be one of {INITS}, got {init!r}")


def make_conv3x3(in_features: int, features: int, name: str, init: str) -> nn.Conv:
  """3x3 conv, stride 1, zero "same" padding (§4.3), created in the calling module's scope as `name`."""
  kernel_init, bias_init = _inits(init, 9 * in_features)
  return nn.Conv(features, (3, 3), padding=1, kernel_init=kernel_init, bias_init=bias_init, name=name)


def conv3x3(x: jax.Array, features: int, name: str, init: str) -> jax.Array:
  return make_conv3x3(x.shape[-1], features, name, init)(x)


def pixel_shuffle(x: jax.Array, scale: int) -> jax.Array:
  """Periodic shuffling PS (Eq. (11); Shi et al. [23], PyTorch's channel order): (..., h, w, C r^2) -> (..., r h, r w,
  C), channel c * r^2 + i * r + j going to sub-pixel row i, column j of colour c."""
  return einops.rearrange(x, "... h w (c i j) -> ... (h i) (w j) c", i=scale, j=scale)


def pixel_unshuffle(x: jax.Array, scale: int) -> jax.Array:
  """The inverse of `pixel_shuffle`: (..., r h, r w, C) -> (..., h, w, C r^2)."""
  return einops.rearrange(x, "... (h i) (w j) c -> ... h w (c i j)", i=scale, j=scale)


def repeat_channels(x: jax.Array, scale: int) -> jax.Array:
  """Rep of Eq. (10): each colour repeated r^2 times in a row, so that `pixel_shuffle(repeat_channels(x, r), r)` is
  the nearest-neighbour upsampling of x."""
  return jnp.repeat(x, scale * scale, axis=-1)


class ResBlock(nn.Module):
  """Residual block [52]: conv - LReLU - conv + identity (Fig. 4b)."""
  features: int
  conv_init: str = "pytorch"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = lrelu(conv3x3(x, self.features, "conv0", self.conv_init))
    return x + conv3x3(y, self.features, "conv1", self.conv_init)


class SubModule(nn.Module):
  """SubModule(m) (Fig. 4a, §4.3): a 3x3 conv to m channels, LeakyReLU, two residual blocks of m channels."""
  features: int
  conv_init: str = "pytorch"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = lrelu(conv3x3(x, self.features, "conv", self.conv_init))
    for i in range(2):
      x = ResBlock(self.features, self.conv_init, name=f"block{i}")(x)
    return x


class DSFNLevel(nn.Module):
  """One DSFN (Fig. 3): three high-resolution feature maps at LR size from an LR input and three residuals.

  `__call__(x, residuals)`: x (B, h, w, C_in), the concatenated inputs (9 channels for DSFN1, 5 * 3 r^2 for DSFN2);
  residuals: three (B, h, w, 3 r^2) maps f_i^{H,0} (Eq. (10)) or f_i^{H,1} (Eq. (8)). Returns [f_1, f_2, f_3], each
  (B, h, w, 3 r^2): the two warped (interpolated) frames around the JDSR frame f_2.
  """
  scale: int = 4
  offset_groups: int = 8
  modulated: bool = False
  shared_dcn: bool = False
  offset_head: str = "conv"
  offset_init: str = "zeros"
  conv_init: str = "pytorch"
  impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, residuals: Sequence[jax.Array]) -> list[jax.Array]:
    if self.offset_head not in OFFSET_HEADS:
      raise ValueError(f"model.offset_head must be one of {OFFSET_HEADS}, got {self.offset_head!r}")
    if self.offset_init not in OFFSET_INITS:
      raise ValueError(f"model.offset_init must be one of {OFFSET_INITS}, got {self.offset_init!r}")
    sub = lambda features, name: SubModule(features, self.conv_init, name=name)
    f_l = sub(128, "encoder_1")(sub(64, "encoder_0")(x))  # Eq. (2) / (3)
    f2 = f_l
    for i in range(3):  # JDSR, Eq. (4)
      f2 = sub(128, f"jdsr_{i}")(f2)
    t = f_l
    for i in range(2):  # TFBFI, Eq. (5)
      t = sub(128, f"tfbfi_{i}")(t)
    taps = 9
    n_off = 2 * self.offset_groups * taps  # (dy, dx) per group and tap
    per_dcn = n_off + (self.offset_groups * taps if self.modulated else 0)  # [and a mask]
    head_init = "zeros" if self.offset_init == "zeros" else self.conv_init
    if self.offset_head == "conv":
      heads = jnp.split(conv3x3(t, 2 * per_dcn, "offsets", head_init), 2, axis=-1)
    else:
      heads = [conv3x3(t, per_dcn, f"offsets_{i}", head_init) for i in (1, 3)]
    kernel_init, bias_init = _inits(self.conv_init, taps * f2.shape[-1])
    dcn = lambda name: deform.DeformConv(128, 3, offset_groups=self.offset_groups, modulated=self.modulated,
                                         impl=self.impl, kernel_init=kernel_init, bias_init=bias_init, name=name)
    dcns = [dcn("dcn")] * 2 if self.shared_dcn else [dcn("dcn_1"), dcn("dcn_3")]
    warped = []
    for layer, head in zip(dcns, heads):  # Eq. (6)
      mask = jax.nn.sigmoid(head[..., n_off:]) if self.modulated else None
      warped.append(layer(f2, head[..., :n_off], mask))
    decoder = sub(64, "decoder")  # one decoder for the three maps (§3.5)
    decoder_out = make_conv3x3(64, 3 * self.scale ** 2, "decoder_out", self.conv_init)
    out = [decoder_out(decoder(f)) for f in (warped[0], f2, warped[1])]
    return [o + res for o, res in zip(out, residuals)]  # Eqs. (7)-(8)


class DSFN(nn.Module):
  """Two-level DSFN (Fig. 2) on the restoration batch; see the module docstring for the inputs and predictions."""
  levels: int = 2
  scale: int = 4
  offset_groups: int = 8
  modulated: bool = False
  shared_dcn: bool = False
  offset_head: str = "conv"
  offset_init: str = "zeros"
  conv_init: str = "pytorch"
  impl: str = "auto"

  def _level(self, name: str) -> DSFNLevel:
    return DSFNLevel(scale=self.scale, offset_groups=self.offset_groups, modulated=self.modulated,
                     shared_dcn=self.shared_dcn, offset_head=self.offset_head, offset_init=self.offset_init,
                     conv_init=self.conv_init, impl=self.impl, name=name)

  @nn.compact
  def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> dict[str, jax.Array]:
    del train  # no dropout or batch norm
    if self.levels not in (1, 2):
      raise ValueError(f"model.levels must be 1 or 2, got {self.levels}")
    blurry = jnp.asarray(batch["blurry"], jnp.float32)
    if blurry.ndim != 5 or blurry.shape[1] != NUM_INPUTS or blurry.shape[-1] != 3:
      raise ValueError(f"DSFN takes blurry frames (B, {NUM_INPUTS}, h, w, 3) (B_t-4, B_t-2, B_t, B_t+2), got "
                       f"{blurry.shape}")
    r = self.scale
    b = [blurry[:, i] for i in range(NUM_INPUTS)]
    rep = lambda img: repeat_channels(img, r)
    level1 = self._level("level1")  # one module called twice: the two DSFN1s share their weights (Fig. 2)

    def dsfn1(b0, b2, b4):
      residuals = [rep(0.5 * (b0 + b2)), rep(b2), rep(0.5 * (b2 + b4))]  # Eqs. (9)-(10)
      return level1(jnp.concatenate([b0, b2, b4], axis=-1), residuals)

    first, second = dsfn1(b[0], b[1], b[2]), dsfn1(b[1], b[2], b[3])
    f1 = [first[0], first[1], 0.5 * (first[2] + second[0]), second[1], second[2]]  # t-3 ... t+1
    preds = {"level1": pixel_shuffle(jnp.stack(f1, axis=1), r)}
    if self.levels == 1:
      preds["image"] = preds["level1"][:, 1:4]
      return preds
    f2 = self._level("level2")(jnp.concatenate(f1, axis=-1), f1[1:4])  # Eqs. (3), (8)
    preds["level2"] = pixel_shuffle(jnp.stack(f2, axis=1), r)
    preds["image"] = preds["level2"]
    return preds


def build(model_config) -> DSFN:
  return DSFN(levels=int(model_config.get("levels", 2)), scale=int(model_config.get("scale", 4)),
              offset_groups=int(model_config.get("offset_groups", 8)),
              modulated=bool(model_config.get("modulated", False)),
              shared_dcn=bool(model_config.get("shared_dcn", False)),
              offset_head=str(model_config.get("offset_head", "conv")),
              offset_init=str(model_config.get("offset_init", "zeros")),
              conv_init=str(model_config.get("conv_init", "pytorch")), impl=str(model_config.get("impl", "auto")))


# ----------------------------------------------------------------------------------------------------------------
# The family protocol (`jaxvfi.families`): batch, loss (Eq. (12)), baselines.

EVALUATOR = "restoration"
TRAIN_CROP = 256  # HR training crop (§4.2), the `dsfn` augmentation preset's crop_size


def _scale_and_crop(config) -> tuple[int, int]:
  """(r, HR training side): config.model.scale and the `dsfn` preset's crop (`data.augmentation_args.crop_size`, else
  the preset's 256). Read without importing the input pipeline, so that inference needs neither grain nor TFDS."""
  scale = int(config.model.get("scale", 4))
  data = config.get("data")
  args = (data.get("augmentation_args") if data is not None else None) or {}
  crop = args.get("crop_size") or TRAIN_CROP
  side = int(crop) if np.isscalar(crop) else int(crop[0])
  if side % scale:
    raise ValueError(f"the training crop {side} is not a multiple of model.scale {scale}")
  return scale, side


def example_batch(config, batch_size: int = 1) -> dict[str, jax.Array]:
  """A zero restoration batch at the training shapes: blurry (B, 4, s/r, s/r, 3), sharp (B, 7, s, s, 3), times."""
  scale, side = _scale_and_crop(config)
  low = side // scale
  num_sharp = 2 * NUM_INPUTS - 1
  return {"blurry": jnp.zeros((batch_size, NUM_INPUTS, low, low, 3), jnp.float32),
          "sharp": jnp.zeros((batch_size, num_sharp, side, side, 3), jnp.float32),
          "blurry_times": jnp.broadcast_to(jnp.arange(NUM_INPUTS, dtype=jnp.float32), (batch_size, NUM_INPUTS)),
          "sharp_times": jnp.broadcast_to(jnp.arange(num_sharp, dtype=jnp.float32) / 2, (batch_size, num_sharp))}


def _frame_l1(pred: jax.Array, sharp: jax.Array, frames: Sequence[int]) -> jax.Array:
  """(1/|frames|) sum over the frames of the per-frame mean absolute error (the MAE of Eq. (12))."""
  if sharp.shape[1] != 2 * NUM_INPUTS - 1:
    raise ValueError(f"the DSFN loss needs the {2 * NUM_INPUTS - 1} sharp frames t-4 ... t+2, got {sharp.shape}")
  per_frame = jnp.mean(jnp.abs(pred - sharp[:, np.asarray(frames)]), axis=(2, 3, 4))  # (B, frames)
  return jnp.mean(per_frame)


def level1_l1(preds, batch, ctx):
  """(1/5) sum_{i in Omega_1} ||I_i^{H,1} - I_i^GT||_1 of Eq. (12): the level-1 frames t-3 ... t+1."""
  del ctx
  return _frame_l1(preds["level1"], batch["sharp"], LEVEL1_FRAMES)


def level2_l1(preds, batch, ctx):
  """(1/3) sum_{i in Omega_2} ||I_i^{H,2} - I_i^GT||_1 of Eq. (12): the level-2 frames t-2, t-1, t."""
  del ctx
  if "level2" not in preds:
    raise ValueError("loss term level2_l1 needs the level-2 frames: model.levels=1 has none (set its weight to 0)")
  return _frame_l1(preds["level2"], batch["sharp"], LEVEL2_FRAMES)


LOSS_TERMS = {"level1_l1": level1_l1, "level2_l1": level2_l1}


def make_loss_fn(config):
  """Eq. (12) as the weighted terms `config.loss.weights` (level1_l1: 1, level2_l1: 1 in configs/dsfn.py)."""
  return losses.weighted_loss(config.loss.weights, LOSS_TERMS), []


def bicubic_upsample(frames: jax.Array, scale: int) -> jax.Array:
  """(..., h, w, C) -> (..., r h, r w, C) by `jax.image.resize`'s bicubic (Keys a = -0.5) kernel."""
  frames = jnp.asarray(frames, jnp.float32)
  h, w = frames.shape[-3:-1]
  return jax.image.resize(frames, frames.shape[:-3] + (scale * h, scale * w, frames.shape[-1]), method="bicubic")


def baselines(batch, config) -> dict[str, jax.Array]:
  """The trivial prediction beside the model, in the layout of preds["image"] (B, 3, r h, r w, 3): "bicubic" is the
  bicubic upsampling of the blurry key frames B_{t-2} and B_t, and for the interpolated frame t-1 the mean of those
  two upsampled neighbours."""
  scale = int(config.model.get("scale", 4))
  up = bicubic_upsample(jnp.asarray(batch["blurry"])[:, 1:3], scale)
  return {"bicubic": jnp.stack([up[:, 0], 0.5 * (up[:, 0] + up[:, 1]), up[:, 1]], axis=1)}
