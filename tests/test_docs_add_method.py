"""docs/ARCHITECTURE.md's "How to add a method" example is real: run it, train it, colorize with it."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from fewcolor.cli import main
from fewcolor.methods.registry import build_method, load_method, save_method, unregister_method
from fewcolor.pipeline import Colorizer

DOC = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


@pytest.fixture()
def example_module():
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## How to add a method") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "no python example under '## How to add a method'"
    module = types.ModuleType("fewcolor_docs_example")
    sys.modules[module.__name__] = module  # dataclasses resolve annotations through sys.modules
    try:
        exec(compile(code.group(1), str(DOC), "exec"), module.__dict__)
        yield module
    finally:
        unregister_method("tiny-example")
        del sys.modules[module.__name__]


def test_the_documented_method_trains_saves_and_colorizes(example_module, emoji_dir, tmp_path) -> None:
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform
    from fewcolor.train.loop import TrainOptions, train

    torch.manual_seed(0)
    method = build_method("tiny-example", "cpu")
    assert method.config.width == 8
    data = ImageFolderDataset(emoji_dir, transform=train_transform(32), seed=0)
    result = train(method, data, TrainOptions(out_dir=tmp_path / "run", steps=3, batch_size=4, sample_every=0,
                                              progress=False, tensorboard=False))
    assert result.checkpoint is not None
    loaded = load_method(save_method(method, tmp_path / "m.safetensors"))
    colorizer = Colorizer(loaded, device="cpu")
    grey = colorizer.colorize(torch.rand(3, 20, 30), saturation=0.0)
    assert (grey.max(dim=0).values - grey.min(dim=0).values).max() < 0.02  # no chroma: grey
    help_text = " ".join(CliRunner().invoke(main, ["colorize", "--help"]).output.split())
    assert "--saturation" in help_text and "[tiny-example] scale the predicted ab" in help_text
