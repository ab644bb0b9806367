"""Tests of `pallas_kernels.deform` against an independent float64 NumPy oracle (per-pixel, per-tap loops).

The oracle follows torchvision's `deform_conv2d` CPU code path (bilinear sample with zeros outside, per-corner
bounds), written from the definition, not from the `jnp` reference. The Pallas kernels run in interpret mode on CPU;
interpret mode replaces the x-gradient atomics by a scatter-add, so the GPU `atomic_add` path is only checked to
lower for CUDA here (with every other forward and backward kernel).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pallas_kernels import common
from pallas_kernels import deform

IMPLS = ("pallas", "xla", "auto")


@pytest.fixture(autouse=True)
def _float32_matmuls():
  """Exact float32 dots in the kernels and the reference alike, should these tests run on a GPU (TF32 otherwise)."""
  with jax.default_matmul_precision("float32"):
    yield


# ----------------------------------------------------------------------------------------------------------------------
# Oracle
# ----------------------------------------------------------------------------------------------------------------------


def _np_sample(img, y, x):
  """Bilinear sample of img (H,W,C) at (y, x); corners outside the image contribute zero."""
  h, w, c = img.shape
  out = np.zeros(c)
  if y <= -1 or y >= h or x <= -1 or x >= w:
    return out
  y0, x0 = int(np.floor(y)), int(np.floor(x))
  ly, lx = y - y0, x - x0
  for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
    for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
      if 0 <= yy < h and 0 <= xx < w:
        out += wy * wx * img[yy, xx]
  return out


def _np_pixel(x, offset, weight, bias, mask, b, i, j, groups=1):
  """Output pixel (b, i, j): sum over groups g and taps (ti, tj) of m * sample(p + (ti - r, tj - r) + offset_gt) @
  W[ti, tj] restricted to group g's input channels; offset channel g*2K + 2t is dy, mask channel g*K + t."""
  k = weight.shape[0]
  r = k // 2
  cpg = x.shape[-1] // groups
  acc = np.zeros(weight.shape[-1]) if bias is None else np.array(bias, np.float64)
  for grp in range(groups):
    chans = slice(grp * cpg, (grp + 1) * cpg)
    for ti in range(k):
      for tj in range(k):
        t = ti * k + tj
        o = grp * 2 * k * k + 2 * t
        s = _np_sample(x[b][..., chans], i + ti - r + offset[b, i, j, o], j + tj - r + offset[b, i, j, o + 1])
        if mask is not None:
          s = s * mask[b, i, j, grp * k * k + t]
        acc = acc + s @ weight[ti, tj][chans]
  return acc


def np_deform_conv(x, offset, weight, bias=None, mask=None, groups=1):
  x, offset, weight = (np.asarray(a, np.float64) for a in (x, offset, weight))
  bias = None if bias is None else np.asarray(bias, np.float64)
  mask = None if mask is None else np.asarray(mask, np.float64)
  n, h, w, _ = x.shape
  out = np.zeros((n, h, w, weight.shape[-1]))
  for b in range(n):
    for i in range(h):
      for j in range(w):
        out[b, i, j] = _np_pixel(x, offset, weight, bias, mask, b, i, j, groups)
  return out


def np_tile_squared(offset, k):
  """Squared offsets as per-point offsets: the same (dy, dx) for every tap (Eq. (5), SDAN)."""
  return np.tile(np.asarray(offset, np.float64), (1, 1, 1, k * k))


# ----------------------------------------------------------------------------------------------------------------------
# Inputs and jitted entry points (module level so that every test reuses the compiled programs)
# ----------------------------------------------------------------------------------------------------------------------


def _inputs(seed=0, n=2, h=9, w=8, cin=3, cout=5, k=3, off_scale=3.5, frac_away=False, groups=1):
  """Random inputs; 9 x 8 = 72 pixels is not a multiple of the 64- and 32-pixel blocks, 3 and 5 not of 16."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, h, w, cin)).astype(np.float32)
  n_off = 2 * groups * k * k
  if frac_away:  # fractional parts in [0.15, 0.85]: finite differences never cross a grid line
    off = rng.integers(-2, 2, size=(n, h, w, n_off)) + rng.uniform(0.15, 0.85, size=(n, h, w, n_off))
  else:
    off = rng.uniform(-off_scale, off_scale, size=(n, h, w, n_off))
  mask = rng.uniform(0.0, 1.0, size=(n, h, w, groups * k * k)).astype(np.float32)
  weight = rng.normal(size=(k, k, cin, cout)).astype(np.float32)
  bias = rng.normal(size=(cout,)).astype(np.float32)
  cot = rng.normal(size=(n, h, w, cout)).astype(np.float32)
  return dict(x=x, offset=off.astype(np.float32), mask=mask, weight=weight, bias=bias, cot=cot)


@functools.lru_cache(maxsize=None)
def _fwd(impl, modulated, squared):
  if squared:
    return jax.jit(lambda x, o, w, b: deform.squared_deform_conv(x, o, w, b, impl=impl))
  if modulated:
    return jax.jit(lambda x, o, w, b, m: deform.deform_conv(x, o, w, b, m, impl=impl))
  return jax.jit(lambda x, o, w, b: deform.deform_conv(x, o, w, b, impl=impl))


@functools.lru_cache(maxsize=None)
def _grad(impl, modulated, squared):
  """Gradients of <out, cot> with respect to every input."""
  fwd = _fwd(impl, modulated, squared)
  nargs = 5 if modulated else 4
  loss = lambda cot, *args: jnp.sum(fwd(*args) * cot)
  return jax.jit(jax.grad(loss, argnums=tuple(range(1, nargs + 1))))


def _args(d, modulated, squared):
  off = d["offset"][..., :2] if squared else d["offset"]
  args = [d["x"], off, d["weight"], d["bias"]]
  return args + [d["mask"]] if modulated else args


def _oracle(d, modulated, squared, k=3):
  off = np_tile_squared(d["offset"][..., :2], k) if squared else d["offset"]
  return np_deform_conv(d["x"], off, d["weight"], d["bias"], d["mask"] if modulated else None)


VARIANTS = [(False, False), (True, False), (False, True)]  # (modulated, squared): DCN v1, DCN v2, squared
VARIANT_IDS = ["dcn_v1", "dcn_v2", "squared"]


@functools.lru_cache(maxsize=None)
def _main_case():
  d = _inputs()
  return d, {v: _oracle(d, *v) for v in VARIANTS}


# ----------------------------------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_forward_matches_oracle(impl, variant):
  d, want = _main_case()
  got = _fwd(impl, *variant)(*_args(d, *variant))
  np.testing.assert_allclose(np.asarray(got), want[variant], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ("pallas", "xla"))
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_offsets_leaving_every_side(impl, variant):
  """Whole pixel rows/columns pushed out past each border by various amounts, partially and completely."""
  d = dict(_main_case()[0])
  n, h, w, _ = d["x"].shape
  off = np.zeros_like(d["offset"])
  frac = np.random.default_rng(1).uniform(0.1, 0.9, size=off.shape[:3])
  for b in range(n):
    off[b, 0, :, 0::2] = -1.0 - frac[b, 0, :, None] * (b + 1)  # up: top row's windows leave through the top
    off[b, -1, :, 0::2] = 0.5 + frac[b, -1, :, None] * h * b  # down
    off[b, :, 0, 1::2] = -0.5 - frac[b, :, 0, None] * w * b  # left
    off[b, :, -1, 1::2] = 1.0 + frac[b, :, -1, None]  # right
    off[b, 3, 3, :] = (-h - 2.0, 0.0) * (off.shape[-1] // 2)  # every tap far above the image
    off[b, 4, 4, :] = (0.0, w + 5.5) * (off.shape[-1] // 2)  # every tap far right
  d["offset"] = off.astype(np.float32)
  got = np.asarray(_fwd(impl, *variant)(*_args(d, *variant)))
  np.testing.assert_allclose(got, _oracle(d, *variant), rtol=1e-4, atol=1e-4)
  # Those two windows read nothing but zeros, so only the bias is left.
  np.testing.assert_array_equal(got[:, 3, 3], np.broadcast_to(d["bias"], got[:, 3, 3].shape))
  np.testing.assert_array_equal(got[:, 4, 4], np.broadcast_to(d["bias"], got[:, 4, 4].shape))


@pytest.mark.parametrize("impl", ("pallas", "xla"))
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_integer_offsets(impl, variant):
  d = dict(_main_case()[0])
  d["offset"] = np.random.default_rng(2).integers(-3, 4, size=d["offset"].shape).astype(np.float32)
  got = _fwd(impl, *variant)(*_args(d, *variant))
  np.testing.assert_allclose(np.asarray(got), _oracle(d, *variant), rtol=1e-4, atol=1e-4)


def _conv_same(x, weight, bias):
  out = jax.lax.conv_general_dilated(x, weight, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
  return np.asarray(out + bias)


@pytest.mark.parametrize("impl", ("pallas", "xla"))
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_zero_offset_unit_mask_is_plain_conv(impl, variant):
  d = dict(_main_case()[0])
  d["offset"] = np.zeros_like(d["offset"])
  d["mask"] = np.ones_like(d["mask"])
  got = _fwd(impl, *variant)(*_args(d, *variant))
  np.testing.assert_allclose(np.asarray(got), _conv_same(d["x"], d["weight"], d["bias"]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ("pallas", "xla"))
def test_squared_integer_offset_is_shifted_conv(impl):
  """out[p] = conv(x)[p + d] wherever the shifted window stays inside the image (M = 1)."""
  d = _main_case()[0]
  dy, dx = 1, -2
  off = np.broadcast_to(np.array([dy, dx], np.float32), d["x"].shape[:3] + (2,))
  got = np.asarray(_fwd(impl, False, True)(d["x"], off, d["weight"], d["bias"]))
  conv = _conv_same(d["x"], d["weight"], d["bias"])
  inside = np.asarray(deform.squared_offset_mask(jnp.asarray(off), 3))[..., 0] > 0
  # Hand-worked: rows i with 0 <= i + 1 - 1 and i + 1 + 1 < 9, i.e. 0..6; columns j with j - 3 >= 0 and j - 1 < 8.
  np.testing.assert_array_equal(np.argwhere(inside[0].any(axis=1)).ravel(), np.arange(0, 7))
  np.testing.assert_array_equal(np.argwhere(inside[0].any(axis=0)).ravel(), np.arange(3, 8))
  ii, jj = np.nonzero(inside[0])
  np.testing.assert_allclose(got[:, ii, jj], conv[:, ii + dy, jj + dx], rtol=1e-4, atol=1e-4)


def test_kernel_size_five_and_many_channel_blocks():
  """k = 5 (a 6 x 6 neighbourhood for squared offsets), Cin = 40 and Cout = 70: two channel blocks each way."""
  d = _inputs(seed=3, n=1, h=3, w=5, cin=40, cout=70, k=5, off_scale=2.5)
  for variant in VARIANTS:
    got = _fwd("pallas", *variant)(*_args(d, *variant))
    np.testing.assert_allclose(np.asarray(got), _oracle(d, *variant, k=5), rtol=1e-4, atol=2e-4)


# ----------------------------------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------------------------------


def _fd_grads(d, modulated, squared, eps=1e-3, groups=1):
  """Central finite differences of <out, cot> on the float64 oracle, for every input element.

  Offsets and masks only move their own output pixel, so their differences evaluate that pixel alone.
  """
  k = d["weight"].shape[0]
  base = {key: np.asarray(v, np.float64) for key, v in d.items()}
  if squared:
    base["offset"] = base["offset"][..., :2]
  cot = base["cot"]

  def off_full(o):
    return np_tile_squared(o, k) if squared else o

  def loss(**kw):
    a = {**base, **kw}
    out = np_deform_conv(a["x"], off_full(a["offset"]), a["weight"], a["bias"], a["mask"] if modulated else None,
                         groups)
    return np.sum(out * cot)

  def pixel_loss(b, i, j, **kw):
    a = {**base, **kw}
    out = _np_pixel(a["x"], off_full(a["offset"]), a["weight"], a["bias"], a["mask"] if modulated else None, b, i, j,
                    groups)
    return np.sum(out * cot[b, i, j])

  grads = {}
  names = ["x", "offset", "weight", "bias"] + (["mask"] if modulated else [])
  for name in names:
    arr = base[name]
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
      plus, minus = arr.copy(), arr.copy()
      plus[idx] += eps
      minus[idx] -= eps
      if name in ("offset", "mask"):
        f = functools.partial(pixel_loss, *idx[:3])
      else:
        f = loss
      g[idx] = (f(**{name: plus}) - f(**{name: minus})) / (2 * eps)
    grads[name] = g
  return [grads[name] for name in names]


@functools.lru_cache(maxsize=None)
def _fd_case(variant):
  d = _inputs(seed=4, n=1, h=4, w=5, cin=2, cout=3, frac_away=True)
  return d, _fd_grads(d, *variant)


@pytest.mark.parametrize("impl", ("pallas", "xla"))
@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_gradients_match_finite_differences(impl, variant):
  d, want = _fd_case(variant)
  got = _grad(impl, *variant)(d["cot"], *_args(d, *variant))
  for name, g, w in zip(["x", "offset", "weight", "bias", "mask"], got, want):
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("variant", VARIANTS, ids=VARIANT_IDS)
def test_pallas_gradients_match_reference(variant):
  """Elementwise on the larger case (offsets leaving the image, two pixel blocks, batch 2)."""
  d = _main_case()[0]
  got = _grad("pallas", *variant)(d["cot"], *_args(d, *variant))
  want = _grad("xla", *variant)(d["cot"], *_args(d, *variant))
  for name, g, w in zip(["x", "offset", "weight", "bias", "mask"], got, want):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4, err_msg=name)


def test_weight_gradient_with_strided_pixel_splits(monkeypatch):
  """Fewer weight-gradient programs than pixel blocks: each program loops, and one of them runs past the end."""
  monkeypatch.setattr(deform, "_WGRAD_PROGRAMS", 27)  # 27 // 9 taps = 3 splits over 2 x 2 pixel blocks
  d = _main_case()[0]
  for variant in VARIANTS:
    def loss(w, v=variant):
      args = _args({**d, "weight": w}, *v)
      out = deform.squared_deform_conv_pallas(*args) if v[1] else deform.deform_conv_pallas(*args[:4], *args[4:])
      return jnp.sum(out * d["cot"])
    grad = jax.jit(jax.grad(loss))
    assert "grid=(3, 9, 1)" in str(jax.make_jaxpr(grad)(d["weight"])).replace("grid_mapping", "")
    got = grad(d["weight"])
    want = _grad("xla", *variant)(d["cot"], *_args(d, *variant))[2]
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------------
# Deformable groups (offset_groups = G, torchvision's channel convention)
# ----------------------------------------------------------------------------------------------------------------------

GROUPS = (1, 2, 8)


@functools.lru_cache(maxsize=None)
def _grouped(impl, modulated, groups, grad=False):
  if modulated:
    fwd = lambda x, o, w, b, m: deform.deform_conv(x, o, w, b, m, offset_groups=groups, impl=impl)
  else:
    fwd = lambda x, o, w, b: deform.deform_conv(x, o, w, b, offset_groups=groups, impl=impl)
  if not grad:
    return jax.jit(fwd)
  loss = lambda cot, *args: jnp.sum(fwd(*args) * cot)
  return jax.jit(jax.grad(loss, argnums=tuple(range(1, 6 if modulated else 5))))


@functools.lru_cache(maxsize=None)
def _group_case(groups):
  """Cin = 8 (1, 4 or 8 channels per group: one padded channel block each), offsets up to 6 px on a 9 x 8 image.

  Besides the random offsets, which leave the image often, pixel (3, 3) sends group 0's taps far above the image
  and pixel (4, 4) sends the last group's far to the right: those groups read only zeros there.
  """
  d = _inputs(seed=5, cin=8, off_scale=6.0, groups=groups)
  off = d["offset"].copy()
  off[:, 3, 3, 0:18] = (-20.0, 0.5) * 9
  off[:, 4, 4, -18:] = (0.5, 30.0) * 9
  d["offset"] = off
  return d, {m: np_deform_conv(d["x"], d["offset"], d["weight"], d["bias"], d["mask"] if m else None, groups)
             for m in (False, True)}


@pytest.mark.parametrize("impl", ("pallas", "xla"))
@pytest.mark.parametrize("modulated", (False, True), ids=("dcn_v1", "dcn_v2"))
@pytest.mark.parametrize("groups", GROUPS)
def test_groups_forward_matches_oracle(impl, modulated, groups):
  d, want = _group_case(groups)
  args = [d["x"], d["offset"], d["weight"], d["bias"]] + ([d["mask"]] if modulated else [])
  got = np.asarray(_grouped(impl, modulated, groups)(*args))
  np.testing.assert_allclose(got, want[modulated], rtol=1e-4, atol=1e-4)


def test_groups_read_their_own_channels():
  """A group whose taps all leave the image contributes nothing: the output equals the conv without its channels."""
  d, want = _group_case(8)
  cpg = 1
  others = np.ones(8, bool)
  others[0] = False  # group 0 (channel 0) is outside the image at pixel (3, 3)
  ref = np_deform_conv(d["x"][..., others], np.delete(d["offset"], np.s_[0:18], axis=-1),
                       d["weight"][:, :, others], d["bias"], None, 8 - cpg)
  np.testing.assert_allclose(want[False][:, 3, 3], ref[:, 3, 3], rtol=1e-10, atol=1e-10)
  got = np.asarray(_grouped("pallas", False, 8)(d["x"], d["offset"], d["weight"], d["bias"]))
  np.testing.assert_allclose(got[:, 3, 3], ref[:, 3, 3], rtol=1e-4, atol=1e-4)


@functools.lru_cache(maxsize=None)
def _group_fd_case():
  d = _inputs(seed=6, n=1, h=3, w=4, cin=4, cout=2, frac_away=True, groups=2)
  return d, _fd_grads(d, True, False, groups=2)


@pytest.mark.parametrize("impl", ("pallas", "xla"))
def test_groups_gradients_match_finite_differences(impl):
  """G = 2, DCN v2 on a 3 x 4 image where most taps of the border pixels leave it: x, offset, weight, bias, mask."""
  d, want = _group_fd_case()
  got = _grouped(impl, True, 2, grad=True)(d["cot"], d["x"], d["offset"], d["weight"], d["bias"], d["mask"])
  for name, g, w in zip(["x", "offset", "weight", "bias", "mask"], got, want):
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("modulated", (False, True), ids=("dcn_v1", "dcn_v2"))
def test_groups_pallas_gradients_match_reference(modulated):
  """G = 8 with one channel per group (each padded to a 16-channel block) on the 9 x 8, batch-2 case."""
  d, _ = _group_case(8)
  args = [d["x"], d["offset"], d["weight"], d["bias"]] + ([d["mask"]] if modulated else [])
  got = _grouped("pallas", modulated, 8, grad=True)(d["cot"], *args)
  want = _grouped("xla", modulated, 8, grad=True)(d["cot"], *args)
  for name, g, w in zip(["x", "offset", "weight", "bias", "mask"], got, want):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-4, err_msg=name)


def test_group_shape_errors():
  x = jnp.zeros((1, 4, 4, 6))
  w = jnp.zeros((3, 3, 6, 2))
  with pytest.raises(ValueError, match="offset_groups"):
    deform.deform_conv(x, jnp.zeros((1, 4, 4, 72)), w, offset_groups=4)  # 6 channels do not split into 4 groups
  with pytest.raises(ValueError, match=r"offset must be \(1, 4, 4, 36\)"):
    deform.deform_conv(x, jnp.zeros((1, 4, 4, 18)), w, offset_groups=2)
  with pytest.raises(ValueError, match=r"mask must be \(1, 4, 4, 27\)"):
    deform.deform_conv(x, jnp.zeros((1, 4, 4, 54)), w, mask=jnp.zeros((1, 4, 4, 9)), offset_groups=3)


# ----------------------------------------------------------------------------------------------------------------------
# SDAN mask M
# ----------------------------------------------------------------------------------------------------------------------


def test_squared_offset_mask_hand_worked():
  # H = 4, W = 5, k = 3, d = (0.5, -1): rows need i + 0.5 - 1 >= 0 and i + 0.5 + 1 < 4 -> i in {1, 2};
  # columns need j - 1 - 1 >= 0 and j - 1 + 1 < 5 -> j in {2, 3, 4}.
  off = jnp.broadcast_to(jnp.array([0.5, -1.0]), (1, 4, 5, 2))
  want = np.zeros((4, 5))
  want[1:3, 2:5] = 1.0
  np.testing.assert_array_equal(np.asarray(deform.squared_offset_mask(off, 3))[0, ..., 0], want)
  # Zero offset: a 3 x 3 window leaves the image on the border; the centre alone (k = 1, the released code's test)
  # never does.
  zero = jnp.zeros((2, 4, 5, 2))
  want = np.zeros((2, 4, 5, 1))
  want[:, 1:3, 1:4] = 1.0
  np.testing.assert_array_equal(np.asarray(deform.squared_offset_mask(zero, 3)), want)
  np.testing.assert_array_equal(np.asarray(deform.squared_offset_mask(zero, 1)), np.ones((2, 4, 5, 1)))


def test_squared_offset_mask_bounds_are_half_open():
  # Pixel (2, 2) of a 5 x 5 image, k = 3: the window spans rows 2 + dy - 1 .. 2 + dy + 1.
  cases = [((1.9, 0.0), 1.0), ((2.0, 0.0), 0.0), ((-1.0, 0.0), 1.0), ((-1.01, 0.0), 0.0),
           ((0.0, 1.99), 1.0), ((0.0, -1.5), 0.0)]
  for (dy, dx), want in cases:
    off = jnp.zeros((1, 5, 5, 2)).at[0, 2, 2].set(jnp.array([dy, dx]))
    assert float(deform.squared_offset_mask(off, 3)[0, 2, 2, 0]) == want, (dy, dx)


def test_squared_offset_mask_has_no_gradient():
  off = jnp.full((1, 4, 4, 2), 0.3)
  g = jax.grad(lambda o: jnp.sum(deform.squared_offset_mask(o, 3)))(off)
  np.testing.assert_array_equal(np.asarray(g), 0.0)


# ----------------------------------------------------------------------------------------------------------------------
# Validation and CUDA lowering
# ----------------------------------------------------------------------------------------------------------------------


def test_shape_errors():
  x = jnp.zeros((1, 4, 4, 2))
  w = jnp.zeros((3, 3, 2, 3))
  with pytest.raises(ValueError, match="offset"):
    deform.deform_conv(x, jnp.zeros((1, 4, 4, 2)), w)
  with pytest.raises(ValueError, match="mask"):
    deform.deform_conv(x, jnp.zeros((1, 4, 4, 18)), w, mask=jnp.zeros((1, 4, 4, 3)))
  with pytest.raises(ValueError, match="odd"):
    deform.deform_conv(x, jnp.zeros((1, 4, 4, 8)), jnp.zeros((2, 2, 2, 3)))
  with pytest.raises(ValueError, match="offset"):
    deform.squared_deform_conv(x, jnp.zeros((1, 4, 4, 18)), w)


_S = jax.ShapeDtypeStruct
_N, _H, _W, _CIN, _COUT = 2, 9, 7, 4, 5
_X = _S((_N, _H, _W, _CIN), jnp.float32)
_OFF = _S((_N, _H, _W, 18), jnp.float32)
_SQ_OFF = _S((_N, _H, _W, 2), jnp.float32)
_MASK = _S((_N, _H, _W, 9), jnp.float32)
_WGT = _S((3, 3, _CIN, _COUT), jnp.float32)
_BIAS = _S((_COUT,), jnp.float32)
# DSFN's TFBFI deformable conv: 128 channels in 8 groups of 16 (one unpadded channel block per group).
_X128 = _S((1, 6, 5, 128), jnp.float32)
_OFF_G8 = _S((1, 6, 5, 144), jnp.float32)
_W128 = _S((3, 3, 128, 128), jnp.float32)
# Two groups of two channels: padded channel blocks.
_OFF_G2 = _S((_N, _H, _W, 36), jnp.float32)
_MASK_G2 = _S((_N, _H, _W, 18), jnp.float32)


def _gpu_grad(fn, nargs):
  return jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(nargs)))


LOWERING_CASES = {
    # name: (function built with interpret=False, abstract args, Triton calls: forward [+ weight grad + input grad])
    "fwd_v1": (lambda x, o, w, b: deform.deform_conv_pallas(x, o, w, b, interpret=False), (_X, _OFF, _WGT, _BIAS), 1),
    "fwd_v2": (lambda x, o, w, b, m: deform.deform_conv_pallas(x, o, w, b, m, interpret=False),
               (_X, _OFF, _WGT, _BIAS, _MASK), 1),
    "bwd_v1": (_gpu_grad(lambda x, o, w: deform.deform_conv_pallas(x, o, w, interpret=False), 3), (_X, _OFF, _WGT), 3),
    "bwd_v2": (_gpu_grad(lambda x, o, w, b, m: deform.deform_conv_pallas(x, o, w, b, m, interpret=False), 5),
               (_X, _OFF, _WGT, _BIAS, _MASK), 3),
    "fwd_squared": (lambda x, o, w, b: deform.squared_deform_conv_pallas(x, o, w, b, interpret=False),
                    (_X, _SQ_OFF, _WGT, _BIAS), 1),
    "fwd_v1_g8_dsfn": (lambda x, o, w: deform.deform_conv_pallas(x, o, w, offset_groups=8, interpret=False),
                       (_X128, _OFF_G8, _W128), 1),
    "bwd_v1_g8_dsfn": (_gpu_grad(lambda x, o, w: deform.deform_conv_pallas(x, o, w, offset_groups=8,
                                                                            interpret=False), 3),
                       (_X128, _OFF_G8, _W128), 3),
    "bwd_v2_g2": (_gpu_grad(lambda x, o, w, b, m: deform.deform_conv_pallas(x, o, w, b, m, offset_groups=2,
                                                                             interpret=False), 5),
                  (_X, _OFF_G2, _WGT, _BIAS, _MASK_G2), 3),
    "bwd_squared": (_gpu_grad(lambda x, o, w, b: deform.squared_deform_conv_pallas(x, o, w, b, interpret=False), 4),
                    (_X, _SQ_OFF, _WGT, _BIAS), 3),
}


@pytest.mark.parametrize("precision", ("tensorfloat32", "float32"))
@pytest.mark.parametrize("name", sorted(LOWERING_CASES))
def test_cuda_lowering(name, precision):
  fn, args, calls = LOWERING_CASES[name]
  try:
    with jax.default_matmul_precision(precision):
      text = common.lower_for_cuda(fn, *args)
  except common.CudaLoweringUnavailable as e:
    pytest.skip(str(e))
  assert common.count_triton_calls(text) == calls
