"""Super-SloMo (Jiang et al. 2018) and ReFIn (Dutta & Mittal): flow-based interpolation with visibility maps.

Both share the pipeline of ReFIn §3:
  flow module        F0->1, F1->0 from (I0, I1)                        (Super-SloMo's flow UNet or PWC-Net)
  Eq. (1)            F^t->0 = -(1-t) t F0->1 + t^2 F1->0,   F^t->1 = (1-t)^2 F0->1 - t (1-t) F1->0
  interpolation      residual flows dF and visibility logit; Eq. (2) Ft->0 = F^t->0 + dFt->0 (same for t->1),
                     Vt->0 = sigmoid(.), Vt->1 = 1 - Vt->0
  Eq. (3)            I^t = ((1-t) Vt->0 bw(I0, Ft->0) + t Vt->1 bw(I1, Ft->1)) / ((1-t) Vt->0 + t Vt->1)
  refinement (ReFIn) Eq. (4) It = I^t + dI^t from (I0, I1, Ft->0, Ft->1, Vt->0, two warped frames, I^t)

The interpolation module of Super-SloMo sees 20 channels (I0, I1, F0->1, F1->0, F^t->1, F^t->0, bw(I1, F^t->1),
bw(I0, F^t->0)); ReFIn's sees 16 (I0, I1, F^t->0, F^t->1, bw(I0, F^t->0), bw(I1, F^t->1)) and its refinement module
20. Images are in [0, 1]; the networks see them minus `input_mean`. Flows are in pixels, (dx, dy).

Ours (the defaults, for training from scratch) and the Super-SloMo release (avinashpaliwal/Super-SloMo `model.py`,
`train.py`, `video_to_slomo.py`, whose `SuperSloMo.ckpt` `jaxvfi.weights` converts; `RELEASED_MODEL_CONFIG` sets all
four switches):

  switch                   ours (default)                         release
  unet_output_leaky_relu   False: linear UNet heads               True: LeakyReLU(0.1) after the last conv of both
                                                                  UNets (flows and the visibility logit included)
  warp_sample_shift        0.0: bw(I, F)(x) samples I at x + F    -0.5: `backWarp` builds the grid 2 (x + u) / W - 1
                           (pixel centres at integer coords)      and `grid_sample`'s default align_corners=False
                                                                  reads it as pixel x + u - 0.5 (both axes)
  input_mean               (0.5, 0.5, 0.5)                        (0.429, 0.431, 0.397), its Adobe240 channel mean
  warp_centered            False: warps the [0, 1] frames, so an  True: warps and blends the mean-subtracted frames,
                           out-of-frame sample is black           so an out-of-frame sample is the mean colour

The release also resizes frames to a multiple of 32 (`dataloader.Video`) where we edge-pad; that is the caller's
preprocessing, not the network.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvfi import batches
from jaxvfi import classical_flow
from jaxvfi import losses
from jaxvfi import steps
from jaxvfi import torch_weights
from jaxvfi.models import backbones
from jaxvfi.models import pwcnet
from jaxvfi.models.unet import pad_to_multiple
import pallas_kernels

PRED_KEYS = ("image", "flow_01", "flow_10", "flow_t0", "flow_t1", "flow_t0_approx", "flow_t1_approx",
             "visibility_t0")


def intermediate_flows(flow_01, flow_10, t):
  """Eq. (1), ReFIn (Eq. (4) of Super-SloMo): approximate flows from time t to the two inputs."""
  t = t.reshape(-1, 1, 1, 1)
  flow_t0 = -(1.0 - t) * t * flow_01 + t * t * flow_10
  flow_t1 = (1.0 - t) * (1.0 - t) * flow_01 - t * (1.0 - t) * flow_10
  return flow_t0, flow_t1


def blend(warped0, warped1, vis_t0, t, eps=1e-8):
  """Eq. (3), ReFIn: visibility- and time-weighted blend of the two warped inputs."""
  t = t.reshape(-1, 1, 1, 1)
  w0 = (1.0 - t) * vis_t0
  w1 = t * (1.0 - vis_t0)
  return (w0 * warped0 + w1 * warped1) / (w0 + w1 + eps)


class FlowUNet(nn.Module):
  """Super-SloMo's flow computation: a UNet 6->4 giving (F0->1, F1->0) in pixels."""
  input_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
  output_leaky_relu: bool = False
  width: float = 1.0

  @nn.compact
  def __call__(self, frame0, frame1):
    mean = jnp.asarray(self.input_mean, frame0.dtype)
    options = {"output_leaky_relu": True} if self.output_leaky_relu else {}
    unet = backbones.build("unet", 4, "unet", width=self.width, **options)
    out = unet(jnp.concatenate([frame0 - mean, frame1 - mean], axis=-1))
    return out[..., :2], out[..., 2:]


class FlowPWC(nn.Module):
  """PWC-Net run both ways in one batched call: (F0->1, F1->0)."""

  @nn.compact
  def __call__(self, frame0, frame1):
    n = frame0.shape[0]
    flows = pwcnet.PWCNet(name="pwcnet")(jnp.concatenate([frame0, frame1]), jnp.concatenate([frame1, frame0]))
    return flows[:n], flows[n:]


class FlowDIS(nn.Module):
  """(F0->1, F1->0) of OpenCV's DIS optical flow (`jaxvfi.classical_flow.dis_flows`, medium preset): no parameters.

  The classical flow replaces the learned flow module, and the interpolation (and refinement) modules learn what it
  lacks: residual flows, visibility and the blend (Eqs. (2) to (4)). It runs on the host through
  `jax.pure_callback`, example by example, on the 8-bit grayscale frames, and passes no gradient (there is nothing
  to train upstream of it). Needs OpenCV (opencv-python-headless, a dependency of
  jaxvfi); without it the model raises ImportError when traced.
  """

  @nn.compact
  def __call__(self, frame0, frame1):
    if not classical_flow.available():
      raise ImportError(f"model.flow = \"dis\" needs OpenCV: {classical_flow.MISSING_OPENCV}")
    shape = jax.ShapeDtypeStruct(frame0.shape[:3] + (2,), jnp.float32)

    def host_flows(f0, f1):
      flows = [classical_flow.dis_flows(a, b) for a, b in zip(np.asarray(f0), np.asarray(f1))]
      return np.stack([f[0] for f in flows]), np.stack([f[1] for f in flows])  # float32, as dis_flows gives them

    flow_01, flow_10 = jax.pure_callback(host_flows, (shape, shape), jax.lax.stop_gradient(frame0),
                                         jax.lax.stop_gradient(frame1), vmap_method="sequential")
    return flow_01.astype(frame0.dtype), flow_10.astype(frame0.dtype)


FLOWS = {"unet": FlowUNet, "pwcnet": FlowPWC, "dis": FlowDIS}


class FlowInterpolator(nn.Module):
  """Super-SloMo (`variant="superslomo"`) or ReFIn (`variant="refin"`), returning a dict of predictions.

  Attributes:
    variant: "superslomo" (20-channel interpolation input, no refinement) or "refin".
    flow: "unet" (Super-SloMo flow UNet), "pwcnet" or "dis" (classical DIS optical flow, `FlowDIS`).
    interpolation_backbone / refinement_backbone: names in `jaxvfi.models.backbones`.
    use_refinement: ReFIn's refinement module (Table 2 ablation switches it off).
    warp_padding: border behaviour of bw(., .) (`pallas_kernels.backward_warp`).
    warp_impl: "auto" | "pallas" | "xla".
    unet_output_leaky_relu, warp_sample_shift, input_mean, warp_centered: ours vs. the Super-SloMo release (module
      docstring); `unet_output_leaky_relu` applies to every UNet of the model and needs UNet backbones.
    unet_width: channel multiplier of the model's UNets, the flow UNet and UNet backbones
      (`jaxvfi.models.unet.UNet.width`; 1.0 is the papers' network); other backbones keep their size.
    zero_heads: the interpolation and refinement UNets' heads start at zero (`jaxvfi.models.unet.UNet.zero_head`), so
      the untrained model is Eqs. (1) and (3) with the flow module's flows, equal visibility and no refinement: with
      `flow="dis"` the classical baseline (`jaxvfi.classical_flow`) up to the warp's border rule. UNet backbones only.
  """
  variant: str = "refin"
  flow: str = "unet"
  interpolation_backbone: str = "unet"
  refinement_backbone: str = "unet"
  use_refinement: bool = True
  warp_padding: str = "zeros"
  warp_impl: str = "auto"
  unet_output_leaky_relu: bool = False
  warp_sample_shift: float = 0.0
  input_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
  warp_centered: bool = False
  unet_width: float = 1.0
  zero_heads: bool = False

  def _warp(self, image, flow):
    """bw(image, flow) of [0, 1] frames; with `warp_centered` the mean-subtracted frame is warped (module docstring)."""
    if self.warp_sample_shift:
      flow = flow + self.warp_sample_shift
    if not self.warp_centered:
      return pallas_kernels.backward_warp(image, flow, padding=self.warp_padding, impl=self.warp_impl)
    mean = jnp.asarray(self.input_mean, image.dtype)
    return pallas_kernels.backward_warp(image - mean, flow, padding=self.warp_padding, impl=self.warp_impl) + mean

  def _backbone(self, name, out_channels, module_name):
    options = {"output_leaky_relu": True} if self.unet_output_leaky_relu else {}
    if self.unet_width != 1.0 and name == "unet":
      options["width"] = self.unet_width
    if self.zero_heads:
      options["zero_head"] = True
    return backbones.build(name, out_channels, module_name, **options)

  def alignment(self) -> int:
    names = [self.interpolation_backbone] + ([self.refinement_backbone] if self.refining else [])
    align = 1
    for a in [backbones.alignment(n) for n in names] + ([32] if self.flow == "unet" else []):
      align = align * a // math.gcd(align, a)
    return align

  @property
  def refining(self) -> bool:
    return self.variant == "refin" and self.use_refinement

  @nn.compact
  def __call__(self, batch: dict, train: bool = False) -> dict:
    del train  # no dropout or batch norm in these models
    if self.variant not in ("superslomo", "refin"):
      raise ValueError(f"unknown variant {self.variant!r}")
    if self.flow not in FLOWS:
      raise ValueError(f"unknown flow module {self.flow!r}; known: {', '.join(FLOWS)}")
    frame0, frame1, t = batch["frame0"], batch["frame1"], batch["t"].astype(jnp.float32)
    if frame0.shape != frame1.shape or frame0.ndim != 4 or frame0.shape[-1] != 3:
      raise ValueError(f"frame0 and frame1 must be RGB (N, H, W, 3) of one size, got {frame0.shape} and "
                       f"{frame1.shape}")
    align = self.alignment()
    frame0, (h, w) = pad_to_multiple(frame0, align)
    frame1, _ = pad_to_multiple(frame1, align)

    if self.flow == "unet":
      flow_module = FlowUNet(tuple(self.input_mean), self.unet_output_leaky_relu, self.unet_width, name="flow")
    else:
      flow_module = FLOWS[self.flow](name="flow")
    flow_01, flow_10 = flow_module(frame0, frame1)
    mean = jnp.asarray(self.input_mean, frame0.dtype)
    flow_t0_approx, flow_t1_approx = intermediate_flows(flow_01, flow_10, t)
    g0_approx = self._warp(frame0, flow_t0_approx)
    g1_approx = self._warp(frame1, flow_t1_approx)
    if self.variant == "superslomo":
      interp_in = [frame0 - mean, frame1 - mean, flow_01, flow_10, flow_t1_approx, flow_t0_approx,
                   g1_approx - mean, g0_approx - mean]
    else:
      interp_in = [frame0 - mean, frame1 - mean, flow_t0_approx, flow_t1_approx, g0_approx - mean, g1_approx - mean]
    out = self._backbone(self.interpolation_backbone, 5, "interpolation")(jnp.concatenate(interp_in, axis=-1))
    flow_t0 = flow_t0_approx + out[..., 0:2]  # Eq. (2)
    flow_t1 = flow_t1_approx + out[..., 2:4]
    vis_t0 = jax.nn.sigmoid(out[..., 4:5])
    warped0 = self._warp(frame0, flow_t0)
    warped1 = self._warp(frame1, flow_t1)
    image_blend = blend(warped0, warped1, vis_t0, t)
    preds = {"image_blend": image_blend, "flow_01": flow_01, "flow_10": flow_10, "flow_t0": flow_t0,
             "flow_t1": flow_t1, "flow_t0_approx": flow_t0_approx, "flow_t1_approx": flow_t1_approx,
             "visibility_t0": vis_t0, "warped0": warped0, "warped1": warped1}
    if self.refining:
      refine_in = [frame0 - mean, frame1 - mean, flow_t0, flow_t1, vis_t0, warped0 - mean, warped1 - mean,
                   image_blend - mean]
      residual = self._backbone(self.refinement_backbone, 3, "refinement")(jnp.concatenate(refine_in, axis=-1))
      preds["image"] = image_blend + residual  # Eq. (4)
    else:
      preds["image"] = image_blend
    return {k: v[:, :h, :w] for k, v in preds.items()}


# ----------------------------------------------------------------------------------------------------------------
# The family (`jaxvfi.families` docstring): `model.name = "superslomo"`; ReFIn is `jaxvfi.models.refin`.

VARIANT = "superslomo"
HAS_TIME_INPUT = True
example_batch = batches.triplet_example_batch


def build(model_config, variant: str = VARIANT) -> FlowInterpolator:
  return FlowInterpolator(
      variant=variant, flow=model_config.flow,
      interpolation_backbone=model_config.interpolation_backbone,
      refinement_backbone=model_config.get("refinement_backbone", "unet"),
      use_refinement=model_config.get("use_refinement", True),
      warp_padding=model_config.get("warp_padding", "zeros"), warp_impl=model_config.get("warp_impl", "auto"),
      unet_output_leaky_relu=model_config.get("unet_output_leaky_relu", False),
      warp_sample_shift=float(model_config.get("warp_sample_shift", 0.0)),
      input_mean=tuple(float(m) for m in model_config.get("input_mean", (0.5, 0.5, 0.5))),
      warp_centered=model_config.get("warp_centered", False),
      unet_width=float(model_config.get("unet_width", 1.0)),
      zero_heads=bool(model_config.get("zero_heads", False)))


def _untrained_pwcnet(config) -> bool:
  return config.model.get("flow") == "pwcnet" and not config.model.get("flow_weights")


def make_loss_fn(config):
  """Eq. (5), ReFIn, over `jaxvfi.losses.TERMS`; the warp term warps as the model does (`model.warp_*`)."""
  ctx = {"warp_padding": config.model.get("warp_padding", "zeros"),
         "warp_impl": config.model.get("warp_impl", "auto")}
  loss_fn, notes = losses.make_loss_fn(config.loss, ctx=ctx)
  if _untrained_pwcnet(config):
    notes = ["flow module PWC-Net has no pretrained weights (model.flow_weights unset): it trains from scratch at "
             "the interpolation module's learning rate"] + notes
  return loss_fn, notes


def load_pretrained(params, config):
  """PWC-Net weights from `model.flow_weights` (converted with `python -m jaxvfi.weights convert`)."""
  path = config.model.get("flow_weights")
  if not path:
    return params, []
  if config.model.get("flow") != "pwcnet":
    raise ValueError(f"model.flow_weights is set but model.flow is {config.model.get('flow')!r}; pretrained flow "
                     "weights exist for pwcnet only")
  pwc = torch_weights.load_params(pwcnet.TORCH_LAYOUT, path)
  if jax.tree.map(jnp.shape, params["flow"]["pwcnet"]) != jax.tree.map(jnp.shape, pwc):
    raise ValueError(f"model.flow_weights {path}: parameter shapes do not match the PWC-Net module")
  params = {**params, "flow": {"pwcnet": jax.tree.map(jnp.asarray, pwc)}}
  return params, [f"loaded pretrained PWC-Net weights from {path}"]


def make_train_setup(config, model, loss_fn, init_batch, total_steps, steps_per_epoch):
  """The supervised setup, less the fixed small rate of a flow module that has no pretrained weights to keep.

  ReFIn trains pretrained PWC-Net at a fixed 1e-6; from scratch that rate would leave it random, so the flow module
  then follows the default schedule (and `make_loss_fn`'s notes say so).
  """
  opt = config.optimizer
  if _untrained_pwcnet(config) and "flow" in (opt.get("groups") or {}):
    opt = ml_collections.ConfigDict(opt.to_dict())
    opt.groups = {k: v for k, v in opt.groups.to_dict().items() if k != "flow"}
  return steps.supervised_setup(config, model, loss_fn, init_batch, total_steps, steps_per_epoch, opt_config=opt)


# Released weights (`jaxvfi.families`: RELEASED_MODEL_CONFIG and TORCH_LAYOUT).
RELEASED_MODEL_CONFIG = dict(flow="unet", interpolation_backbone="unet", warp_padding="zeros",
                             unet_output_leaky_relu=True, warp_sample_shift=-0.5, input_mean=(0.429, 0.431, 0.397),
                             warp_centered=True)
"""`config.model` fields that reproduce Super-SloMo `model.py` / `video_to_slomo.py` on a GPU (i.e. with the mean)
around its released `SuperSloMo.ckpt` (module docstring)."""


def _unet_torch_layers(prefix: str, path: tuple[str, ...]) -> torch_weights.Layers:
  """Super-SloMo `model.UNet`: conv1, conv2, down1..5.conv1/2, up1..5.conv1/2, conv3; jaxvfi's UNet uses the names."""
  names = ["conv1", "conv2"] + [f"{b}{i}.conv{j}" for b in ("down", "up") for i in range(1, 6) for j in (1, 2)]
  return {f"{prefix}.{n}": (path + tuple(n.split(".")), "conv") for n in names + ["conv3"]}


def torch_layers() -> torch_weights.Layers:
  return {**_unet_torch_layers("state_dictFC", ("flow", "unet")),
          **_unet_torch_layers("state_dictAT", ("interpolation",))}


def _released_module():
  frames = jnp.zeros((1, 32, 32, 3))
  return (FlowInterpolator(variant="superslomo", **RELEASED_MODEL_CONFIG),
          ({"frame0": frames, "frame1": frames, "t": jnp.full((1,), 0.5)},))


TORCH_LAYOUT = torch_weights.TorchLayout(name="superslomo", layers=torch_layers, module=_released_module)
"""avinashpaliwal/Super-SloMo `SuperSloMo.ckpt`, a dict holding `state_dictFC` (the flow UNet, 6->4) and
`state_dictAT` (the arbitrary-time interpolation UNet, 20->5) beside training metadata (epoch, losses, ...), which is
not weights and is skipped; keys are flattened to `state_dictFC.conv1.weight`, ..., `state_dictAT.up5.conv2.bias`
(19,794,116 + 19,816,357 parameters, tree `{"flow": {"unet": ...}, "interpolation": ...}`)."""
