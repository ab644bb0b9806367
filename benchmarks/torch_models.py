"""Minimal PyTorch copies of the networks, losses and ops that `vs_pytorch.py` times against jaxvfi (needs torch).

Each is written from the original PyTorch code's structure and matches the jaxvfi module it is compared with, layer
for layer and parameter name for parameter name, so that `load_flax_params` can copy jaxvfi's random initialisation
and the outputs can be checked equal before anything is timed:

  * UNet: Super-SloMo's `model.UNet` (avinashpaliwal/Super-SloMo): 7x7 convs, five down blocks (average pool, two
    convs, 5x5 for the first), five up blocks (bilinear x2, conv, conv on the concatenated skip), LeakyReLU(0.1).
    As in `jaxvfi.models.unet`, the last conv has no activation (the original applies LeakyReLU there too) and the
    upsampling is `align_corners=False` (what `F.interpolate(scale_factor=2, mode="bilinear")` does since torch 0.4.1).
  * backwarp: Super-SloMo's `model.backWarp`: `F.grid_sample` on pixel flows normalised with `align_corners=True`.
  * FlowInterpolator: Super-SloMo's train.py forward (flow UNet 6->4, Eq. (4) intermediate flows, interpolation UNet
    20->5, visibility blend) and ReFIn's variant of it (16-channel interpolation input, refinement UNet 20->3), with
    jaxvfi's conventions (inputs shifted by -0.5, blend eps 1e-8, frames padded to a multiple of 32 by replication).
  * SepConvNet and SepConvFunction: sniklaus/sepconv-slomo's network, and the separable local convolution as an
    autograd Function with an explicit backward like the original's kernels (which are CUDA-only: this is the same
    arithmetic, a loop over the K x K taps of in-place multiply-adds on whole images, for the CPU).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def leaky(x):
  return F.leaky_relu(x, 0.1)


def up2(x):
  return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def conv(cin, cout, k):
  return nn.Conv2d(cin, cout, k, padding=k // 2)


class Down(nn.Module):

  def __init__(self, cin, cout, k):
    super().__init__()
    self.conv1, self.conv2 = conv(cin, cout, k), conv(cout, cout, k)

  def forward(self, x):
    x = F.avg_pool2d(x, 2)
    return leaky(self.conv2(leaky(self.conv1(x))))


class Up(nn.Module):

  def __init__(self, cin, cout):
    super().__init__()
    self.conv1, self.conv2 = conv(cin, cout, 3), conv(2 * cout, cout, 3)

  def forward(self, x, skip):
    x = leaky(self.conv1(up2(x)))
    return leaky(self.conv2(torch.cat([x, skip], 1)))


class UNet(nn.Module):

  def __init__(self, cin, cout):
    super().__init__()
    self.conv1, self.conv2 = conv(cin, 32, 7), conv(32, 32, 7)
    self.down1, self.down2, self.down3 = Down(32, 64, 5), Down(64, 128, 3), Down(128, 256, 3)
    self.down4, self.down5 = Down(256, 512, 3), Down(512, 512, 3)
    self.up1, self.up2, self.up3 = Up(512, 512), Up(512, 256), Up(256, 128)
    self.up4, self.up5 = Up(128, 64), Up(64, 32)
    self.conv3 = conv(32, cout, 3)

  def forward(self, x):
    x = leaky(self.conv1(x))
    s1 = leaky(self.conv2(x))
    s2 = self.down1(s1)
    s3 = self.down2(s2)
    s4 = self.down3(s3)
    s5 = self.down4(s4)
    x = self.down5(s5)
    x = self.up5(self.up4(self.up3(self.up2(self.up1(x, s5), s4), s3), s2), s1)
    return self.conv3(x)


def backwarp(img, flow):
  """Bilinear backward warp by a (N, 2, H, W) flow in pixels, zeros outside (Super-SloMo's backWarp)."""
  _, _, h, w = img.shape
  gy, gx = torch.meshgrid(torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype), indexing="ij")
  x = gx + flow[:, 0]
  y = gy + flow[:, 1]
  grid = torch.stack([2.0 * x / (w - 1) - 1.0, 2.0 * y / (h - 1) - 1.0], dim=-1)
  return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class FlowInterpolator(nn.Module):
  """Super-SloMo (`variant="superslomo"`) or ReFIn with UNet flow and backbones (`variant="refin"`); NCHW in [0, 1]."""

  def __init__(self, variant):
    super().__init__()
    self.variant = variant
    self.flow = nn.Module()
    self.flow.unet = UNet(6, 4)
    self.interpolation = UNet(20 if variant == "superslomo" else 16, 5)
    if variant == "refin":
      self.refinement = UNet(20, 3)

  def forward(self, frame0, frame1, t):
    h, w = frame0.shape[2:]
    pad = lambda f: F.pad(f, (0, -w % 32, 0, -h % 32), mode="replicate")
    f0, f1 = pad(frame0), pad(frame1)
    flow = self.flow.unet(torch.cat([f0 - 0.5, f1 - 0.5], 1))
    flow_01, flow_10 = flow[:, :2], flow[:, 2:]
    t = t.view(-1, 1, 1, 1)
    ft0a = -(1.0 - t) * t * flow_01 + t * t * flow_10
    ft1a = (1.0 - t) * (1.0 - t) * flow_01 - t * (1.0 - t) * flow_10
    g0a, g1a = backwarp(f0, ft0a), backwarp(f1, ft1a)
    if self.variant == "superslomo":
      interp_in = [f0 - 0.5, f1 - 0.5, flow_01, flow_10, ft1a, ft0a, g1a - 0.5, g0a - 0.5]
    else:
      interp_in = [f0 - 0.5, f1 - 0.5, ft0a, ft1a, g0a - 0.5, g1a - 0.5]
    out = self.interpolation(torch.cat(interp_in, 1))
    ft0, ft1 = ft0a + out[:, 0:2], ft1a + out[:, 2:4]
    vis = torch.sigmoid(out[:, 4:5])
    warped0, warped1 = backwarp(f0, ft0), backwarp(f1, ft1)
    w0, w1 = (1.0 - t) * vis, t * (1.0 - vis)
    image = (w0 * warped0 + w1 * warped1) / (w0 + w1 + 1e-8)
    if self.variant == "refin":
      refine_in = [f0 - 0.5, f1 - 0.5, ft0, ft1, vis, warped0 - 0.5, warped1 - 0.5, image - 0.5]
      image = image + self.refinement(torch.cat(refine_in, 1))
    crop = lambda a: a[:, :, :h, :w]
    return {"image": crop(image), "flow_01": crop(flow_01), "flow_10": crop(flow_10), "flow_t0_approx": crop(ft0a),
            "flow_t1_approx": crop(ft1a)}


def l1_loss(preds, batch):
  return torch.mean(torch.abs(preds["image"] - batch["target"]))


def refin_loss(preds, batch, weights):
  """jaxvfi.losses with the quickstart's weights: l1, warp (four warps), smoothness (first differences)."""
  f0, f1, target = batch["frame0"], batch["frame1"], batch["target"]
  warp = (torch.mean(torch.abs(backwarp(f0, preds["flow_t0_approx"]) - target))
          + torch.mean(torch.abs(backwarp(f1, preds["flow_t1_approx"]) - target))
          + torch.mean(torch.abs(backwarp(f0, preds["flow_10"]) - f1))
          + torch.mean(torch.abs(backwarp(f1, preds["flow_01"]) - f0)))
  diff = lambda f: (torch.mean(torch.abs(f[:, :, :, 1:] - f[:, :, :, :-1]))
                    + torch.mean(torch.abs(f[:, :, 1:] - f[:, :, :-1])))
  smooth = diff(preds["flow_01"]) + diff(preds["flow_10"])
  terms = {"l1": l1_loss(preds, batch), "warp": warp, "smoothness": smooth}
  return sum(float(w) * terms[name] for name, w in weights.items())


class SepConvFunction(torch.autograd.Function):
  """out = Σᵢ kv_i Σⱼ kh_j x[y + i, x + j] on (N, C, H + K - 1, W + K - 1) inputs; kv, kh (N, K, H, W)."""

  @staticmethod
  def forward(ctx, x, kv, kh):  # pylint: disable=arguments-differ
    ctx.save_for_backward(x, kv, kh)
    k, (h, w) = kv.shape[1], kv.shape[2:]
    out = x.new_zeros(x.shape[0], x.shape[1], h, w)
    row = torch.empty_like(out)
    for i in range(k):
      row.zero_()
      for j in range(k):
        row.addcmul_(x[:, :, i:i + h, j:j + w], kh[:, j:j + 1])
      out.addcmul_(row, kv[:, i:i + 1])
    return out

  @staticmethod
  def backward(ctx, g):  # pylint: disable=arguments-differ
    x, kv, kh = ctx.saved_tensors
    k, (h, w) = kv.shape[1], kv.shape[2:]
    dx, dkv, dkh = torch.zeros_like(x), torch.empty_like(kv), torch.empty_like(kh)
    acc = torch.empty_like(g)
    for i in range(k):  # dkv_i = Σ_c g · Σⱼ kh_j x[y + i, x + j]
      acc.zero_()
      for j in range(k):
        acc.addcmul_(x[:, :, i:i + h, j:j + w], kh[:, j:j + 1])
      dkv[:, i] = (acc * g).sum(1)
    for j in range(k):  # dkh_j = Σ_c g · Σᵢ kv_i x[y + i, x + j]
      acc.zero_()
      for i in range(k):
        acc.addcmul_(x[:, :, i:i + h, j:j + w], kv[:, i:i + 1])
      dkh[:, j] = (acc * g).sum(1)
    for i in range(k):  # dx[y + i, x + j] += g kv_i kh_j
      gi = g * kv[:, i:i + 1]
      for j in range(k):
        dx[:, :, i:i + h, j:j + w].addcmul_(gi, kh[:, j:j + 1])
    return dx, dkv, dkh


sepconv = SepConvFunction.apply


class Basic(nn.Module):

  def __init__(self, cin, f):
    super().__init__()
    self.conv0, self.conv1, self.conv2 = conv(cin, f, 3), conv(f, f, 3), conv(f, f, 3)

  def forward(self, x):
    return F.relu(self.conv2(F.relu(self.conv1(F.relu(self.conv0(x))))))


class Upsample(nn.Module):

  def __init__(self, f):
    super().__init__()
    self.conv = conv(f, f, 3)

  def forward(self, x):
    return F.relu(self.conv(up2(x)))


class Subnet(nn.Module):

  def __init__(self, k):
    super().__init__()
    self.conv0, self.conv1, self.conv2, self.head = conv(64, 64, 3), conv(64, 64, 3), conv(64, k, 3), conv(k, k, 3)

  def forward(self, x):
    x = F.relu(self.conv2(F.relu(self.conv1(F.relu(self.conv0(x))))))
    return self.head(up2(x))


class SepConvNet(nn.Module):

  def __init__(self, k=51):
    super().__init__()
    self.k = k
    chans = (6, 32, 64, 128, 256, 512)
    for level in range(1, 6):
      setattr(self, f"conv{level}", Basic(chans[level - 1], chans[level]))
    for level, cin, f in ((5, 512, 512), (4, 512, 256), (3, 256, 128), (2, 128, 64)):
      setattr(self, f"deconv{level}", Basic(cin, f))
      setattr(self, f"upsample{level}", Upsample(f))
    for name in ("kv0", "kh0", "kv1", "kh1"):
      setattr(self, name, Subnet(k))

  def forward(self, frame0, frame1):
    x = torch.cat([frame0, frame1], 1)
    skips = []
    for level in range(1, 6):
      x = getattr(self, f"conv{level}")(x)
      skips.append(x)
      x = F.avg_pool2d(x, 2)
    for level in (5, 4, 3, 2):
      x = getattr(self, f"upsample{level}")(getattr(self, f"deconv{level}")(x)) + skips[level - 1]
    kern = {name: getattr(self, name)(x) for name in ("kv0", "kh0", "kv1", "kh1")}
    r = self.k // 2
    pad = lambda f: F.pad(f, (r, r, r, r))
    return {"image": sepconv(pad(frame0), kern["kv0"], kern["kh0"]) + sepconv(pad(frame1), kern["kv1"], kern["kh1"])}


class SepConvInterpolator(nn.Module):
  """Holds the net as `sepconv`, like jaxvfi's wrapper (frames are already multiples of 32 here)."""

  def __init__(self, k=51):
    super().__init__()
    self.sepconv = SepConvNet(k)

  def forward(self, frame0, frame1, t=None):
    del t
    return self.sepconv(frame0, frame1)


def load_flax_params(module: nn.Module, flax_params) -> None:
  """Copies a Flax parameter tree into `module`: `a/b/kernel` (kh, kw, in, out) -> `a.b.weight` (out, in, kh, kw)."""
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  state = module.state_dict()
  flat = traverse_util.flatten_dict(flax_params)
  names = set()
  for path, value in flat.items():
    value = np.asarray(value)
    name = ".".join(path[:-1]) + (".weight" if path[-1] == "kernel" else "." + path[-1])
    if path[-1] == "kernel":
      value = value.transpose(3, 2, 0, 1)
    if name not in state or tuple(state[name].shape) != value.shape:
      raise ValueError(f"no torch parameter {name} of shape {value.shape}")
    state[name] = torch.from_numpy(np.array(value))  # a writable copy
    names.add(name)
  missing = set(state) - names
  if missing:
    raise ValueError(f"torch parameters without a Flax value: {sorted(missing)[:5]}")
  module.load_state_dict(state)


def flax_grads_as_torch(flax_grads) -> dict[str, np.ndarray]:
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  out = {}
  for path, value in traverse_util.flatten_dict(flax_grads).items():
    value = np.asarray(value)
    name = ".".join(path[:-1]) + (".weight" if path[-1] == "kernel" else "." + path[-1])
    out[name] = value.transpose(3, 2, 0, 1) if path[-1] == "kernel" else value
  return out
