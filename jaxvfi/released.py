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

Checksums: only values taken from a published source are stored, each with where it was found
(`Source.sha256_from`). A file without one but whose name follows torch.hub's convention `<name>-<hex>.<ext>`, the hex
being the first digits of the file's sha256 (torchvision's `vgg19-dcbb9e9d.pth`; jcjohnson/pytorch-vgg's
`vgg19-d01eb7cb.pth`, named by its converter from `sha256sum`), is checked against that prefix as
`torch.hub.load_state_dict_from_url(check_hash=True)` checks it (`Source.name_has_sha256_prefix`, `HASH_REGEX`): 8 hex
digits, 32 bits, catch any corrupted or replaced file but not one crafted to match. Where neither exists
(`Source.check` is None), fetch refuses with one line unless the user gives the hash they verified:
`--sha256=HEX` (one unverified file) or `--sha256=FILE=HEX` (repeatable), or the environment variable `JAXVFI_SHA256`
with the same values separated by commas; a user's full sha256 also replaces a prefix check. Which entries fetch
checks without help is `Released.verified`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
from typing import Iterator, Mapping, Sequence

import pooch
import requests

CACHE_ENV = "JAXVFI_CACHE"
MIRROR_ENV = "JAXVFI_WEIGHTS_MIRROR"
SHA256_ENV = "JAXVFI_SHA256"
_HEX = re.compile(r"^[0-9a-f]{64}$")
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
"""torch.hub's `HASH_REGEX` (torch/hub.py): the sha256 prefix in a file name such as `vgg19-dcbb9e9d.pth`."""


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
    name_has_sha256_prefix: the file name carries the first hex digits of the file's sha256 (torch.hub's convention,
      module docstring); fetch checks them when no full sha256 is known.
    mismatch_hint: appended to the one-line error when a download has another sha256 (what else its host may have
      served instead of the file, and what to do then).
  """
  filename: str
  url: str | None
  sha256: str | None
  page: str
  sha256_from: str = ""
  name_has_sha256_prefix: bool = False
  mismatch_hint: str = ""

  @property
  def sha256_prefix(self) -> str | None:
    """The sha256 prefix its name carries (torch.hub's `HASH_REGEX`), or None."""
    if not self.name_has_sha256_prefix:
      return None
    match = HASH_REGEX.search(self.filename)
    return match.group(1) if match and match.group(1) else None

  @property
  def check(self) -> str | None:
    """What fetch checks without help: "sha256" (stored), "sha256 prefix" (from its name) or None."""
    if self.sha256 is not None:
      return "sha256"
    return "sha256 prefix" if self.sha256_prefix else None


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
    """Every source is checked without a user's --sha256 (a stored sha256, or the prefix its name carries)."""
    return all(s.check is not None for s in self.sources)


_SNIKLAUS = "http://content.sniklaus.com"
_TORCHVISION = "https://download.pytorch.org/models"
_LPIPS = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"
_LPIPS_WHEEL = "sha256 of the file in the lpips 0.1.4 wheel on PyPI (the package built from PerceptualSimilarity)"
_TORCHVISION_PREFIX = ("torchvision publishes the first 8 hex digits of the sha256 in the file name (torch.hub "
                       "convention), which fetch checks")

# Full sha256 values below were found stated for these exact files in public sources, named next to each; none is
# computed or guessed here. Each also begins with the 8 hex digits that torchvision's file name carries.
# alexnet-owt-7be5be79.pth: the Git LFS / Xet "SHA256" of copies of the same file on the Hugging Face Hub,
#   https://huggingface.co/blanchon/image-gs-models-utils/blob/main/torch/checkpoints/alexnet-owt-7be5be79.pth and
#   https://huggingface.co/CSWRY/VOSR/blob/main/torch_cache/checkpoints/alexnet-owt-7be5be79.pth (both torch.hub cache
#   copies, 244 MB); the same value with 244,408,911 bytes is pinned in several public repositories' download scripts.
_ALEXNET_SHA256 = "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"
_ALEXNET_FROM = ("Git LFS sha256 of huggingface.co/blanchon/image-gs-models-utils torch/checkpoints/"
                 "alexnet-owt-7be5be79.pth and huggingface.co/CSWRY/VOSR torch_cache/checkpoints/alexnet-owt-7be5be79.pth")
# vgg16-397923af.pth: the Git LFS "SHA256" of
#   https://huggingface.co/Keiser41/mangaaa/blob/8ff9b84704d31282dd9b896e4abf7dec089dbe15/model/vgg16-397923af.pth
#   (553 MB); the same value with 553,433,881 bytes is pinned in several public repositories' checksum lists.
_VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
_VGG16_FROM = ("Git LFS sha256 of huggingface.co/Keiser41/mangaaa model/vgg16-397923af.pth "
               "(commit 8ff9b84704d31282dd9b896e4abf7dec089dbe15)")
# SuperSloMo.ckpt (avinashpaliwal/Super-SloMo's Google Drive file, id 1IvobLDbRiBgZr3ryCRrWL8xDbMZ-KnpF): the
#   sha256sums entry of the Arch User Repository package super-slomo-git (https://aur.archlinux.org/super-slomo-git.git,
#   PKGBUILD, a rehost of that file); the same value with 158,457,959 bytes is recorded in a public repository that
#   downloaded the file from the README's Drive id.
_SUPERSLOMO_SHA256 = "1931f099a99e5e65a563f9b3aae0e04b6d87d09a0c85be1f761185c6bc67506e"
_SUPERSLOMO_FROM = "sha256sums of the AUR package super-slomo-git (PKGBUILD), which rehosts the Google Drive file"
# The README's Drive link (https://drive.google.com/open?id=<id>) opens a preview page; Drive's download endpoint with
# `confirm=t` serves the file itself, skipping the "too large to scan for viruses" page a 158 MB file gets.
_SUPERSLOMO_DRIVE_ID = "1IvobLDbRiBgZr3ryCRrWL8xDbMZ-KnpF"
_SUPERSLOMO_URL = (f"https://drive.usercontent.google.com/download?id={_SUPERSLOMO_DRIVE_ID}"
                   "&export=download&confirm=t")
_DRIVE_HINT = ("Google Drive serves a web page instead of the file when the file's download quota is used up or the "
               "link changed: open the model's page in a browser, download it there and pass "
               "--src=PATH/SuperSloMo.ckpt")

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
             (Source("SuperSloMo.ckpt", _SUPERSLOMO_URL, _SUPERSLOMO_SHA256,
                     "https://github.com/avinashpaliwal/Super-SloMo#pretrained-model (Google Drive link)",
                     _SUPERSLOMO_FROM, mismatch_hint=_DRIVE_HINT),),
             "MIT (avinashpaliwal/Super-SloMo)",
             "parity test on random weights, both torch formats (tests/test_parity.py); released file not run here"),
    Released("pwcnet", "Sun et al. 2018, PWC-Net (sniklaus/pytorch-pwc), ReFIn's flow module", "pwcnet", None,
             (Source("network-default.pytorch", f"{_SNIKLAUS}/github/pytorch-pwc/network-default.pytorch", None,
                     "https://github.com/sniklaus/pytorch-pwc"),),
             "NVlabs PWC-Net terms: CC BY-NC-SA 4.0 (pytorch-pwc's README defers to them)",
             "parity test on random weights (tests/test_parity.py)"),
    Released("vgg19", "Simonyan & Zisserman 2015, VGG-19 (torchvision's ImageNet weights)", "vgg19", None,
             (Source("vgg19-dcbb9e9d.pth", f"{_TORCHVISION}/vgg19-dcbb9e9d.pth", None,
                     "https://pytorch.org/vision/stable/models.html", _TORCHVISION_PREFIX,
                     name_has_sha256_prefix=True),),
             "BSD-3-Clause (torchvision)", "parity test on random weights (tests/test_parity.py)"),
    Released("vgg19-caffe", "Simonyan & Zisserman 2015, VGG-19 (the original Caffe weights, jcjohnson/pytorch-vgg), "
             "SepConv-GAN's perceptual loss", "vgg19", None,
             # jcjohnson/pytorch-vgg's t7_to_state_dict.py names its output '%s-%s.pth' % (model, sha256sum[:8]).
             (Source("vgg19-d01eb7cb.pth", "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth", None,
                     "https://github.com/jcjohnson/pytorch-vgg",
                     "jcjohnson/pytorch-vgg t7_to_state_dict.py puts the first 8 hex digits of the file's sha256 in "
                     "its name, which fetch checks", name_has_sha256_prefix=True),),
             "CC BY 4.0 (the VGG authors' Caffe models)", "same layout as vgg19; the released file not run here"),
    Released("lpips-alex", "Zhang et al. 2018, LPIPS (AlexNet trunk + v0.1 linear heads)", "lpips_alex", None,
             (Source("alexnet-owt-7be5be79.pth", f"{_TORCHVISION}/alexnet-owt-7be5be79.pth", _ALEXNET_SHA256,
                     "https://pytorch.org/vision/stable/models.html", _ALEXNET_FROM, name_has_sha256_prefix=True),
              Source("alex.pth", f"{_LPIPS}/alex.pth",
                     "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
                     "https://github.com/richzhang/PerceptualSimilarity", _LPIPS_WHEEL)),
             "BSD-2-Clause (PerceptualSimilarity) + BSD-3-Clause (torchvision)",
             "parity test on random weights (tests/test_parity.py)"),
    Released("lpips-vgg", "Zhang et al. 2018, LPIPS (VGG-16 trunk + v0.1 linear heads)", "lpips_vgg", None,
             (Source("vgg16-397923af.pth", f"{_TORCHVISION}/vgg16-397923af.pth", _VGG16_SHA256,
                     "https://pytorch.org/vision/stable/models.html", _VGG16_FROM, name_has_sha256_prefix=True),
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
    FetchError: a value that is not 64 hex digits, names no source of `entry`, or a bare HEX where not exactly one
      source lacks a stored sha256.
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
      if not unverified:
        raise FetchError(f"every file of {entry.name} has a stored sha256, which fetch checks: --sha256 is not needed")
      if len(unverified) != 1:
        raise FetchError(f"{entry.name} has {len(unverified)} files without a stored sha256 ({', '.join(unverified)}"
                         "): give --sha256=FILE=HEX for each")
      filename = unverified[0]
    if filename not in {s.filename for s in entry.sources}:
      raise FetchError(f"--sha256 names {filename}, which is not a file of {entry.name} "
                       f"({', '.join(s.filename for s in entry.sources)})")
    out[filename] = hexdigest
  return out


def local_sources(entry: Released, paths: Sequence[str] | None) -> dict[str, str]:
  """filename -> path of the local copies a user gives (`--src`), before anything is downloaded.

  A model made from one file takes that file under any name (a browser's "SuperSloMo (1).ckpt" too); a model made
  from several files matches each path to a source by its file name.

  Raises:
    FetchError: a path that is not a file; several paths for a one-file model; a name no source has.
  """
  paths = list(paths or [])
  for path in paths:
    if not os.path.isfile(path):
      raise FetchError(f"--src {path}: no such file" if not os.path.exists(path) else f"--src {path} is not a file")
  names = [source.filename for source in entry.sources]
  if len(names) == 1:
    if len(paths) > 1:
      raise FetchError(f"{entry.name} is made from one file ({names[0]}); got {len(paths)} --src paths")
    return {names[0]: path for path in paths}
  out = {}
  for path in paths:
    base = os.path.basename(path)
    if base not in names:
      raise FetchError(f"--src {path}: {entry.name} is made from {', '.join(names)}; give each under its own name")
    out[base] = path
  return out


def _sha256_value(source: Source, entry: Released) -> str:
  """How a user's `--sha256` value for `source` is written in hints: the bare hash for a one-file model, else
  FILE=hash (both are accepted, `parse_sha256`)."""
  return "<its sha256>" if len(entry.sources) == 1 else f"{source.filename}=<its sha256>"


def expected_sha256(entry: Released, given: Mapping[str, str]) -> dict[str, str]:
  """filename -> what each source's sha256 must be: the stored value, else the user's, else (a file whose name carries
  a sha256 prefix, module docstring) that prefix, shorter than 64 hex digits, which the sha256 must start with.

  Raises:
    FetchError: a source with none of these, or a user's value that contradicts a stored value or the name's prefix.
  """
  out = {}
  for source in entry.sources:
    user = given.get(source.filename)
    if source.sha256 is not None and user is not None and user != source.sha256:
      raise FetchError(f"--sha256 for {source.filename} is {user}, but the published value is {source.sha256}")
    prefix = source.sha256_prefix
    if source.sha256 is None and user is not None and prefix and not user.startswith(prefix):
      raise FetchError(f"--sha256 for {source.filename} is {user}, but its name says its sha256 starts with {prefix}")
    digest = source.sha256 or user or prefix
    if digest is None:
      flag = _sha256_value(source, entry)
      raise FetchError(f"{entry.name}: no published sha256 of {source.filename} is stored in jaxvfi, so it cannot be "
                       f"checked; download it from {source.url or source.page}, verify it, then run python -m "
                       f"jaxvfi.weights fetch {entry.name} --sha256={flag} once (or set {SHA256_ENV}={flag})")
    out[source.filename] = digest
  return out


def _matches(got: str, want: str) -> bool:
  """A full sha256 equal to `want`, or starting with it when `want` is a name's prefix (`expected_sha256`)."""
  return got == want if len(want) == 64 else got.startswith(want)


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


def _network_cause(e: requests.RequestException, url: str) -> str | None:
  """Why a request to `url` got no file, in a few words, when the network or the server is the cause (no network,
  an unknown host, a refused connection, a timeout, an HTTP error status); None for other errors."""
  host = urllib.parse.urlsplit(url).hostname or url
  if isinstance(e, requests.HTTPError) and e.response is not None:
    return f"the server answered HTTP {e.response.status_code} {e.response.reason or ''}".rstrip()
  if isinstance(e, requests.Timeout):
    return f"{host} did not answer in time"
  if isinstance(e, requests.exceptions.SSLError):
    return f"the TLS connection to {host} failed"
  if not isinstance(e, requests.ConnectionError):
    return None
  reason = getattr(e.args[0], "reason", None) if e.args else None
  text = f"{type(reason).__name__} {reason} {e}"
  if any(k in text for k in ("NameResolutionError", "Failed to resolve", "Name or service not known",
                             "Temporary failure in name resolution", "nodename nor servname", "getaddrinfo failed")):
    return f"cannot resolve {host} (offline, or no DNS?)"
  if "Network is unreachable" in text or "No route to host" in text:
    return f"no route to {host} (offline?)"
  if "Connection refused" in text or "actively refused" in text:
    return f"{host} refused the connection"
  return f"cannot connect to {host}"


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


class _DropPoochLines(logging.Filter):
  """Drops pooch's log lines: "Downloading data from URL to file <a temporary path>" (a path that is gone when the
  fetch ends, and a second line before a failure's one) and "SHA256 hash of downloaded file ... use this value as
  known_hash" (printed for a name-prefix check; meaningless to a user of fetch). `download` says what it fetches."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(("SHA256 hash of downloaded file", "Downloading data from"))


def _how_to_supply(source: Source, entry: Released) -> str:
  """The command that fetches `source` from a copy the user got another way."""
  sha = "" if source.check is not None else f" --sha256={_sha256_value(source, entry)}"
  return f"python -m jaxvfi.weights fetch {entry.name} --src=PATH/{source.filename}{sha}"


def _hint(source: Source, local: str | None) -> str:
  return f". {source.mismatch_hint}" if source.mismatch_hint and local is None else ""


def download(entry: Released, folder: str, sha256: Mapping[str, str], mirror: str | None = None,
             local: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
  """Downloads (or copies from `local`: filename -> path) each source of `entry` into `folder` and checks its
  sha256 against `sha256` (`expected_sha256`: a full value, or a name's prefix it must start with).

  Returns:
    (path, the file's full sha256) of each source, in the table's order.
  Raises:
    FetchError: a download that failed or was cut short, a file whose sha256 differs (the file is deleted), or a
      full disk; one line naming the file (and, for a network failure, the URL, the cause and `--src`).
  """
  out = []
  local = dict(local or {})
  for source in entry.sources:
    want = sha256[source.filename]
    where = local.get(source.filename)
    url = None
    try:
      if where is not None:
        path = os.path.join(folder, source.filename)
        shutil.copyfile(where, path)
        got = pooch.file_hash(path, alg="sha256")
      else:
        url = source_url(source, entry, mirror)
        if sys.stderr.isatty():  # beside pooch's progress bar; logs and pipes get only the result or the error
          print(f"{entry.name}: downloading {source.filename} from {url}", file=sys.stderr, flush=True)
        hint = _DropPoochLines()
        pooch.get_logger().addFilter(hint)
        try:
          path = pooch.retrieve(url, known_hash=f"sha256:{want}" if len(want) == 64 else None,
                                fname=source.filename, path=folder, progressbar=sys.stderr.isatty())
        finally:
          pooch.get_logger().removeFilter(hint)
        got = want if len(want) == 64 else pooch.file_hash(path, alg="sha256")
      if not _matches(got, want):
        os.remove(path)
        what = f"sha256 {want}" if len(want) == 64 else f"a sha256 starting with {want} (as its name says)"
        raise FetchError(f"{entry.name}: {where or source.filename + ' from ' + url} has sha256 {got}, expected "
                         f"{what}: refused, nothing cached{_hint(source, where)}")
    except FetchError:
      raise
    except ValueError as e:  # pooch: the downloaded file's hash differs (it has deleted the file)
      raise FetchError(f"{entry.name}: {source.filename} from {source_url(source, entry, mirror)} does not have the "
                       f"expected sha256 {want} (a changed or tampered file?): refused, nothing cached"
                       f"{_hint(source, where)}") from e
    except requests.RequestException as e:
      cause = _network_cause(e, url or "")
      if cause is not None:
        raise FetchError(f"{entry.name}: cannot download {url}: {cause}; nothing cached. Get {source.filename} "
                         f"another way and give it: {_how_to_supply(source, entry)}") from e
      raise FetchError(f"{entry.name}: downloading {source.filename} failed ({_reason(e)}); nothing cached") from e
    except OSError as e:
      what = f"copying {where}" if where is not None else f"downloading {source.filename}"
      raise FetchError(f"{entry.name}: {what} failed ({_reason(e)}); nothing cached") from e
    out.append((path, got))
  return out
