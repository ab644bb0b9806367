"""configs/sepconv.py end to end: the paper-001 recipe, the parameter count, a short training on the embedded data."""
import json
import os

import numpy as np
import pytest

from conftest import ROOT, TINY, run_main
from jaxvfi import config_lib
from jaxvfi import optim
from jaxvfi import train


def _config(arg=None, overrides=None):
  return config_lib.load_config(os.path.join(ROOT, "configs", "sepconv.py"), arg, overrides)


def test_recipe_and_schedule():
  c = _config()
  assert (c.batch_size, c.num_epochs, c.data.crop_size) == (16, 50.0, 128)
  assert c.data.random_flip_h and c.data.random_flip_v and dict(c.loss.weights) == {"l1": 1.0}
  # 1e-3 for epochs 0-20, then halved every 10 epochs (10 steps per epoch here).
  sched = optim.make_schedule(c.optimizer.schedule, total_steps=500, steps_per_epoch=10)
  assert [float(sched(s)) for s in (0, 199, 200, 299, 300, 400, 499)] == pytest.approx(
      [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 1.25e-4, 1.25e-4])
  p = _config("loss=l1_perceptual")
  assert p.loss.weights.perceptual == pytest.approx(1e-4 * (255 * 0.226) ** 2)
  with pytest.raises(ValueError):
    _config("loss=l2")


def test_summary_count(tmp_path):
  r = run_main(["--config=configs/sepconv.py", f"--workdir={tmp_path}", "--mode=summary"])
  assert r.returncode == 0, r.stderr[-2000:]
  assert json.loads((tmp_path / "summary.json").read_text())["params"] == {"sepconv": 21_675_452,
                                                                           "total": 21_675_452}


@pytest.mark.xdist_group("refin")
def test_short_training_on_embedded_data(tfds_dir, tmp_path):
  c = _config("runlocal", {**TINY, "data.tfds_dir": tfds_dir, "num_train_steps": 2})
  record = train.train_and_evaluate(c, str(tmp_path))
  assert record["step"] == 2 and np.isfinite(record["metrics"]["psnr"])
  assert "ms_ssim" not in record["metrics"]  # 32x32 frames: MS-SSIM is undefined and left out
  assert [n for n in record["notes"] if n.startswith("ms_ssim")] == [
      "ms_ssim not computed: the frames (after any border crop) are under 176 pixels a side, which its 5 scales with "
      "an 11x11 window need"]
