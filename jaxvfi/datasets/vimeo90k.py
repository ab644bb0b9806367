"""Vimeo-90K (Xue et al., IJCV 2019) triplets and septuplets: builders `vimeo90k_triplet` and `vimeo90k_septuplet`.

ReFIn (paper 000, Sec. 4 "Datasets") trains on the triplet train list and evaluates on the triplet test list
(Tables 1-4), with t = 0.5.

Layout, as unpacked from vimeo_triplet.zip (`manual_dir` may be the folder holding `vimeo_triplet/` or
`vimeo_triplet/` itself):
  vimeo_triplet/tri_trainlist.txt, tri_testlist.txt     one "<5 digits>/<4 digits>" per line
  vimeo_triplet/sequences/<5 digits>/<4 digits>/im1.png im2.png im3.png
The septuplet is alike: vimeo_septuplet/, sep_trainlist.txt, sep_testlist.txt, im1.png ... im7.png.

Examples use the canonical interpolation features (`synthetic.clip_features`): frames = [im1, ..., imN] (N = 3 or
7), times = linspace(0, 1, N) (im1 and imN are the inputs, the rest are targets), id = the list line. Splits
`train` and `test` follow the list files in their order; sequences in neither list are not read.
"""
from __future__ import annotations

import itertools

import numpy as np
import tensorflow_datasets as tfds

from jaxvfi.datasets import layout
from jaxvfi.datasets.synthetic import clip_features

_CITATION = """@article{xue2019video,
  title={Video Enhancement with Task-Oriented Flow},
  author={Xue, Tianfan and Chen, Baian and Wu, Jiajun and Wei, Donglai and Freeman, William T},
  journal={International Journal of Computer Vision},
  year={2019}
}"""


class _Vimeo90k(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared by the triplet and septuplet builders, which differ in folder, list prefix and frame count."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  _FOLDER: str
  _LIST_PREFIX: str
  _NUM_FRAMES: int

  def _info(self) -> tfds.core.DatasetInfo:
    # DatasetInfo directly: `dataset_info_from_configs` wants a package directory with README/CITATIONS files.
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"Vimeo-90K {self._FOLDER}: {self._NUM_FRAMES} frames per sequence, times linspace(0, 1).",
        features=clip_features(self._NUM_FRAMES),
        homepage="http://toflow.csail.mit.edu/",
        citation=_CITATION,
        disable_shuffling=True,  # source[i] is the i-th line of the list file.
    )

  def _split_generators(self, dl_manager):
    manual_dir = layout.manual_path(dl_manager.manual_dir)
    root = layout.find_root(self.name, manual_dir, self._FOLDER, f"{self._LIST_PREFIX}_trainlist.txt")
    splits = {}
    for split in ("train", "test"):
      ids = layout.read_lines(self.name, root / f"{self._LIST_PREFIX}_{split}list.txt")
      paths = [[root / "sequences" / i / f"im{k}.png" for k in range(1, self._NUM_FRAMES + 1)] for i in ids]
      for path in itertools.chain.from_iterable(paths):
        layout.require_file(self.name, path)
      splits[split] = self._generate_examples(ids=ids, paths=paths)
    return splits

  def _generate_examples(self, ids, paths):
    times = np.linspace(0.0, 1.0, self._NUM_FRAMES)
    for ident, frame_paths in zip(ids, paths):
      yield ident, layout.interpolation_example(self.name, ident, frame_paths, times)


class Vimeo90kTriplet(_Vimeo90k):
  """Vimeo-90K triplets (ReFIn's training and test set): frames [im1, im2, im3], times [0, 0.5, 1]."""

  name = "vimeo90k_triplet"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download http://data.csail.mit.edu/tofu/dataset/vimeo_triplet.zip and unzip it into manual_dir, giving
  <manual_dir>/vimeo_triplet/{tri_trainlist.txt, tri_testlist.txt, sequences/} (manual_dir may also be the
  vimeo_triplet folder itself)."""
  _FOLDER = "vimeo_triplet"
  _LIST_PREFIX = "tri"
  _NUM_FRAMES = 3


class Vimeo90kSeptuplet(_Vimeo90k):
  """Vimeo-90K septuplets: frames [im1, ..., im7], times linspace(0, 1, 7)."""

  name = "vimeo90k_septuplet"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download http://data.csail.mit.edu/tofu/dataset/vimeo_septuplet.zip and unzip it into manual_dir, giving
  <manual_dir>/vimeo_septuplet/{sep_trainlist.txt, sep_testlist.txt, sequences/} (manual_dir may also be the
  vimeo_septuplet folder itself)."""
  _FOLDER = "vimeo_septuplet"
  _LIST_PREFIX = "sep"
  _NUM_FRAMES = 7
