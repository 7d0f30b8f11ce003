"""The web page (``fewcolor serve``): see :mod:`fewcolor.serve.app` and docs/SERVE.md."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from fewcolor.serve.limits import Limits

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(models: list[Path], host: str = "127.0.0.1", port: int = 7860, limits: Limits | None = None,
          device: str | None = None, size: int | None = None) -> None:
    """Serve the page until interrupted; the temporary folder is removed on the way out."""
    import uvicorn

    from fewcolor.serve.app import Service, create_app

    if not is_loopback(host):
        log.warning("serving on %s: other machines can reach this page and upload to it", host)
    service = Service(models, limits or Limits(), device=device, size=size)
    try:
        uvicorn.run(create_app(service), host=host, port=port, log_level="info")
    finally:
        service.close()
