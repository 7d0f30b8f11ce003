"""The layer diagram in docs/ARCHITECTURE.md is the source of truth: no module imports a layer below its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "fewcolor"
DOC = REPO / "docs" / "ARCHITECTURE.md"


def read_layers(text: str) -> dict[str, int]:
    """``{"color/": 1, "pipeline.py": 9, ...}``: each package/module of the diagram and its row."""
    section = text[text.index("## Layers") :]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "docs/ARCHITECTURE.md: no fenced diagram after '## Layers'"
    layers: dict[str, int] = {}
    row = -1
    for line in block.group(1).splitlines():
        if not line.strip() or line.startswith(" "):
            continue  # blank or a continuation of the row above
        row += 1
        first_column = re.split(r"\s{2,}", line.strip())[0]
        for item in first_column.split(","):
            name = item.strip()
            assert name.endswith(("/", ".py")), f"diagram entry {name!r} must end in / or .py"
            layers[name] = row
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str, layers: dict[str, int]) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        key = "__init__.py"
    elif f"{parts[1]}/" in layers:
        key = f"{parts[1]}/"
    else:
        key = f"{parts[1]}.py"
    assert key in layers, f"{module}: {key} is not in the layer diagram of docs/ARCHITECTURE.md; add it"
    return layers[key]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported fewcolor module) for every import in the file, also inside functions."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "fewcolor"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] == "fewcolor":
                out.append((node.lineno, target))
    return out


def test_diagram_is_read() -> None:
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    assert layers["color/"] < layers["methods/"] < layers["pipeline.py"] < layers["metrics/"] < layers["cli.py"]


def test_no_module_imports_a_lower_layer() -> None:
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    names = {row: name for name, row in layers.items()}
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        own = layer_of(module, layers)
        for line, target in imports_of(path):
            if layer_of(target, layers) > own:
                rel = path.relative_to(REPO)
                violations.append(f"{rel}:{line} imports {target} ({names[layer_of(target, layers)]} is below "
                                  f"{names[own]})")
    assert not violations, "imports against the layer order of docs/ARCHITECTURE.md:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "source,expected",
    [
        ("import fewcolor.pipeline", ["fewcolor.pipeline"]),
        ("def f():\n    from fewcolor import Colorizer", ["fewcolor"]),
        ("from . import registry", ["fewcolor.methods"]),
        ("from .base import Method", ["fewcolor.methods.base"]),
        ("from ..io import image", ["fewcolor.io"]),
        ("import torch", []),
    ],
)
def test_imports_are_parsed(tmp_path: Path, source: str, expected: list[str], monkeypatch) -> None:
    fake = tmp_path / "fewcolor"
    (fake / "methods").mkdir(parents=True)
    path = fake / "methods" / "cic.py"
    path.write_text(source)
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    assert [t for _, t in imports_of(path)] == expected


def test_an_upward_import_is_caught() -> None:
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    assert layer_of("fewcolor.pipeline", layers) > layer_of("fewcolor.methods.cic", layers)
    assert layer_of("fewcolor", layers) > layer_of("fewcolor.io.checkpoint", layers)
    assert layer_of("fewcolor.home", layers) < layer_of("fewcolor.color.prior", layers)
