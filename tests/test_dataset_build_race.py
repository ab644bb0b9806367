"""Two processes (or threads) building the same TFDS dataset for the first time at once both end with the one
complete build: TFDS renames its temporary folder into place at the end, and the later rename used to fail with
FileExistsError. `input_pipeline.get_builder` holds a lock file while building; where no lock works, the loser of the
race takes the winner's complete build."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading

from conftest import ROOT
from jaxvfi import input_pipeline
from jaxvfi.datasets import registry
from jaxvfi.datasets import synthetic

# A tiny rendered dataset: 4 + 2 clips of 3 frames of 16x16 pixels (built in well under a second).
_CONFIG = dict(num_train=4, num_validation=2, size=(16, 16), num_frames=3)

_BUILD = textwrap.dedent("""
    import os, sys, time
    from jaxvfi import data_config, input_pipeline
    tfds_dir, me, other = sys.argv[1:]
    config = data_config.default_data_config()
    config.tfds_dir = tfds_dir
    config.update(dict(synthetic_num_train=4, synthetic_num_val=2, synthetic_size=16, synthetic_num_frames=3))
    open(os.path.join(tfds_dir, me), "w").close()  # both processes start building together (imports done)
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(tfds_dir, other)) and time.time() < deadline:
      time.sleep(0.01)
    builder = input_pipeline.get_builder(config)
    print(builder.info.splits["train"].num_examples, builder.info.splits["validation"].num_examples)
""")


def _versions(tfds_dir):
  folder = os.path.join(tfds_dir, "jaxvfi_synthetic", synthetic.synthetic_config(**_CONFIG).name)
  return sorted(n for n in os.listdir(folder) if not n.endswith(".lock"))


def test_two_processes_build_the_same_dataset_at_once(tmp_path):
  tfds_dir = str(tmp_path / "tfds")
  os.makedirs(tfds_dir)
  procs = [subprocess.Popen([sys.executable, "-c", _BUILD, tfds_dir, me, other], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
           for me, other in (("a.ready", "b.ready"), ("b.ready", "a.ready"))]
  results = [p.communicate(timeout=600) for p in procs]
  for proc, (out, err) in zip(procs, results):
    assert proc.returncode == 0, err[-3000:]
    assert out.splitlines()[-1].split() == ["4", "2"]
  assert _versions(tfds_dir) == ["1.0.0"]  # one build, no incomplete.* folder left


def test_without_a_lock_the_loser_takes_the_winners_build(tmp_path, monkeypatch, caplog):
  """Both builds are inside example generation at once (a barrier), as without a working lock: the one whose final
  rename finds the complete dataset in place reads it instead of failing."""
  monkeypatch.setattr(input_pipeline.utils, "file_lock", lambda path: contextlib.nullcontext())
  barrier = threading.Barrier(2, timeout=120)
  generate = synthetic.JaxvfiSynthetic._generate_examples  # pylint: disable=protected-access

  def together(self, *args, **kwargs):
    barrier.wait()
    yield from generate(self, *args, **kwargs)

  monkeypatch.setattr(synthetic.JaxvfiSynthetic, "_generate_examples", together)
  tfds_dir = str(tmp_path / "tfds")
  make = lambda: registry.BUILDERS["jaxvfi_synthetic"](data_dir=tfds_dir, config=synthetic.synthetic_config(**_CONFIG),
                                                       file_format="array_record")
  results, errors = [None, None], []

  def build(i):
    try:
      results[i] = input_pipeline._prepare(make, None)  # pylint: disable=protected-access
    except Exception as e:  # pylint: disable=broad-exception-caught
      errors.append(e)

  with caplog.at_level("INFO", logger="absl"):
    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for t in threads:
      t.start()
    for t in threads:
      t.join(timeout=600)
  assert not errors, errors
  for builder in results:
    assert builder.info.splits["train"].num_examples == 4
    assert len(builder.as_data_source(split="validation")) == 2
  assert "was built by another process at the same time; using that build" in caplog.text
  assert _versions(tfds_dir) == ["1.0.0"]
