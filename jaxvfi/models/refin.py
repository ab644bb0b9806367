"""ReFIn (Dutta & Mittal, paper 000): Super-SloMo with a residual refinement module, as a model family.

The network is `jaxvfi.models.superslomo.FlowInterpolator` with `variant="refin"` (16-channel interpolation input,
refinement module Eq. (4)); the loss (Eq. (5)), the PWC-Net weights and the per-module learning rates are those of
`jaxvfi.models.superslomo`. `configs/refin.py` holds the recipe.
"""
from __future__ import annotations

from jaxvfi.models import superslomo
from jaxvfi.models.superslomo import example_batch, load_pretrained, make_loss_fn, make_train_setup  # noqa: F401

HAS_TIME_INPUT = True


def build(model_config) -> superslomo.FlowInterpolator:
  return superslomo.build(model_config, variant="refin")
