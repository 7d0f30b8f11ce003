"""The training process keeps the memory its steps free (glibc): a step takes its buffers again without page faults."""

from __future__ import annotations

import platform
import subprocess
import sys
import types

import pytest

from fewcolor.train import allocator
from fewcolor.train.allocator import retain_freed_memory

_FAULTS_PER_STEP = """
import resource, sys, torch
from fewcolor.nets.unet import UNetGenerator
from fewcolor.train.allocator import retain_freed_memory
if sys.argv[1] == "retain" and not retain_freed_memory():
    print(-1)  # this glibc refused the setting
    sys.exit()
torch.manual_seed(0)
net = UNetGenerator(base=32, depth=6, dropout=0.5)  # the unet cpu preset's generator
x = torch.rand(16, 1, 64, 64)
def step() -> None:
    net(x).square().mean().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_training_steps_take_their_buffers_again_without_page_faults() -> None:
    faults = {mode: int(subprocess.run([sys.executable, "-c", _FAULTS_PER_STEP, mode], check=True,
                                       capture_output=True, text=True).stdout)
              for mode in ("default", "retain")}
    if faults["retain"] < 0:
        pytest.skip("this glibc refused the retention thresholds")
    if faults["default"] < 1000:  # e.g. transparent huge pages for every mapping: few faults to save
        pytest.skip(f"the default allocator faults {faults['default']} times per step here")
    # measured on the project's machine (this generator's forward + backward alone, no optimiser): ~3,900–4,500
    # minor faults per step by default, 0–360 retained
    assert faults["retain"] * 4 < faults["default"]


def test_other_systems_and_the_opt_out_are_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(allocator, "sys", types.SimpleNamespace(platform="darwin"))
    assert retain_freed_memory() is False
    monkeypatch.setattr(allocator, "sys", types.SimpleNamespace(platform="linux"))
    monkeypatch.setattr(allocator, "platform", types.SimpleNamespace(libc_ver=lambda: ("musl", "1.2")))
    assert retain_freed_memory() is False
    monkeypatch.setattr(allocator, "platform", types.SimpleNamespace(libc_ver=lambda: ("glibc", "2.36")))
    monkeypatch.setattr(allocator, "ctypes", types.SimpleNamespace(
        CDLL=lambda name: (_ for _ in ()).throw(AssertionError("reached libc"))))
    monkeypatch.setenv(allocator.OPT_OUT, "0")
    assert retain_freed_memory() is False  # the opt-out stops it before the C library is touched
    monkeypatch.delenv(allocator.OPT_OUT)
    with pytest.raises(AssertionError, match="reached libc"):
        retain_freed_memory()


def test_a_glibc_that_refuses_a_large_mmap_threshold_gets_its_largest(monkeypatch) -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return int(not (param == -3 and value > 32 << 20))  # M_MMAP_THRESHOLD above HEAP_MAX_SIZE / 2: refused

    monkeypatch.setattr(allocator, "sys", types.SimpleNamespace(platform="linux"))
    monkeypatch.setattr(allocator, "platform", types.SimpleNamespace(libc_ver=lambda: ("glibc", "2.31")))
    monkeypatch.setattr(allocator, "ctypes", types.SimpleNamespace(
        CDLL=lambda name: types.SimpleNamespace(mallopt=mallopt), c_int=int))
    monkeypatch.delenv(allocator.OPT_OUT, raising=False)
    assert retain_freed_memory() is True
    assert calls == [(-3, 1 << 30), (-3, 32 << 20), (-1, 1 << 30)]
