"""fewcolor.data.folder.ImageFolderDataset: labels, grey/bad skipping, scan cache, determinism."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate

import fewcolor.data.folder as folder_mod
from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.normalize import denormalize_ab, denormalize_l
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.splits import write_split
from fewcolor.data.transforms import eval_transform, train_transform
from fewcolor.io.image import ImageReadError


def _colour(path: Path, seed: int, size: tuple[int, int] = (12, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def _grey(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.tile(np.arange(16, dtype=np.uint8) * 16, (12, 1))).convert("RGB").save(path)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _colour(root / "cat" / "1.png", 1)
    _colour(root / "cat" / "2.jpg", 2)
    _colour(root / "dog" / "deep" / "3.png", 3)
    _grey(root / "dog" / "4.png")
    (root / "dog" / "5.png").write_bytes(b"not a png")
    _colour(root / "loose.png", 5)
    (root / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    return root


def test_emoji_fixture_samples(emoji_dir: Path) -> None:
    ds = ImageFolderDataset(emoji_dir)
    assert len(ds) == 30 and ds.num_grey == 0 and ds.bad_files == []
    assert ds.classes == sorted(["face-smiling", "plant-other", "heart", "animal-marine", "plant-flower",
                                 "food-vegetable"])
    assert ds.labels == [i // 5 for i in range(30)]  # 5 per class, classes sorted, paths sorted
    s = ds[7]
    assert set(s) == {"rgb", "l", "ab", "label", "index", "path"}
    assert s["rgb"].shape == (3, 64, 64) and s["l"].shape == (1, 64, 64) and s["ab"].shape == (2, 64, 64)
    assert s["index"] == 7 and s["label"] == 1 and s["path"] == ds.paths[7]
    assert not Path(s["path"]).is_absolute()
    lab = rgb_to_lab(s["rgb"])
    assert torch.allclose(denormalize_l(s["l"]), lab[:1], atol=1e-4)
    assert torch.allclose(denormalize_ab(s["ab"]), lab[1:], atol=1e-4)
    assert s["l"].min() >= -1 and s["l"].max() <= 1 and s["ab"].abs().max() <= 1.2


def test_labels_grey_and_bad_files(mixed: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fewcolor.data.folder"):
        ds = ImageFolderDataset(mixed)
    assert ds.classes == ["cat", "dog"]  # "empty" holds no image, "notes.txt" is no folder
    assert ds.paths == ["cat/1.png", "cat/2.jpg", "dog/deep/3.png", "loose.png"]
    assert ds.labels == [0, 0, 1, -1]
    assert ds.num_grey == 1
    assert ds.bad_files == ["dog/5.png"] and "not a recognised image format" in ds.bad_reasons["dog/5.png"]
    assert any("5.png" in r.getMessage() for r in caplog.records)

    keep = ImageFolderDataset(mixed, skip_grey=False)
    assert "dog/4.png" in keep.paths and keep.num_grey == 1 and len(keep) == 5


def test_split_file_and_paths_select_images_with_stable_labels(mixed: Path, tmp_path: Path) -> None:
    split = write_split(tmp_path / "val.txt", ["dog/deep/3.png", "cat/2.jpg"])
    ds = ImageFolderDataset(mixed, split_file=split)
    assert ds.paths == ["dog/deep/3.png", "cat/2.jpg"] and ds.labels == [1, 0]  # file order kept
    ds2 = ImageFolderDataset(mixed, paths=[mixed / "dog" / "deep" / "3.png"])
    assert ds2.paths == ["dog/deep/3.png"] and ds2.labels == [1] and ds2.classes == ["cat", "dog"]
    listed_missing = ImageFolderDataset(mixed, paths=["cat/1.png", "cat/gone.png"])
    assert listed_missing.bad_files == ["cat/gone.png"]
    with pytest.raises(ValueError, match="not both"):
        ImageFolderDataset(mixed, split_file=split, paths=["cat/1.png"])
    with pytest.raises(ValueError, match="not inside"):
        ImageFolderDataset(mixed, paths=[tmp_path / "elsewhere.png"])


def test_scan_is_cached_and_refreshed_per_file(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = folder_mod.read_rgb

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folder_mod, "read_rgb", counting)
    first = ImageFolderDataset(mixed)
    assert len(calls) == 6  # every candidate read once
    calls.clear()
    again = ImageFolderDataset(mixed)
    assert calls == [] and again.paths == first.paths and again.num_grey == 1
    assert again.bad_files == first.bad_files

    _grey(mixed / "cat" / "1.png")  # the file changes: rescanned, now grey
    st = (mixed / "cat" / "1.png").stat()
    os.utime(mixed / "cat" / "1.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = ImageFolderDataset(mixed)
    assert calls == ["1.png"] and "cat/1.png" not in changed.paths and changed.num_grey == 2
    calls.clear()
    ImageFolderDataset(mixed, scan_cache=False)
    assert len(calls) == 6


def test_same_seed_epoch_index_gives_same_sample(mixed: Path) -> None:
    t = train_transform(8)
    a = ImageFolderDataset(mixed, transform=t, seed=1)
    b = ImageFolderDataset(mixed, transform=t, seed=1)
    assert torch.equal(a[2]["rgb"], b[2]["rgb"]) and a[2]["rgb"].shape == (3, 8, 8)
    first = [a[i]["rgb"] for i in range(len(a))]
    a.set_epoch(1)
    second = [a[i]["rgb"] for i in range(len(a))]
    assert any(not torch.equal(x, y) for x, y in zip(first, second, strict=True))
    a.set_epoch(0)
    assert all(torch.equal(x, a[i]["rgb"]) for i, x in enumerate(first))
    c = ImageFolderDataset(mixed, transform=t, seed=2)
    assert any(not torch.equal(first[i], c[i]["rgb"]) for i in range(len(c)))


def test_batched_collate_equals_collated_samples(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, transform=train_transform(8), seed=3, cache=True)
    ds.set_epoch(2)
    indices = [3, 0, 2, 0, -1]
    batch = ds.collate(indices)
    reference = default_collate([ds[i] for i in indices])
    assert set(batch) == set(reference)
    assert torch.equal(batch["rgb"], reference["rgb"])  # the same crops and flips
    for key in ("l", "ab"):  # one conversion of the stack: equal up to float rounding
        assert batch[key].shape == reference[key].shape
        assert torch.allclose(batch[key], reference[key], atol=1e-6, rtol=0)
    assert torch.equal(batch["label"], reference["label"]) and torch.equal(batch["index"], reference["index"])
    assert batch["index"].tolist() == [3, 0, 2, 0, 3] and batch["path"] == reference["path"]
    with pytest.raises(IndexError):
        ds.collate([0, 4])


def test_collate_of_unequal_sizes_fails_like_default_collate(mixed: Path) -> None:
    _colour(mixed / "cat" / "6.png", 6, size=(20, 20))  # the others are 12×16
    ds = ImageFolderDataset(mixed)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        ds.collate(list(range(len(ds))))


def test_memory_cache_reads_each_file_once(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = ImageFolderDataset(mixed, cache=True, transform=eval_transform(8))
    calls: list[str] = []
    real = folder_mod.read_rgb
    monkeypatch.setattr(folder_mod, "read_rgb", lambda p, **kw: calls.append(str(p)) or real(p, **kw))
    x = ds[0]["rgb"]
    assert torch.equal(ds[0]["rgb"], x) and len(calls) == 1


def test_plain_callable_transform_and_collate(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, transform=lambda img: img[:, :8, :8])
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["rgb"].shape == (4, 3, 8, 8) and batch["l"].shape == (4, 1, 8, 8)
    assert batch["label"].tolist() == [0, 0, 1, -1] and batch["path"][0] == "cat/1.png"
    assert ds[-1]["index"] == 3
    with pytest.raises(IndexError):
        ds[4]


def test_empty_folder_error_names_folder_and_contents(tmp_path: Path) -> None:
    root = tmp_path / "nothing_here"
    root.mkdir()
    (root / "a.txt").write_text("x")
    (root / "b.txt").write_text("x")
    (root / "c.csv").write_text("x")
    with pytest.raises(ValueError, match=r"nothing_here: no usable images .* 2 \.txt, 1 \.csv"):
        ImageFolderDataset(root)
    _grey(root / "g.png")
    # advice a command-line user can follow: there is no flag for the Python argument skip_grey
    with pytest.raises(ValueError, match=r"1 grey \(skipped: grey images carry no colour to learn from; give colour "
                                         r"images\)$") as err:
        ImageFolderDataset(root)
    assert "skip_grey" not in str(err.value)
    assert len(ImageFolderDataset(root, skip_grey=False)) == 1  # what the docstring tells a Python caller
    with pytest.raises(FileNotFoundError, match="missing"):
        ImageFolderDataset(tmp_path / "missing")


def test_scan_progress_bar_for_big_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "many"
    for i in range(folder_mod._PROGRESS_MIN_FILES):
        _colour(root / f"{i:03d}.png", i, size=(4, 4))
    ImageFolderDataset(root, scan_cache=False)
    assert "scanning many" in capsys.readouterr().err


def test_cache_holds_resized_copies_and_keeps_samples_identical(mixed: Path) -> None:
    t = train_transform(8)
    plain = ImageFolderDataset(mixed, transform=t, seed=3, scan_cache=False)
    cached = ImageFolderDataset(mixed, transform=t, seed=3, cache=True, scan_cache=False)
    for epoch in (0, 1, 0):  # the second pass over epoch 0 comes from the cache
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["ab"], b["ab"])
    # the 12×16 images are held at the Resize's 8×11, and read() still gives the full decode
    assert {tuple(x.shape) for x in cached._memory.values()} == {(3, 8, 11)}
    assert cached.read(0).shape == (3, 12, 16)


def test_cache_budget_stops_caching_not_reading(mixed: Path) -> None:
    one = 3 * 8 * 11 * 4  # bytes of one cached 8×11 float image
    ds = ImageFolderDataset(mixed, transform=train_transform(8), cache=True, cache_bytes=2 * one, scan_cache=False)
    samples = [ds[i]["rgb"] for i in range(len(ds))]
    assert len(ds._memory) == 2
    assert all(torch.equal(ds[i]["rgb"], s) for i, s in enumerate(samples))


# ------------------------------------------------------------------ files that go bad after the scan


def _zero_keeping_size_and_time(path: Path) -> None:
    """Overwrite ``path`` with zeros of its own size and give it back its mtime: the scan cache cannot tell."""
    st = path.stat()
    path.write_bytes(bytes(st.st_size))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _skip_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "training goes on with another image" in r.getMessage()]


def test_an_image_broken_after_the_scan_is_replaced_warned_once_and_never_read_again(
        mixed: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    ImageFolderDataset(mixed)  # the scan is cached with the file still good
    ds = ImageFolderDataset(mixed)
    bad = ds.paths.index("cat/2.jpg")
    _zero_keeping_size_and_time(mixed / "cat" / "2.jpg")
    with caplog.at_level(logging.WARNING, logger="fewcolor.data.folder"):
        sample = ds[bad]
        batch = ds.collate(list(range(len(ds))))
    assert sample["path"] != "cat/2.jpg" and sample["label"] == ds.labels[sample["index"]]
    assert torch.equal(sample["rgb"], ds[sample["index"]]["rgb"])  # the replacement's own sample
    assert "cat/2.jpg" not in batch["path"] and batch["rgb"].shape == (4, 3, 12, 16)
    assert batch["path"][bad] == sample["path"]  # the same replacement each time (same seed and epoch)
    assert ds.failed_reads == {"cat/2.jpg": "not a recognised image format (Pillow cannot identify it)"}
    lines = _skip_lines(caplog)
    assert len(lines) == 1 and str(mixed / "cat" / "2.jpg") in lines[0] and "\n" not in lines[0]

    calls: list[str] = []
    real = folder_mod.read_rgb
    monkeypatch.setattr(folder_mod, "read_rgb", lambda p, **kw: calls.append(Path(p).name) or real(p, **kw))
    ds[bad]
    assert "2.jpg" not in calls  # marked bad: never tried again


def test_a_deleted_image_is_replaced_and_read_gives_the_replacement_too(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, transform=eval_transform(8))
    (mixed / "loose.png").unlink()
    gone = ds.paths.index("loose.png")
    sample = ds[gone]
    assert sample["path"] != "loose.png" and "file not found" in ds.failed_reads["loose.png"]
    assert torch.equal(ds.read(gone), ds.read(sample["index"]))


def test_replacements_depend_on_seed_and_bad_files_not_on_which_failed_first(mixed: Path) -> None:
    first = ImageFolderDataset(mixed, seed=5)
    second = ImageFolderDataset(mixed, seed=5)
    other_seed = ImageFolderDataset(mixed, seed=6)  # opened before the files go, as the other two
    (mixed / "cat" / "1.png").unlink()
    (mixed / "dog" / "deep" / "3.png").unlink()
    first.collate([0, 2])  # the two failures found in one order...
    second.collate([2, 0])  # ...and in the other
    for epoch in range(4):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        assert first.collate([0, 1, 2, 3])["path"] == second.collate([0, 1, 2, 3])["path"]
        assert set(first.collate([0, 2])["path"]) <= {"cat/2.jpg", "loose.png"}

    def replacements(ds: ImageFolderDataset) -> list[str]:
        picks = []
        for epoch in range(8):
            ds.set_epoch(epoch)
            picks += ds.collate([0, 2])["path"]
        return picks

    assert replacements(first) != replacements(other_seed), "the replacements do not follow the seed"


def test_when_no_image_can_be_read_the_error_is_one_line_naming_the_folder(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed)
    for rel in ds.paths:
        (mixed / rel).unlink()
    with pytest.raises(ImageReadError, match=r"none of its 4 images can be read any more") as info:
        ds.collate([0, 1])
    assert str(mixed) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ImageReadError, match="none of its 4 images"):
        ds[3]  # asked again: the same error, no endless search


def test_a_folder_gone_is_given_up_after_a_few_failures_in_a_row_and_other_errors_are_not_blamed_on_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    for i in range(folder_mod.MAX_FAILED_IN_A_ROW + 8):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    ds = ImageFolderDataset(tmp_path, scan_cache=False)
    for rel in ds.paths:
        (tmp_path / rel).unlink()
    with pytest.raises(ImageReadError, match=f"{folder_mod.MAX_FAILED_IN_A_ROW} images in a row cannot be read"):
        ds[0]
    assert len(ds.failed_reads) == folder_mod.MAX_FAILED_IN_A_ROW  # not all 24 tried

    fresh = ImageFolderDataset(Path(__file__).parent / "fixtures" / "emoji", scan_cache=False)

    def no_file_handles(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(folder_mod, "read_rgb", no_file_handles)
    with pytest.raises(OSError, match="Too many open files"):
        fresh[0]
    assert fresh.failed_reads == {}, "a machine's error marked a good file as bad"


def test_a_broken_image_is_neither_kept_in_memory_nor_left_good_in_the_scan_cache(mixed: Path) -> None:
    ds = ImageFolderDataset(mixed, cache=True, transform=eval_transform(8))
    bad = ds.paths.index("cat/1.png")
    _zero_keeping_size_and_time(mixed / "cat" / "1.png")
    used = ds[bad]["index"]
    assert bad not in ds._memory and used in ds._memory
    # the next opening reads the file again instead of trusting its unchanged size and time
    reopened = ImageFolderDataset(mixed)
    assert "cat/1.png" in reopened.bad_files and "cat/1.png" not in reopened.paths


def test_training_goes_on_past_an_image_broken_after_the_scan(emoji_dir: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    from fewcolor.methods.registry import build_method
    from fewcolor.train.loop import TrainOptions, train

    data = tmp_path / "rot"
    for cls in ("heart", "plant-flower"):
        shutil.copytree(emoji_dir / cls, data / cls)
    method = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    dataset = ImageFolderDataset(data, transform=method.train_transform(16), cache=True)
    broken = data / dataset.paths[1]
    _zero_keeping_size_and_time(broken)
    opts = TrainOptions(out_dir=tmp_path / "run", steps=4, batch_size=len(dataset), checkpoint_every=0,
                        sample_every=0, progress=False, tensorboard=False)
    with caplog.at_level(logging.WARNING, logger="fewcolor.data.folder"):
        result = train(method, dataset, opts)
    assert result.step == 4 and (tmp_path / "run" / "model.safetensors").is_file()
    assert [line for line in _skip_lines(caplog) if str(broken) in line]
