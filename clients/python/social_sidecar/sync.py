"""The blocking client, for threaded code (Celery, Django, Flask): :class:`SyncSidecar`.

One sidecar process and one asyncio event loop on a background thread serve every thread of the program: a call
from any thread is handed to that loop and waits for its answer, so many threads publish at once through one
connection, with the async client's restarts, cancellation and idempotency.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
from typing import Any, Callable, Coroutine, Mapping, ParamSpec, Sequence, TypeVar, cast

from .client import BreakerCallback, CredentialResolver, EventCallback, Sidecar, UpdateCallback
from .errors import SidecarUnavailable
from .platforms import Facebook, Instagram, LinkedIn, PlatformClient, WhatsApp, YouTube
from .types import InitializeResult

__all__ = ["SyncSidecar", "SyncPlatform", "SyncFacebook", "SyncInstagram", "SyncLinkedIn", "SyncYouTube", "SyncWhatsApp"]

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    """An event loop running on its own daemon thread, and blocking calls into it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="social-sidecar-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("a SyncSidecar call was made from one of its own callbacks; that would wait forever")
        if self.loop.is_closed():
            coroutine.close()
            raise SidecarUnavailable("the sidecar client is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def blocking(self, method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
        """``method`` as a blocking function with the same signature."""

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.run(method(*args, **kwargs))

        return call

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _off_loop(callback: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """A plain function callback runs on a worker thread, so that it may block (a database query) without stalling
    every call; coroutine functions run on the loop as they are."""
    if callback is None or inspect.iscoroutinefunction(callback):
        return callback
    function = callback

    async def run(*args: Any, **kwargs: Any) -> Any:
        result = await asyncio.to_thread(function, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return functools.wraps(function)(run)


class SyncPlatform:
    """``validate``, ``refresh``, ``delete``, ``insights`` and ``status``, blocking; same keywords as
    :class:`~social_sidecar.platforms.PlatformClient`."""

    def __init__(self, loop: _LoopThread, platform: PlatformClient) -> None:
        self.validate = loop.blocking(platform.validate)
        self.refresh = loop.blocking(platform.refresh)
        self.delete = loop.blocking(platform.delete)
        self.insights = loop.blocking(platform.insights)
        self.status = loop.blocking(platform.status)


class SyncFacebook(SyncPlatform):
    """:class:`~social_sidecar.platforms.Facebook`, blocking: ``post``, ``validate``, ``refresh``."""

    def __init__(self, loop: _LoopThread, platform: Facebook) -> None:
        super().__init__(loop, platform)
        self.post = loop.blocking(platform.post)


class SyncInstagram(SyncPlatform):
    """:class:`~social_sidecar.platforms.Instagram`, blocking: ``post``, ``validate``, ``refresh``."""

    def __init__(self, loop: _LoopThread, platform: Instagram) -> None:
        super().__init__(loop, platform)
        self.post = loop.blocking(platform.post)


class SyncLinkedIn(SyncPlatform):
    """:class:`~social_sidecar.platforms.LinkedIn`, blocking: ``post``, ``validate``, ``refresh``."""

    def __init__(self, loop: _LoopThread, platform: LinkedIn) -> None:
        super().__init__(loop, platform)
        self.post = loop.blocking(platform.post)


class SyncYouTube(SyncPlatform):
    """:class:`~social_sidecar.platforms.YouTube`, blocking: ``post``, ``validate``, ``refresh``."""

    def __init__(self, loop: _LoopThread, platform: YouTube) -> None:
        super().__init__(loop, platform)
        self.post = loop.blocking(platform.post)


class SyncWhatsApp(SyncPlatform):
    """:class:`~social_sidecar.platforms.WhatsApp`, blocking: ``send``, ``validate``, ``refresh``."""

    def __init__(self, loop: _LoopThread, platform: WhatsApp) -> None:
        super().__init__(loop, platform)
        self.send = loop.blocking(platform.send)


class SyncSidecar:
    """:class:`~social_sidecar.Sidecar` with blocking calls, safe to use from many threads at once.

    ```python
    with SyncSidecar(config=cfg, resolve_credentials=resolve, on_credentials_updated=save) as sidecar:
        result = sidecar.facebook.post(credential_ref="CRED-fb-001", customer_id="CUST-123",
                                       agent_id="AGENT-456", text="Hello", idempotency_key="post-789")
    ```

    Platforms: ``facebook``, ``instagram``, ``linkedin``, ``youtube`` (``post``, ``validate``, ``refresh``) and
    ``whatsapp`` (``send``, ``validate``, ``refresh``), each also with ``delete``, ``insights`` and ``status``, with
    the keywords of the async client. Queries: ``health()``,
    ``metrics_snapshot()``, ``prometheus_exposition()``, ``prometheus()``, ``breaker_status()``,
    ``breaker_reset(platform)``, ``call(method, params)``.

    The constructor takes the keywords of :class:`~social_sidecar.Sidecar` (``config``, ``resolve_credentials``,
    ``on_credentials_updated``, ``on_event``, ``on_breaker_change``, ``binary``, ``args``, ``env``, ``client_info``,
    ``timeout``, ``answer_grace``, ``shutdown_timeout``, ``restart_delays``, ``stable_after``, ``max_frame_bytes``).
    Callbacks given to the constructor that are plain functions run on a worker thread and may block; async ones, and
    a call's ``on_progress``, run on the client's loop thread and should be quick. Callbacks must not call this client
    (that would wait forever; it raises ``RuntimeError`` instead).
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        resolve_credentials: CredentialResolver | None = None,
        on_credentials_updated: UpdateCallback | None = None,
        on_event: EventCallback | None = None,
        on_breaker_change: BreakerCallback | None = None,
        binary: str | os.PathLike[str] | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        client_info: Mapping[str, Any] | None = None,
        timeout: float | None = 30.0,
        answer_grace: float = 1.0,
        shutdown_timeout: float | None = None,
        restart_delays: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
        stable_after: float = 30.0,
        max_frame_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        #: The async client doing the work on the background loop.
        self.sidecar = Sidecar(
            config,
            resolve_credentials=cast("CredentialResolver | None", _off_loop(resolve_credentials)),
            on_credentials_updated=_off_loop(on_credentials_updated),
            on_event=_off_loop(on_event),
            on_breaker_change=_off_loop(on_breaker_change),
            binary=binary,
            args=args,
            env=env,
            client_info=client_info,
            timeout=timeout,
            answer_grace=answer_grace,
            shutdown_timeout=shutdown_timeout,
            restart_delays=restart_delays,
            stable_after=stable_after,
            max_frame_bytes=max_frame_bytes,
        )
        self._loop = _LoopThread()
        sidecar = self.sidecar
        self.facebook = SyncFacebook(self._loop, sidecar.facebook)
        self.instagram = SyncInstagram(self._loop, sidecar.instagram)
        self.linkedin = SyncLinkedIn(self._loop, sidecar.linkedin)
        self.youtube = SyncYouTube(self._loop, sidecar.youtube)
        self.whatsapp = SyncWhatsApp(self._loop, sidecar.whatsapp)
        self.start = self._loop.blocking(sidecar.start)
        self.call = self._loop.blocking(sidecar.call)
        self.health = self._loop.blocking(sidecar.health)
        self.metrics_snapshot = self._loop.blocking(sidecar.metrics_snapshot)
        self.prometheus_exposition = self._loop.blocking(sidecar.prometheus_exposition)
        self.prometheus = self._loop.blocking(sidecar.prometheus)
        self.breaker_status = self._loop.blocking(sidecar.breaker_status)
        self.breaker_reset = self._loop.blocking(sidecar.breaker_reset)

    def __enter__(self) -> "SyncSidecar":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the sidecar down cleanly and stop the background loop. Idempotent."""
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self.sidecar.close())
        finally:
            self._loop.stop()

    @property
    def pid(self) -> int | None:
        """Process id of the current sidecar, or None when none is running."""
        return self.sidecar.pid

    @property
    def restarts(self) -> int:
        """How many times a crashed sidecar was replaced."""
        return self.sidecar.restarts

    @property
    def last_exit_code(self) -> int | None:
        """Exit status of the last sidecar process that ended (negative: killed by that signal)."""
        return self.sidecar.last_exit_code

    @property
    def initialize_result(self) -> InitializeResult | None:
        """The current process's ``initialize`` answer."""
        return self.sidecar.initialize_result

    def supports(self, platform: str, operation: str) -> bool:
        """True when the running build serves ``platform/operation``."""
        return self.sidecar.supports(platform, operation)
