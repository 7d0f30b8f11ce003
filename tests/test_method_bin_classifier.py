"""The 313-bin classifiers' shared parts (``BinClassifier``): buffer names, prior, targets, temperature."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fewcolor.color.prior import prior_and_weights
from fewcolor.color.soft_encode import soft_encode_ab_normalized
from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.bin_classifier import BinClassifier
from fewcolor.methods.registry import build_method, load_method
from fewcolor.pretrained import bundled_model_path

TINY = {"cic": {}, "base": {"encoder_pretrained": False}}


@pytest.mark.parametrize("name", sorted(TINY))
def test_prior_buffers_keep_their_checkpoint_names(name: str) -> None:
    method = build_method(name, "tiny", TINY[name])
    assert isinstance(method, BinClassifier)
    state = method.state_dict()
    assert list(state)[:2] == ["prior", "bin_weights"]
    assert torch.allclose(state["prior"], torch.full((313,), 1 / 313))
    assert torch.equal(state["bin_weights"], torch.ones(313))
    prior = torch.rand(313, generator=torch.Generator().manual_seed(0))
    method.set_prior(prior)
    p, w = prior_and_weights(prior, method.config.lam)
    assert torch.equal(method.prior, p) and torch.equal(method.bin_weights, w)


@pytest.mark.parametrize("name", sorted(TINY))
def test_errors_name_the_method(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name}: lam must be in"):
        build_method(name, "tiny", {**TINY[name], "lam": 1.5})
    method = build_method(name, "tiny", TINY[name]).eval()
    with pytest.raises(InferenceOptionError, match=f"{name}: temperature must be >= 0"):
        method.annealing_temperature({"temperature": -1.0})
    assert method.annealing_temperature({}) == method.config.temperature
    assert method.annealing_temperature({"temperature": 0.2}) == 0.2


def test_targets_are_the_bilinear_truth_soft_encoded() -> None:
    method = build_method("cic", "tiny")
    ab = (torch.rand(2, 2, 32, 32, generator=torch.Generator().manual_seed(1)) - 0.5) * 0.6
    small = F.interpolate(ab, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.equal(method.targets(ab, (8, 8)), soft_encode_ab_normalized(small, k=5, sigma=5.0))


def test_bundled_model_loads_its_prior_buffers() -> None:
    path = bundled_model_path()
    if path is None:
        pytest.skip("this checkout ships no bundled base model")
    model = load_method(path)
    assert isinstance(model, BinClassifier)
    assert abs(model.prior.sum().item() - 1) < 1e-5
    assert not torch.equal(model.bin_weights, torch.ones(313))  # the trained weights, not the initial ones


@pytest.mark.parametrize("name", sorted(TINY))
def test_chroma_scales_the_decoded_ab_and_is_declared(name: str) -> None:
    method = build_method(name, "tiny", TINY[name]).eval()
    assert "chroma" in {o.name for o in method.inference_options}
    l = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        full = method.predict_ab(l)
        half = method.predict_ab(l, chroma=0.5)
        grey = method.predict_ab(l, chroma=0.0)
        assert full.abs().max() > 1e-3  # something to scale
        torch.testing.assert_close(half, full * 0.5)
        assert torch.equal(grey, torch.zeros_like(full))
        doubled = method.predict_ab(l, chroma=2.0)
        assert doubled.abs().max() <= 1.0
        # each pixel keeps its hue: the doubled ab is parallel to the decoded one
        cross = doubled[:, 0] * full[:, 1] - doubled[:, 1] * full[:, 0]
        assert cross.abs().max() < 1e-5 and bool(((doubled * full).sum(1) >= 0).all())
    with pytest.raises(InferenceOptionError, match=f"{name}: chroma must be in"):
        method.scaled_chroma(full, {"chroma": 2.5})
    with pytest.raises(ValueError, match=f"{name}: chroma must be in"):
        build_method(name, "tiny", {**TINY[name], "chroma": -1.0})
    ab = torch.tensor([0.8, 0.3]).view(1, 2, 1, 1)  # saturated past the box at 2×: scaled along its hue
    torch.testing.assert_close(method.scaled_chroma(ab, {"chroma": 2.0}), torch.tensor([1.0, 0.375]).view(1, 2, 1, 1))
    muted = build_method(name, "tiny", {**TINY[name], "chroma": 0.25}).eval()
    muted.load_state_dict(method.state_dict())
    with torch.no_grad():  # the config's value is the default of the option; an explicit option wins
        torch.testing.assert_close(muted.predict_ab(l), full * 0.25)
        torch.testing.assert_close(muted.predict_ab(l, chroma=1.0), full)
