"""`python tests/kill_driver.py KILL_STEP -- <jaxvfi.main flags>`: the entry point, SIGKILLed in the middle of saving
checkpoint step KILL_STEP (after its extra item is in place and before its opt_state and params items are, in orbax's
temporary folder), the way a preempted machine dies during a save. KILL_STEP 0 never kills."""
import os
import signal
import sys

from absl import app

from jaxvfi import main as main_lib

_rename = os.rename


def _rename_then_die(src, dst, *args, **kwargs):
  parent = os.path.basename(os.path.dirname(os.fspath(dst)))
  if os.path.basename(os.fspath(dst)) == "opt_state" and parent == f"{KILL_STEP}.orbax-checkpoint-tmp":
    os.kill(os.getpid(), signal.SIGKILL)
  return _rename(src, dst, *args, **kwargs)


if __name__ == "__main__":
  KILL_STEP = int(sys.argv[1])
  os.rename = _rename_then_die
  sys.argv = [sys.argv[0]] + sys.argv[3:]
  app.run(main_lib.main, flags_parser=main_lib.parse_flags)
