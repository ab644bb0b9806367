"""Every family learns: a few steps of its `runlocal` recipe on one fixed batch lower the loss by a stated factor
and lift the model's PSNR on that batch above the trivial baseline's.

Each case is `configs/<paper>.py:runlocal` with the family's own network, loss, optimizer, schedule and train step
(`make_train_setup`), shrunk for CPU time only in batch, crop and (ReFIn, Super-SloMo) UNet width; SepConv-GAN's case
also departs from its recipe in two stated overrides (generator learning rate, adversarial weight; its comment says why
and what the recipe itself does on the same batch). The batch is one draw of the family's own training pipeline
(`input_pipeline.make_train_dataset`, the preset's crops and flips) over the first examples of its embedded dataset,
made in memory by the dataset's example generator (no TFDS build).

Oracles: the loss at the last step against the first (a factor K, each measured in this file's cases with margin);
PSNR on the batch after training against the baseline the family is scored beside: the frame average (I0 + I1) / 2
for the triplet families, the family's `baselines` hook ("bicubic") for DSFN and SDAN. Untrained, the models sit
below or at that baseline (measured: 3.4-18.5 dB, ReFIn 0.1 dB above it); the margins after training are below.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from jaxvfi import config_lib
from jaxvfi import families
from jaxvfi import input_pipeline
from jaxvfi import metrics
from jaxvfi.datasets import synthetic
from jaxvfi.datasets import synthetic_blur
from jaxvfi.models import dsfn


def _train_on_batch(config, batch: dict[str, jax.Array], steps: int) -> tuple[list[float], jax.Array, jax.Array]:
  """`steps` optimisation steps of the family's own train step on `batch`, from its own initialisation.

  Every call into the trainer and the family API is here, in one place.

  Args:
    config: a loaded training config.
    batch: one batch of the family's batch scheme (jax arrays).
    steps: optimisation steps; also the schedule's length (total_steps and one epoch), as in a run of that length.

  Returns:
    (losses, image, baseline): the "loss" metric of every step (before that step's update), preds["image"] after
    the last step (`train=False`, the prediction the evaluators score), and the trivial prediction in the same
    layout (the family's `baselines` hook "bicubic", else the frame average of a triplet batch).
  """
  family = families.of(config)
  model = family.build(config.model)
  loss_fn, _ = family.make_loss_fn(config)
  setup = family.make_train_setup(config, model, loss_fn, family.example_batch(config), steps, steps)
  state = setup.init(jax.random.PRNGKey(int(config.seed)))
  step = jax.jit(setup.step)
  losses = []
  for i in range(steps):
    state, step_metrics = step(state, batch, jax.random.PRNGKey(i))
    losses.append(float(step_metrics["loss"]))
  image = jax.jit(lambda params, b: families.predict(model, params, b)["image"])(state.params, batch)
  if family.baselines is not None:
    baseline = family.baselines(batch, config)["bicubic"]
  else:
    baseline = 0.5 * (batch["frame0"] + batch["frame1"])
  return losses, image, baseline


# The embedded datasets' example generators, by `data.name`: (config, index) -> example, as the builders write it.
_EXAMPLES: dict[str, Callable[[Any, int], dict[str, Any]]] = {
    "jaxvfi_synthetic": lambda c, i: synthetic.make_clip("train", i, size=(c.data.synthetic_size,) * 2,
                                                         num_frames=c.data.synthetic_num_frames),
    "jaxvfi_synthetic_blur": lambda c, i: synthetic_blur.make_example("train", i, size=(c.data.synthetic_size,) * 2),
    "jaxvfi_synthetic_zoom": lambda c, i: synthetic.make_zoom_pair("train", i, size=c.data.synthetic_size),
}


def _fixed_batch(config) -> dict[str, jax.Array]:
  """Batch 0 of the family's training pipeline over the first `batch_size` examples of its embedded dataset."""
  source = [_EXAMPLES[config.data.name](config, i) for i in range(config.batch_size)]
  batch = input_pipeline.make_train_dataset(source, config.data, config.batch_size, seed=int(config.seed))[0]
  return jax.tree.map(jnp.asarray, batch)


def _psnr(image: jax.Array, target: jax.Array, border: int = 0) -> float:
  """Mean PSNR (dB) over the frames of (..., H, W, 3) images in [0, 1], `border` px cropped from each side."""
  frames = lambda x: jnp.clip(x.reshape((-1,) + x.shape[-3:]), 0.0, 1.0)
  crop = lambda x: x[:, border:x.shape[1] - border, border:x.shape[2] - border]
  return float(jnp.mean(metrics.psnr(crop(frames(image)), crop(frames(target)))))


@dataclasses.dataclass(frozen=True)
class Case:
  """One family's learning check.

  Attributes:
    paper: configs/<paper>.py.
    arg: the config argument (runlocal and its variant).
    overrides: config overrides that shrink the run for CPU time (batch, crop, UNet width); any other override is a
      departure from the recipe, named and justified in the case's comment (SepConv-GAN only).
    steps: optimisation steps on the fixed batch.
    loss_factor: K: the last step's loss must be at most the first's / K.
    target: batch -> the frames preds["image"] is scored against (the family's evaluator's target).
    border: px cropped from each side before PSNR (where the loss does not reach).
  """
  paper: str
  arg: str
  overrides: dict[str, Any]
  steps: int
  loss_factor: float
  target: Callable[[dict[str, jax.Array]], jax.Array]
  border: int = 0


_TRIPLET_TARGET = lambda b: b["target"]

# Measured on 2 CPU cores (this file's seeds): loss ratio first / last and PSNR after training against the baseline.
CASES = {
    # ReFIn runlocal (flow UNet) at a quarter of the UNets' width, one 32x32 crop of rendered clip 0.
    # Measured: ratio 1.27, PSNR 21.93 dB against the frame average's 17.43 dB (17.56 before training).
    # flow=unet: the learned flow (runlocal's default is DIS, which has nothing to learn).
    "refin": Case("refin", "runlocal,data=rendered,flow=unet",
                  {"batch_size": 1, "model.unet_width": 0.25, "data.crop_size": 32}, steps=40, loss_factor=1.15, target=_TRIPLET_TARGET),
    # Super-SloMo runlocal at a quarter of the UNets' width, one 32x32 crop; seed 2 draws a crop with motion (seed
    # 0's is still background, where the frame average is already 42.7 dB). The loss is mostly the warp term.
    # Measured: ratio 1.09, PSNR 20.07 dB against the frame average's 18.86 dB.
    "superslomo": Case("superslomo", "runlocal", {"batch_size": 1, "model.unet_width": 0.25, "data.crop_size": 32,
                                                  "seed": 2},
                       steps=40, loss_factor=1.05, target=_TRIPLET_TARGET),
    # SepConv runlocal (the paper's 21.7 M-parameter network, 51 taps) on one 32x32 crop; it starts far off (5.1 dB:
    # the random kernels do not sum to 1). Measured: ratio 6.27, PSNR 19.58 dB against the frame average's 17.43 dB.
    "sepconv": Case("sepconv", "runlocal", {"batch_size": 1, "data.crop_size": 32},
                    steps=60, loss_factor=3.0, target=_TRIPLET_TARGET),
    # DSFN runlocal (the paper's 10.9 M-parameter network) on one 32x32 HR crop (8x8 inputs) of a 64x64 example.
    # Measured: ratio 1.49, PSNR 22.10 dB against bicubic's 20.46 dB (18.53 before training).
    "dsfn": Case("dsfn", "runlocal", {"batch_size": 1, "data.synthetic_size": 64,
                                      "data.augmentation_args": {"crop_size": 32, "noise_std": 0.01}},
                 steps=40, loss_factor=1.3, target=lambda b: b["sharp"][:, np.asarray(dsfn.IMAGE_FRAMES)]),
    # SDAN runlocal (RAW input, 32 features, 8 blocks) on one 8x8 packed crop (16x16 RGB, 64x64 target), the loss
    # border lowered to 8 px to leave something of it; PSNR inside that border. The input shot's colours are not
    # the target's (the embedded pairs' camera gains), hence bicubic's low PSNR.
    # Measured: ratio 11.69, PSNR 18.65 dB against bicubic's 12.51 dB (40 steps: 12.4 dB, not yet above it).
    "sdan": Case("sdan", "runlocal", {"batch_size": 1, "data.synthetic_size": 128,
                                      "data.augmentation_args": {"crop_size": 8}, "loss.border": 8},
                 steps=120, loss_factor=4.0, target=lambda b: b["hr_rgb"], border=8),
    # SepConv-GAN runlocal through its own GAN step (`gan_step`: the 21.7 M-parameter LeakyReLU generator, the
    # discriminator head on the trainable, randomly initialised VGG-19, which the step trains on the same batch; both
    # Adams after per-tensor clipping to norm 5) on one 96x96 crop (the discriminator's minimum), batch 1. Two
    # departures from the recipe, both measured on this batch:
    #  * generator lr 2e-4, not 6e-4. At 6e-4 the generator blows up again and again (outputs from -11 to 84 against
    #    targets in [0, 1]; the loss reaches 1e4-2e6) and 150 steps end below the frame average: 15.17 dB with the
    #    full loss, 16.27 dB with the adversarial weight 0. Its gradients (0-255 units) are 80 in global norm at init,
    #    400 to 5e8 after, and from step 1 on 71 to 94 of its 94 tensors are over the clip of 5 (27 at init), so
    #    Adam's steps stay near lr per weight however large the error; at 2e-4, 35-60 of 94 from step 7 on, and the
    #    loss does not blow up.
    #    The L1 term alone at 6e-4 fails too, with the clip and ReLU (12.24 dB after 40 steps) or LeakyReLU without
    #    the clip (3.54 dB), while SepConv's own recipe (ReLU, no clip, lr 1e-3) passes 16.32 dB by step 40 here.
    #  * adversarial weight 0 (perceptual 1 and L1 0.4 kept). With La the discriminator, which sees the one real
    #    frame, is at its floor (loss H(0.875) = 0.3768 under label smoothing 0.25) by step ~20, and La then swings
    #    between 0.2 and 23 from step to step: PSNR after 100 / 110 / 120 steps 12.36 / 16.79 / 17.04 dB at lr 2e-4,
    #    after 120 / 140 steps 17.60 / 11.89 dB at 1e-4, so no step count gives a claim.
    # Measured (2 CPU cores): ratio 6.13 (63.65 -> 10.39), PSNR 18.24 dB against the frame average's 16.32 dB
    # (3.55 dB untrained; after 80 / 90 / 100 / 110 / 150 steps 16.09 / 17.15 / 16.37 / 17.82 / 18.64 dB). The slowest
    # case: 160 s under `nice` on a nearly idle machine with a cold compilation cache (about 1.0 s a step), several
    # times that beside other jobs.
    "sepconv_gan": Case("sepconv_gan", "runlocal",
                        {"batch_size": 1, "optimizer.schedule.init_value": 2e-4,
                         "loss.weights": {"perceptual": 1.0, "l1": 0.4, "adversarial": 0.0, "luminosity": 0.0}},
                        steps=120, loss_factor=4.0, target=_TRIPLET_TARGET),
}

_GROUPS = {"refin": "refin", "superslomo": "refin", "sepconv": "refin", "dsfn": "dsfn", "sdan": "sdan",
           "sepconv_gan": "sepconv_gan"}  # each family's training tests' xdist group: compiled programs shared


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.xdist_group(_GROUPS[n])]) for n in CASES])
def test_family_learns_one_batch(name):
  case = CASES[name]
  config = config_lib.load_config(os.path.join(ROOT, "configs", f"{case.paper}.py"), case.arg, case.overrides)
  batch = _fixed_batch(config)
  losses, image, baseline = _train_on_batch(config, batch, case.steps)
  target = case.target(batch)
  model_psnr, baseline_psnr = _psnr(image, target, case.border), _psnr(baseline, target, case.border)
  print(f"{name}: loss {losses[0]:.4g} -> {losses[-1]:.4g} (ratio {losses[0] / losses[-1]:.2f}), PSNR "
        f"{model_psnr:.2f} dB against the baseline's {baseline_psnr:.2f} dB")
  assert np.all(np.isfinite(losses)), losses
  assert losses[-1] <= losses[0] / case.loss_factor, (losses[0], losses[-1], losses[0] / losses[-1])
  assert model_psnr > baseline_psnr, (model_psnr, baseline_psnr)
