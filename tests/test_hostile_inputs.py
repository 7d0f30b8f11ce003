"""Issue 15: what a careless or hostile user can do, and what fewcolor does now (docs/RELIABILITY.md).

Every case of the audit is a test here: no traceback, one ``Error:`` line naming the option or file,
exit 2 for a usage mistake and 1 for a failure, no input ever overwritten, bounded memory. The fuzz
test at the end mutates real PNG/JPEG/GIF/WebP files and runs them through the reader, ``colorize``
and ``evaluate``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fewcolor.cli import main
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.hardware import cpu_bf16_flags, cpu_has_native_bf16, resolve_device, resolve_precision
from fewcolor.io.atomic import write_text_atomic
from fewcolor.io.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from fewcolor.io.image import ImageReadError, read_rgb, reduction_factor, write_rgb
from fewcolor.io.paths import output_paths
from fewcolor.methods.registry import build_method, load_method, save_method
from helpers import error_line as _error_line
from helpers import run_cli as _cli

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------- helpers
@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_method(build_method("unet", "tiny"), tmp_path / "model" / "tiny.safetensors")


def _photo(path: Path, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _train_args(data: Path, out: Path, *extra: object) -> list[object]:
    return ["train", "--method", "unet", "--preset", "tiny", "--data", data, "-o", out, "--batch-size", 2,
            "--sample-every", 0, "--size", 16, *extra]


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i in range(4):
        _photo(root / f"p{i}.png", seed=i)
    return root


# --------------------------------------------------------------------- 1, 2: inputs and name collisions
def test_colorize_into_its_own_input_folder_is_refused_and_overwrites_nothing(tmp_path, tiny_model):
    inp = tmp_path / "in"
    _photo(inp / "a.png", seed=1)
    _photo(inp / "a.jpg", seed=2)
    before = _digest(inp)
    code, out = _cli(["colorize", tiny_model, inp, "-o", inp])
    assert code == 2 and "inside the input folder" in _error_line(out)
    assert _digest(inp) == before
    code, out = _cli(["colorize", tiny_model, inp, "-o", inp / "sub"])
    assert code == 2 and _digest(inp) == before
    # told to: outputs go beside the inputs under names that replace none of them
    code, out = _cli(["colorize", tiny_model, inp, "-o", inp, "--inside-input"])
    assert code == 0 and "colorized 2 of 2" in out
    after = _digest(inp)
    assert {k: after[k] for k in before} == before
    assert {"a_png.png", "a_jpg.png"} <= set(after)


def test_names_that_collide_up_to_the_extension_all_get_an_output(tmp_path, tiny_model):
    inp = tmp_path / "in"
    for i, name in enumerate(["a.png", "a.jpg", "img.tiff", "img.webp", "solo.jpg"]):
        _photo(inp / name, seed=i)
    code, out = _cli(["colorize", tiny_model, inp, "-o", tmp_path / "out"])
    assert code == 0 and "colorized 5 of 5" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_jpg.png", "a_png.png", "img_tiff.png", "img_webp.png", "solo.png"]
    assert "renamed a.jpg -> a_jpg.png" in out


def test_output_paths_never_reuse_a_name_or_an_input():
    items = [(Path("/d/a.png"), Path("a.png")), (Path("/d/a.jpg"), Path("a.jpg")),
             (Path("/d/a_png.png"), Path("a_png.png")), (Path("/d/A.PNG"), Path("A.PNG"))]
    plans = output_paths(items, "/d")
    names = [p.paths[0] for p in plans]
    assert len({str(n).casefold() for n in names}) == len(names)
    assert not {str(n).casefold() for n in names} & {str(s).casefold() for s, _ in items}
    variants = output_paths([(Path("/x/a.png"), Path("a.png")), (Path("/x/a_v1.png"), Path("a_v1.png"))],
                            "/o", variants=2)
    flat = [p for plan in variants for p in plan.paths]
    assert len(set(flat)) == 4


def test_evaluate_refuses_to_write_where_it_reads(tmp_path, tiny_model):
    work = tmp_path / "W"
    _photo(work / "pred" / "a.png", size=(40, 40))
    _photo(work / "truth" / "a.png", size=(40, 40), seed=3)
    before = _digest(work)
    code, out = _cli(["evaluate", tiny_model, "--data", work / "pred", "-o", work, "--no-fid"])
    assert code == 2 and "input folder" in _error_line(out)
    code, out = _cli(["evaluate", "--pred", work / "pred", "--truth", work / "truth", "-o", work / "truth" / "r",
                      "--no-fid"])
    assert code == 2 and "truth" in _error_line(out)
    assert _digest(work) == before


def test_evaluate_matches_colliding_truth_names_like_colorize_names_them(tmp_path):
    from fewcolor.metrics.evaluate import pair_folders

    truth, pred = tmp_path / "truth", tmp_path / "pred"
    for name in ("a.png", "a.jpg", "b.jpg"):
        _photo(truth / name)
    for name in ("a_png.png", "a_jpg.png", "b.png"):
        _photo(pred / name)
    pairs = {name: (p.name, t.name) for name, p, t in pair_folders(pred, truth)[0]}
    assert pairs == {"a_png": ("a_png.png", "a.png"), "a_jpg": ("a_jpg.png", "a.jpg"), "b": ("b.png", "b.jpg")}


# ------------------------------------------------------------------------------ 3: evaluate per file
def test_evaluate_reports_and_skips_bad_pairs(tmp_path, lpips_weights):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    for name in ("good", "corrupt", "tiny", "small", "resized"):
        _photo(truth / f"{name}.png", size=(40, 40) if name not in ("tiny", "small") else
               ((1, 1) if name == "tiny" else (20, 20)))
        _photo(pred / f"{name}.png", size=(40, 40) if name not in ("tiny", "small", "resized") else
               ((1, 1) if name == "tiny" else (20, 20) if name == "small" else (30, 30)))
    (pred / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out = _cli(["evaluate", "--pred", pred, "--truth", truth, "-o", tmp_path / "r", "--no-fid"])
    assert code == 0 and "1 images scored, 4 skipped" in out
    for name in ("corrupt", "tiny", "small", "resized"):
        assert f"skipped {name}" in out
    assert "30x30 but the truth is 40x40" in out  # never stretched silently
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert [r["name"] for r in saved["per_image"]] == ["good"] and len(saved["skipped"]) == 4


def test_evaluate_with_a_bad_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    _photo(tmp_path / "d" / "a.png")
    code, out = _cli(["evaluate", bad, "--data", tmp_path / "d", "-o", tmp_path / "r", "--no-fid"])
    assert code == 1 and "bad.safetensors" in _error_line(out)


# ---------------------------------------------------------------------------------- 4: bounded memory
def test_pixel_budget_reduces_on_decode(tmp_path):
    src = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (200, 100, 50)).save(src)
    out = read_rgb(src, pixel_budget=1_000_000)
    assert out.shape == (3, 667, 1000)  # reduced by 3, the smallest factor within the budget
    assert torch.allclose(out[:, 0, 0], torch.tensor([200, 100, 50]) / 255)
    assert reduction_factor(10000, 9980, 24_000_000) == 3
    jpeg = tmp_path / "big.jpg"
    Image.new("RGB", (3000, 2000), (200, 100, 50)).save(jpeg)
    assert read_rgb(jpeg, pixel_budget=1_000_000).shape == (3, 500, 750)  # DCT scaling 1/2, then reduce 2


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from Linux's /proc")
def test_peak_memory_of_a_huge_sparse_png_stays_bounded(tmp_path):
    """A 24-megapixel PNG of ~25 KB: within a 1 MP budget the process grows by little, without it by its
    float32 size (the second read shows that the measurement sees a full decode)."""
    src = tmp_path / "huge.png"
    Image.new("L", (6000, 4000), 120).save(src)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec from the forking process, so after
    # a test that grew pytest past this child's peak the measurement saw nothing
    code = (
        "from fewcolor.io.image import read_rgb\n"
        "def peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:')) // 1024\n"
        "base = peak()\n"
        f"t = read_rgb({str(src)!r}, pixel_budget=1_000_000)\n"
        "budgeted = peak() - base\n"
        f"full = read_rgb({str(src)!r}, pixel_budget=None)\n"
        "print(tuple(t.shape), budgeted, peak() - base)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    shape, rest = res.stdout.split(")", 1)
    budgeted_mb, full_mb = map(int, rest.split())
    assert shape + ")" == "(3, 800, 1200)", res.stderr  # reduced by 5
    # the full decode's float32 result alone is 288 MB; the import's high-water mark can hide part of it
    assert full_mb > 150, f"a full decode grew the process by {full_mb} MB only: the measurement is blind"
    assert budgeted_mb < 100, f"decoding within the budget grew the process by {budgeted_mb} MB"


def test_long_thin_strips_are_skipped_in_training_data(tmp_path):
    root = tmp_path / "data"
    _photo(root / "ok.png")
    Image.fromarray((np.random.default_rng(0).random((1, 20000, 3)) * 255).astype(np.uint8)).save(root / "strip.png")
    ds = ImageFolderDataset(root, scan_cache=False)
    assert ds.paths == ["ok.png"] and "strip" in ds.bad_reasons["strip.png"]


# ------------------------------------------------------------- 5, 6: one line for every ordinary mistake
@pytest.mark.parametrize(
    "extra,code,needle",
    [
        (["--batch-size", 0], 2, "--batch-size"),
        (["--size", 7], 2, "--size"),
        (["--size", 0], 2, "--size"),
        (["--size", 100000], 2, "--size"),
        (["--size", 24], 2, "multiple of 16"),
        (["--set", "lr=abc"], 2, "lr takes float"),
        (["--set", "base_channels=0"], 2, "channel count"),
        (["--device", "banana"], 2, "--device"),
        (["--steps", -1], 2, "--steps"),
        (["--steps", 0], 2, "--steps"),
        (["--epochs", -2], 2, "--epochs"),
        (["--precision", "fp8"], 2, "--precision"),
    ],
)
def test_train_option_mistakes(tmp_path, photos, extra, code, needle):
    got, out = _cli(_train_args(photos, tmp_path / "run", "--steps", 1, *extra))
    assert got == code and needle in _error_line(out)
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("field,value", [("steps", 0), ("steps", -1), ("epochs", -2.0), ("batch_size", 0)])
def test_train_options_refuse_nonsense_in_the_library_too(tmp_path, field, value):
    from fewcolor.train.loop import TrainOptions, train
    from helpers import TensorColourDataset, smooth_colour_images

    kwargs = {"steps": None if field == "epochs" else 1, field: value}
    opts = TrainOptions(out_dir=tmp_path / "run", progress=False, tensorboard=False, sample_every=0, **kwargs)
    with pytest.raises(ValueError, match=field):
        train(build_method("unet", "tiny"), TensorColourDataset(smooth_colour_images(2, 16)), opts)
    assert not (tmp_path / "run").exists()


def test_device_cuda_without_cuda(tmp_path, photos):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out = _cli(_train_args(photos, tmp_path / "run", "--steps", 1, "--device", "cuda"))
    assert code == 2 and "no CUDA" in _error_line(out)


def test_empty_data_and_non_split_file(tmp_path, photos):
    (tmp_path / "empty").mkdir()
    code, out = _cli(_train_args(tmp_path / "empty", tmp_path / "run", "--steps", 1))
    assert code == 1 and "empty" in _error_line(out)
    code, out = _cli(_train_args(photos, tmp_path / "run", "--steps", 1, "--split", photos / "p0.png"))
    assert code == 1 and "not a split file" in _error_line(out)


def test_resume_with_other_settings_is_refused(tmp_path, photos):
    run = tmp_path / "run"
    assert _cli(_train_args(photos, run, "--steps", 2))[0] == 0
    for extra in (["--batch-size", 1], ["--seed", 5], ["--size", 32], ["--set", "lr=0.1"]):
        code, out = _cli([*_train_args(photos, run, "--steps", 3, "--resume"), *extra])
        assert code == 1 and "other settings" in _error_line(out), extra
    code, out = _cli(["train", "--method", "cgan", "--preset", "tiny", "--data", photos, "-o", run, "--steps", 3,
                      "--resume", "--size", 16, "--sample-every", 0, "--batch-size", 2])
    assert code == 1 and "--method 'unet' -> 'cgan'" in _error_line(out)
    assert json.loads((run / "run.json").read_text())["options"]["batch_size"] == 2  # not rewritten


def test_resume_from_a_corrupt_checkpoint(tmp_path, photos):
    run = tmp_path / "run"
    assert _cli(_train_args(photos, run, "--steps", 2))[0] == 0
    last = run / "checkpoints" / "last.safetensors"
    previous = run / "checkpoints" / "last.prev.safetensors"
    last.write_bytes(last.read_bytes()[:100])
    code, out = _cli(_train_args(photos, run, "--steps", 3, "--resume"))  # the state saved before it takes over
    assert code == 0 and "resuming from the checkpoint before it" in out and "(step 0)" in out, out
    for damaged in (last, previous):
        damaged.write_bytes(damaged.read_bytes()[:100])
    code, out = _cli(_train_args(photos, run, "--steps", 4, "--resume"))
    assert code == 1 and "last.safetensors" in _error_line(out) and "start over" in out


def test_checkpoint_metadata_of_wrong_types(tmp_path, tiny_model):
    meta = read_metadata(tiny_model)
    tensors, _ = load_checkpoint(tiny_model)
    for key, value in (("step", "abc"), ("config", [1, 2]), ("method", 5), ("method_extra", "x")):
        bad = tmp_path / f"bad_{key}.safetensors"
        save_checkpoint(bad, tensors, {**meta, key: value})
        code, out = _cli(["info", bad])
        assert code == 1 and key in _error_line(out)
        code, out = _cli(["colorize", bad, _photo(tmp_path / "x.png"), "-o", tmp_path / "o"])
        assert code == 1 and bad.name in _error_line(out)
    save_checkpoint(tmp_path / "cfg.safetensors", tensors, {**meta, "config": {"base_channels": "eight"}})
    with pytest.raises(CheckpointError, match="base_channels"):
        load_method(tmp_path / "cfg.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "list.safetensors"), metadata={"fewcolor": "[1, 2]"})
    code, out = _cli(["info", tmp_path / "list.safetensors"])
    assert code == 1 and "not an object" in _error_line(out)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["bench", "tinyimagenet-fs-k5", "--methods", "nope", "--smoke"], "--methods"),
        (["bench", "tinyimagenet-fs-k5", "--methods", "unet@nope", "--smoke"], "no preset"),
        (["bench", "tinyimagenet-fs-k5", "--methods", "unet", "--seeds", "a,b"], "--seeds"),
        (["bench", "tinyimagenet-fs-k5", "--methods", "unet", "--set", "unet.lr=abc"], "lr takes float"),
        (["bench", "nope-protocol", "--methods", "unet"], "nope-protocol"),
    ],
)
def test_bench_mistakes(tmp_path, args, needle):
    code, out = _cli([*args, "-o", tmp_path / "res", "--results-md", tmp_path / "R.md"])
    assert code == 2 and needle in _error_line(out)
    assert not (tmp_path / "res").exists()


def test_cluster_and_evaluate_and_colorize_option_mistakes(tmp_path, photos, tiny_model):
    code, out = _cli(["cluster", photos, "--k", 2, "--backbone", "nope:x", "-o", tmp_path / "c"])
    assert code == 2 and "--backbone" in _error_line(out)
    code, out = _cli(["evaluate", "--pred", photos, "--truth", photos, "-o", tmp_path / "e", "--size", -5])
    assert code == 2 and "--size" in _error_line(out)
    for size in (0, -64):
        code, out = _cli(["colorize", tiny_model, photos, "-o", tmp_path / "o", "--size", size])
        assert code == 2 and "--size" in _error_line(out)
    code, out = _cli(["colorize", tiny_model, photos, "-o", tmp_path / "o", "--device", "cuda:7"])
    assert code == 2 and "--device" in _error_line(out)


# -------------------------------------------------------------------------------- 7: weight integrity
def test_flipped_bytes_and_nan_weights_are_refused(tmp_path, tiny_model):
    data = bytearray(tiny_model.read_bytes())
    data[-10] ^= 0xFF  # a byte of the last tensor's data, not of the header
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(flipped)
    code, out = _cli(["colorize", flipped, _photo(tmp_path / "x.png"), "-o", tmp_path / "o"])
    assert code == 1 and "checksum" in _error_line(out)

    method = load_method(tiny_model)
    with torch.no_grad():
        next(method.parameters()).fill_(float("nan"))
    nan_model = save_method(method, tmp_path / "nan.safetensors")
    code, out = _cli(["colorize", nan_model, tmp_path / "x.png", "-o", tmp_path / "o"])
    assert code == 1 and "NaN" in _error_line(out)


# ------------------------------------------------------------------------------------ 8: non-UTF-8 names
def _non_utf8_folder(tmp_path: Path) -> Path:
    root = tmp_path / "latin1"
    root.mkdir()
    try:
        for i, raw in enumerate((b"caf\xe9.png", b"\xff\xfe.png", b"ok.png")):
            _photo(Path(os.fsdecode(os.fsencode(root) + b"/" + raw)), size=(40, 40), seed=i)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    return root


def test_non_utf8_file_names_in_cluster_and_evaluate(tmp_path, tiny_model, lpips_weights):
    root = _non_utf8_folder(tmp_path)
    code, out = _cli(["cluster", root, "--k", 2, "--pca-dim", 2, "--feature-size", 32, "-o", tmp_path / "c"])
    assert code == 0, out
    rows = (tmp_path / "c" / "assignments.csv").read_bytes().splitlines()
    assert any(b"caf\xe9.png" in r for r in rows)  # the exact bytes: each row names its file
    code, out = _cli(["evaluate", tiny_model, "--data", root, "-o", tmp_path / "e", "--no-fid"])
    assert code == 0 and "3 images scored" in out
    assert (tmp_path / "e" / "report.html").exists()


# ---------------------------------------------------------------------------------------- 9: the umask
@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        write_rgb(tmp_path / "a.png", torch.rand(3, 4, 4))
        write_text_atomic(tmp_path / "a.txt", "x")
        save_checkpoint(tmp_path / "a.safetensors", {"w": torch.zeros(1)}, {})
    finally:
        os.umask(old)
    for name in ("a.png", "a.txt", "a.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_rewriting_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "new"


# ------------------------------------------------------------------------- 10: resume, signals, FIFOs
def test_no_duplicate_log_rows_after_a_kill(tmp_path, photos):
    run = tmp_path / "run"
    args = [*_train_args(photos, run), "--checkpoint-every", 2]
    assert _cli([*args, "--steps", 2])[0] == 0  # log rows for steps 1..2 (log_every=10: only the last)
    log_csv = run / "log.csv"
    header = log_csv.read_text().splitlines()[0]
    # a kill -9 after the row of step 3 was logged (no checkpoint yet) and in the middle of step 4's
    with log_csv.open("a") as f:
        f.write("3," + ",".join("0.5" for _ in header.split(",")[1:]) + "\n4,0.")
    assert _cli([*args, "--steps", 4, "--resume"])[0] == 0
    steps = [line.split(",")[0] for line in log_csv.read_text().splitlines()[1:]]
    assert steps == ["2", "4"]


def test_ctrl_c_saves_the_state_then_stops(tmp_path, photos):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "fewcolor", "train", "--method", "unet", "--preset", "tiny", "--data", str(photos),
           "-o", str(run), "--steps", "100000", "--batch-size", "2", "--size", "16", "--sample-every", "0",
           "--checkpoint-every", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 90
    log_csv = run / "log.csv"
    while time.time() < deadline and proc.poll() is None and (
            not log_csv.exists() or len(log_csv.read_text().splitlines()) < 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted by SIGINT" in out and "--resume" in out and "Traceback" not in out
    step = read_metadata(run / "checkpoints" / "last.safetensors")["step"]
    assert step >= 10  # the log row of step 10 existed before the signal: nothing since the last save is lost
    assert not (run / "model.safetensors").exists()


def test_a_fifo_named_png_is_refused_not_waited_on(tmp_path, tiny_model):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "in" / "pipe.png"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    _photo(tmp_path / "in" / "ok.png")
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_rgb(fifo)
    code, out = _cli(["colorize", tiny_model, fifo, tmp_path / "in" / "ok.png", "-o", tmp_path / "o"])
    assert code == 0 and "colorized 1 of 2" in out and "pipe.png: not a regular file" in out


# ---------------------------------------------------------------------------------- 11: precision
def test_bf16_is_native_only_with_avx512_bf16_or_amx(tmp_path):
    assert not cpu_has_native_bf16(capability="AVX2", flags=[])
    assert not cpu_has_native_bf16(capability="AVX512", flags=[])
    assert not cpu_has_native_bf16(capability="AVX2", flags=["avx512_bf16"])
    assert cpu_has_native_bf16(capability="AVX512", flags=["avx512_bf16"])
    assert cpu_has_native_bf16(capability="AVX512", flags=["amx_bf16"])
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f avx512_bf16\n\nprocessor : 1\nflags : amx_bf16\n")
    assert cpu_bf16_flags(info) == {"avx512_bf16", "amx_bf16"}
    assert cpu_bf16_flags(tmp_path / "missing") == frozenset()


def test_precision_decision(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu, native_cpu_bf16=True).name == "fp32"
    assert resolve_precision("auto", cpu, native_cpu_bf16=True).name == "bf16"
    assert resolve_precision("auto", cpu, native_cpu_bf16=False).name == "fp32"
    fallback = resolve_precision("bf16", cpu, native_cpu_bf16=False)
    assert fallback.name == "fp32" and fallback.fell_back and "emulate" in fallback.reason
    import fewcolor.hardware as hw

    monkeypatch.setattr(hw, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu).name == "fp32"
    monkeypatch.setattr(hw, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("bf16", cpu).bf16
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", cpu)


def test_explicit_bf16_on_an_emulating_cpu_warns_once_and_trains_in_fp32(tmp_path, photos, monkeypatch, caplog):
    import fewcolor.hardware as hw

    monkeypatch.setattr(hw, "cpu_has_native_bf16", lambda: False)
    code, _ = _cli([*_train_args(photos, tmp_path / "run", "--steps", 1), "--bf16"])
    assert code == 0
    warnings = [r for r in caplog.records if "precision" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING" and "fp32" in warnings[0].getMessage()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="banana"):
        resolve_device("banana")


# ------------------------------------------------------------------------------------------- the fuzz
FUZZ_CASES = 240


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded mutation: flipped bytes, a cut, a duplicated or deleted span, or header-only damage."""
    buf = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:
        buf = buf[: rng.randrange(1, len(buf))]
    elif kind == 2:
        a = rng.randrange(len(buf))
        b = min(len(buf), a + rng.randint(1, 64))
        buf[a:a] = buf[a:b] * rng.randint(1, 4)
    elif kind == 3:
        a = rng.randrange(len(buf))
        del buf[a : a + rng.randint(1, 64)]
    else:
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(min(64, len(buf)))] = rng.randrange(256)
    return bytes(buf)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    emoji = REPO / "tests" / "fixtures" / "emoji"
    sources = sorted(emoji.rglob("*.png"))[:4]
    if not sources:
        pytest.skip("tests/fixtures/emoji is missing")
    root = tmp_path_factory.mktemp("fuzz")
    originals = []
    for i, src in enumerate(sources):
        img = Image.open(src).convert("RGB").resize((48, 48))
        for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("WEBP", "webp")):
            path = root / "orig" / f"e{i}.{ext}"
            path.parent.mkdir(exist_ok=True)
            img.save(path, format=fmt)
            originals.append(path)
    rng = random.Random(15)
    for case in range(FUZZ_CASES):
        src = originals[case % len(originals)]
        (root / "mut" / f"m{case:03d}{src.suffix}").parent.mkdir(exist_ok=True)
        (root / "mut" / f"m{case:03d}{src.suffix}").write_bytes(_mutate(src.read_bytes(), rng))
    return root


def test_fuzz_reader(fuzz_dir):
    ok = bad = 0
    for path in sorted((fuzz_dir / "mut").iterdir()):
        try:
            t = read_rgb(path, pixel_budget=1_000_000)
        except ImageReadError as exc:
            assert str(exc).startswith(str(path)), exc
            bad += 1
            continue
        assert t.dim() == 3 and t.shape[0] == 3 and bool(torch.isfinite(t).all())
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
        ok += 1
    assert ok + bad == FUZZ_CASES and ok > 0 and bad > 0


def test_fuzz_colorize_and_evaluate(fuzz_dir, tmp_path, tiny_model, lpips_weights):
    mut = fuzz_dir / "mut"
    before = _digest(mut)
    code, out = _cli(["colorize", tiny_model, mut, "-o", tmp_path / "out"])
    assert code == 0
    done = int(out.split("colorized ")[1].split(" of ")[0])
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert done + len(skipped) == FUZZ_CASES
    assert all(line.split(" ", 1)[1].startswith(str(mut)) for line in skipped)  # each bad file by name
    assert len(list((tmp_path / "out").iterdir())) == done
    code, out = _cli(["evaluate", tiny_model, "--data", mut, "-o", tmp_path / "eval", "--no-fid"])
    assert code == 0
    scored = int(out.split(" images scored")[0].rsplit("\n", 1)[-1])
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert scored + len(skipped) == FUZZ_CASES and scored > 0
    assert _digest(mut) == before  # inputs byte-identical


def test_math_budget_is_the_smallest_factor():
    for w, h, budget in ((10000, 9980, 24_000_000), (1, 200000, 100), (640, 480, 10_000), (33, 17, 5)):
        k = reduction_factor(w, h, budget)
        assert math.ceil(w / k) * math.ceil(h / k) <= budget
        assert k == 1 or math.ceil(w / (k - 1)) * math.ceil(h / (k - 1)) > budget


# ------------------------------------------------- outputs inside the data (session-10 review of the CLI)
def test_train_cluster_adapt_and_bench_refuse_to_write_into_their_data(tmp_path, photos):
    before = _digest(photos)
    code, out = _cli(_train_args(photos, photos, "--steps", 1))
    assert code == 2 and "inside the input folder" in _error_line(out)
    (tmp_path / "split.txt").write_text("p0.png\np1.png\n")  # with a split only the listed files are read
    code, out = _cli(_train_args(photos, photos / "run", "--steps", 1, "--split", tmp_path / "split.txt"))
    assert code == 0, out
    (tmp_path / "split.txt").unlink()
    shutil.rmtree(photos / "run")
    code, out = _cli(["cluster", photos, "--k", 2, "-o", photos])
    assert code == 2 and "inside the input folder" in _error_line(out)
    for target in (photos / "p1.png", photos / "new.safetensors"):  # an input image, or a new file among them
        code, out = _cli(["adapt", "--data", photos, "-o", target, "--steps", 0])
        assert code == 2 and "inside the input folder" in _error_line(out)
        code, out = _cli(["adapt", "exemplar", "--data", photos, "-o", target])
        assert code == 2 and "inside the input folder" in _error_line(out)
    code, out = _cli(["bench", "--data", photos, "--methods", "grey", "--smoke", "-o", photos / "res",
                      "--results-md", tmp_path / "R.md"])
    assert code == 2 and "inside the input folder" in _error_line(out)
    assert _digest(photos) == before


def test_evaluate_refuses_one_folder_as_both_prediction_and_truth(tmp_path, photos):
    for pred, truth in ((photos, photos), (photos, photos / ".." / photos.name)):
        code, out = _cli(["evaluate", "--pred", pred, "--truth", truth, "-o", tmp_path / "e", "--no-fid"])
        assert code == 2 and "same folder" in _error_line(out)


def test_colorize_says_which_model_it_uses(tmp_path, photos):
    foreign = tmp_path / "weights.pth"
    foreign.write_bytes(b"not a fewcolor model")
    for args in ([foreign, photos / "p0.png"], [foreign], [tmp_path / "typo.safetensors", photos / "p0.png"]):
        code, out = _cli(["colorize", *args, "-o", tmp_path / "o"])
        assert code == 2 and "MODEL" in _error_line(out) and "bundled" not in out.replace(_error_line(out), "")
    assert not (tmp_path / "o").exists()
    code, out = _cli(["colorize", photos / "p0.png", "-o", tmp_path / "o"])
    assert code == 0 and "bundled base model" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["export", "MODEL", "-o", "OUT/x.onnx", "--size", -5], "--size"),
        (["serve", "--port", 99999], "--port"),
        (["serve", "--size", -3], "--size"),
        (["serve", "--device", "banana"], "--device"),
    ],
)
def test_export_and_serve_check_their_options(tmp_path, tiny_model, args, needle):
    args = [tiny_model if a == "MODEL" else tmp_path / "x.onnx" if a == "OUT/x.onnx" else a for a in args]
    code, out = _cli(args)
    assert code == 2 and needle in _error_line(out)


def test_adapt_reports_a_bad_file_once_and_goes_on(tmp_path, photos, caplog):
    (photos / "broken.png").write_text("not an image")
    res = CliRunner().invoke(main, ["adapt", "exemplar", "--preset", "tiny", "--data", str(photos),
                                    "-o", str(tmp_path / "ex.safetensors")])
    assert res.exit_code == 0, res.output
    lines = [*res.output.splitlines(), *caplog.messages]  # the CLI's lines and its log (stderr outside pytest)
    reports = [line for line in lines if "broken.png" in line]
    assert len(reports) == 1 and reports[0].count("broken.png") == 1, reports
    assert "stored 4 of 4 images" in res.output


# ------------------------------------------------- output files (session-12 new-user audit)
def test_model_and_export_outputs_need_their_suffix_and_never_replace_an_image(tmp_path, photos, tiny_model):
    victim = tmp_path / "victim.png"
    victim.write_bytes((photos / "p0.png").read_bytes())
    before = victim.read_bytes()
    for args, suffix in ((["adapt", tiny_model, "--data", photos, "-o", victim, "--steps", 0], ".safetensors"),
                         (["adapt", "exemplar", "--preset", "tiny", "--data", photos, "-o", victim], ".safetensors"),
                         (["export", tiny_model, "-o", victim], ".onnx")):
        code, out = _cli(args)
        assert code == 2 and "-o" in _error_line(out) and f"victim{suffix}" in _error_line(out)
        assert victim.read_bytes() == before
    code, out = _cli(["adapt", tiny_model, "--data", photos, "-o", tmp_path / "mine", "--steps", 0])
    assert code == 2 and "mine.safetensors" in _error_line(out)
    code, out = _cli(["export", tiny_model, "-o", tmp_path / "graph.onnx.txt"])
    assert code == 2 and "graph.onnx.onnx" not in out and ".onnx" in _error_line(out)


def test_an_unwritable_output_is_named_before_any_work(tmp_path, photos, tiny_model):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code, out = _cli(["colorize", tiny_model, photos, "-o", blocker / "sub"])
    assert code == 2 and "-o" in _error_line(out) and "skipped" not in out
    code, out = _cli(["adapt", tiny_model, "--data", photos, "-o", blocker / "m.safetensors", "--steps", 0])
    assert code == 2 and "-o" in _error_line(out)


def test_colorize_refuses_an_image_name_as_its_output_folder(tmp_path, photos, tiny_model):
    # a folder's outputs keep their names (one image may go to a file: tests/test_cli_outputs.py)
    code, out = _cli(["colorize", tiny_model, photos, "-o", tmp_path / "result.png"])
    assert code == 2 and "output folder" in _error_line(out)
    assert not (tmp_path / "result.png").exists()


def test_info_and_evaluate_take_base_for_the_bundled_model(tmp_path, photos):
    from fewcolor.pretrained import bundled_model_path

    if not bundled_model_path().is_file():
        pytest.skip("no bundled model in this install")
    code, out = _cli(["info", "base"])
    assert code == 0 and '"method": "base"' in out
    code, out = _cli(["evaluate", "base", "--data", photos, "-o", tmp_path / "ev", "--no-fid", "--work-size", 32])
    assert code == 0, out
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["protocol"]["method"] == "base"
    code, out = _cli(["info", tmp_path / "missing.safetensors"])
    assert code == 2 and "missing.safetensors" in _error_line(out) and "`base`" in out


def test_bench_shots_below_one_is_a_usage_error(tmp_path, photos):
    code, out = _cli(["bench", "--data", photos, "--shots", "0", "--methods", "grey", "--smoke",
                      "-o", tmp_path / "res", "--results-md", tmp_path / "R.md"])
    assert code == 2 and "--shots" in _error_line(out)


def test_a_reduced_large_image_is_noted_on_its_own_line(tmp_path, tiny_model):
    big = _photo(tmp_path / "in" / "big.png", size=(200, 150))
    code, out = _cli(["colorize", tiny_model, big, "-o", tmp_path / "out", "--max-megapixels", 0.01])
    assert code == 0, out
    notes = [line for line in out.splitlines() if "over --max-megapixels" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")


def test_colorize_refuses_a_files_own_folder_as_output_unless_asked(tmp_path, photos, tiny_model):
    before = _digest(photos)
    code, out = _cli(["colorize", tiny_model, photos / "p0.png", "-o", photos])
    assert code == 2 and "--inside-input" in _error_line(out)
    assert _digest(photos) == before
    code, out = _cli(["colorize", tiny_model, photos / "p0.png", "-o", photos, "--inside-input"])
    assert code == 0, out


def test_the_same_file_name_from_two_folders_is_traced_to_its_folder(tmp_path, tiny_model):
    a, b = _photo(tmp_path / "one" / "cam.png"), _photo(tmp_path / "two" / "cam.png", seed=1)
    code, out = _cli(["colorize", tiny_model, a, b, "-o", tmp_path / "out"])
    assert code == 0 and "colorized 2 of 2" in out
    notes = [line for line in out.splitlines() if line.startswith("renamed")]
    assert notes and all(str(tmp_path / "one") in n or str(tmp_path / "two") in n for n in notes)


def test_a_transparent_sprite_keeps_its_transparency(tmp_path, tiny_model):
    rgba = np.zeros((24, 20, 4), np.uint8)
    rgba[4:20, 5:15] = (200, 40, 40, 255)  # an opaque red body on a transparent ground
    rgba[4:20, 15:17, 3] = 128  # a half-transparent edge
    (tmp_path / "in").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in" / "sprite.png")
    opaque = _photo(tmp_path / "in" / "photo.png")
    code, out = _cli(["colorize", tiny_model, tmp_path / "in", "-o", tmp_path / "out"])
    assert code == 0, out
    with Image.open(tmp_path / "out" / "sprite.png") as img:
        assert img.mode == "RGBA" and img.size == (20, 24)
        assert np.array_equal(np.asarray(img)[..., 3], rgba[..., 3])
    with Image.open(tmp_path / "out" / opaque.name) as img:
        assert img.mode == "RGB"
