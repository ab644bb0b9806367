r"""Probing a video file with PyAV: its container, video stream, audio tracks and exact timing (`probe`).

The lower helpers here (opening a container, finding its video stream, decoding it, alpha and rates) are shared by
the reader and the writer. PyAV loads FFmpeg's libraries (libavformat, libavcodec, libswscale) only when a video is
used (`load_av`). What a file is, is FFmpeg's call: any container it probes as holding a video stream (mp4, mkv, mov,
webm, avi, ts/m2ts, flv, 3gp, m4v, an animated gif, ...) is read; no extension list.

Timing. A time is an exact `fractions.Fraction` of seconds from the first video frame; a rate is an exact rational
from the stream (24000/1001, never 23.976). `probe` demuxes every video packet once (decoding only the first frame)
and calls the stream constant-rate when every timestamp sits on the grid k / r of a stream rate r (r_frame_rate,
else avg_frame_rate), to within one tick of the stream's time base, and at most 1 in 10 grid points has no frame
(dropped frames, as AVI stores them): then each frame is at exactly its k / r, the gaps are interpolated across, and
the last frame lasts 1 / r. Otherwise the stream is variable-rate (VFR) and frames keep their own timestamps; the
last lasts its packet duration. `VideoInfo.duration` is the first frame's start to the last frame's end.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Callable, Iterator, Sequence

from absl import logging

from jaxvfi import utils
from jaxvfi.video_io.images import check_file


def load_av():
  """The `av` module (PyAV), imported on first use."""
  import av  # pylint: disable=g-import-not-at-top  (PyAV loads FFmpeg's libraries: only when a video is used)
  return av


def av_errors() -> tuple[type[BaseException], ...]:
  """The errors PyAV raises for a file or stream it cannot handle: caught to give one line naming the file."""
  av = load_av()
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


def has_alpha_format(pix_fmt: str) -> bool:
  """Whether FFmpeg's pixel format `pix_fmt` has an alpha component or a palette (which may hold alpha)."""
  av = load_av()
  try:
    fmt = av.VideoFormat(pix_fmt)
  except (ValueError, av.FFmpegError):
    return False
  return fmt.has_palette or any(c.is_alpha for c in fmt.components)


class _ReadError(ValueError):
  """A ValueError whose message already names the file."""


def open_input(path: str):
  """The PyAV input container of `path`; FileNotFoundError, or ValueError naming the file if FFmpeg cannot open it."""
  av = load_av()
  check_file(path, "video")
  try:
    return av.open(path, metadata_errors="replace")
  except av_errors() as e:
    raise ValueError(f"cannot read video {path}: {utils.error_reason(e)}") from e


def video_stream(container, path: str):
  """The first video stream of `container` that is not a cover picture; ValueError naming `path` if none."""
  av = load_av()
  streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
  if not streams:
    what = "only a cover picture" if container.streams.video else "no video stream"
    raise _ReadError(f"cannot read video {path}: ffmpeg finds {what} in it ({container.format.name})")
  return streams[0]


def _alpha_decoder(stream):
  """A decoder context that reads VP8/VP9 alpha (WebM's alpha_mode): FFmpeg's own VP8/VP9 decoders drop it."""
  av = load_av()
  meta = {k.lower(): v for k, v in stream.metadata.items()}
  name = {"vp8": "libvpx", "vp9": "libvpx-vp9"}.get(stream.codec_context.name)
  if meta.get("alpha_mode") != "1" or name is None:
    return None
  try:
    return av.CodecContext.create(name, "r")
  except (ValueError, av.FFmpegError):
    return None


def packet_decoder(stream) -> Callable[..., list]:
  """The decoding of one demuxed packet of `stream` into its frames (a list; an empty packet flushes the decoder):
  through `_alpha_decoder` when the stream carries alpha that way, else the stream's own decoder."""
  ctx = _alpha_decoder(stream)
  if ctx is None:
    return stream.decode  # what container.decode(stream) calls for each packet
  return lambda packet: ctx.decode(packet if packet.size else None)


def decode(container, stream) -> Iterator:
  """Decoded frames of `stream`, in decoding order, through `packet_decoder`."""
  decode_packet = packet_decoder(stream)
  for packet in container.demux(stream):
    yield from decode_packet(packet)


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
  container = open_input(path)
  try:
    stream = video_stream(container, path)
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    stream_rates = [stream.guessed_rate, stream.base_rate, stream.average_rate]
    stream_index = stream.index
    # The first frame, decoded in the same pass: proves the stream decodes, and gives the pixel format, size,
    # rotation and alpha.
    decode_packet = packet_decoder(stream)
    first = None
    pts, durations = [], {}
    for packet in container.demux(stream):
      if first is None:
        first = next(iter(decode_packet(packet)), None)
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
    codec = stream.codec_context.name
    sar = stream.codec_context.sample_aspect_ratio
    sar = Fraction(sar) if sar and sar != 1 else None
  except _ReadError:
    raise
  except av_errors() as e:
    raise ValueError(f"cannot read video {path}: {utils.error_reason(e)}") from e
  finally:
    container.close()
  if first is None or not pts:
    raise ValueError(f"cannot read video {path}: its video stream has no frames")
  pix_fmt = first.format.name
  has_alpha = has_alpha_format(pix_fmt)
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

