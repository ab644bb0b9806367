"""Writing videos: choosing and proving the encoder, pixel format and audio handling (`plan_video_output`), then
encoding frames with exact timestamps and copying the source's audio (`VideoWriter`).

`plan_video_output` chooses what to write, before any frame exists, and proves it: for each candidate video encoder
(a `codec` the caller names; else the input's codec family, then the output container's default) and pixel format
(the input's, one with alpha when alpha must be kept, yuv420p, yuv444p for odd sizes, ...), it writes one frame of
the real size into memory with the real container and reads it back; the first that FFmpeg both writes and reads
wins. Audio tracks are copied packet by packet (not re-encoded) when that works, else re-encoded to the container's
default audio codec, else dropped (GIF holds no audio); every such choice is a note to log. An impossible output is
one ValueError naming it. `VideoWriter` then writes to a temporary file beside the destination and renames it onto
the destination on `commit`, so a failed or interrupted run leaves neither a half-written video nor a temporary file.
Colour: frames are converted to and from RGB with the input's colour matrix and range, and the output is tagged with
them.
"""
from __future__ import annotations

import bisect
import dataclasses
from fractions import Fraction
import io
import os
import tempfile

from absl import logging
import numpy as np
from PIL import Image

from jaxvfi import utils
from jaxvfi.video_io.probe import av_errors
from jaxvfi.video_io.probe import format_rate
from jaxvfi.video_io.probe import has_alpha_format
from jaxvfi.video_io.probe import load_av
from jaxvfi.video_io.probe import open_input
from jaxvfi.video_io.probe import VideoInfo


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
ALPHA_ENCODERS = ("png", "ffv1", "qtrle", "utvideo", "prores_ks", "libvpx-vp9")


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
  av = load_av()

  class _Named(io.BytesIO):
    name = os.path.basename(path)

  try:
    with av.open(_Named(), "w") as c:  # guesses from `name`; writes nothing anywhere
      return c.format.name
  except av_errors() as e:
    ext = os.path.splitext(path)[1] or "a name without an extension"
    raise ValueError(f"--output {path}: ffmpeg knows no video container for {ext} ({utils.error_reason(e)}); use .mp4, "
                     ".mkv, .mov, .webm, .gif, ... or a folder") from e


def _encoder(name: str):
  av = load_av()
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
    prefs += [source_pix_fmt] if source_pix_fmt and has_alpha_format(source_pix_fmt) else []
    prefs += [f for f in supported if has_alpha_format(f) and not load_av().VideoFormat(f).has_palette]
  else:
    prefs += [source_pix_fmt] if source_pix_fmt and not has_alpha_format(source_pix_fmt) else []
    odd = width % 2 or height % 2
    prefs += ["yuv444p", "yuv420p"] if odd else ["yuv420p", "yuv444p"]
    prefs += ["rgb24", "bgr0", "gbrp", "yuvj420p", "yuvj444p"]
    prefs += [f for f in supported if not has_alpha_format(f)]
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
  av = load_av()
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
  av = load_av()
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
  av = load_av()
  buf = io.BytesIO()
  src = None
  try:
    src = open_input(source.path) if audio else None
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
  except av_errors() as e:
    return utils.error_reason(e), None
  finally:
    if src is not None:
      src.close()
  return None, stored


def _add_audio_stream(out, in_stream, mode: str):
  if mode == "copy":
    stream = out.add_stream_from_template(in_stream)
  else:
    av = load_av()
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
  av = load_av()
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
      names += [n for n in ALPHA_ENCODERS if n not in names and _encoder(n) is not None]
    for name in names:
      enc = _encoder(name)
      if keep_alpha and not any(has_alpha_format(f.name) and not av.VideoFormat(f.name).has_palette
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


def check_frame_size(output: str, image: np.ndarray, width: int, height: int) -> None:
  """One ValueError when a frame is not the planned width x height (a sink never rescales a frame to fit)."""
  if tuple(np.shape(image)[:2]) != (height, width):
    raise ValueError(f"{output}: a {np.shape(image)[1]}x{np.shape(image)[0]} frame does not match the planned "
                     f"{width}x{height} output (frames of one output must share one size)")


class VideoWriter:
  """Writes frames with exact timestamps to `plan.path` through a temporary file, with the source's audio.

  write(image, time) takes uint8 (H, W, 3) or (H, W, 4) frames in display order, `time` a Fraction of seconds
  from the first output frame (a multiple of `time_base`); each frame lasts until the next one, and the last until
  `end` given to commit(end). Audio packets are interleaved by time. Call commit() to finish and rename, abort() to
  delete the temporary file; as a context manager, an exception aborts.
  """

  def __init__(self, plan: OutputPlan, width: int, height: int, time_base: Fraction, rate: Fraction | None = None,
               source: VideoInfo | None = None):
    av = load_av()
    self.plan, self.path, self.time_base = plan, plan.path, Fraction(time_base)
    self.count = 0
    folder = os.path.dirname(os.path.abspath(plan.path))
    os.makedirs(folder, exist_ok=True)
    self.width, self.height = width, height
    utils.remove_stale_temps(plan.path)
    fd, self.tmp = tempfile.mkstemp(prefix=utils.temp_prefix(plan.path), suffix=os.path.splitext(plan.path)[1],
                                    dir=folder)
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
        self._src = open_input(source.path)
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
      if isinstance(e, av_errors()):
        raise ValueError(f"cannot write {plan.path}: {utils.error_reason(e)}") from e
      raise

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *exc):
    if exc_type is not None:
      self.abort()

  def write(self, image: np.ndarray, time: Fraction) -> None:
    check_frame_size(self.path, image, self.width, self.height)
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
    except av_errors() as e:
      raise ValueError(f"writing {self.path} failed: {utils.error_reason(e)}") from e

  def _mux_ready(self, final: bool = False) -> None:
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
    except av_errors() as e:
      self.abort()
      raise ValueError(f"writing {self.path} failed: {utils.error_reason(e)}") from e
    except BaseException:
      self.abort()
      raise
    self._close_source()
    os.chmod(self.tmp, 0o666 & ~utils.UMASK)  # mkstemp made it private; the video gets the mode of any new file
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

