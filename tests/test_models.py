"""The family protocol (`jaxvfi.families`): a family in a package outside jaxvfi/, named by its dotted path, trains
through the entry point with its own two-network state, resumes bit for bit, evaluates with `restoration` and shows in
`--mode=summary`; a missing family is one clear error; the trainer compiles its step and predict function once."""
import json
import os
import shutil
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, run_main
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import parallel
from jaxvfi import train

pytestmark = pytest.mark.xdist_group("trainer")


@pytest.fixture(scope="module")
def toypkg(tmp_path_factory):
  """tests/toy_family.py copied into a throwaway package `toypkg.two_nets`, importable here and in subprocesses."""
  root = tmp_path_factory.mktemp("pkgroot")
  (root / "toypkg").mkdir()
  (root / "toypkg" / "__init__.py").write_text("")
  shutil.copy(os.path.join(ROOT, "tests", "toy_family.py"), root / "toypkg" / "two_nets.py")
  sys.path.insert(0, str(root))
  yield root
  sys.path.remove(str(root))
  for name in [m for m in sys.modules if m.startswith("toypkg")]:
    del sys.modules[name]


def _run(toypkg, workdir, tfds_dir, *args):
  env_path = os.pathsep.join([str(toypkg), os.environ.get("PYTHONPATH", "")])
  old = os.environ.get("PYTHONPATH")
  os.environ["PYTHONPATH"] = env_path
  try:
    return run_main([f"--config={toypkg / 'toypkg' / 'two_nets.py'}", f"--workdir={workdir}",
                     f"--config.data.tfds_dir={tfds_dir}", *args])
  finally:
    if old is None:
      del os.environ["PYTHONPATH"]
    else:
      os.environ["PYTHONPATH"] = old


def _state(toypkg, workdir):
  config = config_lib.load_config(toypkg / "toypkg" / "two_nets.py")
  model = families.build_model(config.model)
  loss_fn, _ = families.of(config).make_loss_fn(config)
  setup = families.of(config).make_train_setup(config, model, loss_fn, families.of(config).example_batch(config),
                                               2, 4.0)
  mngr = checkpoints.checkpoint_manager(str(workdir))
  state, _ = checkpoints.restore_checkpoint(mngr, setup.init(jax.random.PRNGKey(0)))
  mngr.close()
  return state


def test_dotted_family_trains_resumes_evaluates_and_summarises(toypkg, tfds_dir, tmp_path):
  straight, split = tmp_path / "straight", tmp_path / "split"
  r = _run(toypkg, straight, tfds_dir)
  assert r.returncode == 0, r.stderr[-3000:]
  r = _run(toypkg, split, tfds_dir, "--config.num_train_steps=1")
  assert r.returncode == 0, r.stderr[-3000:]
  r = _run(toypkg, split, tfds_dir)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "resuming from the checkpoint of step 1" in r.stderr

  # Every field of the two-network state, both optimizer states included, is bit-identical after 1 + 1 and 2 steps.
  a, b = _state(toypkg, straight), _state(toypkg, split)
  assert int(a.step) == int(b.step) == 2
  for field in ("params", "opt_state", "critic_params", "critic_opt_state"):
    la, lb = jax.tree.leaves(getattr(a, field)), jax.tree.leaves(getattr(b, field))
    assert la and len(la) == len(lb), field
    for x, y in zip(la, lb):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field)

  # The restoration evaluator scored the model and the family's baseline (the frame average).
  record = json.loads((split / "eval_2.json").read_text())
  assert record["num_examples"] == 2 and record["split"] == "validation"
  assert set(record["metrics"]) == {"psnr", "ssim", "frame_average_psnr", "frame_average_ssim"}
  assert all(np.isfinite(v) for v in record["metrics"].values())
  assert (split / "samples" / "eval_2.png").exists()

  # --mode=summary: 3x3 conv 6 -> 3 = 165 parameters.
  r = _run(toypkg, tmp_path / "summary", tfds_dir, "--mode=summary")
  assert r.returncode == 0, r.stderr[-3000:]
  assert json.loads((tmp_path / "summary" / "summary.json").read_text())["params"] == {"blend": 165, "total": 165}


def test_the_critic_moves_and_the_generator_predicts(toypkg, tfds_dir, tmp_path):
  """In process: both networks change in a step, and the step and predict function compile once each."""
  config = config_lib.load_config(toypkg / "toypkg" / "two_nets.py", None,
                                  {"data.tfds_dir": tfds_dir, "num_train_steps": 3})
  runners, predicts = [], []
  real_runner, real_predict = parallel.StepRunner, families.make_predict_fn

  class Recording(real_runner):
    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      runners.append(self)

  def recording_predict(model, *args):
    fn = real_predict(model, *args)
    predicts.append(fn)
    return fn

  parallel.StepRunner, families.make_predict_fn = Recording, recording_predict
  try:
    record = train.train_and_evaluate(config, str(tmp_path / "w"))
  finally:
    parallel.StepRunner, families.make_predict_fn = real_runner, real_predict
  assert record["step"] == 3
  # Three steps, three evaluations (every step, eval batch of 2 = the whole split): one trace of each.
  assert runners[0].traces == 1
  assert predicts[0]._cache_size() == 1  # pylint: disable=protected-access
  state = _state(toypkg, tmp_path / "w")
  family = families.of(config)
  setup_init = family.make_train_setup(config, family.build(config.model), family.make_loss_fn(config)[0],
                                       family.example_batch(config), 3, 4.0).init(jax.random.split(jax.random.PRNGKey(config.seed))[0])
  for field in ("params", "critic_params"):
    moved = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                for x, y in zip(jax.tree.leaves(getattr(state, field)), jax.tree.leaves(getattr(setup_init, field))))
    assert moved > 0, field


def test_unknown_family_is_one_clear_error(tfds_dir, tmp_path):
  with pytest.raises(ValueError, match=r"unknown model 'nope': no module jaxvfi.models.nope"):
    families.get_family("nope")
  with pytest.raises(ValueError, match=r"no module mypkg.fam"):
    families.get_family("mypkg.fam")
  with pytest.raises(ValueError, match=r"is not a model family"):
    families.get_family("jaxvfi.utils")
  for name, time_input in (("refin", True), ("superslomo", True), ("sepconv", False)):
    assert families.get_family(name).has_time_input is time_input


def _free_port() -> int:
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _losses(log: str) -> list[float]:
  return [float(line.split(" loss ")[1].split(",")[0]) for line in log.splitlines() if "] step " in line]


def test_two_processes_equal_one(toypkg, tfds_dir, tmp_path):
  """JAX's multi-process runtime on localhost (gloo collectives): 2 processes x 1 device, each feeding half of the
  global batch, give the losses and parameters of 1 process on the whole batch."""
  import subprocess  # pylint: disable=g-import-not-at-top
  one, two = tmp_path / "one", tmp_path / "two"
  r = _run(toypkg, one, tfds_dir)
  assert r.returncode == 0, r.stderr[-3000:]
  port = _free_port()
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(toypkg), os.environ.get("PYTHONPATH", "")]))
  cmd = lambda i: [sys.executable, "-m", "jaxvfi.main", f"--config={toypkg / 'toypkg' / 'two_nets.py'}",
                   f"--workdir={two}", f"--config.data.tfds_dir={tfds_dir}", f"--coordinator_address=localhost:{port}",
                   "--num_processes=2", f"--process_id={i}"]
  procs = [subprocess.Popen(cmd(i), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert "over 1 local devices in each of 2 processes" in outs[0][1]
  np.testing.assert_allclose(_losses(outs[0][1]), _losses(r.stderr), rtol=1e-5)
  assert len(_losses(r.stderr)) == 2
  a, b = _state(toypkg, one), _state(toypkg, two)
  for field in ("params", "critic_params"):
    for x, y in zip(jax.tree.leaves(getattr(a, field)), jax.tree.leaves(getattr(b, field))):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


class _Conv(nn.Module):
  """A 3x3 convolution of both frames: not rotation-equivariant, so test-time augmentation changes its output."""

  @nn.compact
  def __call__(self, batch, train=False):
    x = jnp.concatenate([batch["frame0"], batch["frame1"]], -1)
    return {"image": nn.Conv(3, (3, 3), use_bias=False)(x), "t": batch["t"]}


def test_test_time_augmentation_is_the_convolution_with_the_rotation_averaged_kernel():
  # Rotating a convolution's input and output by 180 degrees is the convolution with the kernel rotated by 180
  # degrees, so the augmented prediction must equal the plain one with the kernel (K + rot180(K)) / 2.
  batch = {k: jax.random.uniform(jax.random.PRNGKey(i), (2, 9, 11, 3)) for i, k in enumerate(("frame0", "frame1"))}
  batch["t"] = jnp.asarray([0.25, 0.5])
  model = _Conv()
  params = model.init(jax.random.PRNGKey(2), batch)["params"]
  kernel = np.asarray(params["Conv_0"]["kernel"])
  averaged = {"Conv_0": {"kernel": 0.5 * (kernel + kernel[::-1, ::-1])}}
  plain = families.predict(model, params, batch)
  tta = families.predict(model, params, batch, test_time_augmentation=True)
  want = model.apply({"params": averaged}, batch)["image"]
  np.testing.assert_allclose(tta["image"], want, atol=1e-6)
  assert np.abs(np.asarray(tta["image"] - plain["image"])).max() > 1e-2
  np.testing.assert_array_equal(tta["t"], batch["t"])  # rank-1 arrays are not rotated


def test_test_time_augmentation_refused_for_packed_raw():
  config = config_lib.load_config(os.path.join(ROOT, "configs", "sdan.py"), None, {"test_time_augmentation": True})
  with pytest.raises(ValueError, match="180-degree rotation"):
    families.of(config).check_config(config)
  config = config_lib.load_config(os.path.join(ROOT, "configs", "refin.py"), None, {"test_time_augmentation": True})
  assert families.of(config).check_test_time_augmentation(config)
