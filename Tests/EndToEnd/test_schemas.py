"""The protocol's JSON Schemas (protocol/schemas): the checker's verdict, and the real binary's answers over real pipes.

Platform methods are checked only for the platforms that the binary's `initialize` capabilities list. The others are
skipped with the reason; the capabilities are read again on every run, so a platform is checked as soon as it is
served. Inputs the tests send as bad are also checked to be refused by the params schemas, and good ones to be
accepted, so the schemas and the server are held to the same line.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "protocol" / "conformance"))
sys.path.insert(0, str(ROOT / "Tests" / "Fakes"))

import check_schemas  # noqa: E402
from conftest import binary  # noqa: E402

PLATFORMS = ["facebook", "instagram", "linkedin", "youtube", "whatsapp"]
PUBLISH = {p: "send" if p == "whatsapp" else "post" for p in PLATFORMS}
QUERIES = ["health", "metrics/snapshot", "metrics/prometheus", "breaker/status"]


class Peer:
    """A raw-bytes JSON-RPC parent: frames by hand, answers `credentials/*` requests, keeps everything it receives."""

    def __init__(self, credentials: dict[str, dict] | None = None, args: list[str] | None = None):
        self.process = subprocess.Popen(
            [binary(), *(args or [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.credentials = credentials or {}
        self.cond = threading.Condition()
        self.responses: dict[Any, dict] = {}
        self.unaddressed: list[dict] = []   # answers with `id: null` (framing and invalid-request errors)
        self.notifications: list[dict] = []
        self.server_requests: list[dict] = []
        self.answers_sent: list[tuple[str, dict]] = []
        self.stderr = bytearray()
        self.next_id = 0
        self.write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        with self.write_lock:
            self.process.stdin.write(data)
            self.process.stdin.flush()

    def send(self, message: Any) -> None:
        body = json.dumps(message).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = self.process.stdout.read1(65536)
            if not chunk:
                with self.cond:
                    self.cond.notify_all()
                return
            buffer += chunk
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                header = buffer[:end].decode("ascii", "replace")
                length = int(header.split("\r\n")[0].removeprefix("Content-Length: "))
                if len(buffer) < end + 4 + length:
                    break
                body, buffer = buffer[end + 4:end + 4 + length], buffer[end + 4 + length:]
                self._dispatch(json.loads(body))

    def _drain_stderr(self) -> None:
        while chunk := self.process.stderr.read1(65536):
            self.stderr += chunk

    def _dispatch(self, message: dict) -> None:
        with self.cond:
            if "method" in message and "id" in message:
                self.server_requests.append(message)
            elif "method" in message:
                self.notifications.append(message)
            elif message.get("id") is None:
                self.unaddressed.append(message)
            else:
                self.responses[message["id"]] = message
            self.cond.notify_all()
        if "method" in message and "id" in message:
            self._answer(message)

    def _answer(self, request: dict) -> None:
        params = request.get("params") or {}
        if request["method"] == "credentials/resolve" and params.get("credentialRef") in self.credentials:
            reply = {"result": self.credentials[params["credentialRef"]]}
        elif request["method"] == "credentials/update":
            reply = {"result": {}}
        else:
            reply = {"error": {"code": -32601, "message": f"the test parent does not serve {request['method']}"}}
        self.answers_sent.append((request["method"], reply))
        self.send({"jsonrpc": "2.0", "id": request["id"], **reply})

    # -- calls ----------------------------------------------------------------------------------------------------
    def request(self, method: str, params: Any = None) -> int:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.next_id

    def wait(self, request_id: Any, timeout: float = 15.0) -> dict:
        return self._wait_for(lambda: self.responses.pop(request_id, None), f"the answer to {request_id}", timeout)

    def call(self, method: str, params: Any = None, timeout: float = 15.0) -> dict:
        return self.wait(self.request(method, params), timeout)

    def next_unaddressed(self, timeout: float = 15.0) -> dict:
        return self._wait_for(lambda: self.unaddressed.pop(0) if self.unaddressed else None,
                              "an answer with id null", timeout)

    def notification(self, method: str, match, timeout: float = 15.0) -> dict:
        def find():
            return next((n["params"] for n in self.notifications if n["method"] == method and match(n["params"])),
                        None)
        return self._wait_for(find, f"a {method} notification", timeout)

    def _wait_for(self, take, what: str, timeout: float):
        deadline = time.monotonic() + timeout
        with self.cond:
            while (found := take()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no {what} within {timeout} s (exit status {self.process.poll()}); "
                                         f"stderr tail: {self.stderr[-1200:].decode(errors='replace')}")
                self.cond.wait(min(remaining, 0.1))
            return found

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send({"jsonrpc": "2.0", "method": "exit"})
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


# -- assertions -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def schemas() -> check_schemas.SchemaSet:
    return check_schemas.SchemaSet()


def assert_valid(schemas: check_schemas.SchemaSet, name: str, instance: Any) -> None:
    errors = schemas.errors(name, instance)
    assert not errors, f"{name}.schema.json refuses {json.dumps(instance)[:800]}:\n  " + "\n  ".join(errors)


def assert_refused(schemas: check_schemas.SchemaSet, name: str, instance: Any) -> None:
    assert not schemas.is_valid(name, instance), (
        f"{name}.schema.json accepts {json.dumps(instance)[:400]}, which the sidecar refuses")


def result_of(answer: dict) -> Any:
    assert "result" in answer, f"expected a result, got {json.dumps(answer)[:800]}"
    return answer["result"]


def assert_error(schemas: check_schemas.SchemaSet, answer: dict, code: int | None = None,
                 kind: str | None = None) -> dict:
    assert "error" in answer, f"expected an error, got {json.dumps(answer)[:800]}"
    error = answer["error"]
    assert_valid(schemas, "error", error)
    if code is not None:
        assert error["code"] == code, error
    if kind is not None:
        assert (error.get("data") or {}).get("kind") == kind, error
    return error


def schema_for(method: str, part: str) -> str:
    return check_schemas.method_schema_name(method, part)


def assert_everything_received_matches(schemas: check_schemas.SchemaSet, peer: Peer) -> None:
    """Every notification and server-to-client request so far matches its params schema; our answers too."""
    with peer.cond:
        received = list(peer.notifications) + list(peer.server_requests)
        answers = list(peer.answers_sent)
    for message in received:
        name = schema_for(message["method"], "params")
        assert name in schemas.documents, f"the sidecar sent {message['method']}, which has no schema"
        assert_valid(schemas, name, message.get("params"))
    for method, reply in answers:
        if "result" in reply:
            assert_valid(schemas, schema_for(method, "result"), reply["result"])


# -- the checker ------------------------------------------------------------------------------------------------------
def test_every_schema_is_valid_2020_12_and_every_example_lands_on_its_side():
    report = check_schemas.check()
    assert report.failed == 0, "\n".join(report.failures)
    assert report.passed >= 100, f"only {report.passed} checks ran: examples missing?"


def test_the_checker_reports_an_example_on_the_wrong_side(tmp_path):
    for path in check_schemas.SCHEMAS.glob("*.schema.json"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "README.md").write_text(" ".join(f"`{p.name}`" for p in tmp_path.glob("*.schema.json")))
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "health.result.json").write_text(json.dumps(
        {"valid": [{"status": "great", "version": "1", "uptimeMs": 0, "inFlight": 0}],
         "invalid": [{"status": "ok", "version": "1", "uptimeMs": 0, "inFlight": 0}]}))
    report = check_schemas.check(tmp_path)
    assert any("health.result: valid[0]" in f for f in report.failures), report.failures
    assert any("health.result: invalid[0]" in f and "accepted" in f for f in report.failures), report.failures
    assert any("no examples/facebook.post.params.json" in f for f in report.failures), report.failures


# -- lifecycle, queries and errors against the real binary -------------------------------------------------------------
def test_health_before_initialize_is_not_initialized(schemas):
    # PROTOCOL.md §2: every request but `initialize` gets -32002 before `initialize`, `health` included.
    with Peer() as peer:
        answer = peer.call("health")
        assert_error(schemas, answer, -32002, kind="server_not_initialized")


def test_lifecycle_and_query_answers_match_their_schemas(schemas):
    with Peer() as peer:
        params = {"clientInfo": {"name": "schema-e2e", "version": "1"},
                  "config": {"retry": {"maxAttempts": 3}, "breaker.openMs": 60000, "metrics": {"enabled": True}}}
        assert_valid(schemas, "initialize.params", params)
        initialized = result_of(peer.call("initialize", params))
        assert_valid(schemas, "initialize.result", initialized)

        advertised = initialized["capabilities"]["methods"]
        assert set(QUERIES) <= set(advertised), advertised
        for method in advertised:
            assert schema_for(method, "result") in schemas.documents, f"{method} is served but has no result schema"
        for method in QUERIES:
            assert_valid(schemas, schema_for(method, "result"), result_of(peer.call(method)))
        assert result_of(peer.call("health"))["status"] == "ok"

        assert_error(schemas, peer.call("initialize", {}), -32600)
        assert_valid(schemas, "shutdown.result", result_of(peer.call("shutdown")))
        health = result_of(peer.call("health"))
        assert_valid(schemas, "health.result", health)
        assert health["status"] == "shutting_down"
        assert_error(schemas, peer.call("metrics/snapshot"), -32600, kind="shutting_down")
        assert_everything_received_matches(schemas, peer)


def test_bad_requests_get_errors_that_match_the_error_schema(schemas):
    with Peer() as peer:
        assert_error(schemas, peer.call("breaker/status"), -32002)
        result_of(peer.call("initialize", {}))

        assert_error(schemas, peer.call("no/such/method"), -32601, kind="method_not_found")
        assert_error(schemas, peer.call("$/unknownRequest", {}), -32601)
        for params in [{}, {"platform": "tiktok"}, {"platform": 5}]:
            assert_refused(schemas, "breaker.reset.params", params)
            error = assert_error(schemas, peer.call("breaker/reset", params), -32602, kind="invalid_params")
            assert error["data"].get("field") == "platform", error

        peer.send({"jsonrpc": "2.0", "id": 1.5, "method": "health"})
        assert_error(schemas, peer.next_unaddressed(), -32600, kind="invalid_request")
        peer.write(b"Content-Length: 7\r\n\r\n{oops}}")
        assert_error(schemas, peer.next_unaddressed(), -32700)
        peer.write(b"this is not a header\r\n\r\n")
        assert_error(schemas, peer.next_unaddressed(), -32700, kind="bad_framing")
        oversized = 8 * 1024 * 1024 + 1  # one byte over the default limits.maxFrameBytes
        peer.write(b"Content-Length: %d\r\n\r\n" % oversized + b" " * oversized)
        error = assert_error(schemas, peer.next_unaddressed(), -32600, kind="frame_too_large")
        assert error["data"]["declaredBytes"] == oversized
        assert result_of(peer.call("health"))["status"] == "ok"  # the stream is still usable


@pytest.mark.parametrize("config, field", [
    ({"retry": {"maxAttempts": 0}}, "config.retry.maxAttempts"),
    ({"retry.maxAtempts": 3}, "config.retry.maxAtempts"),
    ({"http": {"transport": "okhttp"}}, "config.http.transport"),
    ({"platforms": {"facebook": {"apiVersion": "23.0"}}}, "config.platforms.facebook.apiVersion"),
])
def test_bad_configuration_is_refused_by_schema_and_server_alike(schemas, config, field):
    assert_refused(schemas, "initialize.params", {"config": config})
    with Peer() as peer:
        error = assert_error(schemas, peer.call("initialize", {"config": config}), -32602, kind="invalid_params")
        assert error["data"].get("field") == field, error


# -- platform methods, for the platforms this binary serves ------------------------------------------------------------
def credential_refs(fake) -> dict[str, dict]:
    """`credentials/resolve` answers per credentialRef, from the fakes' accounts (without `expiresAt`, which the fakes
    give in milliseconds while PROTOCOL.md §4 says Unix seconds)."""
    defaults = fake.credentials()
    return {f"CRED-{p}": {k: v for k, v in defaults[p].items() if k != "expiresAt"} for p in PLATFORMS}


def publish_content(platform: str, fake) -> dict:
    marker = uuid.uuid4().hex[:8]
    return {
        "facebook": {"text": f"schema check {marker}"},
        "instagram": {"imageUrl": f"https://media.example.test/image-20k.jpg?{marker}", "caption": "schema check"},
        "linkedin": {"text": f"schema check {marker}"},
        "youtube": {"title": f"Schema check {marker}", "videoUrl": fake.media_url("video-262144.mp4"),
                    "privacyStatus": "private"},
        "whatsapp": {"to": "15550001111", "text": f"schema check {marker}"},
    }[platform]


@pytest.fixture(scope="module")
def served(schemas):
    from fake_platforms import FakePlatforms

    with FakePlatforms() as fake:
        credentials = credential_refs(fake)
        for answer in credentials.values():
            assert_valid(schemas, "credentials.resolve.result", answer)
        peer = Peer(credentials)
        params = {"clientInfo": {"name": "schema-e2e"},
                  "config": {**fake.sidecar_config(), "retry": {"baseDelayMs": 10, "maxDelayMs": 100}}}
        assert_valid(schemas, "initialize.params", params)
        initialized = result_of(peer.call("initialize", params))
        assert_valid(schemas, "initialize.result", initialized)
        try:
            yield peer, fake, initialized["capabilities"]["platforms"]
        finally:
            peer.close()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_platform_answers_match_their_schemas(platform, schemas, served):
    peer, fake, platforms = served
    operations = platforms.get(platform)
    if not operations:
        pytest.skip(f"{platform} is not served by this binary yet: its initialize capabilities list "
                    f"{sorted(platforms) or 'no platform'} (checked again on every run)")
    account = {"credentialRef": f"CRED-{platform}", "customerId": "CUST-schema"}
    publish = PUBLISH[platform]

    if publish in operations:
        method = f"{platform}/{publish}"
        params_schema = schema_for(method, "params")
        content = publish_content(platform, fake)
        for bad, field in [({**account, "agentId": "A", **content, "captoin": "typo"}, "captoin"),
                           ({"customerId": "CUST-schema", "agentId": "A", **content}, "credentialRef"),
                           ({**account, **content}, "agentId")]:
            assert_refused(schemas, params_schema, bad)
            error = assert_error(schemas, peer.call(method, bad), -32602, kind="invalid_params")
            assert error["data"].get("field") == field, error

        params = {**account, "agentId": "AGENT-schema", "correlationId": f"corr-{platform}",
                  "idempotencyKey": f"schema-{platform}-{uuid.uuid4().hex}", **content}
        assert_valid(schemas, params_schema, params)
        posted = result_of(peer.call(method, params, timeout=90))
        assert_valid(schemas, schema_for(method, "result"), posted)
        assert posted["replayed"] is False
        replayed = result_of(peer.call(method, params))
        assert_valid(schemas, schema_for(method, "result"), replayed)
        assert replayed["replayed"] is True and replayed["postId"] == posted["postId"]
        event = peer.notification("metrics/event", lambda e: e.get("correlationId") == f"corr-{platform}")
        assert_valid(schemas, "metrics.event.params", event)

    for operation in ("validate", "refresh"):
        if operation not in operations:
            continue
        method = f"{platform}/{operation}"
        assert_valid(schemas, schema_for(method, "params"), account)
        answer = peer.call(method, account, timeout=60)
        if operation == "validate" or "result" in answer:
            assert_valid(schemas, schema_for(method, "result"), result_of(answer))
        else:  # Meta page and system-user tokens cannot be refreshed: PROTOCOL.md §4
            assert_error(schemas, answer)

    assert_everything_received_matches(schemas, peer)
    snapshot = result_of(peer.call("metrics/snapshot"))
    assert_valid(schemas, "metrics.snapshot.result", snapshot)
    status = result_of(peer.call("breaker/status"))
    assert_valid(schemas, "breaker.status.result", status)
    assert platform in status["platforms"], status
    assert_valid(schemas, "breaker.reset.params", {"platform": platform})
    assert_valid(schemas, "breaker.reset.result", result_of(peer.call("breaker/reset", {"platform": platform})))
