#!/usr/bin/env python3
"""A scripted stand-in for the social-sidecar binary, speaking the same framing and methods.

It shares no code with the client, so a framing bug on one side cannot hide on the other. Behaviour is chosen by:

- ``STANDIN_MODE`` (comma-separated): ``drip`` writes frames a byte at a time; ``ignore-exit`` survives
  ``shutdown``/``exit``/EOF/SIGTERM (only SIGKILL ends it); ``crash-on-init`` exits during ``initialize``;
  ``stderr-json`` logs JSON lines to stderr; ``stderr-text`` logs a plain line.
- the post's text (``text``/``caption``/``title``): ``hang``, ``crash``, ``error:<code>:<kind>[:<retryAfterMs>]``,
  ``refresh``, ``burst:<n>``, ``breaker``; anything else publishes.
- ``STANDIN_RECORD``: a file that receives every incoming message as one JSON line, for tests to inspect.
"""

import asyncio
import json
import os
import signal
import sys
import time

MODES = set(filter(None, os.environ.get("STANDIN_MODE", "").split(",")))
RECORD = os.environ.get("STANDIN_RECORD")
PLATFORMS = {
    "facebook": ["post", "validate", "refresh"],
    "instagram": ["post", "validate", "refresh"],
    "linkedin": ["post", "validate", "refresh"],
    "youtube": ["post", "validate", "refresh"],
    "whatsapp": ["send", "validate", "refresh"],
}
STARTED = time.monotonic()


def record(direction, message) -> None:
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(json.dumps({"dir": direction, "msg": message}) + "\n")


class Peer:
    def __init__(self) -> None:
        self.out = sys.stdout.buffer.raw if hasattr(sys.stdout.buffer, "raw") else sys.stdout.buffer
        self.next_id = 1000
        self.waiting: dict = {}
        self.running: dict = {}
        self.posts = 0
        self.shutdown = False

    def write(self, message) -> None:
        record("out", message)
        body = json.dumps(message).encode()
        frame = b"Content-Length: %d\r\n\r\n" % len(body) + body
        self.write_raw(frame)

    def write_raw(self, frame: bytes) -> None:
        if "drip" in MODES:
            for i in range(len(frame)):
                os.write(1, frame[i : i + 1])
        else:
            view = memoryview(frame)
            while view:
                view = view[os.write(1, view) :]

    async def ask(self, method, params):
        self.next_id += 1
        request_id = f"s-{self.next_id}"  # string ids: the client must echo the type back
        future = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        self.write({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return await future

    def reply(self, request_id, result=None, error=None) -> None:
        message = {"jsonrpc": "2.0", "id": request_id}
        if error is not None:
            message["error"] = error
        else:
            message["result"] = result
        self.write(message)

    def handle(self, message) -> None:
        record("in", message)
        method = message.get("method")
        if method is None:
            future = self.waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        params = message.get("params") or {}
        if "id" not in message:
            if method == "exit":
                if "ignore-exit" not in MODES:
                    os._exit(0 if self.shutdown else 1)
            elif method == "$/cancelRequest":
                task = self.running.get(params.get("id"))
                if task is not None:
                    task.cancel()
            return
        request_id = message["id"]
        task = asyncio.get_running_loop().create_task(self.serve(request_id, method, params))
        self.running[request_id] = task
        task.add_done_callback(lambda _t: self.running.pop(request_id, None))

    async def serve(self, request_id, method, params) -> None:
        try:
            result = await self.dispatch(method, params)
        except asyncio.CancelledError:
            self.reply(
                request_id, error={"code": -32800, "message": "request cancelled", "data": {"kind": "cancelled"}}
            )
            return
        except RpcError as exc:
            self.reply(request_id, error=exc.error)
            return
        self.reply(request_id, result)

    async def dispatch(self, method, params):
        if method == "initialize":
            if "crash-on-init" in MODES:
                sys.stderr.write("standin: crashing during initialize\n")
                sys.stderr.flush()
                os._exit(3)
            config = params.get("config") or {}
            for key in config:
                if key not in ("platforms", "retry", "breaker", "metrics", "http", "limits", "media", "stateDir"):
                    raise RpcError(
                        -32602,
                        f"unknown config key {key}",
                        {"kind": "invalid_params", "field": f"config.{key}", "reason": "unknown key"},
                    )
            return {
                "serverInfo": {"name": "standin", "version": "0.0.1"},
                "protocolVersion": "1",
                "capabilities": {"platforms": PLATFORMS},
            }
        if method == "shutdown":
            self.shutdown = True
            return None
        if method == "health":
            return {
                "status": "ok",
                "version": "0.0.1",
                "uptimeMs": int((time.monotonic() - STARTED) * 1000),
                "inFlight": len(self.running) - 1,
            }
        if method == "test/echo":
            return params
        if method == "test/pid":
            return os.getpid()
        if method == "metrics/prometheus":
            return {
                "contentType": "text/plain; version=1.0.0; charset=utf-8",
                "text": f'social_sidecar_operations_total{{platform="facebook",outcome="success"}} {self.posts}\n',
            }
        if method == "metrics/snapshot":
            series = {
                "total": self.posts, "success": self.posts, "failure": 0, "successRate": 1.0 if self.posts else None,
                "failureRate": 0.0 if self.posts else None, "avgMs": 3.0, "p50Ms": 3.0, "p95Ms": 3.0, "p99Ms": 3.0,
                "maxMs": 3.0, "retries": 0, "notPermitted": 0, "rateLimitWaits": 0, "replayed": 0, "errors": {},
            }
            return {"platforms": {"facebook": {"post": series, "breakerOpens": 0}}, "since": "2030-01-01T00:00:00Z"}
        if method == "breaker/status":
            return {
                "enabled": True,
                "platforms": {
                    p: {"state": "CLOSED", "consecutiveFailures": 0, "opens": 0, "retryAfterMs": None}
                    for p in PLATFORMS
                },
            }
        if method == "breaker/reset":
            if params.get("platform") not in PLATFORMS:
                raise RpcError(-32602, "unknown platform", {"kind": "invalid_params", "field": "platform"})
            return {"platform": params["platform"], "state": "CLOSED"}
        platform, _, operation = method.partition("/")
        if platform in PLATFORMS and operation in PLATFORMS[platform]:
            return await self.platform(platform, operation, params)
        raise RpcError(-32601, f"method not found: {method}")

    async def platform(self, platform, operation, params):
        script = str(params.get("text") or params.get("caption") or params.get("title") or "")
        if script == "hang":
            await asyncio.Event().wait()
        if script == "crash":
            sys.stderr.write("Fatal error: standin crashed on purpose\n")
            sys.stderr.flush()
            os._exit(70)
        if script == "garbage":  # a stray print on stdout: the stream cannot be trusted any more
            self.write_raw(b"stray debug output\r\n\r\n")
            await asyncio.Event().wait()
        if script.startswith("error:"):
            _, code, kind, *rest = script.split(":")
            data = {
                "kind": kind,
                "platform": platform,
                "retryable": kind in ("rate_limited", "transient_exhausted"),
                "attempts": 1,
            }
            if rest:
                data["retryAfterMs"] = int(rest[0])
            raise RpcError(int(code), f"scripted {kind}", data)
        if script == "cancel-resolve":  # as the sidecar does when the parent is too slow to answer
            self.next_id += 1
            request_id = f"s-{self.next_id}"
            future = asyncio.get_running_loop().create_future()
            self.waiting[request_id] = future
            self.write(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "credentials/resolve",
                    "params": {
                        "platform": platform,
                        "credentialRef": params.get("credentialRef"),
                        "customerId": params.get("customerId"),
                    },
                }
            )
            await asyncio.sleep(0.05)
            self.write({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})
            answer = await future
            raise RpcError(
                -31006,
                f"resolve timed out; parent answered {answer.get('error', {}).get('code')}",
                {"kind": "credential_unavailable", "platform": platform},
            )
        if operation == "refresh" and platform == "facebook":
            raise RpcError(-31013, "page tokens cannot be refreshed", {"kind": "unsupported", "platform": platform})
        credentials = await self.resolve(platform, params)
        account = credentials["accountId"]
        if operation == "validate":
            return {
                "valid": True,
                "accountId": account,
                "accountName": "Stand-in Page",
                "scopes": ["pages_manage_posts"],
            }
        if operation == "refresh" or script == "refresh":
            update = {
                "platform": platform,
                "credentialRef": params["credentialRef"],
                "customerId": params["customerId"],
                "accessToken": "new-access-token",
                "refreshToken": "rotated-refresh-token",
                "expiresAt": "2030-01-01T00:00:00Z",
            }
            while True:  # as the sidecar does: until acknowledged
                answer = await self.ask("credentials/update", update)
                if "result" in answer:
                    break
            if operation == "refresh":
                return {"refreshed": True, "expiresAt": "2030-01-01T00:00:00Z"}
        if script.startswith("burst:"):
            count = int(script.split(":")[1])
            frames = b""
            for i in range(count):
                body = json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "metrics/event",
                        "params": {
                            "eventId": f"burst-{i}", "timestamp": "2030-01-01T00:00:00Z", "customerId": "CUST-1",
                            "platform": platform, "operation": operation, "success": True, "attempts": 1,
                            "durationMs": 1.5,
                        },
                    }
                ).encode()
                frames += b"Content-Length: %d\r\n\r\n" % len(body) + body
            self.write_raw(frames)
        if script == "breaker":
            self.write(
                {
                    "jsonrpc": "2.0",
                    "method": "breaker/stateChanged",
                    "params": {"platform": platform, "from": "CLOSED", "to": "OPEN", "at": "2030-01-01T00:00:00Z"},
                }
            )
        self.posts += 1
        post_id = f"{platform}-post-{self.posts}"
        url = None if platform == "whatsapp" else f"https://example.test/{post_id}"
        self.write(
            {
                "jsonrpc": "2.0",
                "method": "metrics/event",
                "params": {
                    "eventId": f"ev-{os.getpid()}-{self.posts}",
                    "timestamp": "2030-01-01T00:00:00Z",
                    "customerId": params.get("customerId"),
                    "agentId": params.get("agentId"),
                    "platform": platform,
                    "operation": operation,
                    "correlationId": params.get("correlationId"),
                    "success": True,
                    "postId": post_id,
                    "postUrl": url,
                    "attempts": 1,
                    "durationMs": 3,
                },
            }
        )
        return {
            "platform": platform,
            "postId": post_id,
            "postUrl": url,
            "status": "accepted" if platform == "whatsapp" else "published",
            "attempts": 1,
            "durationMs": 3,
            "replayed": False,
            "waitedMs": 0,
        }

    async def resolve(self, platform, params):
        answer = await self.ask(
            "credentials/resolve",
            {
                "platform": platform,
                "credentialRef": params.get("credentialRef"),
                "customerId": params.get("customerId"),
            },
        )
        if "error" in answer:  # as the sidecar does: the parent's message, and its word on retrying
            raise RpcError(
                -31006,
                "credential unavailable: " + answer["error"].get("message", ""),
                {
                    "kind": "credential_unavailable",
                    "platform": platform,
                    "retryable": answer["error"].get("data", {}).get("retryable") is not False,
                },
            )
        result = answer["result"]
        if not result.get("accessToken") or not result.get("accountId"):
            raise RpcError(-31006, "credential incomplete", {"kind": "credential_unavailable", "platform": platform})
        return result


class RpcError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.error = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


async def main() -> None:
    if "ignore-exit" in MODES:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "stderr-json" in MODES:
        sys.stderr.write(json.dumps({"level": "warn", "msg": "standin started", "pid": os.getpid()}) + "\n")
        sys.stderr.flush()
    if "stderr-text" in MODES:
        sys.stderr.write("standin plain text line\n")
        sys.stderr.flush()
    peer = Peer()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    buffer = b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buffer += chunk
        while True:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                break
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            if len(rest) < length:
                break
            peer.handle(json.loads(rest[:length]))
            buffer = rest[length:]
    if "ignore-exit" in MODES:
        await asyncio.Event().wait()
    os._exit(0 if peer.shutdown else 1)


if __name__ == "__main__":
    asyncio.run(main())
