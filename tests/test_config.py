"""Configs load, their arg-string variants parse, and unknown variants fail clearly."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from jaxvfi import config_lib


def _load(name):
  return lambda arg=None: config_lib.load_config(os.path.join(ROOT, "configs", f"{name}.py"), arg)


def test_refin_defaults_follow_the_paper():
  c = _load("refin")()
  assert c.batch_size == 4 and c.data.t == 0.5 and c.data.t_sampling == "fixed"
  assert dict(c.loss.weights) == {"l1": 204.0, "perceptual": 0.005, "warp": 102.0, "smoothness": 1.0}
  assert c.optimizer.b1 == 0.9 and c.optimizer.b2 == 0.999
  assert c.optimizer.schedule.init_value == 1e-4 and c.optimizer.schedule.end_value == 1e-6
  assert c.model.interpolation_backbone == c.model.refinement_backbone == "unet"


def test_variants():
  get = _load("refin")
  c = get("backbone=gridnet4,refinement=false")
  assert c.model.interpolation_backbone == "gridnet4" and not c.model.use_refinement
  c = get("runlocal")
  assert c.num_train_steps > 0 and c.data.crop_size == 64
  assert (c.model.unet_width, c.batch_size) == (1.0, 4)
  c = get("cpu")  # the quickstart's data with half-width UNets at batch 8 (BENCHMARKS.md)
  assert (c.model.unet_width, c.batch_size, c.num_train_steps, c.data.crop_size) == (0.5, 8, 1000, 64)
  assert (c.data.random_downscale, c.data.random_flip_v, c.data.random_flip_h) == (0.5, True, True)
  assert c.data.random_channel_reverse and c.test_time_augmentation
  assert c.model.flow == "dis" and c.model.zero_heads and c.model.warp_padding == "border"
  assert get("cpu,flow=unet").model.flow == "unet" and not get("cpu,flow=unet").model.zero_heads
  assert get("runlocal").data.random_downscale == 1.0
  with pytest.raises(ValueError, match="unknown config arg 'bakbone'"):
    get("bakbone=unet")
  s = _load("superslomo")()
  assert s.data.t_sampling == "uniform" and s.optimizer.schedule.name == "step"
  assert list(s.optimizer.schedule.boundaries_epochs) == [200, 400]


def test_parse_arg_types():
  a = config_lib.parse_arg("n=3,x=0.5,flag,name=b", n=1, x=0.0, flag=False, name="a")
  assert (a.n, a.x, a.flag, a.name) == (3, 0.5, True, "b")
  with pytest.raises(ValueError):
    config_lib.parse_arg("n", n=1)
  with pytest.raises(ValueError):
    config_lib.parse_arg("flag=maybe", flag=False)


def test_overrides_like_the_command_line():
  c = config_lib.load_config(os.path.join(ROOT, "configs", "refin.py"), "runlocal",
                             {"batch_size": 8, "data.crop_size": 96, "model.use_refinement": False})
  assert (c.batch_size, c.data.crop_size, c.model.use_refinement) == (8, 96, False)
  with pytest.raises(KeyError, match="data.no_such"):
    config_lib.load_config(os.path.join(ROOT, "configs", "refin.py"), None, {"data.no_such": 1})


def test_base_config_is_task_neutral_and_each_vfi_config_adds_the_three_benchmarks():
  assert set(config_lib.base_config().evals) == {"validation"}
  datasets = {"vimeo90k": "vimeo90k_triplet", "ucf101": "ucf101_triplet", "middlebury": "middlebury_other"}
  assert {k: v["dataset"] for k, v in config_lib.vfi_benchmarks().items()} == datasets
  for name in ("refin", "superslomo", "sepconv", "sepconv_gan"):
    c = _load(name)()
    assert set(c.evals) == {"validation", *datasets}, name
    assert c.evals.validation.type is None  # the family's evaluator type
    for key, dataset in datasets.items():
      assert c.evals[key].to_dict() == {"type": "vfi_triplet", "dataset": dataset, "dir": None, "split": "test"}
  assert set(_load("dsfn")().evals) == {"validation", "adobe240", "gopro"}
  assert set(_load("sdan")().evals) == {"validation"}


def test_configs_and_the_data_config_load_no_input_pipeline():
  """Configs (and families reading them) need the data config only: no grain, TFDS or input pipeline."""
  code = ("import sys; from jaxvfi import config_lib, data_config; config_lib.base_config(); "
          "data_config.augmentation_params(data_config.default_data_config()); "
          "print(sorted(m for m in ('grain', 'tensorflow_datasets', 'jaxvfi.input_pipeline', "
          "'jaxvfi.datasets.registry') if m in sys.modules))")
  r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.strip() == "[]"


def test_config_path_falls_back_to_the_packaged_config(tmp_path, monkeypatch):
  """`--config=configs/<paper>.py` from another directory than a checkout's root is the packaged config."""
  monkeypatch.chdir(tmp_path)
  packaged = config_lib.packaged_config_path("configs/refin.py")
  assert packaged is not None and os.path.isabs(packaged) and os.path.basename(packaged) == "refin.py"
  assert config_lib.load_config(packaged, "runlocal").to_dict() == _load("refin")("runlocal").to_dict()
  argv, note = config_lib.packaged_config_argv(["prog", "--config=configs/refin.py:runlocal,data=rendered", "--workdir=w"])
  assert argv == ["prog", f"--config={packaged}:runlocal,data=rendered", "--workdir=w"]
  assert "configs/refin.py" in note and packaged in note and str(tmp_path) in note
  argv, _ = config_lib.packaged_config_argv(["prog", "--config", "refin.py", "--workdir=w"])
  assert argv == ["prog", "--config", packaged, "--workdir=w"]
  for kept in (["prog", "--config=configs/nonexistent.py"],  # no packaged config of that name: absl's error
               ["prog", "--config=elsewhere/refin.py"],  # a folder other than configs/ is the user's own path
               ["prog", "--config.seed=3"]):
    assert config_lib.packaged_config_argv(kept) == (kept, None)
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "refin.py").write_text("def get_config(arg=None): ...\n")
  assert config_lib.packaged_config_argv(["prog", "--config=configs/refin.py"]) == (["prog", "--config=configs/refin.py"],
                                                                               None)  # an existing file is used


def test_main_from_another_directory_uses_the_packaged_config(tmp_path):
  r = subprocess.run([sys.executable, "-m", "jaxvfi.main", "--config=configs/sepconv.py:runlocal",
                      f"--workdir={tmp_path / 'w'}", "--mode=summary"], cwd=tmp_path, capture_output=True, text=True,
                     timeout=600, check=False)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "--config=configs/sepconv.py: no such file in the current directory" in r.stderr
  assert "using the packaged config of that name" in r.stderr
  assert (tmp_path / "w" / "summary.json").is_file() and "sepconv" in r.stdout
