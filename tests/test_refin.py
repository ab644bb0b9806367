"""ReFIn end to end: Table 3 counts per backbone through summarize, short training of every backbone with PWC-Net
flow, pretrained flow weights at the fixed 1e-6 rate, and stage 2 from a stage-1 checkpoint."""
import json
import os

import jax
import numpy as np
import pytest

from conftest import tiny_config
from jaxvfi import train
from jaxvfi import weights

# The summaries are cheap; the trainings (a few GB each) run one after another on the "refin" xdist worker.
TABLE3 = {
    "unet": (19_810_085, 19_815_779),
    "unetpp": (1_176_485, 1_177_571),
    "gridnet3": (2_249_349, 2_249_777),
    "gridnet4": (5_081_307, 5_081_735),
}
PWC = 9_374_274


@pytest.mark.parametrize("backbone", sorted(TABLE3))
def test_summary_counts_match_table3(backbone, tmp_path):
  config = tiny_config("unused", arg=f"backbone={backbone}")
  assert config.model.flow == "pwcnet"  # the paper's default
  params = train.summarize(config, str(tmp_path))["params"]
  interp, refine = TABLE3[backbone]
  assert params == {"flow": PWC, "interpolation": interp, "refinement": refine, "total": PWC + interp + refine}
  assert json.loads((tmp_path / "summary.json").read_text())["params"] == params


def test_modules_choose_backbones_separately(tmp_path):
  config = tiny_config("unused", arg="interp=gridnet4,refine=unetpp,flow=unet")
  params = train.summarize(config, str(tmp_path))["params"]
  assert params == {"flow": 19_794_116, "interpolation": 5_081_307, "refinement": 1_177_571,
                    "total": 19_794_116 + 5_081_307 + 1_177_571}


def _flat(tree):
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.xdist_group("refin")
@pytest.mark.parametrize("backbone", ["unetpp", "gridnet3", "gridnet4"])
def test_short_training_of_each_backbone_with_pwcnet(backbone, tfds_dir, tmp_path):
  # UNet with PWC-Net runs in test_pretrained_flow_weights_train_at_fixed_rate below.
  config = tiny_config(tfds_dir, arg=f"backbone={backbone}", num_train_steps=2)
  record = train.train_and_evaluate(config, str(tmp_path))
  assert record["step"] == 2 and np.isfinite(record["metrics"]["psnr"])
  assert any("PWC-Net has no pretrained weights" in n for n in record["notes"])


@pytest.mark.xdist_group("refin")
def test_paper_default_trains_on_whole_frames(tfds_dir, tmp_path):
  # The bare configs/refin.py: PWC-Net flow from scratch, UNet modules, no crop (data.crop_size = 0).
  config = tiny_config(tfds_dir, arg=None, **{"data.crop_size": 0, "num_train_steps": 1, "num_epochs": 0.0})
  assert config.model.flow == "pwcnet" and config.data.crop_size == 0
  record = train.train_and_evaluate(config, str(tmp_path))
  assert record["step"] == 1 and np.isfinite(record["metrics"]["psnr"])
  assert any("PWC-Net has no pretrained weights" in n for n in record["notes"])


@pytest.mark.xdist_group("refin")
def test_pretrained_flow_weights_train_at_fixed_rate(tfds_dir, tmp_path):
  from test_weights import pwc_torch_shapes  # pylint: disable=g-import-not-at-top
  # A state_dict in the pytorch-pwc layout with small random weights (unit-variance ones overflow 6 pyramid levels).
  rng = np.random.default_rng(3)
  state = {k: (0.02 * rng.standard_normal(shape)).astype(np.float32) for k, shape in pwc_torch_shapes().items()}
  path = tmp_path / "pwc.npz"
  np.savez(path, **state)
  config = tiny_config(tfds_dir, arg="backbone=unet", num_train_steps=1, checkpoint_every_steps=1)
  config.model.flow_weights = str(path)
  record = train.train_and_evaluate(config, str(tmp_path / "w"))
  assert not any("PWC-Net has no pretrained weights" in n for n in record["notes"])
  trained, _ = train.restore_params(str(tmp_path / "w"), _template(config))
  loaded = _flat(weights.load_params("pwcnet", path))
  flow = _flat(trained["flow"]["pwcnet"])
  assert flow.keys() == loaded.keys()
  # Adam's first step moves each weight by at most its learning rate (plus float32 rounding of weights near 1, up
  # to 1.2e-7): 1e-6 for the flow...
  flow_moves = max(np.max(np.abs(flow[k] - loaded[k])) for k in flow)
  assert 0.8e-6 < flow_moves <= 1.2e-6
  # ...and 3e-4 (the runlocal schedule's start) for the interpolation module.
  init = _flat(train.init_params(train.build_model(config.model), config, _init_rng(config)))
  interp = _flat(trained["interpolation"])
  interp_moves = max(np.max(np.abs(interp[k] - init["['interpolation']" + k])) for k in interp)
  assert 1e-5 < interp_moves <= 3.01e-4


def _init_rng(config):
  return jax.random.split(jax.random.PRNGKey(config.seed))[0]


def _template(config):
  return train.init_params(train.build_model(config.model), config, jax.random.PRNGKey(0))


@pytest.mark.xdist_group("refin")
def test_stage2_starts_from_stage1(tfds_dir, tmp_path):
  stage1 = tiny_config(tfds_dir, arg="flow=unet,backbone=unetpp", num_train_steps=1)
  train.train_and_evaluate(stage1, str(tmp_path / "s1"))
  stage2 = tiny_config(tfds_dir, arg="flow=unet,backbone=unetpp,stage=2", num_train_steps=1)
  assert dict(stage2.loss.weights) == {"l1": 204.0} and stage2.optimizer.schedule.init_value == 1e-6
  with pytest.raises(ValueError, match="init_from"):
    train.train_and_evaluate(stage2, str(tmp_path / "s2_missing"))
  assert not os.path.exists(tmp_path / "s2_missing" / "checkpoints")
  stage2.init_from = str(tmp_path / "s1")
  train.train_and_evaluate(stage2, str(tmp_path / "s2"))
  p1, _ = train.restore_params(str(tmp_path / "s1"), _template(stage2))
  p2, _ = train.restore_params(str(tmp_path / "s2"), _template(stage2))
  moves = [np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2))]
  # One Adam step at 1e-6 from the stage-1 parameters, for every module (the whole model is fine-tuned).
  assert 0.8e-6 < max(moves) <= 1.2e-6
  assert "initialised the parameters from step 1" in (tmp_path / "s2" / "train.log").read_text()
