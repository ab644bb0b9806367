"""Whole-state checkpoints (`jaxvfi.checkpoints`) and inference without the training stack."""
import os
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import utils


@flax.struct.dataclass
class _State:
  step: jax.Array
  params: dict
  opt_state: optax.OptState
  extra_net: dict


def test_every_field_of_a_state_round_trips(tmp_path):
  params = {"w": jnp.arange(6.0).reshape(2, 3)}
  extra = {"v": jnp.full((4,), 3.0), "n": {"b": jnp.ones((2,), jnp.int32)}}
  tx = optax.adam(1e-3)
  state = _State(step=jnp.asarray(5, jnp.int32), params=params, opt_state=tx.init(params), extra_net=extra)
  state = state.replace(opt_state=jax.tree.map(lambda x: x + 1, state.opt_state))
  mngr = checkpoints.checkpoint_manager(str(tmp_path))
  checkpoints.save_checkpoint(mngr, state, jax.random.PRNGKey(42))
  template = jax.tree.map(jnp.zeros_like, state).replace(step=jnp.asarray(0, jnp.int32))
  restored, rng = checkpoints.restore_checkpoint(mngr, template)
  mngr.close()
  assert int(restored.step) == 5
  np.testing.assert_array_equal(np.asarray(rng), np.asarray(jax.random.PRNGKey(42)))
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  params_only, step = checkpoints.restore_params(str(tmp_path), params)
  assert step == 5
  np.testing.assert_array_equal(np.asarray(params_only["w"]), np.asarray(params["w"]))
  # A template of another shape is one error: Orbax's own for a concrete template; for an abstract one (as
  # `params_template` gives) Orbax would restore the saved shape, and restore_params names the parameter.
  with pytest.raises(ValueError, match=r"checkpoints/5 does not fit the model: 1 difference: w has shape \(2, 3\) "
                     r"there, \(3, 2\) here"):
    checkpoints.restore_params(str(tmp_path), {"w": jnp.zeros((3, 2))})
  with pytest.raises(ValueError, match=r"checkpoints/5 does not fit the model: 1 difference: w has shape \(2, 3\) "
                     r"there, \(3, 2\) here"):
    checkpoints.restore_params(str(tmp_path), {"w": jax.ShapeDtypeStruct((3, 2), jnp.float32)})


def test_inference_imports_neither_grain_nor_tfds(tmp_path):
  """`jaxvfi.interpolate` builds a family's model and restores a checkpoint with no training-stack import."""
  config = config_lib.load_config(os.path.join(ROOT, "configs", "sepconv.py"), "runlocal",
                                  {"model.kernel_size": 3, "data.crop_size": 32})
  from jaxvfi import models  # pylint: disable=g-import-not-at-top
  model = families.build_model(config.model)
  shapes = checkpoints.params_template(model, config)
  params = jax.tree.map(lambda s: np.full(s.shape, 0.01, np.float32), shapes)
  mngr = checkpoints.checkpoint_manager(str(tmp_path))
  checkpoints.save_checkpoint(mngr, _State(step=jnp.asarray(3, jnp.int32), params=params, opt_state={},
                                           extra_net={}), jax.random.PRNGKey(0))
  mngr.close()
  utils.atomic_write_text(str(tmp_path / "config.json"), config.to_json_best_effort())
  code = ("import sys; from jaxvfi.inference import interpolator; import numpy as np; "
          f"interp = interpolator.load_model({str(tmp_path)!r}); "
          "out, = interp.interpolate(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)); "
          "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('grain', 'tensorflow_datasets', 'tensorflow')); "
          "print('STEP', interp.step, 'SHAPE', out.shape, 'IMPORTED', bad)")
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "STEP 3 SHAPE (8, 8, 3) IMPORTED []" in r.stdout
