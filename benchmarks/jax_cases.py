"""The jaxvfi side of the CPU benchmarks (`vs_pytorch.py`, `profile_cpu.py`): one builder per case, no torch needed.

Each builder returns a `Case`: a jitted function, its arguments, and for training steps `feeds_back=True` (the step
returns (params, opt_state, loss) and the next call takes the new params and optimizer state, as a trainer does).
Models, losses and optimizers come from the library and the configs; the train step is the trainer's generic step
(value_and_grad, gradient norm, optax update) jitted with the parameters and optimizer state donated.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

# JAXVFI_ROOT=/path/to/another/checkout times that checkout's library with these cases (before/after comparisons).
ROOT = Path(os.environ.get("JAXVFI_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
from jaxvfi import config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import families  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi import optim  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.models import sepconv as sepconv_model  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxvfi.models import superslomo  # pylint: disable=g-import-not-at-top,wrong-import-position
from pallas_kernels import separable  # pylint: disable=g-import-not-at-top,wrong-import-position


@dataclasses.dataclass
class Case:
  fn: Callable
  args: tuple
  feeds_back: bool = False
  model: Any = None  # the Flax module (for parameter transfer and checks)
  params: Any = None
  batch: dict | None = None
  loss_fn: Callable | None = None  # (preds, batch) -> (loss, metrics), for the equality check
  extra: dict = dataclasses.field(default_factory=dict)


def config(name: str, arg: str | None = None):
  return config_lib.load_config(ROOT / "configs" / f"{name}.py", arg)


def triplet_batch(b: int, h: int, w: int, seed: int = 0, t: float = 0.5) -> dict[str, np.ndarray]:
  """Frames in [0, 1] that are smooth enough for flows and warps to be meaningful (random low-frequency images)."""
  rng = np.random.default_rng(seed)
  low = rng.uniform(size=(3, b, max(h // 8, 2), max(w // 8, 2), 3)).astype(np.float32)
  up = np.asarray(jax.image.resize(low, (3, b, h, w, 3), "bilinear"))
  frames = np.clip(up + 0.05 * rng.standard_normal(up.shape).astype(np.float32), 0.0, 1.0)
  return {"frame0": frames[0], "frame1": frames[1], "target": frames[2], "t": np.full((b,), t, np.float32)}


def init_params(model, batch, seed: int = 0):
  return jax.jit(lambda r: model.init(r, batch, train=False)["params"])(jax.random.PRNGKey(seed))


def l1_loss_fn(preds, batch):
  loss = jnp.mean(jnp.abs(preds["image"] - batch["target"]))
  return loss, {"loss": loss}


def train_step_fn(model, loss_fn, tx, donate: bool = True):
  """The generic train step of jaxvfi.train (value_and_grad, grad norm, optax update), jitted; returns loss too."""

  def step(params, opt_state, batch):
    def compute_loss(p):
      return loss_fn(model.apply({"params": p}, batch, train=True), batch)

    (loss, _), grads = jax.value_and_grad(compute_loss, has_aux=True)(params)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, (loss, grad_norm)

  return jax.jit(step, donate_argnums=(0, 1) if donate else ())


def _train_case(model, cfg, batch, loss_fn, tx, donate, lr) -> Case:
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  params = init_params(model, batch, cfg.seed)
  opt_state = tx.init(params)
  # The step donates its inputs: give it copies so `params` stays valid for the equality check.
  copy = lambda tree: jax.tree.map(jnp.copy, tree)
  return Case(fn=train_step_fn(model, loss_fn, tx, donate), args=(copy(params), opt_state, batch), feeds_back=True,
              model=model, params=params, batch=batch, loss_fn=loss_fn,
              extra={"adam": dict(lr=lr, b1=cfg.optimizer.b1, b2=cfg.optimizer.b2, eps=cfg.optimizer.eps)})


def superslomo_train(batch_size=4, size=64, donate=True) -> Case:
  """Super-SloMo (configs/superslomo.py: flow UNet 6->4, interpolation UNet 20->5), L1 loss, Adam 1e-4."""
  cfg = config("superslomo")
  model = superslomo.build(cfg.model)
  tx = optax.adam(1e-4, b1=cfg.optimizer.b1, b2=cfg.optimizer.b2, eps=cfg.optimizer.eps)
  return _train_case(model, cfg, triplet_batch(batch_size, size, size), l1_loss_fn, tx, donate, 1e-4)


def refin_train(donate=True) -> Case:
  """The README quickstart's step (configs/refin.py:runlocal): three UNets, L1 + warp + smoothness, Adam (cosine)."""
  cfg = config("refin", "runlocal,flow=unet")  # Super-SloMo's flow UNet, as the PyTorch copy has
  model = families.build_model(cfg.model)  # the refin family: 16-channel interpolation input and refinement UNet
  loss_fn, _ = families.of(cfg).make_loss_fn(cfg)
  batch = triplet_batch(cfg.batch_size, cfg.data.crop_size, cfg.data.crop_size)
  params_shape = jax.eval_shape(lambda: init_params(model, {k: jnp.asarray(v) for k, v in batch.items()}))
  tx, _ = optim.make_optimizer(cfg.optimizer, params_shape, cfg.num_train_steps, 1.0)
  return _train_case(model, cfg, batch, loss_fn, tx, donate, cfg.optimizer.schedule.init_value)


def sepconv_train(batch_size=4, size=128, donate=True) -> Case:
  """SepConv (configs/sepconv.py: 51 taps, zero padding), L1 loss, Adam 1e-3 (the recipe's first rate)."""
  cfg = config("sepconv")
  model = sepconv_model.build(cfg.model)
  tx = optax.adam(cfg.optimizer.schedule.init_value, b1=cfg.optimizer.b1, b2=cfg.optimizer.b2,
                  eps=cfg.optimizer.eps)
  return _train_case(model, cfg, triplet_batch(batch_size, size, size), l1_loss_fn, tx, donate,
                     cfg.optimizer.schedule.init_value)


def superslomo_infer(width=1280, height=720) -> Case:
  """Super-SloMo inference at t = 0.5 (the model pads to a multiple of 32 and crops back)."""
  cfg = config("superslomo")
  model = superslomo.build(cfg.model)
  batch = {k: jnp.asarray(v) for k, v in triplet_batch(1, height, width).items()}
  del batch["target"]
  params = init_params(model, batch, cfg.seed)
  fn = jax.jit(lambda p, b: model.apply({"params": p}, b)["image"])
  return Case(fn=fn, args=(params, batch), model=model, params=params, batch=batch)


def sepconv_inputs(n, h, w, c, k, seed=0):
  """x_padded uniform in [0, 1]; kernels ~ N(0, 1/K^2) as the network makes them; an output cotangent."""
  rng = np.random.default_rng(seed)
  x = rng.uniform(size=(n, h + k - 1, w + k - 1, c)).astype(np.float32)
  kv = (rng.standard_normal((n, h, w, k)) / k).astype(np.float32)
  kh = (rng.standard_normal((n, h, w, k)) / k).astype(np.float32)
  g = rng.standard_normal((n, h, w, c)).astype(np.float32)
  return x, kv, kh, g


def sepconv_forward(n=1, h=720, w=1280, c=3, k=51, impl="auto") -> Case:
  x, kv, kh, _ = sepconv_inputs(n, h, w, c, k)
  fn = jax.jit(lambda a, b, d: separable.sepconv(a, b, d, impl=impl))
  return Case(fn=fn, args=tuple(jnp.asarray(a) for a in (x, kv, kh)))


def sepconv_forward_backward(n=1, h=256, w=256, c=3, k=51, impl="auto") -> Case:
  """Forward and the three gradients (x_padded, kv, kh) for a given output cotangent."""

  def f(a, b, d, g):
    out, vjp = jax.vjp(lambda a_, b_, d_: separable.sepconv(a_, b_, d_, impl=impl), a, b, d)
    return (out,) + vjp(g)

  return Case(fn=jax.jit(f), args=tuple(jnp.asarray(a) for a in sepconv_inputs(n, h, w, c, k)))


CASES: dict[str, tuple[str, Callable[[], Case]]] = {
    "superslomo_infer": ("Super-SloMo inference, 1280x720, t = 0.5", superslomo_infer),
    "superslomo_train": ("Super-SloMo train step (flow + interpolation UNets, L1, Adam), batch 4, 64x64",
                         superslomo_train),
    "sepconv_fwd": ("separable local conv, 51 taps, forward, 1x720x1280x3", sepconv_forward),
    "sepconv_fwd_bwd": ("separable local conv, 51 taps, forward + backward, 1x256x256x3", sepconv_forward_backward),
    "refin_train": ("ReFIn-UNet train step of the quickstart (L1 + warp + smoothness, Adam), batch 4, 64x64",
                    refin_train),
    "sepconv_train": ("SepConv train step (51 taps, L1, Adam), batch 4, 128x128", sepconv_train),
}


def run(case: Case):
  """One call; for a training step the new params and optimizer state replace the old ones (they were donated)."""
  out = jax.block_until_ready(case.fn(*case.args))
  if case.feeds_back:
    case.args = (out[0], out[1]) + tuple(case.args[2:])
  return out
