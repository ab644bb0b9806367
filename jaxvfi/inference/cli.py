"""What the command-line tools (`jaxvfi.interpolate`, `jaxvfi.enhance`, `jaxvfi.zoom`) share: their argument parser,
their run wrapper (user errors as one line, signals as a clean stop), and the checking of `jaxvfi.interpolate`'s
flags into a `Request` before anything is read or loaded.
"""
from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction
import os
import sys
from typing import Callable, Iterable

from absl import logging
from absl.flags import argparse_flags

from jaxvfi import families
from jaxvfi import released
from jaxvfi import weights as weights_lib
from jaxvfi import utils
from jaxvfi import video_io
from jaxvfi.inference import adapt as adapt_lib
from jaxvfi.inference import frames
from jaxvfi.inference import interpolator


class Parser(argparse_flags.ArgumentParser):
  """argparse with absl's flags (--verbosity, ...); a usage error is one `jaxvfi: error:` line and exit 1."""

  def error(self, message):
    print(f"jaxvfi: error: {message}", file=sys.stderr)
    sys.exit(1)


def make_parser(prog: str, doc: str, paragraphs: int) -> Parser:
  """A tool's parser whose --help starts with the first `paragraphs` paragraphs of its docstring `doc`."""
  return Parser(prog=prog, description="\n\n".join(doc.split("\n\n")[:paragraphs]),
                formatter_class=argparse.RawDescriptionHelpFormatter)


def run_tool(run: Callable[[argparse.Namespace], Iterable[str]], args: argparse.Namespace) -> None:
  """A tool's `main`: `utils.run_tool` with `utils.USER_ERRORS` (one line, exit 1) and a hard exit once every
  cleanup has run (`utils.exit_interrupted`)."""
  utils.run_tool(run, args, utils.USER_ERRORS, hard_exit=True)


def parse_times(text: str) -> tuple[float, ...]:
  """`--times`: comma-separated times, each in (0, 1); ValueError (one line) otherwise."""
  try:
    times = tuple(float(s) for s in text.split(",") if s.strip())
  except ValueError as e:
    raise ValueError(f"--times must be comma-separated numbers, e.g. 0.25,0.5; got {text!r}") from e
  if not times:
    raise ValueError("--times is empty")
  bad = [t for t in times if not 0.0 < t < 1.0]
  if bad:
    raise ValueError(f"--times must lie strictly between 0 and 1, got {', '.join(f'{t:g}' for t in bad)}")
  return times


@dataclasses.dataclass(frozen=True)
class Request:
  """The command line after `check_args`: every value valid, every combination meaningful."""
  model_source: dict  # load_model's keywords: workdir=W or weights=F, model=M; and pixel_shader
  output: str
  pair: tuple[str, str] | None  # two image files
  folder: str | None  # a folder of images
  video: str | None
  times: tuple[float, ...] | None  # two frames
  factor: int | None  # a sequence: --factor (2 when neither --factor nor --fps is given)
  fps: Fraction | None
  input_fps: Fraction | None
  codec: str | None
  audio: bool
  options: frames.Options
  progress: bool
  adapt: adapt_lib.AdaptOptions | None = None  # test-time adaptation (--adapt_steps > 0), else None
  adapt_triplets: int = adapt_lib.DEFAULT_MAX_TRIPLETS


def _ntsc_hint(fps: Fraction) -> None:
  """A decimal rate such as 29.97 is exactly 2997/100, not NTSC's 30000/1001: say so once."""
  for base in (24, 30, 48, 60, 120):
    ntsc = Fraction(base * 1000, 1001)
    if fps != ntsc and fps.denominator in (100, 1000) and abs(fps - ntsc) < Fraction(1, 100):
      logging.warning("--fps=%s is exactly %s fps; NTSC's rate is %d000/1001 (%.6f): write --fps=%d000/1001 for it",
                      float(fps), fps, base, float(ntsc), base)


@dataclasses.dataclass(frozen=True)
class ToolModels:
  """The models a tool runs, for its --model flag and messages.

  Attributes:
    what: the model it needs, with its article ("a DSFN").
    kind: the same without it ("DSFN").
    families: the families whose released weights it takes (None: the frame-interpolation families).
  """
  what: str
  kind: str
  families: tuple[str, ...] | None = None

  def released(self) -> list[str]:
    """The released models of its families (for interpolation: those that fill a family whose periodic evaluation
    is vfi_triplet; network parts such as PWC-Net, VGG-19 and LPIPS fill none)."""
    out = []
    for name, entry in released.MODELS.items():
      if self.families is None:
        if entry.family and families.get_family(entry.family).evaluator == "vfi_triplet":
          out.append(name)
      elif entry.family in self.families:
        out.append(name)
    return out


INTERPOLATION = ToolModels("an interpolation", "interpolation")


def check_model_flags(args: argparse.Namespace, tool: ToolModels = INTERPOLATION) -> None:
  """--workdir, --weights and --model (every tool): one source of the model; ValueError or FileNotFoundError. A
  namespace without --weights or --model (a library caller's) counts them as not given. Messages list only the
  released models `tool` runs."""
  models = tool.released()
  for name in ("workdir", "weights", "model"):
    if not hasattr(args, name):
      setattr(args, name, None)
  if args.workdir is None and args.weights is None and args.model is None:
    if models:
      raise ValueError(f"give --workdir (a training run), --weights=FILE (a model file) or --model=NAME (released: "
                       f"{', '.join(models)})")
    raise ValueError(f"give --workdir ({tool.what} training run) or --weights=FILE ({tool.what} model file: python "
                     f"-m jaxvfi.weights export --workdir=W --dst=FILE.safetensors); no {tool.kind} weights are "
                     "released, so --model has none to fetch")
  if args.workdir is not None and (args.weights is not None or args.model is not None):
    raise ValueError("give --workdir (a training run) or --weights / --model, not both")
  if args.weights is None and args.model is not None and args.model not in models:
    runs = f"released: {', '.join(models)}" if models else f"no {tool.kind} weights are released"
    if args.model in released.MODELS:
      raise ValueError(f"--model={args.model} is not {tool.what} model (it is {released.MODELS[args.model].arch} "
                       f"weights; {runs})")
    raise ValueError(f"--model alone takes a released model's name ({', '.join(models) if models else runs}), got "
                     f"{args.model!r}" + ("; a family name needs --weights=FILE" if models else ""))
  if args.weights is not None:
    video_io.check_file(args.weights, "--weights")


def add_model_flags(parser: argparse.ArgumentParser, tool: ToolModels) -> None:
  """--workdir, --weights and --model of `jaxvfi.enhance` and `jaxvfi.zoom`."""
  models = tool.released()
  parser.add_argument("--workdir", help=f"workdir of {tool.what} training run (config.json, checkpoints/)")
  parser.add_argument("--weights", help=f"instead of --workdir: a model file of {tool.what} model (python -m "
                      "jaxvfi.weights export --workdir=W --dst=FILE.safetensors)")
  parser.add_argument("--model", help=(f"instead of --workdir: a released model's name ({', '.join(models)}), "
                                       "fetched and cached on first use") if models else
                      f"instead of --workdir: a released model's name (none yet: no {tool.kind} weights are released)")


def model_file_of(args: argparse.Namespace, tool: ToolModels) -> str | None:
  """The model file `--weights` / `--model` name (a released name fetched into the cache), or None for --workdir;
  checked by `check_model_flags` first."""
  check_model_flags(args, tool)
  if args.workdir is not None:
    return None
  return args.weights if args.weights is not None else weights_lib.fetch(args.model)


def check_args(args: argparse.Namespace) -> Request:
  """`jaxvfi.interpolate`'s flags (its `build_parser`): every value and combination, checked in one place before
  anything is read; ValueError (one line), FileNotFoundError for a missing --weights file."""
  check_model_flags(args, INTERPOLATION)
  if not args.output:
    raise ValueError("--output is empty")
  pair = folder = None
  if args.frames:
    if len(args.frames) == 2:
      pair = (args.frames[0], args.frames[1])
    elif len(args.frames) == 1 and not os.path.isfile(args.frames[0]):
      folder = args.frames[0]
    else:
      raise ValueError(f"--frames takes two image files or one folder of images, got {len(args.frames)} "
                       f"file{'s' if len(args.frames) != 1 else ''}")
  given = [name for name in ("factor", "fps", "times") if getattr(args, name) is not None]
  if len(given) > 1:
    raise ValueError(f"give one of --factor, --fps and --times, not {' and '.join('--' + g for g in given)}")
  if args.factor is not None and args.factor < 2:
    raise ValueError(f"--factor must be an integer >= 2, got {args.factor}: --factor=N makes N frames per input "
                     "interval (N x the frame rate; 2 adds one frame between each pair)")
  times = None
  if args.times is not None:
    if not pair:
      raise ValueError("--times is for two frames (--frames A B); a video or a folder takes --factor or --fps")
    times = parse_times(args.times)
  elif pair:
    times = interpolator.times_for_factor(args.factor or 2)
  fps = None
  if args.fps is not None:
    if pair:
      raise ValueError("--fps is for a video or a folder of frames; two frames take --times or --factor")
    fps = video_io.parse_rate(args.fps, "--fps")
    _ntsc_hint(fps)
  input_fps = None
  if args.input_fps is not None:
    if pair:
      raise ValueError("--input_fps is the rate of a --frames folder; two frames (--frames A B) take --times or "
                       "--factor")
    if not folder:
      raise ValueError("--input_fps is the rate of a --frames folder; a video has its own")
    input_fps = video_io.parse_rate(args.input_fps, "--input_fps")
  if not 1 <= args.dyadic_depth <= interpolator.MAX_BISECTION_DEPTH:
    raise ValueError(f"--dyadic_depth must be in 1..{interpolator.MAX_BISECTION_DEPTH}, got {args.dyadic_depth}")
  if args.no_scene_detect and args.scene_threshold is not None:
    raise ValueError("give --scene_threshold or --no_scene_detect, not both")
  threshold = frames.SCENE_THRESHOLD if args.scene_threshold is None else args.scene_threshold
  if not 0.0 < threshold <= 1.0:
    raise ValueError(f"--scene_threshold must be in (0, 1], got {threshold:g}")
  if args.tile < 0 or 0 < args.tile < 8:
    raise ValueError(f"--tile must be 0 (whole frames) or at least 8 pixels, got {args.tile}")
  if args.tile_overlap is not None and not args.tile:
    raise ValueError("--tile_overlap applies with --tile")
  overlap = frames.DEFAULT_TILE_OVERLAP if args.tile_overlap is None else args.tile_overlap
  if overlap < 0:
    raise ValueError(f"--tile_overlap must be >= 0, got {overlap}")
  if not args.video:
    for flag, value in (("--codec", args.codec), ("--no_audio", args.no_audio)):
      if value and (pair or flag == "--no_audio"):
        raise ValueError(f"{flag} applies to a video input{' or output' if flag == '--codec' else ''}")
  options = frames.Options(alpha=args.alpha, scene_threshold=None if args.no_scene_detect else threshold,
                           tile=args.tile, tile_overlap=overlap, dyadic_depth=args.dyadic_depth)
  adapt = _check_adapt_flags(args, pair is not None)
  model_source = ({"workdir": args.workdir} if args.workdir is not None else
                  {k: v for k, v in (("weights", args.weights), ("model", args.model)) if v is not None})
  model_source["pixel_shader"] = args.pixel_shader
  model_source["test_time_augmentation"] = args.test_time_augmentation
  return Request(model_source=model_source, output=args.output, pair=pair, folder=folder, video=args.video, times=times,
                 factor=None if pair or fps is not None else (args.factor or 2), fps=fps, input_fps=input_fps,
                 codec=args.codec, audio=not args.no_audio, options=options, progress=not args.no_progress,
                 adapt=adapt, adapt_triplets=getattr(args, "adapt_triplets", None) or adapt_lib.DEFAULT_MAX_TRIPLETS)


def _check_adapt_flags(args: argparse.Namespace, pair: bool) -> adapt_lib.AdaptOptions | None:
  """The `--adapt_*` flags as `AdaptOptions` (None without `--adapt_steps`); otherwise one ValueError naming the
  flag."""
  steps = getattr(args, "adapt_steps", 0) or 0  # a Namespace built without the flags: no adaptation
  if steps < 0:
    raise ValueError(f"--adapt_steps must be >= 0, got {steps}")
  flags = {f: getattr(args, f, None) for f in ("adapt_lr", "adapt_batch", "adapt_crop", "adapt_triplets")}
  if not steps:
    given = [f for f, v in flags.items() if v is not None]
    if given:
      raise ValueError(f"--{given[0]} applies with --adapt_steps=N (N > 0)")
    return None
  if pair:
    raise ValueError("--adapt_steps fine-tunes on triplets of consecutive input frames: give a video or a folder of "
                     "at least 3 frames, not two frames")
  lr, batch, crop, triplets = flags.values()
  if lr is not None and not lr > 0:  # NaN too
    raise ValueError(f"--adapt_lr must be > 0, got {lr:g}")
  if batch is not None and batch < 1:
    raise ValueError(f"--adapt_batch must be >= 1, got {batch}")
  if crop is not None and crop < 8:
    raise ValueError(f"--adapt_crop must be at least 8 pixels, got {crop}")
  if triplets is not None and triplets < 1:
    raise ValueError(f"--adapt_triplets must be >= 1, got {triplets}")
  options = adapt_lib.AdaptOptions(steps=steps, learning_rate=adapt_lib.DEFAULT_LEARNING_RATE if lr is None else lr,
                                   batch_size=adapt_lib.DEFAULT_BATCH if batch is None else batch, crop_size=crop)
  options.check()
  return options
