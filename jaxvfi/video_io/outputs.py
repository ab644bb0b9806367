"""Outputs of a sequence of frames, a video file or a folder of PNGs, checked before any model loads and written
whole or not at all.

A tool that writes a sequence (interpolate, enhance, zoom) calls `plan_output` before loading its model (every
refusal is then one error line and nothing is written) and `open_sink` after it (the package docstring shows the
calls). `StagedFolder` writes a folder of frames into a hidden sibling folder and swaps it into place on `commit`, so
a folder never mixes new frames with stale ones of an earlier run; it refuses a folder holding files it would not
write. `check_writable` proves a place writable with a temporary file before anything is made.
"""
from __future__ import annotations

from fractions import Fraction
import os
import re
import shutil
import tempfile
from typing import Sequence

from absl import logging
import numpy as np
from PIL import Image

from jaxvfi import utils
from jaxvfi.video_io.probe import VideoInfo
from jaxvfi.video_io.writer import check_frame_size
from jaxvfi.video_io.writer import output_format_name
from jaxvfi.video_io.writer import OutputPlan
from jaxvfi.video_io.writer import plan_video_output
from jaxvfi.video_io.writer import VideoWriter


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
    utils.remove_stale_temps(self.folder)
    self.stage = tempfile.mkdtemp(prefix=utils.temp_prefix(self.folder), dir=parent)
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
    os.chmod(self.stage, 0o777 & ~utils.UMASK)
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
  """Frames as frame_000000.png, frame_000001.png, ... in a StagedFolder (swapped in whole by commit); every frame
  of the planned width x height (None: the first frame's)."""

  def __init__(self, folder: str, width: int | None = None, height: int | None = None):
    self.staged = StagedFolder(folder, OWN_FRAME_NAMES)
    self.count = 0
    self.width, self.height = width, height

  def write(self, image: np.ndarray, time: Fraction | None = None) -> None:
    del time  # the names give the order
    if self.width is None:
      self.height, self.width = np.shape(image)[:2]
    check_frame_size(self.staged.folder, image, self.width, self.height)
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
    return FolderSink(output, width, height)
  return VideoWriter(plan, width, height, time_base, rate, source=source)
