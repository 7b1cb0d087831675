"""The :class:`Sidecar`: spawns ``social-sidecar``, keeps it alive, and turns its protocol into Python calls."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import signal
import time
from collections import deque
from pathlib import Path
import itertools
from typing import Any, Awaitable, Callable, Mapping, Protocol, Sequence, Union

from ._version import __version__
from .connection import Connection, RemoteError
from .errors import CallTimeout, CredentialError, SidecarCrashed, SidecarError, SidecarUnavailable
from .platforms import Facebook, Instagram, LinkedIn, WhatsApp, YouTube
from .types import (
    BreakerChange,
    BreakerReset,
    BreakerStatus,
    CredentialRequest,
    Credentials,
    CredentialUpdate,
    Event,
    Health,
    InitializeResult,
    JSONValue,
    MetricEvent,
    MetricsSnapshot,
    Progress,
    PrometheusExposition,
)

__all__ = ["Sidecar", "EventStream", "find_binary", "CredentialResolver", "ProgressCallback"]

log = logging.getLogger("social_sidecar")
sidecar_log = logging.getLogger("social_sidecar.sidecar")

ResolvedCredentials = Union[Credentials, Mapping[str, Any]]


class CredentialResolver(Protocol):
    """What ``resolve_credentials`` is: called with keywords, returns (or awaits to) the credential.

    ```python
    async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> Credentials: ...
    ```

    Raise :class:`~social_sidecar.errors.CredentialNotFound` when the credential does not exist (the call fails for
    good), :class:`~social_sidecar.errors.CredentialError` for another failure whose message is safe to show, and
    anything else for a failure that may pass (the call fails retryably, naming only the exception's type).
    """

    def __call__(
        self, *, platform: str, credential_ref: str, customer_id: str
    ) -> ResolvedCredentials | Awaitable[ResolvedCredentials]: ...


#: Receives each :class:`Progress` of a call made with ``on_progress=``; may be async.
ProgressCallback = Callable[[Progress], Any]
UpdateCallback = Callable[[CredentialUpdate], Any]
EventCallback = Callable[[MetricEvent], Any]
BreakerCallback = Callable[[BreakerChange], Any]

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "fault": logging.CRITICAL,
}
_END = object()


# Where a platform wheel (built by scripts/package) carries the executable.
_BUNDLED_BINARY = Path(__file__).resolve().parent / "bin" / "social-sidecar"


def find_binary(binary: str | os.PathLike[str] | None = None) -> Path:
    """Where the sidecar executable is: ``binary``, else ``$SOCIAL_SIDECAR_BIN``, else the one bundled in this package
    (``social_sidecar/bin/social-sidecar`` in a platform wheel), else the repository's build folder.

    The repository is found upwards from this package (the folder holding ``Package.swift``); release builds win over
    debug ones. Raises :class:`SidecarUnavailable` naming every place looked at.
    """
    if binary is not None:
        return Path(binary)
    env = os.environ.get("SOCIAL_SIDECAR_BIN")
    if env:
        return Path(env)
    if os.access(_BUNDLED_BINARY, os.X_OK):
        return _BUNDLED_BINARY
    looked: list[str] = [str(_BUNDLED_BINARY)]
    for parent in Path(__file__).resolve().parents:
        if (parent / "Package.swift").is_file():
            for config in ("release", "debug"):
                candidate = parent / ".build" / config / "social-sidecar"
                if os.access(candidate, os.X_OK):
                    return candidate
                looked.append(str(candidate))
            break
    raise SidecarUnavailable(
        "no social-sidecar binary: pass binary=, set SOCIAL_SIDECAR_BIN, install the platform wheel, or build it "
        "(looked at " + ", ".join(looked) + ")"
    )


async def _call_user(callback: Callable[..., Any], *args: Any) -> Any:
    result = callback(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _check_resolver(resolver: CredentialResolver | None) -> None:
    """Refuse at construction a resolver that cannot take the three keywords, instead of failing every call later."""
    if resolver is None:
        return
    try:
        signature = inspect.signature(resolver)
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to check
    try:
        signature.bind(platform="", credential_ref="", customer_id="")
    except TypeError as exc:
        raise TypeError(
            f"resolve_credentials must accept the keywords platform, credential_ref and customer_id: {exc}"
        ) from None


class EventStream:
    """Async iterator over ``metrics/event`` and ``breaker/stateChanged`` notifications.

    Subscribed from the moment :meth:`Sidecar.events` returns, so nothing sent after that is missed; ends when the
    sidecar is closed or :meth:`aclose` is called. Unbounded: iterate it, or close it.
    """

    def __init__(self, owner: "Sidecar") -> None:
        self._owner = owner
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        owner._subscribers.add(self._queue)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _END:
            self._owner._subscribers.discard(self._queue)
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop receiving events."""
        self._owner._subscribers.discard(self._queue)
        self._queue.put_nowait(_END)


class _Process:
    """One running sidecar process with its connection and the tasks that read its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, connection: Connection, started_at: float) -> None:
        self.proc = proc
        self.connection = connection
        self.started_at = started_at
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.reader: asyncio.Task[None] | None = None
        self.stderr_reader: asyncio.Task[None] | None = None
        self.supervisor: asyncio.Task[None] | None = None
        self.stopping = False
        self.initialize_result: InitializeResult | None = None


class Sidecar:
    """A supervised ``social-sidecar`` child process, used as an async context manager.

    ```python
    async with Sidecar(config=cfg, resolve_credentials=resolve, on_credentials_updated=save) as sidecar:
        result = await sidecar.facebook.post(credential_ref="CRED-fb-001", customer_id="CUST-123",
                                             agent_id="AGENT-456", text="Hello", idempotency_key="post-789")
    ```

    Platforms, each with ``validate(...)`` and ``refresh(...)`` beside its publish method:

    - ``facebook``: :class:`~social_sidecar.platforms.Facebook`, ``post(...)``
    - ``instagram``: :class:`~social_sidecar.platforms.Instagram`, ``post(...)``
    - ``linkedin``: :class:`~social_sidecar.platforms.LinkedIn`, ``post(...)``
    - ``youtube``: :class:`~social_sidecar.platforms.YouTube`, ``post(...)``
    - ``whatsapp``: :class:`~social_sidecar.platforms.WhatsApp`, ``send(...)``

    Queries: :meth:`health`, :meth:`metrics_snapshot`, :meth:`prometheus_exposition`, :meth:`prometheus`,
    :meth:`breaker_status`, :meth:`breaker_reset`, and :meth:`call` for any other method.

    If the process dies, calls in flight fail with :class:`SidecarCrashed` and the next call starts a fresh process
    (after ``restart_delays`` when crashes repeat), so one crash never takes the backend down.

    Args:
        config: the ``initialize.config`` object (``protocol/PROTOCOL.md`` §7), sent again on every restart.
        resolve_credentials: answers ``credentials/resolve``; a :class:`CredentialResolver`, called with the keywords
            ``platform``, ``credential_ref`` and ``customer_id``; returns :class:`Credentials` or a mapping.
        on_credentials_updated: gets a :class:`CredentialUpdate` after the sidecar refreshed a token; persist it before
            returning, since the sidecar treats the return as the acknowledgement.
        on_event: gets every :class:`MetricEvent` (in order; async callbacks are awaited one at a time).
        on_breaker_change: gets every :class:`BreakerChange`.
        binary: the executable (default: :func:`find_binary`).
        args: extra command-line arguments, e.g. ``["--log-level", "debug"]``.
        env: environment entries added to this process's environment for the child.
        client_info: the ``initialize.clientInfo`` object (default: this package's name and version).
        timeout: seconds a call may take by default (None: no limit). A platform call sends it as the sidecar's
            ``deadlineMs``, retries and waits included, and the client waits ``answer_grace`` longer for the answer,
            so the sidecar's own error (``deadline_exceeded``, ``rate_limited``) arrives before :class:`CallTimeout`.
        answer_grace: seconds the client waits for an answer past ``timeout``.
        shutdown_timeout: how long :meth:`close` waits for ``shutdown`` and for the process to exit, before it
            terminates and then kills it; by default 2 s more than the sidecar's ``shutdown.graceMs`` (10 s), the
            time it gives in-flight calls to finish.
        restart_delays: waits (seconds, counted from the crash) before restarting after the 1st, 2nd, ... crash in a
            row; the last one repeats.
        stable_after: seconds after which a running process resets the crash count.
        max_frame_bytes: the largest frame accepted from the sidecar.
        clock: monotonic seconds (injected by tests).
        sleep: the async sleep used between restarts (injected by tests).
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        _check_resolver(resolve_credentials)
        self.config: dict[str, Any] = dict(config or {})
        self._resolve = resolve_credentials
        self._on_update = on_credentials_updated
        self._on_event = on_event
        self._on_breaker = on_breaker_change
        self._binary = binary
        self._args = list(args)
        self._env = dict(env or {})
        self._client_info = dict(client_info or {"name": "social-sidecar-python", "version": __version__})
        self._timeout = timeout
        self._answer_grace = answer_grace
        self._shutdown_timeout = shutdown_timeout if shutdown_timeout is not None else _grace_seconds(self.config) + 2.0
        self._restart_delays = tuple(restart_delays) or (0.0,)
        self._stable_after = stable_after
        self._max_frame_bytes = max_frame_bytes
        self._clock = clock
        self._sleep = sleep

        self._process: _Process | None = None
        self._start_lock: asyncio.Lock | None = None
        self._closed = False
        self._crashes = 0
        self._last_crash: float | None = None
        self._restarts = 0
        self._last_exit_code: int | None = None
        self._events: asyncio.Queue[tuple[str, Any]] | None = None
        self._event_task: asyncio.Task[None] | None = None
        self._subscribers: set[asyncio.Queue[Any]] = set()
        self._progress: dict[str, ProgressCallback] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress_tokens = itertools.count(1)

        self.facebook = Facebook(self)
        self.instagram = Instagram(self)
        self.linkedin = LinkedIn(self)
        self.youtube = YouTube(self)
        self.whatsapp = WhatsApp(self)

    # Lifecycle.

    async def __aenter__(self) -> "Sidecar":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> InitializeResult:
        """Spawn and initialise the sidecar now (otherwise the first call does it); returns the ``initialize`` answer.

        Errors from ``initialize`` itself (``InvalidParams`` for a bad config key) are raised as they are.
        """
        process = await self._ensure_running()
        assert process.initialize_result is not None
        return process.initialize_result

    async def close(self) -> None:
        """Shut the sidecar down cleanly: ``shutdown``, ``exit``, wait; then SIGTERM, then SIGKILL. Idempotent."""
        if self._closed:
            return
        self._closed = True
        process, self._process = self._process, None
        if process is not None:
            await self._stop(process)
        if self._events is not None:
            self._events.put_nowait(("", _END))
            if self._event_task is not None:
                await asyncio.gather(self._event_task, return_exceptions=True)
        for queue in list(self._subscribers):
            queue.put_nowait(_END)

    @property
    def pid(self) -> int | None:
        """Process id of the current sidecar, or None when none is running."""
        process = self._process
        return process.proc.pid if process is not None and process.proc.returncode is None else None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this client's sidecar runs on (None before the first start)."""
        return self._loop

    @property
    def restarts(self) -> int:
        """How many times a crashed sidecar was replaced."""
        return self._restarts

    @property
    def last_exit_code(self) -> int | None:
        """Exit status of the last sidecar process that ended (negative: killed by that signal)."""
        return self._last_exit_code

    @property
    def initialize_result(self) -> InitializeResult | None:
        """The current process's ``initialize`` answer (server info, protocol version, capabilities)."""
        return self._process.initialize_result if self._process is not None else None

    def supports(self, platform: str, operation: str) -> bool:
        """True when the running binary serves ``platform/operation``; False before :meth:`start`."""
        result = self.initialize_result
        return result is not None and result.supports(platform, operation)

    # Calls.

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> JSONValue:
        """Send any request and return its raw result; the typed methods are built on this.

        ``timeout`` (default: the constructor's) bounds the wait, a restart included, plus ``answer_grace``; when it
        runs out the sidecar gets ``$/cancelRequest`` and :class:`CallTimeout` is raised. Cancelling the calling task
        also sends ``$/cancelRequest``. Unlike the platform methods, it does not add ``deadlineMs`` to ``params``.
        """
        limit = self._timeout if timeout is None else timeout
        if limit is None:
            return await self._request(method, params)
        wait = limit + self._answer_grace
        try:
            return await asyncio.wait_for(self._request(method, params), wait)
        except asyncio.TimeoutError:
            raise CallTimeout(f"no answer within {wait:g} s; cancel sent", method=method) from None

    async def call_platform(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> JSONValue:
        """A platform call: ``timeout`` (default: the constructor's) also goes to the sidecar as ``deadlineMs``, so
        the sidecar answers within it; ``on_progress`` receives the call's ``$/progress`` reports."""
        wire = dict(params)
        limit = self._timeout if timeout is None else timeout
        if limit is not None:
            wire["deadlineMs"] = max(1, int(limit * 1000))
        token: str | None = None
        if on_progress is not None:
            token = f"py-{os.getpid()}-{next(self._progress_tokens)}"
            wire["workDoneToken"] = token
            self._progress[token] = on_progress
        try:
            return await self.call(method, wire, timeout=limit)
        finally:
            if token is not None:
                self._progress.pop(token, None)

    async def _request(self, method: str, params: Any) -> JSONValue:
        process = await self._ensure_running()
        result: JSONValue = await process.connection.request(method, params)  # parsed JSON: a JSONValue
        return result

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification to the running sidecar (starting one if needed)."""
        process = await self._ensure_running()
        await process.connection.notify(method, params)

    async def health(self, *, timeout: float | None = None) -> Health:
        """``health``: cheap liveness, answered even under load."""
        return Health.from_wire(await self.call("health", timeout=timeout))

    async def metrics_snapshot(self, *, timeout: float | None = None) -> MetricsSnapshot:
        """``metrics/snapshot``: per platform and operation counts, rates, latency percentiles, retries, opens."""
        return MetricsSnapshot.from_wire(await self.call("metrics/snapshot", timeout=timeout))

    async def prometheus_exposition(self, *, timeout: float | None = None) -> PrometheusExposition:
        """``metrics/prometheus`` with its content type, ready to serve."""
        return PrometheusExposition.from_wire(await self.call("metrics/prometheus", timeout=timeout))

    async def prometheus(self, *, timeout: float | None = None) -> str:
        """``metrics/prometheus``: the Prometheus text exposition."""
        return (await self.prometheus_exposition(timeout=timeout)).text

    async def breaker_status(self, *, timeout: float | None = None) -> BreakerStatus:
        """``breaker/status``: each platform's circuit state."""
        return BreakerStatus.from_wire(await self.call("breaker/status", timeout=timeout))

    async def breaker_reset(self, platform: str, *, timeout: float | None = None) -> BreakerReset:
        """``breaker/reset``: close a platform's circuit now (after an outage is known to be over)."""
        return BreakerReset.from_wire(await self.call("breaker/reset", {"platform": platform}, timeout=timeout))

    def events(self) -> EventStream:
        """Iterate metric events and breaker changes: ``async for event in sidecar.events(): ...``."""
        self._ensure_event_task()
        return EventStream(self)

    # Process management.

    async def _ensure_running(self) -> _Process:
        if self._closed:
            raise SidecarUnavailable("the sidecar client is closed")
        process = self._process
        if process is not None and not process.connection.closed:
            return process
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._closed:
                raise SidecarUnavailable("the sidecar client is closed")
            process = self._process
            if process is not None and not process.connection.closed:
                return process
            if process is not None and process.supervisor is not None:
                await asyncio.shield(process.supervisor)  # let it record the crash before we count it
            if self._last_crash is not None:
                delay = self._restart_delays[min(self._crashes, len(self._restart_delays)) - 1]
                wait = self._last_crash + delay - self._clock()
                if wait > 0:
                    log.info("restarting the sidecar in %.2f s (crash %d in a row)", wait, self._crashes)
                    await self._sleep(wait)
            process = await self._spawn()
            if self._closed:  # close() ran while we were starting: do not leave this one behind
                await self._stop(process)
                raise SidecarUnavailable("the sidecar client is closed")
            if self._last_crash is not None:
                self._restarts += 1
            self._process = process
            return process

    async def _spawn(self) -> _Process:
        self._loop = asyncio.get_running_loop()
        self._ensure_event_task()
        binary = find_binary(self._binary)
        env = {**os.environ, **self._env}
        try:
            proc = await asyncio.create_subprocess_exec(
                str(binary),
                *self._args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            self._record_crash()
            raise SidecarUnavailable(f"cannot start {binary}: {exc}") from exc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        connection = Connection(
            proc.stdout,
            proc.stdin,
            request_handler=self._handle_request,
            notification_handler=self._handle_notification,
            max_frame_bytes=self._max_frame_bytes,
        )
        process = _Process(proc, connection, self._clock())
        loop = asyncio.get_running_loop()
        process.reader = loop.create_task(connection.run())
        process.stderr_reader = loop.create_task(self._drain_stderr(process))
        process.supervisor = loop.create_task(self._supervise(process))
        try:
            result = await asyncio.wait_for(
                connection.request("initialize", {"clientInfo": self._client_info, "config": self.config}),
                max(self._shutdown_timeout, 10.0),
            )
            process.initialize_result = InitializeResult.from_wire(result)
            await connection.notify("initialized", {})
        except BaseException as exc:
            await self._stop(process, polite=False)
            if isinstance(exc, SidecarError) and not isinstance(exc, SidecarUnavailable):
                raise  # the sidecar answered initialize with an error (a bad config): restarting will not help
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._record_crash()
            tail = " | ".join(process.stderr_tail)
            raise SidecarUnavailable(
                f"the sidecar did not initialise: {exc or 'timed out'}" + (f"; last stderr: {tail}" if tail else "")
            ) from exc
        info = process.initialize_result.server_info
        log.info("sidecar %s %s started (pid %d)", info.name, info.version, proc.pid)
        return process

    def _record_crash(self) -> None:
        self._crashes += 1
        self._last_crash = self._clock()

    async def _supervise(self, process: _Process) -> None:
        """Wait for the read side to end; fail what is in flight with the process's fate, and reap it."""
        assert process.reader is not None
        await asyncio.gather(process.reader, return_exceptions=True)
        code: int | None
        if not process.connection.reached_eof and not process.stopping:
            self._kill(process)  # its stdout is corrupt: whatever it says next cannot be trusted
        try:
            code = await asyncio.wait_for(process.proc.wait(), 2.0)
        except asyncio.TimeoutError:
            code = None
        if code is not None:
            self._last_exit_code = code
        if process.stopping or process.initialize_result is None:
            # A planned stop, or a start that failed (whose caller counts it): fail what waits, nothing more.
            if code is None and not process.stopping:
                self._kill(process)
            process.connection.fail_pending(
                lambda method: SidecarUnavailable("the sidecar was shut down", method=method)
            )
            return
        if code is None:
            # Stdout closed or became unreadable but the process lives on: it is of no use any more.
            self._kill(process)
            code = await process.proc.wait()
            self._last_exit_code = code
        if process.stderr_reader is not None:
            await asyncio.gather(asyncio.wait_for(process.stderr_reader, 1.0), return_exceptions=True)
        uptime = self._clock() - process.started_at
        if uptime >= self._stable_after:
            self._crashes = 0
        self._record_crash()
        fate = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        reason = process.connection.close_reason
        tail = " | ".join(process.stderr_tail)
        message = f"the sidecar (pid {process.proc.pid}) {fate} ({reason})" + (f"; last stderr: {tail}" if tail else "")
        log.error("%s", message)
        process.connection.fail_pending(
            lambda method: SidecarCrashed(
                message, method=method, outcome_unknown=method.endswith("/post") or method.endswith("/send")
            )
        )

    @staticmethod
    def _kill(process: _Process) -> None:
        try:
            process.proc.kill()
        except ProcessLookupError:
            pass

    async def _stop(self, process: _Process, *, polite: bool = True) -> None:
        """Stop one process: shutdown/exit when polite and alive, then SIGTERM, then SIGKILL; always reaped."""
        process.stopping = True
        connection, proc = process.connection, process.proc
        timeout = self._shutdown_timeout
        if polite and proc.returncode is None and not connection.closed:
            try:
                await asyncio.wait_for(connection.request("shutdown"), timeout)
                await connection.notify("exit")
            except (SidecarError, asyncio.TimeoutError) as exc:
                log.warning("sidecar shutdown was not clean: %s", exc)
        try:
            assert proc.stdin is not None
            proc.stdin.close()
        except (OSError, RuntimeError):
            pass
        for step in ("wait", "terminate", "kill"):
            if step == "terminate":
                log.warning("sidecar pid %d did not exit in %.1f s; sending SIGTERM", proc.pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            elif step == "kill":
                log.warning("sidecar pid %d ignored SIGTERM; sending SIGKILL", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            try:
                await asyncio.wait_for(proc.wait(), timeout if step != "kill" else None)
                break
            except asyncio.TimeoutError:
                continue
        self._last_exit_code = proc.returncode
        tasks = [t for t in (process.supervisor, process.reader, process.stderr_reader) if t is not None]
        done, pending = await asyncio.wait(tasks, timeout=2.0) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        connection.fail_pending(lambda method: SidecarUnavailable("the sidecar was shut down", method=method))

    async def _drain_stderr(self, process: _Process) -> None:
        """Forward the sidecar's stderr to logging, one record per line; its JSON lines become structured records."""
        stream = process.proc.stderr
        assert stream is not None
        pending = b""
        try:
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > 65536:
                    lines.append(pending)
                    pending = b""
                for line in lines:
                    self._log_stderr(process, line)
            if pending:
                self._log_stderr(process, pending)
        except Exception:  # never let a log line take the client down
            log.exception("stopped reading the sidecar's stderr")

    def _log_stderr(self, process: _Process, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            return
        process.stderr_tail.append(line[:500])
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            _log_structured(obj, process.proc.pid)
        else:
            sidecar_log.warning("%s", line, extra={"sidecar_pid": process.proc.pid})

    # Messages from the sidecar.

    async def _handle_request(self, method: str, params: Any) -> Any:
        if method == "credentials/resolve":
            return await self._resolve_credentials(CredentialRequest.from_wire(params))
        if method == "credentials/update":
            update = CredentialUpdate.from_wire(params)
            if self._on_update is None:
                log.warning(
                    "credentials/update for %s %s but no on_credentials_updated callback: the new token is not saved",
                    update.platform,
                    update.credential_ref,
                )
                return {}
            try:
                # Shielded: if the sidecar gives up waiting and cancels, the save still completes (it will ask again).
                await asyncio.shield(_call_user(self._on_update, update))
            except Exception as exc:
                log.exception("on_credentials_updated failed; the sidecar will send the update again")
                raise RemoteError(-32603, f"{type(exc).__name__} while saving the credentials") from exc
            return {}
        raise RemoteError(-32601, f"the client does not handle {method}")

    async def _resolve_credentials(self, request: CredentialRequest) -> dict[str, Any]:
        """Ask the resolver; only a :class:`CredentialError`'s message reaches the sidecar, other failures by type."""
        if self._resolve is None:
            raise RemoteError(
                -31006, "no resolve_credentials callback", {"kind": "credential_unavailable", "retryable": False}
            )
        try:
            resolved = self._resolve(
                platform=request.platform, credential_ref=request.credential_ref, customer_id=request.customer_id
            )
            if inspect.isawaitable(resolved):
                resolved = await resolved
            return Credentials.wire_from(resolved)
        except CredentialError as exc:
            message, retryable = str(exc) or type(exc).__name__, exc.retryable
        except Exception as exc:
            message, retryable = f"the credential resolver raised {type(exc).__name__}", True
        log.warning(
            "resolve_credentials failed for %s %s (customer %s): %s",
            request.platform,
            request.credential_ref,
            request.customer_id,
            message,
        )
        raise RemoteError(-31006, message, {"kind": "credential_unavailable", "retryable": retryable})

    def _handle_notification(self, method: str, params: Any) -> None:
        if method == "$/progress":
            self._deliver_progress(params)
        elif method == "metrics/event":
            self._publish(method, MetricEvent.from_wire(params))
        elif method == "breaker/stateChanged":
            self._publish(method, BreakerChange.from_wire(params))
        elif method == "$/log":
            _log_structured(params if isinstance(params, dict) else {"message": params}, self.pid)
        else:
            log.debug("ignoring notification %s", method)

    def _deliver_progress(self, params: Any) -> None:
        token = params.get("token") if isinstance(params, Mapping) else None
        callback = self._progress.get(token) if isinstance(token, str) else None
        if callback is None:
            return
        try:
            result = callback(Progress.from_wire(params.get("value")))
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)
        except Exception:
            log.exception("on_progress callback failed")

    def _publish(self, method: str, event: Any) -> None:
        callback = self._on_event if method == "metrics/event" else self._on_breaker
        if callback is not None:  # no callback, no hop through the delivery task for every event
            self._ensure_event_task()
            assert self._events is not None
            self._events.put_nowait((method, event))
        for queue in list(self._subscribers):
            queue.put_nowait(event)

    def _ensure_event_task(self) -> None:
        if self._events is None:
            self._events = asyncio.Queue()
            self._event_task = asyncio.get_running_loop().create_task(self._deliver_events(self._events))

    async def _deliver_events(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        """Run the callbacks one event at a time, in arrival order, off the reader task."""
        while True:
            method, event = await queue.get()
            if event is _END:
                return
            callback = self._on_event if method == "metrics/event" else self._on_breaker
            assert callback is not None
            try:
                await _call_user(callback, event)
            except Exception:
                log.exception("%s callback failed", method)


def _grace_seconds(config: Mapping[str, Any]) -> float:
    shutdown = config.get("shutdown")
    grace = config.get("shutdown.graceMs", shutdown.get("graceMs") if isinstance(shutdown, Mapping) else None)
    return grace / 1000.0 if isinstance(grace, (int, float)) and not isinstance(grace, bool) else 10.0


def _log_structured(obj: Mapping[str, Any], pid: int | None) -> None:
    level_name = str(obj.get("level") or obj.get("lvl") or obj.get("severity") or "info").lower()
    level = _LEVELS.get(level_name, logging.INFO)
    message = obj.get("msg", obj.get("message", obj.get("event", "")))
    skip = {"level", "lvl", "severity", "msg", "message", "event", "ts", "time", "timestamp"}
    fields = " ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in obj.items() if k not in skip
    )
    sidecar_log.log(
        level, "%s%s", message, f" {fields}" if fields else "", extra={"sidecar": dict(obj), "sidecar_pid": pid}
    )
