"""jaxvfi: video frame interpolation and joint video restoration in JAX/Flax."""

__version__ = "0.1.0"
