"""A JSON-RPC 2.0 peer over any pair of asyncio byte streams, framed like LSP.

It knows nothing of processes or platforms: :class:`~social_sidecar.client.Sidecar` gives it a subprocess's pipes,
tests may give it anything with ``read()`` and ``write()``. Cancelling the task awaiting :meth:`Connection.request`
sends ``$/cancelRequest`` for it, which is how ``asyncio.wait_for`` timeouts reach the sidecar.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Mapping, Protocol

from .errors import SidecarError, SidecarUnavailable, error_from_response
from .framing import FrameDecoder, FramingError, encode_message

__all__ = ["Connection", "RequestHandler", "NotificationHandler", "RemoteError"]

log = logging.getLogger("social_sidecar")

#: Bytes queued in the pipe's transport above which a request waits for them to drain (asyncio's high-water mark).
_DRAIN_ABOVE = 64 * 1024

#: Handles a server-to-client request: ``(method, params) -> result``; may be sync or async.
RequestHandler = Callable[[str, Any], Any]
#: Receives a notification: ``(method, params)``; called on the reader task, so it must not block.
NotificationHandler = Callable[[str, Any], None]


class _Reader(Protocol):
    async def read(self, n: int = ...) -> bytes: ...


class _Writer(Protocol):
    @property
    def transport(self) -> asyncio.WriteTransport: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class RemoteError(Exception):
    """Raise from a request handler to answer with a specific JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = dict(data) if data is not None else None


class Connection:
    """One JSON-RPC conversation: outgoing requests matched to replies by id, incoming requests answered once each.

    Call :meth:`run` (usually as a task) to read until EOF; when it returns, every request still waiting fails with
    the error made by :meth:`fail_pending` or, by default, :class:`SidecarUnavailable`.
    """

    def __init__(
        self,
        reader: _Reader,
        writer: _Writer,
        *,
        request_handler: RequestHandler | None = None,
        notification_handler: NotificationHandler | None = None,
        max_frame_bytes: int = 64 * 1024 * 1024,
        read_size: int = 65536,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._request_handler = request_handler
        self._notification_handler = notification_handler
        self._decoder = FrameDecoder(max_frame_bytes)
        self._read_size = read_size
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        #: Incoming requests being handled, by id, so the peer's ``$/cancelRequest`` can stop them.
        self._handlers: dict[Any, asyncio.Task[None]] = {}
        #: Ids we cancelled recently, so their late answers are dropped without noise.
        self._cancelled: deque[int] = deque(maxlen=64)
        self._drain_lock = asyncio.Lock()
        self._closed = False
        self._eof = False
        self._close_reason = "connection closed"

    @property
    def closed(self) -> bool:
        """True once the read side ended or :meth:`fail_pending` ran; requests then fail at once."""
        return self._closed

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    async def request(self, method: str, params: Any = None) -> Any:
        """Send a request and wait for its result; raises the mapped :class:`SidecarError` on an error reply."""
        if self._closed:
            raise SidecarUnavailable(self._close_reason, method=method)
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self._send(message)
            return await future
        except asyncio.CancelledError:
            if request_id in self._pending and not self._closed:
                self._cancelled.append(request_id)
                self._write({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})
            raise
        finally:
            self._pending.pop(request_id, None)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification (no answer expected)."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    async def run(self) -> None:
        """Read and dispatch frames until EOF or a framing error; never raises for the peer's faults."""
        try:
            while True:
                chunk = await self._reader.read(self._read_size)
                if not chunk:
                    self._eof = True
                    if self._decoder.buffered:
                        self._close_reason = "stream ended inside a frame"
                    else:
                        self._close_reason = "end of stream"
                    return
                for body in self._decoder.feed(chunk):
                    self._dispatch_body(body)
        except FramingError as exc:
            self._close_reason = f"unreadable stream from the sidecar: {exc}"
            log.error("closing connection: %s", self._close_reason)
        except (ConnectionError, OSError) as exc:
            self._close_reason = f"read failed: {exc}"
        finally:
            self._closed = True

    def fail_pending(self, make_error: Callable[[str], BaseException] | None = None) -> None:
        """Close and fail every request still waiting, with ``make_error(method)`` (default: SidecarUnavailable)."""
        self._closed = True
        pending, self._pending = self._pending, {}
        for method, future in pending.values():
            if not future.done():
                future.set_exception(
                    make_error(method) if make_error else SidecarUnavailable(self._close_reason, method=method)
                )
        for task in list(self._handlers.values()):
            task.cancel()

    @property
    def reached_eof(self) -> bool:
        """True when reading ended at the end of the stream (the peer closed it), not on bad input."""
        return self._eof

    @property
    def close_reason(self) -> str:
        """Why the connection stopped reading, in words."""
        return self._close_reason

    # Writing.

    def _write(self, message: Any) -> None:
        try:
            self._writer.write(encode_message(message))
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise SidecarUnavailable(f"cannot write to the sidecar: {exc}") from exc

    async def _send(self, message: Any) -> None:
        self._write(message)
        transport = self._writer.transport
        if not transport.is_closing() and transport.get_write_buffer_size() < _DRAIN_ABOVE:
            return  # nothing queued worth waiting for: skip the lock and the await on every request
        try:
            async with self._drain_lock:
                await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise SidecarUnavailable(f"cannot write to the sidecar: {exc}") from exc

    # Reading.

    def _dispatch_body(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.error("dropping a frame that is not JSON: %s", exc)
            return
        for item in message if isinstance(message, list) else [message]:
            if isinstance(item, dict):
                self._dispatch(item)
            else:
                log.error("dropping a JSON-RPC message that is not an object")

    def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        has_id = "id" in message and message["id"] is not None
        if isinstance(method, str):
            if has_id:
                request_id = message["id"]
                task = asyncio.get_running_loop().create_task(self._answer(request_id, method, message.get("params")))
                self._handlers[request_id] = task
                task.add_done_callback(lambda _: self._handlers.pop(request_id, None))
            elif method == "$/cancelRequest":
                params = message.get("params")
                target = self._handlers.get(params.get("id")) if isinstance(params, dict) else None
                if target is not None:
                    target.cancel()
            elif self._notification_handler is not None:
                try:
                    self._notification_handler(method, message.get("params"))
                except Exception:
                    log.exception("notification handler failed for %s", method)
            return
        if not has_id:
            log.error("dropping a message with neither method nor id: %s", message.get("error"))
            return
        request_id = message["id"]
        entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is None:
            if request_id in self._cancelled:
                error = message.get("error")
                log.debug(
                    "request %r answered after cancellation: %s",
                    request_id,
                    error.get("code") if isinstance(error, dict) else "result",
                )
            else:
                log.warning("dropping an answer to unknown request id %r", request_id)
            return
        sent_method, future = entry
        if future.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            future.set_exception(error_from_response(error, sent_method))
        elif "result" in message:
            future.set_result(message["result"])
        else:
            future.set_exception(SidecarError("answer without result or error", method=sent_method))

    async def _answer(self, request_id: Any, method: str, params: Any) -> None:
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        try:
            if self._request_handler is None:
                raise RemoteError(-32601, f"the client does not handle {method}")
            result = self._request_handler(method, params)
            if inspect.isawaitable(result):
                result = await result
            reply["result"] = result
        except asyncio.CancelledError:
            if self._closed:
                return
            reply["error"] = {"code": -32800, "message": f"{method} cancelled by the sidecar"}
        except RemoteError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                reply["error"]["data"] = exc.data
        except Exception as exc:  # the handler's fault: answer instead of leaving the sidecar waiting
            log.exception("handler for %s failed", method)
            reply["error"] = {"code": -32603, "message": f"{type(exc).__name__} in the client's {method} handler"}
        if self._closed:
            return
        try:
            await self._send(reply)
        except SidecarError as exc:
            log.warning("could not answer %s: %s", method, exc)
