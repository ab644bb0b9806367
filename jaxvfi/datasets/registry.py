"""The TFDS builders of jaxvfi by dataset name. Importing this module imports every builder (and so registers each
with `tfds` under its name); importing one builder module (`jaxvfi.datasets.synthetic`) imports only that one.

Add a builder by importing its module here and listing its class in `_BUILDER_CLASSES`; a dataset with the clip,
blur or SR-RAW features is also named in `jaxvfi.data_config.FEATURES`.
"""
from __future__ import annotations

from jaxvfi.datasets import adobe240
from jaxvfi.datasets import gopro
from jaxvfi.datasets import middlebury
from jaxvfi.datasets import sr_raw
from jaxvfi.datasets import synthetic
from jaxvfi.datasets import synthetic_blur
from jaxvfi.datasets import ucf101
from jaxvfi.datasets import video_clips
from jaxvfi.datasets import vimeo90k

_BUILDER_CLASSES = (synthetic.JaxvfiSynthetic, synthetic.JaxvfiSyntheticZoom, synthetic_blur.JaxvfiSyntheticBlur,
                    vimeo90k.Vimeo90kTriplet, vimeo90k.Vimeo90kSeptuplet, ucf101.Ucf101Triplet,
                    middlebury.MiddleburyOther, adobe240.Adobe240, gopro.Gopro, sr_raw.SrRaw,
                    video_clips.VideoClips)

BUILDERS = {cls.name: cls for cls in _BUILDER_CLASSES}
"""Dataset name (as given to `tfds.builder`) -> builder class."""
