"""ONNX export of a method whose inference is one fixed network, and its parity check.

The exported graph is exactly the method's ``predict_ab`` with the inference options fixed at export
time (a CIC temperature, a MemoPainter variant, palette or reference image, an Iizuka global-features
image are all baked into the graph):

* input ``l``: float32 ``(B, 1, H, W)``, normalised lightness ``L / 50 − 1`` (L in [0, 100]),
  ``H`` and ``W`` any multiples of the metadata's ``size_multiple`` (dynamic axes);
* output ``ab``: float32 ``(B, 2, H, W)``, normalised chroma; ``ab × 110`` is CIE a*, b*.

Around it, the same pre/post-processing as :class:`fewcolor.pipeline.Colorizer` (recorded in the model's
metadata): resize the sRGB image (antialiased bilinear) so its longer side is ``working_size`` with both
sides rounded to ``size_multiple``, take L of CIE Lab (D65), run the graph, upsample ``ab`` bilinearly to
the original size and merge it with the ORIGINAL full-resolution L. See docs/EXPORT.md.

A method whose inference is not one fixed network says why through
:meth:`fewcolor.methods.base.Method.export_blocker` (MetalGAN's test-time adaptation runs gradient steps
on each query's cluster) and is refused with that reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fewcolor.color.normalize import AB_SCALE, NORMALIZATION
from fewcolor.io import samples
from fewcolor.pipeline import Colorizer, network_input, working_size

#: ONNX operator set of the exported graphs (18: Resize with antialiasing, as Iizuka's global path needs)
OPSET = 18
#: largest max |Δab| (Lab units) between onnxruntime and PyTorch that ``fewcolor export --check`` passes.
#: Both compute in float32 with different kernels: the measured differences are 1e-5 to 2e-4 Lab
#: (docs/EXPORT.md), so 1e-2 leaves 50× headroom for other CPUs and runtimes while staying 100× below a
#: just-noticeable colour difference (ΔE ≈ 1); a graph that computes something else differs by far more.
CHECK_TOLERANCE = 1e-2


class ExportError(ValueError):
    """The model cannot be exported as asked (the message says why and what to do)."""


class _FixedOptions(nn.Module):
    """``predict_ab`` with fixed inference options, as one module for the exporter."""

    def __init__(self, colorizer: Colorizer, options: dict[str, Any]) -> None:
        super().__init__()
        self.method = colorizer.method
        self.options = options

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        return self.method.predict_ab(l, **self.options)


def _resize_antialiased(g: Any, x: Any, output_size: Any, align_corners: Any, scale_factors: Any) -> Any:
    """ONNX for ``F.interpolate(..., mode="bilinear", antialias=True)`` to a fixed size (Iizuka's global
    path): Resize-18 with ``antialias=1`` and ``exclude_outside=1`` (weights renormalised inside the image), which
    filters as PyTorch does. The TorchScript exporter has no
    rule of its own for it."""
    from torch.onnx import symbolic_helper

    size = symbolic_helper._maybe_get_const(output_size, "is")
    if not isinstance(size, (list, tuple)) or symbolic_helper._maybe_get_const(align_corners, "b"):
        raise ExportError("antialiased resizing exports only to a fixed size with align_corners=False")
    shape = g.op("Shape", x)
    batch_channels = g.op("Slice", shape, g.op("Constant", value_t=torch.tensor([0])),
                          g.op("Constant", value_t=torch.tensor([2])))
    sizes = g.op("Concat", batch_channels, g.op("Constant", value_t=torch.tensor(list(size), dtype=torch.int64)),
                 axis_i=0)
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    return g.op("Resize", x, empty, empty, sizes, mode_s="linear", coordinate_transformation_mode_s="half_pixel",
                antialias_i=1, exclude_outside_i=1)


def export_onnx(colorizer: Colorizer, path: str | Path, **options: Any) -> Path:
    """Write ``colorizer``'s network (with ``options`` fixed) to ``path`` as ONNX with dynamic B, H, W."""
    method = colorizer.method
    reason = method.export_blocker({k: v for k, v in options.items() if v is not None})
    if reason is not None:
        raise ExportError(f"cannot export {method.name!r} as one ONNX graph: {reason}")
    prepared = colorizer._prepare_options(options)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    m = method.size_multiple
    h, w = working_size(colorizer.size, colorizer.size, colorizer.size, m)
    sample = torch.zeros(1, 1, h, w, device=colorizer.device)
    module = _FixedOptions(colorizer, prepared).eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.register_custom_op_symbolic("aten::_upsample_bilinear2d_aa", _resize_antialiased, OPSET)
    with warnings.catch_warnings():
        # the tracer's notes on Python-side shape checks (e.g. "sides divisible by m") are expected: those
        # checks guard the caller's input, they are not part of the computation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (sample,), str(out), input_names=["l"], output_names=["ab"],
            dynamic_axes={"l": axes, "ab": axes}, opset_version=OPSET, dynamo=False,
        )
    method.eval()  # the exporter restores the wrapper's mode, which reaches the method
    _write_metadata(out, {
        "fewcolor.method": method.name,
        "fewcolor.size_multiple": str(m),
        "fewcolor.working_size": str(colorizer.size),
        "fewcolor.normalization": json.dumps(NORMALIZATION),
        "fewcolor.options": json.dumps(effective_options(method, options)),
        "fewcolor.contract": "input l: (B,1,H,W) float32 L/50-1, H and W multiples of size_multiple; "
                             "output ab: (B,2,H,W) float32 ab/110; see docs/EXPORT.md",
    })
    return out


def effective_options(method: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The inference options baked into the graph: those given, and for the others the model's own value where
    the option is also a config field (CIC's temperature and chroma, MetalGAN's adapt_steps: what
    ``predict_ab`` uses when the option is not given). Image options are recorded by file name when given as a
    path, else as ``"(an image)"``."""
    cfg = method.config
    config = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else {}
    out: dict[str, Any] = {}
    for opt in method.inference_options:
        value = options.get(opt.name)
        if value is None:
            value = config.get(opt.name)
        if value is None:
            continue
        if opt.is_image:
            out[opt.name] = Path(value).name if isinstance(value, (str, os.PathLike)) else "(an image)"
        elif isinstance(value, (bool, int, float, str)):
            out[opt.name] = value
    return out


def _write_metadata(path: Path, props: dict[str, str]) -> None:
    """Add the metadata and name the output's dimensions as the contract does: (batch, 2, height, width) (the
    tracer leaves the channel dimension with a generated name, e.g. ``Clipab_dim_1``)."""
    import onnx

    model = onnx.load(str(path))
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if output.name == "ab" and len(dims) == 4:
            for dim, name in zip(dims, ("batch", 2, "height", "width"), strict=True):
                if isinstance(name, int):
                    dim.dim_value = name
                else:
                    dim.dim_param = name
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


@dataclass
class CheckResult:
    """Parity of an exported graph with PyTorch on one image."""

    name: str
    size: tuple[int, int]
    working: tuple[int, int]
    max_abs_ab: float  # Lab units
    torch_ms: float
    onnx_ms: float


def check_onnx(colorizer: Colorizer, path: str | Path, images: Sequence[tuple[str, torch.Tensor]],
               repeats: int = 3, **options: Any) -> list[CheckResult]:
    """Run the ONNX graph with onnxruntime and the method in PyTorch on each image's working-size L;
    report max |Δab| in Lab units and the best-of-``repeats`` time of each runtime (both on
    ``torch.get_num_threads()`` threads)."""
    import onnxruntime as ort

    settings = ort.SessionOptions()
    settings.intra_op_num_threads = torch.get_num_threads()  # the same threads as PyTorch, for a fair time
    session = ort.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
    prepared = colorizer._prepare_options(options)
    results = []
    for name, rgb in images:
        height, width = int(rgb.shape[-2]), int(rgb.shape[-1])
        l = network_input(rgb, colorizer.size, colorizer.method.size_multiple).cpu()  # as Colorizer feeds it
        h, w = int(l.shape[-2]), int(l.shape[-1])
        torch_ms, ref = _best_time(lambda l=l: _torch_ab(colorizer, l, prepared), repeats)
        onnx_ms, got = _best_time(lambda l=l: session.run(["ab"], {"l": l.numpy()})[0], repeats)
        delta = float((torch.from_numpy(got) - ref).abs().max()) * AB_SCALE
        results.append(CheckResult(name, (height, width), (h, w), delta, torch_ms, onnx_ms))
    return results


@torch.no_grad()
def _torch_ab(colorizer: Colorizer, l: torch.Tensor, options: dict[str, Any]) -> torch.Tensor:
    return colorizer.method.predict_ab(l.to(colorizer.device), **options).float().cpu()


def _best_time(fn: Any, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - start) * 1000.0)
    return best, out


def sample_photos() -> list[tuple[str, torch.Tensor]]:
    """Real photographs shipped with scikit-image (astronaut, coffee, chelsea) as (3,H,W) tensors."""
    try:
        return samples.sample_photos(samples.SAMPLE_PHOTOS)
    except samples.SamplePhotosUnavailable as exc:
        raise ExportError("the check's sample photos come from scikit-image: pip install scikit-image, "
                          "or pass your own images") from exc
