"""Run by tests/test_train.py in a subprocess with fake CPU devices: jit steps vs pmap steps over n devices.

`python tests/pmap_check.py 8` compares the single-device step with pmap over 8 devices (`python tests/pmap_check.py
2 8`: over the first 2 and the first 8, in one process, so the jit step compiles once). Prints one JSON line per device count with the largest
differences in loss and parameters after two steps on the same global batches.
"""
import functools
import json
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvfi import families
from jaxvfi import losses
from jaxvfi import optim
from jaxvfi import parallel
from jaxvfi import steps


def main(counts: list[int]):
  assert jax.local_device_count() >= max(counts), jax.devices()
  # ReFIn with UNet interpolation and refinement modules, all UNets at a quarter of the papers' width: the step is
  # the same generic step as for the full model, and 8 replicas stay near 3 GiB of RSS. With UNet++ backbones
  # (22 M parameters) the process reached 9.1 GiB and was OOM-killed on a 24 GiB CI machine beside the other worker.
  model_cfg = ml_collections.ConfigDict(dict(name="refin", flow="unet",
                                             interpolation_backbone="unet", refinement_backbone="unet", unet_width=0.25,
                                             use_refinement=True, warp_padding="zeros", warp_impl="xla"))
  cfg = ml_collections.ConfigDict(dict(model=model_cfg, data=dict(crop_size=32)))
  loss_cfg = ml_collections.ConfigDict(dict(weights=dict(l1=204.0, warp=102.0, smoothness=1.0)))
  # Adam's first update is lr * g / (|g| + eps). With eps = 1e-8 it turns rounding noise in near-zero gradients
  # (the devices sum in another order) into +-lr flips, so the comparison would measure rounding, not the
  # data-parallel reduction; eps = 1e-3 keeps the update Lipschitz in g.
  opt_cfg = ml_collections.ConfigDict(dict(name="adam", b1=0.9, b2=0.999, eps=1e-3, grad_clip_norm=0.0,
                                           schedule=dict(name="constant", init_value=1e-4),
                                           groups=dict(flow=dict(name="constant", init_value=1e-5))))
  model = families.build_model(model_cfg)
  loss_fn, _ = losses.make_loss_fn(loss_cfg, ctx={"warp_impl": "xla"})
  params = steps.init_params(model, families.of(cfg).example_batch(cfg), jax.random.PRNGKey(0))
  tx, _ = optim.make_optimizer(opt_cfg, params, 10, 10.0)
  rng = np.random.default_rng(0)
  batches = [{"frame0": rng.random((8, 32, 32, 3), np.float32), "frame1": rng.random((8, 32, 32, 3), np.float32),
              "target": rng.random((8, 32, 32, 3), np.float32), "t": np.full((8,), 0.5, np.float32)}
             for _ in range(2)]
  results = {}
  for devices in [1] + counts:
    step = functools.partial(steps.supervised_step, apply_fn=model.apply, loss_fn=loss_fn, tx=tx)
    runner = parallel.StepRunner(step, devices)
    state = runner.put(steps.TrainState(step=jnp.asarray(0), params=params, opt_state=tx.init(params)))
    step_losses = []
    for i, b in enumerate(batches):
      state, m = runner(state, b, jax.random.PRNGKey(i))
      step_losses.append(float(runner.unreplicated_metrics(m)["loss"]))
    results[devices] = (step_losses, jax.device_get(runner.get(state).params))
  l1, p1 = results[1]
  moved = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params)))
  for n in counts:
    ln, pn = results[n]
    param_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(pn)))
    loss_rel = max(abs(a - b) / abs(a) for a, b in zip(l1, ln))
    print(json.dumps({"devices": n, "loss_rel_diff": loss_rel, "param_max_diff": param_diff, "losses": l1,
                      "param_moved": moved}))


if __name__ == "__main__":
  main([int(a) for a in sys.argv[1:]])
