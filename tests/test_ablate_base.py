"""scripts/ablate_base.py: the base colorizer's ablation commands and its validation subset."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from helpers import load_script


def _module() -> ModuleType:
    return load_script("ablate_base")


@pytest.mark.parametrize(("bf16", "estimate"), [(True, "about 1.1 h of training on a 2-core CPU with native bf16"),
                                               (False, "about 1.9 h of training on a 2-core CPU in fp32")])
def test_dry_run_prints_one_resumable_training_per_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bf16: bool, estimate: str
) -> None:
    ablate = _module()
    monkeypatch.setattr(ablate, "native_bf16", lambda device: bf16)
    assert ablate.main(["-o", str(tmp_path), "--steps", "500", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"9 variants × 500 steps: {estimate}")  # 9 × 500 × 0.9 s or × 1.53 s
    commands = {line.split(" -o ")[1].split()[0]: line for line in lines[1:]}
    assert set(commands) == {str(tmp_path / v) for v in ablate.VARIANTS}
    # every variant departs from the first bundle's recipe (λ 0.5), unless it varies λ itself
    assert commands[str(tmp_path / "full")].endswith("--batch-size 32 --set lam=0.5")
    assert commands[str(tmp_path / "l1-only")].endswith("--steps 500 --batch-size 32 --set lam=0.5 --set ce_weight=0")
    assert commands[str(tmp_path / "no-rebalancing")].endswith("--batch-size 32 --set lam=1")
    random = commands[str(tmp_path / "encoder-random")]
    assert "--set lam=0.5 --set encoder_pretrained=false --set freeze_encoder=false --set encoder_lr_scale=1" in random
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_unknown_variant_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _module().main(["--only", "full,no-such", "--dry-run"])
    assert exc.value.code == 2
    assert "unknown variant(s) no-such; choose from full, no-global-fusion" in capsys.readouterr().err


def test_val_subset_links_the_first_photos_of_each_class(emoji_dir: Path, tmp_path: Path) -> None:
    ablate = _module()
    out = ablate.val_subset(emoji_dir, 2, tmp_path / "sub")
    assert ablate.val_subset(emoji_dir, 2, tmp_path / "sub") == out  # again: the links are kept
    classes = sorted(p.name for p in emoji_dir.iterdir() if p.is_dir())
    assert sorted(p.name for p in out.iterdir()) == classes
    for cls in classes:
        linked = sorted(out.glob(f"{cls}/*"))
        assert [p.name for p in linked] == sorted(p.name for p in (emoji_dir / cls).iterdir())[:2]
        assert all(p.is_symlink() and p.resolve().parent == (emoji_dir / cls).resolve() for p in linked)
    with pytest.raises(SystemExit, match="is not a folder of Imagenette val classes"):
        ablate.val_subset(tmp_path / "missing", 2, tmp_path / "sub2")
