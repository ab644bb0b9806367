"""GOPRO (Nah et al., CVPR 2017) with DSFN's blur synthesis: builder `gopro`, splits `train` and `test`.

DSFN (paper 002) also tests on GOPRO (Table 2) without restating how its blurry inputs were made; this builder applies
the Adobe240 synthesis of Sec. 4.1 to GOPRO's 240-fps frames: blurry frames are means of 11 consecutive sharp
frames, every 8th frame (30 fps). Synthesis, features and configs (`blurry2`, `blurry3`, `blurry4`) are those of
`adobe240` (see its docstring).

The synthesis needs every 240-fps frame, which only GOPRO_Large_all has:
  GOPRO_Large_all/train/<seq>/*.png, GOPRO_Large_all/test/<seq>/*.png   (`manual_dir` may be the folder holding
                                                                        GOPRO_Large_all/ or that folder itself)
The better-known GOPRO_Large (<seq>/sharp/, blur/, blur_gamma/) cannot be used: its sharp/ frames are only the
centre frame of each time-disjoint 7-13-frame blur window, not consecutive frames (the dataset author in
SeungjunNah/DeepDeblur_release#22: "You should merge frames from GOPRO_Large_all, not from GOPRO_Large"), so the
builder refuses that layout with an error saying so. Its official blur/ frames are not a feature either: each
averages a different number of frames (7-13, the middle number of the sequence name) over windows that do not sit at
the 30-fps key times used here, and their mapping onto GOPRO_Large_all frames is not distributed (the author gave
single examples in DeepDeblur_release#59; #66 reports mismatches).
"""
from __future__ import annotations

from pathlib import Path

from jaxvfi.datasets import _layout
from jaxvfi.datasets.adobe240 import BlurSynthesisBuilder
from jaxvfi.datasets.adobe240 import blur_configs

_FOLDER = "GOPRO_Large_all"
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
  GOPRO_Large_all folder itself). GOPRO_Large.zip (blur/sharp pairs) does not hold consecutive frames."""
  _HOMEPAGE = "https://seungjunnah.github.io/Datasets/gopro"
  _CITATION = _CITATION

  def _split_clips(self, manual_dir: Path) -> dict[str, list[Path]]:
    root = manual_dir / _FOLDER if (manual_dir / _FOLDER).is_dir() else manual_dir
    clips = {}
    for split in ("train", "test"):
      folder = root / split
      if not folder.is_dir():
        raise FileNotFoundError(f"{self.name}: expected {manual_dir / _FOLDER / split}/<seq>/*.png "
                                f"(or {folder}/<seq>/*.png if {manual_dir} is the {_FOLDER} folder itself)")
      clips[split] = _layout.subdirs(folder)
      for seq in clips[split]:
        if (seq / "sharp").is_dir() or (seq / "blur").is_dir():
          raise ValueError(f"{self.name}: {seq} has sharp/ and blur/ folders, the GOPRO_Large pair layout; its sharp "
                           f"frames are one per blur window, not consecutive 240-fps frames. Unpack "
                           f"GOPRO_Large_all (all sharp frames, <split>/<seq>/*.png) instead.")
    return clips
