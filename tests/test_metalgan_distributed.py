"""Distributed Reptile: 2 gloo processes with one task each ≡ one process with a meta-batch of 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO

SCRIPT = """
import os, sys, torch
sys.path.insert(0, {tests!r})
from helpers import TensorColourDataset, smooth_colour_images
from fewcolor.data.tasks import ClusterTasks
from fewcolor.methods.registry import build_method
from fewcolor.train.loop import TrainOptions, train

torch.set_num_threads(1)
world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
ds = TensorColourDataset(smooth_colour_images(8, 16, seed=1))
# Two fixed tasks of uneven size (no backbone, no K-means: the Reptile wiring is what this test checks).
tasks = ClusterTasks(torch.eye(2, 3), torch.zeros(3), torch.eye(2, 3), torch.tensor([0, 1, 1, 0, 1, 1, 0, 1]),
                     {{"backbone": "alexnet", "layer": "features.11", "pretrained": False, "feature_size": 64}})
torch.manual_seed(0)
m = build_method("metalgan", "tiny", {{"image_size": 16, "n_clusters": 2, "inner_steps": 3, "meta_lr": 0.5,
                                       "dropout": 0.3}})
m.set_tasks(tasks, ds)
train(m, ds, TrainOptions(out_dir={out!r} + f"/run{{world}}", steps=2, batch_size=2 // world, sample_every=0,
                          progress=False, tensorboard=False, run_setup=False))
torch.save({{k: v.clone() for k, v in m.state_dict().items()}}, {out!r} + f"/world{{world}}_rank{{rank}}.pt")
if world > 1:
    torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
def test_two_ranks_match_one_process_with_meta_batch_two(tmp_path) -> None:
    script = tmp_path / "reptile_run.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=str(REPO / "tests"), out=str(tmp_path))))
    single = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr[-3000:]
    multi = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533", str(script)],
        capture_output=True, text=True, timeout=180,
    )
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = torch.load(tmp_path / "world1_rank0.pt")
    r0 = torch.load(tmp_path / "world2_rank0.pt")
    r1 = torch.load(tmp_path / "world2_rank1.pt")
    start = build_start()
    moved = False
    for k, v in one.items():
        assert torch.equal(r0[k], r1[k]), f"ranks differ at {k}"
        if k.startswith("discriminator.") and ("running" in k or "num_batches" in k):
            continue  # D's BN statistics are rank 0's (broadcast), not averaged; they never enter training
        if v.is_floating_point():
            torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5, msg=f"2 ranks vs meta-batch 2 differ at {k}")
            moved |= k.startswith("generator.") and not torch.equal(v, start[k])
        else:
            assert torch.equal(r0[k], v), k
    assert moved, "the generator did not move"


def build_start() -> dict[str, torch.Tensor]:
    from fewcolor.methods.registry import build_method

    torch.manual_seed(0)
    m = build_method("metalgan", "tiny", {"image_size": 16, "n_clusters": 2, "inner_steps": 3, "meta_lr": 0.5,
                                         "dropout": 0.3})
    return m.state_dict()
