"""Tests of the TFDS synthetic builder and the grain pipeline: round trip, augmentations, exact resume, and the
papers' augmentation presets on tiny fakes of Vimeo-90K, Adobe240 and SR-RAW (tests/fake_datasets.py).

Oracles: the pixels the fakes wrote, located again in the batches by exhaustive search over windows and flips;
jax.image.resize for DSFN's bicubic inputs; the RAW normalisation formula; frames that hold their coordinates."""
from __future__ import annotations

import itertools

import fake_datasets as fake
import jax
import numpy as np
import pytest

from jaxvfi import data_config
from jaxvfi import input_pipeline
from jaxvfi.datasets import registry
from jaxvfi.datasets import render
from jaxvfi.datasets import synthetic
from jaxvfi.datasets import video_clips

NUM_FRAMES = 5  # times 0, 0.25, 0.5, 0.75, 1


@pytest.fixture(scope="module")
def config(tmp_path_factory):
  config = data_config.default_data_config()
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


def test_builder_is_prepared_once_per_process(builder, config):
  """num_examples, the train iterator and every eval share one prepared builder (no second download_and_prepare)."""
  again = config.copy_and_resolve_references()
  assert input_pipeline.get_builder(again) is builder
  assert input_pipeline.num_examples(again, "train") == 6


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
  config = _plain(data_config.default_data_config())
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
  config = _plain(data_config.default_data_config(), crop_size=16, t_sampling="uniform")
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
  config = _plain(data_config.default_data_config(), random_flip_h=True, random_flip_v=True)
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


def test_channel_reverse_reverses_all_frames_of_an_example_and_leaves_the_other_draws():
  clips = _coordinate_clips()
  config = _plain(data_config.default_data_config(), crop_size=8, random_flip_h=True, temporal_swap=True)
  before = input_pipeline.make_train_dataset(clips, config, 32, seed=4)[0]
  config.random_channel_reverse = True
  after = input_pipeline.make_train_dataset(clips, config, 32, seed=4)[0]
  reversed_ = []
  for example in range(32):
    flipped = not np.array_equal(after["frame0"][example], before["frame0"][example])
    reversed_.append(flipped)
    for key in ("frame0", "target", "frame1"):  # Same crop, flip and swap; channels reversed or not, all alike.
      np.testing.assert_array_equal(after[key][example],
                                    before[key][example][..., ::-1] if flipped else before[key][example])
  np.testing.assert_array_equal(after["t"], before["t"])
  assert 4 < sum(reversed_) < 28  # Each example's coin: about half of 32.


def test_random_downscale_shrinks_all_frames_alike_before_the_crop():
  clips = _coordinate_clips(size=(40, 48))
  config = _plain(data_config.default_data_config(), crop_size=8, random_downscale=0.5)
  batch = input_pipeline.make_train_dataset(clips, config, 32, seed=5)[0]
  assert batch["frame0"].shape == (32, 8, 8, 3)
  np.testing.assert_array_equal(batch["frame0"], input_pipeline.make_train_dataset(clips, config, 32, seed=5)[0][
      "frame0"])
  spacings = []
  for example in range(32):
    coords = [np.rint(batch[k][example] * 255).astype(int) for k in ("frame0", "target", "frame1")]
    for image in coords[1:]:  # One resize and one window for all three frames.
      np.testing.assert_array_equal(image[..., :2], coords[0][..., :2])
    rows = coords[0][:, 0, 0]  # The source row of each output row: 1 / scale apart, scale in [0.5, 1].
    spacings.append((rows[-1] - rows[0]) / 7)
  assert min(spacings) >= 0.85 and max(spacings) <= 2.15, spacings
  assert max(spacings) > 1.5 and min(spacings) < 1.15, spacings  # Both ends of the range are drawn.
  with pytest.raises(ValueError, match="random_downscale needs a data.crop_size"):
    input_pipeline.make_train_dataset(clips, _plain(config, crop_size=None), 4, seed=0)[0]
  with pytest.raises(ValueError, match="random_downscale must be in"):
    input_pipeline.make_train_dataset(clips, _plain(config, random_downscale=0.0), 4, seed=0)[0]


def test_temporal_swap_swaps_frames_and_maps_t():
  clips = _coordinate_clips()
  config = _plain(data_config.default_data_config(), temporal_swap=True, t_sampling="uniform")
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
  config = _plain(data_config.default_data_config(), crop_size=8, random_flip_h=True)
  whole = _take(input_pipeline.make_train_dataset(clips, config, 4, seed=9), 3)
  parts = [_take(input_pipeline.make_train_dataset(clips, config, 4, seed=9, process_index=p, process_count=2), 3)
           for p in range(2)]
  for step in range(3):
    for key in whole[step]:
      np.testing.assert_array_equal(np.concatenate([parts[0][step][key], parts[1][step][key]]), whole[step][key])


def test_t_validation():
  clips = _coordinate_clips()
  with pytest.raises(ValueError, match="t=0.3"):
    input_pipeline.make_train_dataset(clips, _plain(data_config.default_data_config(), t=0.3), 2, seed=0)
  with pytest.raises(ValueError, match="t_sampling"):
    input_pipeline.make_train_dataset(clips, _plain(data_config.default_data_config(), t_sampling="x"), 2, 0)


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
  batch = input_pipeline.make_eval_dataset(clips, _plain(data_config.default_data_config(), t=0.5), 3)[0]
  np.testing.assert_allclose(batch["t"], 2 / 3)
  np.testing.assert_array_equal(np.rint(batch["target"][:, 0, 0, 2] * 255), [2, 10, 18])


# ------------------------------------------------------------------------------------------ augmentation presets




def _preset_config(tfds_dir, name, manual, augmentation, **args):
  config = data_config.default_data_config()
  config.update(dict(tfds_dir=str(tfds_dir), name=name, dir=str(manual), train_split="train", eval_split="test",
                     augmentation=augmentation, augmentation_args=args))
  return config


@pytest.fixture(scope="module")
def fake_vimeo(tmp_path_factory):
  root = tmp_path_factory.mktemp("vimeo")
  lists = {"train": [f"00001/{i:04d}" for i in range(1, 6)], "test": ["00002/0001", "00002/0002"]}
  with fake.frame_size(20, 28):
    frames = fake.make_vimeo(root / "manual", "triplet", lists)
  return root, frames


@pytest.fixture(scope="module")
def fake_adobe(tmp_path_factory):
  root = tmp_path_factory.mktemp("adobe")
  rng = np.random.default_rng(20)
  with fake.frame_size(24, 32):
    for split, clip in [("train", "IMG_0001"), ("train", "IMG_0002"), ("test", "IMG_0004a")]:
      fake.make_clip(root / "manual" / split / clip, 40, rng)  # Blurry centres 16, 24, 32: two pairs per clip.
  return root


@pytest.fixture(scope="module")
def fake_srraw(tmp_path_factory):
  root = tmp_path_factory.mktemp("srraw")
  rng = np.random.default_rng(21)
  focals = {k: 240.0 for k in range(1, 8)}  # One field of view: the packed RAW is the whole 24x32 grid.
  fake.make_srraw_sequence(root / "manual" / "train" / "00001", focals, (48, 64), rng)  # Pairs (1,5) (2,6) (3,7).
  fake.make_srraw_sequence(root / "manual" / "test" / "00002", focals, (48, 64), rng)  # Pair (2, 6).
  return root


def _assert_exact_resume(config, batch_size=2, steps=4, start=2):
  fresh = input_pipeline.create_train_iterator(config, batch_size, seed=7)
  batches = [next(fresh) for _ in range(steps)]
  resumed = input_pipeline.create_train_iterator(config, batch_size, seed=7, start_step=start)
  for step in range(start, steps):
    batch = next(resumed)
    assert set(batch) == set(batches[step])
    for key in batch:
      np.testing.assert_array_equal(batch[key], batches[step][key])
  first_key = sorted(batches[0])[0]
  assert not np.array_equal(batches[0][first_key], batches[1][first_key])
  return batches


def _flips(image, flip_h, flip_v):
  image = image[..., :, ::-1, :] if flip_h else image
  return image[..., ::-1, :, :] if flip_v else image


def _locate(crop, full, step=1):
  """(y, x, flip_h, flip_v) with _flips(full[y:y + h, x:x + w]) == crop, searched over positions y, x in
  multiples of `step`; the crops here are of random pixels, so one match means found."""
  h, w = crop.shape[:2]
  hits = [(y, x, fh, fv) for y in range(0, full.shape[0] - h + 1, step) for x in range(0, full.shape[1] - w + 1, step)
          for fh in (False, True) for fv in (False, True)
          if np.array_equal(_flips(full[y:y + h, x:x + w], fh, fv), crop)]
  assert len(hits) == 1, hits
  return hits[0]


def test_preset_parameters_and_errors():
  config = data_config.default_data_config()
  assert data_config.augmentation_params(config) == dict(crop_size=64, random_downscale=1.0, random_flip_h=True,
                                                         random_flip_v=True, temporal_swap=True,
                                                         random_channel_reverse=False, t_sampling="fixed", t=0.5)
  config.augmentation = "sepconv"
  assert data_config.augmentation_params(config)["crop_size"] == 128  # The preset's, not the field's 64.
  config.augmentation_args = dict(crop_size=32)
  assert data_config.augmentation_params(config)["crop_size"] == 32
  config.augmentation_args = dict(noise_std=0.1)
  with pytest.raises(ValueError, match="noise_std"):
    data_config.augmentation_params(config)
  config.augmentation = "mixup"
  with pytest.raises(ValueError, match="mixup"):
    data_config.augmentation_params(config)


def test_presets_transforms_and_feature_kinds_agree_with_the_data_config():
  assert list(input_pipeline.PRESETS) == list(data_config.PRESET_PARAMS)
  for name, preset in input_pipeline.PRESETS.items():
    assert preset.params is data_config.PRESET_PARAMS[name] and preset.features in data_config.FEATURES
  assert set().union(*(names for _, names in data_config.FEATURES.values())) <= set(registry.BUILDERS)
  defaults = video_clips.VideoClipsConfig(name="defaults")
  assert {k: getattr(defaults, k) for k in video_clips.FIELDS} == dict(data_config.default_data_config().video_clips)


def test_refin_preset_sets_the_clip_fields():
  clips = _coordinate_clips()  # 20x24, times 0 .. 1 in quarters.
  config = data_config.default_data_config()  # Fields say: crop 64, flips, swap; the preset overrides them all.
  config.augmentation = "refin"
  batch = input_pipeline.make_train_dataset(clips, config, 8, seed=0)[0]
  ys, xs = np.meshgrid(np.arange(20), np.arange(24), indexing="ij")
  np.testing.assert_array_equal(batch["t"], 0.5)
  for key, frame in [("frame0", 0), ("target", 2), ("frame1", 4)]:
    coords = np.rint(batch[key] * 255).astype(int)
    assert coords.shape == (8, 20, 24, 3)  # Whole frames, unflipped, in time order.
    np.testing.assert_array_equal(coords[..., 0], np.broadcast_to(ys, (8, 20, 24)))
    np.testing.assert_array_equal(coords[..., 1], np.broadcast_to(xs, (8, 20, 24)))
    np.testing.assert_array_equal(coords[..., 2] % 8, frame)


def test_sepconv_preset_on_vimeo(fake_vimeo, tmp_path_factory):
  root, frames = fake_vimeo
  config = _preset_config(tmp_path_factory.mktemp("tfds"), "vimeo90k_triplet", root / "manual", "sepconv",
                          crop_size=8)
  batches = _assert_exact_resume(config, batch_size=5)
  states = set()
  for batch in batches:
    assert batch["frame0"].shape == (5, 8, 8, 3) and batch["frame0"].dtype == np.float32
    np.testing.assert_array_equal(batch["t"], 0.5)  # No temporal swap in SepConv's recipe.
    for i in range(5):
      images = {k: np.rint(batch[k][i] * 255).astype(np.uint8) for k in ("frame0", "target", "frame1")}
      (ident,) = [s for s, f in frames.items() if _locate_or_none(images["frame0"], f[0])]
      y, x, fh, fv = _locate(images["frame0"], frames[ident][0])
      states.add((fh, fv))
      for key, k in [("target", 1), ("frame1", 2)]:  # One window and one flip for all three frames.
        np.testing.assert_array_equal(images[key], _flips(frames[ident][k][y:y + 8, x:x + 8], fh, fv))
  assert states == set(itertools.product([False, True], repeat=2))
  evaluation = list(input_pipeline.create_eval_batches(config, 2))
  assert len(evaluation) == 1 and evaluation[0]["target"].shape == (2, 20, 28, 3)  # Whole test frames.
  np.testing.assert_array_equal(evaluation[0]["target"][1] * 255, frames["00002/0002"][1])


def _locate_or_none(crop, full, step=1):
  h, w = crop.shape[:2]
  return any(np.array_equal(_flips(full[y:y + h, x:x + w], fh, fv), crop)
             for y in range(0, full.shape[0] - h + 1, step) for x in range(0, full.shape[1] - w + 1, step)
             for fh in (False, True) for fv in (False, True))


def test_sepconv_gan_preset_on_vimeo(fake_vimeo, tmp_path_factory):
  root, _ = fake_vimeo
  config = _preset_config(tmp_path_factory.mktemp("tfds"), "vimeo90k_triplet", root / "manual", "sepconv_gan",
                          crop_size=8, max_offset=2)  # Random heights 12 .. 20 of the 20x28 frames.
  for batch in _assert_exact_resume(config, batch_size=4):
    assert batch["frame0"].shape == batch["target"].shape == batch["frame1"].shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(batch["t"], 0.5)  # Swapped or not, the middle frame stays at 0.5.


def test_sepconv_gan_offsets_through_the_pipeline():
  clips = _coordinate_clips(count=4, size=(24, 28))
  config = data_config.default_data_config()
  config.augmentation = "sepconv_gan"
  config.augmentation_args = dict(crop_size=10, max_offset=3, random_resize=False, random_flip_h=False,
                                  random_flip_v=False, temporal_swap=False)
  batch = input_pipeline.make_train_dataset(clips, config, 64, seed=3)[0]
  offsets = set()
  for i in range(64):
    (y0, x0), (y, x), (y1, x1) = (tuple(np.rint(batch[k][i, 0, 0, :2] * 255).astype(int))
                                  for k in ("frame0", "target", "frame1"))
    assert (y - y0, x - x0) == (y1 - y, x1 - x)  # frame0 moved back and frame1 forward by the same offset.
    offsets.add((y - y0, x - x0))
  assert offsets <= set(itertools.product(range(4), repeat=2)) and len(offsets) > 8


def test_dsfn_preset_on_adobe240(fake_adobe, tmp_path_factory):
  tfds_dir = tmp_path_factory.mktemp("tfds")
  config = _preset_config(tfds_dir, "adobe240", fake_adobe / "manual", "dsfn", crop_size=16, color_jitter=0.0,
                          noise_std=0.0)
  source = input_pipeline.get_builder(config).as_data_source(split="train")
  examples = [source[i] for i in range(len(source))]
  assert len(examples) == 4
  batch = next(input_pipeline.create_train_iterator(config, 4, seed=0))
  assert set(batch) == {"blurry", "sharp", "blurry_times", "sharp_times"}
  assert batch["blurry"].shape == (4, 2, 4, 4, 3) and batch["sharp"].shape == (4, 3, 16, 16, 3)
  np.testing.assert_array_equal(batch["blurry_times"], [[0, 1]] * 4)
  np.testing.assert_array_equal(batch["sharp_times"], [[0, 0.5, 1]] * 4)
  for i in range(4):
    sharp = np.rint(batch["sharp"][i] * 255).astype(np.uint8)
    (example,) = [e for e in examples if _locate_or_none(sharp[0], e["sharp"][0])]
    y, x, fh, fv = _locate(sharp[0], example["sharp"][0])
    np.testing.assert_array_equal(sharp, _flips(example["sharp"][:, y:y + 16, x:x + 16], fh, fv))
    hr_blurry = _flips(example["blurry"][:, y:y + 16, x:x + 16], fh, fv).astype(np.float32) / 255
    expected = jax.image.resize(hr_blurry, (2, 4, 4, 3), "bicubic", antialias=True)  # DSFN's x1/4 inputs.
    np.testing.assert_allclose(batch["blurry"][i], np.asarray(expected), atol=1e-5)

  noisy = _preset_config(tfds_dir, "adobe240", fake_adobe / "manual", "dsfn", crop_size=16, color_jitter=0.0)
  noisy_batch = next(input_pipeline.create_train_iterator(noisy, 4, seed=0))
  np.testing.assert_array_equal(noisy_batch["sharp"], batch["sharp"])  # Noise on the inputs only.
  assert np.std(noisy_batch["blurry"] - batch["blurry"]) == pytest.approx(0.1, rel=0.15)

  full = _preset_config(tfds_dir, "adobe240", fake_adobe / "manual", "dsfn", crop_size=16)
  _assert_exact_resume(full)
  evaluation = list(input_pipeline.create_eval_batches(full, 2))
  assert len(evaluation) == 1
  test = input_pipeline.get_builder(full).as_data_source(split="test")[1]
  np.testing.assert_array_equal(evaluation[0]["sharp"][1] * 255, test["sharp"])  # Whole frames, no jitter.
  expected = jax.image.resize(test["blurry"].astype(np.float32) / 255, (2, 6, 8, 3), "bicubic", antialias=True)
  np.testing.assert_allclose(evaluation[0]["blurry"][1], np.asarray(expected), atol=1e-5)  # No noise.


def test_sdan_preset_on_sr_raw(fake_srraw, tmp_path_factory):
  config = _preset_config(tmp_path_factory.mktemp("tfds"), "sr_raw", fake_srraw / "manual", "sdan", crop_size=4)
  source = input_pipeline.get_builder(config).as_data_source(split="train")
  examples = [source[i] for i in range(len(source))]
  assert len(examples) == 3 and examples[0]["lr_raw"].shape == (24, 32, 4)
  batches = _assert_exact_resume(config, batch_size=3)
  for batch in batches:
    assert set(batch) == {"lr_raw", "lr_rgb", "hr_rgb"}
    assert batch["lr_raw"].shape == (3, 4, 4, 4) and batch["lr_rgb"].shape == (3, 8, 8, 3)
    assert batch["hr_rgb"].shape == (3, 32, 32, 3)
    for i in range(3):
      hr = np.rint(batch["hr_rgb"][i] * 255).astype(np.uint8)
      (example,) = [e for e in examples if _locate_or_none(hr, e["hr_rgb"], step=8)]
      y, x, fh, fv = _locate(hr, example["hr_rgb"], step=8)  # The HR window sits on the RAW grid (8 px a cell).
      y, x = y // 8, x // 8
      np.testing.assert_array_equal(np.rint(batch["lr_rgb"][i] * 255),
                                    _flips(example["lr_rgb"][2 * y:2 * y + 8, 2 * x:2 * x + 8], fh, fv))
      raw = _flips(example["lr_raw"][y:y + 4, x:x + 4], fh, fv).astype(np.float64)
      expected = np.clip((raw - example["black_level"]) / (example["white_level"] - example["black_level"]), 0, 1)
      np.testing.assert_allclose(batch["lr_raw"][i], expected, rtol=1e-6)
  (evaluation,) = list(input_pipeline.create_eval_batches(config, 1))
  assert evaluation["lr_raw"].shape == (1, 24, 32, 4) and evaluation["hr_rgb"].shape == (1, 192, 256, 3)


def test_preset_with_the_wrong_dataset_kind(fake_vimeo, fake_adobe, tmp_path_factory):
  tfds_dir = tmp_path_factory.mktemp("tfds")
  with pytest.raises(ValueError, match="'dsfn' reads datasets with the blur features .*adobe240, gopro.*vimeo90k"):
    input_pipeline.create_train_iterator(
        _preset_config(tfds_dir, "vimeo90k_triplet", fake_vimeo[0] / "manual", "dsfn"), 2, seed=0)
  with pytest.raises(ValueError, match="'sepconv' reads datasets with the clip features .*got dataset 'adobe240'"):
    input_pipeline.create_eval_batches(_preset_config(tfds_dir, "adobe240", fake_adobe / "manual", "sepconv"), 2)
  config = data_config.default_data_config()
  config.augmentation = "sdan"
  with pytest.raises(ValueError, match="'sdan' reads .*got examples with features"):
    input_pipeline.make_train_dataset(_coordinate_clips(), config, 2, seed=0)
  with pytest.raises(ValueError, match="'sdan'"):
    input_pipeline.make_eval_dataset(_coordinate_clips(), config, 2)


def test_an_empty_data_dir_is_one_clear_error(tmp_path):
  """An existing but empty manual folder: TFDS would raise an AssertionError traceback; one line naming it instead."""
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / ".DS_Store").write_text("")  # hidden files do not count
  config = data_config.default_data_config()
  config.name, config.dir, config.tfds_dir = "adobe240", str(tmp_path / "empty"), str(tmp_path / "tfds")
  config.augmentation = "dsfn"
  with pytest.raises(FileNotFoundError, match=r"data_config.dir '.*empty' is empty; dataset 'adobe240' is built from "
                                              r"the files you downloaded there: Download"):
    input_pipeline.get_builder(config)
