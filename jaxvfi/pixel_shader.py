"""SepConv-GAN's inference pixel shader (paper 003 §5 "Inference", Algorithm 1), usable with any model's output.

Static, similar-coloured areas of two frames should come out of an interpolator as their average: the shader pulls
the predicted frame Î towards a = (I0 + I1) / 2 wherever the two input frames barely differ. With every value on the
0-255 scale:

  D = mean_c |I0 - I1|                         (per pixel; the paper's "Σ_c ||I1 - I2|| / 3")
  B = D * K                                    (K a normalised Gaussian: the blend map, Eq. in §5)
  f = (clamp(B, LO, T) - LO) / (T - LO)        (inverse_lerp of the clamped blend value)
  out = a + f (Î - a)  where B < T,  Î elsewhere   (lerp, one channel at a time)

so out = a where B <= LO, a linear blend for LO < B < T, and Î for B >= T. The printed Algorithm 1 reads
`b <- (I1[..., 1] + I2[..., 1]) / 2` and `g <- ... [..., 2]` (green and blue swapped), a typo: every channel here
blends with its own average, as in the authors' shader kernel.

Two sets of constants (`SHADERS`):
  * "paper" (default): T = 6, LO = 2 (Algorithm 1), B the blur of D itself. The paper gives no kernel radius
    ("a Gaussian 2D kernel of a given radius"); we take the code's 21x21, sigma = 10, with symmetric edge padding.
  * "code" (Sergio0694/sepconv-gan, `NEAREST_SHADER_MODULE` and `nearest_shader.cu.cc` of 2018-10-12): T = 8.1,
    LO = 2, and the "processed difference" of the paper's Fig. 7: D' = 8 clip(D, 0, 32) clipped to [0, 255], blurred
    by the same 21x21 Gaussian (sigma = 10, symmetric padding of 10), then clipped to [0, 255].
"""
from __future__ import annotations

import dataclasses

import dm_pix
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ShaderConstants:
  """T, LO (0-255 units), the Gaussian's side and sigma (pixels), and the code's scaling of D (None: the paper's)."""
  threshold: float
  low: float
  kernel_size: int = 21
  sigma: float = 10.0
  difference_gain: float | None = None   # D' = gain * clip(D, 0, difference_clip), clipped to [0, 255]
  difference_clip: float | None = None


SHADERS = {
    "paper": ShaderConstants(threshold=6.0, low=2.0),
    "code": ShaderConstants(threshold=8.1, low=2.0, difference_gain=8.0, difference_clip=32.0),
}


def _constants(mode: str | ShaderConstants) -> ShaderConstants:
  if isinstance(mode, ShaderConstants):
    return mode
  if mode not in SHADERS:
    raise ValueError(f"pixel shader must be one of {tuple(SHADERS)}, got {mode!r}")
  return SHADERS[mode]


def blend_map(frame0: jax.Array, frame1: jax.Array, mode: str | ShaderConstants = "paper") -> jax.Array:
  """B of Algorithm 1: (N, H, W, 3) frames in [0, 1] -> (N, H, W) on the 0-255 scale (module docstring)."""
  c = _constants(mode)
  diff = jnp.mean(jnp.abs(frame0.astype(jnp.float32) - frame1.astype(jnp.float32)), axis=-1) * 255.0
  if c.difference_gain is not None:
    diff = jnp.clip(c.difference_gain * jnp.clip(diff, 0.0, c.difference_clip), 0.0, 255.0)
  r = c.kernel_size // 2
  padded = jnp.pad(diff[..., None], ((0, 0), (r, r), (r, r), (0, 0)), mode="symmetric")
  blurred = dm_pix.gaussian_blur(padded, c.sigma, c.kernel_size, padding="VALID")[..., 0]
  if c.difference_gain is not None:
    blurred = jnp.clip(blurred, 0.0, 255.0)
  return blurred


def pixel_shader(frame0: jax.Array, frame1: jax.Array, image: jax.Array,
                 mode: str | ShaderConstants = "paper") -> jax.Array:
  """Algorithm 1 of paper 003 on a predicted frame.

  Args:
    frame0, frame1: (N, H, W, 3) the input frames, RGB in [0, 1].
    image: (N, H, W, 3) the model's frame between them, in [0, 1] (values outside are blended as they are).
    mode: "paper" | "code" | a `ShaderConstants`.

  Returns:
    (N, H, W, 3) float32 in the units of the inputs.
  """
  if not frame0.shape == frame1.shape == image.shape or image.ndim != 4:
    raise ValueError(f"pixel_shader needs frame0, frame1 and image of one (N, H, W, 3) shape, got {frame0.shape}, "
                     f"{frame1.shape}, {image.shape}")
  c = _constants(mode)
  b = blend_map(frame0, frame1, c)[..., None]
  average = 0.5 * (frame0.astype(jnp.float32) + frame1.astype(jnp.float32))
  f = (jnp.clip(b, c.low, c.threshold) - c.low) / (c.threshold - c.low)
  image = image.astype(jnp.float32)
  return jnp.where(b < c.threshold, average + f * (image - average), image)
