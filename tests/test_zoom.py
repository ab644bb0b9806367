"""jaxvfi.zoom: tiles against the untiled network, the reach against a perturbation, any size, bad input."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from jaxvfi import zoom
from jaxvfi.models import sdan


@pytest.fixture(scope="module")
def small():
  """A 2-block RGB SDAN with CPA switched on (gamma 0.5, so its global attention matters) and random weights."""
  model = sdan.SDAN(input="rgb", features=8, num_blocks=2, impl="xla")
  batch = {"lr_raw": jnp.zeros((1, 8, 8, 4)), "lr_rgb": jnp.zeros((1, 16, 16, 3)), "hr_rgb": jnp.zeros((1, 64, 64, 3))}
  params = model.init(jax.random.PRNGKey(0), batch)["params"]
  params = jax.tree_util.tree_map_with_path(
      lambda path, v: v + 0.5 if "gamma" in jax.tree_util.keystr(path) else v, params)
  return model, params


def test_reach_bounds_the_receptive_field(small):
  model, params = small
  reach = model.reconstruct_reach()
  assert reach == 9  # 3x3 convs: head, deformable, 2 x 2 body, body conv (7), x2 stages 1 + 1/2, tail 1/4
  x = np.random.default_rng(1).random((1, 40, 40, 3)).astype(np.float32)
  bumped = x.copy()
  bumped[0, 20, 20] += 1.0
  run = jax.jit(lambda x: model.apply({"params": params}, x, jnp.zeros((1, 40, 40, 2)), method=sdan.SDAN.reconstruct))
  changed = np.abs(np.asarray(run(bumped)["image"] - run(x)["image"]))[0].max(-1) > 0
  rows, cols = np.nonzero(changed.any(1))[0], np.nonzero(changed.any(0))[0]
  for lo, hi in ((rows.min(), rows.max()), (cols.min(), cols.max())):
    assert 4 * (20 - reach) <= lo and hi < 4 * (21 + reach)  # HR pixels of LR pixels 20 +- reach
    assert lo < 4 * (20 - reach + 1) and hi >= 4 * (21 + reach - 1)  # and the bound is tight to 1 LR px


def test_tiled_equals_untiled(small):
  model, params = small
  image = np.random.default_rng(2).random((70, 90, 3)).astype(np.float32)  # padded to 96 x 96
  full = zoom.Zoomer(model, params, tile=1000).zoom_float(image)
  assert full.shape == (280, 360, 3)
  # Default context (reach + largest offset): every pixel, seams included, within 1e-5 (float rounding only).
  tiled = zoom.Zoomer(model, params, tile=32).zoom_float(image)
  np.testing.assert_allclose(tiled, full, atol=1e-5)

  # Too little context (4 < reach 9): only a band around the tile seams differs.
  short = zoom.Zoomer(model, params, tile=32, overlap=4)
  padded = np.pad(image, ((0, 26), (0, 6), (0, 0)), mode="edge")[None]
  band = 4 * (model.reconstruct_reach() + int(np.ceil(np.abs(np.asarray(short._offsets(params, padded))).max())))
  diff = np.abs(short.zoom_float(image) - full).max(-1)
  # HR distance to the seams between 32 px cores (HR 128 and 256), per row and per column.
  seam_distance = lambda n: np.min(np.abs(np.arange(4 * n)[:, None] - np.array([128, 256])[None]), axis=1)
  far = (seam_distance(70)[:, None] >= band) & (seam_distance(90)[None, :] >= band)
  assert far.any() and (~far).any()
  assert diff[far].max() <= 1e-5
  assert diff[~far].max() > 1e-3


def test_zoom_any_size_and_errors(small, tmp_path, caplog):
  model, params = small
  zoomer = zoom.Zoomer(model, params)
  out = zoomer.zoom(np.random.default_rng(3).integers(0, 256, (13, 10, 3), dtype=np.uint8))
  assert out.shape == (52, 40, 3) and out.dtype == np.uint8
  with pytest.raises(ValueError, match="HxWx3"):
    zoomer.zoom(np.zeros((4, 4)))
  with pytest.raises(ValueError, match="RAW input"):
    zoom.Zoomer(sdan.SDAN(), params)

  photos = tmp_path / "photos"
  photos.mkdir()
  Image.fromarray(np.full((9, 7, 3), 128, np.uint8)).save(photos / "a.png")
  Image.fromarray(np.full((8, 8), 50, np.uint8)).save(photos / "b.jpg")
  (photos / "notes.txt").write_text("not an image")
  pairs = zoom.plan(str(photos), str(tmp_path / "out"))
  assert [os.path.basename(d) for _, d in pairs] == ["a.png", "b.png"]
  written = zoom.zoom_files(zoomer, pairs, progress=False)
  assert [np.asarray(Image.open(p)).shape for p in written] == [(36, 28, 3), (32, 32, 3)]
  assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]  # no temporary files left

  with caplog.at_level("INFO", logger="absl"):  # a second run replaces its own PNGs, and says so
    zoom.zoom_files(zoomer, zoom.plan(str(photos), str(tmp_path / "out")), progress=False)
  assert f"{tmp_path / 'out' / 'b.png'}: replaced the earlier file of that name" in caplog.text
  (tmp_path / "out" / "keep.txt").write_text("mine")
  with pytest.raises(ValueError, match=r"holds 1 file\(s\) this tool did not write \(keep\.txt\)"):
    zoom.plan(str(photos), str(tmp_path / "out"))

  broken = photos / "broken.png"
  broken.write_bytes(b"\x89PNG not really")
  with pytest.raises(ValueError, match=f"cannot read image {broken}"):  # a folder's bad image: before any model
    zoom.plan(str(photos), str(tmp_path / "out2"))
  with pytest.raises(ValueError, match=f"cannot read image {broken}"):
    zoom.zoom_files(zoomer, [(str(broken), str(tmp_path / "broken_x4.png"))], progress=False)
  assert not (tmp_path / "broken_x4.png").exists()
  with pytest.raises(FileNotFoundError, match="missing.png does not exist"):
    zoom.plan(str(tmp_path / "missing.png"), str(tmp_path / "o.png"))
  with pytest.raises(ValueError, match="must end in .png"):
    zoom.plan(str(photos / "a.png"), str(tmp_path / "o.jpg"))
  with pytest.raises(NotADirectoryError, match="must be a folder"):
    zoom.plan(str(photos), str(tmp_path / "o.png"))
  with pytest.raises(ValueError, match="is the input"):  # photos/a.png would be replaced by its own zoom
    zoom.plan(str(photos), str(photos))
  with pytest.raises(ValueError, match="is the input"):
    zoom.plan(str(photos / "a.png"), str(photos / "a.png"))
  with pytest.raises(FileNotFoundError, match="no workdir|has no config.json"):
    zoom.load_model(str(tmp_path))
