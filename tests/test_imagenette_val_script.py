"""scripts/imagenette_val.py: a model scored earlier with the same settings is not scored again."""

import importlib.util
import json
import os
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "imagenette_val.py"


def _module():
    spec = importlib.util.spec_from_file_location("imagenette_val", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    assert not finished(done, {**settings, "per_class": 50}, model)  # other settings
    os.utime(model, None)  # the model was retrained after its scoring
    os.utime(done, (2_000, 2_000))
    assert not finished(done, settings, model)
    bundled = {**settings, "model": "base"}
    done.write_text(json.dumps(bundled))
    assert finished(done, bundled, Path("base"))  # the bundled model: no file of that name to compare with
