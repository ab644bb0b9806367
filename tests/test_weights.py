"""Tests for jaxvfi.weights: PyTorch state_dict layouts -> Flax params.

Oracles: state_dicts the test builds itself from the two PyTorch constructors written out below (sniklaus/pytorch-pwc
`Network.__init__`, torchvision `vgg19().features` + classifier), their known sizes (9,374,274 and 20,024,384 + the
classifier), and naive NumPy loops of PyTorch's Conv2d and ConvTranspose2d on the original (OIHW / IOHW) weights.
"""
from __future__ import annotations

import pathlib
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

from helpers import NAMES, pwc_torch_shapes, random_state, vgg_state, vgg_torch_shapes
from jaxvfi import weights
from jaxvfi.models import pwcnet, vgg

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
def test_transcribed_layouts_have_the_published_sizes():
  assert sum(np.prod(s) for s in pwc_torch_shapes().values()) == 9_374_274
  assert sum(np.prod(s) for s in vgg_torch_shapes().values()) == 143_667_240  # torchvision vgg19, all layers
  features = {k: s for k, s in vgg_torch_shapes().items() if k.startswith("features.")}
  assert sum(np.prod(s) for s in features.values()) == 20_024_384


@pytest.mark.parametrize("arch, shapes_fn", [("pwcnet", pwc_torch_shapes), ("vgg19", vgg_torch_shapes)])
def test_every_key_is_used_exactly_once(arch, shapes_fn):
  shapes = {k: s for k, s in shapes_fn().items() if not k.startswith("classifier.")}
  state = random_state(shapes, ids=True)
  params = weights.convert_state_dict(arch, state)
  leaves = jax.tree.leaves(params)
  assert len(leaves) == len(state)
  ids = sorted(int(np.asarray(leaf).flat[0]) for leaf in leaves)
  assert ids == list(range(len(state)))  # a bijection: no key dropped, none used twice
  assert all(np.all(np.asarray(leaf) == np.asarray(leaf).flat[0]) for leaf in leaves)


def _compare_named(params, state, pairs):
  for key, path, how in pairs:
    got = np.asarray(flax.traverse_util.flatten_dict(params)[path])
    want = state[key].transpose(2, 3, 1, 0) if how == "kernel" else state[key]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_pwcnet_roundtrip_through_files(tmp_path, fmt):
  state = random_state(pwc_torch_shapes(), seed=1)
  path = tmp_path / f"pwc.{fmt}"
  if fmt == "npz":
    np.savez(path, **state)
  else:
    safetensors.numpy.save_file(state, str(path))
  params = weights.load_params("pwcnet", path)
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)) == 9_374_274
  _compare_named(params, state, [
      ("netExtractor.netOne.0.weight", ("extractor", "level1_conv0", "kernel"), "kernel"),
      ("netExtractor.netSix.4.bias", ("extractor", "level6_conv2", "bias"), "bias"),
      ("netFiv.netThr.0.weight", ("decoder5", "conv2", "kernel"), "kernel"),
      ("netTwo.netUpfeat.weight", ("decoder2", "upfeat", "kernel"), "kernel"),
      ("netSix.netSix.0.bias", ("decoder6", "conv5", "bias"), "bias"),
      ("netRefiner.netMain.12.weight", ("refiner", "conv6", "kernel"), "kernel"),
  ])


def test_pwcnet_released_module_prefix_is_renamed():
  state = random_state(pwc_torch_shapes(), seed=2)
  old = {k.replace("net", "module"): v for k, v in state.items()}  # network-default.pytorch naming
  assert "moduleExtractor.moduleOne.0.weight" in old
  params = weights.convert_state_dict("pwcnet", old)
  _compare_named(params, state, [("netFou.netUpflow.weight", ("decoder4", "upflow", "kernel"), "kernel")])


def test_missing_and_unused_keys_are_listed():
  state = random_state(pwc_torch_shapes(), seed=3)
  del state["netThr.netUpfeat.bias"]
  state["netRefiner.netMain.14.weight"] = np.zeros((2, 2, 3, 3), np.float32)
  with pytest.raises(ValueError, match=r"1 missing keys \['netThr.netUpfeat.bias'\].*1 unused keys "
                                       r"\['netRefiner.netMain.14.weight'\]"):
    weights.convert_state_dict("pwcnet", state)


def test_wrong_shape_is_reported():
  state = random_state(pwc_torch_shapes(), seed=4)
  state["netTwo.netOne.0.weight"] = state["netTwo.netOne.0.weight"][:, :-1]
  with pytest.raises(ValueError, match="decoder2/conv0/kernel"):
    weights.convert_state_dict("pwcnet", state)


def test_vgg19_classifier_ignored_cli_writes_features_only(tmp_path):
  state = vgg_state(seed=5)
  src, dst = tmp_path / "vgg19.safetensors", tmp_path / "vgg19.npz"
  safetensors.numpy.save_file(state, str(src))
  assert weights.main(["convert", "--arch=vgg19", f"--src={src}", f"--dst={dst}"]) == 0
  with np.load(dst) as f:
    assert sorted(f.files) == sorted(k for k in state if k.startswith("features."))
  params = weights.load_params("vgg19", dst)
  assert sorted(params) == [f"conv{b}_{i}" for b, n in enumerate((2, 2, 4, 4, 4), 1) for i in range(1, n + 1)]
  _compare_named(params, state, [("features.34.weight", ("conv5_4", "kernel"), "kernel"),
                                 ("features.19.bias", ("conv4_1", "bias"), "bias")])
  bad = dict(state, **{"features.1.weight": np.zeros((64,), np.float32)})  # a ReLU has no parameters
  with pytest.raises(ValueError, match=r"unused keys \['features.1.weight'\]"):
    weights.convert_state_dict("vgg19", bad)


def _naive_conv(x, w, b, stride, pad):
  """PyTorch Conv2d: x (C, H, W), w (O, C, kh, kw)."""
  xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
  o, _, kh, kw = w.shape
  ho, wo = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
  out = np.zeros((o, ho, wo))
  for i in range(ho):
    for j in range(wo):
      for oc in range(o):
        out[oc, i, j] = np.sum(xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw] * w[oc]) + b[oc]
  return out


def _naive_conv_transpose(x, w, b, stride, pad):
  """PyTorch ConvTranspose2d: x (C, H, W), w (C, O, kh, kw); scatter each input pixel, then crop `pad`."""
  c, h, wd = x.shape
  _, o, kh, kw = w.shape
  full = np.zeros((o, (h - 1) * stride + kh, (wd - 1) * stride + kw))
  for ci in range(c):
    for i in range(h):
      for j in range(wd):
        full[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += x[ci, i, j] * w[ci]
  return full[:, pad:full.shape[1] - pad, pad:full.shape[2] - pad] + b[:, None, None]


def test_converted_conv_matches_pytorch_conv():
  state = vgg_state(seed=6)
  params = weights.convert_state_dict("vgg19", state)
  x = np.random.default_rng(7).uniform(size=(1, 6, 7, 3)).astype(np.float32)
  # VGG19 relu1_1 = ReLU(conv1_1(normalised x)) with torchvision's features.0 (padding 1).
  got = vgg.VGG19(output_layer="relu1_1").apply({"params": params}, jnp.asarray(x))["relu1_1"][0]
  xn = ((x[0] - np.array(vgg.IMAGENET_MEAN)) / np.array(vgg.IMAGENET_STD)).transpose(2, 0, 1)
  want = np.maximum(_naive_conv(xn, state["features.0.weight"], state["features.0.bias"], 1, 1), 0.0)
  np.testing.assert_allclose(got, want.transpose(1, 2, 0), rtol=1e-4, atol=1e-4)
  # A stride-2 conv (PWC-Net extractor level 1: Conv2d(3, 16, 3, stride=2, padding=1)).
  rng = np.random.default_rng(8)
  w, b = rng.normal(size=(16, 3, 3, 3)).astype(np.float32), rng.normal(size=16).astype(np.float32)
  layer = pwcnet.conv3x3(16, "c", stride=2)
  got = layer.apply({"params": {"kernel": weights.convert_kernel(w, "conv"), "bias": b}}, jnp.asarray(x))[0]
  np.testing.assert_allclose(got, _naive_conv(x[0].transpose(2, 0, 1), w, b, 2, 1).transpose(1, 2, 0),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("key", ["netTwo.netUpflow", "netFiv.netUpfeat"])
def test_converted_conv_transpose_matches_pytorch(key):
  state = random_state(pwc_torch_shapes(), seed=9)
  params = flax.traverse_util.flatten_dict(weights.convert_state_dict("pwcnet", state))
  w, b = state[key + ".weight"], state[key + ".bias"]
  level = 2 + NAMES[1:].index(key.split(".")[0][3:])
  x = np.random.default_rng(10).normal(size=(1, 3, 4, w.shape[0])).astype(np.float32)
  layer = pwcnet.deconv4x4(2, "d")
  kind = key.split(".")[1][3:].lower()
  layer_params = {p: params[(f"decoder{level}", kind, p)] for p in ("kernel", "bias")}
  got = layer.apply({"params": layer_params}, jnp.asarray(x))[0]
  want = _naive_conv_transpose(x[0].transpose(2, 0, 1), w, b, 2, 1).transpose(1, 2, 0)
  assert got.shape == want.shape == (6, 8, 2)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
  # The same kernel flipped spatially (the classic mistake) gives something else.
  flipped = {"kernel": layer_params["kernel"][::-1, ::-1], "bias": layer_params["bias"]}
  assert not np.allclose(layer.apply({"params": flipped}, jnp.asarray(x))[0], want, atol=1e-2)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_torch_files_are_read_without_torch(tmp_path, monkeypatch, fmt):
  """A Super-SloMo-like checkpoint saved by torch (tests/fixtures/torch_{zip,legacy}.pth) with `import torch` made to
  fail: flattened, metadata (epoch, a datetime, loss lists) dropped, every tensor float32."""
  monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
  src = tmp_path / "SuperSloMo.ckpt"
  src.write_bytes((FIXTURES / f"torch_{fmt}.pth").read_bytes())
  state = weights.read_state_dict(src)
  assert {"state_dictFC.0.weight", "state_dictAT.1.num_batches_tracked", "edge.float16"} <= set(state)
  assert not {"epoch", "timestamp", "Detail", "loss", "learningRate"} & set(state)
  assert all(v.dtype == np.float32 for v in state.values())
  assert state["state_dictFC.0.weight"].shape == (4, 6, 3, 3)
  garbage = tmp_path / "network-default.pytorch"
  garbage.write_bytes(b"not read")
  with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
    weights.load_params("pwcnet", garbage)


def test_unknown_format_and_arch():
  with pytest.raises(ValueError, match="unknown weights format"):
    weights.read_state_dict("weights.h5")
  with pytest.raises(ValueError, match="arch must be one of"):
    weights.convert_state_dict("resnet", {})


@pytest.mark.parametrize("arch, total", [
    ("sepconv", 21_675_452),                      # papers README, Niklaus et al.
    ("superslomo", 19_794_116 + 19_816_357),      # ReFIn Table 3: UNet 6->4 and 20->5
    ("lpips_alex", 2_469_696 + 64 + 192 + 384 + 256 + 256),   # torchvision alexnet().features + the v0.1 heads
    ("lpips_vgg", 14_714_688 + 64 + 128 + 256 + 512 + 512),   # torchvision vgg16().features + the v0.1 heads
])
def test_new_layouts_have_the_published_sizes_and_use_every_key_once(arch, total):
  layout = weights.torch_layout(arch)
  assert sum(int(np.prod(shape)) for shape, _ in layout.values()) == total
  state = random_state({k: shape for k, (shape, _) in layout.items()}, ids=True)
  leaves = jax.tree.leaves(weights.convert_state_dict(arch, state))
  assert sorted(int(np.asarray(leaf).flat[0]) for leaf in leaves) == list(range(len(state)))


def test_sepconv_older_module_names_and_original_shapes():
  state = weights.random_state_dict("sepconv", seed=11)
  # The original constructor's shapes (run.py): Basic(6, 32) first conv, Subnet's conv 51 -> 51 after upsampling.
  assert state["netConv1.0.weight"].shape == (32, 6, 3, 3)
  assert state["netUpsample5.1.weight"].shape == (512, 512, 3, 3)
  assert state["netHorizontal2.7.weight"].shape == (51, 51, 3, 3) and state["netVertical1.4.bias"].shape == (51,)
  new = weights.convert_state_dict("sepconv", state)
  old = weights.convert_state_dict("sepconv", {k.replace("net", "module"): v for k, v in state.items()})
  jax.tree.map(np.testing.assert_array_equal, new, old)
  _compare_named(new, state, [("netHorizontal1.7.weight", ("sepconv", "kh0", "head", "kernel"), "kernel"),
                              ("netVertical2.2.bias", ("sepconv", "kv1", "conv1", "bias"), "bias"),
                              ("netDeconv3.4.weight", ("sepconv", "deconv3", "conv2", "kernel"), "kernel"),
                              ("netUpsample2.1.weight", ("sepconv", "upsample2", "conv", "kernel"), "kernel")])


def test_mismatch_names_the_key_and_both_shapes():
  state = weights.random_state_dict("sepconv", seed=12)
  state["netConv1.0.weight"] = np.zeros((32, 3, 3, 3), np.float32)  # one frame's channels only
  with pytest.raises(ValueError, match=r"netConv1\.0\.weight \(sepconv/conv1/conv0/kernel\): got \(32, 3, 3, 3\), "
                                       r"expected \(32, 6, 3, 3\)"):
    weights.convert_state_dict("sepconv", state)
  state = weights.random_state_dict("superslomo", seed=13)
  state["state_dictAT.extra.weight"] = np.zeros((1,), np.float32)
  with pytest.raises(ValueError, match=r"0 missing keys \[\]; 1 unused keys \['state_dictAT.extra.weight'\]"):
    weights.convert_state_dict("superslomo", state)


def test_superslomo_checkpoint_is_flattened_and_metadata_dropped(tmp_path):
  """SuperSloMo.ckpt is torch.save of {"state_dictFC": ..., "state_dictAT": ..., "epoch": ..., "loss": [...]}
  (train.py); read here with two tiny stand-in tensors per part."""
  torch = pytest.importorskip("torch")
  nested = {"Detail": "End to end Super SloMo.", "epoch": 199, "loss": [0.1, 0.2], "learningRate": 1e-5,
            "state_dictFC": {"conv1.weight": torch.ones(2, 6, 7, 7), "conv1.bias": torch.zeros(2)},
            "state_dictAT": {"conv3.weight": torch.full((5, 32, 3, 3), 2.0), "conv3.bias": torch.ones(5)}}
  src = tmp_path / "SuperSloMo.ckpt"
  torch.save(nested, src)
  state = weights.read_state_dict(src)
  assert sorted(state) == ["state_dictAT.conv3.bias", "state_dictAT.conv3.weight", "state_dictFC.conv1.bias",
                           "state_dictFC.conv1.weight"]
  np.testing.assert_array_equal(state["state_dictAT.conv3.weight"], np.full((5, 32, 3, 3), 2.0, np.float32))
  with pytest.raises(ValueError, match=r"state_dictFC.conv1.weight \(flow/unet/conv1/kernel\): got \(2, 6, 7, 7\), "
                                       r"expected \(32, 6, 7, 7\)"):
    weights.convert_state_dict("superslomo", {**weights.random_state_dict("superslomo", 14), **state})


def test_lpips_trunk_and_heads_from_two_files(tmp_path):
  state = weights.random_state_dict("lpips_alex", seed=15)
  trunk = {k: v for k, v in state.items() if k.startswith("features.")}
  trunk["classifier.1.weight"] = np.zeros((1, 1), np.float32)  # torchvision's classifier: dropped on purpose
  heads = {k: v for k, v in state.items() if k.startswith("lin")}
  np.savez(tmp_path / "alexnet.npz", **trunk)
  safetensors.numpy.save_file(heads, str(tmp_path / "alex.safetensors"))
  dst = tmp_path / "lpips_alex.npz"
  assert weights.main(["convert", "--arch=lpips_alex", f"--src={tmp_path / 'alexnet.npz'}",
                       f"--src={tmp_path / 'alex.safetensors'}", f"--dst={dst}"]) == 0
  with np.load(dst) as f:
    assert sorted(f.files) == sorted(state)
  params = weights.load_params("lpips_alex", dst)
  _compare_named(params, state, [("features.8.weight", ("net", "conv4", "kernel"), "kernel")])
  np.testing.assert_array_equal(params["lin2"]["kernel"], state["lin2.model.1.weight"].transpose(2, 3, 1, 0))
  with pytest.raises(ValueError, match="key lin0.model.1.weight is in both"):
    weights.convert_file("lpips_alex", [tmp_path / "alex.safetensors", tmp_path / "alex.safetensors"], dst)


def test_random_cli_writes_a_loadable_file(tmp_path):
  dst = tmp_path / "pwc.npz"
  assert weights.main(["random", "--arch=pwcnet", "--seed=3", f"--dst={dst}"]) == 0
  jax.tree.map(np.testing.assert_array_equal, weights.load_params("pwcnet", dst),
               weights.convert_state_dict("pwcnet", weights.random_state_dict("pwcnet", 3)))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    weights.load_params("pwcnet", tmp_path / "missing.npz")
