"""Issue 3's end-to-end acceptance: the resilience core over the real binary against the fake Graph API."""
from __future__ import annotations

import time

FEED = r"/feed$"
POST = {"credentialRef": "CRED-fb-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
# Retries are shown on Instagram's container creation: a temporary Graph error on a visible publish (a feed post) is
# reconciled instead of retried, while preparing a container is safe to repeat.
CONTAINER = r"/media$"
IG_POST = {"credentialRef": "CRED-ig-001", "customerId": "CUST-1", "agentId": "AGENT-1",
           "imageUrl": "https://cdn.example.test/photo.jpg"}


def feed_posts(fake) -> list:
    return [r for r in fake.requests(platform="facebook", method="POST") if r["path"].endswith("/feed")]


def container_posts(fake) -> list:
    return [r for r in fake.requests(platform="instagram", method="POST") if r["path"].endswith("/media")]


def test_transient_twice_then_success_answers_three_attempts(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": CONTAINER}, "action": "error",
                  "code": 2, "status": 500, "is_transient": True, "times": 2}])
    answer = sidecar.call("instagram/post", {**IG_POST, "caption": "third time lucky"})
    assert answer["result"]["attempts"] == 3, answer
    assert len(container_posts(fake)) == 3
    assert len(fake.published(platform="instagram")) == 1
    event = sidecar.wait_events(1)[-1]
    assert event["success"] is True and event["attempts"] == 3


def test_five_transient_failures_open_the_breaker_and_the_sixth_call_makes_no_request(fake, sidecar_factory):
    sidecar = sidecar_factory({"breaker": {"failureThreshold": 5, "openMs": 60000}})
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": CONTAINER}, "action": "error",
                  "code": 2, "status": 500, "is_transient": True}])
    first = sidecar.call("instagram/post", {**IG_POST, "caption": "doomed"})
    assert first["error"]["data"]["kind"] == "transient_exhausted", first
    assert first["error"]["data"]["attempts"] == 5
    assert len(container_posts(fake)) == 5
    changes = sidecar.wait_events(1, method="breaker/stateChanged")
    assert changes[-1]["platform"] == "instagram" and changes[-1]["to"] == "OPEN"

    before = len(fake.requests(platform="instagram"))
    refused = sidecar.call("instagram/post", {**IG_POST, "caption": "refused at once"})
    assert refused["error"]["code"] == -31005 and refused["error"]["data"]["kind"] == "circuit_open"
    assert 0 < refused["error"]["data"]["retryAfterMs"] <= 60000
    assert len(fake.requests(platform="instagram")) == before, "an open breaker must not call the platform"
    status = sidecar.call("breaker/status")["result"]["platforms"]["instagram"]
    assert status["state"] == "OPEN"


def test_a_publish_whose_response_never_arrives_is_sent_again_only_after_the_feed_shows_it_absent(fake, sidecar_factory):
    sidecar = sidecar_factory({"http": {"timeoutMs": 700}})
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": FEED}, "action": "hang",
                  "seconds": 5}])
    answer = sidecar.call("facebook/post", {**POST, "text": "lost in transit"})
    assert answer["error"]["code"] == -31008, answer
    assert answer["error"]["data"]["kind"] == "outcome_unknown"
    assert "after it was sent 3 times" in answer["error"]["message"]
    publishes = feed_posts(fake)
    reads = [r for r in fake.requests(platform="facebook", method="GET") if r["path"].endswith("/feed")]
    assert len(publishes) == 3 and len(reads) == 3
    assert publishes[0]["time"] < reads[0]["time"] < publishes[1]["time"] < reads[1]["time"] < publishes[2]["time"], \
        "read before each send"


def test_429_with_retry_after_waits_at_least_that_long(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": FEED}, "action": "respond",
                  "status": 429, "headers": {"Retry-After": "1"},
                  "body": {"error": {"message": "(#4) Application request limit reached", "type": "OAuthException",
                                     "code": 4, "fbtrace_id": "x"}}, "times": 1}])
    started = time.monotonic()
    answer = sidecar.call("facebook/post", {**POST, "text": "patience"})
    assert "result" in answer, answer
    posts = feed_posts(fake)
    assert len(posts) == 2
    assert posts[1]["time"] - posts[0]["time"] >= 0.95
    assert time.monotonic() - started >= 0.95


def test_cancel_request_stops_a_hung_call_promptly(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": FEED}, "action": "hang",
                  "seconds": 20}])
    request_id = sidecar.request("facebook/post", {**POST, "text": "never mind"})
    deadline = time.monotonic() + 5
    while not feed_posts(fake) and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sidecar.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})
    answer = sidecar.wait(request_id, timeout=5)
    assert answer["error"]["code"] == -32800, answer
    assert time.monotonic() - started < 1.0


def test_deadline_bounds_the_whole_call(fake, sidecar_factory):
    sidecar = sidecar_factory({"retry": {"maxAttempts": 5, "baseDelayMs": 1000, "maxDelayMs": 16000}})
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": CONTAINER}, "action": "error",
                  "code": 2, "status": 500, "is_transient": True}])
    started = time.monotonic()
    answer = sidecar.call("instagram/post", {**IG_POST, "caption": "in a hurry", "deadlineMs": 1500})
    elapsed = time.monotonic() - started
    assert answer["error"]["data"]["kind"] in ("deadline_exceeded", "transient_exhausted"), answer
    assert elapsed < 2.5, f"the call took {elapsed:.2f} s despite a 1.5 s deadline"
