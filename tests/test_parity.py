"""Parity with the original PyTorch code: converted random weights give the original networks' outputs.

Oracle: tests/fixtures/<arch>.npz, written by tools/make_parity_fixtures.py (torch, float64) from minimal copies of
the original code at the commits recorded there (and the `lpips` package itself): the seed, a small input and the
original's outputs. Here the same state_dict is rebuilt from the seed (`weights.random_state_dict`), converted with
`jaxvfi.weights`, run through jaxvfi's module with the converter's switches, and compared.

Tolerance: max |jaxvfi - original| <= 1e-4 * max(1, max |original|) per output (float32 here, float64 there; the
largest observed error is printed on failure). The fixtures' `fingerprint` separates a changed NumPy generator (then
regenerate the fixtures) from a broken conversion.
"""
from __future__ import annotations

import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvfi import metrics
from jaxvfi import weights
from jaxvfi.models import pwcnet
from jaxvfi.models import sepconv
from jaxvfi.models import superslomo
from jaxvfi.models import vgg

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
RTOL = 1e-4


def fixture(arch: str) -> dict[str, np.ndarray]:
  with np.load(os.path.join(FIXTURES, f"{arch}.npz"), allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


def state_from_seed(arch: str, fx) -> dict[str, np.ndarray]:
  state = weights.random_state_dict(arch, int(fx["seed"]))
  keys = sorted(state)
  got = [state[keys[0]].flat[0], state[keys[-1]].flat[0],
         sum(float(np.abs(state[k].astype(np.float64)).sum()) for k in keys)]
  if not np.allclose(got, fx["fingerprint"], rtol=1e-9, atol=0):
    pytest.fail(f"{arch}: the state_dict rebuilt from seed {int(fx['seed'])} is not the fixture's (fingerprint {got} "
                f"vs {fx['fingerprint'].tolist()}): NumPy's generator changed; regenerate the fixtures with "
                "tools/make_parity_fixtures.py")
  return state


def assert_parity(got, want, what: str):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape, f"{what}: shape {got.shape} vs the original's {want.shape}"
  err, scale = float(np.max(np.abs(got - want))), max(1.0, float(np.max(np.abs(want))))
  print(f"{what}: max |error| {err:.3g}, max |original| {float(np.max(np.abs(want))):.3g}")
  assert err <= RTOL * scale, f"{what}: max |error| {err:.3g} > {RTOL} x {scale:.3g}"


def frames(fx) -> dict[str, jax.Array]:
  return {k: jnp.asarray(fx[k], jnp.float32) / 255.0 for k in ("frame0", "frame1")}


def test_sepconv_kernels_and_frame():
  fx = fixture("sepconv")
  params = weights.convert_state_dict("sepconv", state_from_seed("sepconv", fx))
  model = sepconv.build(weights.RELEASED_MODEL_CONFIG["sepconv"])
  preds = jax.jit(model.apply)({"params": params}, frames(fx))
  rows, cols = fx["kernel_rows"], fx["kernel_cols"]
  for i, name in enumerate(("kv0", "kh0", "kv1", "kh1")):  # the original's Vertical1, Horizontal1, Vertical2, ...
    assert_parity(np.asarray(preds[name])[0][rows][:, cols], fx["kernels"][i], f"sepconv kernel {name}")
  assert_parity(preds["image"], fx["image"], "sepconv frame")


@functools.lru_cache(maxsize=1)
def superslomo_params():
  return weights.convert_state_dict("superslomo", state_from_seed("superslomo", fixture("superslomo")))


def superslomo_preds(config: dict, fx):
  params = superslomo_params()
  model = superslomo.FlowInterpolator(variant="superslomo", **config)
  return jax.jit(model.apply)({"params": params}, {**frames(fx), "t": jnp.asarray(fx["t"])})


def test_superslomo_both_unets_and_frame():
  fx = fixture("superslomo")
  preds = superslomo_preds(weights.RELEASED_MODEL_CONFIG["superslomo"], fx)
  assert_parity(jnp.concatenate([preds["flow_01"], preds["flow_10"]], -1), fx["flow_unet"], "flow UNet")
  unet = fx["interpolation_unet"]
  assert_parity(preds["flow_t0"] - preds["flow_t0_approx"], unet[..., 0:2], "interpolation UNet (dF t->0)")
  assert_parity(preds["flow_t1"] - preds["flow_t1_approx"], unet[..., 2:4], "interpolation UNet (dF t->1)")
  assert_parity(preds["visibility_t0"], jax.nn.sigmoid(unet[..., 4:5]), "interpolation UNet (V t->0)")
  assert_parity(preds["image"], fx["image"], "Super-SloMo frame")


def test_superslomo_our_conventions_break_parity():
  """With our defaults in place of the release's switches the frame is far off: the switches make parity hold
  (each one alone: tests/test_models_superslomo.py)."""
  fx = fixture("superslomo")
  ours = dict(unet_output_leaky_relu=False, warp_sample_shift=0.0, input_mean=(0.5, 0.5, 0.5), warp_centered=False)
  preds = superslomo_preds({**weights.RELEASED_MODEL_CONFIG["superslomo"], **ours}, fx)
  err = float(np.max(np.abs(np.asarray(preds["image"]) - fx["image"])))
  assert err > 100 * RTOL, f"our conventions: frame still within {err:.3g} of the original"


def test_pwcnet_flow():
  fx = fixture("pwcnet")
  params = weights.convert_state_dict("pwcnet", state_from_seed("pwcnet", fx))
  f = frames(fx)
  flow = jax.jit(pwcnet.PWCNet().apply)({"params": params}, f["frame0"], f["frame1"])
  assert_parity(flow, fx["flow"], "PWC-Net flow")


def test_vgg19_relu4_4():
  fx = fixture("vgg19")
  params = weights.convert_state_dict("vgg19", state_from_seed("vgg19", fx))
  image = jnp.asarray(fx["image"], jnp.float32) / 255.0
  out = vgg.VGG19(output_layer="relu4_4").apply({"params": params}, image)["relu4_4"]
  assert_parity(out, fx["relu4_4"], "VGG-19 relu4_4")


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_distance_through_the_metric(tmp_path, net):
  """The trunk from the seed, the `lpips` package's shipped v0.1 heads (stored in the fixture), written as the
  converter writes them and scored by `metrics.lpips_fn`, against `lpips.LPIPS(...)(x0, x1, normalize=True)`."""
  arch = f"lpips_{net}"
  fx = fixture(arch)
  state = state_from_seed(arch, fx)
  heads = {k[len("heads/"):]: v for k, v in fx.items() if k.startswith("heads/")}
  assert sorted(heads) == sorted(k for k in state if k.startswith("lin"))
  state.update(heads)
  path = tmp_path / f"{arch}.npz"
  np.savez(path, **state)
  fn = metrics.lpips_fn(path)
  assert fn.net == net
  distance = fn(jnp.asarray(fx["image0"]) / 255.0, jnp.asarray(fx["image1"]) / 255.0)
  assert_parity(distance, fx["distance"], f"LPIPS-{net} distance")
  assert fx["distance"][0] > fx["distance"][1]  # unrelated images are farther apart than a perturbation


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_lpips_heads_from_a_torch_file_without_torch(tmp_path, monkeypatch, fmt):
  """The fixture's v0.1 heads as torch saved them (lpips_alex_heads_{zip,legacy}.pth, the form of the `lpips`
  package's weights/v0.1/alex.pth), merged with the trunk by `weights convert` while `import torch` fails: the same
  Flax params as from the fixture's .npz arrays, and the original code's distances."""
  monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
  fx = fixture("lpips_alex")
  state = state_from_seed("lpips_alex", fx)
  trunk = tmp_path / "alexnet.npz"
  np.savez(trunk, **{k: v for k, v in state.items() if k.startswith("features.")})
  dst = tmp_path / "lpips_alex.npz"
  assert weights.main(["convert", "--arch=lpips_alex", f"--src={trunk}",
                       f"--src={os.path.join(FIXTURES, f'lpips_alex_heads_{fmt}.pth')}", f"--dst={dst}"]) == 0
  heads = {k[len("heads/"):]: v for k, v in fx.items() if k.startswith("heads/")}
  want = weights.convert_state_dict("lpips_alex", {**state, **heads})
  jax.tree.map(np.testing.assert_array_equal, weights.load_params("lpips_alex", dst), want)
  distance = metrics.lpips_fn(dst)(jnp.asarray(fx["image0"]) / 255.0, jnp.asarray(fx["image1"]) / 255.0)
  assert_parity(distance, fx["distance"], f"LPIPS-alex distance, heads from the {fmt} .pth")


# ----------------------------------------------------------------------------------------------------------------
# Released weights through `jaxvfi.interpolate`, no training workdir: the converter's switches reach the model.


def _cli(*argv):
  from jaxvfi import interpolate  # pylint: disable=g-import-not-at-top
  return interpolate.run(interpolate._parse_flags(["interpolate", *argv]))  # pylint: disable=protected-access


def _write_pair(fx, tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  paths = [str(tmp_path / f"{k}.png") for k in ("frame0", "frame1")]
  for k, path in zip(("frame0", "frame1"), paths):
    Image.fromarray(fx[k][0]).save(path)
  return paths


def test_cli_released_superslomo_weights_give_the_original_frame(tmp_path):
  """`--model=superslomo --weights=F.npz` with F the fixture's random weights: the PNG is the original code's frame
  in 8 bits (1 level of rounding slack), at the fixture's t."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from jaxvfi import utils  # pylint: disable=g-import-not-at-top
  fx = fixture("superslomo")
  path = tmp_path / "superslomo.npz"
  assert weights.main(["random", "--arch=superslomo", f"--seed={int(fx['seed'])}", f"--dst={path}"]) == 0
  out = str(tmp_path / "mid.png")
  t = float(fx["t"][0])
  assert _cli("--model=superslomo", f"--weights={path}", "--frames", *_write_pair(fx, tmp_path), "--output", out,
              f"--times={t}") == [out]
  diff = np.abs(np.asarray(Image.open(out)).astype(int) - utils.to_uint8(fx["image"][0]))
  assert diff.max() <= 1 and diff.mean() < 0.01


def test_cli_released_sepconv_weights_without_a_workdir(tmp_path):
  """The library call sets the release's switches on the family's config; the CLI frame is the original code's
  frame in 8 bits (with random weights most of it saturates at 0 or 255, which the sign pattern still checks)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from jaxvfi import utils  # pylint: disable=g-import-not-at-top
  from jaxvfi.inference import interpolator  # pylint: disable=g-import-not-at-top
  fx = fixture("sepconv")
  path = tmp_path / "sepconv.npz"
  assert weights.main(["random", "--arch=sepconv", f"--seed={int(fx['seed'])}", f"--dst={path}"]) == 0
  interp = interpolator.load_model(weights=str(path), model="sepconv")
  assert interp.time_free and interp.config.model.padding == "replicate"
  for key, value in weights.RELEASED_MODEL_CONFIG["sepconv"].items():
    assert getattr(interp.model, key) == value, key
  out = str(tmp_path / "mid.png")
  assert _cli("--model=sepconv", f"--weights={path}", "--frames", *_write_pair(fx, tmp_path), "--output", out) == [out]
  diff = np.abs(np.asarray(Image.open(out)).astype(int) - utils.to_uint8(fx["image"][0]))
  assert diff.max() <= 1


def test_cli_released_weights_errors(tmp_path):
  frames = ["--frames", "a.png", "b.png", "--output", str(tmp_path / "o.png")]
  with pytest.raises(ValueError, match="not both"):
    _cli("--workdir=w", "--model=sepconv", "--weights=w.npz", *frames)
  with pytest.raises(ValueError, match="--model alone takes a released model's name"):
    _cli("--model=sepconv", *frames)
  with pytest.raises(FileNotFoundError, match="--weights .*missing.npz does not exist"):
    _cli("--model=sepconv", f"--weights={tmp_path / 'missing.npz'}", *frames)
  from jaxvfi.inference import interpolator  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="--model must be one of sepconv, superslomo"):
    interpolator.load_model(weights=str(tmp_path / "x.npz"), model="pwcnet")
