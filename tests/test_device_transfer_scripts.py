"""scripts/pack_train_folder.py and scripts/join_safetensors.py: the base run's data and weights through the
device tool's transfer limits, unchanged where it matters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from helpers import load_script

pack_script = load_script("pack_train_folder")
join_script = load_script("join_safetensors")


def _write_image(path: Path, size: tuple[int, int], seed: int, fmt: str = "JPEG") -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt)


def test_pack_downsizes_copies_small_jpegs_and_splits_into_parts(tmp_path: Path) -> None:
    source = tmp_path / "train"
    _write_image(source / "photos" / "big.jpg", (300, 200), 0)
    _write_image(source / "photos" / "wide.png", (400, 160), 1, fmt="PNG")
    _write_image(source / "tiny" / "a" / "small.jpg", (64, 64), 2)
    (source / "tiny" / "broken.jpg").write_bytes(b"not an image")
    counts, skipped = pack_script.pack(source, tmp_path / "out", short_side=144, quality=85, part_bytes=20_000)
    assert skipped == 1 and sum(counts) == 3 and len(counts) >= 2  # noise images compress badly: several parts
    packed = {p.name: p for p in (tmp_path / "out").rglob("*.jpg")}
    assert set(packed) == {"big.jpg", "wide.jpg", "small.jpg"}
    with Image.open(packed["big.jpg"]) as im:
        assert im.size == (216, 144)  # shorter side 144, aspect kept
    with Image.open(packed["wide.jpg"]) as im:
        assert im.size == (360, 144) and im.format == "JPEG"
    # a JPEG already small enough travels byte for byte, at its relative path under some part
    assert packed["small.jpg"].read_bytes() == (source / "tiny" / "a" / "small.jpg").read_bytes()
    assert packed["small.jpg"].relative_to(packed["small.jpg"].parents[2]).as_posix() == "tiny/a/small.jpg"
    assert {p.name for p in (tmp_path / "out").iterdir()} == {f"part-{i}" for i in range(1, len(counts) + 1)}


def test_split_then_join_gives_back_every_tensor_and_the_metadata(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    tensors = {f"layer{i}.weight": torch.randn(64, 64 + i, generator=g) for i in range(6)}
    tensors["buffer"] = torch.arange(5)
    source = tmp_path / "model.safetensors"
    save_file(tensors, str(source), metadata={"fewcolor": '{"method": "base"}'})
    pieces = join_script.split(source, tmp_path / "pieces", max_bytes=40_000)
    assert len(pieces) >= 3 and all(p.stat().st_size < 40_000 + 4_096 for p in pieces)
    joined = tmp_path / "joined.safetensors"
    assert join_script.join(list(reversed(pieces)), joined) == len(tensors)
    back = load_file(str(joined))
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    with safe_open(str(joined), "pt") as f:
        assert f.metadata() == {"fewcolor": '{"method": "base"}'}


def test_join_refuses_pieces_of_different_files_and_repeated_tensors(tmp_path: Path) -> None:
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"x": torch.zeros(2)}, str(a), metadata={"run": "1"})
    save_file({"y": torch.zeros(2)}, str(b), metadata={"run": "2"})
    with pytest.raises(SystemExit, match="metadata differ"):
        join_script.join([a, b], tmp_path / "out.safetensors")
    save_file({"x": torch.ones(2)}, str(b), metadata={"run": "1"})
    with pytest.raises(SystemExit, match="tensor x is in an earlier piece"):
        join_script.join([a, b], tmp_path / "out.safetensors")
