"""A tiny MemoPainter checkpoint with a filled memory and a live server on 127.0.0.1, for the web tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from tests.helpers import smooth_colour_images


def tiny_memopainter_checkpoint(path: Path, slots: int = 4) -> Path:
    """Seeded random networks; the memory holds ``slots`` distinct colour features, so variants differ."""
    from fewcolor.methods.registry import build_method, save_method
    from fewcolor.nets.adain import AdaINParams

    torch.manual_seed(0)
    method = build_method("memopainter", "tiny", {"color_feature": "rgb"})
    method.memory.resize(slots)
    g = torch.Generator().manual_seed(0)
    for module in method.modules():  # AdaIN's last layer starts at zero; untrained, the colour would not matter
        if isinstance(module, AdaINParams):
            torch.nn.init.normal_(module.mlp[-1].weight, std=0.5, generator=g)
    with torch.no_grad():  # mild colours, as a trained model gives on white: little gamut clipping of L
        method.generator.up[-1].weight.mul_(0.15)
        method.generator.up[-1].bias.mul_(0.15)
    values = method.features_of(smooth_colour_images(slots, 32, seed=1))
    for i in range(slots):
        method.memory.write(i, torch.randn(method.memory.keys.shape[1], generator=g), values[i])
    return save_method(method, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(service) -> Iterator[str]:
    """Serve ``service`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    from fewcolor.serve.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
