"""Layered synthetic video clips with exact ground truth at any time t.

A scene is a background photograph plus 1-3 foreground layers cut from *other* photographs with soft (feathered),
star-shaped masks. Every layer moves under its own smooth affine motion (quadratic translation, linearly varying
rotation and log-scale), and the frame at time t is the back-to-front "over" composite of the layers posed at t
(Porter & Duff 1984). Layers move independently, so clips contain occlusions and disocclusions, and because frames
are rendered from the scene rather than interpolated, the frame at any t (including t between two training inputs,
or many sub-frames for blur synthesis as in DSFN's Adobe240 protocol) is exact.

Geometry. Positions are (y, x) in pixels with pixel centres at integer coordinates. A layer with anchor `a` (a
point of its photo) and pose (T(t), theta(t), s(t)) maps photo point u to reference-frame point
`p = T(t) + s(t) R(theta(t)) (u - a)`; rendering inverts this per output pixel,
`u = a + R(-theta(t)) (p - T(t)) / s(t)`, and samples the photo bilinearly at u. The reference frame is the
`scene.size` grid; `view` (a 2x3 affine from output pixels to reference pixels) renders any other window or
resolution of the same scene, e.g. a zoomed, shifted second camera.

Photos (all bundled with scikit-image, no download; grey ones are replicated to RGB; photos are resized so their
shorter side is at most 512 px):
  * train:      astronaut, coffee, rocket, motorcycle (left view of `stereo_motorcycle`), immunohistochemistry,
                camera, brick, grass, coins, page.
  * validation: chelsea, retina (central crop inside the fundus), gravel, text.
The two lists are disjoint, so validation clips never show a training photograph.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import numpy as np

TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "motorcycle", "immunohistochemistry", "camera", "brick", "grass",
                "coins", "page")
VALIDATION_PHOTOS = ("chelsea", "retina", "gravel", "text")
SPLIT_PHOTOS = {"train": TRAIN_PHOTOS, "validation": VALIDATION_PHOTOS}
MAX_PHOTO_SIDE = 512


def _load_photo(name: str) -> np.ndarray:
  """One scikit-image photo as float32 RGB in [0, 255], shorter side at most `MAX_PHOTO_SIDE`."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  import skimage.transform  # pylint: disable=g-import-not-at-top
  if name == "motorcycle":
    image = skimage.data.stereo_motorcycle()[0]
  elif name == "retina":
    image = skimage.data.retina()
    # The fundus is a disc on black; the central 60% square lies inside it, so no black border enters a clip.
    h, w = image.shape[:2]
    ch, cw = int(0.6 * h), int(0.6 * w)
    image = image[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
  else:
    image = getattr(skimage.data, name)()
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  image = image[..., :3].astype(np.float32)
  factor = MAX_PHOTO_SIDE / min(image.shape[:2])
  if factor < 1:
    shape = (round(image.shape[0] * factor), round(image.shape[1] * factor))
    image = skimage.transform.resize(image, shape, order=1, anti_aliasing=True, preserve_range=True)
  return np.ascontiguousarray(image, dtype=np.float32)


@functools.lru_cache(maxsize=None)
def _cached_photo(name: str) -> np.ndarray:
  photo = _load_photo(name)
  photo.flags.writeable = False  # Shared by every scene; a write would corrupt all later clips.
  return photo


def load_photos(split: str) -> dict[str, np.ndarray]:
  """The photos of `split` ("train" or "validation") by name, float32 (h, w, 3) in [0, 255], cached."""
  if split not in SPLIT_PHOTOS:
    raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_PHOTOS)}")
  return {name: _cached_photo(name) for name in SPLIT_PHOTOS[split]}


def _rotation(angle: float) -> np.ndarray:
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, -s], [s, c]])


@dataclasses.dataclass(frozen=True)
class Motion:
  """Smooth pose of a layer: T(t) = position + velocity t + acceleration t^2 / 2 (reference pixels),
  theta(t) = angle + angular_velocity t (radians), s(t) = exp(log_scale + log_scale_rate t) (output px / photo px)."""
  position: tuple[float, float]
  velocity: tuple[float, float] = (0.0, 0.0)
  acceleration: tuple[float, float] = (0.0, 0.0)
  angle: float = 0.0
  angular_velocity: float = 0.0
  log_scale: float = 0.0
  log_scale_rate: float = 0.0

  def pose(self, t: float) -> tuple[np.ndarray, float, float]:
    """(T(t), theta(t), s(t))."""
    translation = (np.asarray(self.position, np.float64) + np.asarray(self.velocity, np.float64) * t
                   + 0.5 * np.asarray(self.acceleration, np.float64) * t * t)
    return translation, self.angle + self.angular_velocity * t, float(np.exp(self.log_scale + self.log_scale_rate * t))


@dataclasses.dataclass(frozen=True)
class BlobMask:
  """Star-shaped soft mask around the layer anchor, in photo pixels.

  Boundary radius r(phi) = radius (1 + sum_k amplitudes[k] cos((k + 2) phi + phases[k])); the opacity ramps from 0
  to 1 with a smoothstep across a band `feather` photo pixels wide centred on the boundary.
  """
  radius: float
  amplitudes: tuple[float, ...] = ()
  phases: tuple[float, ...] = ()
  feather: float = 2.0

  def alpha(self, offset: np.ndarray) -> np.ndarray:
    """Opacity at photo-space offsets (..., 2) from the anchor."""
    dist = np.hypot(offset[..., 0], offset[..., 1])
    phi = np.arctan2(offset[..., 0], offset[..., 1])
    boundary = np.full_like(dist, self.radius)
    for k, (amp, phase) in enumerate(zip(self.amplitudes, self.phases)):
      boundary += self.radius * amp * np.cos((k + 2) * phi + phase)
    x = np.clip((boundary - dist) / self.feather + 0.5, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)

  @property
  def extent(self) -> float:
    """Radius beyond which the opacity is exactly 0."""
    return self.radius * (1.0 + float(np.sum(np.abs(self.amplitudes)))) + 0.5 * self.feather


@dataclasses.dataclass(frozen=True)
class Layer:
  """A photo placed by `motion`; `anchor` is the photo point (y, x) that sits at T(t). `mask` None is opaque."""
  photo: str
  anchor: tuple[float, float]
  motion: Motion
  mask: BlobMask | None = None


@dataclasses.dataclass(frozen=True)
class Scene:
  """Layers back to front (layers[0] is the opaque background), the photos they use and the reference size (H, W)."""
  layers: tuple[Layer, ...]
  photos: Mapping[str, np.ndarray]
  size: tuple[int, int]


def _uniform_direction(rng: np.random.Generator) -> np.ndarray:
  angle = rng.uniform(-np.pi, np.pi)
  return np.array([np.sin(angle), np.cos(angle)])


def _sample_translation(rng, displacement, curvature):
  """Velocity and acceleration whose t=0 -> 1 displacement v + a/2 has length in `displacement`."""
  magnitude = rng.uniform(*displacement)
  velocity = magnitude * _uniform_direction(rng)
  # A curved, non-uniform path: interpolators that assume linear motion are not exactly right on it, as in real video.
  acceleration = curvature * magnitude * rng.uniform(0.0, 1.0) * _uniform_direction(rng)
  velocity = velocity - 0.5 * acceleration  # Keep the t=1 displacement at the sampled magnitude and direction.
  return velocity, acceleration


def sample_scene(rng: np.random.Generator, photos: Mapping[str, np.ndarray], size: tuple[int, int] = (128, 128), *,
                 num_foreground: tuple[int, int] = (1, 3), displacement: tuple[float, float] = (2.0, 15.0),
                 curvature: float = 0.5, max_rotation: float = np.deg2rad(3.0),
                 max_foreground_rotation: float = np.deg2rad(10.0), max_log_scale_rate: float = 0.04,
                 foreground_radius: tuple[float, float] = (0.12, 0.3),
                 time_range: tuple[float, float] = (0.0, 1.0)) -> Scene:
  """Samples a random scene from `photos` (at least two).

  Args:
    rng: the only source of randomness, so a scene is a pure function of the generator state.
    photos: name -> float32 (h, w, 3) photo, e.g. `load_photos("train")`.
    size: reference frame (H, W).
    num_foreground: inclusive range of the number of foreground layers.
    displacement: range of the length (pixels) of each layer's anchor displacement between t = 0 and t = 1.
    curvature: acceleration as a fraction of that displacement (0 gives straight, uniform motion).
    max_rotation: background rotation speed bound (radians per unit t); foreground: `max_foreground_rotation`.
    max_log_scale_rate: bound on d log s / dt (zoom in/out), per layer.
    foreground_radius: range of a foreground blob's radius as a fraction of min(H, W).
    time_range: times over which the background is guaranteed to cover the whole reference frame.

  Returns:
    A `Scene`; `render_clip(scene, times)` renders it.
  """
  names = sorted(photos)
  if len(names) < 2:
    raise ValueError("sample_scene needs two photos or more: foregrounds are cut from photos other than the background")
  h, w = size
  centre = np.array([(h - 1) / 2, (w - 1) / 2])
  t_lo, t_hi = time_range
  t_abs = max(abs(t_lo), abs(t_hi))

  background = names[rng.integers(len(names))]
  others = [n for n in names if n != background]
  count = int(rng.integers(num_foreground[0], num_foreground[1] + 1))
  foregrounds = rng.choice(others, size=count, replace=count > len(others))

  velocity, acceleration = _sample_translation(rng, displacement, curvature)
  rate = rng.uniform(-max_log_scale_rate, max_log_scale_rate)
  log_scale = np.log(rng.uniform(0.8, 1.25))
  # Everything the frame shows at any t in time_range lies within `reach` reference pixels of the anchor's image;
  # dividing by the smallest scale bounds it in photo pixels (+1 for the bilinear neighbour).
  reach = np.hypot(h / 2, w / 2) + np.linalg.norm(velocity) * t_abs + 0.5 * np.linalg.norm(acceleration) * t_abs ** 2
  photo_h, photo_w = photos[background].shape[:2]
  half = (min(photo_h, photo_w) - 1) / 2 - 1.0
  min_log_scale = np.log(reach / half) - min(rate * t_lo, rate * t_hi)
  log_scale = max(log_scale, min_log_scale + 1e-6)  # Zoom in rather than show the photo's border.
  radius = reach / np.exp(log_scale + min(rate * t_lo, rate * t_hi)) + 1.0
  anchor = (rng.uniform(radius, photo_h - 1 - radius), rng.uniform(radius, photo_w - 1 - radius))
  layers = [Layer(background, anchor, Motion(
      position=tuple(centre), velocity=tuple(velocity), acceleration=tuple(acceleration),
      angle=rng.uniform(-1, 1) * np.deg2rad(10.0), angular_velocity=rng.uniform(-max_rotation, max_rotation),
      log_scale=float(log_scale), log_scale_rate=float(rate)))]

  for name in foregrounds:
    photo_h, photo_w = photos[name].shape[:2]
    velocity, acceleration = _sample_translation(rng, displacement, curvature)
    scale = rng.uniform(0.7, 1.4)
    radius_out = rng.uniform(*foreground_radius) * min(h, w)
    amplitudes = tuple(rng.uniform(0.0, 0.15, size=3))
    phases = tuple(rng.uniform(-np.pi, np.pi, size=3))
    feather_out = rng.uniform(1.0, 3.0)
    extent_out = radius_out * (1 + sum(amplitudes)) + 0.5 * feather_out
    half = (min(photo_h, photo_w) - 1) / 2 - 1.0
    scale = max(scale, extent_out / half + 1e-6)  # The blob must be cut from inside the photo.
    mask = BlobMask(radius=radius_out / scale, amplitudes=amplitudes, phases=phases, feather=feather_out / scale)
    extent = mask.extent + 1.0
    anchor = (rng.uniform(extent, photo_h - 1 - extent), rng.uniform(extent, photo_w - 1 - extent))
    position = (rng.uniform(0.15, 0.85) * (h - 1), rng.uniform(0.15, 0.85) * (w - 1))
    spin = rng.uniform(-max_foreground_rotation, max_foreground_rotation)
    layers.append(Layer(str(name), anchor, Motion(
        position=position, velocity=tuple(velocity), acceleration=tuple(acceleration), angle=rng.uniform(-np.pi, np.pi),
        angular_velocity=spin, log_scale=float(np.log(scale)),
        log_scale_rate=rng.uniform(-max_log_scale_rate, max_log_scale_rate)), mask))
  used = {layer.photo for layer in layers}
  return Scene(layers=tuple(layers), photos={n: photos[n] for n in sorted(used)}, size=(h, w))


def _bilinear(photo: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
  """photo (h, w, C) sampled at (y, x) (N,), coordinates clamped to the photo; returns (N, C) float32."""
  h, w = photo.shape[:2]
  y = np.clip(y, 0, h - 1)
  x = np.clip(x, 0, w - 1)
  y0 = np.minimum(y.astype(np.int64), h - 2)  # Truncation is floor here: coordinates are clipped to >= 0.
  x0 = np.minimum(x.astype(np.int64), w - 2)
  wy = (y - y0).astype(np.float32)[:, None]
  wx = (x - x0).astype(np.float32)[:, None]
  flat = photo.reshape(h * w, -1)
  i = y0 * w + x0
  # np.take is several times faster than fancy indexing for row gathers.
  a, b, c, d = (np.take(flat, j, axis=0) for j in (i, i + 1, i + w, i + w + 1))
  top = a + (b - a) * wx
  bottom = c + (d - c) * wx
  return top + (bottom - top) * wy


def _default_view(scene: Scene, size: tuple[int, int]) -> np.ndarray:
  """Output pixel -> reference pixel for the full field of view at `size` (pixel-centre aligned resampling)."""
  sy, sx = scene.size[0] / size[0], scene.size[1] / size[1]
  return np.array([[sy, 0.0, 0.5 * sy - 0.5], [0.0, sx, 0.5 * sx - 0.5]])


def render_layers(scene: Scene, t: float, size: tuple[int, int] | None = None,
                  view: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
  """Each layer at time t as (colour float32 (H, W, 3) in [0, 255], opacity float32 (H, W)), back to front.

  Args:
    scene: from `sample_scene` (or built by hand).
    t: time; any float.
    size: output (H, W); defaults to `scene.size`.
    view: 2x3 affine mapping output pixel (y, x, 1) to reference pixel (y, x); defaults to the whole reference
      frame resampled to `size` (the identity when `size == scene.size`).
  """
  size = tuple(scene.size if size is None else size)
  view = _default_view(scene, size) if view is None else np.asarray(view, np.float64)
  grid = np.stack(np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij"), -1).reshape(-1, 2)
  points = grid @ view[:, :2].T + view[:, 2]
  layers = []
  for layer in scene.layers:
    translation, angle, scale = layer.motion.pose(t)
    # Row vectors: (p - T) @ R(-theta)^T == (p - T) @ R(theta).
    offset = (points - translation) @ _rotation(angle) / scale
    source = offset + np.asarray(layer.anchor)
    colour = _bilinear(scene.photos[layer.photo], source[:, 0], source[:, 1]).reshape(*size, 3)
    if layer.mask is None:
      alpha = np.ones(size, np.float32)
    else:
      alpha = layer.mask.alpha(offset).astype(np.float32).reshape(size)
    layers.append((colour, alpha))
  return layers


def composite(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
  """Back-to-front "over" operator: out = alpha * colour + (1 - alpha) * out, starting from layers[0]."""
  out = np.zeros_like(layers[0][0])
  for colour, alpha in layers:
    out = alpha[..., None] * colour + (1 - alpha[..., None]) * out
  return out


def _quantize(image: np.ndarray) -> np.ndarray:
  return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_clip(scene: Scene, times: Sequence[float], size: tuple[int, int] | None = None,
                view: np.ndarray | None = None) -> np.ndarray:
  """The frames of `scene` at `times`: uint8 (T, H, W, 3). `size` and `view` as in `render_layers`."""
  frames = [_quantize(composite(render_layers(scene, float(t), size, view))) for t in times]
  return np.stack(frames)


def render_subframes(scene: Scene, t0: float, t1: float, n: int, size: tuple[int, int] | None = None,
                     view: np.ndarray | None = None) -> np.ndarray:
  """n uint8 frames at evenly spaced times t0 .. t1 inclusive, e.g. the 11 sharp 240 fps frames that DSFN averages
  into one blurry 30 fps frame (Sec. 4.1, DSFN); the averaging belongs to the caller."""
  return render_clip(scene, np.linspace(t0, t1, n), size, view)
