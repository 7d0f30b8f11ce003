"""LPIPS v0.1 against the published values on the reference example images."""

from __future__ import annotations

import pytest
import torch

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.io.image import read_rgb
from fewcolor.metrics.lpips import LPIPS

pytestmark = pytest.mark.weights

# Published in the PerceptualSimilarity README (lpips_2imgs.py on ex_ref vs ex_p0 / ex_p1).
PUBLISHED = {"alex": (0.722, 0.138), "vgg": (0.569, 0.422)}


def _needs(net: str) -> None:
    for name in (f"lpips_{net}_lin", {"alex": "alexnet", "vgg": "vgg16"}[net]):
        if package_file(get_spec(name)) is None:
            pytest.skip(missing_message(get_spec(name)))


@pytest.fixture(scope="module")
def examples(shared_dir):
    folder = shared_dir / "fixtures" / "lpips"
    names = ("ex_ref", "ex_p0", "ex_p1")
    if not all((folder / f"{n}.png").is_file() for n in names):
        pytest.skip(f"LPIPS reference images missing in {folder}")
    return [read_rgb(folder / f"{n}.png")[None] for n in names]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_published_values(net, examples):
    _needs(net)
    ref, p0, p1 = examples
    d = LPIPS(net)(torch.cat([ref, ref]), torch.cat([p0, p1]))
    assert d[0].item() == pytest.approx(PUBLISHED[net][0], abs=5e-4)
    assert d[1].item() == pytest.approx(PUBLISHED[net][1], abs=5e-4)


def test_identity_symmetry_and_frozen(examples):
    _needs("alex")
    ref, p0, _ = examples
    model = LPIPS()
    assert model(ref, ref).item() == 0.0
    assert model(ref, p0).item() == pytest.approx(model(p0, ref).item(), abs=1e-6)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="alex' or 'vgg"):
        LPIPS("squeeze")
