"""ONNX export: parity with PyTorch on real photos, dynamic shapes, refusals with their reason."""

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the [export] extra (onnx, onnxruntime) is not installed")

from fewcolor.export import ExportError, check_onnx, export_onnx, sample_photos
from fewcolor.methods.registry import build_method
from fewcolor.pipeline import Colorizer


def _colorizer(name: str, size: int = 64, **overrides) -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(build_method(name, "tiny", overrides), device="cpu", size=size)


@pytest.mark.parametrize("name,options", [("unet", {}), ("cic", {"temperature": 0.2}), ("iizuka", {})])
def test_parity_on_photos_and_dynamic_shapes(tmp_path, name, options):
    colorizer = _colorizer(name, size=96)  # exported at 96×96; checked at other sizes
    path = export_onnx(colorizer, tmp_path / f"{name}.onnx", **options)
    photos = sample_photos()
    results = check_onnx(colorizer, path, photos, repeats=1, **options)
    assert [r.name for r in results] == ["astronaut", "coffee", "chelsea"]
    assert max(r.max_abs_ab for r in results) <= 1e-3
    for size, image in ((64, torch.rand(3, 64, 64)), (200, torch.rand(3, 200, 130))):
        colorizer.size = size
        (res,) = check_onnx(colorizer, path, [("random", image)], repeats=1, **options)
        assert res.working == ((64, 64) if size == 64 else (192, 128) if name == "unet" else (200, 128))
        assert res.max_abs_ab <= 1e-3


def test_metadata_records_the_contract(tmp_path):
    import json

    import onnx

    path = export_onnx(_colorizer("unet"), tmp_path / "m.onnx")
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["fewcolor.method"] == "unet" and props["fewcolor.size_multiple"] == "16"
    assert props["fewcolor.working_size"] == "64" and "L/50-1" in props["fewcolor.normalization"]
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*model.graph.input, *model.graph.output)}
    assert dims == {"l": ["batch", 1, "height", "width"], "ab": ["batch", 2, "height", "width"]}
    # the values baked into the graph, also when they are the model's own (no option given)
    cic = export_onnx(_colorizer("cic", temperature=0.6, chroma=0.8), tmp_path / "cic.onnx")
    options = {p.key: p.value for p in onnx.load(str(cic)).metadata_props}["fewcolor.options"]
    assert json.loads(options) == {"temperature": 0.6, "chroma": 0.8}
    cic = export_onnx(_colorizer("cic", temperature=0.6, chroma=0.8), tmp_path / "cic.onnx", temperature=0.2)
    options = {p.key: p.value for p in onnx.load(str(cic)).metadata_props}["fewcolor.options"]
    assert json.loads(options) == {"temperature": 0.2, "chroma": 0.8}


@pytest.mark.parametrize("name", ["lut", "grey"])
def test_lut_and_grey_export_exactly(tmp_path, name):
    colorizer = _colorizer(name)
    if name == "lut":  # a table with colours in some lightness bands (the rest take the nearest filled band)
        colorizer.method.accumulate(torch.rand(2, 1, 16, 16) * 100, torch.randn(2, 2, 16, 16) * 20)
    path = export_onnx(colorizer, tmp_path / f"{name}.onnx")
    results = check_onnx(colorizer, path, [("r", torch.rand(3, 40, 56)), ("s", torch.rand(3, 64, 64))], repeats=1)
    assert max(r.max_abs_ab for r in results) <= 1e-3


def test_exemplar_is_refused_with_its_reason(tmp_path):
    with pytest.raises(ExportError, match=r"cannot export 'exemplar'.*correspondence search.*export size and batch 1"):
        export_onnx(_colorizer("exemplar"), tmp_path / "e.onnx")
    assert not (tmp_path / "e.onnx").exists()


def test_metalgan_with_test_time_adaptation_is_refused_with_its_reason(tmp_path, monkeypatch):
    colorizer = _colorizer("metalgan")
    monkeypatch.setattr(type(colorizer.method), "has_tasks", property(lambda self: True))
    with pytest.raises(ExportError, match=r"adapted at test time.*adapt_steps=0"):
        export_onnx(colorizer, tmp_path / "m.onnx", adapt_steps=3)
    path = export_onnx(colorizer, tmp_path / "m.onnx", adapt_steps=0)
    assert check_onnx(colorizer, path, [("r", torch.rand(3, 40, 56))], repeats=1, adapt_steps=0)[0].max_abs_ab <= 1e-3


def test_memopainter_exports_with_a_fixed_colour_and_refuses_memory_retrieval(tmp_path):
    colorizer = _colorizer("memopainter", color_feature="rgb")
    with pytest.raises(ExportError, match="memory retrieval"):
        export_onnx(colorizer, tmp_path / "m.onnx")
    path = export_onnx(colorizer, tmp_path / "m.onnx", palette="#e03c31,#2b7bb9")
    (res,) = check_onnx(colorizer, path, [("r", torch.rand(3, 50, 70))], repeats=1, palette="#e03c31,#2b7bb9")
    assert res.max_abs_ab <= 1e-3


def test_cli_export_with_check(tmp_path):
    from click.testing import CliRunner

    from fewcolor.cli import main
    from fewcolor.methods.registry import save_method

    model = save_method(_colorizer("cic").method, tmp_path / "cic.safetensors")
    out = tmp_path / "cic.onnx"
    result = CliRunner().invoke(main, ["export", str(model), "-o", str(out), "--check", "--temperature", "0.5"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "astronaut" in result.output and "max |Δab|" in result.output
    result = CliRunner().invoke(main, ["export", str(model), "-o", str(out), "--variants", "2"])
    assert result.exit_code != 0 and "one graph has one colouring" in result.output


def test_cli_check_fails_beyond_its_tolerance(tmp_path, monkeypatch):
    import dataclasses

    from click.testing import CliRunner

    import fewcolor.export as export
    from fewcolor.cli import main
    from fewcolor.io.image import write_rgb
    from fewcolor.methods.registry import save_method

    model = save_method(_colorizer("unet").method, tmp_path / "unet.safetensors")
    image = tmp_path / "street.png"
    write_rgb(image, torch.rand(3, 40, 56))
    args = ["export", str(model), "-o", str(tmp_path / "u.onnx"), "--check-image", str(image)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "street.png" in result.output, result.output
    real = export.check_onnx

    def off(*a, **k):  # a graph that computes something else than PyTorch on this image
        return [dataclasses.replace(r, max_abs_ab=0.5) for r in real(*a, **k)]

    monkeypatch.setattr(export, "check_onnx", off)
    result = CliRunner().invoke(main, [*args, "--overwrite"])  # the same -o again
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: --check failed on street.png: max |Δab| 5.00e-01 Lab (street.png) exceeds the "
                           "tolerance 0.01 Lab"), last


def test_bundled_model_parity(tmp_path):
    from fewcolor.pretrained import bundled_model_path

    model = bundled_model_path()
    if model is None:
        pytest.skip("this checkout ships no bundled base model (src/fewcolor/weights/base.safetensors)")
    colorizer = Colorizer.from_checkpoint(model, device="cpu")
    reason = colorizer.method.export_blocker({})
    if reason is not None:
        pytest.skip(f"the bundled {colorizer.name} model does not export as it is: {reason}")
    path = export_onnx(colorizer, tmp_path / "base.onnx")
    images = [*sample_photos(), ("64x64", torch.rand(3, 64, 64)), ("200x130", torch.rand(3, 200, 130))]
    assert max(r.max_abs_ab for r in check_onnx(colorizer, path, images, repeats=1)) <= 1e-3
