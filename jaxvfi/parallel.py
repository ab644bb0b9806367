"""Data-parallel plumbing: replicating a state over devices, sharding a batch, running a pure step under jit or pmap,
and JAX's multi-process runtime.

A step `(state, batch, rng, axis_name) -> (state, metrics)` (`jaxvfi.steps.TrainSetup.step`) runs under `jax.jit` on
one device and under `jax.pmap` with `lax.pmean` over `axis_name` across all devices (all processes' devices in a
multi-process run, `initialize_distributed`) when there are several.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Callable

from absl import logging
import jax
import numpy as np


def replicate(tree, n: int):
  """Every leaf stacked n times on a new leading axis (the pmapped state's layout), as host arrays.

  Through the host because arrays that are committed to one device (every array orbax restores) cannot be
  broadcast on that device and then handed to `jax.pmap`, which refuses their single-device sharding; pmap places
  host arrays itself.
  """
  return jax.tree.map(lambda x: np.broadcast_to(x, (n,) + np.shape(x)), jax.device_get(tree))


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
                           process_id: int | None = None, timeout: int = 300) -> None:
  """JAX's multi-process runtime (`jax.distributed.initialize`), from the arguments or the environment.

  With no argument JAX reads the cluster from the environment (SLURM's variables, among others). On CPU the
  cross-process collectives use gloo. Call once, before anything touches a device. A log line says who waits for
  whom; when the processes have not all met after `timeout` seconds, the process prints one `jaxvfi: error:` line
  and exits with status 1 (JAX itself would abort with a C++ stack a little later).

  Raises:
    ValueError: a coordinator address without the number of processes or this process's index.
  """
  if coordinator_address and (num_processes is None or process_id is None):
    missing = " and ".join(f for f, v in (("--num_processes", num_processes), ("--process_id", process_id))
                           if v is None)
    raise ValueError(f"--coordinator_address={coordinator_address} needs {missing} too (each process gets the same "
                     "address and count and its own --process_id from 0 to num_processes - 1)")
  if coordinator_address and not 0 <= process_id < num_processes:
    raise ValueError(f"--process_id={process_id} must be in 0..{num_processes - 1} (--num_processes={num_processes})")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # only the CPU backend reads it
  if coordinator_address:
    others = "process 1" if num_processes == 2 else f"processes 1..{num_processes - 1}"
    who = (f"process 0 of {num_processes}: waiting for {others} to connect to {coordinator_address}"
           if process_id == 0 else
           f"process {process_id} of {num_processes}: connecting to process 0 at {coordinator_address}")
  else:
    who = "connecting to the cluster that the environment describes"
  logging.info("%s (up to %d s, --distributed_timeout)", who, timeout)

  def give_up():
    print(f"jaxvfi: error: {who}: not every process had joined after {timeout} s; start every process with the "
          "same --coordinator_address and --num_processes and its own --process_id, or raise --distributed_timeout",
          file=sys.stderr, flush=True)
    os._exit(1)  # pylint: disable=protected-access  (the runtime's threads are blocked: a clean exit cannot join them)

  watchdog = threading.Timer(timeout, give_up)
  watchdog.daemon = True
  watchdog.start()
  try:
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout + 30)
  finally:
    watchdog.cancel()
  logging.info("process %d of %d (%d local devices, %d in all)", jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


def is_primary() -> bool:
  """Whether this is process 0, the one that writes files."""
  return jax.process_index() == 0
