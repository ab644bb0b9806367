"""Middlebury optical-flow "other" set with interpolation ground truth (Baker et al., IJCV 2011): builder
`middlebury_other`, split `test`.

Layout, as unpacked from the benchmark's other-color-twoframes.zip (or other-color-allframes.zip) and
other-gt-interp.zip into `manual_dir`:
  other-data/<seq>/frame10.png frame11.png          (other frames of the all-frames zip are ignored)
  other-gt-interp/<seq>/frame10i11.png
Only sequences with ground truth are examples (12 in the official zips): every visible folder of other-gt-interp
needs its two input frames in other-data, while other-data folders without ground truth are skipped.

Examples use the canonical interpolation features (`synthetic.clip_features`): frames = [frame10, frame10i11,
frame11], times = [0, 0.5, 1], id = the sequence name; sequences in natural name order. Grayscale frames become RGB
(`layout`).
"""
from __future__ import annotations

import tensorflow_datasets as tfds

from jaxvfi.datasets import layout
from jaxvfi.datasets.synthetic import clip_features

_CITATION = """@article{baker2011database,
  title={A Database and Evaluation Methodology for Optical Flow},
  author={Baker, Simon and Scharstein, Daniel and Lewis, JP and Roth, Stefan and Black, Michael J
          and Szeliski, Richard},
  journal={International Journal of Computer Vision},
  year={2011}
}"""


class MiddleburyOther(tfds.core.GeneratorBasedBuilder):
  """Middlebury "other" sequences with ground truth: frames [frame10, frame10i11, frame11], times [0, 0.5, 1]."""

  name = "middlebury_other"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  From https://vision.middlebury.edu/flow/data/ download other-color-twoframes.zip (or other-color-allframes.zip)
  and other-gt-interp.zip and unzip both into manual_dir, giving <manual_dir>/other-data/<seq>/frame10.png,
  frame11.png and <manual_dir>/other-gt-interp/<seq>/frame10i11.png."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="Middlebury 'other' interpolation triplets with ground truth, times [0, 0.5, 1].",
        features=clip_features(3),
        homepage="https://vision.middlebury.edu/flow/data/",
        citation=_CITATION,
        disable_shuffling=True,  # source[i] is the i-th sequence in natural name order.
    )

  def _split_generators(self, dl_manager):
    manual_dir = layout.manual_path(dl_manager.manual_dir)
    data = layout.require_dir(self.name, manual_dir / "other-data")
    truth = layout.require_dir(self.name, manual_dir / "other-gt-interp")
    names = [seq.name for seq in layout.subdirs(truth)]
    if not names:
      raise FileNotFoundError(f"{self.name}: expected ground-truth folders {truth}/<seq>/frame10i11.png")
    paths = [[layout.require_file(self.name, path)
              for path in (data / n / "frame10.png", truth / n / "frame10i11.png", data / n / "frame11.png")]
             for n in names]
    return {"test": self._generate_examples(ids=names, paths=paths)}

  def _generate_examples(self, ids, paths):
    for ident, frame_paths in zip(ids, paths):
      yield ident, layout.interpolation_example(self.name, ident, frame_paths, (0.0, 0.5, 1.0))
