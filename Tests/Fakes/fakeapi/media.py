"""Media for the sidecar to fetch: deterministic bytes of any size (`/media/video-1048576.mp4`,
`/media/image-20k.jpg`), redirects for SSRF tests, and canned failures."""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections import OrderedDict
from urllib.parse import urlencode

from .wire import Request, Response

NAME = re.compile(r"^(?P<stem>[A-Za-z0-9_.-]*?)-?(?P<size>\d+)(?P<unit>[kKmM]?)\.(?P<ext>[A-Za-z0-9]+)$")
TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "jpg": "image/jpeg",
         "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
         "pdf": "application/pdf", "srt": "application/x-subrip", "bin": "application/octet-stream",
         "txt": "text/plain"}
MAGIC = {"mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
         "mov": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ",
         "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
         "png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF89a", "pdf": b"%PDF-1.4\n",
         "srt": b"1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:02,500 --> 00:00:04,000\nWorld\n\n"}
MAX_BYTES = 1024 * 1024 * 1024
_cache: OrderedDict[str, bytes] = OrderedDict()
_cache_lock = threading.Lock()


def parse_name(name: str) -> tuple[int, str] | None:
    match = NAME.match(name)
    if not match:
        return None
    size = int(match.group("size")) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group("unit").lower()]
    return size, match.group("ext").lower()


def media_bytes(name: str) -> bytes:
    """The exact bytes `GET /media/<name>` serves: a seeded stream with the format's magic header."""
    with _cache_lock:
        if name in _cache:
            _cache.move_to_end(name)
            return _cache[name]
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(f"media name {name!r} must look like <stem>-<bytes>[k|m].<ext>")
    size, ext = parsed
    if size > MAX_BYTES:
        raise ValueError("media larger than 1 GiB")
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    data = bytearray(random.Random(seed).randbytes(size))
    magic = MAGIC.get(ext, b"")[:size]
    data[:len(magic)] = magic
    result = bytes(data)
    with _cache_lock:
        _cache[name] = result
        while sum(len(v) for v in _cache.values()) > 512 * 1024 * 1024 and len(_cache) > 1:
            _cache.popitem(last=False)
    return result


def media_sha256(name: str) -> str:
    return hashlib.sha256(media_bytes(name)).hexdigest()


def media_url(base_url: str, name: str) -> str:
    return f"{base_url}/media/{name}"


def redirect_url(base_url: str, to: str, status: int = 302) -> str:
    return f"{base_url}/media/redirect?{urlencode({'to': to, 'status': status})}"


def handle(request: Request) -> Response:
    name = request.path[len("/media/"):]
    if request.method not in ("GET", "HEAD"):
        return Response.text(405, "method not allowed")
    if name == "redirect":
        target = request.query.get("to")
        if not target:
            return Response.text(400, "redirect needs ?to=")
        status = int(request.query.get("status", 302))
        return Response.text(status, f"redirecting to {target}") if status not in (301, 302, 303, 307, 308) \
            else Response(status, b"", [("Location", target)])
    if name.startswith("status/"):
        code = name.split("/", 1)[1]
        return Response.text(int(code) if code.isdigit() else 500, f"canned status {code}")
    parsed = parse_name(name)
    if parsed is None:
        return Response.text(404, "unknown media; names look like video-1048576.mp4")
    try:
        data = media_bytes(name)
    except ValueError as error:
        return Response.text(400, str(error))
    content_type = request.query.get("content_type") or TYPES.get(parsed[1], "application/octet-stream")
    digest = hashlib.sha256(data).hexdigest()
    headers = [("Content-Type", content_type), ("Accept-Ranges", "bytes"), ("ETag", f'"{digest[:32]}"'),
               ("X-Fake-Sha256", digest)]
    ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", request.header("range") or "")
    if ranged:
        start = int(ranged.group(1))
        end = min(int(ranged.group(2)) if ranged.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data) or start > end:
            return Response(416, b"", [("Content-Range", f"bytes */{len(data)}")])
        return Response(206, data[start:end + 1], headers + [("Content-Range", f"bytes {start}-{end}/{len(data)}")])
    return Response(200, data, headers)
