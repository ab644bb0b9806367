"""SepConv-GAN (Pedri 2019, paper 003): SepConv trained adversarially against a VGG-19-based discriminator.

A model family (`jaxvfi.families`): `build`, `example_batch`, `make_loss_fn`, `load_pretrained`, `make_train_setup`.
Paper: S. Pedri, "Frame interpolation via adaptive separable convolution, adversarial training and post-processing
pixel shaders" (La Sapienza, 2019); authors' code: github.com/Sergio0694/sepconv-gan (TensorFlow 1). Where the two
differ the paper is the default and the code's choice an option.

Networks (one Flax module, `SepConvGAN`, whose parameters are {"generator", "discriminator", "vgg"}):
  * generator (§2 "Frame interpolation", Fig. 2): the SepConv layout of `jaxvfi.models.sepconv` (21,675,452
    parameters) with LeakyReLU(0.2) (the code's `tf.nn.leaky_relu` everywhere but the kernel heads' last conv),
    frames zero-padded ("implicit padding", §1). `model.composite_dilation = (11, 10)` gives the §7 variant
    (21,528,332 parameters; Fig. 11's d_in = 11, d_out = 10).
  * vgg (§2 "Perceptual pass", Fig. 3): VGG-19's 16 convolutions (20,024,384 parameters) on Caffe-style input (BGR,
    0-255, minus the ImageNet BGR means; `model.vgg_preprocessing`), read at relu4_4 (Lp) and block5_pool (D).
    Frozen: no optimizer sees it (`load_pretrained` puts the converted weights there and no update touches them).
    It lives in the state's params, so checkpoints carry it (80 MB in float32) and resume without the weights file.
  * discriminator (§2 "Adversarial network", Fig. 4; code `discriminators/vgg19.py`), a head on block5_pool: conv3x3
    512 + LReLU, conv3x3 512 + LReLU, plus its input (residual); max-pool 3x3 stride 2 valid; flatten; dense 2048 +
    LReLU, dense 2048 + LReLU, dense 1 (a logit). LReLU slope 0.2. At 160x160 inputs block5_pool is 5x5x512, the
    pool gives 2x2x512 and the head has 13,114,369 parameters. For an s x s input (s >= 96) block5_pool is
    p = floor(s / 32) wide and the dense input is 512 ((p - 3) // 2 + 1)^2: 2048 at 160, 512 at 96 (the runlocal
    crop) and 128. The code's two `tf.layers.dropout(x, 0.8)` are inert (no `training=True` is passed): no dropout.
Initialisation: Flax's defaults (LeCun normal kernels, zero biases) for the generator and the head; the paper cites
convolution-aware initialisation [5] and the code uses TensorFlow's Glorot uniform.

Losses (§3), in the units the paper's weights were tuned for (0-255 frames, Caffe VGG input):
  generator  L = Lp + 0.4 Lr + 0.8 La (`config.loss.weights`: perceptual, l1, adversarial) with
             Lp = mean (phi(Î) - phi(I))^2, phi = VGG-19 relu4_4; Lr = mean |255 Î - 255 I|;
             La = -log sigma(D(Î)) = softplus(-D(Î)) (TF-GAN's `modified_generator_loss`, the code's).
             Optional luminosity loss (§5, tried and "set aside"): weight `luminosity`, mean (Λ(Î) - Λ(I))^2 with
             Λ = 0.299 R + 0.587 G + 0.114 B on [0, 1] (`loss.luminosity_coefficients`; the code uses BT.709's
             0.2126, 0.7152, 0.0722 and [0, 1] frames).
  discriminator  sigmoid cross-entropy, real label 1 smoothed one-sidedly to 1 - s/2 = 0.875 (s = 0.25,
             `loss.discriminator_label_smoothing`; TF-GAN's `modified_discriminator_loss` default, which the code
             uses), fake label 0: mean BCE(D(I_real), 0.875) + mean BCE(D(Î), 0).

Updates (§6 "Results"; code `train.py`): one step updates both networks from one forward pass: the generator's
gradient flows through the frozen VGG and a stopped copy of D; D's through its own head on the same (stopped) fake
features and on the real ones. Adam(0.9, 0.999) for both; every gradient tensor clipped to norm 5 (the code's
`tf.clip_by_norm` per variable, `optimizer.clip_per_tensor_norm`).
  * Generator lr 6e-4, "exponential decay with a value of 0.99": we read x0.99 every 10,000 training samples,
    staircase (the code's decay interval, `TENSORBOARD_LOG_INTERVAL`): schedule
    {"name": "samples_staircase", "init_value", "decay_rate", "every_samples", "rule": "multiply"}. The code instead
    sets lr <- lr^(1/0.99) at that interval (`_tf.DecayingRate`): "rule": "power", lr_k = lr_0^(0.99^-k). (The code
    switches one step later, after its logging step; not reproduced.) Any `jaxvfi.optim` schedule also works.
  * Discriminator lr: a constant 1e-4 (`discriminator_optimizer`).
Real samples for D (`model.real_samples`): "target", the batch's ground-truth frames (the paper's reading: D tells
ground truth from generated frames); "separate", the code's independently drawn frames, from the batch key "real"
(`data.augmentation_args.discriminator_frames = True` with the `sepconv_gan` preset).

Without pretrained VGG-19 weights (`model.vgg_weights`) training refuses to start, unless `model.vgg_trainable`
(the runlocal variant): then the VGG is randomly initialised and trained with the discriminator (and the log and eval
JSON say so).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvfi import data_config
from jaxvfi import losses
from jaxvfi import optim
from jaxvfi import steps
from jaxvfi import torch_weights
from jaxvfi.models import sepconv
from jaxvfi.models import vgg as vgg_lib

HAS_TIME_INPUT = False  # the generator makes the middle frame; `jaxvfi.interpolate` bisects for other times
SLOPE = 0.2  # tf.nn.leaky_relu's default, used throughout the authors' networks
MIN_INPUT = 96  # block5_pool must be at least 3x3 for the head's 3x3 valid max-pool
LUMA_BT601 = (0.299, 0.587, 0.114)

NO_VGG_WEIGHTS = ("model.vgg_weights is not set: SepConv-GAN's discriminator and perceptual loss sit on a pretrained, "
                  "frozen VGG-19 (convert the Caffe VGG-19 in torchvision layout with `python -m jaxvfi.weights "
                  "convert --arch=vgg19 --src=vgg19-d01eb7cb.pth --dst=vgg19_caffe.npz` and pass "
                  "--config.model.vgg_weights=vgg19_caffe.npz), or use configs/sepconv_gan.py:runlocal "
                  "(a randomly initialised VGG trained with the discriminator)")


def _leaky(x):
  return nn.leaky_relu(x, negative_slope=SLOPE)


def dense_input_size(side: int) -> int:
  """Flattened size of the head's max-pool output for an s x s input (module docstring)."""
  if side < MIN_INPUT:
    raise ValueError(f"the discriminator needs inputs of at least {MIN_INPUT}x{MIN_INPUT} (block5_pool >= 3x3 for its "
                     f"3x3 valid max-pool), got {side}")
  return 512 * ((side // 32 - 3) // 2 + 1) ** 2  # five 2x2 floor-mode pools, then the 3x3/2 valid one


class DiscriminatorHead(nn.Module):
  """The trainable head on VGG-19's block5_pool (module docstring): (N, h, w, 512) -> (N,) logits."""

  @nn.compact
  def __call__(self, features: jax.Array) -> jax.Array:
    if features.ndim != 4 or min(features.shape[1:3]) < 3:
      raise ValueError(f"the discriminator head needs block5_pool features (N, h, w, 512) with h, w >= 3 (inputs of "
                       f"at least {MIN_INPUT}x{MIN_INPUT}), got {features.shape}")
    x = _leaky(nn.Conv(512, (3, 3), padding=1, name="conv1")(features))
    x = _leaky(nn.Conv(512, (3, 3), padding=1, name="conv2")(x)) + features
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    x = x.reshape((x.shape[0], -1))
    x = _leaky(nn.Dense(2048, name="dense1")(x))
    x = _leaky(nn.Dense(2048, name="dense2")(x))
    return nn.Dense(1, name="logit")(x)[:, 0]


class SepConvGAN(nn.Module):
  """Generator, VGG-19 and discriminator head under one parameter tree {"generator", "vgg", "discriminator"}.

  `apply(variables, batch, train)` is the generator (prediction dict: image (N, H, W, 3) and the four kernels, any
  H, W: padded to 32 and cropped back); `features(images)` is VGG-19 up to block5_pool ({"relu4_4", "pool5", ...});
  `discriminate(pool5)` the head's logits. `init` also builds the VGG and the head on the generated frame, so the
  parameter tree (checkpoints, `--mode=summary`) holds all three; the example batch must then be the training size.
  """
  kernel_size: int = 51
  padding: str = "zeros"
  impl: str = "auto"
  activation: str = "leaky_relu"
  composite_dilation: tuple[int, int] | None = None
  vgg_preprocessing: str = "caffe"

  def setup(self):
    self.generator = sepconv.SepConvInterpolator(kernel_size=self.kernel_size, padding=self.padding, impl=self.impl,
                                                 activation=self.activation,
                                                 composite_dilation=self.composite_dilation)
    self.vgg = vgg_lib.VGG19(output_layer="pool5", preprocessing=self.vgg_preprocessing)
    self.discriminator = DiscriminatorHead()

  def __call__(self, batch: dict, train: bool = False) -> dict[str, jax.Array]:
    preds = self.generator(batch, train)
    if self.is_initializing():
      self.discriminate(self.features(preds["image"])["pool5"])
    return preds

  def features(self, images: jax.Array) -> dict[str, jax.Array]:
    return self.vgg(images)

  def discriminate(self, pool5: jax.Array) -> jax.Array:
    return self.discriminator(pool5)


def build(model_config) -> SepConvGAN:
  dilation = model_config.get("composite_dilation")
  return SepConvGAN(kernel_size=model_config.get("kernel_size", 51), padding=model_config.get("padding", "zeros"),
                    impl=model_config.get("impl", "auto"), activation=model_config.get("activation", "leaky_relu"),
                    composite_dilation=tuple(int(d) for d in dilation) if dilation else None,
                    vgg_preprocessing=model_config.get("vgg_preprocessing", "caffe"))


def example_batch(config, batch_size: int = 1) -> dict[str, jax.Array]:
  """A zero triplet batch at the training size `config.model.input_size` (the discriminator's dense layer depends
  on it; the generator's parameters do not)."""
  s = int(config.model.get("input_size", 160))
  dense_input_size(s)
  img = jnp.zeros((batch_size, s, s, 3), jnp.float32)
  return {"frame0": img, "frame1": img, "target": img, "t": jnp.full((batch_size,), 0.5, jnp.float32)}


# ----------------------------------------------------------------------------------------------------------------
# Losses.


def l1_loss(preds, batch, ctx):
  """Lr on the 0-255 scale (§3; the code's `reduce_mean(abs(yHat_255 - y))`)."""
  del ctx
  return 255.0 * jnp.mean(jnp.abs(preds["image"] - batch["target"]))


def perceptual_loss(preds, batch, ctx):
  """Lp = mean (phi(Î) - phi(I))^2, phi = relu4_4 (§3); features precomputed by the train step."""
  del batch, ctx
  return jnp.mean(jnp.square(preds["vgg_fake"] - preds["vgg_target"]))


def adversarial_loss(preds, batch, ctx):
  """La = -log sigma(D(Î)) (§3), averaged over the batch."""
  del batch, ctx
  return jnp.mean(jax.nn.softplus(-preds["logits_fake"]))


def luminosity_loss(preds, batch, ctx):
  """Ll = mean (Λ(Î) - Λ(I))^2 on [0, 1] (§5 "Luminosity loss")."""
  w = jnp.asarray(ctx["luminosity_coefficients"], jnp.float32)
  return jnp.mean(jnp.square((preds["image"] - batch["target"]) @ w))


TERMS: dict[str, Callable] = {
    "perceptual": perceptual_loss,
    "l1": l1_loss,
    "adversarial": adversarial_loss,
    "luminosity": luminosity_loss,
}


def discriminator_loss(logits_real: jax.Array, logits_fake: jax.Array, label_smoothing: float = 0.25) -> jax.Array:
  """mean BCE(logits_real, 1 - s/2) + mean BCE(logits_fake, 0): TF-GAN's `modified_discriminator_loss` (one-sided
  label smoothing s as `tf.losses.sigmoid_cross_entropy` applies it: y (1 - s) + s/2)."""
  real = optax.sigmoid_binary_cross_entropy(logits_real, jnp.full_like(logits_real, 1.0 - 0.5 * label_smoothing))
  fake = optax.sigmoid_binary_cross_entropy(logits_fake, jnp.zeros_like(logits_fake))
  return jnp.mean(real) + jnp.mean(fake)


def _notes(config) -> list[str]:
  m = config.model
  if m.get("vgg_trainable") and not m.get("vgg_weights"):
    return ["SepConv-GAN without pretrained VGG-19 weights (model.vgg_weights unset): the VGG-19 under the "
            "discriminator and the perceptual loss is randomly initialised and trained with the discriminator "
            "(model.vgg_trainable), unlike the paper's frozen ImageNet VGG-19"]
  if m.get("vgg_trainable"):
    return ["the VGG-19 under the discriminator is fine-tuned with it (model.vgg_trainable); the paper keeps it "
            "frozen"]
  return []


def make_loss_fn(config) -> tuple[Callable, list[str]]:
  """The generator's loss `loss_fn(preds, batch) -> (total, metrics)` over the train step's extended predictions
  (image, vgg_fake, vgg_target, logits_fake), and the notes for the log and the eval JSON."""
  ctx = {"luminosity_coefficients": tuple(config.loss.get("luminosity_coefficients", LUMA_BT601))}
  loss_fn = losses.weighted_loss(config.loss.weights, TERMS, ctx)
  return loss_fn, _notes(config)


# ----------------------------------------------------------------------------------------------------------------
# Pretrained VGG.


def load_pretrained(params, config):
  """Puts the converted VGG-19 weights of `model.vgg_weights` into params["vgg"].

  Raises:
    ValueError: no weights and `model.vgg_trainable` is False (the paper's frozen VGG needs them), or the file's
      arrays do not fit VGG-19.
    FileNotFoundError: the file does not exist.
  """
  path = config.model.get("vgg_weights")
  if not path:
    if config.model.get("vgg_trainable"):
      return params, []
    raise ValueError(NO_VGG_WEIGHTS)
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"model.vgg_weights {path} does not exist")
  loaded = torch_weights.load_params(vgg_lib.TORCH_LAYOUT, path)
  if jax.tree.map(jnp.shape, loaded) != jax.tree.map(jnp.shape, params["vgg"]):
    raise ValueError(f"model.vgg_weights {path}: parameter shapes do not match VGG-19's 16 convolutions")
  return {**params, "vgg": jax.tree.map(jnp.asarray, loaded)}, [
      f"loaded VGG-19 weights from {path} ({config.model.get('vgg_preprocessing', 'caffe')} input preprocessing)"]


# ----------------------------------------------------------------------------------------------------------------
# Optimizers and the train step.


def samples_staircase(init_value: float, decay_rate: float, every_samples: int, batch_size: int,
                      rule: str = "multiply") -> optax.Schedule:
  """lr at step s with k = floor(s * batch_size / every_samples) samples intervals done:
  "multiply" init * decay^k (our reading of the paper); "power" init^(decay^-k) (the code's lr <- lr^(1/decay))."""
  if rule not in ("multiply", "power"):
    raise ValueError(f"samples_staircase rule must be multiply or power, got {rule!r}")
  if every_samples <= 0 or batch_size <= 0:
    raise ValueError(f"samples_staircase needs every_samples > 0 and batch_size > 0, got {every_samples}, "
                     f"{batch_size}")

  def schedule(step):
    k = (jnp.asarray(step, jnp.int32) * batch_size // every_samples).astype(jnp.float32)
    if rule == "multiply":
      return init_value * decay_rate ** k
    return init_value ** (decay_rate ** -k)
  return schedule


def make_schedule(spec, batch_size: int, total_steps: int, steps_per_epoch: float) -> optax.Schedule:
  spec = dict(spec)
  if spec.get("name") == "samples_staircase":
    return samples_staircase(float(spec["init_value"]), float(spec["decay_rate"]), int(spec["every_samples"]),
                             batch_size, spec.get("rule", "multiply"))
  return optim.make_schedule(spec, total_steps, steps_per_epoch)


@flax.struct.dataclass
class GanState:
  """step; params {"generator", "discriminator", "vgg"} (predictions read the generator's); the two Adam states:
  g_opt_state over params["generator"], d_opt_state over params["discriminator"] (plus params["vgg"] when
  `model.vgg_trainable`)."""
  step: jax.Array
  params: Any
  g_opt_state: Any
  d_opt_state: Any


def _trained_by_d(model_config) -> tuple[str, ...]:
  return ("discriminator", "vgg") if model_config.get("vgg_trainable") else ("discriminator",)


def gan_step(state: GanState, batch: dict, rng: jax.Array, axis_name: str | None = None, *, model: SepConvGAN,
             loss_fn: Callable, g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
             d_keys: tuple[str, ...], real_samples: str, label_smoothing: float, input_size: int):
  """One generator and one discriminator update from one forward pass (module docstring); pure."""
  del rng  # no dropout
  side = batch["target"].shape[1:3]
  if side != (input_size, input_size):
    raise ValueError(f"training frames are {side[0]}x{side[1]} but model.input_size is {input_size} (it fixes the "
                     "discriminator's dense layer): make them equal")
  if real_samples == "separate" and "real" not in batch:
    raise ValueError("model.real_samples='separate' needs batches with a 'real' key: set "
                     "data.augmentation_args.discriminator_frames=True (preset sepconv_gan)")
  p = state.params
  sg = jax.lax.stop_gradient
  features = lambda vgg_params, images: model.apply({"params": {"vgg": vgg_params}}, images, method="features")
  discriminate = lambda head, pool5: model.apply({"params": {"discriminator": head}}, pool5, method="discriminate")

  def losses(g_params, d_params):
    # Cross terms are stopped, so one gradient of g_loss + d_loss is (dg_loss/dG, dd_loss/dD).
    net = {**p, **d_params}
    preds = model.apply({"params": {"generator": g_params}}, batch, train=True)
    fake = features(sg(net["vgg"]), preds["image"])
    target = features(net["vgg"], batch["target"])
    extended = {**preds, "vgg_fake": fake["relu4_4"], "vgg_target": sg(target["relu4_4"]),
                "logits_fake": discriminate(sg(net["discriminator"]), fake["pool5"])}
    g_loss, metrics = loss_fn(extended, batch)

    if "vgg" in d_params:  # a trained VGG sees the fake frame again, with its own gradient
      fake_pool5 = features(net["vgg"], sg(preds["image"]))["pool5"]
    else:
      fake_pool5 = sg(fake["pool5"])
    real_pool5 = target["pool5"] if real_samples == "target" else features(net["vgg"], batch["real"])["pool5"]
    logits_real = discriminate(net["discriminator"], real_pool5)
    logits_fake = discriminate(net["discriminator"], fake_pool5)
    d_loss = discriminator_loss(logits_real, logits_fake, label_smoothing)
    metrics = {**metrics, "loss_discriminator": d_loss, "d_real": jnp.mean(jax.nn.sigmoid(logits_real)),
               "d_fake": jnp.mean(jax.nn.sigmoid(logits_fake))}
    return g_loss + d_loss, metrics

  d_params = {k: p[k] for k in d_keys}
  (g_grads, d_grads), metrics = jax.grad(losses, argnums=(0, 1), has_aux=True)(p["generator"], d_params)
  if axis_name is not None:
    g_grads, d_grads, metrics = jax.lax.pmean((g_grads, d_grads, metrics), axis_name)
  metrics["grad_norm_generator"] = optax.tree.norm(g_grads)
  metrics["grad_norm_discriminator"] = optax.tree.norm(d_grads)
  g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, p["generator"])
  d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, d_params)
  params = {**p, "generator": optax.apply_updates(p["generator"], g_updates),
            **optax.apply_updates(d_params, d_updates)}
  return GanState(step=state.step + 1, params=params, g_opt_state=g_opt_state, d_opt_state=d_opt_state), metrics


def check_config(config) -> None:
  """The errors a run would otherwise meet late: no VGG weights for a frozen VGG, unknown options."""
  m = config.model
  if not m.get("vgg_weights") and not m.get("vgg_trainable"):
    raise ValueError(NO_VGG_WEIGHTS)
  if m.get("vgg_weights") and not os.path.isfile(os.path.expanduser(m.vgg_weights)):
    raise FileNotFoundError(f"model.vgg_weights {m.vgg_weights} does not exist")
  if m.get("real_samples", "target") not in ("target", "separate"):
    raise ValueError(f"model.real_samples must be target or separate, got {m.get('real_samples')!r}")
  if m.get("vgg_preprocessing", "caffe") not in vgg_lib.PREPROCESSING:
    raise ValueError(f"model.vgg_preprocessing must be one of {vgg_lib.PREPROCESSING}, got "
                     f"{m.get('vgg_preprocessing')!r}")
  side = int(m.get("input_size", 160))
  dense_input_size(side)
  crop = data_config.augmentation_params(config.data).get("crop_size")
  if not crop or tuple(np.broadcast_to(crop, (2,))) != (side, side):
    raise ValueError(f"the training crop (data.augmentation={config.data.get('augmentation')!r}, crop_size {crop!r}) "
                     f"must be model.input_size x model.input_size = {side}x{side}: the discriminator's dense layer "
                     "is sized for it")


def make_optimizers(config, total_steps: int, steps_per_epoch: float):
  """(g_tx, d_tx, {"generator": schedule, "discriminator": schedule}) from `config.optimizer` and
  `config.discriminator_optimizer`."""
  batch_size = int(config.batch_size)
  g_sched = make_schedule(config.optimizer.schedule, batch_size, total_steps, steps_per_epoch)
  d_sched = make_schedule(config.discriminator_optimizer.schedule, batch_size, total_steps, steps_per_epoch)
  schedules = {"generator": g_sched, "discriminator": d_sched}
  return (optim.make_tx(config.optimizer, g_sched), optim.make_tx(config.discriminator_optimizer, d_sched),
          schedules)


def init_state(params, config, g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation) -> GanState:
  """Step 0 from a parameter tree {"generator", "discriminator", "vgg"}: both optimizer states at zero."""
  d_keys = _trained_by_d(config.model)
  return GanState(step=jnp.asarray(0, jnp.int32), params=params, g_opt_state=g_tx.init(params["generator"]),
                  d_opt_state=d_tx.init({k: params[k] for k in d_keys}))


def make_train_setup(config, model: SepConvGAN, loss_fn: Callable, init_batch: dict, total_steps: int,
                     steps_per_epoch: float):
  """The GAN's `TrainSetup`: state `GanState`, step `gan_step`, schedules {"generator", "discriminator"}.

  Raises ValueError at once for a config that cannot train (`check_config`): no VGG weights for a frozen VGG, a
  training crop other than model.input_size.
  """
  check_config(config)
  g_tx, d_tx, schedules = make_optimizers(config, total_steps, steps_per_epoch)

  def init(rng):
    return init_state(steps.init_params(model, init_batch, rng), config, g_tx, d_tx)

  step = functools.partial(gan_step, model=model, loss_fn=loss_fn, g_tx=g_tx, d_tx=d_tx,
                           d_keys=_trained_by_d(config.model), real_samples=config.model.get("real_samples", "target"),
                           label_smoothing=float(config.loss.get("discriminator_label_smoothing", 0.25)),
                           input_size=int(config.model.get("input_size", 160)))
  return steps.TrainSetup(init=init, step=step, schedules=schedules)
