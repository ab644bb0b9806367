"""What `impl="auto"` runs: unchanged off-GPU; on a GPU the per-op table of `common.AUTO_GPU_DEFAULT`, overridden by
measured choices (`AUTO_GPU_MEASURED`, `$PALLAS_KERNELS_AUTO`). No GPU here: the GPU branch is exercised by making
`common.on_gpu` answer True while the kernels are run in interpret mode explicitly."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import pallas_call_names
from pallas_kernels import common
from pallas_kernels import deform
from pallas_kernels import warp


@pytest.fixture
def fake_gpu(monkeypatch):
  """`common.on_gpu()` is True: "auto" takes its GPU branch (kernels must then be given interpret=True)."""
  monkeypatch.setattr(common, "on_gpu", lambda: True)
  monkeypatch.delenv(common.AUTO_ENV, raising=False)


def test_auto_off_gpu_is_unchanged():
  if common.on_gpu():
    pytest.skip("a GPU backend is present")
  assert common.resolve_impl("auto", has_cpu_impl=True, op="sepconv") == "cpu"
  assert common.resolve_impl("auto", has_cpu_impl=True, op="backward_warp") == "cpu"
  assert common.resolve_impl("auto", op="deform_conv") == "xla"
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(1, 5, 6, 4)), jnp.float32)
  off = jnp.asarray(rng.normal(size=(1, 5, 6, 18)), jnp.float32)
  wt = jnp.asarray(rng.normal(size=(3, 3, 4, 3)), jnp.float32)
  np.testing.assert_array_equal(deform.deform_conv(x, off, wt, impl="auto"), deform.deform_conv_reference(x, off, wt))
  sq_off = off[..., :2]
  np.testing.assert_array_equal(deform.squared_deform_conv(x, sq_off, wt, impl="auto"),
                                deform.squared_deform_conv_reference(x, sq_off, wt))


def test_auto_table_on_gpu(fake_gpu, monkeypatch, tmp_path):  # pylint: disable=unused-argument,redefined-outer-name
  assert common.resolve_impl("auto", has_cpu_impl=True, op="sepconv") == "pallas"
  assert common.resolve_impl("auto", op="deform_conv") == "pallas"
  assert common.auto_choice("deform_conv.backward") == "xla"
  assert common.auto_choice("backward_warp.image_grad") == "xla"
  assert common.resolve_impl("auto", op=None) == "pallas"  # an op without an entry
  assert common.resolve_impl("xla", op="sepconv") == "xla"  # explicit impls are never rewritten
  monkeypatch.setitem(common.AUTO_GPU_MEASURED, "sepconv", "xla")  # measured choices win over the defaults
  assert common.resolve_impl("auto", has_cpu_impl=True, op="sepconv") == "xla"
  path = tmp_path / "auto.json"  # ... and the file named by the environment over both
  path.write_text(json.dumps({"auto": {"sepconv": "pallas", "deform_conv.backward": "pallas"}, "device": "H100"}))
  monkeypatch.setenv(common.AUTO_ENV, str(path))
  assert common.auto_table()["sepconv"] == "pallas" and common.auto_choice("deform_conv.backward") == "pallas"
  path.write_text(json.dumps({"sepconv": "triton"}))
  monkeypatch.setenv(common.AUTO_ENV, str(path))
  with pytest.raises(ValueError, match="PALLAS_KERNELS_AUTO"):
    common._auto_file(str(path), -1.0)  # pylint: disable=protected-access


@pytest.mark.parametrize("padding", ["zeros", "border"])
def test_warp_image_gradient_by_xla(padding):
  """`image_grad="xla"` (what "auto" uses on a GPU): with the image differentiated the backward is the jnp one (no
  Pallas backward kernel), equal to the reference's gradients; with a constant image it is the Pallas flow kernel."""
  rng = np.random.default_rng(1)
  image = jnp.asarray(rng.normal(size=(2, 6, 7, 3)), jnp.float32)
  flow = jnp.asarray(rng.normal(size=(2, 6, 7, 2)) * 3, jnp.float32)
  cot = jnp.asarray(rng.normal(size=image.shape), jnp.float32)
  loss = lambda im, fl: jnp.sum(warp.backward_warp_pallas(im, fl, padding, interpret=True, image_grad="xla") * cot)
  ref = lambda im, fl: jnp.sum(warp.backward_warp_reference(im, fl, padding) * cot)
  for argnums in ((0, 1), 1):
    got = jax.grad(loss, argnums=argnums)(image, flow)
    want = jax.grad(ref, argnums=argnums)(image, flow)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  assert sorted(pallas_call_names(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(image, flow))) == [
      "backward_warp_fwd"]
  assert sorted(pallas_call_names(jax.make_jaxpr(jax.grad(loss, argnums=1))(image, flow))) == [
      "backward_warp_bwd_flow", "backward_warp_fwd"]
  with pytest.raises(ValueError, match="image_grad"):
    warp.backward_warp_pallas(image, flow, padding, image_grad="cuda")


@pytest.mark.parametrize("squared", [False, True])
def test_deform_auto_on_gpu_is_pallas_forward_xla_backward(fake_gpu, squared):  # pylint: disable=unused-argument
  """On a GPU, "auto" runs the Pallas forward (interpret mode here) and differentiates it as the reference: the value
  is the Pallas kernel's, every gradient the reference's, and no Pallas backward kernel is traced."""
  rng = np.random.default_rng(2)
  n, h, w, cin, cout, groups = 1, 5, 6, 8, 4, (1 if squared else 2)
  x = jnp.asarray(rng.normal(size=(n, h, w, cin)), jnp.float32)
  off = jnp.asarray(rng.normal(size=(n, h, w, 2 if squared else 2 * groups * 9)) * 1.5, jnp.float32)
  wt = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) * 0.3, jnp.float32)
  bias = jnp.asarray(rng.normal(size=(cout,)), jnp.float32)
  mask = None if squared else jnp.asarray(rng.uniform(size=(n, h, w, groups * 9)), jnp.float32)
  if squared:
    args = (x, off, wt, bias)
    pallas = lambda *a, interpret=None: deform.squared_deform_conv_pallas(*a, interpret=interpret)
    ref, op = deform.squared_deform_conv_reference, "squared_deform_conv"
  else:
    args = (x, off, wt, bias, mask)
    pallas = lambda *a, interpret=None: deform.deform_conv_pallas(*a, offset_groups=groups, interpret=interpret)
    ref, op = (lambda *a: deform.deform_conv_reference(*a, offset_groups=groups)), "deform_conv"
  auto = lambda *a: deform._dispatch(op, "auto", pallas, ref, a, interpret=True)  # pylint: disable=protected-access
  np.testing.assert_array_equal(auto(*args), pallas(*args, interpret=True))
  cot = jnp.asarray(rng.normal(size=(n, h, w, cout)), jnp.float32)
  argnums = tuple(range(len(args)))
  got = jax.grad(lambda *a: jnp.sum(auto(*a) * cot), argnums=argnums)(*args)
  want = jax.grad(lambda *a: jnp.sum(ref(*a) * cot), argnums=argnums)(*args)
  for a, b in zip(got, want):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  names = pallas_call_names(jax.make_jaxpr(jax.grad(lambda *a: jnp.sum(auto(*a) * cot), argnums=argnums))(*args))
  assert names == ["sq_deform_fwd" if squared else "deform_fwd"], names
