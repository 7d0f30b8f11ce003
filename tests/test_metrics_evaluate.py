"""`evaluate_folders` / `evaluate_model`: protocol, metrics.json, report.html."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.io.image import write_rgb
from fewcolor.metrics.evaluate import EvalConfig, evaluate_folders, evaluate_model, prepare_pair

pytestmark = pytest.mark.weights


def _needs(*names: str) -> None:
    for name in names:
        if package_file(get_spec(name)) is None:
            pytest.skip(missing_message(get_spec(name)))


def _folder(root, images, suffix=".png"):
    for i, img in enumerate(images):
        write_rgb(root / "sub" / f"im{i}{suffix}", img)
    return root


def _photos(n: int = 3, size: int = 48) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    low = torch.rand(n, 3, 6, 6, generator=g)
    return list(torch.nn.functional.interpolate(low, size=(size, size + 8), mode="bicubic").clamp(0, 1))


def test_prepare_pair_gives_truth_the_same_processing():
    pred, truth = torch.rand(3, 30, 40), torch.rand(3, 60, 80)
    p, t = prepare_pair(pred, truth, size=None)
    assert p.shape == t.shape == (3, 60, 80)
    p2, t2 = prepare_pair(pred, truth, size=32)
    assert p2.shape == t2.shape == (3, 32, 32)
    p3, t3 = prepare_pair(truth, truth, size=None)
    assert torch.equal(p3, t3)  # identical inputs stay identical through the Lab round-trip


def test_identical_folders(tmp_path):
    _needs("alexnet", "lpips_alex_lin")
    imgs = _photos()
    truth = _folder(tmp_path / "truth", imgs, ".png")
    pred = _folder(tmp_path / "pred", imgs, ".png")
    result = evaluate_folders(pred, truth, tmp_path / "out", EvalConfig(fid=False))
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [r["name"] for r in saved["per_image"]] == ["sub/im0", "sub/im1", "sub/im2"]
    agg = result["aggregate"]
    assert math.isinf(agg["psnr"]["mean"]) and saved["aggregate"]["psnr"]["mean"] == "inf"
    assert agg["ssim"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert agg["lpips"]["mean"] == 0.0 and agg["auc"]["mean"] == pytest.approx(1.0)
    assert agg["delta_e2000"]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert agg["delta_cf_abs"]["mean"] == 0.0
    assert saved["protocol"]["lpips"]["net"] == "alex" and "lab_round_trip" in saved["protocol"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Worst 3 by LPIPS" in html and "grey | truth | output" in html


@pytest.mark.slow
def test_folders_with_fid_and_model(tmp_path):
    _needs("alexnet", "lpips_alex_lin", "inception_v3_fid")
    imgs = _photos(3)
    truth = _folder(tmp_path / "truth", imgs, ".jpg")  # a .png output scores a .jpg truth
    noisy = [(im + 0.1 * torch.randn(im.shape, generator=torch.Generator().manual_seed(i))).clamp(0, 1)
             for i, im in enumerate(imgs)]
    pred = _folder(tmp_path / "pred", noisy, ".png")
    cfg = EvalConfig(kid_subsets=3, batch_size=4)
    first = evaluate_folders(pred, truth, tmp_path / "out1", cfg)
    s = first["set"]
    assert s["fid"] > 0 and math.isfinite(s["kid_mean"])
    assert s["inception_score"]["available"] is False and "pt_inception" in s["inception_score"]["reason"]
    agg = first["aggregate"]
    assert 0 < agg["lpips"]["mean"] < 1 and agg["psnr"]["ci95_low"] < agg["psnr"]["mean"]
    assert first["protocol"]["fid"]["reference_features_cached"] is False
    second = evaluate_folders(pred, truth, tmp_path / "out2", cfg)
    assert second["protocol"]["fid"]["reference_features_cached"] is True
    assert second["set"]["fid"] == pytest.approx(s["fid"], rel=1e-5)

    from fewcolor.methods.registry import build_method, save_method

    torch.manual_seed(0)
    ckpt = save_method(build_method("unet", "tiny"), tmp_path / "m.safetensors")
    result = evaluate_model(ckpt, truth, tmp_path / "model_eval", EvalConfig(fid=False))
    assert (tmp_path / "model_eval" / "pred" / "sub" / "im0.png").is_file()
    assert result["protocol"]["method"] == "unet" and len(result["per_image"]) == 3
    # run again into the same folder (the command's --overwrite): nothing of the earlier run is left
    stale_pred = tmp_path / "model_eval" / "pred" / "gone.png"
    stale_page_image = tmp_path / "model_eval" / "report_files" / "img09999.png"
    skipped_now = tmp_path / "model_eval" / "pred" / "sub" / "bad.png"  # coloured before, unreadable now
    for stale in (stale_pred, stale_page_image, skipped_now):
        stale.write_bytes((tmp_path / "model_eval" / "pred" / "sub" / "im0.png").read_bytes())
    (truth / "sub" / "bad.png").write_bytes(b"not an image any more")
    result = evaluate_model(ckpt, truth, tmp_path / "model_eval", EvalConfig(fid=False))
    (truth / "sub" / "bad.png").unlink()
    assert [s["name"] for s in result["skipped"]] == ["sub/bad"]
    assert not stale_pred.exists() and not stale_page_image.exists() and not skipped_now.exists()
    assert (tmp_path / "model_eval" / "report_files" / "img00001.png").is_file()
    rescored = evaluate_folders(tmp_path / "model_eval" / "pred", truth, tmp_path / "rescore", EvalConfig(fid=False))
    assert rescored["aggregate"]["psnr"]["mean"] == pytest.approx(result["aggregate"]["psnr"]["mean"], abs=1e-4)


class _PixelFeatures:
    """A stand-in for InceptionFeatures: pooled pixels as features (the set-level bookkeeping under test)."""

    weights_source, fingerprint, has_logits = "test", "test", False

    def __init__(self, weights=None, device="cpu") -> None:
        pass

    def pool3(self, rgb: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(rgb, 8).flatten(1).double()


@pytest.mark.parametrize("n", [3, 50])
def test_fid_and_kid_on_few_images_are_flagged_with_what_they_were_computed_on(n, tmp_path, monkeypatch, caplog):
    _needs("alexnet", "lpips_alex_lin")
    import fewcolor.metrics.set_level as set_level
    from fewcolor.metrics.evaluate import evaluate_pairs
    from fewcolor.metrics.fid import fid_from_features, kernel_inception_distance

    assert set_level.MIN_SET_IMAGES == 50
    monkeypatch.setattr(set_level, "InceptionFeatures", _PixelFeatures)
    truths = _photos(n, size=32)
    preds = [(t + 0.1 * torch.randn(t.shape, generator=torch.Generator().manual_seed(i))).clamp(0, 1)
             for i, t in enumerate(truths)]
    with caplog.at_level(logging.WARNING, logger="fewcolor.metrics.evaluate"):
        pairs = [(f"im{i}", p, t) for i, (p, t) in enumerate(zip(preds, truths, strict=True))]
        result = evaluate_pairs(pairs, tmp_path / "out", EvalConfig(kid_subsets=4))
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    s = saved["set"]
    assert s == json.loads(json.dumps(result["set"]))  # what the caller gets is what metrics.json says
    assert s["set_images"] == s["reference_images"] == n and s["kid_subset_size"] == n  # 1000 asked, n there
    assert saved["protocol"]["fid"]["kid"]["subset_size"] == 1000 and saved["protocol"]["fid"]["min_images"] == 50
    assert s["fid"] is not None and math.isfinite(s["kid_mean"])
    warned = [m for m in caplog.messages if "FID/KID" in m]
    html = (tmp_path / "out" / "report.html").read_text()
    if n < 50:
        line = f"FID/KID on {n} images are unreliable below 50; compare only runs with the same N"
        assert s["set_reliable"] is False and s["set_warning"] == line and warned == [line]
        assert f"Caution: {line}." in html
    else:  # from 50 images on: not flagged, and FID/KID computed exactly as before
        assert s["set_reliable"] is True and s["set_warning"] is None and warned == [] and "Caution" not in html
        feats = set_level.InceptionSet(None, torch.device("cpu"), 16, None)
        for p, t in zip(preds, truths, strict=True):
            feats.add(*prepare_pair(p, t, None))
        feats.flush()
        fp, ft = torch.cat(feats.pred_feats), torch.cat(feats.truth_feats)
        assert s["kid_mean"] == pytest.approx(kernel_inception_distance(fp, ft, 4, 1000, 0)[0], rel=1e-9)
        assert s["fid"] == pytest.approx(fid_from_features(fp, ft), rel=1e-9)


def test_missing_predictions_are_named(tmp_path):
    _needs("alexnet", "lpips_alex_lin")
    imgs = _photos(2)
    truth = _folder(tmp_path / "truth", imgs)
    (tmp_path / "pred").mkdir()
    write_rgb(tmp_path / "pred" / "sub" / "im0.png", imgs[0])
    with pytest.raises(FileNotFoundError, match="sub/im1"):
        evaluate_folders(tmp_path / "pred", truth, tmp_path / "out", EvalConfig(fid=False))


def test_mixed_sizes_are_batched_by_size_in_order(tmp_path):
    _needs("alexnet", "lpips_alex_lin")
    from fewcolor.io.image import read_rgb
    from fewcolor.metrics.lpips import LPIPS
    from fewcolor.metrics.scoring import score_pair

    imgs = [*_photos(2, 48), _photos(1, 36)[0], _photos(3, 48)[2]]  # sizes 48, 48, 36, 48 (x +8 wide)
    truth = _folder(tmp_path / "truth", imgs, ".png")
    preds = [(im * 0.8 + 0.1) for im in imgs]
    pred = _folder(tmp_path / "pred", preds, ".png")
    result = evaluate_folders(pred, truth, tmp_path / "out", EvalConfig(fid=False, batch_size=2))
    rows = result["per_image"]
    assert [r["name"] for r in rows] == [f"sub/im{i}" for i in range(4)]
    assert [r["height"] for r in rows] == [48, 48, 36, 48]
    lpips = LPIPS("alex")
    for i, row in enumerate(rows):
        p, t = prepare_pair(read_rgb(pred / "sub" / f"im{i}.png"), read_rgb(truth / "sub" / f"im{i}.png"), None)
        alone = score_pair(row["name"], p, t, lpips, torch.device("cpu"))
        assert row["lpips"] == pytest.approx(alone["lpips"], rel=1e-5)
        assert row["delta_e2000"] == alone["delta_e2000"] and row["psnr"] == alone["psnr"]
