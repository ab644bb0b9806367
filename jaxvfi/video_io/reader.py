"""Reading a video's frames, streamed, with their exact times (`VideoReader`).

`VideoReader` decodes frames as uint8 RGB (H, W, 3), or RGBA (H, W, 4) with `alpha=True` when the stream's pixel
format has alpha or a palette; VP8/VP9 alpha (WebM's alpha_mode) is decoded with libvpx, since FFmpeg's own decoders
drop it. A display rotation by a multiple of 90 degrees (phone videos) is applied, as the ffmpeg command line does (a
mirrored display matrix is not). Deeper-than-8-bit video is converted to 8 bits (a log line says so). Frames are
converted to RGB with the stream's own colour matrix and range. Times are those of `probe` (its module docstring).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterator

from absl import logging
import numpy as np

from jaxvfi import utils
from jaxvfi.video_io.probe import av_errors
from jaxvfi.video_io.probe import decode
from jaxvfi.video_io.probe import open_input
from jaxvfi.video_io.probe import probe
from jaxvfi.video_io.probe import video_stream
from jaxvfi.video_io.probe import VideoInfo


def _src_colour(info: VideoInfo) -> dict:
  """swscale arguments that convert with the stream's own colour matrix and range (unspecified: FFmpeg's default)."""
  kw = {}
  if info.colorspace not in (0, 2):  # 0 = RGB/GBR, 2 = unspecified
    kw["src_colorspace"] = info.colorspace
  if info.color_range:
    kw["src_color_range"] = info.color_range
  return kw


class VideoReader:
  """Frames of a video file, streamed (never all in memory), with their exact times.

  `for image in reader` gives uint8 (H, W, 3) RGB frames, as the earlier imageio-based reader did;
  `reader.frames()` gives (time, image) pairs, time a Fraction of seconds from the first frame (module docstring).
  With `alpha=True` and a stream that has alpha, images are (H, W, 4) RGBA.

  Attributes: info (VideoInfo), fps (the exact rate), codec, pix_fmt, num_frames (approx_num_frames, its old name).
  """

  def __init__(self, path: str, info: VideoInfo | None = None, alpha: bool = False):
    self.path = path
    self.info = info or probe(path)
    self.fps = self.info.rate
    self.codec = self.info.codec
    self.pix_fmt = self.info.pix_fmt
    self.num_frames = self.approx_num_frames = self.info.num_frames
    self.alpha = bool(alpha and self.info.has_alpha)
    self._container = open_input(path)
    self._stream = video_stream(self._container, path)
    self._stream.thread_type = "AUTO"  # frame and slice threads in the decoder
    self._iterators = []  # frames() generators, closed before the container (see close)
    if self.info.bits > 8:
      logging.info("%s: %d-bit %s decoded to 8-bit RGB", path, self.info.bits, self.info.pix_fmt)
    if self.info.rotation:
      logging.info("%s: display rotation of %d degrees applied", path, self.info.rotation)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __iter__(self) -> Iterator[np.ndarray]:
    for _, image in self.frames():
      yield image

  def frames(self) -> Iterator[tuple[Fraction, np.ndarray]]:
    iterator = self._frames()
    self._iterators.append(iterator)
    return iterator

  def _frames(self) -> Iterator[tuple[Fraction, np.ndarray]]:
    info, start_ticks = self.info, self.info.start / self.info.time_base
    fmt = "rgba" if self.alpha else "rgb24"
    colour = _src_colour(info)
    k = 0
    try:
      for frame in decode(self._container, self._stream):
        if frame.pts is not None:
          time = (frame.pts - start_ticks) * info.time_base
          if info.constant_rate:
            time = Fraction(round(time * info.rate)) / info.rate  # undo the container's rounding (1 ms in mkv)
        else:
          time = Fraction(k) / info.rate
        image = frame.to_ndarray(format=fmt, **colour)
        if info.rotation:
          image = np.ascontiguousarray(np.rot90(image, k=info.rotation // 90))
        k += 1
        yield time, image
    except av_errors() as e:  # a stream that breaks off in the middle
      raise ValueError(f"cannot read video {self.path}: {utils.error_reason(e)}") from e

  def close(self) -> None:
    # A decoding generator left suspended (a run stopped mid-video) must finish while its container is open: freed
    # later, at interpreter exit, it touches the closed container and crashes the process (SIGSEGV).
    for iterator in self._iterators:
      iterator.close()
    self._iterators.clear()
    self._container.close()

