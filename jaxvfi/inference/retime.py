"""Sequences of frames in (a video or a folder of images), their retiming, video jobs and frame-file outputs.

A `FrameSource` gives input frames with exact times; `plan_retiming` places the output frames (`--factor` or
`--fps`); `prepare_video_job` checks everything (timing, output kind, codec, alpha, inputs kept) before a model is
loaded, and `VideoJob.run` makes and writes the frames (`jaxvfi.inference.frames.interpolate_rgba` per pair) into a
sink that is committed whole at the end or aborted. `interpolate_frame_files` writes the frames between two image
files as one PNG or a folder of them.
"""
from __future__ import annotations

import contextlib
import dataclasses
from fractions import Fraction
import os
import time as time_lib
from typing import Any, Callable, Iterator, Sequence

from absl import logging
import numpy as np
import tqdm

from jaxvfi import utils
from jaxvfi import video_io
from jaxvfi.inference import frames as frames_lib
from jaxvfi.inference import interpolator

OWN_FRAME_NAMES = video_io.OWN_FRAME_NAMES


@contextlib.contextmanager
def aborted_on_error(output: Any) -> Iterator[Any]:
  """Yields `output` (a `jaxvfi.video_io` sink or `StagedFolder`: anything with `abort()`), whose block writes and
  commits it; if the block raises (Ctrl-C included), `output.abort()` removes what was staged, so nothing
  half-written is left, and the exception goes on."""
  try:
    yield output
  except BaseException:
    output.abort()
    raise


@dataclasses.dataclass
class FrameSource:
  """Input frames with exact times (seconds from the first frame), from a video or a folder of images."""
  name: str
  width: int
  height: int
  num_frames: int
  rate: Fraction | None  # None: a folder of images without --input_fps (the output is a folder; times are k)
  constant_rate: bool
  duration: Fraction | None
  time_base: Fraction  # unit of the input timestamps
  alpha: bool  # frames are RGBA
  transparent: bool  # the first frame has alpha < 255 somewhere
  info: video_io.VideoInfo | None  # a video's facts (audio, codec), else None
  open: Callable[[bool], Any]  # open(alpha) -> an object with frames() -> Iterator[(Fraction, ndarray)], close()
  inputs: tuple[str, ...]  # the files (and folder) read: an output may not replace them


def open_video_source(path: str, alpha: bool = True) -> FrameSource:
  """A video file as a FrameSource (probed now: errors before the model loads); alpha: read RGBA if it has alpha."""
  info = video_io.probe(path)
  keep = alpha and info.has_alpha
  return FrameSource(name=path, width=info.width, height=info.height, num_frames=info.num_frames, rate=info.rate,
                     constant_rate=info.constant_rate, duration=info.duration, time_base=info.time_base, alpha=keep,
                     transparent=keep and not info.first_frame_opaque, info=info,
                     open=lambda rgba: video_io.VideoReader(path, info, alpha=rgba), inputs=(path,))


class _FolderReader:

  def __init__(self, paths: Sequence[str], rate: Fraction, alpha: bool):
    self.paths, self.rate, self.alpha = paths, rate, alpha

  def frames(self) -> Iterator[tuple[Fraction, np.ndarray]]:
    for k, path in enumerate(self.paths):
      image = video_io.read_frame(path, keep_alpha=self.alpha)
      if self.alpha:
        image = frames_lib.with_alpha(image)
      yield Fraction(k) / self.rate, image

  def close(self) -> None:
    pass


def open_folder_source(folder: str, rate: Fraction | None = None, alpha: bool = True) -> FrameSource:
  """A folder of images (natural order) as a FrameSource at `rate`; sizes are checked now, from the headers."""
  paths = video_io.list_frame_files(folder)
  sizes = [video_io.image_header(p) for p in paths]
  w, h, _ = sizes[0]
  for path, (wi, hi, _) in zip(paths, sizes):
    if (wi, hi) != (w, h):
      raise ValueError(f"frame sizes differ in {folder}: {paths[0]} is {w}x{h} and {path} is {wi}x{hi} (width x "
                       "height); all frames must have the same size")
  keep = alpha and any(a for _, _, a in sizes)
  transparent = False
  if keep:
    first = frames_lib.with_alpha(video_io.read_frame(paths[0], keep_alpha=True))
    transparent = bool((first[..., 3] < 255).any())
  step = rate or Fraction(1)
  return FrameSource(name=folder, width=w, height=h, num_frames=len(paths), rate=rate, constant_rate=True,
                     duration=len(paths) / rate if rate else None, time_base=1 / step, alpha=keep,
                     transparent=transparent, info=None, open=lambda rgba: _FolderReader(paths, step, rgba),
                     inputs=(folder, *paths))


@dataclasses.dataclass(frozen=True)
class Retiming:
  """Where the output frames go in time.

  rate: the constant output rate (frame k at k / rate), or None to keep the input's timestamps with each interval
  split into `factor` (variable-rate input with --factor). time_base: unit of the output timestamps.
  """
  rate: Fraction | None
  factor: int | None
  time_base: Fraction
  num_frames: int  # expected output frames
  duration: Fraction | None


def plan_retiming(source: FrameSource, factor: int | None = None, fps: Fraction | None = None) -> Retiming:
  """--factor or --fps on `source` (`jaxvfi.interpolate`'s docstring: Video timing).

  Raises:
    ValueError: both or neither of factor and fps, a factor below 2, or fps for a folder without a rate.
  """
  if (factor is None) == (fps is None):
    raise ValueError("give exactly one of factor and fps")
  if factor is not None:
    interpolator.times_for_factor(factor)  # validates
    if source.constant_rate:  # (gaps in the grid, if any, are interpolated across)
      rate = (source.rate or Fraction(1)) * factor
      # A folder without a rate has no durations to hold the last frame for: it ends on the last input.
      count = round(source.duration * rate) if source.duration else (source.num_frames - 1) * factor + 1
      return Retiming(rate=rate, factor=factor, time_base=1 / rate, num_frames=count, duration=source.duration)
    return Retiming(rate=None, factor=factor, time_base=source.time_base / factor,
                    num_frames=source.num_frames * factor, duration=source.duration)
  if source.rate is None or source.duration is None:
    raise ValueError(f"{source.name} has no frame rate: give --input_fps to use --fps")
  count = max(round(source.duration * fps), 1)
  return Retiming(rate=fps, factor=None, time_base=1 / fps, num_frames=count, duration=Fraction(count) / fps)


@dataclasses.dataclass
class Stats:
  """What a run did (the final line)."""
  frames_in: int = 0
  frames_out: int = 0
  duration_in: Fraction | None = None
  duration_out: Fraction | None = None
  rate_in: Fraction | None = None
  rate_out: Fraction | None = None
  variable_in: bool = False  # the input's rate is variable (rate_in is its mean)
  variable_out: bool = False
  scene_cuts: int = 0
  max_time_error: Fraction = Fraction(0)  # seconds; time-free models' rounding of t to k / 2^D
  seconds: float = 0.0

  def summary(self, output: str) -> str:
    if self.rate_in is None and self.duration_in is None and self.rate_out is None:
      return (f"{output}: frames {self.frames_in} -> {self.frames_out}, no frame rate (a folder without "
              f"--input_fps), {self.scene_cuts} scene cut(s), {self.seconds:.1f} s")
    dur = lambda d: "?" if d is None else f"{float(d):.3f} s"
    rate_in = video_io.format_rate(self.rate_in) + (" (mean, variable)" if self.variable_in else "")
    rate_out = video_io.format_rate(self.rate_out) + (" (mean, variable)" if self.variable_out else "")
    line = (f"{output}: frames {self.frames_in} -> {self.frames_out}, duration {dur(self.duration_in)} -> "
            f"{dur(self.duration_out)}, fps {rate_in} -> {rate_out}, {self.scene_cuts} scene cut(s)")
    if self.max_time_error:
      line += f", largest timing error {float(self.max_time_error) * 1000:.2f} ms (t rounded to k/2^D)"
    return line + f", {self.seconds:.1f} s"


def _report_extrapolation(interp) -> None:
  """Names every untrained t a sequence run used, unless the one warning of check_times already did: that warning
  names the first pair's times only, and with --fps the phase, so t, changes from pair to pair."""
  used = set(getattr(interp, "extrapolated_times", ()))
  if used <= set(getattr(interp, "warned_times", ())):
    return
  ts = sorted(used)
  named = ", ".join(f"{t:g}" for t in ts) if len(ts) <= 8 else f"{ts[0]:g} to {ts[-1]:g}"
  logging.warning("this %s model was trained at t = %g only; this run extrapolated to %d times: t = %s", interp.name,
                  interp.trained_t, len(ts), named)


@dataclasses.dataclass
class VideoJob:
  """Everything about a sequence run that can be checked before the model loads (`prepare_video_job`)."""
  source: FrameSource
  retiming: Retiming
  output: str
  plan: video_io.OutputPlan | None  # None: a folder of PNGs
  options: frames_lib.Options

  def run(self, interp, progress_bar: bool = True) -> Stats:
    """Makes and writes every output frame; the output appears whole at the end or not at all."""
    started = time_lib.time()
    source, retiming = self.source, self.retiming
    # Alpha is read (and made: a second model call per frame) only when the output keeps it.
    reader = source.open(source.alpha and (self.plan is None or self.plan.alpha))
    getattr(interp, "extrapolated_times", set()).clear()  # this run's, for _report_extrapolation
    try:
      sink = video_io.open_sink(self.output, self.plan, source.width, source.height,
                                time_base=retiming.time_base, rate=retiming.rate, source=source.info)
      bar = tqdm.tqdm(total=retiming.num_frames, desc="interpolate", unit="frame", dynamic_ncols=True,
                      disable=not progress_bar)
      with bar, aborted_on_error(sink):
        stats = self._retime(interp, reader.frames(), sink, bar)
        sink.commit(stats.duration_out)
    finally:
      reader.close()
    stats.seconds = time_lib.time() - started
    _report_extrapolation(interp)
    return stats

  def _retime(self, interp, frames: Iterator[tuple[Fraction, np.ndarray]], sink, bar) -> Stats:
    source, retiming, options = self.source, self.retiming, self.options
    stats = Stats(duration_in=source.duration, rate_in=source.rate, variable_in=not source.constant_rate,
                  variable_out=retiming.rate is None)
    rate, factor = retiming.rate, retiming.factor
    time_free = bool(getattr(interp, "time_free", False))
    next_k = 0  # constant-rate output: the next frame's index

    def emit(image, when):
      sink.write(image, when)
      stats.frames_out += 1
      bar.update(1)

    first = next(frames, None)
    if first is None:
      raise ValueError(f"{source.name}: no frame could be decoded")
    stats.frames_in = 1
    prev_time, prev = first
    if rate is not None:  # output frames before the first decodable one (a damaged start) repeat it
      while Fraction(next_k) / rate < prev_time:
        emit(prev, Fraction(next_k) / rate)
        next_k += 1
    for cur_time, cur in frames:
      if cur_time <= prev_time:
        logging.warning("%s: a frame at %.6f s does not come after the one at %.6f s: skipped", source.name,
                        float(cur_time), float(prev_time))
        continue
      stats.frames_in += 1
      span = cur_time - prev_time
      if rate is not None:
        slots = []
        while Fraction(next_k) / rate < cur_time:
          when = Fraction(next_k) / rate
          slots.append((when, (when - prev_time) / span))
          next_k += 1
      else:
        slots = [(prev_time + span * Fraction(j, factor), Fraction(j, factor)) for j in range(factor)]
      for image, when in zip(self._pair(interp, prev, cur, slots, prev_time, span, time_free, stats), slots):
        emit(image, when[0])
      prev_time, prev = cur_time, cur
    # The last input frame, held for its duration; a folder without a rate has none, and ends on its last frame.
    untimed = source.rate is None and source.duration is None
    end = source.duration if source.duration is not None else prev_time + (1 / (source.rate or Fraction(1)))
    if rate is not None:
      last = max(round(prev_time * rate) + 1 if untimed else round(end * rate), next_k + (0 if next_k else 1))
      while next_k < last:
        emit(prev, Fraction(next_k) / rate)
        next_k += 1
      if not untimed:
        stats.duration_out = Fraction(next_k) / rate
        stats.rate_out = rate
    else:
      hold = end - prev_time
      for j in range(factor):
        emit(prev, prev_time + hold * Fraction(j, factor))
      stats.duration_out = end
      stats.rate_out = stats.frames_out / end if end else None
    return stats

  def _pair(self, interp, frame0, frame1, slots, start, span, time_free, stats) -> list[np.ndarray]:
    """The images of `slots` [(time, t)] between frame0 and frame1: copies at t = 0, the rest from the model."""
    options = self.options
    wanted = {}
    for _, t in slots:
      if t == 0:
        continue
      t_model = interpolator.nearest_dyadic(t, options.dyadic_depth) if time_free else t
      if time_free:
        stats.max_time_error = max(stats.max_time_error, abs(t_model - t) * span)
      wanted[t] = t_model
    if wanted and options.scene_threshold is not None:
      score = frames_lib.scene_score(frame0, frame1)
      if score > options.scene_threshold:  # every frame up to the cut repeats the earlier shot's last frame
        stats.scene_cuts += 1
        logging.info("%s: scene cut between the frames at %.3f s and %.3f s (score %.3f > %.3g): frame repeated",
                     self.source.name, float(start), float(start + span), score, options.scene_threshold)
        return [frame0 for _ in slots]
    made = {Fraction(0): frame0, Fraction(1): frame1}
    model_times = sorted({t for t in wanted.values() if 0 < t < 1})
    if model_times:
      made.update(zip(model_times, frames_lib.interpolate_rgba(interp, frame0, frame1, [float(t) for t in model_times],
                                                                options)))
    return [frame0 if t == 0 else made[wanted[t]] for _, t in slots]


def prepare_video_job(source: FrameSource, output: str, factor: int | None = None, fps: Fraction | None = None,
                      options: frames_lib.Options = frames_lib.Options(), codec: str | None = None,
                      audio: bool = True) -> VideoJob:
  """Checks everything about a sequence run before any model: timing, output kind, codec, alpha, inputs kept.

  Raises ValueError (one line) for an output that would replace an input, a folder holding foreign files, a
  container that takes no usable codec, alpha that the output cannot hold while the first frame is transparent, or
  a video output from a folder without a rate.
  """
  retiming = plan_retiming(source, factor, fps)
  if source.rate is None and video_io.output_is_video(output):
    raise ValueError(f"{source.name} is a folder of images without a frame rate: give --input_fps (e.g. 24 or "
                     "24000/1001) to write a video")
  plan = video_io.plan_output(output, source.width, source.height, time_base=retiming.time_base,
                              rate=retiming.rate, inputs=source.inputs, source=source.info, alpha=source.alpha,
                              alpha_required=source.transparent, codec=codec, audio=audio, log_notes=False)
  if plan is not None and source.alpha and not plan.alpha:
    if source.transparent:
      raise ValueError(f"{source.name} has transparency (alpha) that {output} ({plan.format_name}, {plan.codec}) "
                       "cannot hold: write .mov, .mkv, .webm or a folder of PNGs, or pass --alpha=drop")
    logging.info("%s: its alpha channel is opaque in the first frame and %s cannot hold alpha: writing RGB",
                 source.name, output)
  for note in plan.notes if plan is not None else ():
    logging.info("%s", note)
  return VideoJob(source, retiming, output, plan, options)


def interpolate_video(interp, path: str, output: str, factor: int | None = 2,
                      reader: video_io.VideoReader | None = None, progress_bar: bool = True,
                      fps: Fraction | None = None, options: frames_lib.Options = frames_lib.Options(),
                      codec: str | None = None, audio: bool = True) -> int:
  """Retimes the video `path` into `output` (`jaxvfi.interpolate`'s docstring: Video timing); returns the number of
  frames written.

  Args:
    interp: an Interpolator (`jaxvfi.inference.interpolator.load_model`).
    path: any video FFmpeg reads.
    output: a video file (its extension picks the container) or a folder for frame_000000.png, ...
    factor: N: N x the frame rate (ignored when fps is given).
    reader: unused, kept for callers of the earlier API (the video is probed and read from `path`).
    progress_bar: show frames/s and the time left.
    fps: an exact output rate, e.g. Fraction(60) or Fraction(24000, 1001).
    options, codec, audio: see `jaxvfi.inference.frames.Options`, `jaxvfi.video_io.plan_video_output`.
  """
  if reader is not None:
    reader.close()
  source = open_video_source(path, alpha=options.alpha != "drop")
  job = prepare_video_job(source, output, None if fps is not None else factor, fps, options, codec, audio)
  stats = job.run(interp, progress_bar)
  logging.info("%s", stats.summary(output))
  return stats.frames_out


def frame_output_paths(output: str, times: Sequence[float]) -> list[str]:
  """`output` itself for one time (a .png), else t0.2500.png, t0.5000.png, ... in the folder `output`.

  Raises ValueError for a name with an extension where frames go to a folder (a video name included: two frames
  never make a video), and for one time into anything but a .png."""
  hint = "; for a video, put the frames in a folder and pass --input_fps"
  if len(times) == 1 and not os.path.isdir(output):
    if os.path.splitext(output)[1].lower() != ".png":
      raise ValueError(f"--output {output} must end in .png (one time gives one PNG{hint})")
    return [output]
  if os.path.exists(output) and not os.path.isdir(output):
    raise ValueError(f"--output {output} is an existing file but {len(times)} times give {len(times)} frames: name "
                     "a folder")
  if video_io.output_is_video(output):  # The rule that sends a frames folder to a video file or a folder.
    raise ValueError(f"--output {output} names a file but {len(times)} times give {len(times)} frames: name a "
                     f"folder{hint}")
  return [os.path.join(output, f"t{t:.4f}.png") for t in times]


def check_frame_outputs(output: str, times: Sequence[float], inputs: Sequence[str]) -> list[str]:
  """The PNG paths for `times` (`frame_output_paths`), after refusing an output that would replace an input or a
  folder holding files this tool did not write. Runs before any model."""
  paths = frame_output_paths(output, times)
  video_io.check_not_an_input(output, inputs)
  video_io.check_writable(paths[0])
  if paths != [output]:
    video_io.StagedFolder.check(os.path.abspath(output), OWN_FRAME_NAMES)
  return paths


def interpolate_frame_files(interp, path0: str, path1: str, output: str,
                            times: Sequence[float] = (0.5,), frames: tuple[np.ndarray, np.ndarray] | None = None,
                            options: frames_lib.Options = frames_lib.Options()) -> list[str]:
  """Writes the frames between two image files as PNGs: `output` is the file for one time, a folder for several.

  Several times are named t0.2500.png, t0.5000.png, ... in a folder that is replaced whole (`jaxvfi.interpolate`'s
  docstring: Outputs). RGBA inputs give RGBA PNGs (options.alpha). Returns the paths written. `frames` skips
  re-reading.
  """
  times = list(times)
  paths = check_frame_outputs(output, times, (path0, path1))
  frame0, frame1 = frames if frames is not None else frames_lib.read_frame_pair(path0, path1, options.alpha != "drop")
  images = frames_lib.interpolate_pair(interp, frame0, frame1, times, options, name=f"{path0} -> {path1}")
  if paths == [output]:
    utils.atomic_write_png(output, images[0])
    return paths
  with aborted_on_error(video_io.StagedFolder(output, OWN_FRAME_NAMES)) as staged:
    for path, img in zip(paths, images):
      staged.write_png(os.path.basename(path), img)
    staged.commit()
  return paths


