"""Pallas GPU kernels for jaxvfi, each with a `jnp` reference that is the CPU path and the test oracle.

Depends on jax and numpy only, so its tests and benchmarks run on a bare GPU machine.
"""
from pallas_kernels.warp import backward_warp, backward_warp_reference

__all__ = ["backward_warp", "backward_warp_reference"]
