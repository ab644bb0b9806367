"""Data-parallel plumbing: replicating a state over devices, sharding a batch, running a pure step under jit or pmap,
and JAX's multi-process runtime.

A step `(state, batch, rng, axis_name) -> (state, metrics)` (`jaxvfi.steps.TrainSetup.step`) runs under `jax.jit` on
one device and under `jax.pmap` with `lax.pmean` over `axis_name` across all devices (all processes' devices in a
multi-process run, `initialize_distributed`) when there are several.
"""
from __future__ import annotations

import functools
from typing import Callable

from absl import logging
import jax
import jax.numpy as jnp


def replicate(tree, n: int):
  """Every leaf stacked n times on a new leading axis (the pmapped state's layout)."""
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree)


def unreplicate(tree):
  """The first replica of a pmapped tree, read from this process's first device.

  Indexing the sharded array instead (`x[0]`) would compile and run a cross-device gather per leaf, with CPU
  collective rendezvous that abort when a 2-core machine is busy.
  """
  return jax.tree.map(lambda x: x.addressable_shards[0].data[0], tree)


def shard(batch: dict, n: int) -> dict:
  """(B, ...) leaves -> (n, B / n, ...); one ValueError when B is not divisible by n."""
  def split(x):
    if x.shape[0] % n:
      raise ValueError(f"batch {x.shape[0]} is not divisible by {n} devices")
    return x.reshape((n, x.shape[0] // n) + x.shape[1:])
  return jax.tree.map(split, batch)


class StepRunner:
  """Runs a setup's step on one device (jit) or data-parallel (pmap) over the local devices of every process.

  `traces` counts how often the step was traced (compiled): once per batch shape.
  """

  def __init__(self, step_fn: Callable, num_devices: int):
    self.n = num_devices  # this process's devices
    self.traces = 0

    def counted(state, batch, rng, axis_name=None):
      self.traces += 1  # runs at trace time only
      return step_fn(state, batch, rng, axis_name)

    if self.n > 1 or jax.process_count() > 1:
      # All processes' devices: pmean then averages over the global batch.
      devices = jax.devices() if jax.process_count() > 1 else jax.local_devices()[:self.n]
      self._step = jax.pmap(functools.partial(counted, axis_name="batch"), axis_name="batch", devices=devices)
      self.parallel = True
    else:
      self._step = jax.jit(counted)
      self.parallel = False

  def put(self, state):
    return replicate(state, self.n) if self.parallel else state

  def get(self, state):
    return unreplicate(state) if self.parallel else state

  def __call__(self, state, batch, rng):
    if self.parallel:
      rngs = jax.random.split(jax.random.fold_in(rng, jax.process_index()), self.n)
      return self._step(state, shard(batch, self.n), rngs)
    return self._step(state, batch, rng)

  def unreplicated_metrics(self, metrics):
    return unreplicate(metrics) if self.parallel else metrics


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """JAX's multi-process runtime (`jax.distributed.initialize`), from the arguments or the environment.

  With no argument JAX reads the cluster from the environment (SLURM's variables, among others). On CPU the
  cross-process collectives use gloo. Call once, before anything touches a device.
  """
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # only the CPU backend reads it
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)
  logging.info("process %d of %d (%d local devices, %d in all)", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def is_primary() -> bool:
  """Whether this is process 0, the one that writes files."""
  return jax.process_index() == 0
