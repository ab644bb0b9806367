"""Tests of the real-dataset TFDS builders on tiny fakes in the official layouts (tests/fake_datasets.py).

Oracles: the arrays the fakes wrote (PNG round trip), Pillow's decode of the written JPGs, NumPy means of the
frames the papers' synthesis names (BIN's indices, written out by hand below), naive per-pixel Bayer packing, and
crop windows computed by hand from zoom-learn-zoom's crop_fov formula.
"""
from __future__ import annotations

import re

import fake_datasets as fake
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxvfi.datasets import layout
from jaxvfi.datasets import adobe240
from jaxvfi.datasets import gopro
from jaxvfi.datasets import middlebury
from jaxvfi.datasets import sr_raw
from jaxvfi.datasets import ucf101
from jaxvfi.datasets import vimeo90k


def build(builder_cls, manual_dir, tmp_path, config=None):
  builder = builder_cls(data_dir=tmp_path / "data", file_format="array_record", config=config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def read(builder, split):
  source = builder.as_data_source(split)
  return [source[i] for i in range(len(source))]


def raises(error, path):
  """pytest.raises for `error` whose message names `path`."""
  return pytest.raises(error, match=re.escape(str(path)))


# ---------------------------------------------------------------------------------------------------------- Vimeo


@pytest.mark.parametrize("inside", [False, True], ids=["parent_dir", "vimeo_triplet_dir"])
def test_vimeo_triplet(tmp_path, inside):
  lists = {"train": ["00001/0001", "00002/0003"], "test": ["00001/0002"]}
  frames = fake.make_vimeo(tmp_path / "manual", "triplet", lists, unlisted=("00003/0001",))
  manual = tmp_path / "manual" / ("vimeo_triplet" if inside else "")
  builder = build(vimeo90k.Vimeo90kTriplet, manual, tmp_path)
  assert builder.name == "vimeo90k_triplet"
  for split, ids in lists.items():
    examples = read(builder, split)
    assert [e["id"].decode() for e in examples] == ids  # List order; the unlisted sequence is not read.
    for example in examples:
      np.testing.assert_array_equal(example["frames"], frames[example["id"].decode()])
      np.testing.assert_array_equal(example["times"], np.array([0.0, 0.5, 1.0], np.float32))


def test_vimeo_septuplet(tmp_path):
  lists = {"train": ["00005/0007"], "test": ["00001/0001", "00010/0100"]}
  frames = fake.make_vimeo(tmp_path / "manual", "septuplet", lists)
  builder = build(vimeo90k.Vimeo90kSeptuplet, tmp_path / "manual", tmp_path)
  assert [len(builder.as_data_source(s)) for s in ("train", "test")] == [1, 2]
  example = read(builder, "test")[1]
  assert example["id"] == b"00010/0100"
  np.testing.assert_array_equal(example["frames"], frames["00010/0100"])
  np.testing.assert_allclose(example["times"], [0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1], rtol=1e-6)


def test_vimeo_missing_list_names_the_expected_path(tmp_path):
  fake.make_vimeo(tmp_path / "manual", "triplet", {"train": ["00001/0001"]})
  with raises(FileNotFoundError, tmp_path / "manual" / "vimeo_triplet" / "tri_testlist.txt"):
    build(vimeo90k.Vimeo90kTriplet, tmp_path / "manual", tmp_path)


def test_vimeo_empty_list_file_is_one_clear_error(tmp_path):
  fake.make_vimeo(tmp_path / "raw", "triplet", {"train": [], "test": ["00001/0001"]})
  with raises(ValueError, tmp_path / "raw" / "vimeo_triplet" / "tri_trainlist.txt"):
    build(vimeo90k.Vimeo90kTriplet, tmp_path / "raw", tmp_path)


def test_vimeo_wrong_manual_dir_names_the_expected_path(tmp_path):
  (tmp_path / "manual" / "something_else").mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match=r"^vimeo90k_triplet: expected .*manual/vimeo_triplet/tri_trainlist"):
    build(vimeo90k.Vimeo90kTriplet, tmp_path / "manual", tmp_path)


def test_vimeo_missing_frame_fails_before_writing(tmp_path):
  fake.make_vimeo(tmp_path / "manual", "triplet", {"train": ["00001/0001"], "test": ["00001/0002"]})
  missing = tmp_path / "manual" / "vimeo_triplet" / "sequences" / "00001" / "0002" / "im2.png"
  missing.unlink()
  with raises(FileNotFoundError, missing):
    build(vimeo90k.Vimeo90kTriplet, tmp_path / "manual", tmp_path)
  assert not list((tmp_path / "data").rglob("*.array_record*"))


def test_vimeo_mismatched_frame_sizes_name_both_files(tmp_path):
  fake.make_vimeo(tmp_path / "manual", "triplet", {"train": ["00001/0001"], "test": ["00001/0002"]})
  seq = tmp_path / "manual" / "vimeo_triplet" / "sequences" / "00001" / "0002"
  fake.write_png(seq / "im3.png", np.zeros((5, 10, 3), np.uint8))
  with pytest.raises(ValueError, match=re.escape(str(seq / "im1.png")) + ".*" + re.escape(str(seq / "im3.png"))):
    build(vimeo90k.Vimeo90kTriplet, tmp_path / "manual", tmp_path)


# ----------------------------------------------------------------------------------------------- UCF, Middlebury


def test_ucf101_triplet(tmp_path):
  frames = fake.make_ucf(tmp_path / "manual", ["10", "1", "2"])
  examples = read(build(ucf101.Ucf101Triplet, tmp_path / "manual", tmp_path), "test")
  assert [e["id"] for e in examples] == [b"1", b"2", b"10"]  # Natural order.
  for example in examples:
    np.testing.assert_array_equal(example["frames"], frames[example["id"].decode()])
    np.testing.assert_array_equal(example["times"], [0.0, 0.5, 1.0])


def test_ucf101_missing_ground_truth(tmp_path):
  fake.make_ucf(tmp_path / "manual", ["1", "2"])
  missing = tmp_path / "manual" / "ucf101_interp_ours" / "2" / "frame_01_gt.png"
  missing.unlink()
  with raises(FileNotFoundError, missing):
    build(ucf101.Ucf101Triplet, tmp_path / "manual", tmp_path)


def test_middlebury_only_sequences_with_ground_truth_and_gray_to_rgb(tmp_path):
  frames = fake.make_middlebury(tmp_path / "manual", ["Walking", "Beanbags"], ["Army"])
  gray = np.arange(60, dtype=np.uint8).reshape(6, 10)
  Image.fromarray(gray).save(tmp_path / "manual" / "other-data" / "Walking" / "frame11.png")
  examples = read(build(middlebury.MiddleburyOther, tmp_path / "manual", tmp_path), "test")
  assert [e["id"] for e in examples] == [b"Beanbags", b"Walking"]
  np.testing.assert_array_equal(examples[0]["frames"], frames["Beanbags"])
  np.testing.assert_array_equal(examples[1]["frames"][:2], frames["Walking"][:2])
  np.testing.assert_array_equal(examples[1]["frames"][2], np.repeat(gray[..., None], 3, axis=-1))
  np.testing.assert_array_equal(examples[1]["times"], [0.0, 0.5, 1.0])


def test_middlebury_ground_truth_without_input_frames(tmp_path):
  fake.make_middlebury(tmp_path / "manual", ["Walking"], [])
  fake.write_png(tmp_path / "manual" / "other-gt-interp" / "Urban2" / "frame10i11.png", np.zeros((6, 10, 3), np.uint8))
  with raises(FileNotFoundError, tmp_path / "manual" / "other-data" / "Urban2" / "frame10.png"):
    build(middlebury.MiddleburyOther, tmp_path / "manual", tmp_path)


def test_read_rgb_modes(tmp_path):
  rgba = np.random.default_rng(3).integers(0, 256, size=(4, 5, 4), dtype=np.uint8)
  Image.fromarray(rgba).save(tmp_path / "rgba.png")
  np.testing.assert_array_equal(layout.read_rgb("t", tmp_path / "rgba.png"), rgba[..., :3])  # Alpha dropped.
  Image.fromarray(rgba[..., :2]).save(tmp_path / "la.png")
  np.testing.assert_array_equal(layout.read_rgb("t", tmp_path / "la.png"), np.repeat(rgba[..., :1], 3, axis=-1))
  palette = Image.new("P", (2, 2))
  palette.putdata([0, 1, 1, 0])
  palette.putpalette([10, 20, 30, 200, 100, 50])
  palette.save(tmp_path / "p.png")
  np.testing.assert_array_equal(layout.read_rgb("t", tmp_path / "p.png"),
                                [[[10, 20, 30], [200, 100, 50]], [[200, 100, 50], [10, 20, 30]]])
  Image.fromarray(np.full((4, 5), 40000, np.uint16)).save(tmp_path / "deep.png")
  with pytest.raises(ValueError, match=r"^t: .*deep\.png is a I"):
    layout.read_rgb("t", tmp_path / "deep.png")


# ------------------------------------------------------------------------------------------ Adobe240 and GOPRO


def expected_blur(frames, centre):
  """NumPy oracle: the float mean of sharp frames centre-5 .. centre+5, truncated (BIN's astype("uint8"))."""
  return np.floor(frames[centre - 5:centre + 6].astype(np.float64).mean(axis=0)).astype(np.uint8)


def test_blurry_centres_follow_bin():
  assert adobe240.blurry_centres(40) == [16, 24, 32]  # 40 // 8 - 2 = 3 centres, every 8th frame from index 16.
  assert adobe240.blurry_centres(47) == [16, 24, 32]
  assert adobe240.blurry_centres(48) == [16, 24, 32, 40]  # Its window 35..45 still fits in 48 frames.
  assert adobe240.blurry_centres(23) == []


def test_synthesize_blur_truncates_like_bin():
  frames = np.zeros((11, 1, 1, 3), np.uint8)
  frames[:6] = 1  # Mean 6/11 = 0.545: BIN's float mean then astype("uint8") gives 0, not round()'s 1.
  frames[:, 0, 0, 1] = 255
  frames[:, 0, 0, 2] = np.arange(250, 261) % 256 * (np.arange(11) < 6)  # 250..255 then zeros: sum 1515 -> 137.
  np.testing.assert_array_equal(adobe240.synthesize_blur(frames), [[[0, 255, 137]]])


def check_blur_example(example, sharp_frames, centres, clip, stem):
  assert example["id"].decode() == f"{clip}/{stem}"
  np.testing.assert_array_equal(example["blurry"], np.stack([expected_blur(sharp_frames, c) for c in centres]))
  np.testing.assert_array_equal(example["blurry_times"], np.arange(len(centres)))
  sharp_indices = list(range(centres[0], centres[-1] + 1, 4))  # Key centres and half-way (4 frames at 240 fps).
  np.testing.assert_array_equal(example["sharp"], sharp_frames[sharp_indices])
  np.testing.assert_array_equal(example["sharp_times"], np.arange(len(sharp_indices)) / 2)


def test_adobe240_split_folders_pairs(tmp_path):
  rng = np.random.default_rng(4)
  train = fake.make_clip(tmp_path / "manual" / "train" / "IMG_0001", 40, rng)  # Centres 16, 24, 32: 2 pairs.
  test = fake.make_clip(tmp_path / "manual" / "test" / "GOPR9635", 39, rng)  # Centres 16, 24: 1 pair.
  builder = build(adobe240.Adobe240, tmp_path / "manual", tmp_path)
  assert builder.builder_config.name == "blurry2"
  train_examples, test_examples = read(builder, "train"), read(builder, "test")
  assert len(train_examples) == 2 and len(test_examples) == 1
  check_blur_example(train_examples[0], train, [16, 24], "IMG_0001", "00017")  # 0-based 16 is file 00017.png.
  check_blur_example(train_examples[1], train, [24, 32], "IMG_0001", "00025")
  check_blur_example(test_examples[0], test, [16, 24], "GOPR9635", "00017")
  assert train_examples[0]["sharp"].shape == (3, 4, 6, 3)


def test_adobe240_list_files_three_blurry(tmp_path):
  rng = np.random.default_rng(5)
  manual = tmp_path / "manual"
  clips = {name: fake.make_clip(manual / name, 48, rng) for name in ("IMG_0004a", "720p_240fps_2", "IMG_0183")}
  (manual / "train_list.txt").write_text("720p_240fps_2.mov\n")  # Super-SloMo's lists name the videos.
  (manual / "test.txt").write_text("IMG_0004a\n\n")  # IMG_0183 is in neither list: not read.
  builder = build(adobe240.Adobe240, manual, tmp_path, config="blurry3")
  train_examples, test_examples = read(builder, "train"), read(builder, "test")
  assert len(train_examples) == 2 and len(test_examples) == 2  # Centres 16, 24, 32, 40: two windows of three.
  check_blur_example(train_examples[1], clips["720p_240fps_2"], [24, 32, 40], "720p_240fps_2", "00025")
  check_blur_example(test_examples[0], clips["IMG_0004a"], [16, 24, 32], "IMG_0004a", "00017")
  assert test_examples[0]["sharp"].shape[0] == 5


def test_adobe240_no_split_given(tmp_path):
  fake.make_clip(tmp_path / "manual" / "IMG_0001", 40, np.random.default_rng(6))
  with raises(FileNotFoundError, tmp_path / "manual" / "train_list.txt"):
    build(adobe240.Adobe240, tmp_path / "manual", tmp_path)


def test_adobe240_listed_clip_missing(tmp_path):
  fake.make_clip(tmp_path / "manual" / "IMG_0001", 40, np.random.default_rng(7))
  (tmp_path / "manual" / "train_list.txt").write_text("IMG_0001.mov\n")
  (tmp_path / "manual" / "test_list.txt").write_text("IMG_0183.MOV\n")
  with raises(FileNotFoundError, tmp_path / "manual" / "IMG_0183"):
    build(adobe240.Adobe240, tmp_path / "manual", tmp_path)


def test_adobe240_mismatched_frame_size(tmp_path):
  rng = np.random.default_rng(8)
  fake.make_clip(tmp_path / "manual" / "train" / "a", 40, rng)
  clip = tmp_path / "manual" / "test" / "b"
  fake.make_clip(clip, 40, rng)
  fake.write_png(clip / "00020.png", np.zeros((5, 6, 3), np.uint8))
  with pytest.raises(ValueError, match=re.escape(str(clip / "00012.png")) + ".*" + re.escape(str(clip / "00020.png"))):
    build(adobe240.Adobe240, tmp_path / "manual", tmp_path)


def test_gopro_large_all(tmp_path):
  rng = np.random.default_rng(9)
  root = tmp_path / "manual" / "GOPRO_Large_all"
  train = fake.make_clip(root / "train" / "GOPR0372_07_00", 32, rng, digits=6)  # Centres 16, 24: one pair.
  test = fake.make_clip(root / "test" / "GOPR0384_11_00", 40, rng, digits=6)
  builder = build(gopro.Gopro, tmp_path / "manual", tmp_path)
  assert builder.name == "gopro"
  train_examples, test_examples = read(builder, "train"), read(builder, "test")
  assert len(train_examples) == 1 and len(test_examples) == 2
  check_blur_example(train_examples[0], train, [16, 24], "GOPR0372_07_00", "000017")
  check_blur_example(test_examples[1], test, [24, 32], "GOPR0384_11_00", "000025")


def test_gopro_large_pair_layout_synthesises_from_sharp(tmp_path):
  # The layout: GOPRO_Large/<split>/<seq>/sharp|blur/*.png, synthesis from sharp/ (blur/ ignored).
  rng = np.random.default_rng(10)
  sharp = {}
  for split, n in (("train", 32), ("test", 40)):
    seq = tmp_path / "manual" / "GOPRO_Large" / split / "GOPR0372_07_00"
    sharp[split] = fake.make_clip(seq / "sharp", n, rng, digits=6)
    fake.make_clip(seq / "blur", n, rng, digits=6)
  builder = build(gopro.Gopro, tmp_path / "manual", tmp_path)
  train_examples, test_examples = read(builder, "train"), read(builder, "test")
  assert len(train_examples) == 1 and len(test_examples) == 2
  check_blur_example(train_examples[0], sharp["train"], [16, 24], "GOPR0372_07_00", "000017")
  check_blur_example(test_examples[1], sharp["test"], [24, 32], "GOPR0372_07_00", "000025")


def test_gopro_mixed_layouts_are_refused(tmp_path):
  rng = np.random.default_rng(11)
  for split in ("train", "test"):
    fake.make_clip(tmp_path / "manual" / "GOPRO_Large" / split / "A" / "sharp", 3, rng, digits=6)
    fake.make_clip(tmp_path / "manual" / "GOPRO_Large" / split / "B", 3, rng, digits=6)
  with pytest.raises(ValueError, match="mixes"):
    build(gopro.Gopro, tmp_path / "manual", tmp_path)


# ------------------------------------------------------------------------------------------------------ SR-RAW

_FOCALS = {1: 240, 2: 120, 3: 80, 4: 70, 5: 60, 6: 30, 7: 20}  # Pairs (1, 5) and (2, 6) are exactly 4x.
_SIZE = (64, 96)  # Sensor (and JPG) size; packed RAW is 32 x 48.


def naive_pack(mosaic, cfa):
  """Per-pixel oracle: channel 0 R, 1 the green on red's rows, 2 B, 3 the green on blue's rows (cfa: 0=R 1=G 2=B)."""
  cell = np.array(cfa).reshape(2, 2)
  red_row = int(np.argwhere(cell == 0)[0][0])
  packed = np.zeros((mosaic.shape[0] // 2, mosaic.shape[1] // 2, 4), np.uint16)
  for y in range(packed.shape[0] * 2):
    for x in range(packed.shape[1] * 2):
      colour = cell[y % 2, x % 2]
      channel = {0: 0, 2: 2}.get(colour, 1 if y % 2 == red_row else 3)
      packed[y // 2, x // 2, channel] = mosaic[y, x]
  return packed


def test_pack_bayer_matches_naive_loop():
  mosaic = np.random.default_rng(11).integers(0, 2**14, size=(7, 9), dtype=np.uint16)  # Odd sizes: last row/col off.
  for cfa, pattern in [((0, 1, 1, 2), [[0, 1], [3, 2]]), ((2, 1, 1, 0), [[2, 3], [1, 0]])]:  # LibRaw's patterns.
    np.testing.assert_array_equal(sr_raw.pack_bayer(mosaic, np.array(pattern)), naive_pack(mosaic, cfa))


def test_sr_raw_pairs(tmp_path):
  rng = np.random.default_rng(12)
  manual = tmp_path / "manual"
  seq1 = fake.make_srraw_sequence(manual / "train" / "00001", _FOCALS, _SIZE, rng)
  fake.make_srraw_sequence(manual / "train" / "00002", {k: _FOCALS[k] for k in range(1, 7)}, _SIZE, rng)  # 6 shots.
  fake.make_srraw_sequence(manual / "train" / "00267", _FOCALS, _SIZE, rng)  # SDAN excludes target 00267/00003.
  bggr = fake.make_srraw_sequence(manual / "test" / "00009", _FOCALS, _SIZE, rng, cfa=(2, 1, 1, 0))
  builder = build(sr_raw.SrRaw, manual, tmp_path)
  train, test = read(builder, "train"), read(builder, "test")
  assert [e["id"] for e in train] == [b"00001/00001-00005", b"00001/00002-00006", b"00001/00003-00007",
                                      b"00002/00001-00005", b"00002/00002-00006",
                                      b"00267/00001-00005", b"00267/00002-00006"]
  assert [e["id"] for e in test] == [b"00009/00002-00006"]  # Test uses the 35 mm-style input 00006 only.

  # Pair (1, 5): input FOV 60/240 = 1/4. Packed 32x48 -> rows ceil(12)..floor(20), cols ceil(18)..floor(30);
  # JPG 64x96 -> rows 24..40, cols 36..60 (= 2x the RAW grid, no resize); target FOV 1 -> whole 64x96 (= 8x).
  pair = train[0]
  np.testing.assert_array_equal(pair["lr_raw"], naive_pack(seq1[5]["mosaic"], (0, 1, 1, 2))[12:20, 18:30])
  np.testing.assert_array_equal(pair["lr_rgb"], seq1[5]["jpg"][24:40, 36:60])
  np.testing.assert_array_equal(pair["hr_rgb"], seq1[1]["jpg"])
  np.testing.assert_array_equal(pair["black_level"], [512] * 4)
  assert pair["white_level"] == 16383
  assert (pair["lr_focal"], pair["hr_focal"], pair["ref_focal"]) == (60, 240, 240)

  # Pair (2, 6): input FOV 30/240 = 1/8 -> packed rows 14..18, cols 21..27; JPG rows 28..36, cols 42..54;
  # target FOV 120/240 = 1/2 -> rows 16..48, cols 24..72.
  pair = train[1]
  np.testing.assert_array_equal(pair["lr_raw"], naive_pack(seq1[6]["mosaic"], (0, 1, 1, 2))[14:18, 21:27])
  np.testing.assert_array_equal(pair["lr_rgb"], seq1[6]["jpg"][28:36, 42:54])
  np.testing.assert_array_equal(pair["hr_rgb"], seq1[2]["jpg"][16:48, 24:72])

  # Pair (3, 7): FOV 20/240 -> packed rows 15..17, cols 22..26 (2x4); the target's 20x32 crop is resized to 16x32.
  pair = train[2]
  np.testing.assert_array_equal(pair["lr_raw"], naive_pack(seq1[7]["mosaic"], (0, 1, 1, 2))[15:17, 22:26])
  assert pair["lr_rgb"].shape == (4, 8, 3) and pair["hr_rgb"].shape == (16, 32, 3)

  # A BGGR sensor still packs to R, G (red's rows), B, G (blue's rows).
  np.testing.assert_array_equal(test[0]["lr_raw"], naive_pack(bggr[6]["mosaic"], (2, 1, 1, 0))[14:18, 21:27])


@pytest.mark.parametrize("damage", ["html", "truncated"])
def test_sr_raw_unreadable_raw_file_is_named(tmp_path, damage):
  """One bad .ARW among good ones (a web page saved under that name, or a copy cut short): one ValueError naming it
  (LibRaw's own error names no file)."""
  seq = tmp_path / "manual" / "test" / "00001"
  fake.make_srraw_sequence(seq, {k: _FOCALS[k] for k in (1, 2, 6)}, _SIZE, np.random.default_rng(15))
  bad = seq / "00006.ARW"
  if damage == "html":
    bad.write_text("<html><body>403 Forbidden</body></html>")
  else:
    bad.write_bytes(bad.read_bytes()[:200])
  with pytest.raises(ValueError, match=re.escape(f"cannot read the RAW file {bad}")):
    build(sr_raw.SrRaw, tmp_path / "manual", tmp_path)


def test_sr_raw_missing_reference_shot(tmp_path):
  seq = tmp_path / "manual" / "test" / "00001"
  fake.make_srraw_sequence(seq, {k: _FOCALS[k] for k in (2, 6)}, _SIZE, np.random.default_rng(13))
  with raises(FileNotFoundError, seq / "00001.JPG"):
    build(sr_raw.SrRaw, tmp_path / "manual", tmp_path)


def test_sr_raw_jpg_without_focal_length(tmp_path):
  seq = tmp_path / "manual" / "test" / "00001"
  rng = np.random.default_rng(14)
  fake.make_srraw_sequence(seq, {k: _FOCALS[k] for k in (1, 2, 6)}, _SIZE, rng)
  fake.write_jpg(seq / "00006.JPG", np.zeros((*_SIZE, 3), np.uint8), focal=None)
  with pytest.raises(ValueError, match=re.escape(str(seq / "00006.JPG")) + " has no EXIF FocalLength"):
    build(sr_raw.SrRaw, tmp_path / "manual", tmp_path)


def test_sr_raw_no_split(tmp_path):
  (tmp_path / "manual" / "SR-RAW").mkdir(parents=True)
  with raises(FileNotFoundError, tmp_path / "manual" / "train"):
    build(sr_raw.SrRaw, tmp_path / "manual", tmp_path)
