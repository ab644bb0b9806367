"""Training that survives real runs (issue 29): SIGKILL at random points and during a save, resumed each time, ends
bit-identical to the uninterrupted run on one and two devices, and a 2-device run resumes on 1; a changed config, a
damaged checkpoint and a non-finite loss are one line each and leave the workdir intact."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import ROOT, cli_args, multi_device_flags, tiny_config
from jaxvfi import checkpoints
from jaxvfi import families
from jaxvfi import steps
from jaxvfi import train

# Its own group: these runs are mostly subprocesses, and they can go beside the "trainer" group on the other worker.
pytestmark = pytest.mark.xdist_group("resume")

STEPS = 3
CONFIG = "--config=configs/refin.py:runlocal,data=rendered"


def _args(tfds_dir, workdir, **overrides):
  return [CONFIG, f"--workdir={workdir}"] + cli_args(tfds_dir, num_train_steps=STEPS, checkpoint_every_steps=1,
                                                     **overrides)


def _env(devices):
  env = dict(os.environ)
  if devices > 1:
    env["XLA_FLAGS"] = multi_device_flags(devices)
  return env


def _run(args, devices=1, kill_step=0, kill_after=None):
  """The entry point in a subprocess; SIGKILLed while saving step `kill_step`, or after `kill_after` seconds.
  Returns the exit status (-9 when killed)."""
  cmd = [sys.executable, os.path.join(ROOT, "tests", "kill_driver.py"), str(kill_step), "--"] + args
  proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(devices), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  try:
    _, err = proc.communicate(timeout=kill_after)
  except subprocess.TimeoutExpired:
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
  assert proc.returncode in (0, -signal.SIGKILL), err[-3000:]
  return proc.returncode


def _params(workdir):
  config = tiny_config("unused")
  model = families.build_model(config.model)
  template = steps.param_shapes(model, families.of(config).example_batch(config))
  params, step = checkpoints.restore_params(str(workdir), template)
  return jax.tree.map(np.asarray, params), step


def _assert_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("devices", [1, 2])
def test_killed_runs_resume_bit_identical(tfds_dir, tmp_path, devices):
  """SIGKILL during the save of step 2, then at a random time; each time the same command resumes; the end equals the
  uninterrupted run bit for bit (the data of step s and its rng are functions of (seed, s)). A 2-device run's
  checkpoint also resumes on 1 device, to the same parameters up to the order of the gradient's sums."""
  straight, killed = tmp_path / "straight", tmp_path / "killed"
  assert _run(_args(tfds_dir, straight), devices) == 0
  assert _run(_args(tfds_dir, killed), devices, kill_step=2) == -signal.SIGKILL
  assert checkpoints.latest_step(str(killed)) == 1  # step 2 died half-written and is not taken for a checkpoint
  if devices > 1:
    one = tmp_path / "one"
    shutil.copytree(killed, one)
    assert _run(_args(tfds_dir, one), devices=1) == 0
    (pa, sa), (pb, sb) = _params(straight), _params(one)
    assert sa == sb == STEPS
    # Adam divides by the gradient's running scale, so a parameter whose gradient is near zero can move by up to a
    # learning rate per step on a last-bit difference (measured: 2 of 147,456 entries 1.35e-5 apart); on average the
    # two runs agree to float32 rounding.
    diffs = [np.abs(x - y) for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb))]
    assert max(float(d.max()) for d in diffs) < 5e-4
    assert float(np.concatenate([d.ravel() for d in diffs]).mean()) < 1e-6
  _run(_args(tfds_dir, killed), devices, kill_after=random.Random(devices).uniform(5.0, 15.0))
  assert _run(_args(tfds_dir, killed), devices) == 0
  (pa, sa), (pb, sb) = _params(straight), _params(killed)
  assert sa == sb == STEPS
  _assert_equal(pa, pb)


def _train(tfds_dir, workdir, restore_step=None, **overrides):
  config = tiny_config(tfds_dir, **{"num_train_steps": 2, "checkpoint_every_steps": 1, **overrides})
  return train.train_and_evaluate(config, str(workdir), restore_step=restore_step)


def _tree_bytes(path):
  return {os.path.relpath(os.path.join(d, f), path): open(os.path.join(d, f), "rb").read()
          for d, _, files in os.walk(path) for f in files if f != "train.log" and "tensorboard" not in d}


def test_changed_config_is_one_line_and_keeps_the_workdir(tfds_dir, tmp_path):
  w = tmp_path / "w"
  _train(tfds_dir, w)
  before = _tree_bytes(w)
  with pytest.raises(train.TrainingError) as e:
    _train(tfds_dir, w, num_train_steps=3, **{"model.unet_width": 0.5})
  message = str(e.value)
  assert "\n" not in message
  assert "holds another train state than this config builds" in message
  assert "model.unet_width: 0.25 there, 0.5 here" in message and f"--config.init_from={w}" in message
  assert _tree_bytes(w) == before  # config.json, checkpoints and eval records untouched


def test_damaged_checkpoint_names_the_intact_step_and_resumes_from_it(tfds_dir, tmp_path):
  w = tmp_path / "w"
  _train(tfds_dir, w)
  data = sorted(p for p in (w / "checkpoints" / "2" / "params").rglob("*") if p.is_file() and p.parent.name == "d")
  with open(data[0], "r+b") as f:  # a copy cut short
    f.truncate(max(1, os.path.getsize(data[0]) // 3))
  with pytest.raises(train.TrainingError) as e:
    _train(tfds_dir, w, num_train_steps=3)
  message = str(e.value)
  assert "\n" not in message and f"checkpoint step 2 in {w / 'checkpoints'} is damaged" in message
  assert "step 1 is intact: rerun with --restore_step=1" in message
  # The tools read the newest intact step instead, with a warning.
  assert _params(w)[1] == 1
  # Taking the offer: step 2 moves aside, the run goes on from step 1.
  record = _train(tfds_dir, w, restore_step=1, num_train_steps=3)
  assert record["step"] == 3 and (w / "discarded_checkpoints" / "2").is_dir()
  assert sorted(int(p) for p in os.listdir(w / "checkpoints") if p.isdigit())[-1] == 3

  # An interrupted copy: the latest step without its optimizer state.
  shutil.rmtree(w / "checkpoints" / "3" / "opt_state")
  with pytest.raises(train.TrainingError, match=r"step 3 .* is damaged: its item 'opt_state' is missing.*"
                                                r"step 2 is intact"):
    _train(tfds_dir, w, num_train_steps=4)
  assert _train(tfds_dir, w, restore_step="intact", num_train_steps=4)["step"] == 4


def test_nan_guard_names_a_checkpoint_whose_parameters_gave_finite_losses(tfds_dir, tmp_path):
  w = tmp_path / "w"
  with pytest.raises(train.TrainingError) as e:
    _train(tfds_dir, w, num_train_steps=6, **{"optimizer.schedule.init_value": 1e6,
                                              "optimizer.schedule.end_value": 1e6})
  message = str(e.value)
  done = int(message.split(" at step ")[1].split(":")[0])
  saved = sorted(int(p) for p in os.listdir(w / "checkpoints") if p.isdigit())
  assert saved[-1] == done - 1  # the parameters that gave the non-finite loss were saved ...
  if done >= 3:  # ... so the good one is older, and the suspect ones are named
    assert f"the last good checkpoint is step {done - 2}" in message
    assert f"--restore_step={done - 2}" in message
  else:
    assert "no good checkpoint exists" in message


def test_distributed_start_up_names_who_waits(tmp_path):
  """A coordinator address without --process_id is one line; process 0 alone says whom it waits for and, after
  --distributed_timeout seconds, gives up with one line (JAX alone would abort with a C++ stack after 5 minutes)."""
  base = [sys.executable, "-m", "jaxvfi.main", "--config=configs/refin.py:runlocal", f"--workdir={tmp_path / 'w'}",
          "--coordinator_address=127.0.0.1:23461", "--num_processes=2"]
  r = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1] == (
      "jaxvfi: error: --coordinator_address=127.0.0.1:23461 needs --process_id too (each process gets the same "
      "address and count and its own --process_id from 0 to num_processes - 1)")
  start = time.monotonic()
  r = subprocess.run(base + ["--process_id=0", "--distributed_timeout=3"], cwd=ROOT, capture_output=True, text=True,
                     timeout=300, check=False)
  assert r.returncode == 1 and time.monotonic() - start < 120
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("jaxvfi: error: process 0 of 2: waiting for process 1 to connect to 127.0.0.1:23461: not "
                         "every process had joined after 3 s")
  assert not (tmp_path / "w").exists()  # nothing was written
