"""The Colab notebooks run top to bottom (cells executed in order, the "parameters" cell's values shrunk)."""
import ast
import json
import os

from PIL import Image
import pytest

from jaxvfi import released
from jaxvfi import video_io
from jaxvfi import weights
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
  # Quarter-width UNets (REFIN_TINY): interpolation 16 -> 5, refinement 20 -> 3; the quickstart's flow is DIS (no
  # parameters).
  assert ns["counts"]["total"] == sum(unet_count_by_hand(i, o, 0.25) for i, o in [(16, 5), (20, 3)])
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
  assert len(ns["fig"].axes) == 2  # the last figure: your photo, bicubic and SDAN
  assert ns["small"].shape == (48, 48, 3) and ns["big"].shape == (192, 192, 3)
  assert sorted(os.listdir(tmp_path / "colab" / "your_photo")) == ["astronaut_crop.png", "zoomed_x4.png"]


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
  assert ns["frames_written"] == 11  # DSFN: M frames in, 2M - 1 out, at twice the rate (the last lasts to the end)
  assert ns["first_in"].shape == (32, 32, 3) and ns["first_out"].shape == (128, 128, 3)


def test_interpolate_your_video_notebook(tmp_path, monkeypatch):
  """Random weights in the released layout (nothing fetched): the made pair and video, interpolated and shown."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  monkeypatch.setenv(released.CACHE_ENV, str(tmp_path / "cache"))  # a fetch would land here, not in the user's cache
  model_path = str(tmp_path / "superslomo-random.safetensors")  # the notebook's default MODEL's layout
  weights.write_converted("superslomo", weights.random_state_dict("superslomo", 0), model_path)
  out = tmp_path / "out"
  ns = run_notebook(os.path.join(ROOT, "colabs", "interpolate_your_video.ipynb"), {
      "WEIGHTS": model_path, "OUTPUT_DIR": str(out), "SIZE": 64,
  })
  assert Image.open(out / "middle.png").size == (64, 64)
  assert [ax.get_title() for ax in ns["fig"].axes] == ["frame 0 (input)", "t = 0.5 (interpolated)", "frame 1 (input)"]
  info = video_io.probe(str(out / "made_input_x2.mp4"))
  assert (info.width, info.height) == (64, 64) and info.num_frames == 10  # 5 frames of 1/12 s each, at 24 fps
  assert not (tmp_path / "cache").exists() or not os.listdir(tmp_path / "cache")  # nothing was fetched


def _install_cell_is_colab_only(source):
  """True when the cell's statements are imports, assignments and one `if "google.colab" in sys.modules:` that
  holds every call (so outside Colab it installs nothing)."""
  tree = ast.parse(source)
  guards = [s for s in tree.body if isinstance(s, ast.If)]
  others = [s for s in tree.body if not isinstance(s, ast.If)]
  return (len(guards) == 1 and ast.unparse(guards[0].test) == "'google.colab' in sys.modules" and not guards[0].orelse
          and all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Assign)) for s in others)
          and not any(isinstance(n, ast.Call) for s in others for n in ast.walk(s)))


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "colabs"))))
def test_notebook_is_a_colab_notebook(name):
  """The Colab GPU runtime setting, and a first code cell that installs jaxvfi on Colab only (plain Python)."""
  nb = json.load(open(os.path.join(ROOT, "colabs", name)))
  assert nb["metadata"]["accelerator"] == "GPU"
  assert nb["metadata"]["colab"]["gpuType"] == "T4" and nb["metadata"]["colab"]["provenance"] == []
  first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
  assert "JAXVFI_SOURCE" in first and "pip" in first and _install_cell_is_colab_only(first), first
  code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
  assert '"configs/' not in code, "configs are loaded with config_lib.packaged_config, from any directory"
