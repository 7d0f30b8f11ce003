"""MemoPainter's few-shot mechanism: the support is written into the memory before fine-tuning."""

from __future__ import annotations

import torch

from fewcolor.methods.registry import build_method
from fewcolor.train.adapt import adapt
from helpers import TensorColourDataset, smooth_colour_images


def test_support_images_are_written_into_the_oldest_slots_and_retrieved() -> None:
    torch.manual_seed(0)
    method = build_method("memopainter", "tiny", {"image_size": 32, "memory_slots": 6, "color_feature": "rgb"})
    support = TensorColourDataset(smooth_colour_images(3, 32, seed=4))
    batch = torch.utils.data.default_collate([support[i] for i in range(3)])
    assert method.write_support(support, seed=0)
    assert method.memory.num_filled == 3
    with torch.no_grad():
        values, _, _ = method.retrieve(batch["l"], 3)
    truth = method.features_of(batch["rgb"])
    for i in range(3):  # every support's colour feature is in the memory, exactly
        assert any(torch.allclose(values[i, j], truth[i]) for j in range(values.shape[1]))
    adapted, how = adapt(method, support, steps=2, batch_size=3)
    assert how == "write+finetune" and adapted.memory.num_filled >= 3
    _, how = adapt(build_method("res-cgan", "tiny", {"image_size": 32}), support, steps=1)
    assert how == "finetune"  # Res-cGAN has no memory to write
