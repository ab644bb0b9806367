"""Tests of the classical baseline (jaxvfi/classical_flow.py) and of its row in the VFI evaluations.

Oracles: Eq. (4) of Super-SloMo worked by hand; a smooth random texture translated by a known integer shift, whose
flows are that shift and whose frame at t is the texture translated by t times it (exact for integer shifts); an
evaluation of the tiny embedded data through `report.run_evals`, which must carry the row into the eval JSON, the
log line and TensorBoard's scalars; and the same evaluation with OpenCV hidden, where the row is absent and one note
says why.
"""
from __future__ import annotations

import json

from absl import logging
from conftest import tiny_config
import numpy as np
import pytest
from scipy import ndimage

from jaxvfi import classical_flow
from jaxvfi.evaluators import report
from jaxvfi.evaluators import vfi_triplet

needs_cv2 = pytest.mark.skipif(not classical_flow.available(), reason=classical_flow.UNAVAILABLE_NOTE)


def _texture(height, width, seed=0):
  """A smooth random RGB texture in [0, 1], (height, width, 3) float32: DIS tracks it well."""
  noise = np.random.default_rng(seed).random((height, width, 3))
  tex = ndimage.gaussian_filter(noise, sigma=(2, 2, 0))
  return ((tex - tex.min()) / (tex.max() - tex.min())).astype(np.float32)


def _translated(tex, dx, dy, height, width, margin=20):
  """The window of `tex` whose content is that of the window at (margin, margin) moved by (+dx, +dy)."""
  return tex[margin - dy:margin - dy + height, margin - dx:margin - dx + width]


def test_intermediate_flows_are_eq4_of_super_slomo():
  flow01 = np.array([[[4.0, -2.0]]], np.float32)
  flow10 = np.array([[[-3.0, 1.0]]], np.float32)
  # t = 0.25: F_t->0 = -(0.75)(0.25) F01 + 0.0625 F10, F_t->1 = 0.5625 F01 - 0.1875 F10.
  flow_t0, flow_t1 = classical_flow.intermediate_flows(flow01, flow10, 0.25)
  np.testing.assert_allclose(flow_t0, [[[-0.1875 * 4 - 0.0625 * 3, 0.1875 * 2 + 0.0625 * 1]]], rtol=1e-6)
  np.testing.assert_allclose(flow_t1, [[[0.5625 * 4 + 0.1875 * 3, -0.5625 * 2 - 0.1875 * 1]]], rtol=1e-6)
  # A uniform translation d (F01 = d, F10 = -d): F_t->0 = -t d and F_t->1 = (1 - t) d for every t.
  d = np.array([[[6.0, 2.0]]], np.float32)
  for t in (0.0, 0.3, 0.5, 1.0):
    flow_t0, flow_t1 = classical_flow.intermediate_flows(d, -d, t)
    np.testing.assert_allclose(flow_t0, -t * d, atol=1e-6)
    np.testing.assert_allclose(flow_t1, (1 - t) * d, atol=1e-6)


@needs_cv2
def test_backward_warp_samples_the_source_at_x_plus_flow():
  image = np.arange(5 * 6 * 3, dtype=np.float32).reshape(5, 6, 3)
  flow = np.zeros((5, 6, 2), np.float32)
  flow[..., 0], flow[..., 1] = 1.0, 2.0  # out(x, y) = image(x + 1, y + 2)
  out = classical_flow.backward_warp(image, flow)
  np.testing.assert_array_equal(out[:3, :5], image[2:, 1:])
  np.testing.assert_array_equal(out[4, 5], image[4, 5])  # replicated border
  flow[..., 0], flow[..., 1] = 0.5, 0.0  # halfway between two columns: their mean
  np.testing.assert_allclose(classical_flow.backward_warp(image, flow)[:, :5], 0.5 * (image[:, :5] + image[:, 1:]))


@needs_cv2
@pytest.mark.parametrize("shift,t", [((4, 2), 0.5), ((-6, 0), 0.5), ((8, -4), 0.25)])
def test_translation_by_a_known_shift(shift, t):
  """Frame 1 is frame 0 translated by `shift` (x, y) pixels; the frame at t is it translated by t * shift."""
  height, width, margin = 96, 128, 20
  dx, dy = shift
  tex = _texture(height + 2 * margin, width + 2 * margin)
  frame0, frame1 = _translated(tex, 0, 0, height, width), _translated(tex, dx, dy, height, width)
  middle = _translated(tex, round(t * dx), round(t * dy), height, width)
  flow01, flow10 = classical_flow.dis_flows(frame0, frame1)
  inner = (slice(12, -12), slice(12, -12))  # away from the borders, where content enters or leaves the view
  np.testing.assert_allclose(np.median(flow01[inner].reshape(-1, 2), axis=0), [dx, dy], atol=0.05)
  np.testing.assert_allclose(np.median(flow10[inner].reshape(-1, 2), axis=0), [-dx, -dy], atol=0.05)
  out = classical_flow.interpolate(frame0, frame1, t)
  assert out.shape == (height, width, 3) and out.dtype == np.float32
  error = np.abs(out - middle)[inner]
  average_error = np.abs(0.5 * (frame0 + frame1) - middle)[inner]
  assert error.mean() < 2e-3 and error.mean() < average_error.mean() / 10, (error.mean(), average_error.mean())
  # uint8 inputs give the same frame (they are the float inputs quantised).
  as_uint8 = lambda f: np.round(f * 255).astype(np.uint8)
  out8 = classical_flow.interpolate(as_uint8(frame0), as_uint8(frame1), t)
  assert np.abs(out8 - middle)[inner].mean() < 4e-3
  # The batch form: one t per example.
  batch = classical_flow.interpolate_batch(np.stack([frame0, frame1]), np.stack([frame1, frame0]), [t, 1 - t])
  np.testing.assert_allclose(batch[0], out, atol=1e-6)
  assert np.abs(batch[1] - middle)[inner].mean() < 2e-3  # the reversed pair at 1 - t is the same frame


class _Writer:
  def __init__(self):
    self.scalars = {}

  def add_scalar(self, name, value, step):
    self.scalars[name] = value

  def add_image(self, *args, **kwargs):
    pass

  def flush(self):
    pass


def _validate(tfds_dir, workdir):
  """The tiny config's validation entries scored by `report.run_evals` with the frame average as the model; returns
  (record, scalars, log lines)."""
  config = tiny_config(tfds_dir)
  eval_entries, _ = report.split_entries(config)
  writer, lines = _Writer(), []
  predict_fn = lambda params, batch: 0.5 * (batch["frame0"] + batch["frame1"])
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(logging, "info", lambda fmt, *args: lines.append(fmt % args))
    record = report.run_evals(predict_fn, None, config, str(workdir), 3, [], eval_entries, writer)
  assert record == json.loads((workdir / "eval_3.json").read_text())
  return record, writer.scalars, lines


@needs_cv2
def test_the_row_is_in_every_report_of_an_evaluation(tfds_dir, tmp_path):
  record, scalars, lines = _validate(tfds_dir, tmp_path)
  for key in ("psnr", "ssim"):
    value = record["metrics"][f"classical_flow_{key}"]
    assert np.isfinite(value) and scalars[f"eval/classical_flow_{key}"] == pytest.approx(value)
  assert not any("classical flow" in n for n in record["notes"])
  assert any("classical flow (DIS): PSNR" in line for line in lines), lines


def test_without_opencv_the_row_is_absent_and_a_note_says_why(tfds_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(classical_flow, "cv2", None)
  record, scalars, lines = _validate(tfds_dir, tmp_path)
  assert not any(k.startswith("classical_flow") for k in list(record["metrics"]) + list(scalars))
  assert record["notes"].count(classical_flow.UNAVAILABLE_NOTE) == 1
  assert "OpenCV is not installed" in classical_flow.UNAVAILABLE_NOTE and "\n" not in classical_flow.UNAVAILABLE_NOTE
  assert not any("classical flow" in line for line in lines)
  with pytest.raises(ImportError, match="OpenCV is not installed"):
    classical_flow.interpolate(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
  # The benchmark table leaves the row out and says why under it.
  scores = {"psnr": 30.0, "ssim": 0.9}
  table = vfi_triplet.format_table({"step": 1, "method": "refin", "benchmarks": [
      {"name": "Vimeo-90K", "num_examples": 2, "notes": [classical_flow.UNAVAILABLE_NOTE],
       "scores": {"model": scores, "frame_average": scores, "repeat_frame": scores}}]})
  assert "| Classical flow (DIS) |" not in table
  assert table.rstrip().endswith("OpenCV is not installed (pip install opencv-python-headless, a dependency of "
                                 "jaxvfi).")
