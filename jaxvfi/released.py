"""The authors' released weights: where each file is published, its sha256, and the cache of converted files.

`MODELS` is the table (`Released`: name, paper, the architecture and family it fills, its source files with the
authors' own URLs and sha256, licence, what was checked). `python -m jaxvfi.weights fetch NAME` (or
`--model=NAME` in `jaxvfi.interpolate`) downloads the sources with pooch, checks each sha256, converts them
(`jaxvfi.weights`) and caches the converted one-file model (`jaxvfi.model_file`) as `<cache>/<name>.safetensors`;
a later use reads the cache and needs no network. This module is the table, the cache and the download; the
conversion is `jaxvfi.weights.fetch`.

Cache: `JAXVFI_CACHE` if set, else the platform's cache folder (`pooch.os_cache("jaxvfi")`: ~/.cache/jaxvfi on
Linux, ~/Library/Caches/jaxvfi on macOS, %LOCALAPPDATA%\\jaxvfi\\Cache on Windows). Downloads go into a temporary
folder inside it that is always removed; the converted file is written to a temporary name and renamed into place
only after every check passed. So a wrong checksum, an interrupted download or a full disk leaves nothing in the
cache (`FetchError`, one line).

Sources: `JAXVFI_WEIGHTS_MIRROR=URL` (or `mirror=`) fetches every file from `URL/<file name>` instead of its
authors' URL (a mirror, or the tests' local server); the sha256 checked is the same.

Checksums: only values taken from a published source are stored. Where none was found (`sha256=None`), fetch
refuses with one line unless the user gives the hash they verified: `--sha256=HEX` (one unverified file) or
`--sha256=FILE=HEX` (repeatable), or the environment variable `JAXVFI_SHA256` with the same values separated by
commas. Which entries are verified is `Released.verified`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import sys
import tempfile
from typing import Iterator, Mapping, Sequence

import pooch
import requests

CACHE_ENV = "JAXVFI_CACHE"
MIRROR_ENV = "JAXVFI_WEIGHTS_MIRROR"
SHA256_ENV = "JAXVFI_SHA256"
_HEX = re.compile(r"^[0-9a-f]{64}$")


class FetchError(ValueError):
  """A fetch that did not end with a converted file in the cache; the message is one line and says why."""


@dataclasses.dataclass(frozen=True)
class Source:
  """One file a released model is made from.

  Attributes:
    filename: its name as published (its suffix picks the reader: .pth/.pytorch/.ckpt through
      `jaxvfi.torch_pickle`).
    url: the authors' own URL; None when they publish it only behind a page (e.g. a Google Drive folder).
    sha256: the file's sha256 from a published source, or None (module docstring: the user must give it).
    page: where a person finds the file and its terms.
    sha256_from: where the sha256 was taken from.
  """
  filename: str
  url: str | None
  sha256: str | None
  page: str
  sha256_from: str = ""


@dataclasses.dataclass(frozen=True)
class Released:
  """A released model: `arch` (a `jaxvfi.weights` architecture) filled from `sources`; `family` is the model family
  whose `RELEASED_MODEL_CONFIG` the weights need (None for network parts: PWC-Net, VGG-19, LPIPS)."""
  name: str
  paper: str
  arch: str
  family: str | None
  sources: tuple[Source, ...]
  licence: str
  checked: str

  @property
  def verified(self) -> bool:
    return all(s.sha256 is not None for s in self.sources)


_SNIKLAUS = "http://content.sniklaus.com"
_TORCHVISION = "https://download.pytorch.org/models"
_LPIPS = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"
_LPIPS_WHEEL = "sha256 of the file in the lpips 0.1.4 wheel on PyPI (the package built from PerceptualSimilarity)"
_TORCHVISION_NOTE = "torchvision publishes only the first 8 hex digits (in the file name)"

MODELS: dict[str, Released] = {m.name: m for m in (
    Released("sepconv-lf", "Niklaus et al. 2017, Video Frame Interpolation via Adaptive Separable Convolution",
             "sepconv", "sepconv",
             (Source("network-lf.pytorch", f"{_SNIKLAUS}/sepconv/network-lf.pytorch", None,
                     "https://github.com/sniklaus/sepconv-slomo"),),
             "sniklaus/sepconv-slomo: academic use only (its README)",
             "parity test on random weights (tests/test_parity.py); released file not run here"),
    Released("sepconv-l1", "Niklaus et al. 2017 (the L1-trained network)", "sepconv", "sepconv",
             (Source("network-l1.pytorch", f"{_SNIKLAUS}/sepconv/network-l1.pytorch", None,
                     "https://github.com/sniklaus/sepconv-slomo"),),
             "sniklaus/sepconv-slomo: academic use only (its README)",
             "parity test on random weights (tests/test_parity.py); released file not run here"),
    Released("superslomo", "Jiang et al. 2018, Super SloMo (avinashpaliwal's PyTorch implementation)", "superslomo",
             "superslomo",
             (Source("SuperSloMo.ckpt", None, None,
                     "https://github.com/avinashpaliwal/Super-SloMo#results (Google Drive link)"),),
             "MIT (avinashpaliwal/Super-SloMo)",
             "parity test on random weights, both torch formats (tests/test_parity.py); released file not run here"),
    Released("pwcnet", "Sun et al. 2018, PWC-Net (sniklaus/pytorch-pwc), ReFIn's flow module", "pwcnet", None,
             (Source("network-default.pytorch", f"{_SNIKLAUS}/github/pytorch-pwc/network-default.pytorch", None,
                     "https://github.com/sniklaus/pytorch-pwc"),),
             "NVlabs PWC-Net terms: CC BY-NC-SA 4.0 (pytorch-pwc's README defers to them)",
             "parity test on random weights (tests/test_parity.py)"),
    Released("vgg19", "Simonyan & Zisserman 2015, VGG-19 (torchvision's ImageNet weights)", "vgg19", None,
             (Source("vgg19-dcbb9e9d.pth", f"{_TORCHVISION}/vgg19-dcbb9e9d.pth", None,
                     "https://pytorch.org/vision/stable/models.html", _TORCHVISION_NOTE),),
             "BSD-3-Clause (torchvision)", "parity test on random weights (tests/test_parity.py)"),
    Released("vgg19-caffe", "Simonyan & Zisserman 2015, VGG-19 (the original Caffe weights, jcjohnson/pytorch-vgg), "
             "SepConv-GAN's perceptual loss", "vgg19", None,
             (Source("vgg19-d01eb7cb.pth", "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth", None,
                     "https://github.com/jcjohnson/pytorch-vgg"),),
             "CC BY 4.0 (the VGG authors' Caffe models)", "same layout as vgg19; the released file not run here"),
    Released("lpips-alex", "Zhang et al. 2018, LPIPS (AlexNet trunk + v0.1 linear heads)", "lpips_alex", None,
             (Source("alexnet-owt-7be5be79.pth", f"{_TORCHVISION}/alexnet-owt-7be5be79.pth", None,
                     "https://pytorch.org/vision/stable/models.html", _TORCHVISION_NOTE),
              Source("alex.pth", f"{_LPIPS}/alex.pth",
                     "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
                     "https://github.com/richzhang/PerceptualSimilarity", _LPIPS_WHEEL)),
             "BSD-2-Clause (PerceptualSimilarity) + BSD-3-Clause (torchvision)",
             "parity test on random weights (tests/test_parity.py)"),
    Released("lpips-vgg", "Zhang et al. 2018, LPIPS (VGG-16 trunk + v0.1 linear heads)", "lpips_vgg", None,
             (Source("vgg16-397923af.pth", f"{_TORCHVISION}/vgg16-397923af.pth", None,
                     "https://pytorch.org/vision/stable/models.html", _TORCHVISION_NOTE),
              Source("vgg.pth", f"{_LPIPS}/vgg.pth",
                     "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
                     "https://github.com/richzhang/PerceptualSimilarity", _LPIPS_WHEEL)),
             "BSD-2-Clause (PerceptualSimilarity) + BSD-3-Clause (torchvision)",
             "parity test on random weights (tests/test_parity.py)"),
)}
NAMES = tuple(MODELS)


def get(name: str) -> Released:
  """The table's entry; one FetchError listing the names for an unknown one."""
  if name not in MODELS:
    raise FetchError(f"no released model {name!r}; released models: {', '.join(NAMES)}")
  return MODELS[name]


def for_family(family: str) -> list[str]:
  """The released names whose weights a family builds (e.g. sepconv -> sepconv-lf, sepconv-l1)."""
  return [m.name for m in MODELS.values() if m.family == family]


def cache_dir() -> str:
  """The cache folder: $JAXVFI_CACHE, else the platform's (module docstring)."""
  return os.path.abspath(os.path.expanduser(os.environ.get(CACHE_ENV) or str(pooch.os_cache("jaxvfi"))))


def cached_path(name: str) -> str:
  """Where the converted file of `name` is (or will be) cached."""
  return os.path.join(cache_dir(), f"{name}.safetensors")


def parse_sha256(values: Sequence[str] | None, entry: Released) -> dict[str, str]:
  """filename -> sha256 the user verified, from `--sha256` values and $JAXVFI_SHA256 (module docstring).

  Raises:
    FetchError: a value that is not 64 hex digits, names no source of `entry`, or a bare HEX where several sources
      are unverified.
  """
  items = list(values or [])
  items += [v for v in os.environ.get(SHA256_ENV, "").split(",") if v.strip()]
  out = {}
  for item in items:
    filename, _, hexdigest = item.strip().rpartition("=")
    hexdigest = hexdigest.lower()
    if not _HEX.match(hexdigest):
      raise FetchError(f"--sha256 must be 64 hex digits (or FILE=HEX), got {item!r}")
    if not filename:
      unverified = [s.filename for s in entry.sources if s.sha256 is None]
      if len(unverified) != 1:
        raise FetchError(f"{entry.name} has {len(unverified)} files without a stored sha256 ({', '.join(unverified)}"
                         "): give --sha256=FILE=HEX for each")
      filename = unverified[0]
    if filename not in {s.filename for s in entry.sources}:
      raise FetchError(f"--sha256 names {filename}, which is not a file of {entry.name} "
                       f"({', '.join(s.filename for s in entry.sources)})")
    out[filename] = hexdigest
  return out


def expected_sha256(entry: Released, given: Mapping[str, str]) -> dict[str, str]:
  """filename -> the sha256 each source must have: the stored value, else the user's; FetchError when one has
  neither, or the user's contradicts a stored value."""
  out = {}
  for source in entry.sources:
    user = given.get(source.filename)
    if source.sha256 is not None and user is not None and user != source.sha256:
      raise FetchError(f"--sha256 for {source.filename} is {user}, but the published value is {source.sha256}")
    digest = source.sha256 or user
    if digest is None:
      raise FetchError(f"{entry.name}: no published sha256 of {source.filename} is stored in jaxvfi, so it cannot be "
                       f"checked; download it from {source.url or source.page}, verify it, then run python -m "
                       f"jaxvfi.weights fetch {entry.name} --sha256={source.filename}=<its sha256> once (or set "
                       f"{SHA256_ENV}={source.filename}=<its sha256>)")
    out[source.filename] = digest
  return out


def source_url(source: Source, entry: Released, mirror: str | None = None) -> str:
  """The URL a source is downloaded from: `mirror` (or $JAXVFI_WEIGHTS_MIRROR) + "/" + its file name, else its
  authors' URL; FetchError for a file published only behind a page."""
  mirror = mirror or os.environ.get(MIRROR_ENV)
  if mirror:
    return f"{mirror.rstrip('/')}/{source.filename}"
  if source.url is None:
    raise FetchError(f"{entry.name}: {source.filename} has no direct download URL (it is published at "
                     f"{source.page}); download it and pass --src={source.filename} (path) to fetch, or set "
                     f"{MIRROR_ENV} to a folder URL that serves it")
  return source.url


def _reason(e: BaseException) -> str:
  if isinstance(e, OSError) and e.errno == errno.ENOSPC:
    return "no space left on the disk"
  text = " ".join(str(e).split())
  return f"{type(e).__name__}: {text}" if text else type(e).__name__


@contextlib.contextmanager
def download_folder() -> Iterator[str]:
  """A temporary folder inside the cache for one fetch's downloads, removed afterwards whatever happens."""
  root = cache_dir()
  try:
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".download-", dir=root)
  except OSError as e:
    raise FetchError(f"cannot use the cache folder {root} ({_reason(e)}); set {CACHE_ENV} to another folder") from e
  try:
    yield tmp
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def download(entry: Released, folder: str, sha256: Mapping[str, str], mirror: str | None = None,
             local: Mapping[str, str] | None = None) -> list[str]:
  """Downloads (or copies from `local`: filename -> path) each source of `entry` into `folder` and checks its
  sha256; returns their paths in the table's order.

  Raises:
    FetchError: a download that failed or was cut short, a file whose sha256 differs (the file is deleted), or a
      full disk; one line naming the file.
  """
  paths = []
  local = dict(local or {})
  for source in entry.sources:
    want = sha256[source.filename]
    where = local.get(source.filename)
    try:
      if where is not None:
        path = os.path.join(folder, source.filename)
        shutil.copyfile(where, path)
        got = pooch.file_hash(path, alg="sha256")
        if got != want:
          raise FetchError(f"{entry.name}: {where} has sha256 {got}, expected {want}: refused, nothing cached")
      else:
        url = source_url(source, entry, mirror)
        path = pooch.retrieve(url, known_hash=f"sha256:{want}", fname=source.filename, path=folder,
                              progressbar=sys.stderr.isatty())
    except FetchError:
      raise
    except ValueError as e:  # pooch: the downloaded file's hash differs (it has deleted the file)
      raise FetchError(f"{entry.name}: {source.filename} from {source_url(source, entry, mirror)} does not have the "
                       f"expected sha256 {want} (a changed or tampered file?): refused, nothing cached") from e
    except (requests.RequestException, OSError) as e:
      raise FetchError(f"{entry.name}: downloading {source.filename} failed ({_reason(e)}); nothing cached") from e
    paths.append(path)
  return paths
