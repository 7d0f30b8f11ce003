"""The web page (``fewcolor serve``): see :mod:`fewcolor.serve.app` and docs/SERVE.md."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
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


class AddressError(ValueError):
    """``--host``/``--port`` name an address this machine cannot listen on (the message names the option)."""


def check_address(host: str, port: int) -> None:
    """Bind (and release) a socket at ``host:port`` as the server will, so a busy port or a foreign host is
    one line now instead of uvicorn's log after the models are loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # uvicorn's choice
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind((host, port))
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressError(f"--host {host}: not an address of this machine ({exc}); give an address such as "
                           "127.0.0.1 or 0.0.0.0") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressError(f"--port {port}: address already in use; choose another port") from None
        if exc.errno == errno.EACCES:
            raise AddressError(f"--port {port}: permission denied (ports below 1024 need privileges); choose "
                               "another port") from None
        raise AddressError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); give an "
                           "address of this machine, such as 127.0.0.1 or 0.0.0.0") from None


def serve(models: list[Path], host: str = "127.0.0.1", port: int = 7860, limits: Limits | None = None,
          device: str | None = None, size: int | None = None) -> None:
    """Serve the page until interrupted; the temporary folder is removed on the way out."""
    import uvicorn

    from fewcolor.serve.app import Service, create_app

    check_address(host, port)
    if not is_loopback(host):
        log.warning("serving on %s: other machines can reach this page and upload to it", host)
    service = Service(models, limits or Limits(), device=device, size=size)
    try:
        uvicorn.run(create_app(service), host=host, port=port, log_level="info")
    finally:
        service.close()
