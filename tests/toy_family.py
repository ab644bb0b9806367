r"""A model family outside `jaxvfi/`, as a researcher would write one in their own package: the tests copy this file
into a throwaway package (`toypkg.two_nets`) and name it by its dotted path. It is also its own config file:

  PYTHONPATH=<dir holding toypkg> python -m jaxvfi.main --config=<dir>/toypkg/two_nets.py --workdir=W

Two networks with two optimizers, as a GAN has: a generator (the prediction `params`) that blends the two frames
through a 3x3 conv, and a critic trained in the same step to tell the generator's frames from the targets. The state
adds the critic's parameters and optimizer state to the supervised one; the trainer checkpoints all of it. Periodic
validation uses the `restoration` evaluator with the family's own baseline (the frame average).
"""
from __future__ import annotations

import chex
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxvfi import batches
from jaxvfi import config_lib
from jaxvfi import optim
from jaxvfi import steps

EVALUATOR = "restoration"
HAS_TIME_INPUT = False


class Generator(nn.Module):

  @nn.compact
  def __call__(self, batch, train: bool = False):
    del train
    x = jnp.concatenate([batch["frame0"], batch["frame1"]], axis=-1)
    residual = nn.Conv(3, (3, 3), name="blend")(x)
    return {"image": 0.5 * (batch["frame0"] + batch["frame1"]) + residual}


class Critic(nn.Module):

  @nn.compact
  def __call__(self, image):
    h = nn.relu(nn.Conv(4, (3, 3), strides=2, name="conv")(image))
    return nn.Dense(1, name="logit")(jnp.mean(h, axis=(1, 2)))[:, 0]


@flax.struct.dataclass
class TwoNetState:
  step: jax.Array
  params: dict          # the generator: what predictions use
  opt_state: optax.OptState
  critic_params: dict
  critic_opt_state: optax.OptState


def build(model_config):
  del model_config
  return Generator()


example_batch = batches.triplet_example_batch


def baselines(batch, config):
  del config
  return {"frame_average": 0.5 * (batch["frame0"] + batch["frame1"])}


def make_train_setup(config, model, loss_fn, init_batch, total_steps, steps_per_epoch):
  critic = Critic()
  gen_shapes = jax.eval_shape(lambda r: model.init(r, init_batch)["params"], jax.random.PRNGKey(0))
  tx_g, schedules = optim.make_optimizer(config.optimizer, gen_shapes, total_steps, steps_per_epoch)
  tx_c = optax.adam(config.critic_lr)

  def init(rng):
    rg, rc = jax.random.split(rng)
    params = model.init(rg, init_batch)["params"]
    critic_params = critic.init(rc, init_batch["target"])["params"]
    return TwoNetState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx_g.init(params),
                       critic_params=critic_params, critic_opt_state=tx_c.init(critic_params))

  @chex.assert_max_traces(n=1)  # one compilation for the run: the trainer never retraces the step
  def step(state, batch, rng, axis_name=None):
    del rng

    def g_loss(params):
      preds = model.apply({"params": params}, batch)
      total, metrics = loss_fn(preds, batch)
      fake = critic.apply({"params": state.critic_params}, preds["image"])
      adv = jnp.mean(jax.nn.softplus(-fake))
      return total + 0.01 * adv, (metrics, preds["image"])

    def c_loss(critic_params, fake):
      real = critic.apply({"params": critic_params}, batch["target"])
      fake = critic.apply({"params": critic_params}, jax.lax.stop_gradient(fake))
      return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))

    (_, (metrics, fake)), g_grads = jax.value_and_grad(g_loss, has_aux=True)(state.params)
    c_value, c_grads = jax.value_and_grad(c_loss)(state.critic_params, fake)
    metrics = dict(metrics, loss_critic=c_value)
    if axis_name is not None:
      g_grads, c_grads, metrics = jax.lax.pmean((g_grads, c_grads, metrics), axis_name)
    updates, opt_state = tx_g.update(g_grads, state.opt_state, state.params)
    c_updates, c_opt_state = tx_c.update(c_grads, state.critic_opt_state, state.critic_params)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state,
                         critic_params=optax.apply_updates(state.critic_params, c_updates),
                         critic_opt_state=c_opt_state), metrics

  return steps.TrainSetup(init=init, step=step, schedules=schedules)


def get_config(arg=None):
  del arg
  c = config_lib.base_config()
  c.model.name = "toypkg.two_nets"
  c.critic_lr = 1e-3
  c.loss.weights = dict(l1=1.0)
  c.optimizer.schedule = dict(name="constant", init_value=1e-3)
  c.batch_size = 2
  c.eval_batch_size = 2
  c.num_train_steps = 2
  c.eval_every_steps = 1
  c.checkpoint_every_steps = 1
  c.log_every_steps = 1
  c.num_image_summaries = 1
  c.progress_bar = False
  c.data.crop_size = 16
  c.data.synthetic_num_train = 8
  c.data.synthetic_num_val = 2
  c.data.synthetic_size = 32
  c.evals.validation.target_key = "target"
  return c
