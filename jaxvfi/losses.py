"""Loss terms, looked up by name and weighted by `config.loss.weights` (Eq. (5), ReFIn; Super-SloMo §3.3).

Images are in [0, 1], so the paper weights (204, 0.005, 102, 1) are Super-SloMo's (0.8, 0.005, 0.4, 1) with the
L1-type terms scaled by 255: 204 * L1 on [0, 1] equals 0.8 * L1 on [0, 255].

Terms (each a function `(preds, batch, ctx) -> scalar`):
  l1          reconstruction L_r = mean |I_t_pred - I_t|
  warp        L_w = |bw(I0, F^t->0) - It| + |bw(I1, F^t->1) - It| + |bw(I0, F1->0) - I1| + |bw(I1, F0->1) - I0|
              (each a mean; F^ are the Eq. (1) approximations, as in Super-SloMo's reference code)
  smoothness  L_s = mean |grad F0->1| + mean |grad F1->0| (first differences along x and y)
  perceptual  L_p = mean (phi(I_t_pred) - phi(I_t))^2 with phi a VGG-19 layer (`loss.perceptual_layer`,
              default relu4_4); needs pretrained weights (`loss.vgg_weights`), else the term is dropped with a note.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxvfi import torch_weights
from jaxvfi.models import vgg
import pallas_kernels


def l1_loss(preds, batch, ctx):
  del ctx
  return jnp.mean(jnp.abs(preds["image"] - batch["target"]))


def warp_loss(preds, batch, ctx):
  warp = lambda img, flow: pallas_kernels.backward_warp(img, flow, padding=ctx["warp_padding"],
                                                        impl=ctx["warp_impl"])
  f0, f1, target = batch["frame0"], batch["frame1"], batch["target"]
  terms = [
      jnp.mean(jnp.abs(warp(f0, preds["flow_t0_approx"]) - target)),
      jnp.mean(jnp.abs(warp(f1, preds["flow_t1_approx"]) - target)),
      jnp.mean(jnp.abs(warp(f0, preds["flow_10"]) - f1)),
      jnp.mean(jnp.abs(warp(f1, preds["flow_01"]) - f0)),
  ]
  return sum(terms)


def _smooth(flow):
  total = jnp.zeros((), jnp.float32)
  if flow.shape[2] > 1:  # a one-pixel-wide axis has no differences (mean of nothing would be NaN)
    total = total + jnp.mean(jnp.abs(flow[:, :, 1:] - flow[:, :, :-1]))
  if flow.shape[1] > 1:
    total = total + jnp.mean(jnp.abs(flow[:, 1:] - flow[:, :-1]))
  return total


def smoothness_loss(preds, batch, ctx):
  del batch, ctx
  return _smooth(preds["flow_01"]) + _smooth(preds["flow_10"])


def perceptual_loss(preds, batch, ctx):
  phi = ctx["vgg_features"]
  return jnp.mean(jnp.square(phi(preds["image"]) - phi(batch["target"])))


TERMS: dict[str, Callable] = {
    "l1": l1_loss,
    "warp": warp_loss,
    "smoothness": smoothness_loss,
    "perceptual": perceptual_loss,
}


def _vgg_feature_fn(loss_config) -> Callable | None:
  path = loss_config.get("vgg_weights")
  if not path:
    return None
  layer = loss_config.get("perceptual_layer", "relu4_4")
  params = torch_weights.load_params(vgg.TORCH_LAYOUT, path)
  net = vgg.VGG19(output_layer=layer)
  # The VGG parameters are closed over as constants: they are not trained and not checkpointed.
  return lambda x: net.apply({"params": params}, x)[layer]


def weighted_loss(weights: dict[str, float], terms: dict[str, Callable], ctx: dict[str, Any] | None = None):
  """`loss_fn(preds, batch) -> (total, metrics)`: the sum of weights[name] * terms[name](preds, batch, ctx).

  Each term is reported as metrics["loss_<name>"] and the total as metrics["loss"]. Unknown names raise.
  """
  weights = {k: float(v) for k, v in dict(weights).items() if float(v) != 0.0}
  unknown = sorted(set(weights) - set(terms))
  if unknown:
    raise ValueError(f"unknown loss term(s) {unknown}; known: {sorted(terms)}")
  ctx = dict(ctx or {})

  def loss_fn(preds, batch):
    metrics = {}
    total = jnp.zeros((), jnp.float32)
    for name, w in weights.items():
      value = terms[name](preds, batch, ctx).astype(jnp.float32)
      metrics[f"loss_{name}"] = value
      total = total + w * value
    metrics["loss"] = total
    return total, metrics

  return loss_fn


def make_loss_fn(loss_config, ctx: dict[str, Any] | None = None, terms: dict[str, Callable] | None = None
                 ) -> tuple[Callable[[dict, dict], tuple[jax.Array, dict]], list[str]]:
  """Builds `loss_fn(preds, batch) -> (total, metrics)` from `config.loss`; also returns notes for the log/eval JSON.

  Args:
    loss_config: `config.loss`: `weights` {term name: weight}, and for the perceptual term `vgg_weights` and
      `perceptual_layer`.
    ctx: what the terms read besides predictions and batch (the warp term: warp_padding, warp_impl); a family's
      `make_loss_fn` passes its own.
    terms: name -> term; default `TERMS`.

  Unknown term names raise; a weighted perceptual term without VGG weights is dropped with a note (never trained
  with random VGG features).
  """
  terms = TERMS if terms is None else terms
  weights = {k: float(v) for k, v in dict(loss_config.weights).items() if float(v) != 0.0}
  notes = []
  ctx = {"warp_padding": "zeros", "warp_impl": "auto", **(ctx or {})}
  if "perceptual" in weights and "vgg_features" not in ctx:
    phi = _vgg_feature_fn(loss_config)
    if phi is None:
      notes.append("perceptual loss term disabled: loss.vgg_weights is not set (no pretrained VGG-19 weights); "
                   "training without it")
      del weights["perceptual"]
    else:
      ctx["vgg_features"] = phi
  return weighted_loss(weights, terms, ctx), notes
