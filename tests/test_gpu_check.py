"""tools/gpu_check.py: `--smoke` runs every phase on CPU (kernels in interpret mode, tiny sizes) and every check passes;
the full-size case lists that only a GPU run executes are built and traced here, so a GPU session does not find a
broken case first."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import gpu_check  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import common  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_smoke_runs_every_phase_and_passes(tmp_path):
  out = tmp_path / "checks.jsonl"
  # The subprocess inherits conftest's persistent compilation cache: after the first run the interpret-mode kernels
  # and the train steps load from it.
  r = subprocess.run([sys.executable, os.path.join("tools", "gpu_check.py"), "--smoke", f"--out={out}"], cwd=ROOT,
                     env=dict(os.environ), capture_output=True, text=True, timeout=900, check=False)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  records = [json.loads(line) for line in out.read_text().splitlines()]
  assert [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")] == records
  assert all(rec["ok"] for rec in records), [rec for rec in records if not rec["ok"]]
  phases = {rec["phase"] for rec in records}
  assert phases == {"env", "values", "timing", "auto", "train", "summary"}
  values = {rec["name"] for rec in records if rec["phase"] == "values"}
  assert values == set(gpu_check.SMOKE_VALUE_CASES)
  train = [rec for rec in records if rec["phase"] == "train"]
  assert [rec["impl"] for rec in train] == ["pallas", "xla", "pallas_vs_xla"]
  assert records[-1] == {**records[-1], "phase": "summary", "failed": 0, "checks": len(records) - 1}


def test_phases_rerun_a_part_and_append(tmp_path):
  out = tmp_path / "checks.jsonl"
  auto_out = tmp_path / "auto.json"
  out.write_text('{"phase": "earlier"}\n')
  assert gpu_check.run(["--smoke", "--phases=timing", f"--out={out}", f"--auto-out={auto_out}"]) == 0
  records = [json.loads(line) for line in out.read_text().splitlines()]
  assert [rec["phase"] for rec in records] == ["earlier", "env"] + ["timing"] * 4 + ["auto", "summary"]
  assert {rec["impl"] for rec in records if rec["phase"] == "timing"} == {"pallas", "xla"}
  assert {rec["name"] for rec in records if rec["phase"] == "timing"} == {"backward_warp", "backward_warp_flow_only"}
  # The smoke run times the two warp cases: the two warp keys of the table are decided, and the file it writes is
  # one `impl="auto"` accepts through PALLAS_KERNELS_AUTO.
  table = records[-2]["auto"]
  assert set(table) == {"backward_warp", "backward_warp.image_grad"}
  assert common._auto_file(str(auto_out), auto_out.stat().st_mtime) == table  # pylint: disable=protected-access


def _timing(name, size, impl, forward, forward_backward):
  return {"phase": "timing", "name": name, "size": size, "impl": impl, "ok": True,
          "forward": {"median_ms": forward}, "forward_backward": {"median_ms": forward_backward}}


def test_auto_table_from_timings():
  """Each key is decided at the largest size measured, by its part: the forward, the backward (forward_backward -
  forward) or both; cases missing an impl or failed decide nothing."""
  records = [
      _timing("deform_conv_v1", "256", "pallas", 1.0, 2.0), _timing("deform_conv_v1", "256", "xla", 2.0, 2.5),
      _timing("deform_conv_v1", "1080p", "pallas", 3.0, 20.0), _timing("deform_conv_v1", "1080p", "xla", 4.0, 10.0),
      _timing("sepconv", "1080p", "pallas", 1.0, 3.0), _timing("sepconv", "1080p", "xla", 7.0, 30.0),
      _timing("backward_warp", "1080p", "pallas", 1.0, 3.0),  # no xla record: undecided
      {**_timing("squared_deform_conv", "1080p", "pallas", 1.0, 2.0), "ok": False},
      _timing("squared_deform_conv", "1080p", "xla", 2.0, 3.0),
  ]
  result = gpu_check.auto_from_timings(records)
  assert result["auto"] == {"deform_conv": "pallas", "deform_conv.backward": "xla", "sepconv": "pallas"}
  assert result["evidence"]["deform_conv.backward"] == {"case": "deform_conv_v1", "size": "1080p", "part": "backward",
                                                        "pallas_ms": 17.0, "xla_ms": 6.0}
  assert set(gpu_check.AUTO_EVIDENCE) == set(common.AUTO_GPU_DEFAULT)


def test_refuses_to_time_interpret_mode_off_gpu(tmp_path):
  if jax.default_backend() == "gpu":
    pytest.skip("a GPU backend is present")
  assert gpu_check.run([f"--out={tmp_path / 'c.jsonl'}", "--phases=values"]) == 1


def test_full_size_value_cases_trace():
  """Every GPU-run value case (bf16, composite, far and converging flows, DCN groups under both precisions) traces
  through both impls with matching output shapes; nothing is compiled or run."""
  cases = gpu_check.value_cases(smoke=False)
  assert {"sepconv_bf16", "warp_zeros_far_outside", "warp_border_converging", "deform_conv_v2_g8",
          "squared_deform_conv"} <= {c["name"] for c in cases}
  assert {c.get("precision") for c in cases if c["name"].startswith("deform")} == {"float32", "default"}
  for case in cases:
    shapes = [jax.eval_shape(case["op"](impl), *case["args"]) for impl in ("pallas", "xla")]
    assert shapes[0] == shapes[1], case["name"]


def test_train_phase_configs_name_every_paper():
  assert set(gpu_check.PAPER_CONFIGS) == set(gpu_check.PAPERS)
