import pytest
import torch

from fewcolor.color.lab import rgb_to_lab
from fewcolor.methods.registry import build_method
from fewcolor.pipeline import Colorizer, working_size


def test_working_size_keeps_aspect_and_multiple():
    assert working_size(768, 1024, 256, 32) == (192, 256)
    h, w = working_size(767, 1023, 64, 16)
    assert h % 16 == 0 and w % 16 == 0 and abs(w / h - 1023 / 767) < 0.3
    assert working_size(10, 3000, 64, 16) == (16, 64)  # never below one multiple


@pytest.mark.parametrize("height,width", [(767, 1023), (33, 57), (64, 64), (8, 9)])
def test_output_keeps_input_size_and_full_resolution_l(height, width):
    torch.manual_seed(0)
    method = build_method("unet", "tiny")
    colorizer = Colorizer(method, device="cpu")
    image = torch.rand(3, height, width)
    out = colorizer.colorize(image)
    assert out.shape == (3, height, width)
    assert out.min() >= 0 and out.max() <= 1
    l_in = rgb_to_lab(image[None])[0, 0]
    l_out = rgb_to_lab(out[None])[0, 0]
    # equal up to gamut clipping of the merged colour; far finer than the working resolution could give
    assert (l_in - l_out).abs().median() < 0.5
    assert torch.quantile((l_in - l_out).abs().flatten(), 0.9) < 2.0


def test_tiny_images_fail_clearly():
    colorizer = Colorizer(build_method("unet", "tiny"), device="cpu")
    with pytest.raises(ValueError, match=r"1×1.*at least 8×8"):
        colorizer.colorize(torch.rand(3, 1, 1))


def test_grey_input_and_unknown_option():
    colorizer = Colorizer(build_method("unet", "tiny"), device="cpu")
    assert colorizer.colorize(torch.rand(1, 20, 30)).shape == (3, 20, 30)
    with pytest.raises(ValueError, match="does not take inference option"):
        colorizer.colorize(torch.rand(3, 20, 30), temperature=0.3)


def test_refuses_to_overwrite_input(tmp_path):
    from fewcolor.io.image import write_rgb

    src = tmp_path / "a.png"
    write_rgb(src, torch.rand(3, 16, 16))
    colorizer = Colorizer(build_method("unet", "tiny"), device="cpu")
    with pytest.raises(ValueError, match="overwrite"):
        colorizer.colorize_file(src, src)


def test_constructor_and_argument_mistakes_fail_in_one_line(tmp_path):
    method = build_method("unet", "tiny")
    with pytest.raises(TypeError, match=r"got a str \(a path: use Colorizer.from_checkpoint"):
        Colorizer("model.safetensors")  # type: ignore[arg-type]
    for size in (0, -5, 2.5):
        with pytest.raises(ValueError, match="size must be a positive integer"):
            Colorizer(method, device="cpu", size=size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pixel_budget must be a positive integer"):
        Colorizer(method, device="cpu", pixel_budget=0)
    with pytest.raises(ValueError, match="device 'gpu0' cannot be used here"):
        Colorizer(method, device="gpu0")
    if not torch.cuda.is_available():  # torch's own AssertionError, 14 frames deep, before
        with pytest.raises(ValueError, match="device 'cuda' cannot be used here"):
            Colorizer(method, device="cuda")
    with pytest.raises(TypeError, match=r"from_checkpoint takes the path of a \.safetensors model, got a NoneType"):
        Colorizer.from_checkpoint(None)  # type: ignore[arg-type]
    colorizer = Colorizer(method, device="cpu", size=64)
    assert colorizer.size == 64
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got 2\.5"):
        colorizer.colorize(torch.rand(3, 16, 16), batch_size=2.5)  # type: ignore[arg-type]
