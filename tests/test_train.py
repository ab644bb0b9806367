"""The generic trainer end to end: smoke run through the entry point, exact resume, pmap = jit, bad inputs."""
import glob
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import ROOT, cli_args, multi_device_flags, run_main, tiny_config
from jaxvfi import checkpoints
from jaxvfi import families
from jaxvfi import parallel
from jaxvfi import steps
from jaxvfi import train
from jaxvfi import utils

CONFIG = "--config=configs/refin.py:runlocal,data=rendered"
# The end-to-end runs each hold several GB: one xdist worker runs them one after another (`--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("trainer")


def _params(workdir, **overrides):
  config_template = tiny_config("unused", **overrides)
  model = families.build_model(config_template.model)
  template = steps.init_params(model, families.of(config_template).example_batch(config_template), jax.random.PRNGKey(1))
  return checkpoints.restore_params(workdir, template)


def test_one_step_smoke_then_exact_resume(tfds_dir, tmp_path):
  straight, split = tmp_path / "straight", tmp_path / "split"
  r = run_main([CONFIG, f"--workdir={straight}"] + cli_args(tfds_dir, num_train_steps=2))
  assert r.returncode == 0, r.stderr[-3000:]

  # The one-step smoke run through the entry point, and what it leaves in the workdir; with a (fake) Vimeo-90K
  # folder given, the benchmark table too.
  vimeo = _fake_vimeo(tmp_path / "vimeo")
  r = run_main([CONFIG, f"--workdir={split}", f"--config.evals.vimeo90k.dir={vimeo}"]
               + cli_args(tfds_dir, num_train_steps=1))
  assert r.returncode == 0, r.stderr[-3000:]
  assert os.path.isdir(split / "checkpoints" / "1")
  record = json.loads((split / "eval_1.json").read_text())
  assert record["step"] == 1 and record["num_examples"] == 2
  for key in ("psnr", "ssim", "frame_average_psnr", "repeat_frame_psnr"):
    assert np.isfinite(record["metrics"][key])
  assert any("perceptual" in n for n in record["notes"])
  assert (split / "samples" / "eval_1.png").exists()
  assert glob.glob(str(split / "tensorboard" / "events.out.tfevents.*"))
  assert "step 1/1" in (split / "train.log").read_text()
  table = (split / "results_1.md").read_text().splitlines()
  assert table[0] == "| Method | Vimeo-90K PSNR | Vimeo-90K SSIM |"
  assert [row.split(" | ")[0] for row in table[2:5]] == ["| refin", "| Frame average", "| Repeat frame"]
  results = json.loads((split / "results_1.json").read_text())
  assert results["benchmarks"][0]["num_examples"] == 2 and results["benchmarks"][0]["frame_sizes"] == ["48x32"]

  # A new process continues from step 1 to step 2 and ends where the straight run ended, bit for bit.
  r = run_main([CONFIG, f"--workdir={split}"] + cli_args(tfds_dir, num_train_steps=2))
  assert r.returncode == 0, r.stderr[-3000:]
  assert "resuming from the checkpoint of step 1" in r.stderr
  (pa, sa), (pb, sb) = _params(straight), _params(split)
  assert sa == sb == 2
  for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  # --mode=eval evaluates the latest checkpoint on the split it is given; without --config, with the run's own
  # config.json (the tiny overrides, the test's TFDS folder).
  before = json.loads((split / "eval_2.json").read_text())
  r = run_main([f"--workdir={split}", "--mode=eval", "--split=train"])
  assert r.returncode == 0, r.stderr[-3000:]
  record = json.loads((split / "eval_2_jaxvfi_synthetic_train.json").read_text())
  assert (record["step"], record["split"], record["num_examples"]) == (2, "train", 8)
  assert before["split"] == "validation" and before["num_examples"] == 2
  assert json.loads((split / "eval_2.json").read_text()) == before  # training's record is kept
  assert (split / "samples" / "eval_2_jaxvfi_synthetic_train.png").is_file()


def _fake_vimeo(root):
  """Two test sequences and one train sequence in the official vimeo_triplet layout, 48x32 frames."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  base = root / "vimeo_triplet"
  ids = ["00001/0001", "00001/0002"]
  for ident in ids + ["00002/0001"]:
    for k in (1, 2, 3):
      path = base / "sequences" / ident / f"im{k}.png"
      path.parent.mkdir(parents=True, exist_ok=True)
      Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(path)
  (base / "tri_testlist.txt").write_text("\n".join(ids) + "\n")
  (base / "tri_trainlist.txt").write_text("00002/0001\n")
  return base


def test_init_params_compiled_for_speed_on_cpu_give_the_default_compilations_bits():
  config = tiny_config("unused")
  model = families.build_model(config.model)
  rng = jax.random.PRNGKey(7)
  want = jax.jit(lambda r: model.init(r, families.of(config).example_batch(config), train=False)["params"])(rng)
  got = steps.init_params(model, families.of(config).example_batch(config), rng)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_pmap_step_matches_single_device_on_8_devices():
  # 8 devices only: each pmap device count is one more compilation of the step, and the
  # 2-device pmap runs through the entry point in test_data_parallel_run_through_entry_point_says_so.
  env = dict(os.environ, XLA_FLAGS=multi_device_flags(8))
  r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "pmap_check.py"), "8"], env=env,
                     capture_output=True, text=True, timeout=900, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
  rows = [json.loads(line) for line in r.stdout.strip().splitlines() if line.startswith("{")]
  assert [row["devices"] for row in rows] == [8]
  for out in rows:
    assert out["param_moved"] > 1e-6  # the steps did change the parameters
    assert out["loss_rel_diff"] < 1e-5, out
    assert out["param_max_diff"] < 1e-5, out


def test_data_parallel_run_through_entry_point_says_so(tfds_dir, tmp_path):
  r = run_main([CONFIG, f"--workdir={tmp_path / 'dp'}"] + cli_args(tfds_dir), devices=2)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "data-parallel training (pmap) over 2 local devices" in r.stderr


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tfds_dir, tmp_path):
  # A learning rate of 1e30 sends Adam's first update to +-1e30, so the second step's loss is not finite.
  config = tiny_config(tfds_dir, num_train_steps=3, checkpoint_every_steps=1)
  config.optimizer.schedule = dict(name="constant", init_value=1e30)
  # Step 1's parameters (+-1e30) gave that loss: it is no good checkpoint (the loss is computed before the update
  # that the checkpoint of a step holds).
  with pytest.raises(train.TrainingError, match=r"non-finite loss .* at step 2: training stopped; nothing was saved "
                                                r"for step 2; no good checkpoint exists \(steps \[1\] hold the "
                                                r"parameters that led here\)"):
    train.train_and_evaluate(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
  assert not glob.glob(str(tmp_path / "eval_*.json"))


class _BarStoppedAfter:
  """A progress bar that raises KeyboardInterrupt (as Ctrl-C or a SIGTERM through `utils.termination_as_interrupt`
  would) when the loop reports step `stop` done: between steps, where the signal handler runs."""

  def __init__(self, stop, initial=0, **kwargs):  # pylint: disable=unused-argument
    self.n, self.stop = initial, stop

  def update(self, k):
    self.n += k
    if self.n == self.stop:
      raise KeyboardInterrupt

  def set_postfix(self, **kwargs):
    pass

  def close(self):
    pass


def test_interrupted_training_saves_its_last_step_and_resumes_from_it(tfds_dir, tmp_path, monkeypatch):
  # The first step of a 1-step and of a 2-step run are the same step (the cosine schedule starts at its initial
  # rate whatever its length), and both programs are those of test_one_step_smoke_then_exact_resume's runs, which
  # the persistent compilation cache already holds when this group's tests run in file order.
  overrides = {"checkpoint_every_steps": 100}
  train.train_and_evaluate(tiny_config(tfds_dir, num_train_steps=1, **overrides), str(tmp_path / "straight"))

  monkeypatch.setattr(utils, "progress_bar", lambda total, initial=0, **kw: _BarStoppedAfter(1, initial))
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(tiny_config(tfds_dir, num_train_steps=2, **overrides), str(tmp_path / "stopped"))
  assert sorted(os.listdir(tmp_path / "stopped" / "checkpoints")) == ["1"]  # not scheduled: saved on the interrupt
  assert "interrupted at step 1: checkpoint saved" in (tmp_path / "stopped" / "train.log").read_text()
  (pa, sa), (pb, sb) = _params(tmp_path / "straight"), _params(tmp_path / "stopped")
  assert sa == sb == 1
  for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  # Stopped again before a step finishes: nothing new to save, and the checkpoint stays.
  monkeypatch.setattr(utils, "progress_bar", lambda total, initial=0, **kw: _BarStoppedAfter(initial + 1, initial))
  monkeypatch.setattr(parallel.StepRunner, "__call__", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt()))
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(tiny_config(tfds_dir, num_train_steps=2, **overrides), str(tmp_path / "stopped"))
  assert sorted(os.listdir(tmp_path / "stopped" / "checkpoints")) == ["1"]
  assert "interrupted at step 1, which is already saved" in (tmp_path / "stopped" / "train.log").read_text()


def test_bad_inputs_give_one_clear_error(tfds_dir, tmp_path):
  with pytest.raises(ValueError, match="unknown dataset"):
    train.train_and_evaluate(tiny_config(tfds_dir, **{"data.name": "no_such_set"}), str(tmp_path / "a"))
  # A mixture trains on its components and evaluates on data.name: a misspelt data.name is refused before training.
  with pytest.raises(ValueError, match="unknown dataset 'no_such_set'"):
    train.train_and_evaluate(tiny_config(tfds_dir, "runlocal", **{"data.name": "no_such_set"}), str(tmp_path / "m"))
  assert not os.path.exists(tmp_path / "m" / "checkpoints")
  a_file = tmp_path / "file"
  a_file.write_text("x")
  with pytest.raises(NotADirectoryError):
    train.train_and_evaluate(tiny_config(tfds_dir), str(a_file))
  with pytest.raises(PermissionError, match="not writable"):
    train.train_and_evaluate(tiny_config(tfds_dir), str(a_file / "sub"))
  with pytest.raises(ValueError, match="unknown model"):
    train.train_and_evaluate(tiny_config(tfds_dir, **{"model.name": "nope"}), str(tmp_path / "b"))
  assert not os.path.exists(tmp_path / "b" / "checkpoints")


def test_cli_errors_are_one_line(tfds_dir, tmp_path):
  r = run_main([CONFIG, f"--workdir={tmp_path}"] + cli_args(tfds_dir, **{"data.dir": "/no/such/folder",
                                                                         "data.name": "vimeo90k_triplet"}))
  assert r.returncode == 1
  assert "jaxvfi: error:" in r.stderr and r.stderr.count("/no/such/folder") == 1  # once: no absl E-line copy
  assert "Traceback" not in r.stderr
  r = run_main([CONFIG, f"--workdir={tmp_path}", "--mode=eval"] + cli_args(tfds_dir))
  assert r.returncode == 1 and "no checkpoint to evaluate" in r.stderr
  r = run_main([CONFIG, f"--workdir={tmp_path}", "--config.num_train_step=1"])  # misspelt
  assert r.returncode == 1 and "Traceback" not in r.stderr
  assert r.stderr.strip().splitlines()[-1].startswith("jaxvfi: error: --config: 'num_train_step' Did you mean")
  r = run_main(["--config=configs/no_such_paper.py", f"--workdir={tmp_path / 'no_config_file'}"])
  assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == (
      "jaxvfi: error: --config: No such file or directory: 'configs/no_such_paper.py'")
  r = run_main([f"{CONFIG.split(':')[0]}:runlocl", f"--workdir={tmp_path / 'no_config_file'}"])  # a misspelt :arg
  assert r.returncode == 1 and r.stderr.strip().splitlines() == [
      "jaxvfi: error: --config: unknown config arg 'runlocl'; known: backbone, cpu, data, flow, interp, refine, "
      "refinement, runlocal, stage"], r.stderr
  assert not os.path.exists(tmp_path / "no_config_file")  # refused before the workdir is made
  r = run_main([f"--workdir={tmp_path}"])
  assert r.returncode != 0 and "--config is required to train" in r.stderr and "Traceback" not in r.stderr
  r = run_main([f"--workdir={tmp_path}", "--mode=eval", "--config.seed=1"])
  assert r.returncode == 1 and r.stderr.strip().splitlines() == [
      "jaxvfi: error: --config.seed sets a field of --config, which is not given: add --config=configs/<paper>.py[:arg]"]
  r = run_main([f"--workdir={tmp_path / 'none'}", "--mode=eval"])
  assert r.returncode == 1 and r.stderr.count("none does not exist") == 1 and "Traceback" not in r.stderr
  os.makedirs(tmp_path / "empty")
  r = run_main([f"--workdir={tmp_path / 'empty'}", "--mode=eval"])
  assert r.returncode == 1 and r.stderr.count("has no config.json") == 1 and "Traceback" not in r.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


def test_summary_mode_writes_counts(tmp_path):
  r = run_main(["--config=configs/refin.py:flow=unet", f"--workdir={tmp_path}", "--mode=summary"])
  assert r.returncode == 0, r.stderr[-3000:]
  params = json.loads((tmp_path / "summary.json").read_text())["params"]
  assert params == {"flow": 19_794_116, "interpolation": 19_810_085, "refinement": 19_815_779,
                    "total": 59_419_980}
  r = run_main(["--config=configs/superslomo.py", f"--workdir={tmp_path}", "--mode=summary"])
  params = json.loads((tmp_path / "summary.json").read_text())["params"]
  assert params == {"flow": 19_794_116, "interpolation": 19_816_357, "total": 39_610_473}
  # An override through the command line reaches the model: no refinement module.
  r = run_main([CONFIG, f"--workdir={tmp_path}", "--mode=summary", "--config.model.use_refinement=false"])
  assert "refinement" not in json.loads((tmp_path / "summary.json").read_text())["params"]
