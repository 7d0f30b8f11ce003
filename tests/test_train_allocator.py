"""The training process keeps the memory its steps free (glibc): a step takes its buffers again without page faults."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from fewcolor.train import allocator
from fewcolor.train.allocator import retain_freed_memory

_FAULTS_PER_STEP = """
import resource, sys, torch
from fewcolor.nets.unet import UNetGenerator
from fewcolor.train.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
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
    # measured on the project's machine: ~3,900–4,500 minor faults per step by default, 0–360 retained
    assert faults["default"] > 1000
    assert faults["retain"] * 4 < faults["default"]


def test_other_systems_are_left_alone(monkeypatch) -> None:
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert retain_freed_memory() is False
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert retain_freed_memory() is False
