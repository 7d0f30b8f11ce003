from fewcolor import pretrained


def test_bundled_model_path_is_the_file_when_present(tmp_path, monkeypatch):
    target = tmp_path / "weights" / "base.safetensors"
    monkeypatch.setattr(pretrained, "BUNDLED_MODEL", target)
    assert pretrained.bundled_model_path() is None
    target.parent.mkdir()
    target.write_bytes(b"x")
    assert pretrained.bundled_model_path() == target
