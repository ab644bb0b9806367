"""Image, image-sequence and video I/O for the inference tools (the next commit splits `writer.py` by job)."""
from jaxvfi.video_io.writer import *  # pylint: disable=wildcard-import,unused-wildcard-import
from jaxvfi.video_io.writer import _ALPHA_ENCODERS  # pylint: disable=unused-import
from jaxvfi.video_io.writer import _natural_key  # pylint: disable=unused-import
from jaxvfi.video_io.writer import first_line  # pylint: disable=unused-import
