"""The web server's API: options from the registry, variants, door refusals (4xx with a reason), queue, cleanup."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette", reason="the [serve] extra (starlette, uvicorn, python-multipart) is not installed")
pytest.importorskip("multipart", reason="the [serve] extra (python-multipart) is not installed")

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its test client; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from tests.serve_helpers import tiny_memopainter_checkpoint

from fewcolor.methods.registry import build_method, save_method
from fewcolor.serve.app import Service, create_app
from fewcolor.serve.limits import Limits


def _png(width: int = 48, height: int = 40, mode: str = "L", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (height, width) if mode == "L" else (height, width, 3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    unet = save_method(build_method("unet", "tiny"), folder / "unet.safetensors")
    return [tiny_memopainter_checkpoint(folder / "memo.safetensors"), unet]


def _client(checkpoints, **limits) -> tuple[TestClient, Service]:
    service = Service(list(checkpoints), Limits(**limits), device="cpu", include_bundled=False)
    return TestClient(create_app(service)), service


def test_models_carry_the_registry_options(checkpoints):
    client, _ = _client(checkpoints)
    with client:
        data = client.get("/api/models").json()
    memo, unet = data["models"]
    assert memo["method"] == "memopainter" and unet["options"] == []
    variant = next(o for o in memo["options"] if o["name"] == "variant")
    assert variant["kind"] == "int" and variant["sweep"] == "variants" and variant["minimum"] == 1
    assert {o["kind"] for o in memo["options"]} == {"int", "str", "image-rgb"}
    assert "color" in client.get("/").text.lower()


def test_colorize_variants_keep_size_and_differ(checkpoints):
    client, service = _client(checkpoints)
    with client:
        reply = client.post("/api/colorize", data={"model": "m1", "opt.variants": "3"},
                            files={"image": ("grey.png", _png(), "image/png")})
        assert reply.status_code == 200, reply.text
        urls = reply.json()["results"]
        images = [np.asarray(Image.open(io.BytesIO(client.get(u).content))) for u in urls]
        assert len(images) == 3 and all(im.shape == (40, 48, 3) for im in images)
        assert np.abs(images[0].astype(int) - images[1].astype(int)).max() > 0
        ids = [u.rsplit("/", 1)[-1] for u in urls]
        zipped = client.post("/api/zip", json={"items": [{"id": i, "name": "grey_color.png"} for i in ids]})
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
        import zipfile

        assert zipfile.ZipFile(io.BytesIO(zipped.content)).namelist() == [
            "grey_color.png", "grey_color_2.png", "grey_color_3.png"]
        assert [p.name for p in service.workdir.iterdir() if p.name.startswith("req-")] == []
    assert not service.workdir.exists()  # removed at shutdown


@pytest.mark.parametrize(
    "files,data,limits,status,reason",
    [
        ({"image": ("photo.png", b"this is not an image at all", "image/png")}, {}, {}, 415, "not an image"),
        ({"image": ("big.png", _png(200, 100), "image/png")}, {}, {"max_pixels": 10_000}, 413, "pixel budget"),
        ({"image": ("big.png", _png(200, 100), "image/png")}, {}, {"max_upload_bytes": 1000}, 413, "limit is"),
        ({"image": ("tiny.png", _png(5, 30), "image/png")}, {}, {}, 422, "too small"),
        ({"image": ("a.png", _png(), "image/png")}, {"opt.temperature": "0.3"}, {}, 422, "has no option"),
        ({"image": ("a.png", _png(), "image/png")}, {"opt.variant": "x"}, {}, 422, "not a valid int"),
        ({"image": ("a.png", _png(), "image/png")}, {"opt.variants": "99"}, {}, 422, "between 1 and"),
        ({"image": ("a.png", _png(), "image/png")}, {"model": "nope"}, {}, 404, "unknown model"),
        ({"image": ("a.png", _png(), "image/png")}, {"opt.reference": "red"}, {}, 422, "takes an image file"),
        ({}, {}, {}, 400, "expected a file upload"),
        ({"image": ("a.png", _png(), "image/png")}, {"opt.variant": "9"}, {}, 422, "memory holds 4"),
        # worded for the page: the option's name, no command-line flag or Python function, no internal repr
        ({"image": ("a.png", _png(), "image/png")}, {"opt.palette": "#e03c31,notacolor"}, {}, 422,
         "memopainter: palette: entry 2 'notacolor' is not a hex colour"),
        ({"image": ("a.png", _png(), "image/png")}, {"opt.variants": "3", "opt.palette": "#e03c31"}, {}, 422,
         "variant (or variants) and palette cannot be combined"),
        ({"image": ("a.png", _png(), "image/png"), "model": ("m.txt", b"m1", "text/plain")}, {}, {}, 422,
         "model takes a value, not a file"),
        ({"image": ("a.png", _png(), "image/png"), "opt.variant": ("v.txt", b"2", "text/plain")}, {}, {}, 422,
         "option variant takes a value, not a file"),
        ({"image": ("a.png", _png(), "image/png"), "opt.variants": ("v.txt", b"2", "text/plain")}, {}, {}, 422,
         "variants takes a whole number, not a file"),
    ],
)
def test_refusals_are_4xx_with_a_reason(checkpoints, files, data, limits, status, reason):
    client, _ = _client(checkpoints, **limits)
    with client:
        reply = client.post("/api/colorize", data={"model": "m1", **data} if "model" not in files else data,
                            files=files)
    assert reply.status_code == status and reason in reply.json()["error"], reply.text
    assert not any(word in reply.text for word in ("--palette", "palette_from_hex", "UploadFile", "['variant'"))


def test_routes_and_methods_that_do_not_exist_answer_json(checkpoints):
    client, _ = _client(checkpoints)
    with client:
        wrong_method = client.get("/api/colorize")
        nowhere = client.get("/api/nope")
    assert wrong_method.status_code == 405 and wrong_method.headers["content-type"] == "application/json"
    assert wrong_method.json()["error"] == "GET /api/colorize is not allowed; use POST"
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "nothing at /api/nope"


def test_full_queue_answers_429(checkpoints):
    client, service = _client(checkpoints, queue_size=1)
    with client:
        service._pending = 1  # one request already in progress
        reply = client.post("/api/colorize", data={"model": "m2"}, files={"image": ("a.png", _png(), "image/png")})
        assert reply.status_code == 429 and "busy" in reply.json()["error"] and reply.headers["retry-after"]
        service._pending = 0
        assert client.post("/api/colorize", data={"model": "m2"},
                           files={"image": ("a.png", _png(), "image/png")}).status_code == 200


def test_adapt_on_the_spot_adds_a_model(checkpoints):
    client, _ = _client(checkpoints)
    support = [("support", (f"s{i}.png", _png(40, 40, "RGB", seed=i), "image/png")) for i in range(2)]
    with client:
        reply = client.post("/api/adapt", data={"model": "m2", "steps": "2"}, files=support)
        assert reply.status_code == 200, reply.text
        model = reply.json()["model"]
        assert model["method"] == "unet" and "adapted to 2 image(s) (finetune, 2 steps)" in model["label"]
        assert model["id"] in [m["id"] for m in client.get("/api/models").json()["models"]]
        out = client.post("/api/colorize", data={"model": model["id"]}, files={"image": ("a.png", _png(), "image/png")})
        assert out.status_code == 200
        grey = client.post("/api/adapt", data={"model": "m2", "steps": "2"},
                           files=[("support", ("g.png", _png(40, 40, "L"), "image/png"))])
        assert grey.status_code == 422 and "1 grey: g.png" in grey.json()["error"] and "fewcolor-serve" not in grey.text
        assert "skip_grey" not in grey.text and "choose colour images" in grey.text  # worded for the page


def test_adapt_leaves_out_bad_and_grey_supports_and_says_which(checkpoints):
    from fewcolor.serve.app import GREY_SUPPORT

    client, _ = _client(checkpoints)
    support = [("support", ("c0.png", _png(40, 40, "RGB", seed=1), "image/png")),
               ("support", ("notimage.png", b"this is not an image", "image/png")),
               ("support", ("g.png", _png(40, 40, "L"), "image/png")),
               ("support", ("c1.png", _png(40, 40, "RGB", seed=2), "image/png"))]
    with client:
        reply = client.post("/api/adapt", data={"model": "m2", "steps": "1"}, files=support)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert "adapted to 2 image(s)" in data["model"]["label"]
        skipped = {s["name"]: s["reason"] for s in data["skipped"]}
        assert set(skipped) == {"notimage.png", "g.png"} and skipped["g.png"] == GREY_SUPPORT
        assert skipped["notimage.png"].startswith("not an image") and "fewcolor-serve" not in reply.text
        none_left = client.post("/api/adapt", data={"model": "m2", "steps": "1"}, files=support[1:2])
        assert none_left.status_code == 415 and "none of the support images is usable: notimage.png: not an image" \
            in none_left.json()["error"]


def test_serve_command_refuses_what_it_cannot_serve(tmp_path):
    from click.testing import CliRunner

    from fewcolor.cli import main

    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_bytes(b"hello")
    result = CliRunner().invoke(main, ["serve", str(not_a_model)])
    assert result.exit_code != 0 and "is not a fewcolor model checkpoint" in result.output
    assert "Traceback" not in result.output


def test_image_and_number_options_reach_the_method(tmp_path):
    torch.manual_seed(0)
    iizuka = save_method(build_method("iizuka", "tiny"), tmp_path / "iizuka.safetensors")
    cic = save_method(build_method("cic", "tiny"), tmp_path / "cic.safetensors")
    client, _ = _client([iizuka, cic])
    image = {"image": ("a.png", _png(), "image/png")}
    with client:
        plain = client.post("/api/colorize", data={"model": "m1"}, files=image).json()["results"][0]
        styled = client.post("/api/colorize", data={"model": "m1"},
                             files={**image, "opt.global_from": ("style.jpg", _png(64, 64, "RGB", 5), "image/png")})
        assert styled.status_code == 200, styled.text
        assert client.get(plain).content != client.get(styled.json()["results"][0]).content
        bad_style = client.post("/api/colorize", data={"model": "m1"},
                                files={**image, "opt.global_from": ("style.jpg", b"GIF89a-not-really", "image/gif")})
        assert bad_style.status_code == 415 and "style.jpg" in bad_style.json()["error"]
        warm = client.post("/api/colorize", data={"model": "m2", "opt.temperature": "0.1"}, files=image)
        assert warm.status_code == 200
        low = client.post("/api/colorize", data={"model": "m2", "opt.temperature": "-1"}, files=image)
        assert low.status_code == 422 and "temperature must be >= 0" in low.json()["error"]
        for bad in ("nan", "inf", "-inf"):
            for name in ("temperature", "chroma"):
                reply = client.post("/api/colorize", data={"model": "m2", f"opt.{name}": bad}, files=image)
                assert reply.status_code == 422, reply.text
                assert f"{name} must be a finite number" in reply.json()["error"]
        nan = client.post("/api/colorize", data={"model": "m2", "opt.temperature": "nan"}, files=image)
        assert "cic: temperature must be a finite number, got nan" in nan.json()["error"]


def test_the_bundled_model_is_offered_first(checkpoints):
    from fewcolor.pretrained import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("this checkout ships no bundled base model")
    service = Service(list(checkpoints), device="cpu")
    with TestClient(create_app(service)) as client:
        models = client.get("/api/models").json()["models"]
    assert [m["id"] for m in models] == ["base", "m1", "m2"] and models[0]["method"] == "base"
    assert [o["name"] for o in models[0]["options"]] == ["temperature", "chroma"]


def test_a_transparent_upload_comes_back_with_its_transparency(checkpoints):
    rgba = np.zeros((30, 20, 4), np.uint8)
    rgba[5:25, 4:16] = (90, 160, 60, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    client, _ = _client(checkpoints)
    with client:
        reply = client.post("/api/colorize", data={"model": "m2"},
                            files={"image": ("s.png", buf.getvalue(), "image/png")})
        assert reply.status_code == 200, reply.text
        img = Image.open(io.BytesIO(client.get(reply.json()["results"][0]).content))
        assert img.mode == "RGBA" and np.array_equal(np.asarray(img)[..., 3], rgba[..., 3])


def test_an_option_that_is_a_config_field_shows_the_models_own_value(tmp_path):
    muted = save_method(build_method("cic", "tiny", {"chroma": 0.25, "temperature": 0.6}), tmp_path / "cic.safetensors")
    client, _ = _client([muted])
    with client:
        (model,) = client.get("/api/models").json()["models"]
    defaults = {o["name"]: o["default"] for o in model["options"]}
    assert defaults == {"temperature": 0.6, "chroma": 0.25}


def test_a_visitor_never_names_a_file_on_the_server(checkpoints, tmp_path):
    """Exemplar's fallback may be a checkpoint path on the command line; the page offers and takes only its
    fixed choices, so no upload makes the server open (or say anything about) a file of its own."""
    torch.manual_seed(0)
    exemplar = save_method(build_method("exemplar", "tiny", {"fallback": "stats"}), tmp_path / "ex.safetensors")
    own = save_method(build_method("exemplar", "tiny", {"fallback": str(checkpoints[1])}), tmp_path / "own.safetensors")
    client, _ = _client([exemplar, own])
    files = {"image": ("g.png", _png(), "image/png"), "opt.reference": ("c.png", _png(40, 40, "RGB"), "image/png")}
    with client:
        models = client.get("/api/models").json()["models"]
        fallback = next(o for o in models[0]["options"] if o["name"] == "fallback")
        assert fallback["choices"] == ["attention", "stats", "bundled"] and fallback["default"] == "stats"
        shown = next(o for o in models[1]["options"] if o["name"] == "fallback")["default"]
        assert shown == "the model's own (unet.safetensors)" and str(checkpoints[1].parent) not in str(models)
        for value in ("/etc/passwd", "foo", str(checkpoints[1]), "../unet.safetensors"):
            reply = client.post("/api/colorize", data={"model": "m1", "opt.fallback": value}, files=files)
            assert reply.status_code == 422, reply.text
            error = reply.json()["error"]
            assert error.startswith("option fallback takes only attention, stats, bundled on this page"), error
            assert value not in error and "not a file" not in error and "safetensors" not in error
        # a page user without a reference is told what to give on the page (no command line, no flags)
        empty = client.post("/api/colorize", data={"model": "m1", "opt.fallback": "stats"},
                            files={"image": ("g.png", _png(), "image/png")})
        assert empty.status_code == 422 and "give a colour image as the reference option" in empty.json()["error"]
        assert "Adapt on the web page" in empty.json()["error"] and "--data" not in empty.text


def test_the_page_shows_the_grey_input_the_model_colours():
    """The card has a place for the grey (L) input next to the output, filled in the browser from the upload
    (tests/test_serve_browser.py checks its pixels in Chromium)."""
    from fewcolor.serve.app import STATIC

    html = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    assert 'class="grey-figure"' in html and 'class="grey"' in html
    assert "function greyInput" in script and "0.7151522" in script  # Y of sRGB (D65): CIE L's own weights
