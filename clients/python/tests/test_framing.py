"""Framing and the JSON-RPC connection, without a process: bytes in any chunking, answers matched by id."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from conftest import run
from social_sidecar import Connection, RateLimited, RemoteError, RequestCancelled
from social_sidecar.framing import FrameDecoder, FramingError, encode_frame, encode_message


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_encoded_frame_starts_with_content_length_and_counts_utf8_bytes() -> None:
    data = encode_message({"text": "héllo 👋"})
    header, body = data.split(b"\r\n\r\n", 1)
    assert header == b"Content-Length: %d" % len(body)
    assert json.loads(body) == {"text": "héllo 👋"}
    assert len(body) > len('{"text":"héllo 👋"}')  # bytes, not characters


def test_frames_split_at_every_byte_boundary_decode_whole() -> None:
    stream = frame({"id": 1}) + frame({"id": 2, "text": "ü"}) + frame({"id": 3})
    for cut in range(1, len(stream)):
        decoder = FrameDecoder()
        bodies = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert [json.loads(b)["id"] for b in bodies] == [1, 2, 3], cut
        assert decoder.buffered == 0


def test_byte_at_a_time_and_many_frames_per_read() -> None:
    stream = b"".join(frame({"id": i}) for i in range(200))
    drip = FrameDecoder()
    dripped = [body for i in range(len(stream)) for body in drip.feed(stream[i : i + 1])]
    assert [json.loads(b)["id"] for b in dripped] == list(range(200))
    assert [json.loads(b)["id"] for b in FrameDecoder().feed(stream)] == list(range(200))


def test_header_names_are_case_insensitive_and_unknown_headers_ignored() -> None:
    body = b'{"ok":true}'
    data = b"content-type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH: 11\r\nX-Other: 1\r\n\r\n" + body
    assert FrameDecoder().feed(data) == [body]


def test_truncated_frame_is_reported_as_buffered() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame({"id": 1})[:-3]) == []
    assert decoder.buffered > 0


@pytest.mark.parametrize(
    "data",
    [
        b"Content-Type: x\r\n\r\n{}",
        b"Content-Length: ten\r\n\r\n{}",
        b"Content-Length: -1\r\n\r\n{}",
        b"garbage without colon\r\n\r\n{}",
        b"Content-Length: 100000\r\n\r\n",
    ],
)
def test_unframeable_input_raises(data: bytes) -> None:
    with pytest.raises(FramingError):
        FrameDecoder(max_frame_bytes=1000).feed(data)


class FakeTransport:
    """What the connection asks of a writer's transport: nothing ever queues."""

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class FakeWriter:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._decoder = FrameDecoder()
        self.transport = FakeTransport()

    def write(self, data: bytes) -> None:
        self.sent += [json.loads(body) for body in self._decoder.feed(data)]

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def close(self) -> None:
        pass


def connected(**handlers: Any) -> tuple[Connection, asyncio.StreamReader, FakeWriter]:
    reader = asyncio.StreamReader()
    writer = FakeWriter()
    return Connection(reader, writer, **handlers), reader, writer


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_answers_in_any_order_and_chunking_reach_their_callers() -> None:
    async def body() -> None:
        connection, reader, writer = connected()
        reading = asyncio.create_task(connection.run())
        calls = [asyncio.create_task(connection.request("health", {"n": i})) for i in range(3)]
        await settle()
        assert [m["id"] for m in writer.sent] == [1, 2, 3]
        assert all(isinstance(m["id"], int) for m in writer.sent)
        stream = frame({"jsonrpc": "2.0", "id": 3, "result": "c"}) + frame({"jsonrpc": "2.0", "id": 1, "result": "a"})
        reader.feed_data(stream[:7])
        reader.feed_data(stream[7:40])
        reader.feed_data(stream[40:] + frame({"jsonrpc": "2.0", "id": 2, "result": "b"})[:5])
        reader.feed_data(frame({"jsonrpc": "2.0", "id": 2, "result": "b"})[5:])
        assert await asyncio.gather(*calls) == ["a", "b", "c"]
        reader.feed_eof()
        await reading

    run(body())


def test_error_answer_raises_the_mapped_exception_with_method() -> None:
    async def body() -> None:
        connection, reader, writer = connected()
        reading = asyncio.create_task(connection.run())
        call = asyncio.create_task(connection.request("facebook/post", {}))
        await settle()
        error = {"code": -31003, "message": "slow down", "data": {"kind": "rate_limited", "retryAfterMs": 2500}}
        reader.feed_data(frame({"jsonrpc": "2.0", "id": 1, "error": error}))
        with pytest.raises(RateLimited) as caught:
            await call
        assert caught.value.retry_after == 2.5 and caught.value.method == "facebook/post"
        reader.feed_eof()
        await reading

    run(body())


def test_cancelling_the_caller_sends_cancel_request_and_drops_the_late_answer() -> None:
    async def body() -> None:
        connection, reader, writer = connected()
        reading = asyncio.create_task(connection.run())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(connection.request("youtube/post", {}), 0.01)
        assert writer.sent[-1] == {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}
        reader.feed_data(frame({"jsonrpc": "2.0", "id": 1, "error": {"code": -32800, "message": "cancelled"}}))
        follow = asyncio.create_task(connection.request("health"))
        await settle()
        reader.feed_data(frame({"jsonrpc": "2.0", "id": 2, "result": {"status": "ok"}}))
        assert await follow == {"status": "ok"}
        assert connection.in_flight == 0
        reader.feed_eof()
        await reading

    run(body())


def test_server_requests_are_answered_with_their_own_id_type() -> None:
    async def body() -> None:
        async def handler(method: str, params: Any) -> Any:
            if method == "boom":
                raise ValueError("secret-token-123 must not leak")
            if method == "refuse":
                raise RemoteError(-31006, "no such credential", {"kind": "credential_unavailable"})
            return {"echo": params}

        connection, reader, writer = connected(request_handler=handler)
        reading = asyncio.create_task(connection.run())
        reader.feed_data(
            frame({"jsonrpc": "2.0", "id": "s-1", "method": "echo", "params": [1]})
            + frame({"jsonrpc": "2.0", "id": 7, "method": "boom"})
            + frame({"jsonrpc": "2.0", "id": "s-3", "method": "refuse"})
        )
        await settle()
        by_id = {m["id"]: m for m in writer.sent}
        assert by_id["s-1"]["result"] == {"echo": [1]}
        assert by_id[7]["error"]["code"] == -32603 and "secret" not in by_id[7]["error"]["message"]
        assert by_id["s-3"]["error"] == {
            "code": -31006,
            "message": "no such credential",
            "data": {"kind": "credential_unavailable"},
        }
        reader.feed_eof()
        await reading

    run(body())


def test_batches_and_notifications_are_dispatched() -> None:
    async def body() -> None:
        seen: list[tuple[str, Any]] = []
        connection, reader, writer = connected(notification_handler=lambda m, p: seen.append((m, p)))
        reading = asyncio.create_task(connection.run())
        call = asyncio.create_task(connection.request("health"))
        await settle()
        batch = [
            {"jsonrpc": "2.0", "method": "metrics/event", "params": {"n": 1}},
            {"jsonrpc": "2.0", "id": 1, "result": 5},
        ]
        reader.feed_data(frame(batch))
        assert await call == 5
        assert seen == [("metrics/event", {"n": 1})]
        reader.feed_eof()
        await reading

    run(body())


def test_eof_fails_waiting_requests_and_later_ones_at_once() -> None:
    async def body() -> None:
        connection, reader, writer = connected()
        reading = asyncio.create_task(connection.run())
        call = asyncio.create_task(connection.request("health"))
        await settle()
        reader.feed_data(frame({"jsonrpc": "2.0", "id": 1})[:10])
        reader.feed_eof()
        await reading
        assert "inside a frame" in connection.close_reason
        connection.fail_pending()
        with pytest.raises(Exception) as caught:
            await call
        assert "inside a frame" in str(caught.value)
        with pytest.raises(Exception):
            await connection.request("health")

    run(body())


def test_cancelled_answer_maps_to_request_cancelled() -> None:
    async def body() -> None:
        connection, reader, writer = connected()
        reading = asyncio.create_task(connection.run())
        call = asyncio.create_task(connection.request("health"))
        await settle()
        reader.feed_data(frame({"jsonrpc": "2.0", "id": 1, "error": {"code": -32800, "message": "cancelled"}}))
        with pytest.raises(RequestCancelled):
            await call
        reader.feed_eof()
        await reading

    run(body())


def test_encode_frame_is_one_buffer() -> None:
    assert encode_frame(b"{}") == b"Content-Length: 2\r\n\r\n{}"
