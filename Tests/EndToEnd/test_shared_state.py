"""Several sidecars sharing one store (issue 15): a key is claimed once across all of them, every one replays the
stored answer, and a sidecar that dies holding a claim never makes another send again."""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time

import pytest

from conftest import CREDENTIALS, Driver, RedisServer

POST = {"credentialRef": "CRED-fb-001", "customerId": "CUST-1", "agentId": "AGENT-1"}


@pytest.fixture(params=["local", "redis"])
def replicas(request, fake):
    """Starts sidecars that share one store, a state directory or a Redis: `replicas(n)` -> initialized drivers."""
    redis = RedisServer() if request.param == "redis" else None
    shared = {"sharedState": {"url": redis.url, "keyPrefix": "e2e:"}} if redis else \
        {"stateDir": tempfile.mkdtemp(prefix="sidecar-shared-")}
    started: list[Driver] = []

    def start(count: int, **overrides) -> list[Driver]:
        config = {**fake.sidecar_config(), **shared,
                  "retry": {"maxAttempts": 2, "baseDelayMs": 10, "maxDelayMs": 20}, **overrides}
        drivers = []
        for _ in range(count):
            driver = Driver()
            driver.initialize(config)
            drivers.append(driver)
        started.extend(drivers)
        return drivers

    start.redis = redis
    yield start
    for driver in started:
        if driver.process.poll() is None:
            driver.close()
    if redis:
        redis.stop()


def facebook_feed_posts(fake) -> list:
    return [p for p in fake.published(platform="facebook")]


def test_one_key_sent_to_two_sidecars_at_once_publishes_once(fake, replicas):
    first, second = replicas(2)
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "delay",
                  "seconds": 0.5}])
    params = {**POST, "text": "delivered twice", "idempotencyKey": "job-1"}
    a, b = first.request("facebook/post", params), second.request("facebook/post", params)
    answers = [first.wait(a), second.wait(b)]
    kinds = sorted("result" if "result" in x else x["error"]["data"]["kind"] for x in answers)
    assert kinds == ["idempotency_conflict", "result"], answers
    fake.script([])
    published = next(x["result"] for x in answers if "result" in x)
    for sidecar in (first, second):
        replay = sidecar.call("facebook/post", params)["result"]
        assert replay["replayed"] is True and replay["postId"] == published["postId"]
    assert len(facebook_feed_posts(fake)) == 1


def test_four_sidecars_jobs_delivered_twice_and_retried_publish_each_once(fake, replicas):
    """The quick form of `scripts/soak-publishing --replicas 4`: each job goes to two sidecars at once, then is
    retried on a third after a conflict; a fresh sidecar afterwards replays every job instead of re-sending."""
    drivers = replicas(4)
    jobs = 24
    results: dict[int, dict] = {}
    lock = threading.Lock()

    def deliver(job: int, sidecar: Driver) -> None:
        params = {**POST, "text": f"job {job}", "idempotencyKey": f"job-{job}"}
        for attempt in range(50):
            answer = sidecar.call("facebook/post", params)
            if "result" in answer:
                with lock:
                    results.setdefault(job, answer["result"])
                return
            assert answer["error"]["data"]["kind"] == "idempotency_conflict", answer
            sidecar = drivers[(drivers.index(sidecar) + 1) % len(drivers)]
            time.sleep(0.02)
        raise AssertionError(f"job {job} never finished")

    threads = [threading.Thread(target=deliver, args=(job, drivers[(job + offset) % 4]))
               for job in range(jobs) for offset in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == jobs
    assert len(facebook_feed_posts(fake)) == jobs
    late = replicas(1)[0]
    for job in range(jobs):
        replay = late.call("facebook/post", {**POST, "text": f"job {job}", "idempotencyKey": f"job-{job}"})
        assert replay["result"]["replayed"] is True and replay["result"]["postId"] == results[job]["postId"]
    assert len(facebook_feed_posts(fake)) == jobs


def test_a_sidecar_killed_while_sending_makes_the_others_answer_unknown_not_resend(fake, replicas):
    dying, survivor = replicas(2)
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "hang",
                  "seconds": 30}])
    params = {**POST, "text": "in flight", "idempotencyKey": "job-kill"}
    dying.request("facebook/post", params)
    deadline = time.monotonic() + 5
    while not fake.requests(platform="facebook", method="POST") and time.monotonic() < deadline:
        time.sleep(0.01)
    conflict = survivor.call("facebook/post", params)
    assert conflict["error"]["data"]["kind"] == "idempotency_conflict"
    os.kill(dying.process.pid, signal.SIGKILL)
    dying.process.wait()
    fake.script([])
    # Local: the dead sidecar's lock is gone at once. Redis: its owner key expires within 5 s.
    deadline = time.monotonic() + 8
    unknown = survivor.call("facebook/post", params)
    while unknown["error"]["data"]["kind"] == "idempotency_conflict" and time.monotonic() < deadline:
        time.sleep(0.2)
        unknown = survivor.call("facebook/post", params)
    assert unknown["error"]["data"]["kind"] == "outcome_unknown", unknown
    assert len(fake.requests(platform="facebook", method="POST")) == 1, "nothing may be sent twice"


def test_redis_down_refuses_keyed_publishes_before_sending_and_service_resumes(fake, redis_server):
    sidecar = Driver()
    sidecar.initialize({**fake.sidecar_config(), "sharedState": {"url": redis_server.url},
                        "retry": {"maxAttempts": 2, "baseDelayMs": 10, "maxDelayMs": 20}})
    try:
        assert "result" in sidecar.call("facebook/post", {**POST, "text": "before", "idempotencyKey": "r-1"})
        assert sidecar.call("health")["result"]["sharedState"] == {
            "store": "redis", "reachable": True, "endpoint": f"127.0.0.1:{redis_server.port}/0"}
        redis_server.stop()
        refused = [sidecar.call("facebook/post", {**POST, "text": f"keyed {n}", "idempotencyKey": f"r-down-{n}"})
                   for n in range(5)]
        for answer in refused:
            assert answer["error"]["data"]["kind"] == "transient_exhausted", answer
            assert answer["error"]["data"]["retryable"] is True
            assert "nothing was published" in answer["error"]["message"]
        assert sidecar.call("health")["result"]["sharedState"]["reachable"] is False
        unkeyed = sidecar.call("facebook/post", {**POST, "text": "no key"})
        assert "result" in unkeyed, "calls without a key go on without the store"
        texts = [p.get("text") for p in fake.published(platform="facebook")]
        assert not [t for t in texts if t and t.startswith("keyed")], "nothing keyed may be sent without the store"

        redis_server.start()
        deadline = time.monotonic() + 10
        answer = None
        while time.monotonic() < deadline:
            answer = sidecar.call("facebook/post", {**POST, "text": "keyed 0", "idempotencyKey": "r-down-0"})
            if "result" in answer:
                break
            time.sleep(0.1)
        assert answer and "result" in answer, answer
        again = sidecar.call("facebook/post", {**POST, "text": "keyed 0", "idempotencyKey": "r-down-0"})
        assert again["result"]["replayed"] is True
        assert [p.get("text") for p in fake.published(platform="facebook")].count("keyed 0") == 1
        logs = sidecar.stderr.decode(errors="replace")
        assert logs.count("shared state store unreachable") == 1, "reconnects are logged once, not per call"
    finally:
        sidecar.close()


def test_a_bad_shared_state_url_is_refused_at_initialize_without_echoing_the_password():
    sidecar = Driver()
    try:
        answer = sidecar.call("initialize", {"config": {"sharedState": {"url": "redis://u:hunter2@host:notaport"}}})
        assert answer["error"]["code"] == -32602
        assert answer["error"]["data"]["field"] == "config.sharedState.url"
        assert "hunter2" not in str(answer)
    finally:
        sidecar.close()


def test_refresh_storm_across_four_sidecars_makes_one_token_request(fake, replicas):
    """One stale Google credential, eight concurrent calls over four sidecars whose parents share one credential
    store: exactly one token request reaches Google; the others wait for its lease and take the parent's new token."""
    drivers = replicas(4)
    shared = {**CREDENTIALS, "CRED-yt-001": dict(CREDENTIALS["CRED-yt-001"], expiresAt=int(time.time()) + 60)}
    for driver in drivers:
        driver.credentials = shared  # one backend database behind every sidecar's parent
    fake.tokens({"token": "fake-yt-access-token-1", "expired": True})
    answers: list = []
    lock = threading.Lock()

    def validate(driver: Driver) -> None:
        answer = driver.call("youtube/validate", {"credentialRef": "CRED-yt-001", "customerId": "CUST-1"}, timeout=60)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=validate, args=(drivers[i % 4],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all("result" in a for a in answers), answers
    assert len(fake.requests(platform="youtube", method="POST", path="^/token$")) == 1
    assert shared["CRED-yt-001"]["accessToken"] != "fake-yt-access-token-1"


def test_a_breaker_that_opens_on_one_sidecar_is_open_on_the_others_within_a_second(fake, replicas):
    failing, other = replicas(2, breaker={"failureThreshold": 2, "openMs": 20000},
                              retry={"maxAttempts": 1, "baseDelayMs": 10, "maxDelayMs": 20})
    fake.script([{"match": {"platform": "facebook"}, "action": "error", "status": 503}])
    for n in range(2):
        answer = failing.call("facebook/validate", {"credentialRef": "CRED-fb-001", "customerId": "CUST-1"})
        assert answer["error"]["data"]["httpStatus"] == 503, answer
    assert failing.call("breaker/status")["result"]["platforms"]["facebook"]["state"] == "OPEN"
    opened = time.monotonic()
    while other.call("breaker/status")["result"]["platforms"]["facebook"]["state"] != "OPEN":
        assert time.monotonic() - opened < 1.5, "the other sidecar never saw the breaker open"
        time.sleep(0.05)
    sent = len(fake.requests(platform="facebook"))
    refused = other.call("facebook/post", {**POST, "text": "not even tried"})
    assert refused["error"]["data"]["kind"] == "circuit_open", refused
    assert len(fake.requests(platform="facebook")) == sent, "no request while the breaker is open"
    # A reset on one sidecar is not undone by the shared record.
    other.call("breaker/reset", {"platform": "facebook"})
    time.sleep(1.2)
    assert other.call("breaker/status")["result"]["platforms"]["facebook"]["state"] == "CLOSED"


def test_a_rate_limit_seen_by_one_sidecar_holds_back_the_others_without_a_request(fake, replicas):
    limited, other = replicas(2, retry={"maxAttempts": 1, "baseDelayMs": 10, "maxDelayMs": 20})
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "error",
                  "code": 32, "status": 400, "message": "(#32) Page request limit reached",
                  "headers": {"Retry-After": "60"}, "times": 1}])
    first = limited.call("facebook/post", {**POST, "text": "throttled", "deadlineMs": 2000})
    assert first["error"]["data"]["kind"] == "rate_limited", first
    sent = len(fake.requests(platform="facebook", method="POST"))
    deadline = time.monotonic() + 1.5
    while True:
        answer = other.call("facebook/post", {**POST, "text": "held back", "deadlineMs": 2000})
        if "error" in answer and answer["error"]["data"]["kind"] == "rate_limited":
            break
        assert time.monotonic() < deadline, f"the other sidecar never saw the rate limit: {answer}"
        sent = len(fake.requests(platform="facebook", method="POST"))
        time.sleep(0.1)
    assert answer["error"]["data"].get("retryAfterMs", 0) > 50_000
    assert len(fake.requests(platform="facebook", method="POST")) == sent, "held back without spending a request"


def test_a_sidecar_killed_mid_youtube_upload_is_never_uploaded_again_by_another(fake, replicas):
    """A YouTube upload's chunks are idempotent steps, but the last one creates the video: "sending" must be recorded
    before the first chunk, or a replica taking over the claim would upload a second video."""
    dying, survivor = replicas(2)
    fake.script([{"match": {"platform": "youtube", "method": "PUT", "path": "^/upload/youtube/v3/videos"},
                  "action": "hang", "seconds": 30}])
    params = {"credentialRef": "CRED-yt-001", "customerId": "CUST-1", "agentId": "AGENT-1", "title": "Killed",
              "videoUrl": fake.media_url("video-600000.mp4"), "idempotencyKey": "yt-kill"}
    dying.request("youtube/post", params)
    deadline = time.monotonic() + 10
    while not fake.requests(platform="youtube", method="PUT") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.requests(platform="youtube", method="PUT"), "the upload never started"
    os.kill(dying.process.pid, signal.SIGKILL)
    dying.process.wait()
    fake.script([])
    deadline = time.monotonic() + 8
    answer = survivor.call("youtube/post", params, timeout=60)
    while "error" in answer and answer["error"]["data"]["kind"] == "idempotency_conflict" and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = survivor.call("youtube/post", params, timeout=60)
    assert answer.get("error", {}).get("data", {}).get("kind") == "outcome_unknown", answer
    sessions = [r for r in fake.requests(platform="youtube", method="POST") if r["path"].startswith("/upload/")]
    assert len(sessions) == 1, "no second upload session"


def test_a_youtube_upload_cancelled_mid_upload_keeps_its_key(fake, replicas):
    """`$/cancelRequest` while a chunk is in flight: the chunks are idempotent steps, but the upload may complete the
    video, so the key must not be freed for a retry to upload a second one."""
    first, second = replicas(2)
    fake.script([{"match": {"platform": "youtube", "method": "PUT", "path": "^/upload/youtube/v3/videos"},
                  "action": "hang", "seconds": 30}])
    params = {"credentialRef": "CRED-yt-001", "customerId": "CUST-1", "agentId": "AGENT-1", "title": "Cancelled",
              "videoUrl": fake.media_url("video-600000.mp4"), "idempotencyKey": "yt-cancel"}
    request_id = first.request("youtube/post", params)
    deadline = time.monotonic() + 10
    while not fake.requests(platform="youtube", method="PUT") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.requests(platform="youtube", method="PUT"), "the upload never started"
    first.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": request_id}})
    assert first.wait(request_id, timeout=5)["error"]["code"] == -32800
    fake.script([])
    for driver in (first, second):
        answer = driver.call("youtube/post", params, timeout=60)
        assert answer.get("error", {}).get("data", {}).get("kind") == "outcome_unknown", answer
    sessions = [r for r in fake.requests(platform="youtube", method="POST") if r["path"].startswith("/upload/")]
    assert len(sessions) == 1, "no second upload session"


def test_replicas_spend_one_youtube_quota_together(fake, replicas):
    """The daily quota belongs to the project: 3 sidecars, 5 uploads at once, a budget for 3 (1,600 units each)."""
    sidecars = replicas(3, platforms={**fake.sidecar_config()["platforms"],
                                      "youtube": {**fake.sidecar_config()["platforms"]["youtube"],
                                                  "dailyQuotaUnits": 3 * 1600 + 100}})
    params = {"credentialRef": "CRED-yt-001", "customerId": "CUST-1", "agentId": "AGENT-1",
              "videoUrl": fake.media_url("video-600000.mp4")}
    calls = [(sidecars[i % 3], sidecars[i % 3].request("youtube/post", {**params, "title": f"Quota {i}"}))
             for i in range(5)]
    answers = [driver.wait(request_id, timeout=60) for driver, request_id in calls]
    refused = [a["error"] for a in answers if "error" in a]
    assert len(answers) - len(refused) == 3, answers
    assert len(refused) == 2 and all(e["data"]["kind"] == "quota_exhausted" for e in refused), refused
    assert all(0 < e["data"]["retryAfterMs"] <= 25 * 3600 * 1000 and e["data"]["resetAt"] for e in refused), refused
    sessions = [r for r in fake.requests(platform="youtube", method="POST") if r["path"].startswith("/upload/")]
    assert len(sessions) == 3, "a refused upload sent nothing"


def test_replicas_pace_one_whatsapp_recipient_together(fake, replicas):
    """One message per 6 s to a recipient, whichever sidecar sends it: the second replica's message to the same
    recipient cannot wait that long (retry.maxWaitMs 5 s) and is refused without a request; another recipient goes."""
    first, second = replicas(2)
    fake.customer_message("15550003333")
    wa = {"credentialRef": "CRED-wa-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
    assert "result" in first.call("whatsapp/send", {**wa, "to": "15550001111", "text": "one"})
    refused = second.call("whatsapp/send", {**wa, "to": "15550001111", "text": "two"})
    assert refused["error"]["data"]["kind"] == "rate_limited", refused
    assert 0 < refused["error"]["data"]["retryAfterMs"] <= 6000
    assert "result" in second.call("whatsapp/send", {**wa, "to": "15550003333", "text": "other recipient"})
    assert len(fake.published(platform="whatsapp")) == 2
