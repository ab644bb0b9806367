"""Deformable convolution layers: DCN v1/v2 for DSFN (Eq. (6), DSFN) and SDAN's squared deformable conv (Eq. (5)).

The offset-predicting convolutions belong to the models (DSFN's TFBFI module predicts the offset fields Phi_1 and
Phi_3, Eq. (5), DSFN; SDAN's offset learning module predicts one (dy, dx) per window). These layers hold only the
deformable convolution's own `kernel` (k, k, Cin, features) and `bias`, named and initialised like `nn.Conv`, so a
zero offset (and, for DCN v2, a unit mask) reproduces `nn.Conv(features, (k, k), padding="SAME")` with the same
parameters.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from pallas_kernels import deform as deform_ops

Initializer = Callable[..., jax.Array]


class DeformConv(nn.Module):
  """Deformable convolution, stride 1, "same" padding (Dai et al. 2017; DSFN's `DefConv(f, Phi)`, Eq. (6)).

  `__call__(x, offset, mask=None)`: x (N,H,W,Cin); offset (N,H,W,2*G*k*k); mask (N,H,W,G*k*k) for DCN v2. Returns
  (N,H,W,features).

  Attributes:
    features: output channels.
    kernel_size: odd k; the offsets carry 2*G*k*k channels, (dy, dx) per group and tap in row-major tap order
      (channel g*2K + 2t is dy of tap t in group g: torchvision's convention).
    offset_groups: G deformable groups, a divisor of Cin: group g samples input channels [g*Cin/G, (g+1)*Cin/G) at
      its own offsets (and mask). The parameters do not depend on G.
    use_bias: add a learned bias.
    modulated: DCN v2: `__call__` then needs a (N,H,W,G*k*k) modulation mask (usually a sigmoid).
    impl: "auto" (on a GPU the Pallas forward with XLA's backward until GPU timings decide otherwise, see
      pallas_kernels/README.md; the `jnp` reference elsewhere), "pallas" or "xla".
  """
  features: int
  kernel_size: int = 3
  offset_groups: int = 1
  use_bias: bool = True
  modulated: bool = False
  impl: str = "auto"
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, offset: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    if self.modulated != (mask is not None):
      raise ValueError(f"DeformConv(modulated={self.modulated}) needs {'a' if self.modulated else 'no'} mask")
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    return deform_ops.deform_conv(x, offset, kernel, bias, mask, offset_groups=self.offset_groups, impl=self.impl)


class SquaredDeformConv(nn.Module):
  """SDAN's squared deformable convolution (Eq. (5), SDAN): one (dy, dx) offset shared by every tap of a window.

  `offset` is (N,H,W,2). The mask M of the loss (Eq. (6), SDAN) is `pallas_kernels.deform.squared_offset_mask`.
  """
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  impl: str = "auto"
  kernel_init: Initializer = nn.initializers.lecun_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, offset: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    return deform_ops.squared_deform_conv(x, offset, kernel, bias, impl=self.impl)
