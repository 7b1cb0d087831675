"""Platform methods end to end: the real binary publishing to the platform fakes (``Tests/Fakes``).

Each test skips only when the running binary does not list the operation in its ``initialize`` capabilities (so
they turn on by themselves as platforms land), or when no binary or fakes are present;
``SOCIAL_SIDECAR_REQUIRE_BINARY=1`` turns a missing binary or missing fakes into failures. ``SOCIAL_SIDECAR_FAKES``
points at the fakes' folder when this package is not inside the repository.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import social_sidecar as ss
from conftest import process_gone, run
from social_sidecar import CredentialRequest, CredentialUpdate, Sidecar
from test_real_binary import real_binary

WHO = dict(customer_id="CUST-123", agent_id="AGENT-456")
FAST_RETRY = {"maxAttempts": 2, "baseDelayMs": 10, "maxDelayMs": 20}


def fakes_module() -> Any:
    configured = os.environ.get("SOCIAL_SIDECAR_FAKES")
    folder = Path(configured) if configured else None
    if folder is None:
        for parent in Path(__file__).resolve().parents:
            if (parent / "Package.swift").is_file():
                folder = parent / "Tests" / "Fakes"
                break
    if folder is None or not (folder / "fake_platforms.py").is_file():
        reason = f"no platform fakes at {folder} (set SOCIAL_SIDECAR_FAKES)"
        if os.environ.get("SOCIAL_SIDECAR_REQUIRE_BINARY") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module("fake_platforms")


@pytest.fixture
def fake() -> Iterator[Any]:
    module = fakes_module()
    with module.FakePlatforms(seed=0) as running:
        yield running


@pytest.fixture
def make(fake: Any) -> Callable[..., Sidecar]:
    """A Sidecar on the real binary, pointed at the fakes, resolving the fakes' default credentials."""
    binary = real_binary()
    credentials = fake.credentials()

    def build(config: dict[str, Any] | None = None, **kwargs: Any) -> Sidecar:
        async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
            return credentials[platform]

        merged = {**fake.sidecar_config(), "retry": FAST_RETRY, **(config or {})}
        kwargs.setdefault("resolve_credentials", resolve)
        return Sidecar(binary=binary, config=merged, **kwargs)

    return build


def require(sidecar: Sidecar, platform: str, operation: str) -> None:
    if not sidecar.supports(platform, operation):
        info = sidecar.initialize_result
        pytest.skip(f"this build does not serve {platform}/{operation} (capabilities: {info and info.capabilities})")


async def until(predicate: Callable[[], Any], what: str, limit: float = 10.0) -> None:
    """Wait for a condition observable from outside (a request reaching the fake), not for time to pass."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def content(fake: Any, platform: str) -> dict[str, Any]:
    return {
        "facebook": dict(text="Hello from the Python client"),
        "instagram": dict(caption="Hello from the Python client", image_url="https://example.test/image.jpg"),
        "linkedin": dict(text="Hello from the Python client"),
        "youtube": dict(
            title="Client test",
            description="Hello",
            video_url=fake.media_url("video-1048576.mp4"),
            privacy_status="private",
        ),
        "whatsapp": dict(to="+15550001111", text="Hello from the Python client"),
    }[platform]


async def publish(sidecar: Sidecar, fake: Any, platform: str, **extra: Any) -> ss.PostResult:
    args = {"credential_ref": f"CRED-{platform}", **WHO, **content(fake, platform), **extra}
    if platform == "whatsapp":
        return await sidecar.whatsapp.send(**args)
    client = getattr(sidecar, platform)
    return await client.post(**args)


@pytest.mark.parametrize("platform", ["facebook", "instagram", "linkedin", "youtube", "whatsapp"])
def test_publish_reaches_the_platform_and_reports_an_event(
    make: Callable[..., Sidecar], fake: Any, platform: str
) -> None:
    events: list[ss.MetricEvent] = []

    async def body() -> ss.PostResult:
        async with make(on_event=events.append) as sidecar:
            require(sidecar, platform, "send" if platform == "whatsapp" else "post")
            result = await publish(sidecar, fake, platform, correlation_id="corr-42", idempotency_key=f"k-{platform}")
            await until(lambda: events, "the metric event")
            return result

    result = run(body(), timeout=60)
    published = fake.published(platform)
    assert len(published) == 1
    assert result.platform == platform and result.post_id == published[0]["id"]
    assert result.status in ("published", "processing", "accepted") and result.attempts == 1
    assert result.replayed is False and isinstance(result.duration_ms, int)
    if platform == "whatsapp":
        assert result.post_url is None
    else:
        assert isinstance(result.post_url, str) and result.post_url.startswith("http")
    event = events[-1]
    assert (event.platform, event.customer_id, event.agent_id, event.correlation_id) == (
        platform,
        "CUST-123",
        "AGENT-456",
        "corr-42",
    )
    assert event.success is True and event.post_id == result.post_id and event.event_id


def test_same_idempotency_key_replays_without_a_second_post(make: Callable[..., Sidecar], fake: Any) -> None:
    async def body() -> tuple[ss.PostResult, ss.PostResult]:
        async with make() as sidecar:
            require(sidecar, "facebook", "post")
            first = await publish(sidecar, fake, "facebook", idempotency_key="same-key")
            second = await publish(sidecar, fake, "facebook", idempotency_key="same-key")
            with pytest.raises(ss.IdempotencyMismatch):
                await sidecar.facebook.post(
                    credential_ref="CRED-facebook", **WHO, text="other", idempotency_key="same-key"
                )
            return first, second

    first, second = run(body(), timeout=60)
    assert second.replayed is True and second.post_id == first.post_id
    assert len(fake.published("facebook")) == 1


def test_wait_for_timeout_cancels_the_call_inside_the_sidecar(
    make: Callable[..., Sidecar], fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script([{"platform": "facebook", "path": "/feed$", "action": "hang"}])

    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "post")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(publish(sidecar, fake, "facebook"), 1.0)
            await until(
                lambda: any("answered after cancellation: -32800" in r.getMessage() for r in caplog.records),
                "the sidecar's -32800 answer",
            )
            # `call` sends no deadlineMs: the client's own timeout cancels the call inside the sidecar.
            with pytest.raises(ss.CallTimeout):
                params = {"credentialRef": "CRED-facebook", "customerId": "CUST-123", "agentId": "AGENT-456"}
                await sidecar.call("facebook/post", {**params, "text": "Hello"}, timeout=1.0)
            await until(
                lambda: sum("answered after cancellation: -32800" in r.getMessage() for r in caplog.records) == 2,
                "the second -32800 answer",
            )
            assert (await sidecar.health()).in_flight == 0

    with caplog.at_level(logging.DEBUG, logger="social_sidecar"):
        run(body(), timeout=60)


def test_timeout_is_the_sidecars_deadline_and_its_answer_arrives_first(make: Callable[..., Sidecar], fake: Any) -> None:
    fake.script([{"platform": "facebook", "action": "hang"}])

    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "validate")
            with pytest.raises(ss.DeadlineExceeded) as caught:
                await sidecar.facebook.validate(credential_ref="CRED-facebook", customer_id="CUST-1", timeout=0.5)
            assert caught.value.retryable and caught.value.platform == "facebook"

    run(body(), timeout=60)


def test_sidecar_killed_mid_publish_fails_the_call_and_the_next_one_succeeds(
    make: Callable[..., Sidecar], fake: Any
) -> None:
    fake.script([{"platform": "facebook", "path": "/feed$", "action": "hang"}])

    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "post")
            first = sidecar.pid
            assert first is not None
            call = asyncio.create_task(publish(sidecar, fake, "facebook"))
            await until(lambda: fake.requests(platform="facebook", path="/feed$"), "the post to reach the fake")
            os.kill(first, signal.SIGKILL)
            with pytest.raises(ss.SidecarCrashed) as caught:
                await call
            assert caught.value.outcome_unknown and "signal 9" in str(caught.value)
            assert process_gone(first)
            fake.clear_script()
            result = await publish(sidecar, fake, "facebook")
            assert result.post_id and sidecar.pid not in (None, first) and sidecar.restarts == 1

    run(body(), timeout=60)


def test_a_failing_resolver_is_credential_unavailable(make: Callable[..., Sidecar], fake: Any) -> None:
    async def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
        raise KeyError(f"no credential {credential_ref}")

    async def body() -> None:
        async with make(resolve_credentials=resolve) as sidecar:
            require(sidecar, "linkedin", "post")
            with pytest.raises(ss.CredentialUnavailable) as caught:
                await publish(sidecar, fake, "linkedin")
            assert caught.value.retryable and "KeyError" in str(caught.value)
            assert "no credential" not in str(caught.value)  # the exception's text stays in this process
            assert (await sidecar.health()).status == "ok"

    run(body(), timeout=60)
    assert fake.published("linkedin") == []


@pytest.mark.parametrize("platform", ["linkedin", "youtube"])
def test_refresh_hands_the_new_tokens_to_the_callback_before_answering(
    make: Callable[..., Sidecar], fake: Any, platform: str
) -> None:
    saved: list[CredentialUpdate] = []

    async def save(update: CredentialUpdate) -> None:
        await asyncio.sleep(0)
        saved.append(update)

    old = fake.credentials()[platform]

    async def body() -> ss.RefreshResult:
        async with make(on_credentials_updated=save) as sidecar:
            require(sidecar, platform, "refresh")
            return await getattr(sidecar, platform).refresh(credential_ref=f"CRED-{platform}", customer_id="CUST-1")

    result = run(body(), timeout=60)
    # The refresh may answer before the update is acknowledged; shutdown waits for it, so by now it is saved.
    assert result.refreshed is True and saved
    update = saved[-1]
    assert (update.platform, update.credential_ref, update.customer_id) == (platform, f"CRED-{platform}", "CUST-1")
    assert update.access_token and update.access_token != old["accessToken"]
    if platform == "linkedin":  # the fake rotates LinkedIn refresh tokens: losing it would break the account
        assert update.refresh_token and update.refresh_token != old["refreshToken"]


def test_meta_page_tokens_cannot_be_refreshed(make: Callable[..., Sidecar], fake: Any) -> None:
    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "refresh")
            with pytest.raises(ss.Unsupported):
                await sidecar.facebook.refresh(credential_ref="CRED-facebook", customer_id="CUST-1")

    run(body(), timeout=60)


def test_platform_errors_arrive_as_their_exceptions(make: Callable[..., Sidecar], fake: Any) -> None:
    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "post")
            fake.script(
                [
                    {
                        "platform": "facebook",
                        "path": "/feed$",
                        "action": "error",
                        "code": 100,
                        "message": "(#100) Invalid parameter",
                    }
                ]
            )
            with pytest.raises(ss.PermanentError) as permanent:
                await publish(sidecar, fake, "facebook")
            assert permanent.value.http_status == 400 and permanent.value.platform_code == 100
            assert not permanent.value.retryable
            # A transient failure of a publish may end as outcome_unknown (it may have been processed); a read
            # shows plain exhaustion.
            fake.script(
                [
                    {
                        "platform": "facebook",
                        "action": "error",
                        "code": 2,
                        "is_transient": True,
                        "message": "An unexpected error has occurred. Please retry your request later.",
                    }
                ]
            )
            with pytest.raises(ss.TransientExhausted) as transient:
                await sidecar.facebook.validate(credential_ref="CRED-facebook", customer_id="CUST-1")
            assert transient.value.attempts == FAST_RETRY["maxAttempts"] and transient.value.retryable
            fake.clear_script()
            if sidecar.supports("youtube", "post"):
                with pytest.raises(ss.InvalidParams):  # YouTube publishes videos: text alone is refused up front
                    await sidecar.youtube.post(credential_ref="CRED-youtube", **WHO, title="no video")

    run(body(), timeout=60)
    assert fake.published("facebook") == []


def test_a_5xx_without_an_error_body_on_a_publish_is_outcome_unknown(make: Callable[..., Sidecar], fake: Any) -> None:
    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "post")
            fake.script([{"platform": "facebook", "method": "POST", "path": "/feed$", "action": "respond",
                          "status": 503}])
            with pytest.raises(ss.OutcomeUnknown) as unknown:
                await publish(sidecar, fake, "facebook")
            assert unknown.value.attempts == 1 and not unknown.value.retryable

    run(body(), timeout=60)


def test_breaker_changes_reach_callbacks_and_iterators(make: Callable[..., Sidecar], fake: Any) -> None:
    changes: list[ss.BreakerChange] = []
    config = {"retry": {"maxAttempts": 1}, "breaker": {"failureThreshold": 2, "openMs": 60000}}

    async def body() -> None:
        async with make(config, on_breaker_change=changes.append) as sidecar:
            require(sidecar, "facebook", "post")
            stream = sidecar.events()
            fake.script([{"platform": "facebook", "action": "error", "code": 2, "is_transient": True}])
            for _ in range(2):
                with pytest.raises(ss.TransientExhausted):
                    await sidecar.facebook.validate(credential_ref="CRED-facebook", customer_id="CUST-1")
            with pytest.raises(ss.CircuitOpen) as refused:
                await publish(sidecar, fake, "facebook")
            assert refused.value.retry_after is not None and refused.value.retry_after > 0
            change = None
            async for event in stream:
                if isinstance(event, ss.BreakerChange):
                    change = event
                    break
            assert change is not None and change.platform == "facebook"
            assert str(change.from_state).lower() == "closed" and str(change.to_state).lower() == "open"
            status = await sidecar.breaker_status()
            assert status.platforms["facebook"].state == "OPEN"
            await sidecar.breaker_reset("facebook")
            fake.clear_script()
            assert (await publish(sidecar, fake, "facebook")).post_id

    run(body(), timeout=60)
    assert changes and str(changes[0].to_state).lower() == "open"


def test_prometheus_counts_what_was_published(make: Callable[..., Sidecar], fake: Any) -> None:
    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "linkedin", "post")
            await publish(sidecar, fake, "linkedin")
            text = await sidecar.prometheus()
            assert any('platform="linkedin"' in line and not line.startswith("#") for line in text.splitlines())
            assert "CUST-123" not in text and "AGENT-456" not in text  # customers never become labels
            snapshot = await sidecar.metrics_snapshot()
            assert snapshot.platforms["linkedin"].operations["post"].success == 1

    run(body(), timeout=60)


def test_delete_insights_and_status_are_typed(make: Callable[..., Sidecar], fake: Any) -> None:
    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "facebook", "insights")
            posted = await publish(sidecar, fake, "facebook")
            fake.set_engagement(posted.post_id, reactions=5, comments=2, post_impressions=40)
            who = dict(credential_ref="CRED-facebook", customer_id="CUST-123", post_id=posted.post_id)
            insights = await sidecar.facebook.insights(**who, metrics=["likes", "comments", "impressions"])
            assert isinstance(insights, ss.InsightsResult)
            assert insights.metrics == {"likes": 5, "comments": 2, "impressions": 40}
            assert insights.fetched_at.endswith("Z") and "insights" in insights.platform_answer
            status = await sidecar.facebook.status(**who)
            assert isinstance(status, ss.StatusResult) and status.state == "published"
            deleted = await sidecar.facebook.delete(**who, idempotency_key="del-1")
            assert isinstance(deleted, ss.DeleteResult) and deleted.deleted is True
            again = await sidecar.facebook.delete(**who)
            assert again.deleted is False and again.reason
            with pytest.raises(ss.Unsupported):
                await sidecar.whatsapp.status(credential_ref="CRED-whatsapp", customer_id="CUST-123", post_id="wamid.1")

    run(body(), timeout=60)


def test_publish_at_schedules_a_facebook_post(make: Callable[..., Sidecar], fake: Any) -> None:
    import datetime as dt

    async def body() -> ss.PostResult:
        async with make() as sidecar:
            require(sidecar, "facebook", "status")
            at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)
            result = await publish(sidecar, fake, "facebook", publish_at=at)
            status = await sidecar.facebook.status(credential_ref="CRED-facebook", customer_id="CUST-123",
                                                   post_id=result.post_id)
            assert status.state == "scheduled"
            with pytest.raises(ss.InvalidParams):
                await publish(sidecar, fake, "facebook", publish_at=dt.datetime.now(dt.timezone.utc))
            return result

    assert run(body(), timeout=60).status == "scheduled"
