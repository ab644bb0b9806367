"""Tests of jaxvfi.utils: the tools' exit paths on signals and errors."""
import gc
import os
import signal
import sys
import threading
import time
import weakref

import pytest

from jaxvfi import utils


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_raises_in_the_block_and_restores_the_handlers(signum):
  before = signal.getsignal(signum)
  cleaned = []
  with pytest.raises(utils.Terminated) as info:
    with utils.termination_as_interrupt():
      try:
        os.kill(os.getpid(), signum)
        for _ in range(10**7):  # the handler runs between bytecodes: this loop is never finished
          pass
        pytest.fail("the signal did not interrupt the block")
      finally:
        cleaned.append(True)
  assert cleaned == [True]
  assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signum
  assert info.value.args == (signal.Signals(signum).name,)
  assert signal.getsignal(signum) is before


class _Owner:
  pass


@pytest.mark.parametrize("where", ["gc callback", "weakref callback"])
def test_a_signal_inside_a_callback_is_raised_after_it_not_swallowed(where):
  """Exceptions in gc and weakref callbacks are "ignored" by Python: the signal must still stop the block."""
  fired = []

  def callback(*args):  # pylint: disable=unused-argument
    if not fired:
      fired.append(True)
      os.kill(os.getpid(), signal.SIGTERM)  # handled in here: raised here, Python would only print it
      for _ in range(1000):
        pass

  hook = sys.unraisablehook
  owner = _Owner()
  ref = weakref.ref(owner, callback)  # pylint: disable=unused-variable
  gc.callbacks.append(callback if where == "gc callback" else lambda *args: None)
  try:
    with pytest.raises(utils.Terminated):
      with utils.termination_as_interrupt():
        if where == "gc callback":
          gc.collect()
        else:
          del owner
        deadline = time.monotonic() + 30  # the signal is sent again 5 ms after the callback
        while time.monotonic() < deadline:
          pass
        pytest.fail("the signal was swallowed")
  finally:
    gc.callbacks.pop()
  assert fired == [True]
  assert sys.unraisablehook is hook


def test_a_signal_that_lands_in_the_hook_itself_is_not_lost(monkeypatch):
  """On a loaded machine the re-sent signal can arrive while the hook is still starting its thread (seen in CI):
  raised there, it would be swallowed a second time."""
  again = []
  start = threading.Thread.start

  def start_after_a_signal(self):
    if not again:
      again.append(True)
      os.kill(os.getpid(), signal.SIGTERM)  # handled before the next line, inside unraisable_hook
    start(self)

  owner = _Owner()
  ref = weakref.ref(owner, lambda *args: os.kill(os.getpid(), signal.SIGTERM))  # pylint: disable=unused-variable
  with pytest.raises(utils.Terminated):
    with utils.termination_as_interrupt():
      monkeypatch.setattr(threading.Thread, "start", start_after_a_signal)
      del owner
      deadline = time.monotonic() + 30
      while time.monotonic() < deadline:
        pass
      pytest.fail("the signal was swallowed")
  assert again == [True]


def test_termination_off_the_main_thread_changes_nothing():
  seen = []

  def worker():
    with utils.termination_as_interrupt():
      seen.append(signal.getsignal(signal.SIGTERM))

  before = signal.getsignal(signal.SIGTERM)
  t = threading.Thread(target=worker)
  t.start()
  t.join()
  assert seen == [before]


@pytest.mark.parametrize("raised, status, line", [
    (ValueError("bad --factor"), 1, "jaxvfi: error: bad --factor\n"),
    (KeyboardInterrupt(), 130, "jaxvfi: interrupted (SIGINT)"),
    (utils.Terminated(signal.SIGTERM), 143, "jaxvfi: interrupted (SIGTERM)"),
    (utils.Terminated(signal.SIGHUP), 129, "jaxvfi: interrupted (SIGHUP)"),
])
def test_run_tool_exit_status_and_one_line(raised, status, line, capsys):
  def run(args):
    assert args == "args"
    raise raised

  with pytest.raises(SystemExit) as info:
    utils.run_tool(run, "args", (ValueError,))
  assert info.value.code == status
  err = capsys.readouterr().err
  assert err.startswith(line) and err.count("\n") == 1


def test_run_tool_lets_other_errors_through():
  def run(args):
    raise RuntimeError("a bug, with its traceback")

  with pytest.raises(RuntimeError, match="a bug"):
    utils.run_tool(run, None, (ValueError,))


def test_error_reason_is_one_line_without_the_errno():
  assert utils.error_reason(FileNotFoundError(2, "No such file or directory", "x.png")) == "No such file or directory"
  assert utils.error_reason(ValueError("first line\nsecond line")) == "first line"
  assert utils.error_reason(KeyError()) == "KeyError"
