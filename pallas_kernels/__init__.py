"""Pallas GPU kernels for jaxvfi, each with a `jnp` reference that is the CPU path and the test oracle.

Every op takes `impl="auto" | "pallas" | "xla"`: for "auto", the `jnp` reference (or a CPU formulation) off-GPU and
on a GPU the per-op choice of `common.auto_table()` (pallas_kernels/README.md); "pallas" on a CPU runs the same
kernel in interpret mode. All are differentiable (`jax.custom_vjp`). Depends on jax and numpy only, so its tests and
benchmarks run on a bare GPU machine.

  sepconv, sepconv_composite              separable local convolution (SepConv; composite dilation, SepConv-GAN §7)
  backward_warp                           bilinear backward warping (Super-SloMo / ReFIn, PWC-Net)
  deform_conv, squared_deform_conv        deformable convolution v1/v2 with deformable groups (DSFN) and squared
                                          offsets (SDAN)
  squared_offset_mask                     SDAN's mask of windows that stay inside the image
"""
from pallas_kernels.deform import deform_conv
from pallas_kernels.deform import deform_conv_reference
from pallas_kernels.deform import squared_deform_conv
from pallas_kernels.deform import squared_deform_conv_reference
from pallas_kernels.deform import squared_offset_mask
from pallas_kernels.separable import sepconv
from pallas_kernels.separable import sepconv_composite
from pallas_kernels.separable import sepconv_composite_reference
from pallas_kernels.separable import sepconv_reference
from pallas_kernels.warp import backward_warp
from pallas_kernels.warp import backward_warp_reference

__all__ = [
    "backward_warp", "backward_warp_reference", "deform_conv", "deform_conv_reference", "sepconv",
    "sepconv_composite", "sepconv_composite_reference", "sepconv_reference", "squared_deform_conv",
    "squared_deform_conv_reference", "squared_offset_mask",
]
