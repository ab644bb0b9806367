"""SepConv-GAN (paper 003): parameter counts, losses and schedules by hand, composite dilation through the generator,
the Caffe VGG input, pretrained VGG loading, and one GAN step (both networks move, the frozen VGG does not).

Oracles: counts written out layer by layer (and the issue's 21,675,452 / 13,114,369 / 20,024,384), losses from
hand-derived logarithms on a 2x2 example, schedule values from the formulas of the paper / the authors' code, taps
from `pallas_kernels.separable.composite_offsets` read against a NumPy shift.
"""
from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from jaxvfi import config_lib
from jaxvfi import optim
from jaxvfi.models import sepconv
from jaxvfi.models import sepconv_gan as gan
from jaxvfi.models import vgg
from pallas_kernels import separable


def _count(tree):
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def _config(arg="runlocal", **overrides):
  return config_lib.load_config(os.path.join(ROOT, "configs", "sepconv_gan.py"), arg, overrides)


@functools.lru_cache(maxsize=None)
def _shapes(input_size=160, composite=False):
  c = _config("composite" if composite else None, **{"model.input_size": input_size})
  model = gan.build(c.model)
  return jax.eval_shape(lambda r: model.init(r, gan.example_batch(c), train=False)["params"], jax.random.PRNGKey(0))


def _conv(cin, cout, k=3):
  return k * k * cin * cout + cout


def test_parameter_counts():
  p = _shapes()
  assert (_count(p["generator"]), _count(p["discriminator"]), _count(p["vgg"])) == (21_675_452, 13_114_369,
                                                                                    20_024_384)
  # The head by hand: two 3x3 convs 512 -> 512, 5x5 -> max-pool 3/2 valid -> 2x2x512 = 2048, dense 2048, 2048, 1.
  assert _count(p["discriminator"]) == 2 * _conv(512, 512) + (2048 * 2048 + 2048) * 2 + 2048 + 1
  # Composite dilation (11, 10): each of the 4 kernel heads ends in 21 taps instead of 51; the rest is unchanged.
  subnet = lambda k: 2 * _conv(64, 64) + _conv(64, k) + _conv(k, k)
  composite = _count(_shapes(composite=True)["generator"])
  assert composite == 21_675_452 - 4 * subnet(51) + 4 * subnet(21) == 21_528_332
  # The dense input follows the input side: 512 at 96 and 128, 2048 at 160.
  for side, dense_in in ((96, 512), (128, 512), (160, 2048)):
    assert _shapes(side)["discriminator"]["dense1"]["kernel"].shape == (dense_in, 2048)
    assert gan.dense_input_size(side) == dense_in
  with pytest.raises(ValueError, match="at least 96"):
    gan.dense_input_size(64)


def test_generator_losses_by_hand_on_a_2x2_example():
  c = _config(None, **{"loss.weights.luminosity": 2.0})
  loss_fn, notes = gan.make_loss_fn(c)
  assert notes == []
  image = jnp.asarray([[[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]], [[0.4, 0.0, 0.0], [0.0, 0.0, 0.2]]])[None]
  preds = {"image": image, "vgg_fake": jnp.asarray([[1.0, 2.0], [3.0, 4.0]])[None, ..., None],
           "vgg_target": jnp.asarray([[1.0, 0.0], [3.0, 0.0]])[None, ..., None],
           "logits_fake": jnp.asarray([-math.log(3.0)])}
  total, m = loss_fn(preds, {"target": jnp.zeros_like(image)})
  lp = (2.0 ** 2 + 4.0 ** 2) / 4                       # mean squared relu4_4 difference
  lr = 255 * (0.6 + 0.4 + 0.2) / 12                    # L1 on the 0-255 scale: 25.5
  la = -math.log(0.25)                                 # -log sigma(-ln 3) = -log(1/4)
  lum = (0.1815 ** 2 + 0.1196 ** 2 + 0.0228 ** 2) / 4  # 0.299 R + 0.587 G + 0.114 B per pixel
  assert float(m["loss_perceptual"]) == pytest.approx(lp) and float(m["loss_l1"]) == pytest.approx(25.5, rel=1e-6)
  assert float(m["loss_adversarial"]) == pytest.approx(la, rel=1e-6)
  assert float(m["loss_luminosity"]) == pytest.approx(lum, rel=1e-5)
  assert float(total) == pytest.approx(lp + 0.4 * lr + 0.8 * la + 2.0 * lum, rel=1e-6)


def test_discriminator_loss_with_one_sided_label_smoothing_by_hand():
  real, fake = jnp.asarray([0.0, math.log(3.0)]), jnp.asarray([0.0, -math.log(3.0)])
  # Real label 1 - 0.25 / 2 = 0.875: BCE(0, y) = ln 2 for any y; BCE(ln 3, 0.875) = -(0.875 ln 3/4 + 0.125 ln 1/4).
  on_real = (math.log(2) + 0.875 * math.log(4 / 3) + 0.125 * math.log(4)) / 2
  on_fake = (math.log(2) + math.log(4 / 3)) / 2      # label 0, never smoothed
  assert float(gan.discriminator_loss(real, fake)) == pytest.approx(on_real + on_fake, rel=1e-6)
  assert float(gan.discriminator_loss(real, fake, 0.0)) == pytest.approx(
      (math.log(2) + math.log(4 / 3)) / 2 + on_fake, rel=1e-6)


def test_learning_rate_schedules():
  c = _config(None)
  g = gan.make_schedule(c.optimizer.schedule, c.batch_size, c.num_train_steps, 1.0)
  d = gan.make_schedule(c.discriminator_optimizer.schedule, c.batch_size, c.num_train_steps, 1.0)
  # Batch 6: 10,000 samples are done after step 1667 (6 x 1667 = 10,002), 20,000 after 3334, 100,000 after 16,667.
  steps = (0, 1666, 1667, 3333, 3334, 16_667)
  np.testing.assert_allclose([float(g(s)) for s in steps],
                             [6e-4, 6e-4, 6e-4 * 0.99, 6e-4 * 0.99, 6e-4 * 0.99 ** 2, 6e-4 * 0.99 ** 10], rtol=1e-6)
  assert [float(d(s)) for s in steps] == pytest.approx([1e-4] * len(steps))
  # The code's rule, lr <- lr^(1 / 0.99) at each interval: lr_k = 6e-4^(0.99^-k).
  power = gan.make_schedule({**c.optimizer.schedule.to_dict(), "rule": "power"}, 6, 1, 1.0)
  np.testing.assert_allclose([float(power(s)) for s in (0, 1667, 3334)],
                             [6e-4, 6e-4 ** (1 / 0.99), 6e-4 ** (1 / 0.99 ** 2)], rtol=1e-5)


def test_gradients_are_clipped_per_tensor():
  grads = {"a": jnp.asarray([6.0, 8.0]), "b": jnp.asarray([3.0, 0.0])}    # norms 10 and 3
  tx = optim.clip_by_tensor_norm(5.0)
  out, _ = tx.update(grads, tx.init(grads))
  np.testing.assert_allclose(out["a"], [3.0, 4.0], rtol=1e-6)   # scaled to norm 5
  np.testing.assert_array_equal(out["b"], [3.0, 0.0])           # under the bound: unchanged (no global rescale)


def test_composite_dilation_through_the_generator():
  """Heads set by hand (zero weights, one-hot biases): frame1 read through its second ring tap horizontally, which
  pattern 1 (frame1's) places 12 pixels left of the centre and pattern 0 would place 13 (`composite_offsets`)."""
  d_in, d_out = 11, 10
  net = sepconv.SepConvNet(activation="leaky_relu", composite_dilation=(d_in, d_out), impl="xla")
  f = jnp.zeros((1, 32, 32, 3))
  shapes = jax.eval_shape(net.init, jax.random.PRNGKey(0), f, f)["params"]
  params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  taps, r = d_in + d_out, d_in // 2 + d_out
  offsets = separable.composite_offsets(d_in, d_out, 1)
  centre, ring = offsets.index(r), d_in + 1
  for name, tap in (("kv1", centre), ("kh1", ring)):
    params[name]["head"]["bias"] = jnp.zeros(taps).at[tap].set(1.0)
  frame1 = jax.random.uniform(jax.random.PRNGKey(1), (1, 32, 32, 3))
  out = net.apply({"params": params}, jax.random.uniform(jax.random.PRNGKey(2), (1, 32, 32, 3)), frame1)
  shift = offsets[ring] - r  # x reads x - 12 (zeros left of the frame)
  assert shift == -12 and separable.composite_offsets(d_in, d_out, 0)[ring] - r == -13
  want = np.pad(np.asarray(frame1), ((0, 0), (0, 0), (-shift, 0), (0, 0)))[:, :, :32]
  np.testing.assert_allclose(out["image"], want, atol=1e-6)
  assert out["kv0"].shape == (1, 32, 32, taps)


def test_caffe_vgg_input():
  x = jax.random.uniform(jax.random.PRNGKey(3), (1, 8, 8, 3))
  model = vgg.VGG19(output_layer="pool1", preprocessing="caffe")
  params = jax.tree.map(lambda s: jax.random.normal(jax.random.PRNGKey(4), s.shape) * 0.01,
                        jax.eval_shape(model.init, jax.random.PRNGKey(0), x)["params"])
  out = model.apply({"params": params}, x)
  assert set(out) == {"relu1_1", "relu1_2", "pool1"} and out["pool1"].shape == (1, 4, 4, 64)
  # relu1_1 at an interior pixel by hand: BGR, 0-255, minus the Caffe means.
  xc = 255 * np.asarray(x[0])[..., ::-1] - np.array([103.939, 116.779, 123.68])
  k, b = np.asarray(params["conv1_1"]["kernel"]), np.asarray(params["conv1_1"]["bias"])
  want = np.maximum(np.einsum("hwc,hwco->o", xc[2:5, 3:6], k) + b, 0.0)
  np.testing.assert_allclose(out["relu1_1"][0, 3, 4], want, rtol=1e-4, atol=1e-3)
  np.testing.assert_allclose(out["pool1"][0, 1, 2], np.asarray(out["relu1_2"][0, 2:4, 4:6]).max((0, 1)))


def test_paper_config_refuses_without_vgg_weights_and_checks_the_crop(tmp_path):
  c = _config(None)
  with pytest.raises(ValueError, match="model.vgg_weights is not set"):
    gan.check_config(c)
  with pytest.raises(ValueError, match="model.vgg_weights is not set"):
    gan.load_pretrained({}, c)
  with pytest.raises(FileNotFoundError, match="nope.npz"):
    gan.check_config(_config(None, **{"model.vgg_weights": str(tmp_path / "nope.npz")}))
  with pytest.raises(ValueError, match="input_size"):
    gan.check_config(_config(**{"model.input_size": 128}))   # runlocal crops 96
  gan.check_config(_config())                                  # runlocal: random trainable VGG, no weights
  assert "randomly initialised" in gan.make_loss_fn(_config())[1][0]
