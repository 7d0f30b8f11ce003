"""Box filter, guided filter (He et al. 2010) and its weighted form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fewcolor.color.guided_filter import box_mean, box_sum, guided_filter


def test_box_mean_and_sum_match_pooling_with_border_clipping():
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(0))
    ref_mean = F.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=False)
    ref_sum = F.avg_pool2d(x, 7, stride=1, padding=3, count_include_pad=True) * 49
    assert torch.allclose(box_mean(x, 3), ref_mean, atol=1e-5)
    assert torch.allclose(box_sum(x, 3), ref_sum, atol=1e-4)
    with pytest.raises(ValueError, match="radius"):
        box_sum(x, -1)


def naive_guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He et al.'s Algorithm 1 written with average pooling (the unweighted reference)."""
    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, 2 * r + 1, stride=1, padding=r, count_include_pad=False)

    mu_i, mu_p = mean(guide), mean(src)
    a = (mean(guide * src) - mu_i * mu_p) / (mean(guide * guide) - mu_i**2 + eps)
    b = mu_p - a * mu_i
    return mean(a) * guide + mean(b)


def test_unweighted_guided_filter_is_the_papers_algorithm():
    g = torch.Generator().manual_seed(1)
    guide, src = torch.rand(1, 1, 20, 24, generator=g), torch.rand(1, 2, 20, 24, generator=g)
    out = guided_filter(guide, src, 3, 1e-2)
    assert torch.allclose(out, naive_guided_filter(guide, src, 3, 1e-2), atol=1e-4)
    assert torch.allclose(guided_filter(guide, src, 3, 1e-2, weight=torch.ones_like(guide)), out, atol=1e-5)


def test_edges_of_the_guide_are_kept_and_flat_input_unchanged():
    guide = torch.zeros(1, 1, 16, 16)
    guide[..., 8:] = 1.0
    src = guide.repeat(1, 2, 1, 1) * 0.5 - 0.2  # a colour step exactly on the guide's edge
    out = guided_filter(guide, src, 4, 1e-4)
    assert (out - src).abs().max() < 1e-3
    flat = torch.full((1, 2, 16, 16), 0.3)
    assert torch.allclose(guided_filter(guide, flat, 4, 1e-3), flat, atol=1e-5)


def test_weights_let_unweighted_pixels_take_their_neighbours_colour():
    guide = torch.full((1, 1, 12, 12), 0.5)
    src = torch.full((1, 2, 12, 12), 0.4)
    src[..., 5:7, 5:7] = -0.9  # wrong colour in the middle ...
    weight = torch.ones_like(guide)
    weight[..., 5:7, 5:7] = 0.0  # ... that nobody trusts
    out = guided_filter(guide, src, 3, 1e-3, weight=weight)
    assert (out[..., 5:7, 5:7] - 0.4).abs().max() < 1e-4
    unweighted = guided_filter(guide, src, 3, 1e-3)
    assert (unweighted[..., 5:7, 5:7] - 0.4).abs().max() > 0.05  # the plain filter smears the wrong colour in


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match="guide"):
        guided_filter(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8), 1, 1e-3)
