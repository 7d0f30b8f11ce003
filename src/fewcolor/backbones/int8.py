"""int8 MAC descriptors: the tapped part of a backbone, statically quantized (a speed detail of the clustering).

The clustering's descriptor pass (MetalGAN §3.1, :mod:`fewcolor.backbones.clustering`) is bound by VGG16's
3×3 convolutions. Quantized to int8 (PyTorch's FX graph-mode static quantization, the engine's default
configuration: per-channel int8 weights, per-tensor uint8 activations from histogram observers) they ran
2.1× faster than bf16 autocast and 4.4× faster than fp32 on the AVX512 (VNNI, BF16) CPU where this was
measured. int8 does not need native bf16; PyTorch's x86 engine uses VNNI where the CPU has it, and ARM
builds have qnnpack — rates on those CPUs were not measured. The descriptors keep cosine ≥ 0.99 to
fp32's and the clusters agree with fp32's at the same size about as well as fp32 agrees with itself under
another K-means seed (docs/PERFORMANCE.md, "Clustering: int8 descriptors").

Calibration: the activation ranges are observed on images the caller describes (the dataset itself,
:data:`CALIBRATION_IMAGES` of them spread evenly over it), so nothing is bundled and the descriptor is
a deterministic function of the data. The ranges found — one scale and zero point per quantized
activation — are :meth:`Int8Descriptor.qparams`, a small JSON-able dict; a copy built with
``qparams=`` computes exactly the same descriptors without calibrating (MetalGAN embeds its test-time
queries so).

Not every backbone can be quantized so: each tapped layer must be a leaf module of an FX-traceable
network (VGG16's ``features.N`` are; ResNet50's ``layer4.0`` is a block). :func:`int8_taps_supported` says so
before anything is built; the clustering then computes in bf16 or fp32 instead.
"""

from __future__ import annotations

import copy
import functools
import re
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from fewcolor.backbones.features import FeatureExtractor, network_input
from fewcolor.backbones.registry import load_backbone
from fewcolor.hardware import int8_engine, quantized_engine

__all__ = ["CALIBRATION_IMAGES", "Int8Descriptor", "int8_taps_supported"]

#: images whose activations set the int8 ranges (spread evenly over the dataset): 16 gave the same
#: descriptors as 32 at half the calibration time (docs/PERFORMANCE.md, "Clustering: int8 descriptors")
CALIBRATION_IMAGES = 16
#: the buffers convert_fx gives the quantize nodes' scale and zero point (``..._input_scale_0`` etc.)
_QPARAM_BUFFER = re.compile(r"_(scale|zero_point)_\d+$")

def _tapped_graph(extractor: FeatureExtractor) -> fx.GraphModule:
    """The backbone traced by FX, cut after the last tapped layer, returning the tapped maps in order.

    Traced in place, then cut, then copied: the copy holds the tapped part only (not e.g. VGG16's 0.5 GB
    classifier). The extractor's hooks (which stop its forward pass) are set aside meanwhile: tracing runs
    the hooks of non-leaf modules, and a copy would drag the extractor along through them.
    """
    stashed = {module: dict(module._forward_hooks) for module in extractor.net.modules() if module._forward_hooks}
    try:
        for module in stashed:
            module._forward_hooks.clear()
        graph_module = fx.symbolic_trace(extractor.net)
        calls = {node.target: node for node in graph_module.graph.nodes if node.op == "call_module"}
        missing = [name for name in extractor.layers if name not in calls]
        if missing:
            raise ValueError(f"int8 descriptors need each tapped layer to be a leaf module of "
                             f"{extractor.backbone_name}; {', '.join(missing)} is not: use fp32 or bf16 descriptors")
        output = next(node for node in graph_module.graph.nodes if node.op == "output")
        output.args = (tuple(calls[name] for name in extractor.layers),)
        graph_module.graph.eliminate_dead_code()
        graph_module.delete_all_unused_submodules()
        graph_module.recompile()
        return copy.deepcopy(graph_module).eval()
    finally:
        for module, hooks in stashed.items():
            module._forward_hooks.update(hooks)


@functools.lru_cache(maxsize=32)
def int8_taps_supported(backbone: str, layer: str) -> bool:
    """Whether an int8 copy can tap ``layer`` (comma-separated module paths) of ``backbone`` on this PyTorch
    build: each path a leaf module of the FX-traced network. Checked on the structure alone (the network
    built on the meta device: no weights read, no memory); answered once per pair."""
    if int8_engine() is None:
        return False
    try:
        with torch.device("meta"):
            net = load_backbone(backbone, pretrained=False)
        calls = {node.target for node in fx.symbolic_trace(net).graph.nodes if node.op == "call_module"}
    except Exception:  # any network FX cannot trace (e.g. shape arithmetic on inputs)
        return False
    return all(name.strip() in calls for name in layer.split(","))


def _scalar_qparams(module: nn.Module) -> dict[str, float | int]:
    """Every activation scale and zero point of a converted model, by attribute path."""
    found: dict[str, float | int] = {}
    for prefix, sub in module.named_modules():
        for attr in ("scale", "zero_point"):
            value = getattr(sub, attr, None)
            if isinstance(value, (float, int)) and not isinstance(value, bool):
                found[f"{prefix}.{attr}" if prefix else attr] = value
        for name, buf in list(sub.named_buffers(recurse=False)):
            if _QPARAM_BUFFER.search(name) and buf.numel() == 1:  # FX numbers them: _scale_0, _scale_1...
                found[f"{prefix}.{name}" if prefix else name] = buf.item()
    return found


class Int8Descriptor(nn.Module):
    """``(B,1,H,W)`` normalised L → MAC descriptors ``(B, D)``, like ``extractor``, with int8 convolutions.

    Built from a :class:`FeatureExtractor` (``pooling="mac"``) and either ``calibration`` (normalised L at
    the size it will describe, :data:`CALIBRATION_IMAGES` images or so) or ``qparams`` from another copy.
    CPU only: quantized convolutions have no CUDA kernels in PyTorch.
    """

    mean: torch.Tensor  # registered buffer
    std: torch.Tensor  # registered buffer

    def __init__(self, extractor: FeatureExtractor, calibration: torch.Tensor | None = None,
                 qparams: dict[str, Any] | None = None) -> None:
        super().__init__()
        engine = int8_engine()
        if engine is None:
            raise RuntimeError("this PyTorch build has no quantized engine for int8 convolutions; use fp32 or bf16")
        if extractor.pooling != "mac":
            raise ValueError(f"int8 descriptors pool by MAC; the extractor pools by {extractor.pooling!r}")
        if (calibration is None) == (qparams is None):
            raise ValueError("give exactly one of calibration (normalised L images) or qparams (from another copy)")
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        self.engine = engine
        self.min_size = extractor.info.min_size
        self.register_buffer("mean", extractor.mean.detach().clone(), persistent=False)
        self.register_buffer("std", extractor.std.detach().clone(), persistent=False)
        graph = _tapped_graph(extractor)
        sample = calibration if calibration is not None else torch.zeros(2, 1, 64, 64)
        inputs = network_input(sample.float().cpu(), self.mean, self.std, self.min_size)
        # fork_rng: quantization draws from the global RNG, which must stay the caller's (seeded runs)
        with quantized_engine(engine), torch.no_grad(), warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            # torch.ao.quantization warns that it is deprecated (for torchao) on every use: said once, in
            # hardware.int8_engine's docstring and docs/PERFORMANCE.md, not on every clustering
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*", category=UserWarning)
            prepared = prepare_fx(graph, get_default_qconfig_mapping(engine), example_inputs=(inputs[:1],))
            for batch in inputs.split(32):  # observers see the calibration images (or zeros, overwritten below)
                prepared(batch)
            self.net = convert_fx(prepared)
        if qparams is not None:
            self._load_qparams(qparams)

    def qparams(self) -> dict[str, float | int]:
        """The activation scales and zero points found by calibration (JSON-able; see ``qparams=``)."""
        return _scalar_qparams(self.net)

    def _load_qparams(self, qparams: dict[str, Any]) -> None:
        mine = _scalar_qparams(self.net)
        if set(mine) != set(qparams):
            raise ValueError("the stored int8 calibration does not fit this backbone or PyTorch version "
                             f"({len(qparams)} values for {len(mine)})")
        for path, value in qparams.items():
            owner_path, _, attr = path.rpartition(".")
            owner = self.net.get_submodule(owner_path) if owner_path else self.net
            current = getattr(owner, attr)
            if isinstance(current, torch.Tensor):
                current.fill_(value)
            else:
                setattr(owner, attr, type(current)(value))

    def train(self, mode: bool = True) -> Int8Descriptor:
        return super().train(False)  # frozen, like the extractor it copies

    @torch.no_grad()
    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        x = network_input(l_norm.float().cpu(), self.mean, self.std, self.min_size)
        with quantized_engine(self.engine):
            maps = self.net(x)
        vecs = [F.normalize(fmap.flatten(2).amax(dim=2), dim=1) for fmap in maps]
        vec = torch.cat(vecs, dim=1) if len(vecs) > 1 else vecs[0]
        return F.normalize(vec, dim=1) if len(vecs) > 1 else vec
