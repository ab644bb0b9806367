"""configs/sdan.py end to end: the recipe, runlocal through `python -m jaxvfi.main` (train, evaluate with the
restoration evaluator beside bicubic), exact resume, and `python -m jaxvfi.zoom` on the run's workdir."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
from PIL import Image
import pytest

from conftest import ROOT, run_main
from conftest import SDAN_TINY as TINY
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import optim
from jaxvfi import train
from jaxvfi import zoom


def _config(arg=None, overrides=None):
  return config_lib.load_config(os.path.join(ROOT, "configs", "sdan.py"), arg, overrides)


def test_recipe():
  c = _config()
  assert (c.batch_size, c.num_epochs, c.optimizer.name, c.optimizer.b1, c.optimizer.b2) == (8, 300.0, "adam", 0.9,
                                                                                              0.99)
  assert (c.data.name, c.data.augmentation, c.data.eval_split) == ("sr_raw", "sdan", "test")
  assert dict(c.loss.weights) == {"align": 1.0, "sr": 1.0} and c.loss.border == 32
  assert dict(c.evals.validation)["color"] == "y" and c.evals.validation.crop_border == 32
  # 2e-4, restarts at epochs 20, 60, 140 (T_0 = 20, T_mult = 2), 1e-5 at the end of each cycle; 300 epochs end the
  # 4th cycle. Five steps per epoch here.
  sched = optim.make_schedule(c.optimizer.schedule, total_steps=1500, steps_per_epoch=5)
  assert [float(sched(5 * e)) for e in (0, 20, 60, 140)] == pytest.approx([2e-4] * 4)
  assert float(sched(5 * 139)) == pytest.approx(1e-5 + 1.9e-4 * (1 + np.cos(np.pi * 79 / 80)) / 2, rel=1e-5)
  assert float(sched(5 * 299 + 4)) == pytest.approx(1e-5 + 1.9e-4 * (1 + np.cos(np.pi * 159 / 160)) / 2, rel=1e-5)
  with pytest.raises(ValueError, match="input"):
    _config("input=yuv")


def test_summary_counts(tmp_path):
  """What `--mode=summary` prints: the authors' counts for both inputs."""
  assert train.summarize(_config(), str(tmp_path))["params"]["total"] == 1_671_818
  assert train.summarize(_config("input=rgb"), str(tmp_path))["params"]["total"] == 1_672_970


def _params(workdir):
  config = checkpoints.read_config(workdir)
  model = families.build_model(config.model)
  return checkpoints.restore_params(workdir, checkpoints.params_template(model, config))


@pytest.mark.xdist_group("sdan")
def test_runlocal_entry_point_resume_and_zoom(tfds_dir, tmp_path, capsys):
  overrides = {**TINY, "data.tfds_dir": tfds_dir}
  straight = tmp_path / "straight"
  args = ["--config=configs/sdan.py:runlocal,input=rgb", f"--workdir={straight}"]
  r = run_main(args + [f"--config.{k}={v}" for k, v in overrides.items()])
  assert r.returncode == 0, r.stderr[-3000:]
  record = json.loads((straight / "eval_2.json").read_text())
  assert record["split"] == "validation" and record["num_examples"] == 2
  assert set(record["metrics"]) >= {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}
  assert any("Table 1" in note for note in record["notes"])

  # Exact resume: 1 step, a new run to 2 steps, against the 2 steps straight of the entry point.
  resumed = tmp_path / "resumed"
  train.train_and_evaluate(_config("runlocal,input=rgb", {**overrides, "num_train_steps": 1}), str(resumed))
  train.train_and_evaluate(_config("runlocal,input=rgb", overrides), str(resumed))
  (a, step_a), (b, step_b) = _params(straight), _params(resumed)
  assert step_a == step_b == 2
  jax.tree.map(np.testing.assert_array_equal, a, b)

  # jaxvfi.zoom's command line on the run (in this process): a 4x PNG; a bad input is one error line, no output.
  photo = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (21, 17, 3), dtype=np.uint8)).save(photo)
  flags = lambda src, dst: zoom._parse_flags(["zoom", f"--workdir={straight}", "--input", str(src), "--output",
                                              str(dst), "--no_progress"])
  assert zoom.run(flags(photo, tmp_path / "photo_x4.png")) == [str(tmp_path / "photo_x4.png")]
  assert np.asarray(Image.open(tmp_path / "photo_x4.png")).shape == (84, 68, 3)
  (tmp_path / "bad.png").write_text("not a png")
  with pytest.raises(SystemExit) as exit_info:
    zoom.main(flags(tmp_path / "bad.png", tmp_path / "bad_x4.png"))
  assert exit_info.value.code == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith(f"jaxvfi: error: cannot read image {tmp_path / 'bad.png'}: ") and "\n" not in err
  assert not (tmp_path / "bad_x4.png").exists()
