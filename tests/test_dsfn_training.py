"""DSFN through the entry point: `configs/dsfn.py:runlocal` shrunk to seconds trains, evaluates with the restoration
evaluator (Table 1's columns, the bicubic baseline) and resumes bit for bit; `--mode=summary` gives the paper's count.

That runlocal itself beats bicubic on the embedded validation split is measured outside the suite (README, DSFN)."""
from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import DSFN_TINY as TINY
from conftest import ROOT, run_main
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import train

pytestmark = pytest.mark.xdist_group("dsfn")

CONFIG = os.path.join(ROOT, "configs", "dsfn.py")


def _run(workdir, tfds_dir, **overrides):
  args = {**TINY, "data.tfds_dir": tfds_dir, **overrides}
  return run_main([f"--config={CONFIG}:runlocal", f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in
                                                                             args.items()])


def _state(workdir, tfds_dir):
  config = config_lib.load_config(CONFIG, "runlocal", {**TINY, "data.tfds_dir": tfds_dir})
  model = families.build_model(config.model)
  setup = families.of(config).make_train_setup(config, model, families.of(config).make_loss_fn(config)[0],
                                               families.of(config).example_batch(config), 2, 2.0)
  template = jax.eval_shape(setup.init, jax.random.PRNGKey(0))  # shapes only: no compilation of init
  mngr = checkpoints.checkpoint_manager(str(workdir))
  state, _ = checkpoints.restore_checkpoint(mngr, template)
  mngr.close()
  return state


def test_runlocal_trains_evaluates_and_resumes_exactly(tfds_dir, tmp_path):
  """Two steps straight, checkpointing each; then a copy of that workdir without its step-2 checkpoint resumes from
  step 1: its step 2 must equal the straight run's bit for bit (the same as 1 + 1 against 2, one run fewer)."""
  straight, split = tmp_path / "straight", tmp_path / "split"
  r = _run(straight, tfds_dir)
  assert r.returncode == 0, r.stderr[-3000:]
  shutil.copytree(straight, split)
  shutil.rmtree(split / "checkpoints" / "2")
  os.remove(split / "train.log")
  r = _run(split, tfds_dir)
  assert r.returncode == 0, r.stderr[-3000:]
  a, b = _state(straight, tfds_dir), _state(split, tfds_dir)
  assert int(a.step) == int(b.step) == 2
  for field in ("params", "opt_state"):
    la, lb = jax.tree.leaves(getattr(a, field)), jax.tree.leaves(getattr(b, field))
    assert la and len(la) == len(lb), field
    for x, y in zip(la, lb):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field)
  log = (split / "train.log").read_text()
  assert "resuming from the checkpoint of step 1" in log
  assert "level1 5,383,184, level2 5,516,240, total 10,899,424" in log

  record = json.loads((straight / "eval_2.json").read_text())
  assert record["num_examples"] == 3 and record["split"] == "validation"  # one example, three frames
  columns = ("deblurred_input_scale", "deblurred_upscaled", "interpolated", "enhanced_video")
  for prefix in ("", "bicubic_"):
    for key in ["psnr", "ssim"] + [f"{c}/psnr" for c in columns]:
      name = f"{key.split('/')[0]}/{prefix}{key.split('/')[1]}" if "/" in key else prefix + key
      assert np.isfinite(record["metrics"][name]), name
  assert (straight / "samples" / "eval_2.png").exists()


def test_summary_gives_the_papers_count(tmp_path):
  for arg, total in (("", 10_899_424), ("levels=1", 5_383_184)):
    record = train.summarize(config_lib.load_config(CONFIG, arg), str(tmp_path / (arg or "default")))
    assert record["params"]["total"] == total
