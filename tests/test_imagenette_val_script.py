"""scripts/imagenette_val.py: a model scored earlier with the same settings is not scored again."""

import json
import os
from types import ModuleType

import pytest

from helpers import load_script


def _module() -> ModuleType:
    return load_script("imagenette_val")


def test_a_finished_scoring_is_reused_only_with_the_same_settings_and_model(tmp_path):
    finished = _module()._finished
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    os.utime(model, (1_000, 1_000))
    settings = {"model": str(model), "data": "/val", "work_size": None, "fid": True, "per_class": 100}
    done = tmp_path / "done.json"
    assert not finished(done, settings, model)  # nothing scored yet
    done.write_text(json.dumps(settings))
    assert finished(done, settings, model)
    done.write_text(json.dumps({**settings, "scored": {"code": "abc1234", "date": "2026-12-03 22:00 UTC"}}))
    os.utime(done, None)
    assert finished(done, settings, model)  # when and with which code it was scored is not a setting
    assert not finished(done, {**settings, "per_class": 50}, model)  # other settings
    os.utime(model, None)  # the model was retrained after its scoring
    os.utime(done, (2_000, 2_000))
    assert not finished(done, settings, model)
    assert not finished(done, settings, tmp_path / "gone.safetensors")  # no weights file: score again


def test_a_row_averages_psnr_over_the_images_not_given_back_exactly_and_a_kept_file_prints_the_same(tmp_path):
    module = _module()
    metrics = {
        "aggregate": {k: {"mean": v} for k, v in
                      {"lpips": 0.2, "ssim": 0.9, "delta_e2000": 10.0, "cf_hs_pred": 1.0, "cf_hs_truth": 38.0,
                       "delta_cf_hs": 37.0}.items()},
        "set": {"fid": 58.03},
        "per_image": [{"psnr": 20.0}, {"psnr": "inf"}, {"psnr": 24.0}],  # metrics.json stores inf as "inf"
    }
    semantic = {"top1_colourized_efficientnet_lite0": 0.65, "top1_grey_efficientnet_lite0": 0.65,
                "top1_original_efficientnet_lite0": 0.723}
    scores = module.summarise(metrics, semantic, {"model": "grey.safetensors", "scored": {"code": "abc1234"}})
    assert "per_image" not in scores and scores["images"] == 3
    assert scores["psnr_not_exact"] == {"mean": 22.0, "exact": 1}
    expected = ("| grey | 58.0 | 0.200 | 22.00 (1 exact) | 0.900 | 10.00 | 1.0 (38.0) | 37.0 | "
                "65.0 % / 65.0 % / 72.3 % |")
    assert module.table_row("grey", scores) == expected
    (tmp_path / "grey.json").write_text(json.dumps(scores))  # what --keep writes; --table reads it back
    assert module.table_row("grey", module._read_kept(tmp_path, "grey")) == expected
    with pytest.raises(SystemExit, match=r"cic\.json does not exist \(kept there: grey\)"):
        module._read_kept(tmp_path, "cic")
