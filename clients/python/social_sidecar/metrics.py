"""Serve the sidecar's Prometheus text on ``/metrics`` with nothing but asyncio.

Every scrape asks the sidecar (``metrics/prometheus``) so the numbers are never stale; if the sidecar cannot answer,
the scrape gets a 503 and Prometheus records the target as down rather than the backend raising.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable, Callable

from .errors import SidecarError

if TYPE_CHECKING:
    from .client import Sidecar

__all__ = ["prometheus_handler", "serve_prometheus"]

log = logging.getLogger("social_sidecar")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def prometheus_handler(sidecar: "Sidecar", path: str = "/metrics", timeout: float = 10.0) -> Handler:
    """An ``asyncio.start_server`` connection callback answering ``GET path`` with the sidecar's exposition."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout)
            while True:  # headers: read and ignore, up to the blank line
                line = await asyncio.wait_for(reader.readline(), timeout)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request_line.decode("latin-1").split()
            method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            if target.split("?", 1)[0] != path:
                status, content_type, body = "404 Not Found", "text/plain; charset=utf-8", b"not found\n"
            elif method not in ("GET", "HEAD"):
                status, content_type, body = "405 Method Not Allowed", "text/plain; charset=utf-8", b"use GET\n"
            else:
                try:
                    exposition = await sidecar.prometheus_exposition(timeout=timeout)
                    status, content_type = "200 OK", exposition.content_type
                    body = exposition.text.encode("utf-8")
                except SidecarError as exc:
                    status, content_type = "503 Service Unavailable", "text/plain; charset=utf-8"
                    body = f"sidecar unavailable: {exc.kind}\n".encode()
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics endpoint failed")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    return handle


async def serve_prometheus(
    sidecar: "Sidecar", host: str = "127.0.0.1", port: int = 9464, path: str = "/metrics"
) -> asyncio.Server:
    """Start serving ``http://host:port/metrics``; close the returned server to stop (``port=0`` picks one)."""
    return await asyncio.start_server(prometheus_handler(sidecar, path), host, port)
