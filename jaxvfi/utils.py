"""Small host-side helpers of the trainer and the tools: workdir checks, atomic writes, logging, progress bars,
image grids, one-line error reasons, the tools' exit paths."""
from __future__ import annotations

import contextlib
import errno
import json
import logging as py_logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping

from absl import logging
import numpy as np
from PIL import Image
import tqdm

# Errors that mean bad input rather than a bug (a missing file, a bad flag value, a folder where a file was meant):
# the command-line tools and `jaxvfi.main` report them in one `jaxvfi: error:` line and exit with status 1.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError)


def error_reason(e: BaseException) -> str:
  """The first line of an error's message; FFmpeg's and the OS's errors give their reason without the errno."""
  reason = getattr(e, "strerror", None)
  text = str(reason if isinstance(reason, str) and reason else e).strip() or type(e).__name__
  return text.splitlines()[0]


def prepare_workdir(workdir: str) -> str:
  """Creates `workdir` and proves it is writable, or raises one clear PermissionError/NotADirectoryError."""
  if not workdir:
    raise ValueError("--workdir is required")
  workdir = os.path.abspath(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"workdir {workdir} exists and is not a directory")
  try:
    os.makedirs(workdir, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write_probe_", dir=workdir)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise PermissionError(f"workdir {workdir} is not writable: {e.strerror or e}") from e
  return workdir


def _read_umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


UMASK = _read_umask()  # read once at import: os.umask is process-wide and a later read would race with threads


def temp_prefix(dest: str) -> str:
  """The name prefix of this process's temporary files and folders for `dest` (".tmp_<name>.<pid>."): a later run
  tells a stale one, left by a killed process, by its name (`remove_stale_temps`)."""
  return f".tmp_{os.path.basename(os.path.normpath(dest))}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's live process
    return True
  return True


def remove_stale_temps(dest: str) -> list[str]:
  """Removes the temporary files and folders for `dest` (`temp_prefix`) that processes no longer running left beside
  it (a run killed with SIGKILL cannot clean up); returns their paths, each also logged."""
  folder = os.path.dirname(os.path.abspath(dest))
  pattern = re.compile(rf"^\.tmp_{re.escape(os.path.basename(os.path.normpath(dest)))}\.(\d+)\.")
  removed = []
  for name in os.listdir(folder) if os.path.isdir(folder) else ():
    match = pattern.match(name)
    if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
      path = os.path.join(folder, name)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.remove(path)
      removed.append(path)
      logging.warning("removed %s, a temporary file of an earlier run that was killed", path)
  return removed


def _atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes to a temporary file beside `path`, then renames: readers never see a half-written file."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  remove_stale_temps(path)
  fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), dir=os.path.dirname(path) or ".")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp creates 0600; a results file should read like any other
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def atomic_write_text(path: str, text: str) -> None:
  _atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str, obj) -> None:
  atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_npz(path: str, arrays: dict[str, np.ndarray], compressed: bool = False) -> None:
  """`np.savez` (or `savez_compressed`) of `arrays` into `path` through a temporary file renamed into place."""
  import io  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buf, **arrays)
  _atomic_write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
  """An exclusive lock on the file `path` (created if missing, never removed) for the `with` block, across processes
  and threads: `fcntl.flock` on POSIX, `msvcrt.locking` on Windows. It waits for the holder; the OS drops a lock
  whose process died. On a file system without locks (some network mounts) it does nothing: callers stay correct
  without it (`jaxvfi.input_pipeline.get_builder`)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "a+b") as f:
    try:
      if os.name == "nt":
        import msvcrt  # pylint: disable=import-outside-toplevel
        f.seek(0)
        while True:
          try:
            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)  # retries for 10 s, then raises EDEADLK
            break
          except OSError as e:
            if e.errno not in (errno.EDEADLK, errno.EACCES):
              raise
      else:
        import fcntl  # pylint: disable=import-outside-toplevel
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
      locked = True
    except OSError as e:  # e.g. ENOLCK on a mount without locks
      logging.warning("cannot lock %s (%s); going on without the lock", path, error_reason(e))
      locked = False
    try:
      yield
    finally:
      if locked and os.name == "nt":
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
      # POSIX: closing the file releases the flock.


def to_uint8(img: np.ndarray) -> np.ndarray:
  return np.round(np.clip(np.asarray(img, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def atomic_write_png(path: str, img: np.ndarray) -> None:
  import io  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  img = img if img.dtype == np.uint8 else to_uint8(img)
  Image.fromarray(img).save(buf, format="PNG")
  _atomic_write_bytes(path, buf.getvalue())


def grid_row(frame0: np.ndarray, pred: np.ndarray, target: np.ndarray, error_gain: float = 4.0) -> np.ndarray:
  """One row of the summary grid: frame0 | prediction | target | |error| x gain, as uint8 HWC."""
  err = np.clip(np.abs(np.asarray(pred, np.float32) - target) * error_gain, 0.0, 1.0)
  return np.concatenate([to_uint8(frame0), to_uint8(pred), to_uint8(target), to_uint8(err)], axis=1)


def pad_batch(batch: dict, size: int) -> dict:
  """Pads a short last batch to `size` by repeating its last example (the caller drops the extra outputs)."""
  n = next(iter(batch.values())).shape[0]
  if n == size:
    return batch
  return {k: np.concatenate([v, np.repeat(np.asarray(v)[-1:], size - n, axis=0)]) for k, v in batch.items()}


def add_file_logging(workdir: str) -> py_logging.Handler:
  """Mirrors the absl log into `workdir/train.log`."""
  handler = py_logging.FileHandler(os.path.join(workdir, "train.log"))
  handler.setFormatter(py_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
  handler.setLevel(py_logging.INFO)
  logger = py_logging.getLogger("absl")
  # Outside `app.run` (tests, notebooks) absl starts at WARNING; the run log wants the INFO lines too.
  if logger.getEffectiveLevel() > py_logging.INFO:
    logger.setLevel(py_logging.INFO)
  logger.addHandler(handler)
  return handler


def summary_writer(workdir: str):
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  return SummaryWriter(logdir=os.path.join(workdir, "tensorboard"))


def progress_bar(total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> tqdm.tqdm:
  return tqdm.tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, disable=not enabled,
                   smoothing=0.1)


def progress(it: Iterable, desc: str, enabled: bool = True, total: int | None = None) -> Iterable:
  return tqdm.tqdm(it, desc=desc, unit="batch", dynamic_ncols=True, disable=not enabled, total=total, leave=False)


class _LibraryInfoFilter(py_logging.Filter):
  """Drops INFO records of orbax (every stage of every save and restore, with its options' repr) so the run's own
  log lines stay readable."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    return record.levelno > py_logging.INFO or "orbax" not in record.pathname


def quiet_library_info_logs() -> None:
  logger = py_logging.getLogger("absl")
  if not any(isinstance(f, _LibraryInfoFilter) for f in logger.filters):
    logger.addFilter(_LibraryInfoFilter())
  # JAX logs through its own loggers, which a filter on absl's does not see.
  xla_bridge = py_logging.getLogger("jax._src.xla_bridge")
  if xla_bridge.getEffectiveLevel() < py_logging.WARNING:
    xla_bridge.setLevel(py_logging.WARNING)


def _signum(e: KeyboardInterrupt) -> int:
  return e.signum if isinstance(e, Terminated) else signal.SIGINT


class Terminated(KeyboardInterrupt):
  """SIGTERM or SIGHUP turned into an exception, so that the cleanups that run for Ctrl-C (removing temporary files
  and staging folders) run for `kill`, a closed terminal or a job scheduler too. `args[0]` is the signal's name."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


@contextlib.contextmanager
def termination_as_interrupt(
    signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
  """Within the block, the signals `signums` raise in the main thread: KeyboardInterrupt for SIGINT, `Terminated`
  for the others, instead of ending the process at once (Python's default for SIGTERM and SIGHUP, which skips every
  `finally`). The previous handlers are restored on exit. Off the main thread (where Python cannot install
  handlers) it does nothing.

  A signal that lands in a garbage-collector or weakref callback or a `__del__` (JAX runs such code often) would be
  printed as "Exception ignored" and the run would go on (seen for Ctrl-C in about one run of six stopped
  mid-video): there the exception reaches `sys.unraisablehook`, and a helper thread sends the signal again every
  5 ms until the handler has raised it outside the hook (for at most 10 s)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  # raised: how many times the handler raised; in_hook: the main thread is inside unraisable_hook, where a raise
  # would be swallowed again (seen on a loaded machine: the re-sent signal arrived while the hook was still starting
  # its thread); active: the block has not exited, so our handler is still installed.
  state = {"raised": 0, "in_hook": False, "active": True}

  def handler(signum, frame):  # pylint: disable=unused-argument
    if state["in_hook"]:
      return  # the helper thread sends it again
    state["raised"] += 1
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)

  previous_hook = sys.unraisablehook

  def resend(signum, raised_before):
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
      time.sleep(0.005)
      if not state["active"] or state["raised"] != raised_before:
        return
      os.kill(os.getpid(), signum)

  def unraisable_hook(unraisable):
    e = unraisable.exc_value
    if isinstance(e, KeyboardInterrupt):
      signum = _signum(e)
      if signum in signums:
        state["in_hook"] = True
        try:
          threading.Thread(target=resend, args=(signum, state["raised"]), daemon=True).start()
        finally:
          state["in_hook"] = False
        return
    previous_hook(unraisable)

  previous = {s: signal.signal(s, handler) for s in signums}
  sys.unraisablehook = unraisable_hook
  try:
    yield
  finally:
    state["active"] = False
    sys.unraisablehook = previous_hook
    for s, h in previous.items():
      signal.signal(s, h)


def run_tool(run: Callable[..., Iterable[str]], args, user_errors: tuple[type[BaseException], ...],
             hard_exit: bool = False) -> None:
  """The command-line tools' `main`: runs `run(args)` and logs each path it wrote. A user error (`user_errors`)
  prints one line and exits 1; Ctrl-C, SIGTERM and SIGHUP print one line after the temporary files are removed and
  exit 130, 143 and 129 (128 + the signal number, as a shell reports a process killed by it); `hard_exit`: see
  `exit_interrupted`."""
  quiet_library_info_logs()
  try:
    with termination_as_interrupt():
      for path in run(args):
        py_logging.getLogger("absl").info("wrote %s", path)
  except user_errors as e:
    print(f"jaxvfi: error: {e}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt as e:
    exit_interrupted(e, "nothing was left half-written (temporary files removed; earlier outputs kept)", hard_exit)


def exit_interrupted(e: KeyboardInterrupt, what: str, hard_exit: bool = False) -> None:
  """Prints `jaxvfi: interrupted (SIGNAL): what` and exits 128 + the signal's number (130 for Ctrl-C).

  With `hard_exit` (the command-line entry points, once every cleanup has run) the process ends through `os._exit`
  after the logs and standard streams are flushed, skipping the interpreter's teardown: stopped in the middle of
  work, that teardown crashed now and then (SIGSEGV in a native thread, after our line was printed) on a busy
  machine. In-process callers (tests, notebooks) get SystemExit."""
  signum = _signum(e)
  print(f"jaxvfi: interrupted ({signal.Signals(signum).name}): {what}", file=sys.stderr)
  if hard_exit:
    py_logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + int(signum))  # pylint: disable=protected-access
  sys.exit(128 + int(signum))


def natural_key(name: str) -> list:
  """The sort key of a file name in natural order: its runs of digits compare as numbers ("frame2" < "frame10")."""
  return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def flatten_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """Nested mappings -> one dict whose keys join the nested keys with "." ({"a": {"b": 1}} -> {"a.b": 1})."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(flatten_keys(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out
