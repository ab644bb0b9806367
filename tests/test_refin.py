"""ReFIn end to end: Table 3 counts per backbone through summarize, short training of every backbone with PWC-Net
flow, pretrained flow weights at the fixed 1e-6 rate, and stage 2 from a stage-1 checkpoint."""
import json
import os

import jax
import numpy as np
import pytest

from conftest import tiny_config
from helpers import pwc_torch_shapes
from jaxvfi import checkpoints
from jaxvfi import families
from jaxvfi import steps
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
  config = tiny_config("unused", arg=f"backbone={backbone}", **{"model.unet_width": 1.0})
  assert config.model.flow == "pwcnet"  # the paper's default
  params = train.summarize(config, str(tmp_path))["params"]
  interp, refine = TABLE3[backbone]
  assert params == {"flow": PWC, "interpolation": interp, "refinement": refine, "total": PWC + interp + refine}
  assert json.loads((tmp_path / "summary.json").read_text())["params"] == params


def test_modules_choose_backbones_separately(tmp_path):
  config = tiny_config("unused", arg="interp=gridnet4,refine=unetpp,flow=unet", **{"model.unet_width": 1.0})
  params = train.summarize(config, str(tmp_path))["params"]
  assert params == {"flow": 19_794_116, "interpolation": 5_081_307, "refinement": 1_177_571,
                    "total": 19_794_116 + 5_081_307 + 1_177_571}


def _flat(tree):
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


# The bare configs/refin.py (PWC-Net flow, whole frames) with the two Table 3 backbone families other than UNet.
PAPER_TINY = dict(arg="interp=gridnet4,refine=unetpp", **{"data.crop_size": 0, "num_train_steps": 2,
                                                           "num_epochs": 0.0})


@pytest.mark.xdist_group("refin")
def test_paper_default_trains_on_whole_frames_with_the_other_backbones_and_pretrained_flow(tfds_dir, tmp_path):
  # The bare configs/refin.py (PWC-Net flow, no crop: data.crop_size = 0) with the two Table 3 backbone families
  # other than UNet in one model, so that PWC-Net compiles once: GridNet-4 interpolation, UNet++ refinement. UNet
  # backbones train in every test of test_train.py; GridNet-3 is GridNet-4's module with one row fewer (forward and
  # parameter counts in test_models_backbones.py). The flow starts from a state_dict in the pytorch-pwc layout with
  # small random weights (unit-variance ones overflow 6 pyramid levels) and trains at the paper's fixed 1e-6; the
  # from-scratch case is test_untrained_pwcnet_follows_the_default_schedule.
  rng = np.random.default_rng(3)
  state = {k: (0.02 * rng.standard_normal(shape)).astype(np.float32) for k, shape in pwc_torch_shapes().items()}
  path = tmp_path / "pwc.npz"
  np.savez(path, **state)
  config = tiny_config(tfds_dir, **PAPER_TINY)
  assert config.model.flow == "pwcnet" and config.data.crop_size == 0
  assert (config.model.interpolation_backbone, config.model.refinement_backbone) == ("gridnet4", "unetpp")
  config.model.flow_weights = str(path)
  record = train.train_and_evaluate(config, str(tmp_path / "w"))
  assert record["step"] == 2 and np.isfinite(record["metrics"]["psnr"])
  assert not any("PWC-Net has no pretrained weights" in n for n in record["notes"])
  trained, step = checkpoints.restore_params(str(tmp_path / "w"), _template(config))
  assert step == 2
  loaded = _flat(weights.load_params("pwcnet", path))
  flow = _flat(trained["flow"]["pwcnet"])
  assert flow.keys() == loaded.keys()
  # Two Adam steps move a weight by at most 2.0014 times the learning rate (the bias-corrected first step is at most
  # 1, the second at most sqrt(0.1^2/0.19^2 / (0.001/0.001999) + 0.09^2/0.19^2 / (0.000999/0.001999)) = 1.0014),
  # plus float32 rounding of weights near 1, and about twice it for weights whose two gradients agree in sign:
  # (1.6e-6, 2.4e-6] for the flow at its fixed 1e-6...
  flow_moves = max(np.max(np.abs(flow[k] - loaded[k])) for k in flow)
  assert 1.6e-6 < flow_moves <= 2.4e-6
  # ...and above 1e-5 for the modules on the cosine schedule from 1e-4 (100 times the flow's rate).
  init = steps.init_params(families.build_model(config.model), families.of(config).example_batch(config), _init_rng(config))
  for module in ("interpolation", "refinement"):
    moved = max(np.max(np.abs(np.asarray(a) - np.asarray(b)))
                for a, b in zip(jax.tree.leaves(trained[module]), jax.tree.leaves(init[module])))
    assert 1e-5 < moved <= 2.01e-4, module


def test_untrained_pwcnet_follows_the_default_schedule():
  # configs/refin.py keeps pretrained PWC-Net at a fixed 1e-6; without model.flow_weights that rate would leave it
  # random, so the flow group is dropped and the flow module follows the cosine schedule, and a note says so.
  from jaxvfi import models  # pylint: disable=g-import-not-at-top
  config = tiny_config("unused", **PAPER_TINY)
  assert dict(config.optimizer.groups.to_dict()) == {"flow": {"name": "constant", "init_value": 1e-6}}
  model = families.build_model(config.model)
  loss_fn, notes = families.of(config).make_loss_fn(config)
  assert any("PWC-Net has no pretrained weights" in n for n in notes)
  assert set(families.of(config).make_train_setup(config, model, loss_fn, families.of(config).example_batch(config), 2,
                                                 1.0).schedules) == {"default"}
  config.model.flow_weights = "pwc.npz"  # only its presence matters here; loading is tested above
  loss_fn, notes = families.of(config).make_loss_fn(config)
  assert not any("PWC-Net has no pretrained weights" in n for n in notes)
  schedules = families.of(config).make_train_setup(config, model, loss_fn, families.of(config).example_batch(config),
                                                   2, 1.0).schedules
  assert set(schedules) == {"default", "flow"}
  assert float(schedules["flow"](0)) == float(schedules["flow"](1)) == np.float32(1e-6)
  assert float(schedules["default"](0)) == np.float32(1e-4)


def _init_rng(config):
  return jax.random.split(jax.random.PRNGKey(config.seed))[0]


def _template(config):
  return steps.init_params(families.build_model(config.model), families.of(config).example_batch(config), jax.random.PRNGKey(0))


@pytest.mark.xdist_group("refin")
def test_stage2_starts_from_stage1(tfds_dir, tmp_path):
  # A quarter-width flow UNet and UNet++ backbones: of the models tried, the one whose two training programs compile
  # fastest (stage 2's logic does not depend on the modules).
  stage1 = tiny_config(tfds_dir, arg="flow=unet,backbone=unetpp", num_train_steps=1)
  train.train_and_evaluate(stage1, str(tmp_path / "s1"))
  stage2 = tiny_config(tfds_dir, arg="flow=unet,backbone=unetpp,stage=2", num_train_steps=1)
  assert dict(stage2.loss.weights) == {"l1": 204.0} and stage2.optimizer.schedule.init_value == 1e-6
  with pytest.raises(ValueError, match="init_from"):
    train.train_and_evaluate(stage2, str(tmp_path / "s2_missing"))
  assert not os.path.exists(tmp_path / "s2_missing" / "checkpoints")
  stage2.init_from = str(tmp_path / "s1")
  train.train_and_evaluate(stage2, str(tmp_path / "s2"))
  p1, _ = checkpoints.restore_params(str(tmp_path / "s1"), _template(stage2))
  p2, _ = checkpoints.restore_params(str(tmp_path / "s2"), _template(stage2))
  moves = [np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2))]
  # One Adam step at 1e-6 from the stage-1 parameters, for every module (the whole model is fine-tuned).
  assert 0.8e-6 < max(moves) <= 1.2e-6
  assert "initialised the parameters from step 1" in (tmp_path / "s2" / "train.log").read_text()
