"""Backbone registry for the interpolation and refinement modules (Appendix A, ReFIn)."""
from __future__ import annotations

import importlib

import flax.linen as nn

# name -> (module path, class name, constructor kwargs). Imported lazily so a missing optional backbone file never
# breaks the others.
_BACKBONES = {
    "unet": ("jaxvfi.models.unet", "UNet", {}),
    "unetpp": ("jaxvfi.models.unetpp", "UNetPP", {}),
    "gridnet3": ("jaxvfi.models.gridnet", "GridNet", {"channels": (32, 64, 96)}),
    "gridnet4": ("jaxvfi.models.gridnet", "GridNet", {"channels": (32, 64, 96, 128)}),
}
NAMES = tuple(_BACKBONES)


def _resolve(name: str):
  if name not in _BACKBONES:
    raise ValueError(f"unknown backbone {name!r}; known: {', '.join(NAMES)}")
  module, cls, kwargs = _BACKBONES[name]
  return getattr(importlib.import_module(module), cls), kwargs


def build(name: str, out_channels: int, module_name: str | None = None) -> nn.Module:
  cls, kwargs = _resolve(name)
  return cls(out_channels=out_channels, name=module_name, **kwargs)


def alignment(name: str) -> int:
  """The multiple that the backbone needs for H and W."""
  cls, _ = _resolve(name)
  return int(getattr(cls, "ALIGN", 1))
