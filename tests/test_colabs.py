"""The Colab notebooks run top to bottom (cells executed in order, the "parameters" cell's values shrunk)."""
import os

import pytest

from conftest import DSFN_TINY, REFIN_TINY, ROOT, SDAN_TINY
from helpers import run_notebook, unet_count_by_hand


# In the trainer group, on one worker with test_train.py's runs of the same tiny model, whose programs it may share
# through the persistent compilation cache (this file is collected first, so the notebook compiles).
@pytest.mark.xdist_group("trainer")
def test_quickstart_notebook(tfds_dir, tmp_path, monkeypatch):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  monkeypatch.chdir(ROOT)
  ns = run_notebook(os.path.join(ROOT, "colabs", "quickstart.ipynb"), {
      "WORKDIR": str(tmp_path / "colab"),
      "OVERRIDES": {**REFIN_TINY, "data.tfds_dir": tfds_dir, "num_train_steps": 1},
  })
  # Quarter-width UNets (REFIN_TINY): flow 6 -> 4 channels, interpolation 16 -> 5, refinement 20 -> 3.
  assert ns["counts"]["total"] == sum(unet_count_by_hand(i, o, 0.25) for i, o in [(6, 4), (16, 5), (20, 3)])
  assert ns["record"]["step"] == 1
  assert (tmp_path / "colab" / "samples" / "eval_1.png").exists()


@pytest.mark.xdist_group("sdan")
def test_sdan_notebook(tfds_dir, tmp_path, monkeypatch):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  monkeypatch.chdir(ROOT)
  ns = run_notebook(os.path.join(ROOT, "colabs", "sdan.ipynb"), {
      "WORKDIR": str(tmp_path / "colab"),
      "OVERRIDES": {**SDAN_TINY, "data.tfds_dir": tfds_dir, "num_train_steps": 1},
  })
  assert ns["counts"]["total"] == 10_410  # the 8-feature, 1-block SDAN of the tiny overrides (RGB input)
  assert ns["record"]["step"] == 1 and "bicubic_psnr" in ns["record"]["metrics"]
  assert ns["preds"]["image"].shape == (1, 128, 128, 3) and ns["preds"]["mask"].shape == (1, 32, 32, 1)
  assert len(ns["fig"].axes) == 6


@pytest.mark.xdist_group("dsfn")
def test_dsfn_notebook(tfds_dir, tmp_path, monkeypatch):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  monkeypatch.chdir(ROOT)
  ns = run_notebook(os.path.join(ROOT, "colabs", "dsfn.ipynb"), {
      "WORKDIR": str(tmp_path / "colab"),
      "OVERRIDES": {**DSFN_TINY, "data.tfds_dir": tfds_dir},  # test_dsfn_training's run: compiled programs cached
  })
  assert ns["counts"]["total"] == 10_899_424
  assert ns["record"]["step"] == 2
  assert ns["outputs"]["level1"].shape == (1, 5, 48, 48, 3) and ns["outputs"]["level2"].shape == (1, 3, 48, 48, 3)
  assert len(ns["rows"]) == 4 and ns["step"] == 2
