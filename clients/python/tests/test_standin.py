"""The Sidecar class against the scripted stand-in peer: lifecycle, callbacks, events, cancellation, crashes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any, Callable

import pytest

import social_sidecar as ss
from conftest import Recording, process_gone, run
from social_sidecar import CredentialRequest, Credentials, CredentialUpdate, Sidecar

FB = dict(credential_ref="CRED-fb-001", customer_id="CUST-123", agent_id="AGENT-456")


def resolver(log: list[CredentialRequest] | None = None) -> ss.CredentialResolver:
    async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> Credentials:
        if log is not None:
            log.append(CredentialRequest(platform, credential_ref, customer_id))
        await asyncio.sleep(0)
        return Credentials(access_token="tok-" + credential_ref, account_id="PAGE-1", expires_at=None)

    return resolve


def test_lifecycle_initialize_health_and_clean_shutdown(standin: Callable[..., Sidecar], recording: Recording) -> None:
    async def body() -> int:
        async with standin(config={"retry": {"maxAttempts": 2}}) as sidecar:
            pid = sidecar.pid
            assert pid is not None
            info = sidecar.initialize_result
            assert info is not None and info.server_info.name == "standin" and info.protocol_version == "1"
            assert sidecar.supports("whatsapp", "send") and not sidecar.supports("whatsapp", "post")
            health = await sidecar.health()
            assert health.status == "ok" and health.version == "0.0.1"
        return pid

    pid = run(body())
    assert process_gone(pid)
    assert recording.methods() == ["initialize", "initialized", "health", "shutdown", "exit"]
    init = recording.inbound[0]
    assert init["id"] == 1 and init["params"]["config"] == {"retry": {"maxAttempts": 2}}
    assert init["params"]["clientInfo"]["name"] == "social-sidecar-python"


def test_bad_config_raises_invalid_params_and_leaves_no_process(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        sidecar = standin(config={"retyr": {}})
        with pytest.raises(ss.InvalidParams) as caught:
            await sidecar.start()
        assert caught.value.field == "config.retyr"
        assert sidecar.pid is None
        await sidecar.close()

    run(body())


def test_post_sends_camel_case_params_and_returns_a_typed_result(
    standin: Callable[..., Sidecar], recording: Recording
) -> None:
    async def body() -> None:
        resolved: list[CredentialRequest] = []
        async with standin(resolve_credentials=resolver(resolved)) as sidecar:
            result = await sidecar.facebook.post(
                **FB,
                text="Hello",
                image_urls=["https://a/1.jpg", "https://a/2.jpg"],
                correlation_id="corr-1",
                idempotency_key="post-789",
                timeout=12.5,
            )
            assert isinstance(result, ss.PostResult)
            assert (result.platform, result.post_id, result.status, result.attempts, result.replayed) == (
                "facebook",
                "facebook-post-1",
                "published",
                1,
                False,
            )
            assert result.post_url == "https://example.test/facebook-post-1" and result.duration_ms == 3
            sent = await sidecar.whatsapp.send(**FB, to="+15551234567", template={"name": "hello", "language": "en_US"})
            assert sent.post_url is None and sent.status == "accepted"
            await sidecar.instagram.post(
                **FB, caption="c", items=[{"image_url": "https://a/1.jpg"}, {"video_url": "v"}]
            )
        assert resolved[0] == CredentialRequest(
            platform="facebook", credential_ref="CRED-fb-001", customer_id="CUST-123"
        )

    run(body())
    posts = {
        m["method"]: m["params"]
        for m in recording.inbound
        if m.get("method", "").split("/")[0] in ("facebook", "whatsapp", "instagram")
    }
    assert posts["facebook/post"] == {
        "credentialRef": "CRED-fb-001",
        "customerId": "CUST-123",
        "agentId": "AGENT-456",
        "correlationId": "corr-1",
        "idempotencyKey": "post-789",
        "deadlineMs": 12500,
        "text": "Hello",
        "imageUrls": ["https://a/1.jpg", "https://a/2.jpg"],
    }
    assert posts["whatsapp/send"]["template"] == {"name": "hello", "language": "en_US"}
    assert posts["instagram/post"]["items"] == [{"imageUrl": "https://a/1.jpg"}, {"videoUrl": "v"}]
    answers = [m for m in recording.inbound if "method" not in m]
    assert answers[0]["id"] == "s-1001"  # string ids echoed as strings
    assert answers[0]["result"] == {"accessToken": "tok-CRED-fb-001", "accountId": "PAGE-1"}


def test_sync_resolver_and_mapping_results_work(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        def resolve(platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
            return {"access_token": "t", "account_id": "urn:li:organization:1", "refresh_token": "r"}

        async with standin(resolve_credentials=resolve) as sidecar:
            validation = await sidecar.linkedin.validate(credential_ref="CRED-li", customer_id="CUST-1")
            assert validation.valid and validation.account_id == "urn:li:organization:1"
            assert validation.scopes == ["pages_manage_posts"]

    run(body())


def test_resolver_failure_becomes_credential_unavailable_without_hurting_the_sidecar(
    standin: Callable[..., Sidecar], recording: Recording
) -> None:
    async def body() -> None:
        async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> Credentials:
            if credential_ref == "CRED-gone":
                raise ss.CredentialNotFound(f"no credential {credential_ref} for this customer")
            raise LookupError(f"secret-bearing text {credential_ref}")

        async with standin(resolve_credentials=resolve) as sidecar:
            with pytest.raises(ss.CredentialUnavailable) as caught:
                await sidecar.facebook.post(**FB, text="Hello")
            # Anything else is retryable, and its text stays in this process.
            assert "LookupError" in str(caught.value) and "secret-bearing" not in str(caught.value)
            assert caught.value.retryable
            with pytest.raises(ss.CredentialUnavailable) as gone:
                await sidecar.facebook.post(**{**FB, "credential_ref": "CRED-gone"}, text="Hello")
            # CredentialNotFound is permanent, and its (safe) message is the caller's to read.
            assert "no credential CRED-gone for this customer" in str(gone.value) and not gone.value.retryable
            assert (await sidecar.health()).status == "ok"

    run(body())
    errors = [m["error"] for m in recording.inbound if "error" in m]
    assert errors[0] == {
        "code": -31006,
        "message": "the credential resolver raised LookupError",
        "data": {"kind": "credential_unavailable", "retryable": True},
    }
    assert errors[1]["data"] == {"kind": "credential_unavailable", "retryable": False}


def test_an_incomplete_resolver_answer_says_what_is_missing(standin: Callable[..., Sidecar]) -> None:
    async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
        return {"access_token": "t"}

    async def body() -> None:
        async with standin(resolve_credentials=resolve) as sidecar:
            with pytest.raises(ss.CredentialUnavailable, match="need access_token and account_id"):
                await sidecar.facebook.post(**FB, text="Hello")

    run(body())


def test_a_resolver_that_cannot_take_the_keywords_is_refused_at_construction() -> None:
    def positional_only(request: CredentialRequest, /) -> Credentials:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="platform, credential_ref and customer_id"):
        Sidecar(resolve_credentials=positional_only)  # type: ignore[arg-type]


def test_credentials_update_is_acknowledged_only_after_the_callback_persisted(
    standin: Callable[..., Sidecar], recording: Recording
) -> None:
    saved: list[CredentialUpdate] = []
    failures = [True]

    async def save(update: CredentialUpdate) -> None:
        await asyncio.sleep(0)
        if failures.pop() if failures else False:
            raise OSError("database down")  # the first save fails: the sidecar must ask again
        saved.append(update)

    async def body() -> None:
        async with standin(resolve_credentials=resolver(), on_credentials_updated=save) as sidecar:
            result = await sidecar.youtube.refresh(credential_ref="CRED-yt", customer_id="CUST-9")
            assert result.refreshed and result.expires_at == "2030-01-01T00:00:00Z"
            with pytest.raises(ss.Unsupported):
                await sidecar.facebook.refresh(credential_ref="CRED-fb", customer_id="CUST-9")

    run(body())
    assert len(saved) == 1
    update = saved[0]
    assert (update.platform, update.credential_ref, update.customer_id) == ("youtube", "CRED-yt", "CUST-9")
    assert (update.access_token, update.refresh_token) == ("new-access-token", "rotated-refresh-token")
    assert "rotated-refresh-token" not in repr(update) and "new-access-token" not in repr(update)
    answers = [m for m in recording.inbound if "method" not in m and str(m.get("id")).startswith("s-")]
    assert [("error" in a, a.get("result")) for a in answers[1:]] == [(True, None), (False, {})]


def test_events_reach_callbacks_and_iterators_in_order(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        events: list[ss.MetricEvent] = []
        changes: list[ss.BreakerChange] = []
        async with standin(
            resolve_credentials=resolver(), on_event=events.append, on_breaker_change=changes.append
        ) as sidecar:
            stream = sidecar.events()
            await sidecar.facebook.post(**FB, text="burst:50")  # 50 frames in one write
            await sidecar.linkedin.post(**FB, text="breaker")
            seen = []
            async for event in stream:
                seen.append(event)
                if isinstance(event, ss.BreakerChange):
                    break
            await stream.aclose()
            assert [e.event_id for e in seen[:50]] == [f"burst-{i}" for i in range(50)]
            last = seen[50]
            assert isinstance(last, ss.MetricEvent) and last.customer_id == "CUST-123"
            assert last.agent_id == "AGENT-456" and last.post_id == "facebook-post-1" and last.success is True
            assert isinstance(seen[-1], ss.BreakerChange) and seen[-1].to_state == "OPEN"
            ending = sidecar.events()
        assert len(events) == 52 and [e.event_id for e in events[:50]] == [f"burst-{i}" for i in range(50)]
        assert changes == [
            ss.BreakerChange(platform="linkedin", from_state="CLOSED", to_state="OPEN", at="2030-01-01T00:00:00Z")
        ]
        assert [e async for e in ending] == []  # closing the sidecar ends open iterators

    run(body())


def test_drip_fed_frames_are_read_correctly(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        async with standin("drip", resolve_credentials=resolver()) as sidecar:
            results = await asyncio.gather(*(sidecar.facebook.post(**FB, text=f"t{i}") for i in range(5)))
            assert sorted(r.post_id for r in results) == [f"facebook-post-{i}" for i in range(1, 6)]

    run(body())


def test_many_concurrent_calls_get_their_own_answers(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            results = await asyncio.gather(
                *(sidecar.call("test/echo", {"n": i}) for i in range(100)),
                *(sidecar.instagram.post(**FB, caption=f"c{i}") for i in range(20)),
            )
            assert results[:100] == [{"n": i} for i in range(100)]
            assert len({r.post_id for r in results[100:]}) == 20

    run(body())


def test_wait_for_timeout_sends_cancel_request_and_the_peer_answers_cancelled(
    standin: Callable[..., Sidecar], recording: Recording
) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sidecar.youtube.post(**FB, title="hang", video_url="https://v"), 0.2)
            with pytest.raises(ss.CallTimeout) as caught:
                await sidecar.youtube.post(**FB, title="hang", video_url="https://v", timeout=0.2)
            assert caught.value.method == "youtube/post" and isinstance(caught.value, TimeoutError)
            assert (await sidecar.health()).status == "ok"  # the connection is still good

    run(body())
    posts = [m["id"] for m in recording.inbound if m.get("method") == "youtube/post"]
    cancels = [m["params"]["id"] for m in recording.inbound if m.get("method") == "$/cancelRequest"]
    assert cancels == posts
    cancelled = [m["id"] for m in recording.outbound if m.get("error", {}).get("code") == -32800]
    assert cancelled == posts


def test_task_cancel_sends_cancel_request(standin: Callable[..., Sidecar], recording: Recording) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            task = asyncio.create_task(sidecar.facebook.post(**FB, text="hang"))
            while not any(m.get("method") == "facebook/post" for m in recording.inbound):
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await sidecar.health()

    run(body())
    assert "$/cancelRequest" in recording.methods()


def test_scripted_errors_raise_the_mapped_exception(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            with pytest.raises(ss.RateLimited) as limited:
                await sidecar.facebook.post(**FB, text="error:-31003:rate_limited:1500")
            assert limited.value.retry_after == 1.5 and limited.value.platform == "facebook"
            with pytest.raises(ss.OutcomeUnknown):
                await sidecar.linkedin.post(**FB, text="error:-31008:outcome_unknown")
            with pytest.raises(ss.CircuitOpen):
                await sidecar.linkedin.post(**FB, text="error:-31005:circuit_open:60000")
            with pytest.raises(ss.MethodNotFound):
                await sidecar.call("tiktok/post", {})

    run(body())


def wait_for_method(recording: Recording, method: str) -> "asyncio.Future[None]":
    async def poll() -> None:
        while not any(m.get("method") == method for m in recording.inbound):
            await asyncio.sleep(0.01)

    return asyncio.ensure_future(poll())


def test_killed_sidecar_fails_the_call_and_the_next_call_gets_a_fresh_process(
    standin: Callable[..., Sidecar], recording: Recording
) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            first = sidecar.pid
            assert first is not None
            call = asyncio.create_task(sidecar.facebook.post(**FB, text="hang"))
            await wait_for_method(recording, "facebook/post")
            os.kill(first, signal.SIGKILL)
            with pytest.raises(ss.SidecarCrashed) as caught:
                await call
            assert "killed by signal 9" in str(caught.value) and caught.value.outcome_unknown
            assert process_gone(first)
            result = await sidecar.facebook.post(**FB, text="after")
            assert result.post_id == "facebook-post-1" and sidecar.pid not in (None, first)
            assert sidecar.restarts == 1

    run(body())
    assert recording.methods().count("initialize") == 2


def test_crash_message_carries_exit_code_and_stderr(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            with pytest.raises(ss.SidecarCrashed) as caught:
                await sidecar.whatsapp.send(**FB, to="+1555", text="crash")
            assert "exited with code 70" in str(caught.value)
            assert "Fatal error: standin crashed on purpose" in str(caught.value)
            health = await sidecar.call("health")
            assert health["status"] == "ok"

    run(body())


def test_repeated_crashes_back_off_from_the_crash_time(standin: Callable[..., Sidecar]) -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    async def body() -> None:
        sidecar = standin(
            resolve_credentials=resolver(), restart_delays=(0.0, 0.5, 4.0), clock=lambda: now[0], sleep=fake_sleep
        )
        async with sidecar:
            for _ in range(4):
                with pytest.raises(ss.SidecarCrashed):
                    await sidecar.facebook.post(**FB, text="crash")
            now[0] += 1.0  # a call long after a crash waits only what is left of the delay
            await sidecar.health()
            assert sidecar.restarts == 4

    run(body())
    assert slept == [0.5, 4.0, 3.0]


def test_start_failure_is_unavailable_with_the_reason(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        async with standin("crash-on-init") as sidecar:
            pass

    with pytest.raises(ss.SidecarUnavailable) as caught:
        run(body())
    assert "crashing during initialize" in str(caught.value)


def test_missing_binary_is_unavailable() -> None:
    async def body() -> None:
        sidecar = Sidecar(binary="/nonexistent/social-sidecar")
        with pytest.raises(ss.SidecarUnavailable) as caught:
            await sidecar.health()
        assert "/nonexistent/social-sidecar" in str(caught.value)
        await sidecar.close()
        with pytest.raises(ss.SidecarUnavailable):
            await sidecar.health()

    run(body())


def test_a_sidecar_ignoring_exit_and_sigterm_is_killed_and_reaped(standin: Callable[..., Sidecar]) -> None:
    async def body() -> int:
        sidecar = standin("ignore-exit", shutdown_timeout=0.3)
        await sidecar.start()
        pid = sidecar.pid
        assert pid is not None
        await sidecar.close()
        return pid

    assert process_gone(run(body()))


def test_calls_in_flight_at_close_fail_as_unavailable(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        sidecar = standin("ignore-exit", resolve_credentials=resolver(), shutdown_timeout=0.3)
        await sidecar.start()
        call = asyncio.create_task(sidecar.facebook.post(**FB, text="hang"))
        await asyncio.sleep(0.05)
        await sidecar.close()
        with pytest.raises(ss.SidecarUnavailable) as caught:
            await call
        assert not isinstance(caught.value, ss.SidecarCrashed)

    run(body())


def test_stderr_goes_to_logging(standin: Callable[..., Sidecar], caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with standin("stderr-json,stderr-text") as sidecar:
            await sidecar.health()

    with caplog.at_level(logging.DEBUG, logger="social_sidecar"):
        run(body())
    records = [r for r in caplog.records if r.name == "social_sidecar.sidecar"]
    structured = next(r for r in records if hasattr(r, "sidecar"))
    assert structured.levelno == logging.WARNING and structured.getMessage().startswith("standin started")
    assert structured.sidecar["msg"] == "standin started"  # type: ignore[attr-defined]
    assert any(r.getMessage() == "standin plain text line" for r in records)


def test_prometheus_collector_and_typed_queries(standin: Callable[..., Sidecar]) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from social_sidecar.prometheus import SidecarCollector

    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            registry = CollectorRegistry()
            registry.register(SidecarCollector(sidecar))
            await sidecar.facebook.post(**FB, text="one")
            text = await sidecar.prometheus()
            assert 'outcome="success"} 1' in text
            # From another thread (prometheus_client's HTTP server) a scrape asks the sidecar there and then.
            scraped = (await asyncio.to_thread(generate_latest, registry)).decode()
            assert 'social_sidecar_operations_total{outcome="success",platform="facebook"} 1.0' in scraped
            # On the sidecar's own loop (an ASGI route) a scrape cannot wait: it serves the previous fetch (none
            # yet) and starts the next one, which the following scrape serves.
            on_loop = SidecarCollector(sidecar)
            assert list(on_loop.collect()) == []
            samples: list[Any] = []
            for _ in range(500):  # the fetch runs as soon as this task yields
                await asyncio.sleep(0.01)
                samples = [sample for family in on_loop.collect() for sample in family.samples]
                if samples:
                    break
            assert [(sample.name, sample.value) for sample in samples] == [("social_sidecar_operations_total", 1)]
            status = await sidecar.breaker_status()
            assert status.enabled and {p.state for p in status.platforms.values()} == {"CLOSED"}
            assert (await sidecar.breaker_reset("facebook")) == ss.BreakerReset(platform="facebook", state="CLOSED")
            with pytest.raises(ss.InvalidParams):
                await sidecar.breaker_reset("myspace")
            snapshot = await sidecar.metrics_snapshot()
            assert snapshot.platforms["facebook"].operations["post"].success == 1
            assert snapshot.platforms["facebook"].breaker_opens == 0
        # A stopped sidecar adds nothing to the scrape instead of failing the service's /metrics.
        assert "social_sidecar_operations_total" not in (await asyncio.to_thread(generate_latest, registry)).decode()

    run(body())


def test_the_sidecar_cancelling_a_slow_resolve_stops_the_resolver(standin: Callable[..., Sidecar]) -> None:
    stopped: list[str] = []

    async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> Credentials:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(credential_ref)
            raise
        raise AssertionError("unreachable")

    async def body() -> None:
        async with standin(resolve_credentials=resolve) as sidecar:
            with pytest.raises(ss.CredentialUnavailable) as caught:
                await sidecar.facebook.post(**FB, text="cancel-resolve")
            assert "parent answered -32800" in str(caught.value)
            assert (await sidecar.health()).status == "ok"

    run(body())
    assert stopped == ["CRED-fb-001"]


def test_close_during_start_leaves_no_process(standin: Callable[..., Sidecar], recording: Recording) -> None:
    async def body() -> None:
        sidecar = standin()
        starting = asyncio.create_task(sidecar.start())
        await asyncio.sleep(0)  # the spawn is under way
        await sidecar.close()
        with pytest.raises(ss.SidecarUnavailable):
            await starting
        assert sidecar.pid is None

    run(body())
    started = [m for m in recording.inbound if m.get("method") == "initialize"]
    if started:  # it got as far as initialize: it must also have been shut down
        assert recording.methods()[-2:] == ["shutdown", "exit"]


def test_a_corrupted_stdout_replaces_the_process(standin: Callable[..., Sidecar]) -> None:
    async def body() -> None:
        async with standin(resolve_credentials=resolver()) as sidecar:
            first = sidecar.pid
            assert first is not None
            with pytest.raises(ss.SidecarCrashed) as caught:
                await sidecar.facebook.post(**FB, text="garbage")
            assert "unreadable stream" in str(caught.value) and "malformed header" in str(caught.value)
            assert process_gone(first)  # it was still running: the client killed and reaped it
            assert (await sidecar.facebook.post(**FB, text="fine")).post_id == "facebook-post-1"

    run(body())
