"""Issue 14: what a deployment without libcurl sees, over the real binary. SOCIAL_SIDECAR_LIBCURL points the loader at
a library that does not exist, as in a slim container without libcurl4 (Tests/CleanRoom/run also checks it with the
real libcurl hidden)."""
from __future__ import annotations

import time

from conftest import Driver

POST = {"credentialRef": "CRED-fb-001", "customerId": "CUST-1", "agentId": "AGENT-1", "text": "hello"}
NO_LIBCURL = {"SOCIAL_SIDECAR_LIBCURL": "libcurl-not-installed.so.4"}


def test_without_libcurl_every_post_is_refused_at_once_with_what_to_install(fake, sidecar_factory):
    # Production backoff and breaker: a misread "network error" would be retried for seconds and open the breaker.
    sidecar = sidecar_factory({"retry": {"maxAttempts": 5, "baseDelayMs": 1000, "maxDelayMs": 16000},
                               "breaker": {"failureThreshold": 2}}, env=NO_LIBCURL)
    assert sidecar.call("health")["result"]["http"]["state"] == "pending"
    for _ in range(3):  # past the breaker's threshold
        started = time.monotonic()
        error = sidecar.call("facebook/post", POST)["error"]
        assert time.monotonic() - started < 1
        assert error["code"] == -31001 and error["data"]["kind"] == "permanent"
        assert error["data"]["retryable"] is False and error["data"]["attempts"] == 1
        assert "libcurl-not-installed.so.4" in error["message"] and "libcurl4" in error["message"]
        assert "Fedora" in error["message"] and "Alpine" in error["message"]
    assert sidecar.call("breaker/status")["result"]["platforms"]["facebook"]["state"] == "CLOSED"
    health = sidecar.call("health")["result"]
    assert health["status"] == "degraded"
    assert health["http"]["transport"] == "libcurl" and health["http"]["state"] == "unavailable"
    assert "libcurl4" in health["http"]["detail"]
    assert fake.requests() == []


def test_with_libcurl_health_and_capabilities_name_the_transport(fake):
    sidecar = Driver()
    try:
        capabilities = sidecar.initialize(fake.sidecar_config())["capabilities"]
        assert capabilities["http"] == {"transport": "libcurl", "state": "pending"}
        assert "result" in sidecar.call("facebook/post", POST)
        health = sidecar.call("health")["result"]
        assert health["status"] == "ok" and health["http"]["state"] == "ready"
        assert health["http"]["detail"].startswith("libcurl (libcurl/") and health["http"]["detail"].count(" ") == 2
    finally:
        sidecar.close()
