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


def build(name: str, out_channels: int, module_name: str | None = None, **options) -> nn.Module:
  """The backbone `name` with `out_channels`; `options` are extra attributes of its class (e.g. UNet's
  `output_leaky_relu`), a ValueError if the class has no such attribute."""
  cls, kwargs = _resolve(name)
  unknown = sorted(set(options) - set(getattr(cls, "__dataclass_fields__", {})))
  if unknown:
    raise ValueError(f"backbone {name!r} has no option(s) {unknown}")
  return cls(out_channels=out_channels, name=module_name, **kwargs, **options)


def alignment(name: str) -> int:
  """The multiple that the backbone needs for H and W."""
  cls, _ = _resolve(name)
  return int(getattr(cls, "ALIGN", 1))
