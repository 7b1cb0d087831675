"""Issue 9: idempotency (including across SIGKILL), graceful shutdown, secret hygiene, over the real binary."""
from __future__ import annotations

import os
import signal
import tempfile
import time

from conftest import Driver

POST = {"credentialRef": "CRED-fb-001", "customerId": "CUST-1", "agentId": "AGENT-1"}


def test_same_key_same_params_replays_without_a_platform_call(fake, sidecar_factory):
    sidecar = sidecar_factory()
    first = sidecar.call("facebook/post", {**POST, "text": "once", "idempotencyKey": "k-1"})["result"]
    again = sidecar.call("facebook/post", {**POST, "text": "once", "idempotencyKey": "k-1", "correlationId": "c2"})
    assert again["result"]["replayed"] is True
    assert again["result"]["postId"] == first["postId"] and first["replayed"] is False
    assert len(fake.published(platform="facebook")) == 1


def test_same_key_different_params_is_a_mismatch(fake, sidecar_factory):
    sidecar = sidecar_factory()
    sidecar.call("facebook/post", {**POST, "text": "one", "idempotencyKey": "k-2"})
    answer = sidecar.call("facebook/post", {**POST, "text": "two", "idempotencyKey": "k-2"})
    assert answer["error"]["code"] == -31011 and answer["error"]["data"]["kind"] == "idempotency_mismatch"
    assert len(fake.published(platform="facebook")) == 1


def test_same_key_while_running_is_a_conflict(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "delay",
                  "seconds": 1.0}])
    first = sidecar.request("facebook/post", {**POST, "text": "slow", "idempotencyKey": "k-3"})
    time.sleep(0.3)
    second = sidecar.call("facebook/post", {**POST, "text": "slow", "idempotencyKey": "k-3"})
    assert second["error"]["code"] == -31010 and second["error"]["data"]["kind"] == "idempotency_conflict"
    assert "result" in sidecar.wait(first)
    assert len(fake.published(platform="facebook")) == 1


def test_a_failure_that_published_nothing_frees_the_key(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "error",
                  "code": 100, "message": "(#100) Invalid parameter", "times": 1}])
    failed = sidecar.call("facebook/post", {**POST, "text": "retry me", "idempotencyKey": "k-4"})
    assert failed["error"]["data"]["kind"] == "permanent"
    assert "result" in sidecar.call("facebook/post", {**POST, "text": "retry me", "idempotencyKey": "k-4"})


def test_answered_publishes_survive_sigkill_and_interrupted_ones_are_looked_for_not_resent(fake):
    state = tempfile.mkdtemp(prefix="sidecar-state-")
    config = {**fake.sidecar_config(), "retry": {"maxAttempts": 2, "baseDelayMs": 10}, "http": {"timeoutMs": 1000}}
    first = Driver(args=["--state-dir", state])
    first.initialize(config)
    done = first.call("facebook/post", {**POST, "text": "durable", "idempotencyKey": "k-kill-1"})["result"]
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "hang",
                  "seconds": 30, "process": True}])
    first.request("facebook/post", {**POST, "text": "interrupted", "idempotencyKey": "k-kill-2"})
    deadline = time.monotonic() + 5
    while not [r for r in fake.requests(platform="facebook", method="POST") if r["path"].endswith("/feed")
               and r.get("outcome") in ("hung", "pending")] and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    fake.script([])

    second = Driver(env={"SOCIAL_SIDECAR_STATE_DIR": state})
    second.initialize(config)
    try:
        replay = second.call("facebook/post", {**POST, "text": "durable", "idempotencyKey": "k-kill-1"})
        assert replay["result"]["replayed"] is True and replay["result"]["postId"] == done["postId"]
        # The interrupted publish landed: the new process finds it in the feed and answers it, without sending.
        found = second.call("facebook/post", {**POST, "text": "interrupted", "idempotencyKey": "k-kill-2"})
        posts = [p for p in fake.published(platform="facebook")]
        assert len(posts) == 2, "nothing may be published twice"
        assert found["result"]["postId"] in {p["id"] for p in posts} - {done["postId"]}, found
        sends = [r for r in fake.requests(platform="facebook", method="POST") if r["path"].endswith("/feed")]
        assert len(sends) == 2, "the interrupted publish was not sent again"
    finally:
        second.close()


def test_shutdown_lets_in_flight_calls_finish_then_exit_zero(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "delay",
                  "seconds": 0.8}])
    in_flight = sidecar.request("facebook/post", {**POST, "text": "finishing"})
    time.sleep(0.2)
    shutdown = sidecar.request("shutdown")
    refused = sidecar.call("facebook/post", {**POST, "text": "too late"})
    assert refused["error"]["code"] == -32600 and refused["error"]["data"]["kind"] == "shutting_down"
    assert "result" in sidecar.wait(in_flight)
    assert sidecar.wait(shutdown)["result"] is None
    sidecar.send({"jsonrpc": "2.0", "method": "exit"})
    assert sidecar.process.wait(timeout=10) == 0


def test_no_secret_reaches_logs_errors_or_notifications(fake, sidecar_factory):
    sidecar = sidecar_factory(args=["--log-level", "debug"])
    sidecar.call("facebook/post", {**POST, "text": "hello"})
    sidecar.call("facebook/post", {**POST, "credentialRef": "CRED-fb-expired", "text": "expired"})
    fake.script([{"match": {"platform": "facebook"}, "action": "error", "code": 2, "status": 500,
                  "is_transient": True, "times": 1}])
    sidecar.call("facebook/validate", {"credentialRef": "CRED-fb-001", "customerId": "CUST-1"})
    sidecar.close()
    sidecar.assert_no_secrets()


def test_sigterm_exits_zero(fake):
    sidecar = Driver()
    sidecar.initialize(fake.sidecar_config())
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=10) == 0


def test_sigterm_and_sigint_let_in_flight_calls_finish_before_exiting(fake):
    for number in (signal.SIGTERM, signal.SIGINT):
        fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "delay",
                      "seconds": 0.8}])
        sidecar = Driver()
        sidecar.initialize(fake.sidecar_config())
        in_flight = sidecar.request("facebook/post", {**POST, "text": f"finishing before {number.name}"})
        time.sleep(0.3)
        sidecar.process.send_signal(number)
        time.sleep(0.2)  # signals arrive asynchronously
        refused = sidecar.call("facebook/post", {**POST, "text": "after the signal"})
        assert refused["error"]["data"]["kind"] == "shutting_down"
        assert "result" in sidecar.wait(in_flight), f"the in-flight call must finish on {number.name}"
        assert sidecar.process.wait(timeout=10) == 0
    assert len(fake.published(platform="facebook")) == 2


def test_media_urls_pointing_at_private_networks_are_refused(fake, sidecar_factory):
    config = fake.sidecar_config()
    config["media"] = {"allowPrivateNetworks": False}
    sidecar = sidecar_factory({"media": {"allowPrivateNetworks": False}})
    for url in (fake.media_url("video-1000.mp4"), "https://169.254.169.254/latest/meta-data/",
                "https://10.0.0.7/video.mp4"):
        answer = sidecar.call("youtube/post", {"credentialRef": "CRED-yt-001", "customerId": "CUST-1",
                                               "agentId": "AGENT-1", "title": "ssrf", "videoUrl": url})
        assert answer["error"]["code"] == -32602, answer
        assert answer["error"]["data"]["field"] == "videoUrl"
    assert not [r for r in fake.requests() if r["path"].startswith("/media/")]
