"""GOPRO (Nah et al., CVPR 2017) with DSFN's blur synthesis: builder `gopro`, splits `train` and `test`.

DSFN (paper 002) also tests on GOPRO (Table 2) without restating how its blurry inputs were made; this builder applies
the Adobe240 synthesis of Sec. 4.1 to GOPRO's 240-fps frames: blurry frames are means of 11 consecutive sharp
frames, every 8th frame (30 fps). Synthesis, features and configs (`blurry2`, `blurry3`, `blurry4`) are those of
`adobe240` (see its docstring).

Two layouts are accepted (`manual_dir` may be the folder holding GOPRO_Large_all/ or GOPRO_Large/, or that folder):
  GOPRO_Large_all/{train,test}/<seq>/*.png        every 240-fps frame: the synthesis is exact. Preferred.
  GOPRO_Large/{train,test}/<seq>/sharp/*.png      the better-known blur/sharp pair release (blur/ is ignored).
The synthesis needs consecutive 240-fps frames, which only GOPRO_Large_all has: GOPRO_Large's sharp/ frames are the
centre frame of each time-disjoint 7-13-frame blur window (the dataset author in SeungjunNah/DeepDeblur_release#22:
"You should merge frames from GOPRO_Large_all, not from GOPRO_Large"). On GOPRO_Large the same synthesis runs on the
sharp/ frames as they are, as commonly done, so each synthetic exposure spans about 11 blur windows (~100 frames at
240 fps) rather than 11 frames; the builder logs a warning saying so. The official blur/ frames are not a feature:
each averages a different number of frames (7-13, the middle number of the sequence name) over windows that do not
sit at the 30-fps key times used here.
"""
from __future__ import annotations

from pathlib import Path

from jaxvfi.datasets import layout
from jaxvfi.datasets.adobe240 import BlurSynthesisBuilder
from jaxvfi.datasets.adobe240 import blur_configs

from absl import logging

_FOLDER = "GOPRO_Large_all"
_PAIR_FOLDER = "GOPRO_Large"
_CITATION = """@inproceedings{nah2017deep,
  title={Deep Multi-scale Convolutional Neural Network for Dynamic Scene Deblurring},
  author={Nah, Seungjun and Kim, Tae Hyun and Lee, Kyoung Mu},
  booktitle={CVPR},
  year={2017}
}"""


class Gopro(BlurSynthesisBuilder):
  """GOPRO_Large_all sharp 240-fps sequences -> blurry 30-fps inputs with sharp targets (module docstring)."""

  name = "gopro"
  BUILDER_CONFIGS = blur_configs()
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  Download GOPRO_Large_all.zip (all sharp 240-fps frames; https://seungjunnah.github.io/Datasets/gopro) and unzip it
  into manual_dir, giving <manual_dir>/GOPRO_Large_all/{train,test}/<seq>/*.png (manual_dir may also be the
  GOPRO_Large_all folder itself). GOPRO_Large.zip (<seq>/sharp/ and blur/) is accepted too, but its sharp frames are
  not consecutive, so the synthesised blur is much longer than DSFN's (see the module docstring)."""
  _HOMEPAGE = "https://seungjunnah.github.io/Datasets/gopro"
  _CITATION = _CITATION

  def _clip_id(self, clip: Path) -> str:
    return clip.parent.name if clip.name == "sharp" else clip.name

  def _split_clips(self, manual_dir: Path) -> dict[str, list[Path]]:
    root = next((manual_dir / f for f in (_FOLDER, _PAIR_FOLDER) if (manual_dir / f).is_dir()), manual_dir)
    clips = {}
    for split in ("train", "test"):
      folder = root / split
      if not folder.is_dir():
        raise FileNotFoundError(f"{self.name}: expected {manual_dir / _FOLDER / split}/<seq>/*.png or "
                                f"{manual_dir / _PAIR_FOLDER / split}/<seq>/sharp/*.png (or {folder} if {manual_dir} "
                                f"is that folder itself)")
      seqs = layout.subdirs(folder)
      pairs = [seq for seq in seqs if (seq / "sharp").is_dir()]
      if pairs and len(pairs) != len(seqs):
        mixed = next(seq for seq in seqs if not (seq / "sharp").is_dir())
        raise ValueError(f"{self.name}: {folder} mixes the GOPRO_Large layout (<seq>/sharp/) with sequences of "
                         f"bare frames ({mixed})")
      if pairs:
        logging.warning("%s: %s has the GOPRO_Large layout, whose sharp/ frames are not consecutive 240-fps frames; "
                        "the blur synthesis averages 11 of them (about 11 blur windows). GOPRO_Large_all gives the "
                        "exact synthesis.", self.name, folder)
        clips[split] = [seq / "sharp" for seq in seqs]
      else:
        clips[split] = seqs
    return clips
