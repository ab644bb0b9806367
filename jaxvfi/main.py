r"""jaxvfi entry point: flags only; the work is in `jaxvfi.train`.

  python -m jaxvfi.main --config=configs/refin.py[:arg] --workdir=DIR [--mode=train|eval|summary] \
      [--config.a.b=value ...]
  python -m jaxvfi.main --workdir=DIR --mode=eval      # the run's own config.json: evaluates it as it was trained
  python -m jaxvfi.main --config=configs/sepconv.py --workdir=DIR --mode=eval --weights=sepconv-lf
      # released weights (a name from jaxvfi.released, fetched once) or any weights file, scored at step 0

`--config=configs/<paper>.py` is that file when it exists from the current directory, else the packaged config of
that name (`jaxvfi.configs`, installed with jaxvfi; the log says which), so the commands work from any directory.

Several machines (JAX's multi-process runtime, `parallel.initialize_distributed`): `--distributed` on every process
(under SLURM, JAX reads the cluster from the environment), or by hand --coordinator_address=HOST:PORT
--num_processes=P --process_id=I. The global batch is split over every process's devices.
"""
from __future__ import annotations

import re
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import model_file
from jaxvfi import parallel
from jaxvfi import train
from jaxvfi import utils
from jaxvfi import weights

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/<paper>.py file, optionally :arg. "
                                          "Without it, --mode=eval and --mode=summary read the workdir's config.json.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard events, eval JSON, samples.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval", "summary"],
                          "train: train with periodic eval and checkpoints (resumes from workdir); eval: evaluate "
                          "the latest checkpoint; summary: parameter table via jax.eval_shape.")
_WEIGHTS = flags.DEFINE_string("weights", None, "--mode=eval only: score these parameters instead of the workdir's "
                                "checkpoint: a released model's name (python -m jaxvfi.weights list) or a weights "
                                "file (a model file, or a converted .npz of --config's family); results in --workdir.")
_SPLIT = flags.DEFINE_string("split", None, "Eval split for --mode=eval (default: config.data.eval_split).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Start JAX's multi-process runtime (jax.distributed) before "
                                  "training; implied by --coordinator_address.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0, for multi-process runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes of a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in a multi-process run.")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_integer("distributed_timeout", 300, "Seconds the processes of a multi-process run "
                                            "wait for each other at start-up before giving up with one error line.")
_RESTORE_STEP = flags.DEFINE_string("restore_step", "latest", "Checkpoint a training run resumes from: latest, "
                                    "intact (the newest step that reads without error) or a step number; newer steps "
                                    "are moved to WORKDIR/discarded_checkpoints.")
flags.mark_flags_as_required(["workdir"])
_CONFIG_NOTE: str | None = None  # which packaged config --config named (config_lib.packaged_config_argv)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _CONFIG.value is None and _MODE.value == "train":
    raise app.UsageError("--config is required to train: --config=configs/<paper>.py[:arg] (--mode=eval and "
                         "--mode=summary read the workdir's config.json when it is not given)")
  if _WEIGHTS.value is not None and _MODE.value != "eval":
    raise app.UsageError("--weights is for --mode=eval (training starts from a config's own initialisation)")
  utils.quiet_library_info_logs()
  if _CONFIG_NOTE:
    logging.info("%s", _CONFIG_NOTE)
  if _RESTORE_STEP.value not in ("latest", "intact") and not _RESTORE_STEP.value.isdigit():
    print(f"jaxvfi: error: --restore_step must be latest, intact or a step number, got {_RESTORE_STEP.value!r}",
          file=sys.stderr)
    sys.exit(1)
  config, workdir = _CONFIG.value, _WORKDIR.value
  try:
    if _DISTRIBUTED.value or _COORDINATOR.value:
      parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                      _DISTRIBUTED_TIMEOUT.value)
    if config is None and _WEIGHTS.value is not None:
      config = model_file.read_config(weights.resolve(_WEIGHTS.value))  # the family's packaged config
    if config is None:
      config = checkpoints.read_config(workdir)
    with utils.termination_as_interrupt():
      if _MODE.value == "summary":
        train.summarize(config, workdir)
      elif _MODE.value == "eval":
        train.evaluate(config, workdir, split=_SPLIT.value, weights=_WEIGHTS.value)
      else:
        restore = _RESTORE_STEP.value
        train.train_and_evaluate(config, workdir, restore_step=int(restore) if restore.isdigit() else restore)
  except (train.TrainingError,) + utils.USER_ERRORS as e:
    print(f"jaxvfi: error: {e}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt as e:
    what = ("training stopped at its last finished step, which is saved (the log line above says which): the same "
            "command resumes from it") if _MODE.value == "train" else "stopped"
    utils.exit_interrupted(e, what, hard_exit=True)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with config errors reported in one line like every other user error. ml_collections raises a
  misspelt `--config.x` as a chained AttributeError traceback, and a config file that failed to load only when the
  config is first used (by then the workdir and its log exist); a `--config.x` without `--config` is an unknown
  flag to absl. A `--config=configs/<paper>.py` that is not found from the current directory is the packaged config
  of that name (`config_lib.packaged_config_argv`), which the log says."""
  global _CONFIG_NOTE
  argv, _CONFIG_NOTE = config_lib.packaged_config_argv(argv)
  overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
  if overrides and not any(a == "--config" or a.startswith("--config=") for a in argv[1:]):
    # absl would say "Unknown command line flag": the --config.* flags exist only once a config file is named.
    print(f"jaxvfi: error: {overrides[0]} sets a field of --config, which is not given: add "
          "--config=configs/<paper>.py[:arg]", file=sys.stderr)
    sys.exit(1)
  try:
    # Not app.parse_flags_with_usage: it prints "FATAL Flags parsing error" and, for a config file whose get_config
    # raised (a misspelt :arg), that file's whole traceback.
    rest = flags.FLAGS(argv)
    if _CONFIG.value is not None:
      _CONFIG.value.get("seed")  # a file that failed to load raises here
  except flags.Error as e:
    if "parsing config file" in str(e):
      _exit_config_error(e)
    print(f"jaxvfi: error: {' '.join(str(e).split())}", file=sys.stderr)
    sys.exit(1)
  except (AttributeError, KeyError, OSError, ValueError, TypeError) as e:
    _exit_config_error(e)
  return rest


def _exit_config_error(e: BaseException) -> None:
  # str() of ml_collections' KeyError-in-AttributeError is a repr: quotes and a literal "\n" before its hint.
  text = str(e).replace("\\n", " ").replace("\\'", "'")
  if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
    text = text[1:-1]
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if len(lines) > 1:  # a traceback, or ml_collections' list of paths tried: the last line is the cause
    text = re.sub(r"^(\w+(Error|Exception): |\[Errno \d+\] )", "", lines[-1])
  print(f"jaxvfi: error: --config: {' '.join(text.split())}", file=sys.stderr)
  sys.exit(1)


def console_main() -> None:
  """The `jaxvfi-train` console script (`python -m jaxvfi.main`)."""
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
