"""Super-SloMo / ReFIn: parameter counts (Table 3, ReFIn) and the equations of §3 on hand-made inputs."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxvfi import train
from jaxvfi.models import superslomo
from jaxvfi.models import unet


@pytest.mark.parametrize("cin,cout,expected", [(6, 4, 19_794_116), (20, 5, 19_816_357), (16, 5, 19_810_085),
                                               (20, 3, 19_815_779)])
def test_unet_parameter_counts(cin, cout, expected):
  shapes = jax.eval_shape(unet.UNet(cout).init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, cin)))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(shapes)) == expected


def _config(variant):
  c = ml_collections.ConfigDict()
  c.model = dict(name=variant, flow="unet", interpolation_backbone="unet",
                 refinement_backbone="unet", use_refinement=True)
  c.data = dict(crop_size=32)
  return c


def test_module_counts_refin_and_superslomo():
  c = _config("refin")
  counts = train.param_counts(train.build_model(c.model), c)
  assert counts == {"flow": 19_794_116, "interpolation": 19_810_085, "refinement": 19_815_779,
                    "total": 19_794_116 + 19_810_085 + 19_815_779}
  c = _config("superslomo")
  counts = train.param_counts(train.build_model(c.model), c)
  assert counts == {"flow": 19_794_116, "interpolation": 19_816_357, "total": 19_794_116 + 19_816_357}


def test_intermediate_flows_eq1():
  f01 = jnp.full((1, 1, 1, 2), 4.0)
  f10 = jnp.full((1, 1, 1, 2), -2.0)
  t = jnp.array([0.25])
  ft0, ft1 = superslomo.intermediate_flows(f01, f10, t)
  # F^t->0 = -(0.75)(0.25)(4) + 0.0625(-2) = -0.75 - 0.125; F^t->1 = 0.5625*4 - 0.25*0.75*(-2) = 2.25 + 0.375
  np.testing.assert_allclose(ft0, -0.875)
  np.testing.assert_allclose(ft1, 2.625)


def test_blend_eq3():
  w0 = jnp.full((1, 1, 1, 3), 0.2)
  w1 = jnp.full((1, 1, 1, 3), 0.8)
  v = jnp.full((1, 1, 1, 1), 0.25)
  t = jnp.array([0.4])
  out = superslomo.blend(w0, w1, v, t)
  a, b = 0.6 * 0.25, 0.4 * 0.75
  np.testing.assert_allclose(out, (a * 0.2 + b * 0.8) / (a + b), rtol=1e-6)


def test_forward_pads_unaligned_frames_and_returns_all_predictions():
  c = _config("refin")
  model = train.build_model(c.model)
  params = train.init_params(model, c, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  batch = {"frame0": jnp.asarray(rng.random((1, 40, 36, 3)), jnp.float32),
           "frame1": jnp.asarray(rng.random((1, 40, 36, 3)), jnp.float32), "t": jnp.array([0.5])}
  preds = model.apply({"params": params}, batch)
  assert preds["image"].shape == (1, 40, 36, 3)
  assert preds["flow_t0"].shape == (1, 40, 36, 2) and preds["visibility_t0"].shape == (1, 40, 36, 1)
  assert np.all(np.isfinite(np.asarray(preds["image"])))
  # Eq. (4): the refined image is the blend plus a residual; Eq. (2): residual flows added to Eq. (1) flows.
  assert not np.allclose(preds["image"], preds["image_blend"])
  ft0, _ = superslomo.intermediate_flows(preds["flow_01"], preds["flow_10"], batch["t"])
  np.testing.assert_allclose(ft0, preds["flow_t0_approx"], atol=1e-5)
