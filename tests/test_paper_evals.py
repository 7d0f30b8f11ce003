"""The papers' evaluations (`fewcolor paper-eval`): the metrics pinned on constructed inputs, every command
run end to end on the emoji fixture at tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from fewcolor.bench.paper_evals import (
    inception_score_eval,
    pick_per_class,
    representation_eval,
    semantic_eval,
)
from fewcolor.cli import main
from fewcolor.methods.registry import build_method, save_method
from fewcolor.metrics.semantic import classifier_inception_score, semantic_scores


def _one_hot(classes: list[int], n: int = 1000, scale: float = 50.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(classes), n).float() * scale


def test_semantic_scores_accuracy_and_agreement() -> None:
    logits = {"original": _one_hot([1, 2, 3, 4]), "colourized": _one_hot([1, 2, 9, 9]), "grey": _one_hot([5, 5, 5, 4])}
    s = semantic_scores(logits, imagenet_labels=[1, 2, 3, -1])  # the last image has no ImageNet index
    assert s.n == 4 and s.n_labelled == 3
    assert s.accuracy == {"original": 1.0, "colourized": pytest.approx(2 / 3), "grey": 0.0}
    assert s.agreement == {"original": 1.0, "colourized": 0.5, "grey": 0.25}
    d = s.as_dict()
    assert d["top1_colourized_efficientnet_lite0"] == pytest.approx(2 / 3)
    assert semantic_scores(logits).accuracy["grey"] is None  # no labels: agreement only
    with pytest.raises(ValueError, match="reference"):
        semantic_scores({"colourized": logits["colourized"]})


def test_classifier_inception_score_is_the_is_formula_under_its_own_name() -> None:
    # Confident predictions spread evenly over K classes give exp(log K) = K; one class for all gives 1.
    spread = classifier_inception_score(_one_hot([0, 1, 2, 3] * 5), splits=1)
    assert spread["is_efficientnet_lite0"] == pytest.approx(4.0, rel=1e-4)
    assert classifier_inception_score(_one_hot([7] * 20), splits=2)["is_efficientnet_lite0"] == pytest.approx(1.0)
    assert "inception_score" not in spread and "is" not in spread


def test_pick_per_class_is_seeded_and_balanced() -> None:
    labels = [0] * 5 + [1] * 3 + [-1] * 2 + [2] * 4
    a = pick_per_class(labels, 2, seed=1)
    assert a == pick_per_class(labels, 2, seed=1)
    assert [labels[i] for i in a] == [0, 0, 1, 1, 2, 2]
    assert [labels[i] for i in pick_per_class(labels, 4, seed=0, max_classes=2)] == [0] * 4 + [1] * 3
    with pytest.raises(ValueError, match="class subfolders"):
        pick_per_class([-1, -1], 1, 0)


@pytest.fixture(scope="module")
def unet_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "unet.safetensors"
    save_method(build_method("unet", "tiny", {"image_size": 32}).eval(), path)
    return path


def test_the_three_sets_are_scored_as_8_bit_files_hold_them(unet_model: Path, emoji_dir: Path) -> None:
    from fewcolor.bench.paper_evals import _colourized_sets, _eval_dataset

    sets = _colourized_sets(unet_model, _eval_dataset(emoji_dir, 32), [0, 1], "cpu")
    for name, images in sets.items():
        scaled = torch.stack(images) * 255
        assert (scaled - scaled.round()).abs().max() < 1e-3, name  # colourized, grey and original rounded alike


def test_semantic_and_inception_score_evals_end_to_end(unet_model: Path, emoji_dir: Path) -> None:
    r = semantic_eval(unet_model, emoji_dir, per_class=1, size=32, pretrained=False)
    assert r["n"] == 6 and r["n_labelled"] == 0  # emoji subcategories have no ImageNet index
    assert r["agreement_original_efficientnet_lite0"] == 1.0
    assert r["top1_colourized_efficientnet_lite0"] is None
    mapped = semantic_eval(unet_model, emoji_dir, per_class=1, size=32, pretrained=False,
                           label_map={"heart": 3})
    assert mapped["n_labelled"] == 1 and mapped["top1_original_efficientnet_lite0"] in (0.0, 1.0)
    s = inception_score_eval(unet_model, emoji_dir, per_class=1, size=32, splits=2, pretrained=False)
    assert s["n"] == 6
    assert 1.0 - 1e-9 <= s["colourized"]["is_efficientnet_lite0"] <= 6.0  # exp(KL) ≥ 1, up to rounding
    assert s["inception_score"]["available"] is False and "1008" in s["inception_score"]["why"]


def test_representation_eval_probes_every_block(tmp_path: Path, emoji_dir: Path) -> None:
    torch.manual_seed(5)  # another init than the probe's seeded random net
    model = tmp_path / "cic.safetensors"
    save_method(build_method("cic", "tiny").eval(), model)
    r = representation_eval(model, emoji_dir, classes=3, train_per_class=3, test_per_class=2, size=32, vgg="random")
    keys = set(r["accuracy"])
    assert {f"cic_{kind}/conv{i}" for kind in ("trained", "random") for i in range(1, 8)} <= keys
    assert {f"vgg16_random/features.{i}" for i in (3, 8, 15, 22, 29)} <= keys
    assert r["test_images"] == 6 and r["chance"] == pytest.approx(1 / 3)
    assert all(0.0 <= a <= 1.0 for a in r["accuracy"].values())
    with pytest.raises(ValueError, match="cic checkpoint"):
        unet = tmp_path / "u.safetensors"
        save_method(build_method("unet", "tiny"), unet)
        representation_eval(unet, emoji_dir, classes=2, train_per_class=1, test_per_class=1, size=32, vgg="none")


def test_retrieval_and_memory_sweep_commands(tmp_path: Path, emoji_dir: Path) -> None:
    common = ["--data", str(emoji_dir), "--n-way", "3", "--n-query", "1", "--episodes", "1", "--steps", "2",
              "--size", "32"]
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["paper-eval", "retrieval", *common, "-o", str(out)])
    assert result.exit_code == 0, result.output
    r = json.loads(out.read_text())
    assert r["chance"] == pytest.approx(1 / 3) and r["unsupervised"]["queries"] == 3
    assert "supervised" in result.output
    result = CliRunner().invoke(main, ["paper-eval", "memory-sweep", *common, "--memory-scales", "0.5,2",
                                       "--thresholds", "5", "-o", str(tmp_path / "sweep")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "sweep" / "result.json").read_text())["rows"]
    assert [(x["memory_scale"], x["threshold"]) for x in rows] == [(0.5, 5.0), (2.0, 5.0)]
    bad = CliRunner().invoke(main, ["paper-eval", "memory-sweep", *common, "--thresholds", "a,b", "-o",
                                    str(tmp_path / "x.json")])
    assert bad.exit_code != 0 and "comma-separated numbers" in bad.output


def test_paper_eval_errors_are_one_line(tmp_path: Path, emoji_dir: Path, unet_model: Path) -> None:
    result = CliRunner().invoke(main, ["paper-eval", "representation", str(unet_model), "--data", str(emoji_dir),
                                       "-o", str(tmp_path / "o.json"), "--vgg", "none", "--size", "32"])
    assert result.exit_code == 1 and "cic checkpoint" in result.output and "Traceback" not in result.output


def test_real_inception_score_runs_when_weights_carry_the_1008_way_head(tmp_path: Path) -> None:
    """The real-IS path of MetalGAN's Table 1: seeded random InceptionV3 weights plus a 1008-way ``fc`` in a
    weights file give an IS per image set equal to the IS formula over that network's own logits."""
    from safetensors.torch import save_file

    from fewcolor.backbones.inception import inception_v3_fid
    from fewcolor.bench.paper_evals import _real_inception_score
    from fewcolor.metrics.fid import FID_SIZE, InceptionFeatures, inception_score
    from fewcolor.metrics.semantic import classifier_logits

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in inception_v3_fid().state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048) * 0.05, torch.zeros(1008)
    path = tmp_path / "inception_with_head.safetensors"
    save_file(state, str(path))
    g = torch.Generator().manual_seed(1)
    sets = {"colourized": [torch.rand(3, 40, 40, generator=g) for _ in range(4)],
            "grey": [torch.rand(1, 40, 40, generator=g).expand(3, -1, -1) for _ in range(4)]}
    out = _real_inception_score(sets, path, splits=2)
    assert out["available"] is True
    net = InceptionFeatures(path)
    for name, images in sets.items():
        expected = inception_score(classifier_logits(net.logits, images, size=FID_SIZE), 2)
        assert out[name]["is"] == expected[0] and 1.0 <= out[name]["is"] <= 2.0 + 1e-9  # ≤ the images per split
    plain = tmp_path / "no_head.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("fc.")}, str(plain))
    assert _real_inception_score(sets, plain, splits=2) == {
        "available": False, "why": f"{plain} has no 1008-way logits (pytorch-fid's "
                                   "pt_inception-2015-12-05-6726825d.pth has them)"}


def test_semantic_eval_colours_with_the_methods_inference_options(tmp_path: Path, emoji_dir: Path) -> None:
    torch.manual_seed(0)
    cic = save_method(build_method("cic", "tiny"), tmp_path / "cic.safetensors")
    r = semantic_eval(cic, emoji_dir, per_class=1, size=32, pretrained=False, options={"temperature": 1.0})
    assert r["options"] == {"temperature": "1.0"} and r["n"] == 6
    with pytest.raises(ValueError, match="does not take"):
        semantic_eval(cic, emoji_dir, per_class=1, size=32, pretrained=False, options={"variant": 2})
    res = CliRunner().invoke(main, ["paper-eval", "semantic", str(cic), "--data", str(emoji_dir), "-o",
                                    str(tmp_path / "r.json"), "--per-class", "1", "--size", "32", "--variant", "2"])
    assert res.exit_code == 2 and "does not take" in res.output and "Traceback" not in res.output  # usage: exit 2
