"""`python -m jaxvfi.weights fetch NAME` and `interpolate --model=superslomo --video` against a local HTTP server on
127.0.0.1 playing the authors' sites (nothing leaves the machine): the first fetch downloads, checks, converts and
caches; the second is offline; a tampered file, an interrupted download, a full disk, an unreachable server, a page
served instead of the file and an entry without a stored sha256 leave nothing cached and say so in one line; a file
whose name carries a sha256 prefix (torch.hub's convention) is checked against it. The served files are random
weights in the authors' formats (`torch_files.save_zip`)."""
from __future__ import annotations

import dataclasses
import errno
import os
import socket

import jax
import numpy as np
import pytest
import requests

from helpers import serve, sha256

import media
import torch_files
from jaxvfi import interpolate
from jaxvfi import model_file
from jaxvfi import released
from jaxvfi import weights


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  """A folder with `network-lf.pytorch` (random SepConv weights, torch's zip format) and LPIPS-AlexNet's two files."""
  folder = tmp_path_factory.mktemp("site")
  torch_files.save_zip(folder / "network-lf.pytorch", weights.random_state_dict("sepconv", 0))
  state = weights.random_state_dict("lpips_alex", 1)
  torch_files.save_zip(folder / "alexnet-owt-7be5be79.pth", {k: v for k, v in state.items() if k.startswith("features")})
  torch_files.save_zip(folder / "alex.pth", {k: v for k, v in state.items() if k.startswith("lin")})
  return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
  path = tmp_path / "cache"
  monkeypatch.setenv(released.CACHE_ENV, str(path))
  monkeypatch.delenv(released.MIRROR_ENV, raising=False)
  monkeypatch.delenv(released.SHA256_ENV, raising=False)
  return path


def _cache_files(cache):
  return sorted(os.listdir(cache)) if os.path.isdir(cache) else []


def test_table_lists_the_released_models_with_checkable_fields():
  for name in ("sepconv-lf", "sepconv-l1", "superslomo", "pwcnet", "vgg19", "vgg19-caffe", "lpips-alex", "lpips-vgg"):
    entry = released.get(name)
    assert entry.arch in weights.ARCHS and entry.licence and entry.sources
    assert entry.family is None or entry.family in weights.RELEASED_MODEL_CONFIG
    for source in entry.sources:
      assert source.sha256 is None or (len(source.sha256) == 64 and source.sha256_from)
      assert source.url is None or source.url.startswith(("http://", "https://"))
      if source.name_has_sha256_prefix:  # torch.hub's convention: the name's hex begins the file's sha256
        assert source.sha256_prefix and len(source.sha256_prefix) == 8 and source.sha256_from
        assert source.sha256 is None or source.sha256.startswith(source.sha256_prefix)
  # Checked without a user's --sha256: a stored sha256, or the torchvision / pytorch-vgg name's prefix.
  assert [n for n, m in released.MODELS.items() if m.verified] == [
      "superslomo", "vgg19", "vgg19-caffe", "lpips-alex", "lpips-vgg"]
  assert released.get("vgg19").sources[0].sha256_prefix == "dcbb9e9d"
  assert released.get("vgg19-caffe").sources[0].sha256_prefix == "d01eb7cb"
  assert released.get("sepconv-lf").sources[0].sha256_prefix is None  # "network-lf" is not hex


def test_list_has_a_header_and_one_line_per_model(cache, capsys):
  assert weights.main(["list"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].split() == ["NAME", "ARCH", "CACHED", "CHECK", "LICENCE"]
  assert [line.split()[0] for line in lines[1:]] == list(released.NAMES)
  rows = {line.split()[0]: line for line in lines[1:]}
  assert "--sha256 needed" in rows["sepconv-lf"] and "sha256 prefix" in rows["vgg19"]
  assert rows["lpips-alex"].split()[2:4] == ["no", "sha256"]


def test_fetch_converts_caches_and_is_offline_the_second_time(site, cache, capsys):
  digest = sha256(site / "network-lf.pytorch")
  with serve(site) as (url, handler):
    assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--mirror={url}"]) == 0
    assert handler.requests == ["/network-lf.pytorch"]
  path = released.cached_path("sepconv-lf")
  assert capsys.readouterr().out.startswith(f"sepconv-lf: {path} (sepconv, family sepconv")
  assert _cache_files(cache) == ["sepconv-lf.safetensors"]
  mf = model_file.read(path)
  assert mf.metadata["source_sha256"] == digest and mf.metadata["name"] == "sepconv-lf"
  assert mf.family == "sepconv" and mf.config().model.bgr  # the released conventions are in the file
  _, params, config, _ = weights.load_model_file(path)
  jax.tree.map(np.testing.assert_array_equal, params,
               weights.convert_state_dict("sepconv", weights.random_state_dict("sepconv", 0)))
  assert config.model.name == "sepconv"
  # Server stopped: the cache answers, with no sha256 needed.
  assert weights.fetch("sepconv-lf", mirror=url) == path


def test_tampered_file_is_refused_and_nothing_cached(site, cache, tmp_path, capsys):
  digest = sha256(site / "network-lf.pytorch")
  tampered = tmp_path / "tampered"
  tampered.mkdir()
  data = bytearray((site / "network-lf.pytorch").read_bytes())
  data[-1] ^= 1
  (tampered / "network-lf.pytorch").write_bytes(bytes(data))
  with serve(tampered) as (url, _):
    assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "does not have the expected sha256" in err and "nothing cached" in err
  assert _cache_files(cache) == []


def test_stored_sha256_refuses_other_files(site, cache, capsys):
  """lpips-alex's two files have a stored sha256 (torchvision's trunk, the lpips wheel's heads): the random fixtures
  are refused, and a user's --sha256 cannot overrule a stored value."""
  with serve(site) as (url, _):
    assert weights.main(["fetch", "lpips-alex", f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "alexnet-owt-7be5be79.pth" in err and "expected sha256 7be5be79" in err
  trunk = sha256(site / "alexnet-owt-7be5be79.pth")
  assert weights.main(["fetch", "lpips-alex", f"--sha256=alexnet-owt-7be5be79.pth={trunk}"]) == 1
  assert "but the published value is 7be5be79" in capsys.readouterr().err
  assert _cache_files(cache) == []


@pytest.fixture
def prefixed(site, tmp_path, monkeypatch):
  """A released entry like torchvision's: its file, named `network-<first 8 hex of its sha256>.pytorch`, has no
  stored sha256; returns (entry, the served folder, the file's sha256)."""
  digest = sha256(site / "network-lf.pytorch")
  name = f"network-{digest[:8]}.pytorch"
  folder = tmp_path / "prefixed"
  folder.mkdir()
  (folder / name).write_bytes((site / "network-lf.pytorch").read_bytes())
  entry = released.Released("sepconv-prefixed", "test", "sepconv", "sepconv",
                            (released.Source(name, f"http://127.0.0.1:9/{name}", None, "test page", "its name",
                                             name_has_sha256_prefix=True),), "test licence", "test")
  monkeypatch.setitem(released.MODELS, entry.name, entry)
  return entry, folder, digest


def test_name_prefix_checks_a_torchvision_style_file(prefixed, cache):
  entry, folder, digest = prefixed
  assert entry.verified and entry.sources[0].sha256_prefix == digest[:8]
  with serve(folder) as (url, _):
    path = weights.fetch(entry.name, mirror=url)  # no --sha256: the name's prefix is checked
  assert model_file.read(path).metadata["source_sha256"] == digest  # the full sha256 of what was checked
  assert _cache_files(cache) == ["sepconv-prefixed.safetensors"]


def test_name_prefix_refuses_a_tampered_file(prefixed, cache, tmp_path):
  entry, folder, _ = prefixed
  name = entry.sources[0].filename
  data = bytearray((folder / name).read_bytes())
  data[-1] ^= 1
  (folder / name).write_bytes(bytes(data))
  with serve(folder) as (url, _):
    with pytest.raises(released.FetchError, match=f"expected a sha256 starting with {name[8:16]}.*nothing cached"):
      weights.fetch(entry.name, mirror=url)
  with pytest.raises(released.FetchError, match="starting with"):
    weights.fetch(entry.name, local={name: str(folder / name)})
  assert _cache_files(cache) == []


def test_name_prefix_and_a_users_sha256(prefixed, cache):
  entry, folder, digest = prefixed
  name = entry.sources[0].filename
  wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
  with pytest.raises(released.FetchError, match="its name says its sha256 starts with"):
    weights.fetch(entry.name, sha256=[wrong], mirror="http://127.0.0.1:9")
  # A full sha256 the user verified replaces the prefix check.
  path = weights.fetch(entry.name, sha256=[digest], local={name: str(folder / name)})
  assert model_file.read(path).metadata["source_sha256"] == digest


def test_interrupted_download_leaves_nothing(site, cache, capsys):
  digest = sha256(site / "network-lf.pytorch")
  with serve(site, truncate={"network-lf.pytorch"}) as (url, _):
    assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "nothing cached" in err
  assert _cache_files(cache) == []


def test_full_disk_while_writing_leaves_nothing(site, cache, monkeypatch, capsys):
  digest = sha256(site / "network-lf.pytorch")

  def full(*args, **kwargs):
    del args, kwargs
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(model_file.safetensors_numpy, "save_file", full)
  with serve(site) as (url, _):
    assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "No space left on device" in err and "nothing cached" in err
  assert _cache_files(cache) == []


def test_unverified_entry_needs_a_sha256(cache, capsys, monkeypatch):
  assert weights.main(["fetch", "sepconv-lf"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "--sha256=<its sha256> once" in err  # one file: no FILE= needed
  monkeypatch.setenv(released.SHA256_ENV, "not-hex")
  assert weights.main(["fetch", "sepconv-lf"]) == 1
  assert "64 hex digits" in capsys.readouterr().err
  monkeypatch.delenv(released.SHA256_ENV)
  assert weights.main(["fetch", "superslomo", f"--sha256={'0' * 64}"]) == 1
  assert "--sha256 is not needed" in capsys.readouterr().err  # its sha256 is stored
  assert _cache_files(cache) == []


def test_a_file_behind_a_page_says_to_use_src(monkeypatch):
  source = released.Source("x.pth", None, "0" * 64, "https://example.org/page")
  entry = released.Released("behind-a-page", "test", "sepconv", "sepconv", (source,), "test licence", "test")
  monkeypatch.delenv(released.MIRROR_ENV, raising=False)
  with pytest.raises(released.FetchError, match=r"no direct download URL .*https://example.org/page.*--src=x.pth"):
    released.source_url(source, entry)
  assert released.source_url(source, entry, mirror="http://127.0.0.1:9/m/") == "http://127.0.0.1:9/m/x.pth"


def test_superslomo_comes_from_its_drive_id_and_a_drive_page_is_refused_with_a_hint(cache, tmp_path, capsys):
  """Super-SloMo's only published copy is the Google Drive file its README links; Drive answers a quota-exhausted or
  moved file with an HTML page, which the stored sha256 refuses, and the one line says what to do."""
  (source,) = released.MODELS["superslomo"].sources
  assert "id=1IvobLDbRiBgZr3ryCRrWL8xDbMZ-KnpF" in source.url and source.url.startswith("https://drive.")
  page = tmp_path / "drive"
  page.mkdir()
  (page / "SuperSloMo.ckpt").write_text("<!DOCTYPE html><html><title>Google Drive - quota exceeded</title></html>")
  with serve(page) as (url, handler):
    assert weights.main(["fetch", "superslomo", f"--mirror={url}"]) == 1
    assert handler.requests == ["/SuperSloMo.ckpt"]
  err = capsys.readouterr().err
  assert err.count("\n") == 1, err
  assert "does not have the expected sha256 1931f099" in err and "nothing cached" in err
  assert "Google Drive serves a web page" in err and "--src=PATH/SuperSloMo.ckpt" in err
  assert _cache_files(cache) == []


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_unreachable_server_is_one_line_with_the_url_the_cause_and_src(site, cache, capsys):
  digest = sha256(site / "network-lf.pytorch")
  url = f"http://127.0.0.1:{_closed_port()}"
  assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1, err
  assert f"cannot download {url}/network-lf.pytorch: 127.0.0.1 refused the connection; nothing cached" in err
  assert "fetch sepconv-lf --src=PATH/network-lf.pytorch --sha256=<its sha256>" in err
  assert "HTTPConnectionPool" not in err and "Max retries" not in err  # requests' own text is left out
  with serve(site) as (url, _):  # the server is up but has no network-l1.pytorch
    assert weights.main(["fetch", "sepconv-l1", f"--sha256={digest}", f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "HTTP 404" in err and f"{url}/network-l1.pytorch" in err
  assert _cache_files(cache) == []


def test_offline_cause_names_the_host():
  """What requests raises with no network (name resolution fails): the cause says so, not a traceback's text."""
  error = requests.ConnectionError("HTTPConnectionPool(host='content.sniklaus.com', port=80): Max retries exceeded "
                                   "(Caused by NameResolutionError(\"Failed to resolve 'content.sniklaus.com' "
                                   "([Errno -3] Temporary failure in name resolution)\"))")
  cause = released._network_cause(error, "http://content.sniklaus.com/sepconv/network-lf.pytorch")
  assert cause == "cannot resolve content.sniklaus.com (offline, or no DNS?)"
  assert released._network_cause(requests.exceptions.ChunkedEncodingError("cut"), "http://x/y") is None


def test_local_source_file_is_checked_and_converted(site, cache):
  digest = sha256(site / "network-lf.pytorch")
  path = weights.fetch("sepconv-lf", sha256=[f"network-lf.pytorch={digest}"],
                       local={"network-lf.pytorch": str(site / "network-lf.pytorch")})
  assert path == released.cached_path("sepconv-lf") and _cache_files(cache) == ["sepconv-lf.safetensors"]


def test_src_takes_a_one_file_models_copy_under_any_name(site, cache, tmp_path, capsys):
  """A browser's second download is "network-lf (1).pytorch": for a one-file model `--src` takes it as that file."""
  digest = sha256(site / "network-lf.pytorch")
  renamed = tmp_path / "network-lf (1).pytorch"
  renamed.write_bytes((site / "network-lf.pytorch").read_bytes())
  assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--src={renamed}"]) == 0
  assert _cache_files(cache) == ["sepconv-lf.safetensors"]
  assert capsys.readouterr().out.startswith(f"sepconv-lf: {released.cached_path('sepconv-lf')}")


def test_src_mistakes_are_one_line_before_any_download(site, cache, tmp_path, capsys):
  digest = sha256(site / "network-lf.pytorch")
  missing = tmp_path / "SuperSloMo.ckpt"
  assert weights.main(["fetch", "superslomo", f"--src={missing}"]) == 1
  err = capsys.readouterr().err
  assert err == f"jaxvfi: error: --src {missing}: no such file\n", err
  lin = tmp_path / "lin.pth"
  lin.write_bytes(b"x")
  assert weights.main(["fetch", "lpips-alex", f"--src={lin}"]) == 1  # two files: matched by their published names
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "lpips-alex is made from alexnet-owt-7be5be79.pth, alex.pth" in err, err
  copy = site / "network-lf.pytorch"
  assert weights.main(["fetch", "sepconv-lf", f"--sha256={digest}", f"--src={copy}", f"--src={copy}"]) == 1
  assert "sepconv-lf is made from one file (network-lf.pytorch); got 2 --src paths" in capsys.readouterr().err
  assert _cache_files(cache) == []


def test_interpolate_model_superslomo_video_fetches_once_then_runs_offline(cache, tmp_path, monkeypatch):
  """Issue 27's path: `interpolate --model=superslomo --video in.mp4 --output out.mp4` fetches from the "authors'
  site" (127.0.0.1), checks the sha256, converts, caches and interpolates; the second run, with the server gone,
  reads the cache. The served file holds random weights in the released checkpoint's layout, so its sha256 stands in
  for the stored one (the entry is swapped for this test only)."""
  site = tmp_path / "site"
  site.mkdir()
  torch_files.save_zip(site / "SuperSloMo.ckpt", weights.random_state_dict("superslomo", 3))
  entry = released.MODELS["superslomo"]
  (source,) = entry.sources
  swapped = dataclasses.replace(entry, sources=(dataclasses.replace(source, sha256=sha256(site / "SuperSloMo.ckpt")),))
  monkeypatch.setitem(released.MODELS, "superslomo", swapped)
  video = tmp_path / "in.mp4"
  media.encode(video, media.frames_rgb(4, h=32, w=48))

  def interpolate_to(name):
    args = interpolate._parse_flags(  # pylint: disable=protected-access
        ["interpolate", "--model=superslomo", "--video", str(video), "--output", str(tmp_path / name),
         "--no_progress"])
    return interpolate.run(args)

  with serve(site) as (url, handler):
    monkeypatch.setenv(released.MIRROR_ENV, url)
    assert interpolate_to("fetched.mp4") == [str(tmp_path / "fetched.mp4")]
    assert handler.requests == ["/SuperSloMo.ckpt"]
  monkeypatch.delenv(released.MIRROR_ENV)
  interpolate_to("cached.mp4")  # no server, no mirror: the cache answers
  assert _cache_files(cache) == ["superslomo.safetensors"]
  fetched, cached = media.facts(tmp_path / "fetched.mp4"), media.facts(tmp_path / "cached.mp4")
  assert len(fetched["frames"]) == 8  # twice the frame rate over the same duration, as in test_interpolate
  assert all(np.array_equal(a, b) for a, b in zip(fetched["frames"], cached["frames"], strict=True))
