import json

import pytest
import torch
from safetensors.torch import save_file

from fewcolor.io.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from fewcolor.methods.registry import build_method, load_method, save_method


def test_round_trip_tensors_and_metadata(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    path = save_checkpoint(tmp_path / "x.safetensors", t, {"kind": "test", "config": {"lr": 0.1}})
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["a"], t["a"]) and torch.equal(tensors["b"], t["b"])
    assert meta["config"] == {"lr": 0.1} and meta["kind"] == "test" and "fewcolor_version" in meta
    assert read_metadata(path)["kind"] == "test"
    assert not list(tmp_path.glob(".*.tmp")), "atomic write left a temporary file"


def test_shared_and_non_contiguous_tensors_are_saved(tmp_path):
    base = torch.randn(4, 4)
    save_checkpoint(tmp_path / "x.safetensors", {"a": base, "b": base.t()}, {})
    tensors, _ = load_checkpoint(tmp_path / "x.safetensors")
    assert torch.equal(tensors["b"], base.t())


def test_pickle_file_is_refused_with_clear_error(tmp_path):
    bad = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match=r"model.pth.*never unpickles"):
        load_checkpoint(bad)


def test_an_unreadable_file_gets_the_fix_that_fits_it(tmp_path):
    good = save_checkpoint(tmp_path / "good.safetensors", {"w": torch.zeros(64)}, {})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="cut short") as info:
        load_checkpoint(cut)
    assert "unpickle" not in str(info.value)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_checkpoint(tmp_path / "empty.safetensors")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError, match="written by fewcolor"):
        load_checkpoint(tmp_path / "photo.png")


def test_foreign_safetensors_and_tampered_metadata(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a fewcolor checkpoint"):
        load_checkpoint(foreign)
    tampered = tmp_path / "tampered.safetensors"
    save_file({"w": torch.zeros(2)}, str(tampered), metadata={"fewcolor": "{not json"})
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tampered)
    truncated = tmp_path / "truncated.safetensors"
    good = save_checkpoint(tmp_path / "good.safetensors", {"w": torch.zeros(100)}, {})
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match=r"truncated\.safetensors"):
        load_checkpoint(truncated)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_method_round_trip_is_exact(tmp_path):
    m = build_method("unet", "tiny")
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_method(m, tmp_path / "m.safetensors", step=7)
    m2 = load_method(path)
    assert m2.checkpoint_step == 7
    for (k, v), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    meta = read_metadata(path)
    assert meta["method"] == "unet" and meta["normalization"] == {"l": "L/50-1", "ab": "ab/110"}
    assert json.dumps(meta["config"])  # plain JSON


def test_model_loader_rejects_other_kinds(tmp_path):
    path = save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(1)}, {"kind": "training_state"})
    with pytest.raises(CheckpointError, match="not a model"):
        load_method(path)
