"""The sidecar's metrics on your service's own ``/metrics``, through prometheus_client.

```python
from prometheus_client import REGISTRY
from social_sidecar.prometheus import SidecarCollector

REGISTRY.register(SidecarCollector(sidecar))      # a Sidecar or a SyncSidecar
```

Needs the optional extra: ``pip install 'social-sidecar[prometheus]'``. Each scrape asks the sidecar for its
exposition (``metrics/prometheus``) and hands prometheus_client the metric families it contains, so they are served
in whatever format the scraper negotiates. A sidecar that cannot answer contributes no families to that scrape
(and the failure is logged) rather than failing the service's whole ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterator, Union

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .client import Sidecar
from .errors import SidecarError
from .sync import SyncSidecar

__all__ = ["SidecarCollector"]

log = logging.getLogger("social_sidecar")


class SidecarCollector(Collector):
    """A prometheus_client collector of one sidecar's metrics (``social_sidecar_*``).

    With a :class:`~social_sidecar.SyncSidecar`, every scrape is fresh, from any thread. With an async
    :class:`~social_sidecar.Sidecar`, a scrape from another thread (prometheus_client's own HTTP server, a WSGI
    worker) is fresh too; a scrape on the event loop that runs the sidecar (an ASGI ``/metrics`` route) cannot wait
    for the sidecar without stalling that loop, so it serves the exposition fetched at the end of the previous
    scrape there (at most one scrape interval old), and starts the next fetch.

    Args:
        sidecar: the client whose sidecar to scrape.
        timeout: seconds a scrape waits for the sidecar.
    """

    def __init__(self, sidecar: Union[Sidecar, SyncSidecar], *, timeout: float = 5.0) -> None:
        self._sidecar = sidecar
        self._timeout = timeout
        self._last_text = ""
        self._refreshing: asyncio.Task[None] | None = None

    def collect(self) -> Iterator[Metric]:
        try:
            text = self._scrape()
        except (SidecarError, TimeoutError) as exc:
            log.warning("could not scrape the sidecar's metrics: %s", exc)
            return
        yield from text_string_to_metric_families(text)

    def _scrape(self) -> str:
        sidecar = self._sidecar
        if isinstance(sidecar, SyncSidecar):
            return sidecar.prometheus(timeout=self._timeout)
        loop = sidecar.loop
        if loop is None:
            return ""  # never started: nothing to report yet
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            future = asyncio.run_coroutine_threadsafe(sidecar.prometheus(timeout=self._timeout), loop)
            return future.result()
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = loop.create_task(self.refresh())
        return self._last_text

    async def refresh(self) -> None:
        """Fetch the exposition now, on the sidecar's loop; what loop-thread scrapes serve until the next one."""
        sidecar = self._sidecar
        if not isinstance(sidecar, Sidecar):
            return
        try:
            self._last_text = await sidecar.prometheus(timeout=self._timeout)
        except SidecarError as exc:
            log.warning("could not scrape the sidecar's metrics: %s", exc)
