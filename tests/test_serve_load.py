"""A bounded load test against 127.0.0.1 only: 50 concurrent uploads of good, oversize and wrong-type files.

No response may be 5xx; every refusal is a 4xx whose JSON names its reason; the server's process memory
grows by a bounded amount (the peak is printed; docs/SERVE.md records a measured run).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("uvicorn", reason="the [serve] extra (starlette, uvicorn, python-multipart) is not installed")
pytest.importorskip("multipart", reason="the [serve] extra (python-multipart) is not installed")
pytest.importorskip("httpx", reason="the load test's client (httpx) is not installed")

from tests.serve_helpers import running_server, tiny_memopainter_checkpoint

from fewcolor.serve.app import Service
from fewcolor.serve.limits import Limits

CONCURRENT = 50


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _uploads() -> list[tuple[str, bytes, str]]:
    rng = np.random.default_rng(0)
    good = []
    for i in range(3):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (60 + 10 * i, 80, 3), dtype=np.uint8)).convert("L").save(buf, "PNG")
        good.append(("good", buf.getvalue(), f"photo{i}.png"))
    oversize = ("oversize", rng.integers(0, 255, 600_000, dtype=np.uint8).tobytes(), "huge.png")
    wrong = [("wrong", b"%PDF-1.4 not an image", "scan.jpg"), ("wrong", b"PK\x03\x04zipzipzip" * 50, "photo.png")]
    kinds = [*good, oversize, *wrong]
    return [kinds[i % len(kinds)] for i in range(CONCURRENT)]


@pytest.mark.slow
def test_fifty_concurrent_uploads_get_no_5xx(tmp_path):
    import httpx

    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the process memory")
    model = tiny_memopainter_checkpoint(tmp_path / "memo.safetensors")
    service = Service([model], Limits(max_upload_bytes=512 * 1024, queue_size=8), device="cpu",
                      include_bundled=False)
    uploads = _uploads()
    peak = {"rss": _rss_mib()}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["rss"] = max(peak["rss"], _rss_mib())
            time.sleep(0.02)

    async def burst(url: str) -> list[tuple[str, int, dict]]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            async def one(kind: str, body: bytes, name: str) -> tuple[str, int, dict]:
                reply = await client.post("/api/colorize", data={"model": "m1", "opt.variants": "2"},
                                          files={"image": (name, body, "image/png")})
                return kind, reply.status_code, reply.json()

            return await asyncio.gather(*(one(*u) for u in uploads))

    with running_server(service) as url:
        before = _rss_mib()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        replies = asyncio.run(burst(url))
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    statuses = [s for _, s, _ in replies]
    assert not [s for s in statuses if s >= 500], statuses
    for kind, status, body in replies:
        if status != 200:
            assert 400 <= status < 500 and body.get("error"), (kind, status, body)
        expected = {"good": {200, 429}, "oversize": {413}, "wrong": {415, 429}}[kind]
        assert status in expected, (kind, status, body)
    assert statuses.count(200) >= 1
    growth = peak["rss"] - before
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"\n{CONCURRENT} uploads in {seconds:.1f} s: {counts}; RSS {before:.0f} MiB before, "
          f"peak {peak['rss']:.0f} MiB (+{growth:.0f} MiB)")
    assert growth < 1024, f"memory grew by {growth:.0f} MiB during the burst"
