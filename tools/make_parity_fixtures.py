r"""Writes tests/fixtures/<arch>.npz: the original PyTorch code's outputs on random weights, for tests/test_parity.py.

Not run in CI: it needs torch (and, for LPIPS, the `lpips` package); the tests need neither. For each architecture it
builds the original network from the minimal copies below, fills its state_dict with
`jaxvfi.weights.random_state_dict(arch, SEED)` (`load_state_dict(strict=True)`, so every key and shape of the
original is checked against jaxvfi's layout), runs it in float64 on a small fixed input and stores

  seed, inputs (uint8 images; the networks see them / 255), the outputs (float32), `fingerprint` (a few numbers of
  the generated state_dict, so a test can tell a changed NumPy generator from a broken conversion) and `source`.

  python tools/make_parity_fixtures.py                    (all)
  python tools/make_parity_fixtures.py --arch=sepconv --out=/tmp/fixtures
  python tools/make_parity_fixtures.py --torch-files-only (only tools/make_torch_fixtures.py's files; no lpips)

It then writes the PyTorch files of `tools/make_torch_fixtures.py` (the torch-free reader's fixtures).

The copies keep only each network's forward pass and the preprocessing around it, transcribed from these commits
(read, not vendored):
  sepconv     sniklaus/sepconv-slomo 3d94cda8d971c28d43225c8383592703f968b27f: run.py (`Network`, `estimate` with
              its default "improved" padding, BGR input), sepconv.py (`sepconv_out`, the local convolution, here a
              loop over the 51 x 51 taps in the kernel's order).
  superslomo  avinashpaliwal/Super-SloMo 544802b543e4aaaa707ebac6ae6c61e1da72a6f6: model.py (`UNet`, `down`, `up`,
              `backWarp`), video_to_slomo.py (the interpolation loop, GPU path: mean [0.429, 0.431, 0.397]).
  pwcnet      sniklaus/pytorch-pwc fc2188815595b9fe3db94c7218c6f051eea0b012: run.py (`backwarp`, `Network`,
              `estimate` without its 1024x436 asserts, BGR input), correlation/correlation.py (the cost volume, here
              a loop over the 81 displacements).
  vgg19       pytorch/vision 02196ff416e2ccfe1127d1c1a8745e47afa2fd93: torchvision/models/vgg.py (`make_layers`,
              cfg "E"), features up to relu4_4 (index 26), input normalised as its documentation says.
  lpips_*     richzhang/PerceptualSimilarity 082bb24f84c091ea94de2867d34c4544f68e0963 = the `lpips` package 0.1.4
              from PyPI, whose `LPIPS(net, version="0.1", pnet_rand=True)` runs as it is, with its shipped v0.1
              heads (stored in the fixture). Its trunk comes from torchvision, whose wheels here need CUDA; a
              stand-in `torchvision.models` module provides `alexnet` (torchvision/models/alexnet.py at
              00658a22f8824fb29cb53b7fc12c2e8097038dfb, the `features` of today's `alexnet-owt-7be5be79.pth`) and
              `vgg16` (cfg "D" above), their features filled from the seed.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from jaxvfi import weights  # pylint: disable=g-import-not-at-top,wrong-import-position
from make_torch_fixtures import write_torch_files  # pylint: disable=g-import-not-at-top,wrong-import-position

SEED = 0
SOURCES = {
    "sepconv": "sniklaus/sepconv-slomo@3d94cda8d971c28d43225c8383592703f968b27f run.py, sepconv.py",
    "superslomo": "avinashpaliwal/Super-SloMo@544802b543e4aaaa707ebac6ae6c61e1da72a6f6 model.py, video_to_slomo.py",
    "pwcnet": "sniklaus/pytorch-pwc@fc2188815595b9fe3db94c7218c6f051eea0b012 run.py, correlation/correlation.py",
    "vgg19": "pytorch/vision@02196ff416e2ccfe1127d1c1a8745e47afa2fd93 torchvision/models/vgg.py",
    "lpips_alex": "lpips 0.1.4 (richzhang/PerceptualSimilarity@082bb24f84c091ea94de2867d34c4544f68e0963); "
                  "pytorch/vision@00658a22f8824fb29cb53b7fc12c2e8097038dfb torchvision/models/alexnet.py",
    "lpips_vgg": "lpips 0.1.4 (richzhang/PerceptualSimilarity@082bb24f84c091ea94de2867d34c4544f68e0963); "
                 "pytorch/vision@02196ff416e2ccfe1127d1c1a8745e47afa2fd93 torchvision/models/vgg.py",
}
ARCHS = tuple(SOURCES)


def fingerprint(state: dict[str, np.ndarray]) -> np.ndarray:
  """First value of the first and last keys and the sum of all |values|: detects a changed NumPy generator."""
  keys = sorted(state)
  total = sum(float(np.abs(state[k].astype(np.float64)).sum()) for k in keys)
  return np.array([state[keys[0]].flat[0], state[keys[-1]].flat[0], total], np.float64)


def images(rng, shape) -> np.ndarray:
  return rng.integers(0, 256, size=shape, dtype=np.uint8)


def to_torch(img_u8: np.ndarray, bgr: bool = False) -> torch.Tensor:
  """uint8 (N, H, W, 3) RGB -> float64 (N, 3, H, W) in [0, 1], channels reversed for the BGR ports."""
  x = img_u8.astype(np.float64) / 255.0
  if bgr:
    x = x[..., ::-1]
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def to_nhwc(t: torch.Tensor, bgr: bool = False) -> np.ndarray:
  x = t.detach().numpy().transpose(0, 2, 3, 1)
  return np.ascontiguousarray(x[..., ::-1] if bgr else x).astype(np.float32)


def load(module: torch.nn.Module, state: dict[str, np.ndarray]) -> torch.nn.Module:
  module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
  return module.double().eval()


# ------------------------------------------------------------------------------------------------------------------
# sniklaus/sepconv-slomo
# ------------------------------------------------------------------------------------------------------------------


def sepconv_local(ten_in, ten_ver, ten_hor):
  """sepconv.py `sepconv_out`:

  out[n, c, y, x] = sum_fy sum_fx in[n, c, y + fy, x + fx] ver[n, fy, y, x] hor[n, fx, y, x].
  """
  n, c, h, w = ten_in.shape[0], ten_in.shape[1], ten_ver.shape[2], ten_ver.shape[3]
  out = ten_in.new_zeros((n, c, h, w))
  for fy in range(ten_ver.shape[1]):
    for fx in range(ten_hor.shape[1]):
      out += ten_in[:, :, fy:fy + h, fx:fx + w] * ten_ver[:, fy:fy + 1] * ten_hor[:, fx:fx + 1]
  return out


class SepConvNetwork(torch.nn.Module):
  """run.py `Network`, forward also returning the four kernels (the torch.hub load left out)."""

  def __init__(self):
    super().__init__()

    def basic(c_in, c_out):
      return torch.nn.Sequential(
          torch.nn.Conv2d(c_in, c_out, 3, 1, 1), torch.nn.ReLU(False),
          torch.nn.Conv2d(c_out, c_out, 3, 1, 1), torch.nn.ReLU(False),
          torch.nn.Conv2d(c_out, c_out, 3, 1, 1), torch.nn.ReLU(False))

    def upsample(c_in, c_out):
      del c_in
      return torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                 torch.nn.Conv2d(c_out, c_out, 3, 1, 1), torch.nn.ReLU(False))

    def subnet():
      return torch.nn.Sequential(
          torch.nn.Conv2d(64, 64, 3, 1, 1), torch.nn.ReLU(False),
          torch.nn.Conv2d(64, 64, 3, 1, 1), torch.nn.ReLU(False),
          torch.nn.Conv2d(64, 51, 3, 1, 1), torch.nn.ReLU(False),
          torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
          torch.nn.Conv2d(51, 51, 3, 1, 1))

    self.netConv1, self.netConv2, self.netConv3 = basic(6, 32), basic(32, 64), basic(64, 128)
    self.netConv4, self.netConv5 = basic(128, 256), basic(256, 512)
    self.netDeconv5, self.netDeconv4 = basic(512, 512), basic(512, 256)
    self.netDeconv3, self.netDeconv2 = basic(256, 128), basic(128, 64)
    self.netUpsample5, self.netUpsample4 = upsample(512, 512), upsample(256, 256)
    self.netUpsample3, self.netUpsample2 = upsample(128, 128), upsample(64, 64)
    self.netVertical1, self.netVertical2 = subnet(), subnet()
    self.netHorizontal1, self.netHorizontal2 = subnet(), subnet()

  def forward(self, one, two):
    pool = lambda x: F.avg_pool2d(x, kernel_size=2, stride=2, count_include_pad=False)
    conv1 = self.netConv1(torch.cat([one, two], 1))
    conv2 = self.netConv2(pool(conv1))
    conv3 = self.netConv3(pool(conv2))
    conv4 = self.netConv4(pool(conv3))
    conv5 = self.netConv5(pool(conv4))
    deconv5 = self.netUpsample5(self.netDeconv5(pool(conv5)))
    deconv4 = self.netUpsample4(self.netDeconv4(deconv5 + conv5))
    deconv3 = self.netUpsample3(self.netDeconv3(deconv4 + conv4))
    deconv2 = self.netUpsample2(self.netDeconv2(deconv3 + conv3))
    combine = deconv2 + conv2
    ver1, ver2 = self.netVertical1(combine), self.netVertical2(combine)
    hor1, hor2 = self.netHorizontal1(combine), self.netHorizontal2(combine)
    r = int(math.floor(51 / 2.0))
    pad = lambda x: F.pad(x, [r, r, r, r], mode="replicate")
    frame = sepconv_local(pad(one), ver1, hor1) + sepconv_local(pad(two), ver2, hor2)
    return frame, (ver1, hor1, ver2, hor2)


def sepconv_estimate(net, one, two):
  """run.py `estimate` with `args_strPadding = "improved"` (its default) on (1, 3, H, W) BGR frames."""
  h, w = one.shape[2], one.shape[3]
  left, top = 0, 0
  pw, ph = left + w, top + h
  if pw != ((pw >> 7) << 7):
    pw = (((pw >> 7) + 1) << 7)
  if ph != ((ph >> 7) << 7):
    ph = (((ph >> 7) + 1) << 7)
  right, bottom = pw - w - left, ph - h - top
  one = F.pad(one, [left, right, top, bottom], mode="replicate")
  two = F.pad(two, [left, right, top, bottom], mode="replicate")
  frame, kernels = net(one, two)
  crop = lambda x: x[:, :, top:top + h, left:left + w]
  return crop(frame), [crop(k) for k in kernels]


def make_sepconv(state, rng):
  frames = images(rng, (2, 1, 40, 56, 3))
  net = load(SepConvNetwork(), state)
  with torch.no_grad():
    frame, kernels = sepconv_estimate(net, to_torch(frames[0], bgr=True), to_torch(frames[1], bgr=True))
  # Kernels at a 8 x 8 grid of pixels (all 51 taps of all four), to keep the file small.
  kernels = np.stack([k.numpy()[0].transpose(1, 2, 0)[::5, ::7] for k in kernels]).astype(np.float32)
  return {"frame0": frames[0], "frame1": frames[1], "image": to_nhwc(frame, bgr=True),
          "kernels": kernels, "kernel_rows": np.arange(0, 40, 5), "kernel_cols": np.arange(0, 56, 7)}


# ------------------------------------------------------------------------------------------------------------------
# avinashpaliwal/Super-SloMo
# ------------------------------------------------------------------------------------------------------------------


class Down(torch.nn.Module):

  def __init__(self, c_in, c_out, k):
    super().__init__()
    self.conv1 = torch.nn.Conv2d(c_in, c_out, k, stride=1, padding=int((k - 1) / 2))
    self.conv2 = torch.nn.Conv2d(c_out, c_out, k, stride=1, padding=int((k - 1) / 2))

  def forward(self, x):
    x = F.avg_pool2d(x, 2)
    x = F.leaky_relu(self.conv1(x), negative_slope=0.1)
    return F.leaky_relu(self.conv2(x), negative_slope=0.1)


class Up(torch.nn.Module):

  def __init__(self, c_in, c_out):
    super().__init__()
    self.conv1 = torch.nn.Conv2d(c_in, c_out, 3, stride=1, padding=1)
    self.conv2 = torch.nn.Conv2d(2 * c_out, c_out, 3, stride=1, padding=1)

  def forward(self, x, skip):
    x = F.interpolate(x, scale_factor=2, mode="bilinear")
    x = F.leaky_relu(self.conv1(x), negative_slope=0.1)
    return F.leaky_relu(self.conv2(torch.cat((x, skip), 1)), negative_slope=0.1)


class SloMoUNet(torch.nn.Module):
  """model.py `UNet`, LeakyReLU(0.1) after its last conv included."""

  def __init__(self, c_in, c_out):
    super().__init__()
    self.conv1 = torch.nn.Conv2d(c_in, 32, 7, stride=1, padding=3)
    self.conv2 = torch.nn.Conv2d(32, 32, 7, stride=1, padding=3)
    self.down1, self.down2, self.down3 = Down(32, 64, 5), Down(64, 128, 3), Down(128, 256, 3)
    self.down4, self.down5 = Down(256, 512, 3), Down(512, 512, 3)
    self.up1, self.up2, self.up3 = Up(512, 512), Up(512, 256), Up(256, 128)
    self.up4, self.up5 = Up(128, 64), Up(64, 32)
    self.conv3 = torch.nn.Conv2d(32, c_out, 3, stride=1, padding=1)

  def forward(self, x):
    x = F.leaky_relu(self.conv1(x), negative_slope=0.1)
    s1 = F.leaky_relu(self.conv2(x), negative_slope=0.1)
    s2 = self.down1(s1)
    s3 = self.down2(s2)
    s4 = self.down3(s3)
    s5 = self.down4(s4)
    x = self.down5(s5)
    x = self.up1(x, s5)
    x = self.up2(x, s4)
    x = self.up3(x, s3)
    x = self.up4(x, s2)
    x = self.up5(x, s1)
    return F.leaky_relu(self.conv3(x), negative_slope=0.1)


def back_warp(img, flow):
  """model.py `backWarp.forward` (grid_sample's default align_corners=False)."""
  h, w = img.shape[2], img.shape[3]
  grid_x, grid_y = np.meshgrid(np.arange(w), np.arange(h))
  grid_x, grid_y = torch.tensor(grid_x), torch.tensor(grid_y)
  u, v = flow[:, 0, :, :], flow[:, 1, :, :]
  x = grid_x.unsqueeze(0).expand_as(u).double() + u
  y = grid_y.unsqueeze(0).expand_as(v).double() + v
  x = 2 * (x / w - 0.5)
  y = 2 * (y / h - 0.5)
  return F.grid_sample(img, torch.stack((x, y), dim=3), align_corners=False)


def make_superslomo(state, rng):
  frames = images(rng, (2, 1, 32, 64, 3))
  t = 0.375
  flow_comp = load(SloMoUNet(6, 4), {k[len("state_dictFC."):]: v for k, v in state.items()
                                     if k.startswith("state_dictFC.")})
  arb_time = load(SloMoUNet(20, 5), {k[len("state_dictAT."):]: v for k, v in state.items()
                                     if k.startswith("state_dictAT.")})
  mean = torch.tensor([0.429, 0.431, 0.397], dtype=torch.float64).view(1, 3, 1, 1)
  with torch.no_grad():
    i0, i1 = to_torch(frames[0]) - mean, to_torch(frames[1]) - mean  # transforms.Normalize(mean, std=1)
    flow_out = flow_comp(torch.cat((i0, i1), dim=1))
    f_0_1, f_1_0 = flow_out[:, :2, :, :], flow_out[:, 2:, :, :]
    temp = -t * (1 - t)
    coeff = [temp, t * t, (1 - t) * (1 - t), temp]
    f_t_0 = coeff[0] * f_0_1 + coeff[1] * f_1_0
    f_t_1 = coeff[2] * f_0_1 + coeff[3] * f_1_0
    g_i0_f_t_0 = back_warp(i0, f_t_0)
    g_i1_f_t_1 = back_warp(i1, f_t_1)
    intrp_out = arb_time(torch.cat((i0, i1, f_0_1, f_1_0, f_t_1, f_t_0, g_i1_f_t_1, g_i0_f_t_0), dim=1))
    f_t_0_f = intrp_out[:, :2, :, :] + f_t_0
    f_t_1_f = intrp_out[:, 2:4, :, :] + f_t_1
    v_t_0 = torch.sigmoid(intrp_out[:, 4:5, :, :])
    v_t_1 = 1 - v_t_0
    g_i0_f_t_0_f = back_warp(i0, f_t_0_f)
    g_i1_f_t_1_f = back_warp(i1, f_t_1_f)
    w = [1 - t, t]
    ft_p = (w[0] * v_t_0 * g_i0_f_t_0_f + w[1] * v_t_1 * g_i1_f_t_1_f) / (w[0] * v_t_0 + w[1] * v_t_1)
    image = ft_p + mean  # revNormalize
  return {"frame0": frames[0], "frame1": frames[1], "t": np.array([t], np.float32),
          "flow_unet": to_nhwc(flow_out), "interpolation_unet": to_nhwc(intrp_out), "image": to_nhwc(image)}


# ------------------------------------------------------------------------------------------------------------------
# sniklaus/pytorch-pwc
# ------------------------------------------------------------------------------------------------------------------


def correlation(one, two):
  """correlation.py: channel (dy + 4) * 9 + (dx + 4) = sum_c one[c, y, x] two[c, y + dy, x + dx] / C, zero outside."""
  h, w = one.shape[2], one.shape[3]
  padded = F.pad(two, [4, 4, 4, 4])
  out = []
  for dy in range(-4, 5):
    for dx in range(-4, 5):
      out.append((one * padded[:, :, 4 + dy:4 + dy + h, 4 + dx:4 + dx + w]).sum(1, keepdim=True) / one.shape[1])
  return torch.cat(out, 1)


def pwc_backwarp(ten_input, ten_flow):
  """run.py `backwarp` (align_corners=True since ed3af4f)."""
  ten_hor = torch.linspace(-1.0, 1.0, ten_flow.shape[3], dtype=ten_flow.dtype).view(1, 1, 1, -1).repeat(
      1, 1, ten_flow.shape[2], 1)
  ten_ver = torch.linspace(-1.0, 1.0, ten_flow.shape[2], dtype=ten_flow.dtype).view(1, 1, -1, 1).repeat(
      1, 1, 1, ten_flow.shape[3])
  grid = torch.cat([ten_hor, ten_ver], 1)
  partial = ten_flow.new_ones([ten_flow.shape[0], 1, ten_flow.shape[2], ten_flow.shape[3]])
  ten_flow = torch.cat([ten_flow[:, 0:1, :, :] * (2.0 / (ten_input.shape[3] - 1.0)),
                        ten_flow[:, 1:2, :, :] * (2.0 / (ten_input.shape[2] - 1.0))], 1)
  ten_input = torch.cat([ten_input, partial], 1)
  ten_output = F.grid_sample(input=ten_input, grid=(grid + ten_flow).permute(0, 2, 3, 1), mode="bilinear",
                             padding_mode="zeros", align_corners=True)
  ten_mask = ten_output[:, -1:, :, :]
  ten_mask[ten_mask > 0.999] = 1.0
  ten_mask[ten_mask < 1.0] = 0.0
  return ten_output[:, :-1, :, :] * ten_mask


class PWCExtractor(torch.nn.Module):

  def __init__(self):
    super().__init__()
    chans = [3, 16, 32, 64, 96, 128, 196]
    for i, name in enumerate(("netOne", "netTwo", "netThr", "netFou", "netFiv", "netSix")):
      setattr(self, name, torch.nn.Sequential(
          torch.nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1), torch.nn.LeakyReLU(inplace=False, negative_slope=0.1),
          torch.nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1), torch.nn.LeakyReLU(inplace=False, negative_slope=0.1),
          torch.nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1), torch.nn.LeakyReLU(inplace=False, negative_slope=0.1)))

  def forward(self, x):
    out = []
    for name in ("netOne", "netTwo", "netThr", "netFou", "netFiv", "netSix"):
      x = getattr(self, name)(x)
      out.append(x)
    return out


class PWCDecoder(torch.nn.Module):

  def __init__(self, level):
    super().__init__()
    table = [None, None, 81 + 32 + 2 + 2, 81 + 64 + 2 + 2, 81 + 96 + 2 + 2, 81 + 128 + 2 + 2, 81, None]
    previous, current = table[level + 1], table[level + 0]
    if level < 6:
      self.netUpflow = torch.nn.ConvTranspose2d(2, 2, kernel_size=4, stride=2, padding=1)
      self.netUpfeat = torch.nn.ConvTranspose2d(previous + 128 + 128 + 96 + 64 + 32, 2, kernel_size=4, stride=2,
                                                padding=1)
      self.fltBackwarp = [None, None, None, 5.0, 2.5, 1.25, 0.625, None][level + 1]
    leaky = lambda: torch.nn.LeakyReLU(inplace=False, negative_slope=0.1)
    self.netOne = torch.nn.Sequential(torch.nn.Conv2d(current, 128, 3, 1, 1), leaky())
    self.netTwo = torch.nn.Sequential(torch.nn.Conv2d(current + 128, 128, 3, 1, 1), leaky())
    self.netThr = torch.nn.Sequential(torch.nn.Conv2d(current + 256, 96, 3, 1, 1), leaky())
    self.netFou = torch.nn.Sequential(torch.nn.Conv2d(current + 352, 64, 3, 1, 1), leaky())
    self.netFiv = torch.nn.Sequential(torch.nn.Conv2d(current + 416, 32, 3, 1, 1), leaky())
    self.netSix = torch.nn.Sequential(torch.nn.Conv2d(current + 448, 2, 3, 1, 1))

  def forward(self, one, two, previous):
    if previous is None:
      feat = F.leaky_relu(correlation(one, two), negative_slope=0.1)
    else:
      flow = self.netUpflow(previous["tenFlow"])
      feat = self.netUpfeat(previous["tenFeat"])
      volume = F.leaky_relu(correlation(one, pwc_backwarp(two, flow * self.fltBackwarp)), negative_slope=0.1)
      feat = torch.cat([volume, one, flow, feat], 1)
    for name in ("netOne", "netTwo", "netThr", "netFou", "netFiv"):
      feat = torch.cat([getattr(self, name)(feat), feat], 1)
    return {"tenFlow": self.netSix(feat), "tenFeat": feat}


class PWCNetwork(torch.nn.Module):

  def __init__(self):
    super().__init__()
    self.netExtractor = PWCExtractor()
    self.netTwo, self.netThr, self.netFou = PWCDecoder(2), PWCDecoder(3), PWCDecoder(4)
    self.netFiv, self.netSix = PWCDecoder(5), PWCDecoder(6)
    leaky = lambda: torch.nn.LeakyReLU(inplace=False, negative_slope=0.1)
    self.netRefiner = torch.nn.Module()
    self.netRefiner.netMain = torch.nn.Sequential(
        torch.nn.Conv2d(81 + 32 + 2 + 2 + 128 + 128 + 96 + 64 + 32, 128, 3, 1, padding=1, dilation=1), leaky(),
        torch.nn.Conv2d(128, 128, 3, 1, padding=2, dilation=2), leaky(),
        torch.nn.Conv2d(128, 128, 3, 1, padding=4, dilation=4), leaky(),
        torch.nn.Conv2d(128, 96, 3, 1, padding=8, dilation=8), leaky(),
        torch.nn.Conv2d(96, 64, 3, 1, padding=16, dilation=16), leaky(),
        torch.nn.Conv2d(64, 32, 3, 1, padding=1, dilation=1), leaky(),
        torch.nn.Conv2d(32, 2, 3, 1, padding=1, dilation=1))

  def forward(self, one, two):
    one, two = self.netExtractor(one), self.netExtractor(two)
    estimate = self.netSix(one[-1], two[-1], None)
    estimate = self.netFiv(one[-2], two[-2], estimate)
    estimate = self.netFou(one[-3], two[-3], estimate)
    estimate = self.netThr(one[-4], two[-4], estimate)
    estimate = self.netTwo(one[-5], two[-5], estimate)
    return (estimate["tenFlow"] + self.netRefiner.netMain(estimate["tenFeat"])) * 20.0


def pwc_estimate(net, one, two):
  """run.py `estimate` on (1, 3, H, W) BGR frames."""
  h, w = one.shape[2], one.shape[3]
  pw, ph = int(math.floor(math.ceil(w / 64.0) * 64.0)), int(math.floor(math.ceil(h / 64.0) * 64.0))
  one = F.interpolate(input=one, size=(ph, pw), mode="bilinear", align_corners=False)
  two = F.interpolate(input=two, size=(ph, pw), mode="bilinear", align_corners=False)
  flow = F.interpolate(input=net(one, two), size=(h, w), mode="bilinear", align_corners=False)
  flow[:, 0, :, :] *= float(w) / float(pw)
  flow[:, 1, :, :] *= float(h) / float(ph)
  return flow


def make_pwcnet(state, rng):
  frames = images(rng, (2, 1, 48, 80, 3))
  net = load(PWCNetwork(), state)
  with torch.no_grad():
    flow = pwc_estimate(net, to_torch(frames[0], bgr=True), to_torch(frames[1], bgr=True))
  return {"frame0": frames[0], "frame1": frames[1], "flow": to_nhwc(flow)}


# ------------------------------------------------------------------------------------------------------------------
# torchvision (VGG-19, and the trunks of LPIPS)
# ------------------------------------------------------------------------------------------------------------------

VGG_CFGS = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg):
  """torchvision vgg.py `make_layers` (batch_norm=False)."""
  layers, in_channels = [], 3
  for v in cfg:
    if isinstance(v, int):
      layers += [torch.nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1), torch.nn.ReLU(inplace=True)]
      in_channels = v
    else:
      layers += [torch.nn.MaxPool2d(kernel_size=2, stride=2)]
  return torch.nn.Sequential(*layers)


def alexnet_features():
  """torchvision alexnet.py `AlexNet.features`."""
  return torch.nn.Sequential(
      torch.nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), torch.nn.ReLU(inplace=True),
      torch.nn.MaxPool2d(kernel_size=3, stride=2),
      torch.nn.Conv2d(64, 192, kernel_size=5, padding=2), torch.nn.ReLU(inplace=True),
      torch.nn.MaxPool2d(kernel_size=3, stride=2),
      torch.nn.Conv2d(192, 384, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True),
      torch.nn.Conv2d(384, 256, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True),
      torch.nn.Conv2d(256, 256, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True),
      torch.nn.MaxPool2d(kernel_size=3, stride=2))


def features_state(state):
  return {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}


def make_vgg19(state, rng):
  image = images(rng, (1, 32, 48, 3))
  features = load(make_layers(VGG_CFGS["E"]), features_state(state))
  mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
  with torch.no_grad():
    relu4_4 = features[:27]((to_torch(image) - mean) / std)  # features.25 = conv4_4, .26 its ReLU
  return {"image": image, "relu4_4": to_nhwc(relu4_4)}


_TRUNKS = {}  # what the stand-in torchvision.models hands to lpips: "alexnet" / "vgg16" -> features from the seed


def _stand_in_model(name):
  def model_fn(pretrained=False, **kwargs):
    assert not pretrained and not kwargs, "the stand-in has no ImageNet weights"
    return types.SimpleNamespace(features=_TRUNKS[name])
  return model_fn


def _install_torchvision_stand_in():
  stand_in = types.ModuleType("torchvision")
  stand_in.models = types.SimpleNamespace(alexnet=_stand_in_model("alexnet"), vgg16=_stand_in_model("vgg16"))
  sys.modules["torchvision"] = stand_in


def make_lpips(net_name):
  def make(state, rng):
    features = {"alex": alexnet_features, "vgg": lambda: make_layers(VGG_CFGS["D"])}[net_name]()
    _TRUNKS[{"alex": "alexnet", "vgg": "vgg16"}[net_name]] = load(features, features_state(state))
    _install_torchvision_stand_in()
    import lpips  # pylint: disable=g-import-not-at-top
    metric = lpips.LPIPS(net=net_name, version="0.1", pnet_rand=True, verbose=False).double().eval()
    heads = {f"lin{k}.model.1.weight": metric.state_dict()[f"lin{k}.model.1.weight"].float().numpy() for k in range(5)}
    image0 = images(rng, (2, 48, 48, 3))
    image1 = image0.copy()
    image1[0] = images(rng, (48, 48, 3))  # pair 0: unrelated images; pair 1: a small perturbation
    image1[1] = np.clip(image0[1].astype(np.int32) + rng.integers(-8, 9, size=(48, 48, 3)), 0, 255).astype(np.uint8)
    with torch.no_grad():
      distance = metric(to_torch(image0), to_torch(image1), normalize=True)
    return {"image0": image0, "image1": image1, "distance": distance.numpy().reshape(-1).astype(np.float32),
            **{f"heads/{k}": v for k, v in heads.items()}}
  return make


MAKERS = {"sepconv": make_sepconv, "superslomo": make_superslomo, "pwcnet": make_pwcnet, "vgg19": make_vgg19,
          "lpips_alex": make_lpips("alex"), "lpips_vgg": make_lpips("vgg")}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--arch", action="append", choices=ARCHS, help="default: all")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                    "fixtures"))
  parser.add_argument("--torch-files-only", action="store_true",
                      help="write only the .pth files (the LPIPS heads from the existing lpips_alex.npz)")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  for arch in [] if args.torch_files_only else args.arch or ARCHS:
    state = weights.random_state_dict(arch, SEED)
    rng = np.random.default_rng(SEED + 1)
    arrays = MAKERS[arch](state, rng)
    arrays.update(seed=np.array(SEED), fingerprint=fingerprint(state), source=np.array(SOURCES[arch]),
                  torch_version=np.array(torch.__version__))
    path = os.path.join(args.out, f"{arch}.npz")
    np.savez_compressed(path, **arrays)
    print(f"{arch}: {path} ({os.path.getsize(path) / 1024:.0f} KiB): "
          + ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if v.ndim))
  write_torch_files(args.out)


if __name__ == "__main__":
  main()
