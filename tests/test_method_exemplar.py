"""The exemplar method: dense correspondence to stored supports (real VGG16 weights, tiny images)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.color.ciede2000 import delta_e_2000
from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.normalize import denormalize_ab, normalize_ab, normalize_l
from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.registry import build_method, load_method, save_method
from fewcolor.pipeline import Colorizer

pytestmark = pytest.mark.weights

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def _vgg() -> None:
    if package_file(get_spec("vgg16")) is None:
        pytest.skip(missing_message(get_spec("vgg16")))


def photo(name: str, size: int = SIZE, crop: tuple[int, int, int] | None = None) -> torch.Tensor:
    """A scikit-image photo as (1,3,size,size) RGB; ``crop`` = (top, left, side) of the original first."""
    data = pytest.importorskip("skimage.data")
    rgb = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float()[None] / 255
    if crop is not None:
        top, left, side = crop
        rgb = rgb[..., top: top + side, left: left + side]
    return F.interpolate(rgb, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class Samples(torch.utils.data.Dataset):
    def __init__(self, rgb: torch.Tensor) -> None:
        self.lab = rgb_to_lab(rgb)

    def __len__(self) -> int:
        return len(self.lab)

    def __getitem__(self, i: int) -> dict:
        return {"l": normalize_l(self.lab[i, :1]), "ab": normalize_ab(self.lab[i, 1:]), "path": f"s{i}.png"}


def adapted(rgb: torch.Tensor, **overrides) -> torch.nn.Module:
    method = build_method("exemplar", "tiny", {"fallback": "stats", **overrides})
    assert method.adapt(Samples(rgb), steps=0, seed=0) is True
    return method.eval()


def colour(method, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ΔE00 map of the transfer, ΔE00 map of the grey image, confidence), all (1,H,W)."""
    lab = rgb_to_lab(rgb)
    with torch.no_grad():
        ab, conf = method.transfer(normalize_l(lab[:, :1]), method.stored_supports())
    truth = lab.movedim(1, -1)
    pred = torch.cat([lab[:, :1], denormalize_ab(ab)], 1).movedim(1, -1)
    grey = torch.cat([lab[:, :1], torch.zeros_like(ab)], 1).movedim(1, -1)
    return delta_e_2000(pred, truth), delta_e_2000(grey, truth), conf[:, 0]


def test_identical_query_and_support_give_back_the_supports_colours():
    rgb = photo("astronaut")
    de, grey, conf = colour(adapted(rgb), rgb)
    matched = conf > 0.5
    assert matched.float().mean() > 0.9
    assert de[matched].max() < 1.0
    assert grey.mean() > 5.0  # the image is colourful: giving it back is not trivial


def test_a_shifted_copy_is_coloured_correctly():
    support = photo("astronaut", crop=(0, 100, 400))
    query = photo("astronaut", crop=(48, 148, 400))  # 48 px down and right in the original = ~8 px here
    de, grey, _ = colour(adapted(support), query)
    inner = (slice(None), slice(0, 52), slice(0, 52))  # the part of the query the support also shows
    assert de[inner].mean() < 0.4 * grey[inner].mean()


def test_a_flipped_copy_is_coloured_correctly():
    rgb = photo("astronaut")
    de, grey, _ = colour(adapted(rgb), rgb.flip(-1))
    assert de.mean() < 0.55 * grey.mean()


def test_confidence_falls_where_nothing_matches():
    support = photo("astronaut")
    query = support.clone()
    query[..., SIZE // 2:] = photo("coffee")[..., SIZE // 2:]  # right half: something the support never shows
    _, _, conf = colour(adapted(support), query)
    left, right = conf[..., 4: SIZE // 2 - 8].mean(), conf[..., SIZE // 2 + 8:].mean()
    assert left > 0.6
    assert right < 0.5 * left


def test_fallback_is_the_supports_colour_per_lightness_where_nothing_matches():
    support = photo("astronaut")
    method = adapted(support, sim_low=2.0, sim_high=3.0)  # nothing can reach the ramp: all fallback
    l = normalize_l(rgb_to_lab(photo("coffee"))[:, :1])
    with torch.no_grad():
        ab, conf = method.transfer(l, method.stored_supports())
        expected = method.fallback_ab(l, method.stored_supports(), "stats")
    assert conf.max() == 0
    assert torch.allclose(ab, expected)


def test_attention_fallback_colours_a_flipped_copy_better_than_the_colour_per_lightness():
    rgb = photo("astronaut")
    lab = rgb_to_lab(rgb.flip(-1))
    l = normalize_l(lab[:, :1])
    method = adapted(rgb)
    supports = method.stored_supports()
    truth = lab.movedim(1, -1)
    errors = {}
    with torch.no_grad():
        for choice in ("attention", "stats"):
            ab = method.fallback_ab(l, supports, choice)
            pred = torch.cat([lab[:, :1], denormalize_ab(ab)], 1).movedim(1, -1)
            errors[choice] = delta_e_2000(pred, truth).mean()
    grey = delta_e_2000(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], 1).movedim(1, -1), truth).mean()
    assert errors["attention"] < 0.5 * grey
    assert errors["attention"] < 0.8 * errors["stats"]


def test_save_load_round_trip_keeps_supports_and_outputs(tmp_path):
    rgb = photo("astronaut")
    method = build_method("exemplar", "tiny", {"fallback": "stats"})
    two = [Samples(rgb)[0], Samples(photo("chelsea", size=48)[..., :40])[0]]  # supports of different shapes
    method.adapt(two, steps=0, seed=0)
    assert method.num_supports == 2 and method.support_names == ["s0.png", "s0.png"]
    path = save_method(method, tmp_path / "ex.safetensors")
    loaded = load_method(path)
    l = normalize_l(rgb_to_lab(rgb)[:, :1])
    with torch.no_grad():
        assert torch.equal(method.predict_ab(l), loaded.predict_ab(l))
    assert loaded.num_supports == 2 and loaded.support_names == ["s0.png", "s0.png"]


def test_adapt_keeps_a_seeded_bounded_subset():
    rgb = photo("astronaut", size=32).repeat(5, 1, 1, 1)
    method = build_method("exemplar", "tiny", {"max_supports": 3, "fallback": "stats"})
    method.adapt(Samples(rgb), steps=0, seed=3)
    first = list(method.support_names)
    method.adapt(Samples(rgb), steps=0, seed=3)
    assert method.num_supports == 3 and method.support_names == first


def test_reference_option_and_errors(tmp_path):
    rgb = photo("astronaut")
    empty = build_method("exemplar", "tiny", {"fallback": "stats"})
    colorizer = Colorizer(empty, device="cpu", size=SIZE)
    with pytest.raises(InferenceOptionError, match="no support images"):
        colorizer.colorize(rgb[0])
    out = colorizer.colorize(rgb[0], reference=rgb[0])
    by_adapt = Colorizer(adapted(rgb), device="cpu", size=SIZE).colorize(rgb[0])
    assert torch.allclose(out, by_adapt, atol=1e-5)
    with pytest.raises(InferenceOptionError, match="not a file"):
        colorizer.colorize(rgb[0], reference=rgb[0], fallback=str(tmp_path / "missing.safetensors"))


def test_a_grey_reference_is_refused_in_one_line_naming_the_file(tmp_path):
    from click.testing import CliRunner

    from fewcolor.cli import main
    from fewcolor.data.grey import is_grey
    from fewcolor.io.image import write_rgb

    rgb = photo("astronaut")
    grey = rgb[0].mean(0, keepdim=True).expand(3, -1, -1).contiguous()
    assert is_grey(grey) and not is_grey(rgb[0])  # the one detector the folder scans use
    method = adapted(rgb)
    method.check_options({"reference": rgb[0]})  # a colour reference passes
    for call in (lambda: method.check_options({"reference": grey}),
                 lambda: Colorizer(method, device="cpu", size=SIZE).colorize(rgb[0], reference=grey),
                 lambda: method.predict_ab(normalize_l(rgb_to_lab(rgb)[:, :1]), reference=grey)):
        with pytest.raises(InferenceOptionError, match=r"reference image looks grey.*must be a colour image"):
            call()
    grey_file = tmp_path / "grey" / "y.png"
    grey_file.parent.mkdir()
    write_rgb(grey_file, grey)
    with pytest.raises(InferenceOptionError, match=re.escape(f"reference {grey_file} looks grey")):
        method.check_options({"reference": grey_file})
    # the command line: one Error line, a usage mistake (exit 2), nothing coloured
    model = save_method(method, tmp_path / "ex.safetensors")
    query = tmp_path / "query.png"
    write_rgb(query, grey)
    for args in (["colorize", model, query, "-o", tmp_path / "out", "--reference", grey_file],
                 ["evaluate", model, "--data", grey_file.parent, "-o", tmp_path / "ev", "--no-fid",
                  "--reference", grey_file]):
        res = CliRunner().invoke(main, [str(a) for a in args])
        errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
        assert res.exit_code == 2 and len(errors) == 1 and "looks grey" in errors[0], res.output
        assert "the reference must be a colour image" in errors[0]
    assert str(grey_file) in errors[0]  # evaluate passes the path: the error names the file
    assert not (tmp_path / "out").exists()  # refused before any folder or image was made


def test_fallback_checkpoint_of_another_method_is_used(tmp_path):
    other = build_method("unet", "tiny").eval()
    path = save_method(other, tmp_path / "unet.safetensors")
    method = adapted(photo("astronaut"), sim_low=2.0, sim_high=3.0, fallback=str(path))
    l = normalize_l(rgb_to_lab(photo("coffee"))[:, :1])
    with torch.no_grad():
        ab = method.predict_ab(l)
        want = load_method(path).predict_ab(l)
    assert torch.allclose(ab, want, atol=1e-5)


def test_bundled_fallback_is_the_bundled_checkpoint_when_present(tmp_path, monkeypatch):
    import fewcolor.pretrained as pretrained

    monkeypatch.setattr(pretrained, "BUNDLED_MODEL", tmp_path / "weights" / "base.safetensors")
    assert pretrained.bundled_model_path() is None
    method = adapted(photo("astronaut"), sim_low=2.0, sim_high=3.0, fallback="bundled")
    l = normalize_l(rgb_to_lab(photo("coffee"))[:, :1])
    with torch.no_grad():
        stats = method.fallback_ab(l, method.stored_supports(), "stats")
        assert torch.allclose(method.predict_ab(l), stats)  # no bundled model: the supports' statistics
        path = save_method(build_method("unet", "tiny").eval(), tmp_path / "weights" / "base.safetensors")
        assert pretrained.bundled_model_path() == path
        assert torch.allclose(method.predict_ab(l), load_method(path).predict_ab(l), atol=1e-5)


def test_training_with_the_loop_stores_the_training_images(tmp_path, emoji_dir):
    from fewcolor.train.loop import train
    from method_checks import four_emoji, opts

    method = build_method("exemplar", "tiny", {"fallback": "stats", "max_supports": 3})
    result = train(method, four_emoji(emoji_dir), opts(tmp_path / "run", steps=1))
    loaded = load_method(result.checkpoint)
    assert loaded.num_supports == 3 and len(set(loaded.support_names)) == 3
