"""Each loss term of Eq. (5), ReFIn, against a hand-computed value on a tiny input."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from helpers import vgg_state
from jaxvfi import losses

CTX = {"warp_padding": "zeros", "warp_impl": "xla"}


def _img(values):
  return jnp.asarray(values, jnp.float32).reshape(1, 1, -1, 1).repeat(3, axis=-1)


def test_l1_hand_computed():
  preds = {"image": _img([0.2, 0.4])}
  batch = {"target": _img([0.1, 0.7])}
  assert float(losses.l1_loss(preds, batch, CTX)) == pytest.approx((0.1 + 0.3) / 2, abs=1e-7)


def test_smoothness_hand_computed():
  # flow_01 along x: dx = 0,1,3 in a 1x4 row -> |diffs| 1,2 in x; no y differences (one row).
  f01 = jnp.zeros((1, 2, 3, 2)).at[0, :, :, 0].set(jnp.array([[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]))
  f10 = jnp.zeros((1, 2, 3, 2)).at[0, 1, :, 1].set(2.0)  # dy jumps by 2 between rows, x-constant
  preds = {"flow_01": f01, "flow_10": f10}
  # flow_01: x-diffs of channel 0 are [1, 2] per row, channel 1 zero -> mean over (2 rows, 2 diffs, 2 ch) = 6/8.
  # flow_10: y-diffs of channel 1 are 2 at 3 columns, channel 0 zero -> mean over (1, 3, 2) = 6/6 = 1.
  expected = 6 / 8 + 1.0
  assert float(losses.smoothness_loss(preds, {}, CTX)) == pytest.approx(expected, abs=1e-6)


def test_warp_loss_zero_and_integer_flow():
  f0 = _img([0.0, 0.2, 0.4, 0.6])
  f1 = _img([0.2, 0.4, 0.6, 0.8])
  target = _img([0.1, 0.3, 0.5, 0.7])
  zero = jnp.zeros((1, 1, 4, 2))
  preds = {k: zero for k in ("flow_t0_approx", "flow_t1_approx", "flow_01", "flow_10")}
  batch = {"frame0": f0, "frame1": f1, "target": target}
  # Identity warps: |f0 - t| = 0.1, |f1 - t| = 0.1, |f0 - f1| = 0.2 twice.
  assert float(losses.warp_loss(preds, batch, CTX)) == pytest.approx(0.1 + 0.1 + 0.2 + 0.2, abs=1e-6)
  # bw(f0, +1 px in x) = [0.2, 0.4, 0.6, 0 (outside, zeros padding)] == f1 except the last pixel (0 vs 0.8).
  one = zero.at[..., 0].set(1.0)
  preds["flow_10"] = one
  expected = 0.1 + 0.1 + 0.8 / 4 + 0.2
  assert float(losses.warp_loss(preds, batch, CTX)) == pytest.approx(expected, abs=1e-6)


def test_weighted_total_and_perceptual_note():
  cfg = ml_collections.ConfigDict({"weights": {"l1": 204.0, "perceptual": 0.005, "smoothness": 1.0},
                                   "vgg_weights": None, "perceptual_layer": "relu4_4"})
  loss_fn, notes = losses.make_loss_fn(cfg)
  assert len(notes) == 1 and "perceptual" in notes[0]
  preds = {"image": _img([0.2, 0.4]), "flow_01": jnp.zeros((1, 1, 2, 2)), "flow_10": jnp.zeros((1, 1, 2, 2))}
  total, m = loss_fn(preds, {"target": _img([0.1, 0.7])})
  assert float(total) == pytest.approx(204 * 0.2, rel=1e-6)
  assert "loss_perceptual" not in m and float(m["loss_smoothness"]) == 0.0


def test_unknown_term_raises():
  cfg = ml_collections.ConfigDict({"weights": {"l2": 1.0}})
  with pytest.raises(ValueError, match="unknown loss term"):
    losses.make_loss_fn(cfg)


def test_perceptual_term_hand_computed():
  # With phi the identity, L_p is the mean squared difference of the images themselves.
  preds = {"image": _img([0.2, 0.4])}
  batch = {"target": _img([0.1, 0.7])}
  ctx = {"vgg_features": lambda x: x}
  assert float(losses.perceptual_loss(preds, batch, ctx)) == pytest.approx((0.01 + 0.09) / 2, rel=1e-6)


def test_perceptual_term_with_vgg_weights_file(tmp_path):
  from jaxvfi import weights  # pylint: disable=g-import-not-at-top
  from jaxvfi.models import vgg  # pylint: disable=g-import-not-at-top
  path = tmp_path / "vgg19.npz"
  np.savez(path, **{k: 0.05 * v for k, v in vgg_state(0).items()})
  cfg = ml_collections.ConfigDict({"weights": {"perceptual": 2.0}, "vgg_weights": str(path),
                                   "perceptual_layer": "relu2_2"})
  loss_fn, notes = losses.make_loss_fn(cfg)
  assert notes == []
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.random((1, 16, 16, 3)), jnp.float32) for _ in range(2))
  total, m = loss_fn({"image": a}, {"target": b})
  net = vgg.VGG19(output_layer="relu2_2")
  params = weights.load_params("vgg19", path)
  fa, fb = (net.apply({"params": params}, x)["relu2_2"] for x in (a, b))
  expected = float(jnp.mean((fa - fb) ** 2))
  assert expected > 0 and float(m["loss_perceptual"]) == pytest.approx(expected, rel=1e-5)
  assert float(total) == pytest.approx(2.0 * expected, rel=1e-5)
