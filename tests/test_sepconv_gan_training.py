"""SepConv-GAN through the trainer: one GAN step (both networks move by their own Adam rates, the frozen VGG stays
bit-identical), the runlocal config through `python -m jaxvfi.main` (train, checkpoint, resume in a new process,
evaluate), `--mode=summary`, `python -m jaxvfi.interpolate --pixel_shader` on two PNGs, and the Colab notebook, whose
two straight steps must equal the entry point's 1 + 1 resumed steps bit for bit.

Sizes: the discriminator needs inputs of at least 96x96 (block5_pool >= 3x3 for its 3x3 valid max-pool), so the
runs here use 96x96 frames, batch 1, and a 4-clip embedded dataset rendered at 96x96 (max_offset 0: no resize).
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from conftest import ROOT, run_main
from helpers import run_notebook
from jaxvfi import config_lib
from jaxvfi import train
from jaxvfi import weights
from jaxvfi.models import sepconv_gan as gan
from jaxvfi.models import vgg

pytestmark = pytest.mark.xdist_group("sepconv_gan")

# configs/sepconv_gan.py:runlocal shrunk to seconds (the 96x96 crop is the discriminator's minimum).
GAN_TINY = {
    "batch_size": 1,
    "eval_batch_size": 1,
    "num_eval_examples": 1,
    "num_image_summaries": 1,
    "eval_every_steps": 1000,
    "checkpoint_every_steps": 1000,   # the last step of a run is always saved
    "log_every_steps": 1,
    "progress_bar": False,
    "data.synthetic_num_train": 4,
    "data.synthetic_num_val": 1,
    "data.synthetic_size": 96,
    "data.augmentation_args.max_offset": 0,
}


def _config(arg="runlocal", **overrides):
  return config_lib.load_config(os.path.join(ROOT, "configs", "sepconv_gan.py"), arg, overrides)


def _lecun(shape, rng):
  """A LeCun-normal kernel / zero bias, like Flax's init, without compiling `init` (slow on CPU for 55 M weights)."""
  if len(shape) == 1:
    return np.zeros(shape, np.float32)
  return (rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)


def _write_vgg(path, seed=0):
  """A VGG-19 state_dict in torchvision's layout (features.{j}.weight OIHW), random, as the converter writes it."""
  rng = np.random.default_rng(seed)
  state = {}
  for prefix, (flax_path, _) in vgg.torch_layers(vgg.BLOCKS).items():
    kh, kw, cin, cout = weights.expected_shapes("vgg19")[flax_path + ("kernel",)]
    state[f"{prefix}.weight"] = _lecun((kh, kw, cin, cout), rng).transpose(3, 2, 0, 1)
    state[f"{prefix}.bias"] = rng.normal(0.0, 0.01, cout).astype(np.float32)
  np.savez(path, **state)
  return state


def _leaves_equal(a, b):
  return [np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


def test_one_gan_step_moves_both_networks_and_not_the_frozen_vgg(tmp_path):
  state_dict = _write_vgg(tmp_path / "vgg19.npz")
  c = _config(None, **{"batch_size": 1, "model.input_size": 96, "data.augmentation_args.crop_size": 96,
                       "model.vgg_weights": str(tmp_path / "vgg19.npz")})
  model = gan.build(c.model)
  loss_fn, notes = gan.make_loss_fn(c)
  assert notes == []
  setup = gan.make_train_setup(c, model, loss_fn, gan.example_batch(c), total_steps=10, steps_per_epoch=1.0)
  shapes = jax.eval_shape(lambda r: model.init(r, gan.example_batch(c), train=False)["params"], jax.random.key(0))
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda s: jnp.asarray(_lecun(s.shape, rng)), shapes)
  params, loaded = gan.load_pretrained(params, c)
  assert "loaded VGG-19 weights" in loaded[0]
  np.testing.assert_array_equal(params["vgg"]["conv3_2"]["kernel"],
                                state_dict["features.12.weight"].transpose(2, 3, 1, 0))
  g_tx, d_tx, _ = gan.make_optimizers(c, 10, 1.0)
  state = gan.init_state(params, c, g_tx, d_tx)
  frames = jax.random.uniform(jax.random.key(2), (3, 1, 96, 96, 3))
  batch = {"frame0": frames[0], "frame1": frames[1], "target": frames[2], "t": jnp.full((1,), 0.5)}

  new, metrics = jax.jit(setup.step)(state, batch, jax.random.key(3))
  new = jax.device_get(new)
  assert int(new.step) == 1 and all(np.isfinite(float(v)) for v in metrics.values())
  assert {"loss", "loss_perceptual", "loss_l1", "loss_adversarial", "loss_discriminator"} <= set(metrics)
  assert all(_leaves_equal(new.params["vgg"], params["vgg"]))                  # frozen: bit-identical
  assert not any(_leaves_equal(new.params["generator"], params["generator"]))  # every generator tensor moved
  assert not any(_leaves_equal(new.params["discriminator"], params["discriminator"]))
  # Adam's first step moves each weight by lr * g / (|g| + eps), i.e. by its optimizer's rate: 6e-4 and 1e-4.
  step_size = lambda a, b: max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
                               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert step_size(new.params["generator"], params["generator"]) == pytest.approx(6e-4, rel=1e-3)
  assert step_size(new.params["discriminator"], params["discriminator"]) == pytest.approx(1e-4, rel=1e-3)
  # Adam's moments (chain(clip, adam) -> (clip state, (ScaleByAdamState, schedule state))): the discriminator's
  # cover its head only, the VGG has none; the generator's cover the generator.
  assert set(new.d_opt_state[1][0].mu) == {"discriminator"}
  assert jax.tree.structure(new.g_opt_state[1][0].mu) == jax.tree.structure(params["generator"])


def test_summary_shows_the_paper_counts(tmp_path, capsys):
  record = train.summarize(_config(None), str(tmp_path))   # what --mode=summary runs
  table = capsys.readouterr().out
  assert "21,675,452" in table and "13,114,369" in table and "20,024,384" in table
  assert record["params"] == json.loads((tmp_path / "summary.json").read_text())["params"] == {
      "generator": 21_675_452, "discriminator": 13_114_369, "vgg": 20_024_384, "total": 54_814_205}


def test_paper_config_refuses_to_start_without_vgg_weights(tfds_dir, tmp_path):
  c = _config(None, **{**GAN_TINY, "data.tfds_dir": tfds_dir, "num_train_steps": 1, "model.input_size": 96,
                       "data.augmentation_args.crop_size": 96})
  with pytest.raises(ValueError, match="model.vgg_weights is not set"):
    train.train_and_evaluate(c, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def _cli(tfds_dir, steps):
  return [f"--config.{k}={v}" for k, v in {**GAN_TINY, "data.tfds_dir": tfds_dir, "num_train_steps": steps}.items()]


@pytest.fixture(scope="module")
def resumed_workdir(tfds_dir, tmp_path_factory):
  """runlocal through the entry point: 1 step, then a new process continues to step 2."""
  workdir = tmp_path_factory.mktemp("gan_runlocal")
  for steps in (1, 2):
    r = run_main(["--config=configs/sepconv_gan.py:runlocal", f"--workdir={workdir}"] + _cli(tfds_dir, steps))
    assert r.returncode == 0, r.stderr[-3000:]
  return workdir


def _checkpoint(workdir, step):
  """Every item of checkpoint `step` (params, g_opt_state, d_opt_state, extra) as NumPy, no template needed."""
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
  folder = os.path.join(workdir, "checkpoints", str(step))
  items = [name for name in os.listdir(folder) if os.path.isdir(os.path.join(folder, name))]
  args = {name: ocp.args.JsonRestore() if name == "extra" else ocp.args.StandardRestore() for name in items}
  return mngr.restore(step, args=ocp.args.Composite(**args))


def test_runlocal_trains_checkpoints_resumes_and_evaluates(resumed_workdir):
  record = json.loads((resumed_workdir / "eval_2.json").read_text())
  assert record["step"] == 2 and np.isfinite(record["metrics"]["psnr"])
  assert any("randomly initialised" in note for note in record["notes"])        # the eval JSON says it
  log = (resumed_workdir / "train.log").read_text()
  assert "resuming from the checkpoint of step 1" in log and "randomly initialised" in log
  one, two = _checkpoint(resumed_workdir, 1), _checkpoint(resumed_workdir, 2)
  assert set(one) >= {"params", "g_opt_state", "d_opt_state", "extra"}
  for name in ("generator", "discriminator", "vgg"):  # runlocal trains its random VGG with the discriminator
    assert not all(_leaves_equal(one["params"][name], two["params"][name])), name


def test_notebook_two_straight_steps_equal_the_resumed_run(resumed_workdir, tfds_dir, tmp_path, monkeypatch):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  monkeypatch.chdir(ROOT)
  ns = run_notebook(os.path.join(ROOT, "colabs", "sepconv_gan.ipynb"), {
      "WORKDIR": str(tmp_path / "colab"), "NUM_EXAMPLES": 1,
      "OVERRIDES": {**GAN_TINY, "data.tfds_dir": tfds_dir, "num_train_steps": 2},
  })
  assert ns["counts"]["generator"] == 21_675_452 and ns["counts"]["discriminator"] == 9_968_641  # dense in 512
  assert ns["record"]["step"] == 2 and ns["grid"].shape == (96, 5 * 96, 3)
  straight, resumed = _checkpoint(tmp_path / "colab", 2), _checkpoint(resumed_workdir, 2)
  for name in ("params", "g_opt_state", "d_opt_state"):
    assert all(_leaves_equal(straight[name], resumed[name])), name
  assert straight["extra"] == resumed["extra"]


def test_interpolate_cli_pixel_shader_on_two_pngs(resumed_workdir, tmp_path):
  """Frames identical on their left half: there B = 0 (far from the edge), so the shaded frame equals the input."""
  rng = np.random.default_rng(4)
  a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
  b = a.copy()
  b[:, 32:] = rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)
  Image.fromarray(a).save(tmp_path / "a.png")
  Image.fromarray(b).save(tmp_path / "b.png")
  r = _run_module("jaxvfi.interpolate", [f"--workdir={resumed_workdir}", "--frames", str(tmp_path / "a.png"),
                                         str(tmp_path / "b.png"), f"--output={tmp_path / 'mid.png'}", "--pixel_shader"])
  assert r.returncode == 0, r.stderr[-3000:]
  mid = np.asarray(Image.open(tmp_path / "mid.png"))
  assert mid.shape == (64, 64, 3)
  # Columns 0..21 are more than the blur radius (10) away from column 32: B = 0 < LO, so the output is the average.
  np.testing.assert_array_equal(mid[:, :22], a[:, :22])


def _run_module(module, args):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  return subprocess.run([sys.executable, "-m", module] + args, cwd=ROOT, env=dict(os.environ), capture_output=True,
                        text=True, timeout=900, check=False)
