"""Tests of the synthetic clip renderer against hand-derived geometry (shifts, 90-degree rotations, zoom)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxvfi.datasets import render


@pytest.fixture(scope="module")
def train_photos():
  return render.load_photos("train")


def _photo(seed: int, shape=(160, 200)) -> np.ndarray:
  return np.random.default_rng(seed).uniform(0, 255, (*shape, 3)).astype(np.float32)


def _single_layer_scene(photo, motion, anchor, size, mask=None):
  """A scene whose only layer is `photo`; with a mask the layer is composited over black."""
  layers = (render.Layer("p", anchor, motion, mask),)
  if mask is not None:
    layers = (render.Layer("black", (50.0, 50.0), render.Motion(position=(0.0, 0.0))),) + layers
  return render.Scene(layers=layers, photos={"p": photo, "black": np.zeros((100, 100, 3), np.float32)}, size=size)


def test_deterministic_given_seed(train_photos):
  times = np.linspace(0, 1, 3)
  a = render.render_clip(render.sample_scene(np.random.default_rng(7), train_photos, (48, 48)), times)
  b = render.render_clip(render.sample_scene(np.random.default_rng(7), train_photos, (48, 48)), times)
  c = render.render_clip(render.sample_scene(np.random.default_rng(8), train_photos, (48, 48)), times)
  assert a.dtype == np.uint8 and a.shape == (3, 48, 48, 3)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_first_and_last_frames_differ(train_photos):
  for seed in range(3):
    clip = render.render_clip(render.sample_scene(np.random.default_rng(seed), train_photos), [0.0, 1.0])
    assert np.abs(clip[0].astype(float) - clip[1]).mean() > 2.0


def test_translating_background_is_a_shifted_crop():
  photo = _photo(0)
  size = (32, 32)
  # Reference centre is (15.5, 15.5); an anchor at .5 makes photo row = y + 85 - T_y(t) + 15.5, an integer.
  motion = render.Motion(position=(15.5, 15.5), velocity=(4.0, -6.0))
  scene = _single_layer_scene(photo, motion, anchor=(100.5, 120.5), size=size)
  clip = render.render_clip(scene, [0.0, 0.5, 1.0])
  for frame, (dy, dx) in zip(clip, [(0, 0), (2, -3), (4, -6)]):
    expected = np.rint(photo[85 - dy:85 - dy + 32, 105 - dx:105 - dx + 32])
    np.testing.assert_array_equal(frame, expected.astype(np.uint8))
  # Content moves by +velocity: frame1 at p + (4, -6) is frame0 at p.
  np.testing.assert_array_equal(clip[2][4:, :-6], clip[0][:-4, 6:])


def test_foreground_layer_moves_exactly_as_the_scene_says():
  photo = _photo(1)
  mask = render.BlobMask(radius=7.0, amplitudes=(0.1, 0.05, 0.1), phases=(0.3, 1.0, -2.0), feather=2.0)
  motion = render.Motion(position=(20.0, 22.0), velocity=(3.0, -5.0))
  scene = _single_layer_scene(photo, motion, anchor=(80.0, 90.0), size=(48, 48), mask=mask)
  (_, a0), (c0, alpha0) = render.render_layers(scene, 0.0)
  _, (c1, alpha1) = render.render_layers(scene, 1.0)
  np.testing.assert_array_equal(a0, 1.0)  # The background is opaque.
  assert alpha0[20, 22] == 1.0 and alpha0[0, 0] == 0.0 and 0 < alpha0.sum() < alpha0.size
  np.testing.assert_array_equal(alpha1[3:, :-5], alpha0[:-3, 5:])
  np.testing.assert_array_equal(c1[3:, :-5], c0[:-3, 5:])
  # The layer at t=0 is the photo around the anchor: position (20, 22) shows photo pixel (80, 90).
  np.testing.assert_array_equal(c0[10:30, 12:32], photo[70:90, 80:100])
  clip = render.render_clip(scene, [0.0, 1.0])
  np.testing.assert_array_equal(clip[1][3:, :-5], clip[0][:-3, 5:])  # Over black, the whole frame shifts.


def test_rotation_and_zoom_about_the_anchor():
  photo = _photo(2)
  mask = render.BlobMask(radius=9.0, amplitudes=(0.2,), phases=(0.4,), feather=1.5)
  still = _single_layer_scene(photo, render.Motion(position=(16.0, 16.0)), (70.0, 60.0), (33, 33), mask)
  turned = _single_layer_scene(photo, render.Motion(position=(16.0, 16.0), angle=np.pi / 2), (70.0, 60.0), (33, 33),
                               mask)
  _, (c, a) = render.render_layers(still, 0.0)
  _, (c_rot, a_rot) = render.render_layers(turned, 0.0)
  # R(pi/2) sends (dy, dx) to (-dx, dy): right of the anchor goes up, i.e. counter-clockwise like np.rot90(k=1).
  np.testing.assert_allclose(c_rot, np.rot90(c, k=1), atol=1e-3)
  np.testing.assert_allclose(a_rot, np.rot90(a, k=1), atol=1e-5)
  zoomed = _single_layer_scene(photo, render.Motion(position=(16.0, 16.0), log_scale=np.log(2.0)), (70.0, 60.0),
                               (33, 33), mask)
  _, (c_zoom, a_zoom) = render.render_layers(zoomed, 0.0)
  # Scale 2 about (16, 16): output pixel 16 + 2d shows what scale 1 shows at 16 + d.
  np.testing.assert_allclose(c_zoom[::2, ::2], c[8:25, 8:25], atol=1e-3)
  np.testing.assert_allclose(a_zoom[::2, ::2], a[8:25, 8:25], atol=1e-5)


def test_occlusion_and_disocclusion(train_photos):
  found = 0
  for seed in range(4):
    scene = render.sample_scene(np.random.default_rng(seed), train_photos, (64, 64))
    layers0, layers1 = render.render_layers(scene, 0.0), render.render_layers(scene, 1.0)
    covered0 = np.max([alpha for _, alpha in layers0[1:]], axis=0) == 1.0
    free1 = np.max([alpha for _, alpha in layers1[1:]], axis=0) == 0.0
    revealed = covered0 & free1
    found += revealed.sum()
    frame0, frame1 = render.render_clip(scene, [0.0, 1.0])
    # Revealed pixels show the background at t=1, and not the background at t=0.
    background1 = np.clip(np.rint(layers1[0][0]), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(frame1[revealed], background1[revealed])
    top0 = np.clip(np.rint(layers0[-1][0]), 0, 255).astype(np.uint8)
    covered_by_top = (layers0[-1][1] == 1.0) & free1
    np.testing.assert_array_equal(frame0[covered_by_top], top0[covered_by_top])
  assert found > 20


def test_background_never_shows_the_photo_border():
  # Photos of a constant 100 with a ring of 0: any sample reaching the border would be darker than 100.
  photos = {}
  for name, shape in [("a", (150, 220)), ("b", (180, 160)), ("c", (200, 200))]:
    photo = np.zeros((*shape, 3), np.float32)
    photo[1:-1, 1:-1] = 100.0
    photos[name] = photo
  for seed in range(10):
    scene = render.sample_scene(np.random.default_rng(seed), photos, (128, 128), displacement=(10.0, 15.0),
                                time_range=(-0.5, 1.5))
    for t in np.linspace(-0.5, 1.5, 5):
      background, _ = render.render_layers(scene, t)[0]
      assert background.min() == pytest.approx(100.0, abs=1e-3), (seed, t)


def test_splits_use_disjoint_photos():
  train, validation = render.load_photos("train"), render.load_photos("validation")
  assert not set(train) & set(validation)
  # Different names could still be the same picture (skimage's `cat` is `chelsea`): compare pixels.
  for (_, a), (_, b) in itertools.product(train.items(), validation.items()):
    assert a.shape != b.shape or not np.allclose(a, b, atol=8)
  scene = render.sample_scene(np.random.default_rng(0), validation, num_foreground=(3, 3))
  assert {layer.photo for layer in scene.layers} <= set(validation)
  assert len({layer.photo for layer in scene.layers}) == 4  # Foregrounds come from photos other than the background.
  with pytest.raises(ValueError, match="unknown split"):
    render.load_photos("test")


def test_subframes_and_views(train_photos):
  scene = render.sample_scene(np.random.default_rng(3), train_photos, (40, 40))
  sub = render.render_subframes(scene, 0.25, 0.75, 5)
  np.testing.assert_array_equal(sub, render.render_clip(scene, [0.25, 0.375, 0.5, 0.625, 0.75]))
  # A view translated by (3, -2) is the default view shifted.
  view = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -2.0]])
  shifted = render.render_clip(scene, [0.5], view=view)[0]
  np.testing.assert_array_equal(shifted[:-3, 2:], sub[2][3:, :-2])
  assert render.render_clip(scene, [0.5], size=(80, 80)).shape == (1, 80, 80, 3)
