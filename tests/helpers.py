"""Helpers shared by several test modules: PyTorch state_dict layouts written out by hand, a hand count of the UNet's
parameters, random checkpoints in a workdir, and a notebook runner. Test modules import from here, never from each
other."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import threading

import jax
import jax.extend.core as jex_core
import jax.numpy as jnp
import numpy as np

from jaxvfi import checkpoints
from jaxvfi import steps
from jaxvfi import utils


NAMES = ("One", "Two", "Thr", "Fou", "Fiv", "Six")


def pwc_torch_shapes() -> dict[str, tuple[int, ...]]:
  """Key -> shape from the port's constructor: Conv2d weight (out, in, 3, 3), ConvTranspose2d (in, out, 4, 4)."""
  shapes = {}

  def conv(key, cin, cout, k=3):
    shapes[key + ".weight"] = (cout, cin, k, k)
    shapes[key + ".bias"] = (cout,)

  chans = [3, 16, 32, 64, 96, 128, 196]
  for lvl in range(6):
    conv(f"netExtractor.net{NAMES[lvl]}.0", chans[lvl], chans[lvl + 1])
    conv(f"netExtractor.net{NAMES[lvl]}.2", chans[lvl + 1], chans[lvl + 1])
    conv(f"netExtractor.net{NAMES[lvl]}.4", chans[lvl + 1], chans[lvl + 1])
  current = [None, None, 81 + 32 + 2 + 2, 81 + 64 + 2 + 2, 81 + 96 + 2 + 2, 81 + 128 + 2 + 2, 81, None]
  for level in range(2, 7):
    d, c = f"net{NAMES[level - 1]}", current[level]
    if level < 6:
      shapes[f"{d}.netUpflow.weight"], shapes[f"{d}.netUpflow.bias"] = (2, 2, 4, 4), (2,)
      shapes[f"{d}.netUpfeat.weight"] = (current[level + 1] + 128 + 128 + 96 + 64 + 32, 2, 4, 4)
      shapes[f"{d}.netUpfeat.bias"] = (2,)
    conv(f"{d}.netOne.0", c, 128)
    conv(f"{d}.netTwo.0", c + 128, 128)
    conv(f"{d}.netThr.0", c + 256, 96)
    conv(f"{d}.netFou.0", c + 352, 64)
    conv(f"{d}.netFiv.0", c + 416, 32)
    conv(f"{d}.netSix.0", c + 448, 2)
  refiner = [81 + 32 + 2 + 2 + 128 + 128 + 96 + 64 + 32, 128, 128, 128, 96, 64, 32, 2]
  for k in range(7):
    conv(f"netRefiner.netMain.{2 * k}", refiner[k], refiner[k + 1])
  return shapes


def vgg_torch_shapes() -> dict[str, tuple[int, ...]]:
  """torchvision vgg19: features indices of the convs, and the classifier (25088-4096-4096-1000)."""
  cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
  shapes, cin, j = {}, 3, 0
  for v in cfg:
    if v == "M":
      j += 1
      continue
    shapes[f"features.{j}.weight"], shapes[f"features.{j}.bias"] = (v, cin, 3, 3), (v,)
    cin, j = v, j + 2
  for j, (i, o) in zip((0, 3, 6), ((25088, 4096), (4096, 4096), (4096, 1000))):
    shapes[f"classifier.{j}.weight"], shapes[f"classifier.{j}.bias"] = (o, i), (o,)
  return shapes


def random_state(shapes, seed=0, ids=False):
  """Random float32 arrays, or with `ids` array k filled with the constant k (to trace where every key lands)."""
  rng = np.random.default_rng(seed)
  return {k: (np.full(s, i, np.float32) if ids else rng.normal(size=s).astype(np.float32))
          for i, (k, s) in enumerate(sorted(shapes.items()))}


def vgg_state(seed):
  """Random features; the classifier's 123.6 M ignored parameters get tiny stand-ins under their exact key names."""
  shapes = {k: (s if k.startswith("features.") else (1,) * len(s)) for k, s in vgg_torch_shapes().items()}
  return random_state(shapes, seed=seed)


def unet_count_by_hand(cin, cout, width):
  """The layer list of the UNet docstring, counted conv by conv (k * k * in * out + out)."""
  f = lambda n: max(1, round(n * width))
  conv = lambda k, i, o: k * k * i * o + o
  c = [f(n) for n in (32, 64, 128, 256, 512, 512)]
  total = conv(7, cin, c[0]) + conv(7, c[0], c[0])
  for k, i, o in zip((5, 3, 3, 3, 3), c[:-1], c[1:]):  # down blocks
    total += conv(k, i, o) + conv(k, o, o)
  for i, o in zip(c[:0:-1], c[-2::-1]):  # up blocks: conv on the upsampled input, conv on [x, skip]
    total += conv(3, i, o) + conv(3, 2 * o, o)
  return total + conv(3, c[0], cout)


def random_params(model, config, seed: int):
  """LeCun-normal kernels, small biases, in the shapes `init` gives, without compiling `init` (slow on 2 cores)."""
  rng = np.random.default_rng(seed)

  def draw(s):
    fan_in = int(np.prod(s.shape[:-1])) if len(s.shape) > 1 else 0
    std = 1.0 / np.sqrt(fan_in) if fan_in else 0.01
    return rng.normal(0.0, std, s.shape).astype(np.float32)

  return jax.tree.map(draw, checkpoints.params_template(model, config))


def write_workdir(workdir, config, params, step=7):
  os.makedirs(workdir, exist_ok=True)
  state = steps.TrainState(step=jnp.asarray(step, jnp.int32), params=params,
                           opt_state={"count": jnp.zeros((), jnp.int32)})
  mngr = checkpoints.checkpoint_manager(str(workdir))
  checkpoints.save_checkpoint(mngr, state, jax.random.PRNGKey(0))
  mngr.close()
  utils.atomic_write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  return str(workdir)


def run_notebook(path, overrides):
  nb = json.load(open(path))
  namespace = {"__name__": "__main__"}
  for cell in nb["cells"]:
    if cell["cell_type"] != "code":
      continue
    source = "".join(cell["source"])
    assert not source.lstrip().startswith(("!", "%")), "notebook cells must be plain Python"
    exec(compile(source, f"{path}:cell", "exec"), namespace)  # pylint: disable=exec-used
    if "parameters" in cell["metadata"].get("tags", []):
      namespace.update(overrides)
  return namespace


# ---------------------------------------------------------------- a local HTTP server playing the authors' sites


class _Handler(http.server.SimpleHTTPRequestHandler):
  """Serves a folder; files named in `truncate` are announced whole and cut off after half their bytes."""
  truncate: set[str] = set()
  requests: list[str] = []

  def log_message(self, *args):  # quiet
    del args

  def do_GET(self):  # pylint: disable=invalid-name
    type(self).requests.append(self.path)
    name = os.path.basename(self.path)
    if name not in self.truncate:
      return super().do_GET()
    with open(os.path.join(self.directory, name), "rb") as f:
      data = f.read()
    self.send_response(200)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data[:len(data) // 2])
    self.wfile.flush()
    self.close_connection = True
    return None


@contextlib.contextmanager
def serve(folder, truncate=()):
  """An HTTP server on 127.0.0.1 (a free port) serving `folder`; yields its base URL."""
  handler = type("Handler", (_Handler,), {"truncate": set(truncate), "requests": []})
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
  finally:
    server.shutdown()
    server.server_close()
    thread.join()


def sha256(path) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def pallas_call_names(jaxpr) -> list[str]:
  """Names of every `pallas_call` in a closed jaxpr, nested jaxprs (jit, custom_vjp) included."""
  names = []

  def walk(jx):
    for eqn in jx.eqns:
      if eqn.primitive.name == "pallas_call":
        info = eqn.params.get("name", eqn.params.get("name_and_src_info"))  # "name" in jax 0.10
        names.append(str(getattr(info, "name", info)))
      for v in eqn.params.values():
        for item in (v if isinstance(v, (tuple, list)) else (v,)):
          if isinstance(item, jex_core.ClosedJaxpr):
            walk(item.jaxpr)
          elif isinstance(item, jex_core.Jaxpr):
            walk(item)

  walk(jaxpr.jaxpr)
  return names
