"""End to end in headless Chromium (Debian's chromium + chromedriver, driven by Selenium): upload the emoji
fixture's grey image, pick a variant, download it, and check the PNG's size and that its L is the upload's."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("uvicorn", reason="the [serve] extra (starlette, uvicorn, python-multipart) is not installed")
pytest.importorskip("selenium", reason="selenium is not installed (pip install 'fewcolor[dev]')")

from tests.serve_helpers import running_server, tiny_memopainter_checkpoint

from fewcolor.color.lab import rgb_to_lab
from fewcolor.serve.app import Service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FIXTURE = Path(__file__).parent / "fixtures" / "emoji" / "heart"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
                       reason="Debian's chromium and chromium-driver are not installed "
                              "(apt-get install -y chromium chromium-driver; .ci/run does it)"),
]


def _driver(download_dir: Path, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}", "--window-size=1100,1400"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


def _lightness(path: Path) -> torch.Tensor:
    rgb = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0)
    return rgb_to_lab(rgb.permute(2, 0, 1)[None])[0, 0]


def test_upload_choose_variant_download(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    source = sorted(FIXTURE.glob("*.png"))[0]
    with Image.open(source) as im:  # the fixture's grey image: composited on white, then grey
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        grey = Image.alpha_composite(white, rgba).convert("L")
    upload = tmp_path / f"{source.stem}_grey.png"
    grey.save(upload)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    model = tiny_memopainter_checkpoint(tmp_path / "memo.safetensors")
    service = Service([model], device="cpu", include_bundled=False)
    with running_server(service) as url:
        driver = _driver(downloads, tmp_path / "profile")
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(url)
            wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 1)
            wait.until(ec.presence_of_element_located((By.ID, "opt-variants"))).send_keys("3")
            driver.find_element(By.ID, "images").send_keys(str(upload))
            driver.find_element(By.ID, "run").click()
            buttons = wait.until(lambda d: (b := d.find_elements(By.CSS_SELECTOR, ".variants button.variant"))
                                 and len(b) == 3 and b)
            buttons[1].click()
            assert not driver.find_element(By.CSS_SELECTOR, ".grey-figure").is_displayed()  # a grey upload: itself
            link = driver.find_element(By.CSS_SELECTOR, "a.download")
            assert "chosen" in buttons[1].get_attribute("class")
            chosen = link.get_attribute("href")
            first = buttons[0].find_element(By.TAG_NAME, "img").get_attribute("src")
            slider = driver.find_element(By.CSS_SELECTOR, ".slider")
            driver.execute_script("arguments[0].value = 50; arguments[0].dispatchEvent(new Event('input'));", slider)
            if os.environ.get("FEWCOLOR_SCREENSHOT"):  # how docs/serve.png is made
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(os.environ["FEWCOLOR_SCREENSHOT"])
            link.click()
            target = downloads / f"{upload.stem}_color.png"
            deadline = time.monotonic() + 30
            while not target.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert target.exists(), f"no download; the folder holds {list(downloads.iterdir())}"
        finally:
            driver.quit()
        import httpx

        assert target.read_bytes() == httpx.get(chosen).content  # the variant picked ...
        assert target.read_bytes() != httpx.get(first).content  # ... not the first
    with Image.open(target) as out:
        assert out.size == grey.size and out.mode == "RGB"
    l_in, l_out = _lightness(upload), _lightness(target)
    diff = (l_in - l_out).abs()
    # the same L up to 8-bit rounding and gamut clipping of the merged colour
    assert float(diff.median()) < 0.5 and float(torch.quantile(diff.flatten(), 0.99)) < 2.0


def test_a_colour_upload_shows_the_grey_input_the_model_colours(tmp_path):
    """input | grey input | output: the grey image shown has the upload's CIE L (what the network sees)."""
    import base64
    import io

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    source = sorted(FIXTURE.glob("*.png"))[0]
    with Image.open(source) as im:
        rgba = im.convert("RGBA")
        colour = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    upload = tmp_path / f"{source.stem}_colour.png"
    colour.save(upload)
    service = Service([tiny_memopainter_checkpoint(tmp_path / "memo.safetensors")], device="cpu",
                      include_bundled=False)
    with running_server(service) as url:
        driver = _driver(tmp_path / "downloads", tmp_path / "profile")
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(url)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
            driver.find_element(By.ID, "images").send_keys(str(upload))
            driver.find_element(By.ID, "run").click()
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".grey-figure").is_displayed())
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "a.download").get_attribute("href"))
            shown = wait.until(lambda d: d.execute_script(
                "const img = document.querySelector('img.grey');"
                "if (!img.complete || !img.naturalWidth) return null;"
                "const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;"
                "c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL('image/png');"))
            captions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".card figcaption")]
        finally:
            driver.quit()
    assert captions[0] == "input" and captions[1].startswith("grey input") and captions[2].startswith("output")
    with Image.open(io.BytesIO(base64.b64decode(shown.split(",", 1)[1]))) as grey:
        grey_rgb = np.asarray(grey.convert("RGB"))
    assert grey_rgb.shape[:2] == (colour.height, colour.width)
    assert (grey_rgb.max(axis=2) == grey_rgb.min(axis=2)).all()  # grey
    diff = (_lightness(upload) - rgb_to_lab(torch.from_numpy(grey_rgb / 255.0).float().permute(2, 0, 1)[None])[0, 0])
    assert float(diff.abs().max()) < 0.5  # the upload's L up to 8-bit rounding
