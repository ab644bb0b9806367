r"""Interpolate your own frames and videos with a trained jaxvfi model: a small library and its command line.

  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output mid.png            (t = 0.5)
  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output out/ --times=0.25,0.5,0.75
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output slow.mp4 --factor=4     (4x the frame rate)
  python -m jaxvfi.interpolate --workdir=W --video in.mov --output smooth.mp4 --fps=60      (any rate, e.g. 24000/1001)
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output frames/                 (a folder of PNGs)
  python -m jaxvfi.interpolate --workdir=W --frames shots/ --input_fps=24 --output out.mp4  (a folder of images in)
  python -m jaxvfi.interpolate --workdir=W --frames A.png B.png --output mid.png --pixel_shader   (paper 003 Alg. 1)
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output out.mp4 --tta         (test-time augmentation)
  python -m jaxvfi.interpolate --workdir=W --video in.mp4 --output out.mp4 --adapt_steps=150   (fine-tune on it first)

W is a training run's workdir (`python -m jaxvfi.main`): its `config.json` builds the model and the latest
`checkpoints/<step>/` gives the parameters. Or, with no workdir, the authors' released weights by name (fetched,
checked and cached on first use: `jaxvfi.released`), a one-file model (`python -m jaxvfi.weights export` or
`fetch`), or weights converted by `python -m jaxvfi.weights convert --arch=sepconv|superslomo`:

  python -m jaxvfi.interpolate --model=sepconv-lf --video in.mp4 --output out.mp4
  python -m jaxvfi.interpolate --weights=model.safetensors --frames A.png B.png --output mid.png
  python -m jaxvfi.interpolate --model=sepconv --weights=sepconv-lf.npz --video in.mp4 --output out.mp4
  python -m jaxvfi.interpolate --model=superslomo --weights=superslomo.npz --frames A.png B.png --output mid.png

The config is then the family's defaults (`configs/<model>.py`, installed as `jaxvfi.configs`) with the original
code's conventions that the weights need (the family's `RELEASED_MODEL_CONFIG`). This file is the command line
only; the library is `jaxvfi.inference` (interpolator.py: the model, its loading and times; frames.py: tiling,
alpha, scene cuts; retime.py: sources, retiming, video jobs, frame files):

  interp = interpolator.load_model("/tmp/run")                                    # or
  interp = interpolator.load_model(weights="sepconv-lf.npz", model="sepconv")
  middle, = interp.interpolate(frame0, frame1)          # uint8 HxWx3 in, uint8 HxWx3 out
  retime.interpolate_video(interp, "in.mp4", "out.mp4", fps=Fraction(60))

`--tta` (RIFE's test-time augmentation) makes each frame twice, from the inputs and from
the inputs rotated by 180 degrees, and averages them; a workdir whose config sets `test_time_augmentation` (the CPU
recipe, configs/refin.py:cpu) does so unless `--no_tta` is given.

`--adapt_steps=N` (test-time adaptation, `jaxvfi.inference.adapt`) fine-tunes the model for N steps on triplets of
consecutive frames of the input itself (up to `--adapt_triplets`, 64, spread over it, scene cuts skipped), each
frame f[i+1] the target between f[i] and f[i+2], with the run's loss and augmentation, Adam at `--adapt_lr` (1e-4)
decayed to 0, `--adapt_batch` (8) crops of `--adapt_crop` pixels; then it interpolates the input with the adapted
parameters. The workdir is not changed. It costs N training steps: about 0.43 s each for configs/refin.py:cpu on 2
CPU cores at its 64x64 crops and batch 8 (the time grows with crop area x batch; a crop larger than the frames is
cut to them). The log gives the training loss on one fixed batch of the triplets before and after, and the final
line the steps and their time. BENCHMARKS.md ("Test-time adaptation") has what it gains on the real videos.

Time. Super-SloMo takes any t in (0, 1) (it is trained on t in {1/8, ..., 7/8}); ReFIn takes t through the
intermediate-flow approximation, Eq. (1) of ReFIn, but is trained at t = 0.5 only, so other times are an
extrapolation of what it learnt (a log line says so). SepConv has no time input at all: it always makes the middle
frame, so other times are made by recursive bisection (t = 1/4 is the middle of frame0 and the t = 1/2 frame).
Explicit `--times` must then be dyadic, k / 2^n; when a video is retimed (`--fps`, or a `--factor` that is not a
power of two), each t is rounded to the nearest k / 2^D (D = `--dyadic_depth`, 4 by default: the frame is then shown
up to 1/32 of the input's frame interval early or late); the log and the final line give the largest such error.

Video timing is exact. Rates are rationals read from the stream (24000/1001, never 23.976), and every output frame
has the exact time it stands for. `--factor=N` on a constant-rate input writes N x its rate (24000/1001 x 2 =
48000/1001): each input frame and N - 1 new ones after it, the last input frame held for its whole duration, so the
output lasts exactly as long as the input. On a variable-rate input `--factor=N` keeps the input's timestamps and
splits each frame interval into N (log line; the output is variable-rate too). `--fps=R` makes a constant-rate
video at R from any input: frame k is at k / R and is made at its own t between the two input frames around it (or
is an input frame when it falls on one); its length is the input's rounded to the nearest output frame.

Video I/O is `jaxvfi.video_io` (PyAV, FFmpeg's libraries): anything FFmpeg probes as video is read (mp4, mkv, mov,
webm, avi, ts, m2ts, flv, 3gp, m4v, animated gif, ...). The output keeps the input's codec family when the output
container takes it, else the container's default codec (a log line says which); that choice is proved by writing one
frame into memory before the model is loaded, so a container that cannot hold a codec is one error, or a switch,
never a crash after inference. `--codec` forces an encoder. Audio tracks are copied unchanged, packet by packet, in
sync (re-encoded only where the container does not take the codec, with a log line); `--no_audio` drops them.

Alpha. RGBA stills and videos with alpha keep it: colour is interpolated premultiplied by alpha (so colour hidden
under transparent pixels does not bleed into the new frames) and alpha itself either through the model as a gray
image (`--alpha=model`, the default: it follows the motion), or as the linear blend (1 - t) a0 + t a1
(`--alpha=blend`, no extra model call). `--alpha=drop` writes RGB. Outputs that cannot hold alpha (mp4 with h264,
gif) are refused if the input's first frame has transparency, and written as RGB with a log line if it is opaque.

Scene cuts. Between two input frames that belong to different shots, the new frames repeat the earlier frame (no
cross-fade). A pair is a cut when `scene_score` (the smaller of the mean absolute pixel difference and the colour
histograms' total-variation distance, both in [0, 1]) exceeds `--scene_threshold` (0.12). Each cut is logged. Motion
changes the pixels but hardly the histograms, a change of shot changes both: on scikit-image's sample images, shifts
of up to 1/8 of the frame width score at most 0.08, while pairs of different images score 0.09 to 0.5 (median 0.29).
Fades and flashes can score above the threshold; `--no_scene_detect` turns detection off.

Large frames. Frames are processed whole, in one call (the models pad H and W to their alignment and crop back;
each frame size compiles once), unless `--tile=T`: then the frame is cut into T x T tiles, each run with
`--tile_overlap` pixels of real context around it (all windows one size: one compile), and only the tile's own
pixels are kept. The result equals the whole-frame result wherever the model's receptive field stays inside the
window; pixels near the seams and the frame border can differ.

Inputs: PNG/JPEG/... frames are read with Pillow (EXIF orientation applied; grayscale and palette -> RGB; 16-bit
PNGs scaled to 8 bits), `--frames DIR` takes a folder's images in natural order (2 before 10), all of one size,
with the rate `--input_fps` (needed for a video output or `--fps`); without it the frames have no durations, so
M of them give (M - 1) N + 1 under `--factor=N`, ending on the last one. Bad input, an impossible output and every
invalid flag give one `jaxvfi: error: ...` line before the model is loaded. Outputs never replace an input.
Outputs are written atomically: a PNG through a temporary file renamed into place, a video into a temporary file
beside the destination renamed at the end, a folder of frames built in a hidden sibling folder and swapped in whole
(an existing folder is replaced only if it holds nothing but frames this tool writes), so an interrupted run
leaves no half-written file, no temporary file and no mix of stale and new frames. A progress bar shows frames/s
and the time left; the final line gives frames in -> out, duration in -> out and the frame rates.
"""
from __future__ import annotations

import argparse
import time as time_lib

from absl import app
from absl import logging

from jaxvfi import pixel_shader as pixel_shader_lib
from jaxvfi import video_io
from jaxvfi.inference import adapt as adapt_lib
from jaxvfi.inference import cli
from jaxvfi.inference import frames
from jaxvfi.inference import interpolator
from jaxvfi.inference import retime


def build_parser(prog: str = "python -m jaxvfi.interpolate") -> cli.Parser:
  """The command line's parser. A new flag goes into one of its groups here and is checked in
  `jaxvfi.inference.cli.check_args`."""
  parser = cli.make_parser(prog, __doc__, 4)
  model = parser.add_argument_group("model (a training run, or released weights)")
  model.add_argument("--workdir", help="workdir of a training run (config.json, checkpoints/)")
  model.add_argument("--weights", help="instead of --workdir: a model file (.safetensors from jaxvfi.weights fetch, "
                     "convert or export), or a converted .npz with --model=FAMILY")
  model.add_argument("--model", help="alone: a released model, fetched and cached on first use (sepconv-lf, "
                     "sepconv-l1, superslomo); with an .npz --weights: its family (sepconv, superslomo)")
  io = parser.add_argument_group("input and output")
  source = io.add_mutually_exclusive_group(required=True)
  source.add_argument("--frames", nargs="+", metavar="FRAME",
                      help="two image files of one size, or one folder of images (natural order)")
  source.add_argument("--video", help="a video file: anything ffmpeg reads as video (mp4, mkv, mov, gif, ts, ...)")
  io.add_argument("--output", required=True,
                  help="two frames: a .png for one time, a folder for several; a video or a folder of frames: a "
                  "video file (its extension picks the container) or a folder for frame_000000.png, ...")
  io.add_argument("--input_fps", default=None, help="the rate of a --frames folder, e.g. 24 or 24000/1001")
  io.add_argument("--codec", default=None,
                  help="video encoder to use, e.g. libx264, libx265, libvpx-vp9, ffv1, prores_ks, png (default: "
                  "the input's codec family if the container takes it, else the container's default)")
  io.add_argument("--no_audio", "--no-audio", dest="no_audio", action="store_true",
                  help="do not carry the input video's audio over")
  timing = parser.add_argument_group("timing")
  timing.add_argument("--factor", type=int, default=None,
                      help="N >= 2: N x the frame rate (two frames: t = k/N); default 2")
  timing.add_argument("--fps", default=None, help="output frame rate, exact: 60, 59.94 or 60000/1001")
  timing.add_argument("--times", default=None, help="two frames only: comma-separated times in (0, 1)")
  timing.add_argument("--dyadic_depth", type=int, default=interpolator.DEFAULT_DYADIC_DEPTH,
                      help=f"models without a time input: retimed t rounded to k/2^D, 1 <= D <= "
                      f"{interpolator.MAX_BISECTION_DEPTH}")
  making = parser.add_argument_group("making frames")
  making.add_argument("--alpha", choices=frames.ALPHA_MODES, default="model",
                      help="alpha of RGBA input: through the model (default), blended linearly, or dropped")
  making.add_argument("--scene_threshold", type=float, default=None,
                      help=f"scene_score above which a pair is a cut and its frame is repeated; default "
                      f"{frames.SCENE_THRESHOLD}")
  making.add_argument("--no_scene_detect", action="store_true", help="interpolate across scene cuts too")
  making.add_argument("--pixel_shader", nargs="?", const="paper", default=None,
                      choices=tuple(pixel_shader_lib.SHADERS),
                      help="blend every made frame towards the inputs' average where they barely differ (SepConv-GAN "
                           "Algorithm 1, jaxvfi.pixel_shader); constants: paper (default) or code")
  tta = making.add_mutually_exclusive_group()
  tta.add_argument("--tta", "--test_time_augmentation", dest="test_time_augmentation", action="store_true",
                   default=None, help="average each frame with the one made from the inputs rotated by 180 degrees "
                   "(RIFE's TTA; BENCHMARKS.md has its gain), two model evaluations a frame; default: the run's "
                   "config.test_time_augmentation (on in configs/refin.py:cpu)")
  tta.add_argument("--no_tta", "--no-tta", dest="test_time_augmentation", action="store_false",
                   help="one model evaluation a frame, whatever the run's config says")
  making.add_argument("--tile", type=int, default=0, help="process frames in T x T tiles (0: whole frames)")
  making.add_argument("--tile_overlap", type=int, default=None,
                      help=f"pixels of context around each tile; default {frames.DEFAULT_TILE_OVERLAP}")
  adapting = parser.add_argument_group("test-time adaptation (a video or a folder of frames)")
  adapting.add_argument("--adapt_steps", type=int, default=0,
                        help="N > 0: first fine-tune the model for N steps on triplets of consecutive input frames "
                        "(the input's own frames are the ground truth; triplets across scene cuts are skipped; "
                        "jaxvfi.inference.adapt); 0: off")
  adapting.add_argument("--adapt_lr", type=float, default=None,
                        help=f"Adam's peak learning rate (default {adapt_lib.DEFAULT_LEARNING_RATE:g})")
  adapting.add_argument("--adapt_batch", type=int, default=None,
                        help=f"triplets per step (default {adapt_lib.DEFAULT_BATCH})")
  adapting.add_argument("--adapt_crop", type=int, default=None,
                        help="crop side in pixels (default: the run's data.crop_size, or "
                        f"{adapt_lib.DEFAULT_CROP} if it trained on whole frames)")
  adapting.add_argument("--adapt_triplets", type=int, default=None,
                        help="at most this many triplets, spread evenly over the input (default "
                        f"{adapt_lib.DEFAULT_MAX_TRIPLETS})")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  return parser


def _parse_flags(argv: list[str]) -> argparse.Namespace:
  return build_parser().parse_args(argv[1:])


def run(args: argparse.Namespace) -> list[str]:
  """What the command line does; returns the paths written. Everything is checked before the model is loaded."""
  req = cli.check_args(args)
  keep_alpha = req.options.alpha != "drop"
  if req.pair:
    pair_frames = frames.read_frame_pair(*req.pair, keep_alpha=keep_alpha)
    paths = retime.check_frame_outputs(req.output, req.times, req.pair)
    interpolator.check_times_before_loading(req.model_source, req.times)
    interp = interpolator.load_model(**req.model_source)
    started = time_lib.time()
    paths = retime.interpolate_frame_files(interp, *req.pair, req.output, req.times, frames=pair_frames,
                                          options=req.options)
    print(f"{req.output}: frames 2 -> {len(paths)} new at t = {', '.join(f'{t:g}' for t in req.times)}, "
          f"{time_lib.time() - started:.1f} s")
    return paths
  if req.video:
    source = retime.open_video_source(req.video, alpha=keep_alpha)
  else:
    source = retime.open_folder_source(req.folder, req.input_fps, alpha=keep_alpha)
  job = retime.prepare_video_job(source, req.output, req.factor, req.fps, req.options, req.codec, req.audio)
  if not source.constant_rate:
    how = (f"converted to a constant {video_io.format_rate(req.fps)} fps" if req.fps else
           f"keeping its timestamps, each interval split into {req.factor} (--fps=R converts to a constant rate)")
    logging.info("%s has a variable frame rate (intervals %.2f to %.2f ms, mean %s fps): %s", source.name,
                 float(source.info.min_interval) * 1000, float(source.info.max_interval) * 1000,
                 video_io.format_rate(source.rate), how)
  triplets = None
  if req.adapt:  # read before the model loads: too few frames is one error, early
    triplets = adapt_lib.triplets_of_source(source, req.adapt_triplets, req.options.scene_threshold)
  interp = interpolator.load_model(**req.model_source)
  adapted = adapt_lib.adapt(interp, triplets, req.adapt, req.progress) if triplets is not None else None
  if getattr(interp, "time_free", False) and (req.fps or (req.factor & (req.factor - 1))):
    logging.info("%s has no time input: each t is rounded to the nearest k/%d (--dyadic_depth=%d)", interp.name,
                 2 ** req.options.dyadic_depth, req.options.dyadic_depth)
  stats = job.run(interp, req.progress)
  summary = stats.summary(req.output)
  if adapted is not None:
    summary += f", after {adapted.steps} adaptation step{'s' if adapted.steps != 1 else ''} ({adapted.seconds:.1f} s)"
  print(summary)
  return [req.output]


def main(args: argparse.Namespace) -> None:
  cli.run_tool(run, args)


def console_main() -> None:
  """The `jaxvfi-interpolate` console script."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)

