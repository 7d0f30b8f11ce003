"""`fewcolor weights` and `fewcolor evaluate` through click."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from fewcolor.cli import main
from fewcolor.io.image import write_rgb


def test_weights_command_lists_every_network():
    result = CliRunner().invoke(main, ["weights", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["network"]: r for r in json.loads(result.output)}
    assert {"resnet18", "resnet50", "vgg16", "alexnet", "efficientnet_lite0", "inception_v3_fid"} <= set(rows)
    text = CliRunner().invoke(main, ["weights"])
    assert text.exit_code == 0 and "resnet50" in text.output and "present" in text.output


def test_evaluate_usage_errors(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "-o", str(tmp_path / "o"), "--pred", str(tmp_path)])
    assert result.exit_code != 0 and "--truth" in result.output


@pytest.mark.weights
def test_evaluate_folder_pair(tmp_path, lpips_weights):
    g = torch.Generator().manual_seed(0)
    for i in range(2):
        img = torch.rand(3, 32, 40, generator=g)
        write_rgb(tmp_path / "truth" / f"{i}.png", img)
        write_rgb(tmp_path / "pred" / f"{i}.png", (img * 0.8).clamp(0, 1))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["evaluate", "--pred", str(tmp_path / "pred"), "--truth",
                                       str(tmp_path / "truth"), "-o", str(out), "--no-fid", "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "2 images" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["resolution"] == "32x32" and len(metrics["per_image"]) == 2
    assert (out / "report.html").is_file()


@pytest.mark.weights
def test_evaluate_allow_missing_scores_only_the_existing_pairs(tmp_path, lpips_weights):
    g = torch.Generator().manual_seed(1)
    for i in range(3):
        img = torch.rand(3, 32, 32, generator=g)
        write_rgb(tmp_path / "truth" / "sub" / f"{i}.png", img)
        if i != 1:
            write_rgb(tmp_path / "pred" / "sub" / f"{i}.png", img)
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"), "--no-fid"]
    refused = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a")])
    assert refused.exit_code == 1 and "1 truth images have no prediction" in refused.output
    assert "--allow-missing" in refused.output
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "b"), "--allow-missing"])
    assert result.exit_code == 0, result.output
    assert "2 images" in result.output and "1 of 3 truth images had no prediction" in result.output
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert [r["name"] for r in metrics["per_image"]] == ["sub/0", "sub/2"]
    assert metrics["protocol"]["missing_predictions"] == 1 and metrics["protocol"]["missing"] == ["sub/1"]
    assert metrics["aggregate"]["lpips"]["mean"] < 1e-3  # the two existing predictions are the truths


@pytest.mark.weights
def test_evaluate_model_takes_the_methods_inference_options(tmp_path, lpips_weights):
    from fewcolor.methods.registry import build_method, save_method

    torch.manual_seed(0)
    cic = save_method(build_method("cic", "tiny"), tmp_path / "cic.safetensors")
    g = torch.Generator().manual_seed(2)
    for i in range(2):
        write_rgb(tmp_path / "data" / f"{i}.png", torch.rand(3, 32, 32, generator=g))
    common = ["evaluate", str(cic), "--data", str(tmp_path / "data"), "--no-fid"]
    plain = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "t038")])
    hot = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "t1"), "--temperature", "1"])
    assert plain.exit_code == 0 and hot.exit_code == 0, plain.output + hot.output
    m038, m1 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("t038", "t1"))
    assert m1["protocol"]["options"] == {"temperature": 1.0} and m038["protocol"]["options"] == {}
    assert m1["aggregate"]["delta_e2000"]["mean"] != m038["aggregate"]["delta_e2000"]["mean"]  # coloured otherwise
    foreign = CliRunner().invoke(main, ["evaluate", str(save_method(build_method("unet", "tiny"), tmp_path / "u.st")),
                                        "--data", str(tmp_path / "data"), "--no-fid", "-o", str(tmp_path / "u"),
                                        "--temperature", "1"])
    assert foreign.exit_code == 2 and "does not take inference option" in foreign.output  # a usage mistake
    assert "Traceback" not in foreign.output and not (tmp_path / "u" / "metrics.json").exists()
    pairs = CliRunner().invoke(main, ["evaluate", "--pred", str(tmp_path / "t1" / "pred"), "--truth",
                                      str(tmp_path / "data"), "-o", str(tmp_path / "p"), "--temperature", "1"])
    assert pairs.exit_code == 2 and "with MODEL --data DIR" in pairs.output
