r"""Image, image-sequence and video I/O for the inference tools (`jaxvfi.interpolate`, `enhance`, `zoom`).

Everything here goes through libraries: Pillow for still images, PyAV (FFmpeg's own libraries: libavformat,
libavcodec, libswscale) for videos. What a file is, is FFmpeg's call: any container it probes as holding a video
stream (mp4, mkv, mov, webm, avi, ts/m2ts, flv, 3gp, m4v, an animated gif, ...) is read; no extension list.

Timing. A time is an exact `fractions.Fraction` of seconds from the first video frame; a rate is an exact rational
from the stream (24000/1001, never 23.976). `probe` demuxes every video packet once (no decoding) and calls the stream
constant-rate when every timestamp sits on the grid k / r of a stream rate r (r_frame_rate, else avg_frame_rate), to
within one tick of the stream's time base, and at most 1 in 10 grid points has no frame (dropped frames, as AVI
stores them): then each frame is at exactly its k / r, the gaps are interpolated across, and the last frame lasts
1 / r. Otherwise the stream is variable-rate (VFR) and frames keep their own timestamps; the last lasts its packet
duration. `VideoInfo.duration` is the first frame's start to the last frame's end.

Reading. `VideoReader` decodes frames as uint8 RGB (H, W, 3), or RGBA (H, W, 4) with `alpha=True` when the stream's
pixel format has alpha or a palette; VP8/VP9 alpha (WebM's alpha_mode) is decoded with libvpx, since FFmpeg's own
decoders drop it. A display rotation by a multiple of 90 degrees (phone videos) is applied, as the ffmpeg command
line does (a mirrored display matrix is not). Deeper-than-8-bit video is converted to 8 bits (a log line says so).

Writing. `plan_video_output` chooses what to write, before any frame exists, and proves it: for each candidate video
encoder (a `codec` the caller names; else the input's codec family, then the output container's default) and pixel
format (the input's, one with alpha when alpha must be kept, yuv420p, yuv444p for odd sizes, ...), it writes one
frame of the real size into memory with the real container and reads it back; the first that FFmpeg both writes and
reads wins. Audio tracks are copied packet by packet (not re-encoded) when that works, else re-encoded to the
container's default audio codec, else dropped (GIF holds no audio); every such choice is a note to log. An
impossible output is one ValueError naming it. `VideoWriter` then writes to a temporary file beside the destination
and renames it onto the destination on `commit`, so a failed or interrupted run leaves neither a half-written video
nor a temporary file. Colour: frames are converted to and from RGB with the input's colour matrix and range, and the
output is tagged with them.

A tool that writes a sequence (interpolate, enhance, zoom) calls `plan_output` before loading its model (every
refusal is then one error line and nothing is written) and `open_sink` after it:

  info = video_io.probe(src)
  plan = video_io.plan_output(out, w, h, time_base=1 / rate, rate=rate, inputs=[src], source=info)  # None: folder
  sink = video_io.open_sink(out, plan, w, h, time_base=1 / rate, rate=rate, source=info)   # after the model loads
  for k, image in enumerate(images): sink.write(image, k / rate)
  sink.commit(n / rate)                                                      # sink.abort() on any error

Frame folders. `list_frame_files` lists a folder's images in natural order (frame2 before frame10);
`StagedFolder` writes a folder of frames into a hidden sibling folder and swaps it into place on `commit`, so a
folder never mixes new frames with stale ones of an earlier run; it refuses a folder holding files it would not
write.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction
import io
import os
import re
import shutil
import tempfile
from typing import Iterator, Sequence

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageOps

_UMASK = os.umask(0)
os.umask(_UMASK)


def first_line(e: BaseException) -> str:
  """The first line of an error's message; FFmpeg's and the OS's errors give their reason without the errno."""
  reason = getattr(e, "strerror", None)
  text = str(reason if isinstance(reason, str) and reason else e).strip() or type(e).__name__
  return text.splitlines()[0]


def check_file(path: str, what: str) -> None:
  if not os.path.exists(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  if not os.path.isfile(path):
    raise ValueError(f"{what} {path} is not a file")


def _av():
  import av  # pylint: disable=g-import-not-at-top  (PyAV loads FFmpeg's libraries: only when a video is used)
  return av


def _av_errors():
  av = _av()
  return (av.FFmpegError, OSError, UnicodeDecodeError, ValueError)


def parse_rate(text: str | float | Fraction, name: str = "rate") -> Fraction:
  """A frame rate as an exact positive Fraction: "24000/1001", "60", "29.97" (= 2997/100 exactly), or a number."""
  try:
    rate = Fraction(str(text).strip()) if not isinstance(text, Fraction) else text
  except (ValueError, ZeroDivisionError) as e:
    raise ValueError(f"{name} must be a rate such as 60, 59.94 or 24000/1001; got {text!r}") from e
  if rate <= 0:
    raise ValueError(f"{name} must be positive, got {text!r}")
  return rate


def format_rate(rate: Fraction | None) -> str:
  """24000/1001 -> "23.976 (24000/1001)"; 48 -> "48"."""
  if rate is None:
    return "?"
  if rate.denominator == 1:
    return str(rate.numerator)
  return f"{float(rate):.6g} ({rate.numerator}/{rate.denominator})"


# ----------------------------------------------------------------------------------------------------------------
# Still images.


def _to_rgb8(img: Image.Image, path: str, keep_alpha: bool) -> np.ndarray:
  """Any Pillow mode -> uint8 HxWx3, or HxWx4 when `keep_alpha` and the image has alpha or transparency."""
  if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
    # 16-bit grayscale PNGs (Pillow's "I;16", or "I" holding 0..65535); 65535 / 257 = 255 maps white to white.
    gray = np.round(np.asarray(img, np.float64) / 257.0).clip(0, 255).astype(np.uint8)
    logging.info("%s: 16-bit grayscale scaled to 8 bits and copied to R, G, B", path)
    return np.repeat(gray[..., None], 3, axis=-1)
  if img.mode == "F":
    raise ValueError(f"cannot read image {path}: floating-point images (mode F) are not supported")
  has_alpha = "A" in img.getbands() or "transparency" in img.info
  if has_alpha and keep_alpha:
    return np.asarray(img.convert("RGBA"), np.uint8)
  if has_alpha:
    logging.info("%s: alpha channel dropped (%s -> RGB)", path, img.mode)
  elif img.mode != "RGB":
    logging.info("%s: converted from %s to RGB", path, img.mode)
  return np.asarray(img.convert("RGB"), np.uint8)


def read_frame(path: str, keep_alpha: bool = False) -> np.ndarray:
  """One image file as uint8 RGB (H, W, 3); RGBA (H, W, 4) if `keep_alpha` and it has alpha or transparency.

  EXIF orientation is applied; grayscale and palette images become RGB; 16-bit grayscale is scaled by 1/257 and
  16-bit RGB keeps its high byte. Raises FileNotFoundError or ValueError naming the file.
  """
  check_file(path, "frame")
  try:
    with Image.open(path) as img:
      # Pillow decodes 16-bit RGB(A) PNGs to 8 bits (the high byte); only the undecoded tiles still say 16 bits.
      sixteen = img.mode in ("RGB", "RGBA") and any(";16" in str(t.args) for t in img.tile)
      img.load()  # Image.open is lazy: a truncated file only fails here
      img = ImageOps.exif_transpose(img)
  except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
    raise ValueError(f"cannot read image {path}: {first_line(e)}") from e
  if sixteen:
    logging.info("%s: 16-bit %s reduced to 8 bits (the high byte of each sample)", path, img.mode)
  return _to_rgb8(img, path, keep_alpha)


def image_header(path: str) -> tuple[int, int, bool]:
  """(width, height, has_alpha) of an image file from its header only (EXIF rotation applied to the size)."""
  check_file(path, "frame")
  try:
    with Image.open(path) as img:
      w, h = img.size
      if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # orientations that swap width and height
        w, h = h, w
      return w, h, "A" in img.getbands() or "transparency" in img.info
  except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
    raise ValueError(f"cannot read image {path}: {first_line(e)}") from e


SCENE_THRESHOLD = 0.12
"""`scene_score` above which two neighbouring frames are a scene cut (`jaxvfi.interpolate`, `video_clips`)."""


def scene_score(frame0: np.ndarray, frame1: np.ndarray) -> float:
  """How unlike two frames are, in [0, 1]: min(mean |I0 - I1| / 255, colour-histogram distance).

  The first term is the mean absolute difference over pixels and R, G, B (FFmpeg's `scdet`/`select` scene score
  starts from the same mean absolute frame difference); the second is the total-variation distance
  0.5 * sum_b |h0(b) - h1(b)| of the normalised histograms, averaged over R, G, B. Motion moves pixels but keeps the
  histograms, a cut changes both; the smaller of the two is high only for a cut (measured values: `jaxvfi.interpolate`).
  Histograms have 16 bins, fewer for frames under 5,600 pixels: the distance between two histograms of the
  same content sampled at N pixels with B bins is about 0.56 sqrt(B / N), which is kept under 0.03; frames under
  700 pixels get one bin, so they never score above 0 (too small to tell a cut from motion). Takes uint8 (H, W, 3)
  frames, or (H, W, 4) RGBA whose colour is premultiplied by alpha first (colour under transparent pixels is not
  seen, so it does not count).
  """
  a, b = (_visible_colour(f) for f in (frame0, frame1))
  mad = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()) / 255.0
  pixels = a.shape[0] * a.shape[1]
  bins = 1 << max(0, min(4, int(np.log2(max(pixels // 350, 1)))))
  shift = 8 - int(np.log2(bins))
  dist = 0.0
  for c in range(3):
    h0 = np.bincount((a[..., c] >> shift).ravel(), minlength=bins) / a[..., c].size
    h1 = np.bincount((b[..., c] >> shift).ravel(), minlength=bins) / b[..., c].size
    dist += 0.5 * float(np.abs(h0 - h1).sum()) / 3.0
  return min(mad, dist)


def _visible_colour(frame: np.ndarray) -> np.ndarray:
  frame = np.asarray(frame)
  if frame.shape[-1] == 3:
    return frame
  premultiplied = frame[..., :3].astype(np.uint16) * frame[..., 3:] + 127
  return (premultiplied // 255).astype(np.uint8)


def _image_extensions() -> frozenset[str]:
  return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _natural_key(name: str):
  return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def list_frame_files(folder: str) -> list[str]:
  """The image files of `folder` (Pillow's extensions; hidden files skipped) in natural order: 2 before 10.

  Raises FileNotFoundError / NotADirectoryError, or ValueError when it holds fewer than two images.
  """
  if not os.path.exists(folder):
    raise FileNotFoundError(f"frames folder {folder} does not exist")
  if not os.path.isdir(folder):
    raise NotADirectoryError(f"frames folder {folder} is not a folder")
  exts = _image_extensions()
  names = sorted((n for n in os.listdir(folder) if not n.startswith(".") and os.path.splitext(n)[1].lower() in exts
                  and os.path.isfile(os.path.join(folder, n))), key=_natural_key)
  if len(names) < 2:
    raise ValueError(f"frames folder {folder} holds {len(names)} image file(s): interpolation needs at least two")
  return [os.path.join(folder, n) for n in names]


# ----------------------------------------------------------------------------------------------------------------
# Probing videos.


@dataclasses.dataclass(frozen=True)
class AudioTrack:
  index: int  # stream index in the container
  codec: str
  sample_rate: int
  channels: int
  start: Fraction  # seconds, in the file's own clock


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What `probe` learnt about a video file. Times are seconds; rates exact."""
  path: str
  format_name: str  # FFmpeg's demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  stream_index: int
  codec: str  # decoder name, e.g. "h264"
  pix_fmt: str
  width: int  # as displayed: after the rotation
  height: int
  rotation: int  # degrees counter-clockwise applied on read (0, 90, 180, 270)
  has_alpha: bool  # the pixel format has alpha (or a palette, which may hold it)
  first_frame_opaque: bool  # the first frame's alpha is 255 everywhere (True without alpha)
  bits: int  # bits per colour sample
  rate: Fraction  # the constant rate; for a variable-rate stream its mean, num_frames / duration
  constant_rate: bool  # every frame on the grid k / rate (some grid points may lack a frame: missing_frames)
  num_frames: int  # packets of the stream (decoded frames may be fewer if some are corrupt)
  duration: Fraction  # first frame's start to the last frame's end
  time_base: Fraction
  start: Fraction  # the first frame's time in the file's own clock
  min_interval: Fraction  # shortest and longest frame intervals (equal to 1 / rate for constant rate)
  max_interval: Fraction
  last_duration: Fraction
  missing_frames: int  # constant rate: grid points without a frame (AVI drop frames, damaged streams)
  sample_aspect_ratio: Fraction | None  # pixel shape (anamorphic video), carried to the output
  colorspace: int
  color_range: int
  color_primaries: int
  color_trc: int
  audio: tuple[AudioTrack, ...]
  other_streams: tuple[str, ...]  # streams not carried over (subtitles, data), e.g. "subtitle (mov_text)"


def _has_alpha_format(pix_fmt: str) -> bool:
  av = _av()
  try:
    fmt = av.VideoFormat(pix_fmt)
  except (ValueError, av.FFmpegError):
    return False
  return fmt.has_palette or any(c.is_alpha for c in fmt.components)


class _ReadError(ValueError):
  """A ValueError whose message already names the file."""


def _open_input(path: str):
  av = _av()
  check_file(path, "video")
  try:
    return av.open(path, metadata_errors="replace")
  except _av_errors() as e:
    raise ValueError(f"cannot read video {path}: {first_line(e)}") from e


def _video_stream(container, path: str):
  av = _av()
  streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
  if not streams:
    what = "only a cover picture" if container.streams.video else "no video stream"
    raise _ReadError(f"cannot read video {path}: ffmpeg finds {what} in it ({container.format.name})")
  return streams[0]


def _alpha_decoder(stream):
  """A decoder context that reads VP8/VP9 alpha (WebM's alpha_mode): FFmpeg's own VP8/VP9 decoders drop it."""
  av = _av()
  meta = {k.lower(): v for k, v in stream.metadata.items()}
  name = {"vp8": "libvpx", "vp9": "libvpx-vp9"}.get(stream.codec_context.name)
  if meta.get("alpha_mode") != "1" or name is None:
    return None
  try:
    return av.CodecContext.create(name, "r")
  except (ValueError, av.FFmpegError):
    return None


def _decode(container, stream) -> Iterator:
  """Decoded frames of `stream`, through `_alpha_decoder` when the stream carries alpha that way."""
  ctx = _alpha_decoder(stream)
  if ctx is None:
    yield from container.decode(stream)
    return
  for packet in container.demux(stream):
    yield from ctx.decode(packet if packet.size else None)


def _grid_rate(times: Sequence[Fraction], tick: Fraction, rates: Sequence[Fraction | None]) -> Fraction | None:
  """The first rate r that puts every time on its own point of the grid k / r, to within one tick, or None."""
  for rate in rates:
    if not rate or rate <= 0:
      continue
    rate = Fraction(rate)
    slots = [round(t * rate) for t in times]
    if (all(abs(t - Fraction(k) / rate) <= tick for k, t in zip(slots, times))
        and all(b > a for a, b in zip(slots, slots[1:]))):
      return rate
  return None


def probe(path: str) -> VideoInfo:
  """Facts of a video file (module docstring), from one demuxing pass and the first decoded frame.

  Raises FileNotFoundError, or ValueError with one line naming the file when FFmpeg cannot open it, finds no video
  stream, or cannot decode its first frame; or when it has fewer than two frames.
  """
  av = _av()
  container = _open_input(path)
  try:
    stream = _video_stream(container, path)
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    stream_rates = [stream.guessed_rate, stream.base_rate, stream.average_rate]
    stream_index = stream.index
    pts, durations = [], {}
    for packet in container.demux(stream):
      if packet.size == 0:  # the demuxer's final flush packet
        continue
      key = packet.pts if packet.pts is not None else packet.dts
      pts.append(key)
      if key is not None and packet.duration:
        durations[key] = packet.duration
    audio, others = [], []
    for s in container.streams:
      if s.type == "audio" and s.codec_context is not None:
        cc = s.codec_context
        start = Fraction(s.start_time) * Fraction(s.time_base) if s.start_time is not None else Fraction(0)
        audio.append(AudioTrack(s.index, cc.name, cc.sample_rate or 0, cc.channels or 0, start))
      elif s.type not in ("video", "audio"):
        others.append(f"{s.type} ({s.codec_context.name if s.codec_context else 'unknown'})")
      elif s.type == "video" and s.index != stream.index:
        others.append("video (a second video stream or a cover picture)")
    format_name = container.format.name
  except _ReadError:
    raise
  except _av_errors() as e:
    raise ValueError(f"cannot read video {path}: {first_line(e)}") from e
  finally:
    container.close()

  # The first frame: proves the stream decodes, and gives the pixel format, size, rotation and alpha.
  container = _open_input(path)
  try:
    decode_stream = _video_stream(container, path)
    first = next(iter(_decode(container, decode_stream)), None)
    codec = decode_stream.codec_context.name
    sar = decode_stream.codec_context.sample_aspect_ratio
    sar = Fraction(sar) if sar and sar != 1 else None
  except _ReadError:
    raise
  except _av_errors() as e:
    raise ValueError(f"cannot read video {path}: {first_line(e)}") from e
  finally:
    container.close()
  if first is None or not pts:
    raise ValueError(f"cannot read video {path}: its video stream has no frames")
  pix_fmt = first.format.name
  has_alpha = _has_alpha_format(pix_fmt)
  opaque = True
  if has_alpha:
    opaque = bool((first.to_ndarray(format="rgba")[..., 3] == 255).all())
  rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
  if rotation % 90:
    raise ValueError(f"cannot read video {path}: its display rotation is {rotation} degrees (only multiples of 90)")
  w, h = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
  bits = max((c.bits for c in first.format.components), default=8)

  # Timing, from every packet: exact rationals.
  if any(p is None for p in pts):
    rate = Fraction(next((r for r in stream_rates if r), 25))
    logging.warning("%s: its packets carry no timestamps; assuming a constant %s fps", path, format_rate(rate))
    times = [Fraction(k) / rate for k in range(len(pts))]
    start_pts = 0
  else:
    pts = sorted(set(pts))
    start_pts = pts[0]
    times = [(p - start_pts) * tb for p in pts]
  n = len(times)
  if n < 2:
    raise ValueError(f"video {path} has one frame: at least two are needed")
  grid = _grid_rate(times, tb, stream_rates)
  missing = 0
  if grid is not None and (round(times[-1] * grid) + 1 - n) * 10 > round(times[-1] * grid) + 1:
    grid = None  # more than 1 in 10 grid points empty: a variable rate, not a few dropped frames
  if grid is not None:
    rate, constant = grid, True
    last = Fraction(1) / rate
    slots = round(times[-1] * rate) + 1
    missing = slots - n
    duration = Fraction(slots) / rate
    intervals = (last, last * (1 + max(round((b - a) * rate) - 1 for a, b in zip(times, times[1:]))))
    if missing:
      logging.info("%s: %d of %d frames of its %s fps grid are missing: the gaps are interpolated across", path,
                   missing, slots, format_rate(rate))
  else:
    constant = False
    gaps = [b - a for a, b in zip(times, times[1:])]
    last_ticks = durations.get(pts[-1]) if pts[-1] is not None else None
    last = Fraction(last_ticks) * tb if last_ticks else sorted(gaps)[len(gaps) // 2]  # else the median interval
    duration = times[-1] + last
    rate = Fraction(n) / duration
    intervals = (min(gaps), max(gaps))
  return VideoInfo(
      path=path, format_name=format_name, stream_index=stream_index, codec=codec, pix_fmt=pix_fmt, width=w,
      height=h, rotation=rotation, has_alpha=has_alpha, first_frame_opaque=opaque, bits=bits, rate=rate,
      constant_rate=constant, num_frames=n, duration=duration, time_base=tb, start=start_pts * tb,
      min_interval=intervals[0], max_interval=intervals[1], last_duration=last, missing_frames=missing,
      sample_aspect_ratio=sar, colorspace=int(first.colorspace or 0), color_range=int(first.color_range or 0),
      color_primaries=int(first.color_primaries or 0), color_trc=int(first.color_trc or 0),
      audio=tuple(audio), other_streams=tuple(others))


# ----------------------------------------------------------------------------------------------------------------
# Reading videos.


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
    self._container = _open_input(path)
    self._stream = _video_stream(self._container, path)
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
      for frame in _decode(self._container, self._stream):
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
    except _av_errors() as e:  # a stream that breaks off in the middle
      raise ValueError(f"cannot read video {self.path}: {first_line(e)}") from e

  def close(self) -> None:
    # A decoding generator left suspended (a run stopped mid-video) must finish while its container is open: freed
    # later, at interpreter exit, it touches the closed container and crashes the process (SIGSEGV).
    for iterator in self._iterators:
      iterator.close()
    self._iterators.clear()
    self._container.close()


# ----------------------------------------------------------------------------------------------------------------
# Planning and writing videos.

# Encoder options that keep quality close to the input; anything else runs with FFmpeg's defaults.
ENCODER_OPTIONS = {
    "libx264": {"crf": "16"},
    "libx264rgb": {"crf": "16"},
    "libx265": {"crf": "18", "x265-params": "log-level=error"},
    "libvpx": {"crf": "10", "b": "8M"},
    "libvpx-vp9": {"crf": "20", "b": "0"},
    "libaom-av1": {"crf": "20", "b": "0"},
    "libsvtav1": {"crf": "25"},
}
# Encoders with a fixed quantiser instead of rate control: FFmpeg's `-q:v 2`.
_QSCALE_ENCODERS = frozenset({"mpeg4", "mpeg2video", "mpeg1video", "mjpeg", "msmpeg4", "msmpeg4v2", "flv", "h263",
                              "h263p", "wmv1", "wmv2"})
# Encoders that can hold alpha, in the order tried when alpha must be kept and neither the input's codec nor the
# container's default can: lossless where the container takes it, then ProRes 4444, then VP9 (WebM).
_ALPHA_ENCODERS = ("png", "ffv1", "qtrle", "utvideo", "prores_ks", "libvpx-vp9")


@dataclasses.dataclass(frozen=True)
class OutputPlan:
  """A video output that `plan_video_output` has proved FFmpeg writes and reads back."""
  path: str
  format_name: str  # FFmpeg's muxer, e.g. "mp4", "matroska", "gif"
  codec: str  # encoder, e.g. "libx264"
  pix_fmt: str
  options: dict
  alpha: bool  # frames are written with their alpha channel
  audio: tuple[tuple[int, str], ...]  # (input stream index, "copy" or an encoder name)
  notes: tuple[str, ...]  # what the log must say (codec changes, dropped audio, ...)


def output_format_name(path: str) -> str:
  """FFmpeg's muxer for the file name `path` (by its extension), or ValueError naming it."""
  av = _av()

  class _Named(io.BytesIO):
    name = os.path.basename(path)

  try:
    with av.open(_Named(), "w") as c:  # guesses from `name`; writes nothing anywhere
      return c.format.name
  except _av_errors() as e:
    ext = os.path.splitext(path)[1] or "a name without an extension"
    raise ValueError(f"--output {path}: ffmpeg knows no video container for {ext} ({first_line(e)}); use .mp4, "
                     ".mkv, .mov, .webm, .gif, ... or a folder") from e


def _encoder(name: str):
  av = _av()
  try:
    return av.Codec(name, "w")
  except (ValueError, av.FFmpegError):
    return None


def _pix_fmt_candidates(encoder, source_pix_fmt: str | None, alpha: bool, width: int, height: int) -> list[str]:
  supported = [f.name for f in (encoder.video_formats or [])]
  if encoder.name == "gif":
    return ["pal8"]
  if not supported:  # rawvideo and the like take anything
    return ["rgba" if alpha else "rgb24"]
  prefs = []
  if alpha:
    prefs += [source_pix_fmt] if source_pix_fmt and _has_alpha_format(source_pix_fmt) else []
    prefs += [f for f in supported if _has_alpha_format(f) and not _av().VideoFormat(f).has_palette]
  else:
    prefs += [source_pix_fmt] if source_pix_fmt and not _has_alpha_format(source_pix_fmt) else []
    odd = width % 2 or height % 2
    prefs += ["yuv444p", "yuv420p"] if odd else ["yuv420p", "yuv444p"]
    prefs += ["rgb24", "bgr0", "gbrp", "yuvj420p", "yuvj444p"]
    prefs += [f for f in supported if not _has_alpha_format(f)]
  out = []
  for f in prefs:
    if f in supported and f not in out:
      out.append(f)
  return out[:4]


def _configure_video_stream(stream, codec_name, width, height, pix_fmt, time_base, rate, colour, sar=None):
  cc = stream.codec_context
  stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
  if sar:
    cc.sample_aspect_ratio = sar
  cc.time_base = time_base
  stream.time_base = time_base
  if rate:
    cc.framerate = rate
  if codec_name in _QSCALE_ENCODERS:
    cc.qscale = True
    cc.global_quality = 2 * 118  # FF_QP2LAMBDA * 2, what `-q:v 2` sets
  if colour:
    for key, value in colour.items():
      try:
        setattr(cc, key, value)
      except (AttributeError, ValueError, TypeError):
        pass


def _colour_tags(source: VideoInfo | None, pix_fmt: str) -> dict:
  av = _av()
  if source is None or av.VideoFormat(pix_fmt).is_rgb or pix_fmt in ("pal8", "gray"):
    return {}
  tags = {}
  for key in ("colorspace", "color_range", "color_primaries", "color_trc"):
    value = getattr(source, key)
    if value and not (key == "colorspace" and value == 0):
      tags[key] = value
  return tags


def _dst_colour(tags: dict) -> dict:
  kw = {}
  if tags.get("colorspace") not in (None, 0, 2):
    kw["dst_colorspace"] = tags["colorspace"]
  if tags.get("color_range"):
    kw["dst_color_range"] = tags["color_range"]
  return kw


def _black(width, height, alpha):
  return np.zeros((height, width, 4 if alpha else 3), np.uint8)


def _to_video_frame(image: np.ndarray, pix_fmt: str, colour_kw: dict):
  av = _av()
  if pix_fmt == "pal8":  # GIF: an adaptive palette per frame (median cut), dithered
    indexed = Image.fromarray(np.ascontiguousarray(image[..., :3])).quantize(256, dither=Image.Dither.FLOYDSTEINBERG)
    rgb = np.asarray(indexed.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0] = 255
    palette[:len(rgb), 1:] = rgb
    return av.VideoFrame.from_ndarray((np.asarray(indexed, np.uint8), palette), format="pal8")
  frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgba" if image.shape[-1] == 4 else "rgb24")
  return frame.reformat(format=pix_fmt, **colour_kw)


def _preflight(fmt_name, codec_name, pix_fmt, width, height, time_base, rate, alpha, source, audio
               ) -> tuple[str | None, Fraction | None]:
  """Writes one black frame (and the audio streams' headers) to memory and decodes it back.

  Returns (None, the time base the container stores) or (the error, None).
  """
  av = _av()
  buf = io.BytesIO()
  src = None
  try:
    src = _open_input(source.path) if audio else None
    with av.open(buf, "w", format=fmt_name) as out:
      stream = out.add_stream(codec_name, rate=rate, options=dict(ENCODER_OPTIONS.get(codec_name, {})))
      tags = _colour_tags(source, pix_fmt)
      _configure_video_stream(stream, codec_name, width, height, pix_fmt, time_base, rate, tags)
      for index, mode in audio:
        _add_audio_stream(out, src.streams[index], mode)
      frame = _to_video_frame(_black(width, height, alpha), pix_fmt, _dst_colour(tags))
      frame.pts, frame.time_base = 0, time_base
      for packet in stream.encode(frame):
        out.mux(packet)
      for packet in stream.encode(None):
        out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as back:
      stream_back = back.streams.video[0]
      if not any(True for _ in back.decode(stream_back)):
        return "ffmpeg cannot read the frame back", None
      stored = Fraction(stream_back.time_base) if stream_back.time_base else None
  except _av_errors() as e:
    return first_line(e), None
  finally:
    if src is not None:
      src.close()
  return None, stored


def _add_audio_stream(out, in_stream, mode: str):
  if mode == "copy":
    stream = out.add_stream_from_template(in_stream)
  else:
    av = _av()
    enc = av.Codec(mode, "w")
    rate = in_stream.codec_context.sample_rate
    if enc.audio_rates and rate not in enc.audio_rates:
      rate = max(enc.audio_rates)
    stream = out.add_stream(mode, rate=rate)
    layout = in_stream.codec_context.layout
    if layout is not None and (layout.nb_channels or 0) <= 2:
      stream.codec_context.layout = layout.name
    elif layout is not None:
      stream.codec_context.layout = "stereo"
    if enc.audio_formats:
      stream.codec_context.format = enc.audio_formats[0].name
  language = in_stream.metadata.get("language")
  if language:
    stream.metadata["language"] = language
  return stream


def plan_video_output(path: str, width: int, height: int, *, time_base: Fraction, rate: Fraction | None = None,
                      source: VideoInfo | None = None, alpha: bool = False, alpha_required: bool = False,
                      codec: str | None = None, audio: bool = True) -> OutputPlan:
  """Chooses and proves the encoder, pixel format and audio handling of a video output (module docstring).

  Args:
    path: the output file; its extension picks the container (FFmpeg's guess).
    width, height: the frames' size.
    time_base: the unit of the output timestamps (1 / rate for a constant rate).
    rate: the output frame rate, or None for variable-rate output.
    source: the input video, whose codec family is preferred and whose audio is carried over.
    alpha: the frames have alpha, kept when the input's codec family or the container's default can hold it.
    alpha_required: also try other encoders that hold alpha (png, ffv1, qtrle, utvideo, prores_ks, libvpx-vp9)
      before giving up alpha. If none can, the plan has alpha=False and a note; the caller decides whether that is
      acceptable.
    codec: an encoder (or codec) name that must be used, e.g. "libx264", "ffv1", "prores_ks".
    audio: carry the source's audio tracks over.

  Raises:
    ValueError: one line, when no encoder works in this container, or `codec` is unknown or rejected.
  """
  fmt_name = output_format_name(path)
  av = _av()
  notes = []
  with av.open(io.BytesIO(), "w", format=fmt_name) as probe_out:
    default_video = probe_out.default_video_codec
    default_audio = probe_out.default_audio_codec
  if codec:
    enc = _encoder(codec)
    if enc is None or enc.type != "video":
      raise ValueError(f"--codec {codec}: ffmpeg has no video encoder of that name here")
    candidates = [enc.name]
  else:
    candidates = []
    source_encoder = _encoder(source.codec) if source else None
    if source_encoder is not None and source_encoder.type == "video":
      candidates.append(source_encoder.name)
    default_encoder = _encoder(default_video) if default_video and default_video != "none" else None
    if default_encoder is not None and default_encoder.name not in candidates:
      candidates.append(default_encoder.name)
  errors = []
  chosen = None
  for keep_alpha in ([True, False] if alpha else [False]):
    names = list(candidates)
    if keep_alpha and alpha_required and not codec:
      names += [n for n in _ALPHA_ENCODERS if n not in names and _encoder(n) is not None]
    for name in names:
      enc = _encoder(name)
      if keep_alpha and not any(_has_alpha_format(f.name) and not av.VideoFormat(f.name).has_palette
                                for f in (enc.video_formats or [])):
        continue
      for pix_fmt in _pix_fmt_candidates(enc, source.pix_fmt if source else None, keep_alpha, width, height):
        err, stored_tb = _preflight(fmt_name, name, pix_fmt, width, height, time_base, rate, keep_alpha, source, ())
        if err is None:
          chosen = (name, pix_fmt, keep_alpha)
          break
        errors.append(f"{name}/{pix_fmt}: {err}")
      if chosen:
        break
    if chosen:
      break
  if chosen is None:
    detail = "; ".join(errors[:3]) or "no encoder"
    raise ValueError(f"cannot write a {width}x{height} video to {path} ({fmt_name}): {detail}")
  name, pix_fmt, kept_alpha = chosen
  failed = [e for e in errors if e.startswith(f"{name}/")]
  if failed:
    notes.append(f"{name} refused {failed[0].split(':')[0].split('/')[1]} for {width}x{height} frames: writing "
                 f"{pix_fmt}")
  if source and name != (_encoder(source.codec).name if _encoder(source.codec) else None) and not codec:
    notes.append(f"{fmt_name} does not take {source.codec} from {os.path.basename(source.path)}: writing {name}")
  if alpha and not kept_alpha:
    notes.append(f"{name} in {fmt_name} holds no alpha: the alpha channel is not written")
  if kept_alpha and fmt_name == "mp4" and not codec:
    # MP4's usual codecs (H.264, HEVC, AV1) hold no alpha. PNG or ProRes in MP4 is read back by ffmpeg, but browsers
    # and most players do not play it.
    notes.append(f"alpha kept in MP4 with {name}, which few players play (write .mov, .mkv or .webm, or pass "
                 "--alpha=drop for an H.264 MP4 without alpha)")
  if stored_tb and (time_base / stored_tb).denominator != 1:
    notes.append(f"{fmt_name} stores times in units of {stored_tb} s: frame times are rounded to it, so the rate "
                 f"read back from {os.path.basename(path)} may differ from {format_rate(rate) if rate else 'exact'}")

  audio_plan = []
  if source and source.audio:
    if not audio:
      notes.append(f"audio of {os.path.basename(source.path)} dropped (--no_audio)")
    else:
      for track in source.audio:
        modes = ["copy"]
        enc = _encoder(default_audio) if default_audio and default_audio != "none" else None
        if enc is not None and enc.type == "audio":
          modes.append(enc.name)
        for mode in modes:
          trial = tuple(audio_plan) + ((track.index, mode),)
          err, _ = _preflight(fmt_name, name, pix_fmt, width, height, time_base, rate, kept_alpha, source, trial)
          if err is None:
            audio_plan.append((track.index, mode))
            if mode != "copy":
              notes.append(f"{fmt_name} does not take {track.codec} audio: audio track {track.index} re-encoded "
                           f"to {mode}")
            break
        else:
          notes.append(f"{fmt_name} holds no {track.codec} audio (nor re-encoded audio): audio track "
                       f"{track.index} dropped")
  if source and source.other_streams:
    notes.append(f"not carried over from {os.path.basename(source.path)}: {', '.join(source.other_streams)}")
  return OutputPlan(path=path, format_name=fmt_name, codec=name, pix_fmt=pix_fmt,
                    options=dict(ENCODER_OPTIONS.get(name, {})), alpha=kept_alpha, audio=tuple(audio_plan),
                    notes=tuple(notes))


class VideoWriter:
  """Writes frames with exact timestamps to `plan.path` through a temporary file, with the source's audio.

  write(image, time) takes uint8 (H, W, 3) or (H, W, 4) frames in display order, `time` a Fraction of seconds
  from the first output frame (a multiple of `time_base`); each frame lasts until the next one, and the last until
  `end` given to commit(end). Audio packets are interleaved by time. Call commit() to finish and rename, abort() to
  delete the temporary file; as a context manager, an exception aborts.
  """

  def __init__(self, plan: OutputPlan, width: int, height: int, time_base: Fraction, rate: Fraction | None = None,
               source: VideoInfo | None = None):
    av = _av()
    self.plan, self.path, self.time_base = plan, plan.path, Fraction(time_base)
    self.count = 0
    folder = os.path.dirname(os.path.abspath(plan.path))
    os.makedirs(folder, exist_ok=True)
    fd, self.tmp = tempfile.mkstemp(prefix=".tmp_", suffix=os.path.splitext(plan.path)[1], dir=folder)
    os.close(fd)
    self._src = None
    try:
      self._out = av.open(self.tmp, "w", format=plan.format_name)
      self._stream = self._out.add_stream(plan.codec, rate=rate, options=dict(plan.options))
      tags = _colour_tags(source, plan.pix_fmt)
      sar = source.sample_aspect_ratio if source is not None else None
      if sar and source.rotation in (90, 270):
        sar = 1 / sar
      _configure_video_stream(self._stream, plan.codec, width, height, plan.pix_fmt, self.time_base, rate, tags, sar)
      self._colour_kw = _dst_colour(tags)
      self._audio = {}
      if plan.audio:
        self._src = _open_input(source.path)
        for index, mode in plan.audio:
          self._audio[index] = (_add_audio_stream(self._out, self._src.streams[index], mode), mode)
        # Audio and video share one clock: the earlier of their starts becomes 0 (as ffmpeg does).
        origin = min([source.start] + [t.start for t in source.audio if t.index in self._audio])
        self._video_offset = source.start - origin
        self._origin = origin
        self._audio_packets = self._src.demux([self._src.streams[i] for i in self._audio])
        self._next_audio = None
      else:
        self._video_offset = Fraction(0)
      self._pts: list[int] = []  # written video pts, ascending
      self._pending = []  # encoded video packets waiting for their duration (the next frame's pts)
      self._end_pts = None
      self._closed = False
    except BaseException as e:
      self._cleanup()
      if isinstance(e, _av_errors()):
        raise ValueError(f"cannot write {plan.path}: {first_line(e)}") from e
      raise

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *exc):
    if exc_type is not None:
      self.abort()

  def write(self, image: np.ndarray, time: Fraction) -> None:
    pts = (Fraction(time) + self._video_offset) / self.time_base
    pts = round(pts)
    if self._pts and pts <= self._pts[-1]:
      raise ValueError(f"{self.path}: frame times must increase (time {time} after {self._pts[-1] * self.time_base})")
    frame = _to_video_frame(image if self.plan.alpha else image[..., :3], self.plan.pix_fmt, self._colour_kw)
    frame.pts, frame.time_base = pts, self.time_base
    self._pts.append(pts)
    self._mux_audio(until=pts * self.time_base)
    self._encode(frame)
    self.count += 1

  def _encode(self, frame) -> None:
    try:
      self._pending.extend(self._stream.encode(frame))
      self._mux_ready()
    except _av_errors() as e:
      raise ValueError(f"writing {self.path} failed: {first_line(e)}") from e

  def _mux_ready(self, final: bool = False) -> None:
    import bisect  # pylint: disable=g-import-not-at-top
    keep = []
    for packet in self._pending:
      i = bisect.bisect_right(self._pts, packet.pts) if packet.pts is not None else 0
      if i < len(self._pts):
        packet.duration = self._pts[i] - packet.pts
      elif final and self._end_pts is not None and packet.pts is not None:
        packet.duration = max(self._end_pts - packet.pts, 1)
      elif not final:
        keep.append(packet)
        continue
      self._out.mux(packet)
    self._pending = keep

  def _mux_audio(self, until: Fraction | None) -> None:
    """Muxes source audio up to `until` (seconds on the output clock; None: all of it)."""
    if not self._audio:
      return
    while True:
      packet = self._next_audio
      if packet is None:
        packet = next(self._audio_packets, None)
        if packet is None:
          return
        if packet.size == 0 or packet.dts is None:
          continue
      tb = Fraction(packet.time_base)
      time = Fraction(packet.pts if packet.pts is not None else packet.dts) * tb - self._origin
      if until is not None and time > until:
        self._next_audio = packet
        return
      self._next_audio = None
      stream, mode = self._audio[packet.stream_index if hasattr(packet, "stream_index") else packet.stream.index]
      shift = round(self._origin / tb)
      if mode == "copy":
        if packet.pts is not None:
          packet.pts -= shift
        packet.dts -= shift
        packet.stream = stream
        self._out.mux(packet)
      else:
        for frame in packet.decode():
          if frame.pts is not None:
            frame.pts -= shift
          for out_packet in stream.encode(frame):
            self._out.mux(out_packet)

  def commit(self, end: Fraction | None = None) -> None:
    """Finishes the file (the last frame lasts until `end`, seconds) and renames it onto the destination."""
    try:
      if end is not None:
        self._end_pts = round((Fraction(end) + self._video_offset) / self.time_base)
      elif self._pts:
        self._end_pts = self._pts[-1] + (self._pts[-1] - self._pts[-2] if len(self._pts) > 1 else 1)
      self._pending.extend(self._stream.encode(None))
      self._mux_ready(final=True)
      self._mux_audio(until=None)
      for stream, mode in self._audio.values():
        if mode != "copy":
          for packet in stream.encode(None):
            self._out.mux(packet)
      self._out.close()
      self._closed = True
    except _av_errors() as e:
      self.abort()
      raise ValueError(f"writing {self.path} failed: {first_line(e)}") from e
    except BaseException:
      self.abort()
      raise
    self._close_source()
    os.chmod(self.tmp, 0o666 & ~_UMASK)  # mkstemp made it private; the video gets the mode of any new file
    replaced = os.path.exists(self.path)
    os.replace(self.tmp, self.path)
    if replaced:
      logging.info("%s: replaced the earlier file of that name", self.path)

  def abort(self) -> None:
    self._cleanup()

  def _close_source(self) -> None:
    # The audio demuxer, suspended when a run stops early, ends before its container closes (see VideoReader.close).
    packets, self._audio_packets = getattr(self, "_audio_packets", None), None
    if packets is not None and hasattr(packets, "close"):
      packets.close()
    if self._src is not None:
      self._src.close()

  def _cleanup(self) -> None:
    out = getattr(self, "_out", None)
    if out is not None and not getattr(self, "_closed", False):
      try:
        out.close()
      except Exception:  # pylint: disable=broad-except  (the first error is the one to report)
        pass
    try:
      self._close_source()
    except Exception:  # pylint: disable=broad-except
      pass
    if os.path.exists(self.tmp):
      os.remove(self.tmp)


def check_writable(path: str) -> None:
  """Raises one-line PermissionError / NotADirectoryError unless a file can be created at `path` (a file or folder
  to be created): creates and removes a probe file in its nearest existing folder."""
  folder = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(folder):
    folder = os.path.dirname(folder)
  if not os.path.isdir(folder):
    raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
  try:
    fd, probe_path = tempfile.mkstemp(prefix=".write_probe_", dir=folder)
    os.close(fd)
    os.remove(probe_path)
  except OSError as e:
    raise PermissionError(f"cannot write {path}: {folder} is not writable ({e.strerror or e})") from e


# ----------------------------------------------------------------------------------------------------------------
# Folders of frames.


class StagedFolder:
  """A folder of output frames built in a hidden sibling folder and swapped into place by `commit`.

  `check` (also run by the constructor) refuses, with one ValueError, a destination that is a file or a folder
  holding anything whose name does not match `own_names` (a regex of the names this tool writes): only an earlier
  run's frames are ever replaced, and all of them, so the folder never mixes stale frames with new ones.
  """

  def __init__(self, folder: str, own_names: str):
    self.folder = os.path.abspath(folder)
    self.replaced = self.check(self.folder, own_names)
    parent = os.path.dirname(self.folder)
    os.makedirs(parent, exist_ok=True)
    self.stage = tempfile.mkdtemp(prefix=f".tmp_{os.path.basename(self.folder)}_", dir=parent)
    self.count = 0

  @staticmethod
  def check(folder: str, own_names: str) -> int:
    """The number of earlier frames `folder` holds (0 if absent); ValueError if it holds anything else."""
    if not os.path.exists(folder):
      return 0
    if not os.path.isdir(folder):
      raise ValueError(f"--output {folder} is an existing file; frames go to a folder: name a new or empty one")
    names = os.listdir(folder)
    foreign = sorted(n for n in names if not re.fullmatch(own_names, n))
    if foreign:
      shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
      raise ValueError(f"--output {folder} holds {len(foreign)} file(s) this tool did not write ({shown}): name a new "
                       "or empty folder (an earlier run's frames alone are replaced)")
    return len(names)

  def path(self, name: str) -> str:
    return os.path.join(self.stage, name)

  def write_png(self, name: str, image: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(image)).save(self.path(name), format="PNG")
    self.count += 1

  def commit(self) -> None:
    os.chmod(self.stage, 0o777 & ~_UMASK)
    old = None
    if os.path.exists(self.folder):
      old = tempfile.mkdtemp(prefix=f".old_{os.path.basename(self.folder)}_", dir=os.path.dirname(self.folder))
      os.rmdir(old)
      os.rename(self.folder, old)
    os.rename(self.stage, self.folder)
    if old is not None:
      shutil.rmtree(old, ignore_errors=True)
      if self.replaced:
        logging.info("%s: replaced the %d frame(s) of an earlier run", self.folder, self.replaced)

  def abort(self) -> None:
    shutil.rmtree(self.stage, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------
# Outputs of a sequence of frames: a video file or a folder of PNGs, checked before any model loads.

# Names the inference tools write into a frames folder: a folder holding only these is an earlier run's output.
OWN_FRAME_NAMES = r"(frame_\d{6,}|t\d\.\d{4})\.png"


def output_is_video(output: str) -> bool:
  """A video file (a name with an extension that is not an existing folder), else a folder of frames."""
  if output.endswith(("/", os.sep)) or os.path.isdir(output):
    return False
  return bool(os.path.splitext(output)[1])


def check_not_an_input(output: str, inputs: Sequence[str]) -> None:
  """ValueError if writing `output` (a file, or a folder replaced whole) would replace or delete one of `inputs`."""
  out = os.path.realpath(output)
  for path in inputs:
    real = os.path.realpath(path)
    if real == out or (os.path.exists(output) and os.path.exists(path) and os.path.samefile(output, path)):
      raise ValueError(f"--output {output} is the input {path}: an output never replaces an input; choose another "
                       "name")
    if os.path.commonpath([out, real]) == out:
      raise ValueError(f"--output {output} is a folder holding the input {path}: it would be replaced; choose "
                       "another folder")


def plan_output(output: str, width: int, height: int, *, time_base: Fraction, rate: Fraction | None,
                inputs: Sequence[str] = (), source: VideoInfo | None = None, alpha: bool = False,
                alpha_required: bool = False, codec: str | None = None, audio: bool = True,
                log_notes: bool = True) -> OutputPlan | None:
  """Every check of a sequence output before any frame is made; the OutputPlan of a video, None for a folder.

  Refuses (one-line ValueError / PermissionError) an output that would replace one of `inputs`, an unwritable
  place, a folder holding files the tools did not write (`StagedFolder.check`), a name FFmpeg takes for one image
  (.png, .jpg), and a video that no encoder of the container can write (`plan_video_output`, whose other
  arguments these are). Logs the plan's notes unless `log_notes` is False (a caller with checks of its own to make
  first, so that a refusal is not preceded by notes about a video that will not be written).
  """
  check_not_an_input(output, inputs)
  check_writable(output)
  if not output_is_video(output):
    if codec:
      raise ValueError(f"--codec applies to a video output; {output} is a folder of PNGs")
    StagedFolder.check(os.path.abspath(output), OWN_FRAME_NAMES)
    return None
  if output_format_name(output).startswith("image2"):
    raise ValueError(f"--output {output} names one image, but a video gives many frames: name a video file "
                     "(.mp4, .mkv, .mov, .webm, .gif, ...) or a folder for PNGs")
  plan = plan_video_output(output, width, height, time_base=time_base, rate=rate, source=source, alpha=alpha,
                           alpha_required=alpha_required, codec=codec, audio=audio)
  if log_notes:
    for note in plan.notes:
      logging.info("%s", note)
  return plan


class FolderSink:
  """Frames as frame_000000.png, frame_000001.png, ... in a StagedFolder (swapped in whole by commit)."""

  def __init__(self, folder: str):
    self.staged = StagedFolder(folder, OWN_FRAME_NAMES)
    self.count = 0

  def write(self, image: np.ndarray, time: Fraction | None = None) -> None:
    del time  # the names give the order
    self.staged.write_png(f"frame_{self.count:06d}.png", image)
    self.count += 1

  def commit(self, end: Fraction | None = None) -> None:
    del end
    self.staged.commit()

  def abort(self) -> None:
    self.staged.abort()


def open_sink(output: str, plan: OutputPlan | None, width: int, height: int, *, time_base: Fraction,
              rate: Fraction | None, source: VideoInfo | None = None):
  """The writer of `plan_output`'s result: a VideoWriter for a plan, a FolderSink for None. Both have
  write(image, time), commit(end) and abort(); times are Fractions of seconds (see VideoWriter)."""
  if plan is None:
    return FolderSink(output)
  return VideoWriter(plan, width, height, time_base, rate, source=source)
