"""Small synthetic data for tests that must not depend on fixtures, and the command line run as a user runs it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.normalize import normalize_ab, normalize_l

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/NAME.py`` (a script folder, not a package) loaded from its file as a module, for its tests."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smooth_colour_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n,3,size,size) images: colour blobs whose hue follows a smooth function of position."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


class TensorColourDataset(torch.utils.data.Dataset):
    """Sample dicts (see docs/ARCHITECTURE.md) from a tensor of RGB images."""

    def __init__(self, rgb: torch.Tensor, labels: list[int] | None = None) -> None:
        self.rgb = rgb
        lab = rgb_to_lab(rgb)
        self.l = normalize_l(lab[:, :1])
        self.ab = normalize_ab(lab[:, 1:])
        self.labels = labels or [-1] * len(rgb)

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitem__(self, i: int) -> dict:
        return {
            "rgb": self.rgb[i],
            "l": self.l[i],
            "ab": self.ab[i],
            "label": self.labels[i],
            "index": i,
            "path": f"img{i}.png",
        }


def run_cli(args: list[object]) -> tuple[int, str]:
    """``fewcolor ARGS`` in process: (exit code, output); an uncaught exception or a traceback fails the test
    (a user's mistake must end in one line, never a traceback)."""
    from click.testing import CliRunner

    from fewcolor.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    unexpected = res.exception is not None and not isinstance(res.exception, SystemExit)
    assert not unexpected, f"{args}: uncaught {res.exception!r}\n{res.output}"
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


def error_line(output: str) -> str:
    """The one ``Error:`` line of a command's output (the test fails unless there is exactly one)."""
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]
