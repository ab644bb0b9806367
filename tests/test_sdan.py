"""SDAN (paper 004): parameter counts by hand, CPA against NumPy, alignment by integer offsets, Eq. (6) by hand."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image
import pytest

from jaxvfi import config_lib
from jaxvfi.models import sdan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _batch(c: int, seed: int = 0, batch_size: int = 1, width: int | None = None):
  rng = np.random.default_rng(seed)
  w = c if width is None else width
  arr = lambda h, w_, ch: jnp.asarray(rng.random((batch_size, h, w_, ch)), jnp.float32)
  return {"lr_raw": arr(c, w, 4), "lr_rgb": arr(2 * c, 2 * w, 3), "hr_rgb": arr(8 * c, 8 * w, 3)}


def _count(model, c=64):
  shapes = jax.eval_shape(lambda r: model.init(r, _batch(c), train=False)["params"], jax.random.PRNGKey(0))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def _conv(cin, cout, k=3, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def _hand_count(cin, offsets="squared", attention="cpa", flips=True, shared=False):
  """Layer by layer, as listed in the module docstring (64 features, 16 blocks, x4)."""
  n = _conv(cin, 64)                                                # head
  n += 0 if shared else _conv(12 if flips else 3, 64)               # ref_conv
  n += _conv(128, 64) + _conv(64, 64)                               # offset convs
  n += {"cpa": 2 * 1, "cl": 2 * (_conv(64, 4, 1) + _conv(4, 64, 1)), "none": 0}[attention]
  n += _conv(64, 2 if offsets == "squared" else 18)                 # offset_out
  n += _conv(64, 64) + _conv(64, 3)                                 # deformable conv, aligned head X'
  n += 16 * 2 * _conv(64, 64, bias=False) + _conv(64, 64, bias=False)  # body + its conv
  n += 2 * _conv(64, 256) + _conv(64, 3)                            # two x2 stages, tail
  return n


def test_parameter_counts():
  assert _hand_count(1) == 1_671_818 and _hand_count(3) == 1_672_970  # the papers README
  assert _count(sdan.SDAN()) == 1_671_818  # the authors' 1-channel Bayer mosaic, 128^2 in, 512^2 out
  assert _count(sdan.SDAN(input="rgb")) == 1_672_970
  assert _count(sdan.SDAN(offsets="per_point")) - 1_671_818 == 9_232
  assert _count(sdan.SDAN(input="rgb", shared_reference_conv=True)) == _hand_count(3, shared=True) == 1_665_994
  for row, (offsets, attention, flips) in sdan.TABLE2.items():
    got = _count(sdan.SDAN(offsets=offsets, attention=attention, reference_flips=flips))
    assert got == _hand_count(1, offsets, attention, flips), row
  with pytest.raises(ValueError, match="needs RGB input"):
    _count(sdan.SDAN(shared_reference_conv=True))


def test_pack_matches_loop_and_unpack_inverts():
  x = np.random.default_rng(1).normal(size=(2, 16, 24, 3)).astype(np.float32)
  packed = np.asarray(sdan.pack(jnp.asarray(x), 8))
  assert packed.shape == (2, 2, 3, 192)
  want = np.zeros_like(packed)
  for i in range(2):
    for j in range(3):
      for a in range(8):
        for b in range(8):
          want[:, i, j, (a * 8 + b) * 3:(a * 8 + b + 1) * 3] = x[:, i * 8 + a, j * 8 + b]
  np.testing.assert_array_equal(packed, want)
  np.testing.assert_array_equal(np.asarray(sdan.unpack(jnp.asarray(packed), 8)), x)


def test_unpack_bayer_matches_authors_layout():
  packed = np.random.default_rng(2).random((1, 3, 5, 4)).astype(np.float32)
  mosaic = np.asarray(sdan.unpack_bayer(jnp.asarray(packed)))[0, ..., 0]
  np.testing.assert_array_equal(mosaic[0::2, 0::2], packed[0, ..., 0])  # R
  np.testing.assert_array_equal(mosaic[0::2, 1::2], packed[0, ..., 1])  # G on red's rows
  np.testing.assert_array_equal(mosaic[1::2, 1::2], packed[0, ..., 2])  # B
  np.testing.assert_array_equal(mosaic[1::2, 0::2], packed[0, ..., 3])  # G on blue's rows


def test_cpa_identity_at_init_and_attention_against_numpy():
  x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 16, 8, 2)), jnp.float32)
  cpa = sdan.CrossPackingAttention(8)
  params = cpa.init(jax.random.PRNGKey(0), x)["params"]
  assert params["gamma"].shape == (1,) and float(params["gamma"][0]) == 0.0
  np.testing.assert_array_equal(np.asarray(cpa.apply({"params": params}, x)), np.asarray(x))

  gamma = 0.7
  got = np.asarray(cpa.apply({"params": {"gamma": jnp.array([gamma])}}, x))
  xs = np.asarray(x, np.float64)
  for n in range(2):
    # The code's PatchAttn on NCHW: channels (dy, dx, c) of each 8x8 block, columns = block positions (2 x 1).
    blocks = [xs[n, 8 * i:8 * i + 8, 0:8].reshape(-1) for i in range(2)]
    feat = np.stack(blocks, axis=1)  # (C' = 128, L = 2)
    energy = feat @ feat.T
    shifted = energy.max(axis=1, keepdims=True) - energy
    attention = np.exp(shifted - shifted.max(axis=1, keepdims=True))
    attention /= attention.sum(axis=1, keepdims=True)
    out = gamma * attention @ feat + feat
    for i in range(2):
      np.testing.assert_allclose(got[n, 8 * i:8 * i + 8, 0:8], out[:, i].reshape(8, 8, 2), rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="multiples of 8"):
    cpa.apply({"params": params}, x[:, :12])


def test_integer_offset_equals_shifted_input():
  """Everything after the offsets is convolutional, so a constant integer offset (dy, dx) gives the output of the
  input moved by (-dy, -dx) with zero offset, away from the borders (at LR and, times 4, at HR)."""
  model = sdan.SDAN(input="rgb", features=8, num_blocks=1, impl="xla")
  x = jnp.asarray(np.random.default_rng(4).random((1, 32, 32, 3)), jnp.float32)
  params = model.init(jax.random.PRNGKey(1), _batch(12), train=False)["params"]
  dy, dx = 2, -1
  offset = jnp.broadcast_to(jnp.array([dy, dx], jnp.float32), (1, 32, 32, 2))
  reconstruct = jax.jit(lambda x, o: model.apply({"params": params}, x, o, method=sdan.SDAN.reconstruct))
  got = reconstruct(x, offset)
  want = reconstruct(jnp.roll(x, (-dy, -dx), axis=(1, 2)), jnp.zeros_like(offset))
  unaligned = reconstruct(x, jnp.zeros_like(offset))
  # Receptive field after the offsets: X' head 1 + deformable 1 + aligned head 1 LR px; X~ adds the body (one block
  # and its conv, 3) and the tail (1 + 1/2 + 1/4): under 8 LR px. The roll wraps 2 rows and 1 column.
  inner = np.s_[:, 12:20, 12:20]
  np.testing.assert_allclose(np.asarray(got["aligned"])[inner], np.asarray(want["aligned"])[inner], atol=1e-5)
  hr = np.s_[:, 48:80, 48:80]
  np.testing.assert_allclose(np.asarray(got["image"])[hr], np.asarray(want["image"])[hr], atol=1e-5)
  assert np.abs(np.asarray(got["image"])[hr] - np.asarray(unaligned["image"])[hr]).max() > 1e-2


def test_mask_tests_the_shifted_centre():
  offset = np.zeros((1, 4, 5, 2), np.float32)
  offset[..., 0] = 1.5   # rows y + 1.5 < 4: y <= 2
  offset[..., 1] = -0.5  # columns x - 0.5 >= 0: x >= 1
  want = np.zeros((4, 5))
  want[:3, 1:] = 1
  model = sdan.SDAN()
  got = model.apply({}, jnp.asarray(offset), method=sdan.SDAN.mask)
  np.testing.assert_array_equal(np.asarray(got)[0, ..., 0], want)
  # The whole 3x3 window: rows y - 1 + 1.5 >= 0 and y + 1 + 1.5 < 4 (y <= 1); columns x - 1.5 >= 0 and
  # x + 0.5 < 5 (2 <= x <= 4).
  window = sdan.SDAN(mask_window="window").apply({}, jnp.asarray(offset), method=sdan.SDAN.mask)
  want_window = np.zeros((4, 5))
  want_window[:2, 2:] = 1
  np.testing.assert_array_equal(np.asarray(window)[0, ..., 0], want_window)
  # Per-point offsets: the centre tap (channels 8, 9) decides.
  per_point = np.zeros((1, 4, 5, 18), np.float32)
  per_point[..., 8:10] = offset
  per_point[..., :8] = 100.0
  got = sdan.SDAN(offsets="per_point").apply({}, jnp.asarray(per_point), method=sdan.SDAN.mask)
  np.testing.assert_array_equal(np.asarray(got)[0, ..., 0], want)


def _loss_config(penalty="l1"):
  return ml_collections.ConfigDict({"model": {"scale": 4, "input": "raw"},
                                    "loss": {"weights": {"align": 1.0, "sr": 1.0}, "penalty": penalty, "border": 4}})


def test_loss_eq6_by_hand():
  # LR 4x4 cropped by 4 / 4 = 1 -> 2x2; HR 16x16 cropped by 4 -> 8x8.
  mask = np.zeros((1, 4, 4, 1), np.float32)
  mask[0, 1:3, 1:3, 0] = [[1, 0], [1, 1]]
  mask[0, 0, :, 0] = 1  # in the crop border: ignored
  aligned = np.full((1, 4, 4, 3), 0.5, np.float32)
  reference = np.full((1, 4, 4, 3), 0.25, np.float32)
  image = np.zeros((1, 16, 16, 3), np.float32)
  target = np.zeros((1, 16, 16, 3), np.float32)
  image[0, 4:12, 4:12] = 0.5
  image[0, 4:8, 4:8] = 1.0  # the HR block of LR cell (1, 1), mask 1
  image[0, :4] = 9.0  # in the crop border: ignored
  preds = {k: jnp.asarray(v) for k, v in dict(mask=mask, aligned=aligned, reference=reference, image=image).items()}
  loss_fn, notes = sdan.make_loss_fn(_loss_config())
  total, metrics = loss_fn(preds, {"hr_rgb": jnp.asarray(target)})
  # align: |0.5 - 0.25| on 3 of 4 cells -> 0.25 * 3 / 4. sr: (16 px x 1.0 + 2 x 16 px x 0.5) / 64 px.
  assert float(metrics["loss_align"]) == pytest.approx(0.1875)
  assert float(metrics["loss_sr"]) == pytest.approx(32 / 64)
  assert float(total) == pytest.approx(0.6875)
  assert len(notes) == 1 and "30.53 dB / 0.870 / 0.133" in notes[0] and "20.15 dB" in notes[0]
  charbonnier, _ = sdan.make_loss_fn(_loss_config("charbonnier"))
  assert float(charbonnier(preds, {"hr_rgb": jnp.asarray(target)})[0]) == pytest.approx(0.6875, rel=1e-5)
  with pytest.raises(ValueError, match="loss.penalty"):
    sdan.make_loss_fn(_loss_config("l2"))


def test_forward_shapes_references_and_any_size():
  model = sdan.SDAN(features=8, num_blocks=1, impl="xla")
  batch = _batch(8, batch_size=2)
  variables = model.init(jax.random.PRNGKey(0), batch, train=False)
  apply = jax.jit(model.apply, static_argnames="train")
  train = apply(variables, batch, train=True)
  assert {k: v.shape for k, v in train.items()} == {
      "image": (2, 64, 64, 3), "aligned": (2, 16, 16, 3), "mask": (2, 16, 16, 1), "offset": (2, 16, 16, 2),
      "reference": (2, 16, 16, 3)}
  # Training: Y' = antialiased bicubic of the target. Inference: {X, X}, the input shot's RGB.
  want = jax.image.resize(batch["hr_rgb"], (2, 16, 16, 3), "bicubic", antialias=True)
  np.testing.assert_allclose(np.asarray(train["reference"]), np.asarray(want), atol=1e-6)
  infer = apply(variables, batch, train=False)
  np.testing.assert_array_equal(np.asarray(infer["reference"]), np.asarray(batch["lr_rgb"]))
  # Packed 5 x 7 (mosaic 10 x 14): padded to 16 x 16 inside, cropped back.
  odd = _batch(5, width=7)
  out = apply(variables, odd, train=False)
  assert out["image"].shape == (1, 40, 56, 3) and out["mask"].shape == (1, 10, 14, 1)
  assert np.isfinite(np.asarray(out["image"])).all()


def test_bicubic_baseline_matches_pillow():
  rgb = np.random.default_rng(5).random((1, 12, 10, 3)).astype(np.float32)
  got = np.asarray(sdan.baselines({"lr_rgb": jnp.asarray(rgb)}, ml_collections.ConfigDict({"model": {}}))["bicubic"])
  assert got.shape == (1, 48, 40, 3)
  for c in range(3):  # Pillow's BICUBIC is the same Keys kernel (a = -0.5); borders are handled differently.
    want = np.asarray(Image.fromarray(rgb[0, ..., c], mode="F").resize((40, 48), Image.Resampling.BICUBIC))
    np.testing.assert_allclose(got[0, 8:-8, 8:-8, c], want[8:-8, 8:-8], atol=1e-5)


@pytest.mark.parametrize("arg, cin, row, shared, count", [
    ("", 1, "flip", False, 1_671_818), ("input=rgb", 3, "flip", False, 1_672_970),
    ("input=rgb,same_layer", 3, "flip", True, 1_665_994), ("table2=dcn", 1, "dcn", False, 1_675_864),
    ("table2=sdcn", 1, "sdcn", False, 1_666_632), ("table2=cl", 1, "cl", False, 1_667_792),
    ("table2=cp", 1, "cp", False, 1_666_634)])
def test_config_variants(arg, cin, row, shared, count):
  config = config_lib.load_config(os.path.join(ROOT, "configs", "sdan.py"), arg)
  model = sdan.build(config.model)
  batch = sdan.example_batch(config)
  assert batch["lr_raw"].shape == (1, 64, 64, 4) and batch["hr_rgb"].shape == (1, 512, 512, 3)  # 128^2 -> 512^2
  shapes = jax.eval_shape(lambda r: model.init(r, batch, train=False)["params"], jax.random.PRNGKey(0))
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == count
  assert _hand_count(cin, *sdan.TABLE2[row], shared=shared) == count
