"""--workdir / --weights / --model of the tools: a message lists only the released models that tool runs
(`jaxvfi.interpolate`: the frame-interpolation ones, not PWC-Net, VGG-19 or LPIPS, which are network parts;
`jaxvfi.enhance` and `jaxvfi.zoom`: none are released), and it comes before any input is read."""
from __future__ import annotations

import argparse

import pytest

from jaxvfi import enhance
from jaxvfi import released
from jaxvfi import zoom
from jaxvfi.inference import cli

NETWORK_PARTS = ("pwcnet", "vgg19", "vgg19-caffe", "lpips-alex", "lpips-vgg")


def _namespace(**flags):
  return argparse.Namespace(**{"workdir": None, "weights": None, "model": None, **flags})


def test_interpolation_lists_only_interpolation_models():
  assert cli.INTERPOLATION.released() == ["sepconv-lf", "sepconv-l1", "superslomo"]
  with pytest.raises(ValueError) as e:
    cli.check_model_flags(_namespace())
  message = str(e.value)
  assert message.startswith("give --workdir (a training run), --weights=FILE (a model file) or --model=NAME")
  assert "sepconv-lf, sepconv-l1, superslomo" in message
  assert not any(name in message.replace("sepconv-l", "") for name in NETWORK_PARTS)
  with pytest.raises(ValueError, match=r"--model=vgg19 is not an interpolation model \(it is vgg19 weights"):
    cli.check_model_flags(_namespace(model="vgg19"))
  with pytest.raises(ValueError, match="released model's name .sepconv-lf, sepconv-l1, superslomo., got 'sepconv'"):
    cli.check_model_flags(_namespace(model="sepconv"))
  cli.check_model_flags(_namespace(model="superslomo"))  # accepted (fetched later, not here)


@pytest.mark.parametrize("tool, kind", [(enhance.MODELS, "DSFN"), (zoom.MODELS, "SDAN")])
def test_restoration_tools_list_no_released_models(tool, kind):
  assert tool.released() == []
  with pytest.raises(ValueError) as e:
    cli.check_model_flags(_namespace(), tool)
  message = str(e.value)
  assert f"no {kind} weights are released" in message and "jaxvfi.weights export" in message
  assert not any(name in message for name in released.NAMES)
  with pytest.raises(ValueError, match=f"--model=sepconv-lf is not {tool.what} model .it is sepconv weights"):
    cli.check_model_flags(_namespace(model="sepconv-lf"), tool)


@pytest.mark.parametrize("module, argv", [(enhance, ["--video", "in.mp4", "--output", "out.mp4"]),
                                          (zoom, ["--input", "in.png", "--output", "out.png"])])
def test_restoration_command_lines(module, argv, capsys):
  with pytest.raises(SystemExit):
    module._parse_flags(["prog", "--help"])
  text = " ".join(capsys.readouterr().out.split())
  assert "a released model's name (none yet:" in text and "lpips" not in text
  args = module._parse_flags(["prog", *argv])
  with pytest.raises(ValueError, match="weights are released, so --model has none to fetch"):
    module.run(args)  # before the input (which does not exist) is opened
