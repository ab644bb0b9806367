"""UCF101 interpolation test set of DVF (Liu et al., ICCV 2017): builder `ucf101_triplet`, split `test`.

ReFIn (paper 000, Sec. 4) reports this set next to Vimeo-90K (Table 1): 379 triplets cut from UCF101 videos
(Soomro et al., 2012), 256x256.

Layout, as distributed (ucf101_interp_ours.zip; `manual_dir` may be the folder holding `ucf101_interp_ours/` or the
folder of sequences itself):
  <seq>/frame_00.png frame_01_gt.png frame_02.png     (other files, e.g. DVF's frame_01_ours.png, are ignored)
Every visible subfolder is a sequence and must hold all three frames.

Examples use the canonical interpolation features (`synthetic.clip_features`): frames = [frame_00, frame_01_gt,
frame_02], times = [0, 0.5, 1], id = the sequence folder name; sequences in natural name order.
"""
from __future__ import annotations

import tensorflow_datasets as tfds

from jaxvfi.datasets import layout
from jaxvfi.datasets.synthetic import clip_features

_FOLDER = "ucf101_interp_ours"
_FRAMES = ("frame_00.png", "frame_01_gt.png", "frame_02.png")
_CITATION = """@inproceedings{liu2017video,
  title={Video Frame Synthesis using Deep Voxel Flow},
  author={Liu, Ziwei and Yeh, Raymond A and Tang, Xiaoou and Liu, Yiming and Agarwala, Aseem},
  booktitle={ICCV},
  year={2017}
}"""


class Ucf101Triplet(tfds.core.GeneratorBasedBuilder):
  """DVF's UCF101 triplets: frames [frame_00, frame_01_gt, frame_02], times [0, 0.5, 1]."""

  name = "ucf101_triplet"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Unzip DVF's UCF101 test set (ucf101_interp_ours.zip, linked from https://liuziwei7.github.io/projects/VoxelFlow)
  into manual_dir, giving <manual_dir>/ucf101_interp_ours/<seq>/{frame_00.png, frame_01_gt.png, frame_02.png}
  (manual_dir may also be the folder of sequences itself)."""

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="DVF's UCF101 interpolation triplets, times [0, 0.5, 1].",
        features=clip_features(len(_FRAMES)),
        homepage="https://liuziwei7.github.io/projects/VoxelFlow",
        citation=_CITATION,
        disable_shuffling=True,  # source[i] is the i-th sequence in natural name order.
    )

  def _split_generators(self, dl_manager):
    manual_dir = layout.manual_path(dl_manager.manual_dir)
    root = manual_dir / _FOLDER if (manual_dir / _FOLDER).is_dir() else manual_dir
    sequences = layout.subdirs(root)
    if not sequences:
      raise FileNotFoundError(f"{self.name}: expected sequence folders {root}/<seq>/{_FRAMES[0]}")
    paths = [[layout.require_file(self.name, seq / frame) for frame in _FRAMES] for seq in sequences]
    return {"test": self._generate_examples(ids=[seq.name for seq in sequences], paths=paths)}

  def _generate_examples(self, ids, paths):
    for ident, frame_paths in zip(ids, paths):
      yield ident, layout.interpolation_example(self.name, ident, frame_paths, (0.0, 0.5, 1.0))
