"""The interpolation model: an `Interpolator` (a model and its parameters) loaded from a training run's workdir or
from released weights, and the times it can make.

  interp = interpolator.load_model("/tmp/run")                                    # or
  interp = interpolator.load_model(model="sepconv-lf")                            # released, fetched once
  interp = interpolator.load_model(weights="model.safetensors")                   # any one-file model
  interp = interpolator.load_model(weights="sepconv-lf.npz", model="sepconv")
  middle, = interp.interpolate(frame0, frame1)          # uint8 HxWx3 in, uint8 HxWx3 out

A workdir's `config.json` builds the model and its latest `checkpoints/<step>/` gives the parameters. A model file
(`jaxvfi.model_file`: `weights fetch`, `convert --dst=X.safetensors` or `export`) carries its family and model
config. A released name (`jaxvfi.released`) is fetched into the cache on first use. A bare `.npz` from
`python -m jaxvfi.weights convert --arch=sepconv|superslomo` takes its family's default config, shipped in the
package as `jaxvfi.configs.<model>` (`config_lib.packaged_config`), with the original code's conventions that the
weights need (the family's `RELEASED_MODEL_CONFIG`).

Time. Super-SloMo takes any t in (0, 1); ReFIn takes any t through Eq. (1) of ReFIn but is trained at t = 0.5 only
(`Interpolator.check_times` warns once). SepConv has no time input: it always makes the middle frame, so other times
come from recursive bisection (`Interpolator.interpolate`) and must be dyadic, k / 2^n with n <= MAX_BISECTION_DEPTH;
retimed videos round each t to the nearest k / 2^D (`nearest_dyadic`, D = DEFAULT_DYADIC_DEPTH unless asked).
"""
from __future__ import annotations

from fractions import Fraction
import os
from typing import Any, Sequence

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvfi import batches
from jaxvfi import checkpoints
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import model_file
from jaxvfi import pixel_shader as pixel_shader_lib
from jaxvfi import released
from jaxvfi import utils
from jaxvfi import torch_weights
from jaxvfi import weights as weights_lib

MAX_BISECTION_DEPTH = 8  # t = k / 256 at the finest
DEFAULT_DYADIC_DEPTH = 4


# ----------------------------------------------------------------------------------------------------------------
# Times.


def times_for_factor(factor: int) -> tuple[float, ...]:
  """The N - 1 times k / N (k = 1 .. N - 1) that multiply the frame rate by N."""
  if int(factor) != factor or factor < 2:
    raise ValueError(f"factor must be an integer >= 2, got {factor}")
  return tuple(k / factor for k in range(1, int(factor)))


def _dyadic(t: float) -> Fraction | None:
  f = Fraction(t).limit_denominator(2 ** MAX_BISECTION_DEPTH)
  if abs(float(f) - t) > 1e-9 or f.denominator & (f.denominator - 1):
    return None
  return f


def nearest_dyadic(t: Fraction, depth: int) -> Fraction:
  """t rounded to the nearest k / 2^depth (ties to even k); may be 0 or 1."""
  return Fraction(round(Fraction(t) * 2 ** depth), 2 ** depth)


# ----------------------------------------------------------------------------------------------------------------
# The model.


class Interpolator:
  """A trained model and its parameters; `interpolate` makes the frames between two frames."""

  def __init__(self, model: nn.Module, params: Any, config: ml_collections.ConfigDict, step: int = 0,
               pixel_shader: str | None = None, test_time_augmentation: bool | None = None):
    self.model = model
    self.pixel_shader = pixel_shader  # None, or a `jaxvfi.pixel_shader.SHADERS` name applied to every made frame
    # Each frame averaged with the one made from the 180-degree rotated inputs (`jaxvfi.families.predict`); None: the
    # config's `test_time_augmentation`.
    self.test_time_augmentation = (families.of(config).check_test_time_augmentation(config) if test_time_augmentation is None
                                   else bool(test_time_augmentation))
    if self.test_time_augmentation:
      logging.info("test-time augmentation on: each frame is the mean of two model evaluations, on the inputs and on "
                   "the inputs rotated by 180 degrees (--no_tta turns it off)")
    self.params = params
    self.config = config
    self.step = step
    self.name = config.model.get("name")
    # A family without a time input (`HAS_TIME_INPUT = False`, e.g. SepConv) reaches other times by bisection.
    self.time_free = not families.of(config).has_time_input
    data = config.get("data") or ml_collections.ConfigDict()
    # The one t the model saw in training, or None for arbitrary-time training (data.t_sampling = "uniform").
    self.trained_t = float(data.get("t", 0.5)) if data.get("t_sampling", "fixed") == "fixed" else None
    self.num_traces = 0  # frame sizes compiled so far
    # Every time asked that is not trained_t, and those the one warning of check_times named: a video run names the
    # rest at its end (`jaxvfi.inference.retime`).
    self.extrapolated_times: set[float] = set()
    self.warned_times: set[float] = set()
    self._predict = jax.jit(self._apply)

  def _apply(self, params, batch):
    self.num_traces += 1  # runs at trace time only: once per frame size
    image = families.predict(self.model, params, batch, self.test_time_augmentation)["image"]
    if self.pixel_shader:
      image = pixel_shader_lib.pixel_shader(batch["frame0"], batch["frame1"], image, self.pixel_shader)
    return image

  def check_times(self, times: Sequence[float]) -> list[float]:
    """The times as floats, or one ValueError for times this model cannot make; warns once about untrained t."""
    times = [float(t) for t in times]
    if not times:
      raise ValueError("no times to interpolate")
    bad = [t for t in times if not 0.0 < t < 1.0]
    if bad:
      raise ValueError(f"times must lie strictly between 0 and 1, got {bad}")
    if self.time_free:
      odd = [t for t in times if _dyadic(t) is None]
      if odd:
        raise ValueError(f"{self.name} has no time input: it makes t = 0.5 and, by recursive bisection, t = k/2^n "
                         f"(k/{2 ** MAX_BISECTION_DEPTH} at the finest; video factors 2, 4, 8, ...); cannot make "
                         f"t = {', '.join(f'{t:g}' for t in odd)}")
    elif self.trained_t is not None:
      untrained = sorted({t for t in times if abs(t - self.trained_t) > 1e-9})
      if untrained and not self.warned_times:
        self.warned_times.update(untrained)
        logging.warning("this %s model was trained at t = %g only; t = %s extrapolates what it learnt", self.name,
                        self.trained_t, ", ".join(f"{t:g}" for t in untrained))
      self.extrapolated_times.update(untrained)
    return times

  def _middle(self, frame0: jax.Array, frame1: jax.Array, t: float) -> jax.Array:
    batch = {"frame0": frame0, "frame1": frame1, "t": jnp.full((1,), t, jnp.float32)}
    return self._predict(self.params, batch)

  def interpolate(self, frame0: np.ndarray, frame1: np.ndarray, times: Sequence[float] = (0.5,)) -> list[np.ndarray]:
    """Frames at `times` between frame0 (t = 0) and frame1 (t = 1), as uint8 HxWx3.

    Args:
      frame0, frame1: HxWx3 RGB of one size, uint8 or float in [0, 1]. Any H and W: the models pad and crop back.
      times: each in (0, 1). Super-SloMo is trained for arbitrary t. ReFIn accepts any t (Eq. (1) of ReFIn scales
        the flows by t) but is trained at t = 0.5 only. SepConv has no time input and is trained at t = 0.5: other
        times come from recursive bisection and must be k / 2^n.

    Returns:
      One uint8 HxWx3 frame per time, in the order of `times`.
    """
    f0, f1 = _as_model_input(frame0, "frame0"), _as_model_input(frame1, "frame1")
    if f0.shape != f1.shape:
      raise ValueError(f"frame0 and frame1 must have one size, got {f0.shape[1:3]} and {f1.shape[1:3]}")
    times = self.check_times(times)
    if self.time_free:
      images = self._bisect(f0, f1, times)
    else:
      images = [self._middle(f0, f1, t) for t in times]
    return [utils.to_uint8(np.asarray(img[0])) for img in images]

  def _bisect(self, f0: jax.Array, f1: jax.Array, times: list[float]) -> list[jax.Array]:
    """Frames at dyadic times by repeated midpoints; each midpoint is computed once and kept in float."""
    known = {Fraction(0): f0, Fraction(1): f1}
    out = []
    for t in times:
      target, lo, hi = _dyadic(t), Fraction(0), Fraction(1)
      while True:
        mid = (lo + hi) / 2
        if mid not in known:
          # Clipped like a real frame: the next level takes it as an input frame.
          known[mid] = jnp.clip(self._middle(known[lo], known[hi], 0.5), 0.0, 1.0)
        if mid == target:
          break
        lo, hi = (lo, mid) if target < mid else (mid, hi)
      out.append(known[target])
    return out


def _as_model_input(frame: np.ndarray, name: str) -> jax.Array:
  frame = np.asarray(frame)
  if frame.ndim != 3 or frame.shape[-1] != 3:
    raise ValueError(f"{name} must be HxWx3 RGB, got shape {frame.shape} (read_frame converts files)")
  x = frame.astype(np.float32) / np.float32(255.0) if frame.dtype == np.uint8 else frame.astype(np.float32)
  return jnp.asarray(x[None])  # on the device once, for every time asked


def load_model(workdir: str | None = None, config: ml_collections.ConfigDict | None = None, *,
               weights: str | None = None, model: str | None = None, pixel_shader: str | None = None,
               test_time_augmentation: bool | None = None) -> Interpolator:
  """The model of a training run's workdir with the parameters of its latest checkpoint, or released weights.

  Args:
    workdir: a `python -m jaxvfi.main` workdir, holding `config.json` and `checkpoints/<step>/`.
    config: the run's config; None reads `workdir/config.json` (with `weights`: the packaged
      `jaxvfi.configs.<model>`'s defaults).
    weights: instead of a workdir, a model file (`jaxvfi.model_file`), or a .npz from `python -m jaxvfi.weights
      convert --arch=<model>` (then `model` names its family).
    model: alone, a released model's name (`jaxvfi.released.NAMES`, e.g. "sepconv-lf"), fetched on first use; with a
      .npz `weights`, its family, one of `jaxvfi.families.released_families()` ("sepconv", "superslomo"), whose
      config gets the switches those weights need.
    pixel_shader: None, or "paper" | "code": SepConv-GAN's shader (`jaxvfi.pixel_shader`) on every frame made.
    test_time_augmentation: average each frame with the one made from the 180-degree rotated inputs (RIFE's TTA,
      twice the time); None: the config's `test_time_augmentation` (False unless the run set it).

  Raises:
    FileNotFoundError: the workdir has no config.json (and no config was given) or no checkpoint; the weights file
      does not exist.
    ValueError: config.json is unreadable, the checkpoint or weights do not fit the model the config builds, or the
      arguments name neither or both sources.
  """
  if weights is not None or model is not None:
    if workdir is not None:
      raise ValueError("give a training workdir, or released weights and their model, not both")
    return _load_released(weights, model, config, pixel_shader, test_time_augmentation)
  if workdir is None:
    raise ValueError("give a training workdir, or released weights and their model (weights=..., model=...)")
  if config is None and os.path.isfile(os.path.join(os.path.abspath(os.path.expanduser(workdir)), "config.json")):
    config = checkpoints.read_config(workdir)
  if config is not None:
    _check_family(config, workdir)  # before the checkpoint is read: a DSFN or SDAN workdir is one clear error
  model, params, config, step = checkpoints.load_trained(workdir, config)
  logging.info("loaded %s from step %d of %s", config.model.get("name"), step, os.path.abspath(workdir))
  return Interpolator(model, jax.device_put(params), config, step, pixel_shader=pixel_shader,
                      test_time_augmentation=test_time_augmentation)


def _check_family(config, workdir: str) -> None:
  if not batches.is_triplet(families.of(config).example_batch(config)):
    raise ValueError(f"workdir {workdir} holds a {config.model.get('name')!r} model, which does not interpolate "
                     "between two frames; jaxvfi.interpolate needs a frame interpolation model (configs/refin.py, "
                     "superslomo.py, sepconv.py, sepconv_gan.py); for DSFN use python -m jaxvfi.enhance, for SDAN "
                     "python -m jaxvfi.zoom")


def family_of_source(weights: str | None, model: str | None) -> str | None:
  """The family `load_model(weights=..., model=...)` builds: a released name's, a model file's, or `model` itself."""
  if model in released.MODELS:
    return released.MODELS[model].family
  if model is not None:
    return model
  return model_file.family_of(weights) if weights is not None else None


def _load_released(path: str | None, name: str | None, config: ml_collections.ConfigDict | None,
                   pixel_shader: str | None = None, test_time_augmentation: bool | None = None) -> Interpolator:
  if path is None:
    interpolation = ", ".join(n for n, m in released.MODELS.items() if m.family)
    if name not in released.MODELS:
      raise ValueError(f"--model alone takes a released interpolation model's name ({interpolation}); a family name "
                       f"({name!r}) needs --weights=FILE")
    if released.MODELS[name].family is None:
      raise ValueError(f"{name} is not an interpolation model (it is {released.MODELS[name].arch} weights for a "
                       f"config, e.g. --config.model.flow_weights=); interpolation models: {interpolation}")
    path = weights_lib.fetch(name)
  if model_file.is_model_file(path):
    family, wanted = model_file.family_of(path), family_of_source(None, name)
    if name is not None and wanted != family:
      raise ValueError(f"{path} holds a {family or 'network part'} model, not {name}")
    module, params, config, step = weights_lib.load_model_file(path, config)
    _check_family(config, path)
    logging.info("loaded %s from %s", config.model.get("name"), os.path.abspath(path))
    return Interpolator(module, jax.device_put(params), config, step, pixel_shader=pixel_shader,
                        test_time_augmentation=test_time_augmentation)
  if not name:
    raise ValueError(f"{path} is not a model file, so it does not say which model it fills: add --model=FAMILY "
                     f"({', '.join(families.released_families())})")
  name = family_of_source(None, name)
  released_families = families.released_families()
  if name not in released_families:
    raise ValueError(f"--model must be one of {', '.join(released_families)} (the families with released weights), "
                     f"got {name!r}")
  family = families.get_family(name)
  if config is None:
    config = config_lib.packaged_config(name)
  config = config.copy_and_resolve_references()
  config.model.update(family.released_model_config)
  module = family.build(config.model)
  params = torch_weights.load_params(family.torch_layout, path)
  want = jax.tree.map(lambda x: tuple(x.shape), checkpoints.params_template(module, config))
  got = jax.tree.map(lambda x: tuple(x.shape), params)
  if got != want:
    raise ValueError(f"{path}: the converted {name} parameters do not fit the model that {name}'s config builds")
  logging.info("loaded %s from released weights %s", name, os.path.abspath(path))
  return Interpolator(module, jax.device_put(params), config, 0, pixel_shader=pixel_shader,
                      test_time_augmentation=test_time_augmentation)


def check_times_before_loading(model_source: dict, times: Sequence[float]) -> None:
  """Refuses, before the weights load, times that a family without a time input cannot make (Interpolator's
  check_times says the same after loading); a config that cannot be read is left to load_model to report.

  Args:
    model_source: load_model's keywords (workdir=W, or weights=F and/or model=M).
    times: the times asked, each in (0, 1).

  Raises:
    ValueError: the family has no time input and a time is not k / 2^n.
  """
  try:
    if "workdir" in model_source:
      model_config = checkpoints.read_config(model_source["workdir"]).model
    else:
      model_config = ml_collections.ConfigDict(
          {"name": family_of_source(model_source.get("weights"), model_source.get("model"))})
    name, has_time_input = model_config.get("name"), families.get_family(model_config.get("name")).has_time_input
  except (OSError, ValueError, AttributeError, KeyError):
    return
  if not has_time_input:
    odd = [t for t in times if _dyadic(t) is None]
    if odd:
      raise ValueError(f"{name} has no time input: it makes t = 0.5 and, by recursive bisection, t = k/2^n "
                       f"(k/{2 ** MAX_BISECTION_DEPTH} at the finest; factors 2, 4, 8, ...); cannot make "
                       f"t = {', '.join(f'{t:g}' for t in odd)}")

