"""Tests of the TFDS synthetic builder and the grain pipeline: round trip, augmentations, exact resume."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxvfi import input_pipeline
from jaxvfi.data import render
from jaxvfi.datasets import synthetic

NUM_FRAMES = 5  # times 0, 0.25, 0.5, 0.75, 1


@pytest.fixture(scope="module")
def config(tmp_path_factory):
  config = input_pipeline.default_data_config()
  config.tfds_dir = str(tmp_path_factory.mktemp("tfds"))
  config.synthetic_num_train = 6
  config.synthetic_num_val = 3
  config.synthetic_size = 24
  config.synthetic_num_frames = NUM_FRAMES
  config.crop_size = 16
  return config


@pytest.fixture(scope="module")
def builder(config):
  return input_pipeline.get_builder(config)


def _plain(config, **overrides):
  """A copy of `config` with every augmentation off, then `overrides`."""
  config = config.copy_and_resolve_references()
  config.crop_size = None
  config.random_flip_h = config.random_flip_v = config.temporal_swap = False
  for key, value in overrides.items():
    setattr(config, key, value)
  return config


def _coordinate_clips(count=4, size=(20, 24), num_frames=NUM_FRAMES):
  """Clips whose pixel (y, x) of frame k is (y, x, 8 c + k) for clip c: position and identity are readable."""
  y, x = np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij")
  clips = []
  for c in range(count):
    frames = np.stack([np.stack([y, x, np.full_like(y, 8 * c + k)], -1) for k in range(num_frames)])
    clips.append({"frames": frames.astype(np.uint8), "times": synthetic.clip_times(num_frames), "id": b"%d" % c})
  return clips


def _take(dataset, n):
  return [dataset[i] for i in range(n)]


def test_builder_round_trips_the_rendered_pixels(builder, config):
  assert builder.info.splits["train"].num_examples == 6
  assert input_pipeline.num_examples(config, "validation") == 3
  for split, count in [("train", 6), ("validation", 3)]:
    source = builder.as_data_source(split=split)
    assert len(source) == count
    for index in range(count):
      clip = source[index]
      expected = synthetic.make_clip(split, index, size=(24, 24), num_frames=NUM_FRAMES)
      assert clip["id"] == expected["id"].encode()
      np.testing.assert_array_equal(clip["times"], [0, 0.25, 0.5, 0.75, 1])
      assert clip["frames"].dtype == np.uint8 and clip["frames"].shape == (NUM_FRAMES, 24, 24, 3)
      np.testing.assert_array_equal(clip["frames"], expected["frames"])
  # make_clip is the renderer driven by the documented per-clip seed, with motion scaled to the 24-px frame.
  scene = render.sample_scene(np.random.default_rng([0, 1, 2]), render.load_photos("validation"), (24, 24),
                              displacement=(2.0 * 24 / 128, 15.0 * 24 / 128))
  np.testing.assert_array_equal(builder.as_data_source(split="validation")[2]["frames"],
                                render.render_clip(scene, np.linspace(0, 1, NUM_FRAMES)))


def test_get_builder_errors(config):
  unknown = config.copy_and_resolve_references()
  unknown.name = "vimeo_nonexistent"
  with pytest.raises(ValueError, match="jaxvfi_synthetic"):
    input_pipeline.get_builder(unknown)
  missing = config.copy_and_resolve_references()
  missing.dir = "/nonexistent/jaxvfi/manual"
  with pytest.raises(FileNotFoundError, match="/nonexistent/jaxvfi/manual"):
    input_pipeline.get_builder(missing)


def test_train_batches_shapes_dtypes_ranges(builder, config):
  del builder
  batch = next(input_pipeline.create_train_iterator(config, 4, seed=0))
  assert set(batch) == {"frame0", "frame1", "target", "t"}
  for key in ("frame0", "frame1", "target"):
    assert batch[key].shape == (4, 16, 16, 3) and batch[key].dtype == np.float32
    assert 0.0 <= batch[key].min() and batch[key].max() <= 1.0 and batch[key].max() > 0.5
  assert batch["t"].shape == (4,) and batch["t"].dtype == np.float32
  np.testing.assert_array_equal(batch["t"], 0.5)  # Fixed t = 0.5; temporal swap keeps it at 1 - 0.5.


def test_fixed_target_is_the_frame_at_t_of_the_same_clip(builder, config):
  source = builder.as_data_source(split="train")
  clips = [source[i]["frames"].astype(np.float32) / 255 for i in range(len(source))]
  batch = next(input_pipeline.create_train_iterator(_plain(config, t=0.75), 6, seed=3))
  np.testing.assert_array_equal(batch["t"], 0.75)
  seen = set()
  for frame0, frame1, target in zip(batch["frame0"], batch["frame1"], batch["target"]):
    (index,) = [i for i, clip in enumerate(clips) if np.array_equal(clip[0], frame0)]
    seen.add(index)
    np.testing.assert_array_equal(frame1, clips[index][4])
    np.testing.assert_array_equal(target, clips[index][3])
  assert seen == set(range(6))  # One epoch in one batch: a permutation of the clips.


def test_exact_resume_and_seed_dependence(builder, config):
  del builder
  fresh = input_pipeline.create_train_iterator(config, 4, seed=5)
  batches = [next(fresh) for _ in range(6)]
  resumed = input_pipeline.create_train_iterator(config, 4, seed=5, start_step=3)
  for step in range(3, 6):
    batch = next(resumed)
    for key in batch:
      np.testing.assert_array_equal(batch[key], batches[step][key])
  other = next(input_pipeline.create_train_iterator(config, 4, seed=6))
  assert not np.array_equal(other["frame0"], batches[0]["frame0"])


def test_epochs_reshuffle_and_augmentation_changes_per_epoch():
  clips = _coordinate_clips(count=6)
  config = _plain(input_pipeline.default_data_config())
  dataset = input_pipeline.make_train_dataset(clips, config, 6, seed=0)
  orders = []
  for batch in _take(dataset, 4):  # 4 epochs of 6 clips.
    order = tuple(int(v) // 8 for v in np.rint(batch["frame0"][:, 0, 0, 2] * 255))
    assert sorted(order) == list(range(6))
    orders.append(order)
  assert len(set(orders)) > 1
  config.crop_size = 8
  cropped = input_pipeline.make_train_dataset(clips, config, 6, seed=0)
  corners = [tuple(batch["frame0"][:, 0, 0, :2].ravel()) for batch in _take(cropped, 4)]
  assert len(set(corners)) == 4


def test_crop_window_is_shared_by_all_frames():
  clips = _coordinate_clips()  # 20x24 frames
  config = _plain(input_pipeline.default_data_config(), crop_size=16, t_sampling="uniform")
  batch = input_pipeline.make_train_dataset(clips, config, 64, seed=1)[0]
  windows = set()
  for example in range(64):
    coords = [np.rint(batch[k][example] * 255).astype(int) for k in ("frame0", "target", "frame1")]
    y0, x0 = coords[0][0, 0, :2]
    windows.add((y0, x0))
    ys, xs = np.meshgrid(np.arange(y0, y0 + 16), np.arange(x0, x0 + 16), indexing="ij")
    for image in coords:
      assert image.shape == (16, 16, 3)
      np.testing.assert_array_equal(image[..., 0], ys)
      np.testing.assert_array_equal(image[..., 1], xs)
    clip, target_frame = divmod(coords[1][0, 0, 2], 8)
    assert coords[0][0, 0, 2] == 8 * clip and coords[2][0, 0, 2] == 8 * clip + 4 and 1 <= target_frame <= 3
    assert batch["t"][example] == target_frame / 4
  # Every window position is possible, including the last ones (20 - 16 = 4 rows, 24 - 16 = 8 columns).
  assert {y for y, _ in windows} == set(range(5)) and {x for _, x in windows} == set(range(9))


def test_flips_flip_all_frames():
  clips = _coordinate_clips()
  config = _plain(input_pipeline.default_data_config(), random_flip_h=True, random_flip_v=True)
  batch = input_pipeline.make_train_dataset(clips, config, 32, seed=2)[0]
  states = set()
  for example in range(32):
    coords = [np.rint(batch[k][example] * 255).astype(int) for k in ("frame0", "target", "frame1")]
    flip_v, flip_h = coords[0][0, 0, 0] == 19, coords[0][0, 0, 1] == 23
    states.add((flip_v, flip_h))
    ys, xs = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
    for image in coords:
      np.testing.assert_array_equal(image[..., 0], ys[::-1] if flip_v else ys)
      np.testing.assert_array_equal(image[..., 1], xs[:, ::-1] if flip_h else xs)
  assert states == set(itertools.product([False, True], repeat=2))


def test_temporal_swap_swaps_frames_and_maps_t():
  clips = _coordinate_clips()
  config = _plain(input_pipeline.default_data_config(), temporal_swap=True, t_sampling="uniform")
  batch = input_pipeline.make_train_dataset(clips, config, 32, seed=4)[0]
  swapped = []
  for example in range(32):
    k0, kt, k1 = (int(np.rint(batch[k][example, 0, 0, 2] * 255)) % 8 for k in ("frame0", "target", "frame1"))
    assert (k0, k1) in [(0, 4), (4, 0)]
    swapped.append(k0 == 4)
    t = batch["t"][example]
    assert t == pytest.approx(1 - kt / 4 if k0 == 4 else kt / 4)
  assert any(swapped) and not all(swapped)


def test_hosts_split_the_global_batch():
  clips = _coordinate_clips(count=5)
  config = _plain(input_pipeline.default_data_config(), crop_size=8, random_flip_h=True)
  whole = _take(input_pipeline.make_train_dataset(clips, config, 4, seed=9), 3)
  parts = [_take(input_pipeline.make_train_dataset(clips, config, 4, seed=9, process_index=p, process_count=2), 3)
           for p in range(2)]
  for step in range(3):
    for key in whole[step]:
      np.testing.assert_array_equal(np.concatenate([parts[0][step][key], parts[1][step][key]]), whole[step][key])


def test_t_validation():
  clips = _coordinate_clips()
  with pytest.raises(ValueError, match="t=0.3"):
    input_pipeline.make_train_dataset(clips, _plain(input_pipeline.default_data_config(), t=0.3), 2, seed=0)
  with pytest.raises(ValueError, match="t_sampling"):
    input_pipeline.make_train_dataset(clips, _plain(input_pipeline.default_data_config(), t_sampling="x"), 2, 0)


def test_eval_batches(builder, config):
  source = builder.as_data_source(split="validation")
  batches = input_pipeline.create_eval_batches(config, 2)
  assert len(batches) == 2
  first, second = list(batches), list(batches)
  assert [b["frame0"].shape[0] for b in first] == [2, 1]
  for a, b in zip(first, second):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  for i, (batch, row) in enumerate([(0, 0), (0, 1), (1, 0)]):
    frames = source[i]["frames"].astype(np.float32) / 255  # Full 24x24 frames, in order, no augmentation.
    np.testing.assert_array_equal(first[batch]["frame0"][row], frames[0])
    np.testing.assert_array_equal(first[batch]["target"][row], frames[2])
    np.testing.assert_array_equal(first[batch]["frame1"][row], frames[4])
    assert first[batch]["t"][row] == 0.5
  assert len(input_pipeline.create_eval_batches(config, 2, split="train")) == 3
  # With no frame at t, evaluation falls back to the middle frame: index 2 of times 0, 1/3, 2/3, 1.
  clips = _coordinate_clips(count=3, num_frames=4)
  batch = input_pipeline.make_eval_dataset(clips, _plain(input_pipeline.default_data_config(), t=0.5), 3)[0]
  np.testing.assert_allclose(batch["t"], 2 / 3)
  np.testing.assert_array_equal(np.rint(batch["target"][:, 0, 0, 2] * 255), [2, 10, 18])
