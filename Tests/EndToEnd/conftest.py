"""End-to-end fixtures: the real release (or debug) binary over real pipes, against the fake platforms.

`Driver` is a deliberately small, independent raw-bytes JSON-RPC peer (not the Python client), so these tests also
check the wire itself. It answers `credentials/resolve` from a dict and acknowledges `credentials/update`.
"""
from __future__ import annotations

import copy
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "Fakes"))

from fake_platforms import FakePlatforms  # noqa: E402
from redis_server import RedisServer  # noqa: E402,F401  (re-exported for the tests)

CREDENTIALS = {
    "CRED-fb-001": {"accessToken": "fake-fb-page-token-1", "accountId": "20000001"},
    "CRED-fb-expired": {"accessToken": "fake-fb-user-token-expired", "accountId": "20000001"},
    "CRED-ig-001": {"accessToken": "fake-fb-page-token-1", "accountId": "17841400000000001"},
    "CRED-wa-001": {"accessToken": "fake-wa-system-token-1", "accountId": "30000001"},
    "CRED-yt-001": {"accessToken": "fake-yt-access-token-1", "refreshToken": "fake-yt-refresh-token-1",
                    "clientId": "fake-google-client-id.apps.example.test",
                    "clientSecret": "fake-google-client-secret", "accountId": "UCfakechannel00000000001"},
    "CRED-li-001": {"accessToken": "fake-li-access-token-1", "refreshToken": "fake-li-refresh-token-1",
                    "clientId": "fake-linkedin-client-id", "clientSecret": "fake-linkedin-client-secret",
                    "accountId": "urn:li:organization:40000001"},
}

SECRETS = sorted({v for c in CREDENTIALS.values() for k, v in c.items()
                  if k in ("accessToken", "refreshToken", "clientSecret")})


def binary() -> str:
    explicit = os.environ.get("SOCIAL_SIDECAR_BIN")
    if explicit:
        return explicit
    for candidate in (ROOT / ".build/release/social-sidecar", ROOT / ".build/debug/social-sidecar"):
        if candidate.exists():
            return str(candidate)
    pytest.fail("no social-sidecar binary: run `scripts/build-release` (scripts/test does)")


class Driver:
    def __init__(self, args: list[str] | None = None, env: dict | None = None,
                 credentials: dict | None = None, ack_updates: bool = True):
        self.process = subprocess.Popen([binary(), *(args or [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        self.credentials = copy.deepcopy(CREDENTIALS if credentials is None else credentials)
        self.ack_updates = ack_updates
        self.responses: dict = {}
        self.cond = threading.Condition()
        self.notifications: list = []
        self.server_requests: list = []
        self.raw = bytearray()
        self.stderr = bytearray()
        self.next_id = 1
        self.write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- wire ---------------------------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        with self.write_lock:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = stream.read(1)
                if not byte:
                    with self.cond:
                        self.cond.notify_all()
                    return
                header += byte
            length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = stream.read(length)
            self.raw += header + body
            self._dispatch(json.loads(body))

    def _read_stderr(self) -> None:
        while True:
            chunk = self.process.stderr.read1(65536)
            if not chunk:
                return
            self.stderr += chunk

    def _dispatch(self, message) -> None:
        if isinstance(message, dict) and "method" in message and "id" in message:
            self.server_requests.append(message)
            threading.Thread(target=self._answer, args=(message,), daemon=True).start()
        elif isinstance(message, dict) and "method" in message:
            with self.cond:
                self.notifications.append(message)
                self.cond.notify_all()
        else:
            with self.cond:
                key = message["id"] if isinstance(message, dict) else "batch"
                self.responses[key] = message
                self.cond.notify_all()

    def _answer(self, message: dict) -> None:
        params = message.get("params", {})
        if message["method"] == "credentials/resolve":
            credential = self.credentials.get(params["credentialRef"])
            if credential is None:
                self.send({"jsonrpc": "2.0", "id": message["id"],
                           "error": {"code": -32000, "message": f"no credential {params['credentialRef']}"}})
            else:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": credential})
        elif message["method"] == "credentials/update":
            if self.ack_updates:
                self.credentials[params["credentialRef"]].update(
                    {k: params[k] for k in ("accessToken", "refreshToken", "expiresAt") if params.get(k)})
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": {}})

    # -- calls --------------------------------------------------------------------------------------------------
    def request(self, method: str, params: dict | None = None) -> int:
        request_id = self.next_id
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def wait(self, request_id, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while request_id not in self.responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None and request_id not in self.responses:
                    raise AssertionError(f"no answer to {request_id} within {timeout} s; stderr: "
                                         f"{self.stderr[-1500:].decode(errors='replace')}")
                self.cond.wait(min(remaining, 0.1))
            return self.responses.pop(request_id)

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        return self.wait(self.request(method, params), timeout)

    def initialize(self, config: dict) -> dict:
        answer = self.call("initialize", {"clientInfo": {"name": "e2e"}, "config": config})
        assert "result" in answer, answer
        return answer["result"]

    def events(self, method: str = "metrics/event") -> list:
        with self.cond:
            return [n["params"] for n in self.notifications if n["method"] == method]

    def wait_events(self, count: int, method: str = "metrics/event", timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.events(method)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events(method)

    def close(self) -> int:
        if self.process.poll() is None:
            try:
                self.send({"jsonrpc": "2.0", "id": 999999, "method": "shutdown"})
                self.wait(999999, timeout=15)
                self.send({"jsonrpc": "2.0", "method": "exit"})
            except (AssertionError, BrokenPipeError, OSError):
                pass
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def assert_no_secrets(self) -> None:
        """No token, refresh token or client secret in stdout frames (other than credential answers we sent), or
        stderr."""
        frames = self.raw.decode(errors="replace")
        logs = self.stderr.decode(errors="replace")
        for secret in SECRETS:
            assert secret not in logs, f"a secret appears in stderr: {secret[:8]}…"
            # credentials/update legitimately carries the new token to the parent; nothing else may.
            for message in [json.dumps(n) for n in self.notifications] + [json.dumps(r) for r in self.responses.values()]:
                assert secret not in message, f"a secret appears in a frame: {secret[:8]}…"
        del frames


@pytest.fixture
def fake():
    with FakePlatforms() as server:
        yield server


@pytest.fixture
def sidecar_factory(fake):
    started: list[Driver] = []

    def start(config_overrides: dict | None = None, **kwargs) -> Driver:
        driver = Driver(**kwargs)
        config = fake.sidecar_config()
        config.update({"retry": {"maxAttempts": 5, "baseDelayMs": 20, "maxDelayMs": 100}})
        for key, value in (config_overrides or {}).items():
            config[key] = value
        driver.initialize(config)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        if driver.process.poll() is None:
            driver.close()



@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.stop()
