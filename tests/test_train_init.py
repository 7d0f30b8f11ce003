"""`train --init`: a U-Net-family method with a pretrained encoder starts from the base colorizer."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from fewcolor.cli import main
from fewcolor.methods.registry import build_method, load_method, save_method

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    base = build_method("base", "cpu", {"prior_images": 4})
    return str(save_method(base, tmp_path_factory.mktemp("base") / "base.safetensors"))


@pytest.mark.parametrize("method", ["unet", "cgan", "memopainter", "res-cgan"])
def test_encoder_generator_starts_from_the_base_model(method, base_checkpoint, emoji_dir, tmp_path) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(main, [
        "train", "--method", method, "--preset", "tiny", "--set", "encoder=efficientnet-lite0", "--set", "lr=0",
        "--data",
        str(emoji_dir), "-o", str(out), "--steps", "1", "--size", "32", "--init", base_checkpoint,
        "--sample-every", "0",
    ])
    assert res.exit_code == 0, res.output
    assert f"--init {base_checkpoint}: loaded" in res.output
    base = load_method(base_checkpoint).state_dict()
    trained = load_method(out / "model.safetensors").state_dict()
    # with lr 0 the step moves no weight: the decoder's are the base model's, loaded by --init
    for key in ("generator.net.head.weight", "generator.net.up.0.0.weight", "generator.net.global_mlp.0.weight"):
        assert torch.equal(trained[key], base[key]), key
    loaded = int(res.output.split(": loaded ")[1].split(" of ")[0])
    assert loaded >= sum(1 for k in base if k.startswith("generator."))


def test_init_refuses_a_checkpoint_of_another_architecture(emoji_dir, tmp_path) -> None:
    other = save_method(build_method("unet", "tiny"), tmp_path / "unet.safetensors")
    res = CliRunner().invoke(main, [
        "train", "--method", "base", "--preset", "tiny", "--data", str(emoji_dir), "-o", str(tmp_path / "run"),
        "--steps", "1", "--init", str(other),
    ])
    assert res.exit_code != 0
    assert "shares no tensor" in res.output and "Traceback" not in res.output


def test_encoder_none_keeps_the_paper_unet_bit_for_bit() -> None:
    from fewcolor.nets.unet import UNetGenerator

    c = build_method("unet", "tiny").config
    torch.manual_seed(3)
    a = build_method("unet", "tiny").state_dict()
    torch.manual_seed(3)
    b = UNetGenerator(base=c.base_channels, depth=c.depth, dropout=c.dropout).state_dict()
    assert [k.removeprefix("generator.") for k in a] == list(b)
    assert all(torch.equal(a[f"generator.{k}"], v) for k, v in b.items())


def test_bench_init_starts_matching_methods_from_the_checkpoint(base_checkpoint, emoji_dir, tmp_path) -> None:
    import json
    import shutil

    data = tmp_path / "emoji2"
    for cls in ("heart", "plant-flower"):
        shutil.copytree(emoji_dir / cls, data / cls)
    res = CliRunner().invoke(main, [
        "bench", "--data", str(data), "--shots", "1", "--methods", "unet,lut", "--preset", "tiny",
        "--set", "unet.encoder=efficientnet-lite0", "--image-size", "32", "--init", base_checkpoint,
        "--size", "smoke", "--no-fid", "-o", str(tmp_path / "results"), "--results-md", str(tmp_path / "R.md"),
    ])
    assert res.exit_code == 0, res.output
    out = tmp_path / "results" / "folder-emoji2-k1-32px"
    assert json.loads((out / "unet+init.json").read_text())["method"] == "unet+init"
    # lut shares no tensor: trained from scratch, said in the log, and its label does not claim "+init"
    assert json.loads((out / "lut.json").read_text())["method"] == "lut"
    assert not (out / "lut+init.json").exists()
    runs = [p.name for p in (tmp_path / "results" / "runs").rglob("unet-*")]
    assert runs and all("-init" in name for name in runs)
