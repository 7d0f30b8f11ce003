"""Inference options and config docs come from the registry: the CLI, the pipeline and `fewcolor methods`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import torch
from click.testing import CliRunner

from fewcolor.cli import main
from fewcolor.methods.base import InferenceOption, InferenceOptionError, Method
from fewcolor.methods.options import config_fields, option_table
from fewcolor.methods.registry import register_method, save_method, unregister_method
from fewcolor.pipeline import Colorizer


@dataclass
class ToyConfig:
    image_size: int = 16  #: working resolution
    #: how strongly the toy
    #: tints its output
    strength: float = 0.5
    mode: Literal["warm", "cold"] = "warm"
    kind: str = field(default="a", metadata={"choices": ("a", "b"), "help": "from metadata"})
    plain: int = 3


class ToyMethod(Method):
    name = "toy-options"
    summary = "a test-only method with one option of each kind"
    Config = ToyConfig
    inference_options = (
        InferenceOption("toy_gain", "float", "multiplies the output", default=1.0, minimum=0.0, maximum=4.0),
        InferenceOption("toy_guide", "image-l", "an image whose L is added"),
    )

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen: dict[str, Any] = {}

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Any]:
        raise NotImplementedError

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        self.seen = options
        gain = float(options.get("toy_gain") or 1.0)
        return (l.expand(-1, 2, -1, -1) * 0.1 * gain * self.scale).clamp(-1, 1)


@pytest.fixture()
def toy() -> Iterator[type[ToyMethod]]:
    register_method(ToyMethod)
    try:
        yield ToyMethod
    finally:
        unregister_method(ToyMethod.name)


def test_registered_option_appears_in_colorize_help(toy) -> None:
    res = CliRunner().invoke(main, ["colorize", "--help"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "--toy-gain" in text and "[toy-options] multiplies the output" in text
    assert "--toy-guide FILE" in text
    assert "--temperature" in text and "[base, cic]" in text  # real methods' options too, with who takes them
    # an option that is also a config field defaults to the model's own value, and says so
    assert "(default: the model's own chroma, 1.0 unless it was trained with another)" in text
    unregister_method(toy.name)
    assert "--toy-gain" not in CliRunner().invoke(main, ["colorize", "--help"]).output


def test_colorize_passes_registry_options(toy, tmp_path) -> None:
    from fewcolor.io.image import read_rgb, write_rgb

    torch.manual_seed(0)
    model = save_method(toy(toy.Config()), tmp_path / "toy.safetensors")
    src = tmp_path / "in.png"
    write_rgb(src, torch.rand(3, 20, 30))
    runner = CliRunner()
    res = runner.invoke(main, ["colorize", str(model), str(src), "-o", str(tmp_path / "a"), "--toy-gain", "3"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["colorize", str(model), str(src), "-o", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert not torch.equal(read_rgb(tmp_path / "a" / "in.png"), read_rgb(tmp_path / "b" / "in.png"))
    res = runner.invoke(main, ["colorize", str(model), str(src), "-o", str(tmp_path / "c"), "--toy-gain", "9"])
    assert res.exit_code != 0 and "0<=x<=4" in res.output.replace(" ", "")  # the declared range
    res = runner.invoke(main, ["colorize", str(model), str(src), "-o", str(tmp_path / "d"), "--temperature", "1"])
    assert res.exit_code != 0 and "does not take" in res.output


def test_pipeline_converts_image_options_by_declaration(toy, tmp_path) -> None:
    from fewcolor.io.image import write_rgb

    method = toy(toy.Config())
    colorizer = Colorizer(method, device="cpu", size=16)
    guide = tmp_path / "guide.png"
    write_rgb(guide, torch.rand(3, 40, 20))
    colorizer.colorize(torch.rand(3, 24, 24), toy_guide=guide)
    l = method.seen["toy_guide"]
    assert l.shape == (1, 1, 16, 8) and l.min() >= -1 and l.max() <= 1  # normalised L, working size
    with pytest.raises(InferenceOptionError, match="toy_gain must be <= 4"):
        colorizer.colorize(torch.rand(3, 24, 24), toy_gain=5.0)


def test_config_fields_read_comment_and_metadata_docs() -> None:
    fields = {f.name: f for f in config_fields(ToyConfig)}
    assert fields["image_size"].doc == "working resolution" and fields["image_size"].default == 16
    assert fields["strength"].doc == "how strongly the toy tints its output"
    assert fields["mode"].choices == ("warm", "cold")
    assert fields["kind"].choices == ("a", "b") and fields["kind"].doc == "from metadata"
    assert fields["plain"].doc == "" and fields["plain"].type == "int"


def test_methods_cgan_lists_gan_losses() -> None:
    res = CliRunner().invoke(main, ["methods", "cgan"])
    assert res.exit_code == 0, res.output
    assert "gan_loss (str, default 'vanilla')" in res.output
    assert "one of: vanilla, lsgan, wgan, wgan-gp, ebgan, hinge" in res.output
    assert "presets" in res.output and "l1_weight" in res.output
    res = CliRunner().invoke(main, ["methods", "memopainter"])
    assert "--variants K" in res.output and "--reference (image-rgb)" in res.output
    res = CliRunner().invoke(main, ["methods", "nope"])
    assert res.exit_code != 0 and "unknown method 'nope'" in res.output


def test_option_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        InferenceOption("x", "colour", "bad kind")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        InferenceOption("not-a-name", "int", "bad name")

    class A:
        inference_options = (InferenceOption("x", "int", "an int"),)

    class B:
        inference_options = (InferenceOption("x", "float", "a float"),)

    with pytest.raises(ValueError, match="rename one"):
        option_table({"a": A, "b": B})
    assert option_table({"a": A, "c": A})["x"][1] == ["a", "c"]


def test_every_option_kind_becomes_a_click_option() -> None:
    import click

    from fewcolor.cli import _option_param

    params = [p for opt in (InferenceOption("sharp", "bool", "sharpen"),
                            InferenceOption("mode", "str", "a mode", choices=("a", "b")),
                            InferenceOption("n", "int", "a count", minimum=1, sweep="ns"))
              for p in _option_param(opt, ["toy"])]

    @click.command(params=params)
    def command(**values: Any) -> None:
        click.echo(repr(sorted(values.items())))

    runner = CliRunner()
    assert runner.invoke(command, []).output.strip() == "[('mode', None), ('n', None), ('ns', None), ('sharp', None)]"
    out = runner.invoke(command, ["--no-sharp", "--mode", "b", "--ns", "3"]).output
    assert "('sharp', False)" in out and "('mode', 'b')" in out and "('ns', 3)" in out
    assert runner.invoke(command, ["--mode", "z"]).exit_code != 0
    assert runner.invoke(command, ["--n", "0"]).exit_code != 0


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_refused_by_the_pipeline_and_the_cli(toy, tmp_path, bad) -> None:
    from fewcolor.io.image import write_rgb

    colorizer = Colorizer(toy(toy.Config()), device="cpu", size=16)
    with pytest.raises(InferenceOptionError, match="toy_gain must be a finite number"):
        colorizer.colorize(torch.rand(3, 24, 24), toy_gain=float(bad))
    model = save_method(toy(toy.Config()), tmp_path / "toy.safetensors")
    src = tmp_path / "in.png"
    write_rgb(src, torch.rand(3, 20, 30))
    res = CliRunner().invoke(main, ["colorize", str(model), str(src), "-o", str(tmp_path / "o"), "--toy-gain", bad])
    # click's own range check refuses ±inf first; NaN passes it (every comparison is false) and is ours to refuse
    want = "toy_gain must be a finite number" if bad == "nan" else "--toy-gain"
    assert res.exit_code == 2 and want in res.output, res.output
    assert not (tmp_path / "o" / "in.png").exists()


def test_number_options_refuse_values_that_are_not_numbers_in_one_line(toy) -> None:
    # from Python a string or a bool would otherwise fail deep inside the method (e.g. "could not convert")
    import numpy as np

    colorizer = Colorizer(toy(toy.Config()), device="cpu", size=16)
    for bad in ("0.5", True, [1.0]):
        with pytest.raises(InferenceOptionError, match="toy_gain must be a number"):
            colorizer.colorize(torch.rand(3, 24, 24), toy_gain=bad)
    count = InferenceOption("count", "int", "a count", minimum=1)
    with pytest.raises(InferenceOptionError, match=r"count must be an integer, got 2\.5"):
        count.check(2.5, "toy")
    count.check(np.int64(3), "toy")  # numpy numbers are numbers
    InferenceOption("gain", "float", "a gain").check(np.float32(0.5), "toy")
    InferenceOption("gain", "float", "a gain").check(2, "toy")  # an int is a number


def test_a_local_path_option_takes_its_choices_or_a_path_and_says_which_values_visitors_may_give() -> None:
    import click

    from fewcolor.cli import _option_param
    from fewcolor.methods.registry import get_method_class

    with pytest.raises(ValueError, match="local_path needs kind 'str' and the choices"):
        InferenceOption("model", "str", "a checkpoint", local_path=True)
    opt = InferenceOption("fallback", "str", "a fallback", choices=("stats", "bundled"), local_path=True)
    opt.check("/some/model.safetensors", "toy")  # a path is the CLI's to give; the method checks the file
    assert not opt.refuses_from_visitors("stats")
    assert opt.refuses_from_visitors("/etc/passwd") and opt.refuses_from_visitors("foo")
    assert not InferenceOption("mode", "str", "a mode", choices=("a", "b")).refuses_from_visitors("z")
    (param,) = _option_param(opt, ["toy"])
    assert not isinstance(param.type, click.Choice)  # the command line takes a checkpoint path
    # every path-like option of the registered methods is declared so (the web page refuses its paths)
    fallback = get_method_class("exemplar").inference_option("fallback")
    assert fallback is not None and fallback.local_path and set(fallback.choices or ()) == {"attention", "stats",
                                                                                          "bundled"}
