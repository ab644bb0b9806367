"""`python -m jaxvfi.weights fetch NAME` against a local HTTP server on 127.0.0.1 playing the authors' sites
(nothing leaves the machine): the first fetch downloads, checks, converts and caches; the second is offline; a
tampered file, an interrupted download, a full disk and an entry without a stored sha256 leave nothing cached and
say so in one line. The served files are random weights in the authors' formats (`torch_files.save_zip`)."""
from __future__ import annotations

import errno
import os

import jax
import numpy as np
import pytest

from helpers import serve, sha256

import torch_files
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
      assert source.sha256 is None or len(source.sha256) == 64
      assert source.url is None or source.url.startswith(("http://", "https://"))


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
  """lpips-alex's heads have a stored sha256 (the lpips wheel's file): the random fixture is refused."""
  trunk = sha256(site / "alexnet-owt-7be5be79.pth")
  with serve(site) as (url, _):
    assert weights.main(["fetch", "lpips-alex", f"--sha256=alexnet-owt-7be5be79.pth={trunk}",
                         f"--mirror={url}"]) == 1
  err = capsys.readouterr().err
  assert "alex.pth" in err and "expected sha256 df73285e" in err
  assert _cache_files(cache) == []


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
  assert err.count("\n") == 1 and "--sha256=network-lf.pytorch=" in err
  monkeypatch.setenv(released.SHA256_ENV, "not-hex")
  assert weights.main(["fetch", "sepconv-lf"]) == 1
  assert "64 hex digits" in capsys.readouterr().err
  monkeypatch.delenv(released.SHA256_ENV)
  assert weights.main(["fetch", "superslomo", f"--sha256={'0' * 64}"]) == 1
  assert "no direct download URL" in capsys.readouterr().err  # a Google Drive page: --src=FILE instead
  assert _cache_files(cache) == []


def test_local_source_file_is_checked_and_converted(site, cache):
  digest = sha256(site / "network-lf.pytorch")
  path = weights.fetch("sepconv-lf", sha256=[f"network-lf.pytorch={digest}"],
                       local={"network-lf.pytorch": str(site / "network-lf.pytorch")})
  assert path == released.cached_path("sepconv-lf") and _cache_files(cache) == ["sepconv-lf.safetensors"]
