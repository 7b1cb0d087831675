"""LSP base-protocol framing: ``Content-Length: N\\r\\n\\r\\n`` followed by N bytes of UTF-8 JSON.

The decoder is a pure value-in, frames-out object with no I/O, so it can be fed any chunking (a byte at a time, or
many frames in one read) and tested without a process.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FrameDecoder", "FramingError", "encode_frame", "encode_message"]

_HEADER_END = b"\r\n\r\n"
#: A header block longer than this without a blank line is garbage, not a slow writer.
_MAX_HEADER_BYTES = 8192


class FramingError(Exception):
    """The byte stream cannot be split into frames (bad or missing ``Content-Length``, oversized frame)."""


def encode_frame(body: bytes) -> bytes:
    """Frame a JSON body, ``Content-Length`` first, as one buffer so concurrent writers never interleave."""
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def encode_message(message: Any) -> bytes:
    """Serialise one JSON-RPC message (compact UTF-8) and frame it."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return encode_frame(body)


class FrameDecoder:
    """Incremental frame decoder: ``feed()`` bytes in any chunking, get back the complete bodies seen so far.

    Header names are case-insensitive and unknown headers are ignored, as LSP requires. A frame larger than
    ``max_frame_bytes`` raises :class:`FramingError`; so does a header block without a valid ``Content-Length``,
    since a peer that breaks framing cannot be resynchronised reliably.
    """

    def __init__(self, max_frame_bytes: int = 64 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._expected: int | None = None
        self._max_frame_bytes = max_frame_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a frame (non-zero at EOF means a truncated frame)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every body completed by it, in order."""
        self._buffer += data
        frames: list[bytes] = []
        while True:
            if self._expected is None:
                end = self._buffer.find(_HEADER_END)
                if end < 0:
                    if len(self._buffer) > _MAX_HEADER_BYTES:
                        raise FramingError("no end of header block within %d bytes" % _MAX_HEADER_BYTES)
                    return frames
                self._expected = self._parse_headers(bytes(self._buffer[:end]))
                del self._buffer[: end + len(_HEADER_END)]
            if len(self._buffer) < self._expected:
                return frames
            frames.append(bytes(self._buffer[: self._expected]))
            del self._buffer[: self._expected]
            self._expected = None

    def _parse_headers(self, block: bytes) -> int:
        length: int | None = None
        for line in block.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if not sep:
                raise FramingError("malformed header line %r" % line[:80])
            if name.strip().lower() == b"content-length":
                text = value.strip()
                if not text.isdigit():
                    raise FramingError("invalid Content-Length %r" % text[:40])
                length = int(text)
        if length is None:
            raise FramingError("header block without Content-Length")
        if length > self._max_frame_bytes:
            raise FramingError("frame of %d bytes exceeds the %d byte limit" % (length, self._max_frame_bytes))
        return length
