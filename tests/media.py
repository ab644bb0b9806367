"""Tiny videos written and read back with raw PyAV, independently of `jaxvfi.video_io` (the code under test)."""
from __future__ import annotations

from fractions import Fraction
import os

import av
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared sample inputs: beside the clone in CI (../shared/cases), elsewhere via JAXVFI_SHARED_CASES; may be absent.
SHARED_CASES = os.environ.get("JAXVFI_SHARED_CASES", os.path.join(ROOT, "..", "shared", "cases"))


def frames_rgb(n: int, h: int = 32, w: int = 48, seed: int = 0, step: int = 4) -> list[np.ndarray]:
  """n random RGB frames whose values are multiples of `step` (blends at t = k/step stay integers)."""
  rng = np.random.default_rng(seed)
  return [(rng.integers(0, 256 // step, (h, w, 3)) * step).astype(np.uint8) for _ in range(n)]


def encode(path, frames, rate=Fraction(24), pts=None, time_base=None, codec="libx264", pix_fmt="yuv420p",
           audio_seconds=None, audio_codec="aac", options=None, fmt=None, display_rotation=None, sar=None):
  """Writes `frames` (uint8 RGB or RGBA) at `rate`, or at `pts` in `time_base`; optional sine audio of that length
  and display rotation (degrees counter-clockwise, as phones write it)."""
  with av.open(str(path), "w", format=fmt) as out:
    stream = out.add_stream(codec, rate=rate, options=options or {})
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
    tb = Fraction(time_base) if time_base else 1 / Fraction(rate)
    stream.codec_context.time_base = tb
    if display_rotation is not None:
      stream.set_display_rotation(display_rotation)
    if sar is not None:
      stream.codec_context.sample_aspect_ratio = sar
    if audio_seconds:
      audio = out.add_stream(audio_codec, rate=44100)
      audio.codec_context.layout = "mono"
    for k, image in enumerate(frames):
      frame = av.VideoFrame.from_ndarray(image, format="rgba" if image.shape[-1] == 4 else "rgb24")
      frame.pts, frame.time_base = (pts[k] if pts is not None else k), tb
      for packet in stream.encode(frame):
        out.mux(packet)
    for packet in stream.encode(None):
      out.mux(packet)
    if audio_seconds:
      n = int(44100 * audio_seconds)
      wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)[None]
      samples = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
      samples.sample_rate, samples.pts = 44100, 0
      for packet in audio.encode(samples):
        out.mux(packet)
      for packet in audio.encode(None):
        out.mux(packet)


def facts(path) -> dict:
  """What a player sees: rate (r_frame_rate), frames (decoded), their exact times, duration, audio."""
  with av.open(str(path)) as c:
    v = c.streams.video[0]
    packets = sorted((p.pts, p.duration) for p in c.demux(v) if p.size)
    tb = Fraction(v.time_base)
  with av.open(str(path)) as c:
    v = c.streams.video[0]
    images, times = [], []
    for f in c.decode(v):
      images.append(f.to_ndarray(format="rgba" if f.format.name in ("rgba", "bgra", "argb", "pal8") else "rgb24"))
      times.append((f.pts - packets[0][0]) * tb)
    out = {"format": c.format.name, "codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
           "rate": Fraction(v.guessed_rate) if v.guessed_rate else None, "frames": images, "times": times,
           "duration": (packets[-1][0] + packets[-1][1] - packets[0][0]) * tb, "audio": []}
    for a in c.streams.audio:
      out["audio"].append({"codec": a.codec_context.name,
                           "duration": Fraction(a.duration) * Fraction(a.time_base) if a.duration else None})
  return out


def audio_payloads(path) -> list[bytes]:
  with av.open(str(path)) as c:
    return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
