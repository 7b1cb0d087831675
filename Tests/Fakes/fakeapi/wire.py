"""HTTP/1.1 on asyncio streams: just enough of RFC 9112 for API clients (keep-alive, chunked
request bodies, `Expect: 100-continue`), with requests parsed the way the platforms read them."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 2 * 1024 * 1024 * 1024

REASONS = {308: "Resume Incomplete"}


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP request we can answer."""


@dataclass
class UploadedFile:
    filename: str
    content_type: str
    data: bytes

    def summary(self) -> dict:
        return {"filename": self.filename, "content_type": self.content_type,
                "bytes": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    version: str = "HTTP/1.1"
    path: str = ""
    raw_path: str = ""
    raw_query: str = ""
    query: dict[str, str] = field(default_factory=dict)
    query_lists: dict[str, list[str]] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    body_kind: str = "none"  # none | json | form | multipart | binary | invalid-json
    platform: str = ""

    def __post_init__(self) -> None:
        split = urlsplit(self.target)
        self.raw_path = split.path or "/"
        self.path = unquote(self.raw_path)
        self.raw_query = split.query
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            self.query[key] = value
            self.query_lists.setdefault(key, []).append(value)
        self._parse_body()

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def host(self) -> str:
        return self.header("host") or "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    @property
    def params(self) -> dict[str, Any]:
        """Query merged with a JSON object, form or multipart body (body wins), as Graph reads them."""
        merged: dict[str, Any] = dict(self.query)
        merged.update(self.form)
        if isinstance(self.json, dict):
            merged.update(self.json)
        return merged

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return ""

    def _parse_body(self) -> None:
        if not self.body:
            return
        kind = self.content_type
        if kind == "application/json" or kind.endswith("+json"):
            try:
                self.json = json.loads(self.body)
                self.body_kind = "json"
            except ValueError:
                self.body_kind = "invalid-json"
        elif kind == "application/x-www-form-urlencoded":
            self.body_kind = "form"
            for key, value in parse_qsl(self.text(), keep_blank_values=True):
                self.form[key] = value
        elif kind == "multipart/form-data":
            self.body_kind = "multipart"
            self._parse_multipart()
        else:
            self.body_kind = "binary"

    def _parse_multipart(self) -> None:
        boundary = _header_param(self.header("content-type") or "", "boundary")
        if not boundary:
            return
        delimiter = b"--" + boundary.encode("latin-1")
        for part in self.body.split(delimiter)[1:]:
            if part.startswith(b"--"):
                break
            head, _, data = part.partition(b"\r\n\r\n")
            if data.endswith(b"\r\n"):
                data = data[:-2]
            headers = {}
            for line in head.decode("utf-8", "replace").split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            disposition = headers.get("content-disposition", "")
            name = _header_param(disposition, "name")
            if name is None:
                continue
            filename = _header_param(disposition, "filename")
            if filename is not None or "content-type" in headers and not headers["content-type"].startswith("text/"):
                self.files[name] = UploadedFile(filename or "", headers.get("content-type", ""), data)
            else:
                self.form[name] = data.decode("utf-8", "replace")

    def recorded_body(self) -> dict:
        """What the request log keeps: parsed fields for structured bodies, size and digest for bytes."""
        entry: dict[str, Any] = {"body_kind": self.body_kind, "body_bytes": len(self.body)}
        if self.body_kind == "json":
            entry["body"] = self.json
        elif self.body_kind == "form":
            entry["body"] = dict(self.form)
        elif self.body_kind == "multipart":
            entry["body"] = dict(self.form)
            entry["files"] = {name: f.summary() for name, f in self.files.items()}
        elif self.body:
            entry["body_sha256"] = hashlib.sha256(self.body).hexdigest()
            if self.body_kind == "invalid-json":
                entry["body_text"] = self.text()[:2000]
        return entry


def _header_param(value: str, name: str) -> str | None:
    for piece in value.split(";")[1:]:
        key, sep, raw = piece.strip().partition("=")
        if sep and key.strip().lower() == name:
            raw = raw.strip()
            return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return None


class Response:
    """A status, headers in order, and a body; `json()` and `empty()` build the usual ones."""

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None):
        self.status = status
        self.body = body
        self.headers = list(headers or [])

    @classmethod
    def json(cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> "Response":
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, [("Content-Type", "application/json; charset=UTF-8"), *(headers or [])])

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=UTF-8") -> "Response":
        return cls(status, text.encode(), [("Content-Type", content_type)])

    @classmethod
    def empty(cls, status: int, headers: list[tuple[str, str]] | None = None) -> "Response":
        return cls(status, b"", headers)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))

    def json_body(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def serialize(self, keep_alive: bool, head: bool = False, body_override: bytes | None = None) -> bytes:
        body = self.body if body_override is None else body_override
        reason = REASONS.get(self.status) or _reason(self.status)
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        names = set()
        for key, value in self.headers:
            names.add(key.lower())
            lines.append(f"{key}: {value}")
        if "date" not in names:
            lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        if self.status not in (204, 304) and self.status >= 200:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
        payload = b"" if head or self.status in (204, 304) else body
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """Reads one request; None at a clean end of stream between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial.strip():
            return None
        raise BadRequest("truncated request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # tolerate stray CRLF between requests (RFC 9112 §2.2)
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"bad header line: {line[:100]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    body = await _read_body(reader, writer, headers, version)
    return Request(method=method.upper(), target=target, headers=headers, body=body, version=version)


async def _read_body(reader, writer, headers: dict[str, str], version: str) -> bytes:
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length_text = headers.get("content-length")
    if not chunked and not length_text:
        return b""
    if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if chunked:
        return await _read_chunked(reader)
    try:
        length = int(length_text)
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if length < 0 or length > MAX_BODY_BYTES:
        raise BadRequest("bad Content-Length")
    return await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers are read and ignored
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def wants_keep_alive(request: Request) -> bool:
    connection = (request.header("connection") or "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection
