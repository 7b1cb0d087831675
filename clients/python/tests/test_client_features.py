"""Issue 19's acceptance through the real binary and the platform fakes: fail-fast waits, the blocking client from
many threads, prometheus_client, upload progress and interop with pygls."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import social_sidecar as ss
from conftest import run
from social_sidecar import Sidecar, SyncSidecar
from test_platforms_real import WHO, content, fake, make, require  # noqa: F401  (fixtures)
from test_real_binary import real_binary

DEFAULT_MAX_WAIT = 5.0  # retry.maxWaitMs's default, in seconds


def test_a_rate_limited_call_answers_within_the_wait_bound(make: Callable[..., Sidecar], fake: Any) -> None:
    # Facebook's app usage at 100%: Graph code 4, a window of about a minute the call must not sit through.
    fake.set_usage(app={"call_count": 100, "total_time": 40, "total_cputime": 30})

    async def body() -> float:
        async with make(timeout=120.0) as sidecar:  # a deadline far past the window: only the bound can cut it
            started = time.monotonic()
            with pytest.raises(ss.RateLimited) as caught:
                await sidecar.facebook.post(credential_ref="CRED-facebook", **WHO, text="throttled")
            elapsed = time.monotonic() - started
            assert caught.value.retry_after is not None and caught.value.retry_after > DEFAULT_MAX_WAIT
            return elapsed

    assert run(body(), timeout=60) < DEFAULT_MAX_WAIT + 1.0


def test_a_paced_send_answers_at_once_and_a_longer_bound_waits_and_says_so(
    make: Callable[..., Sidecar], fake: Any
) -> None:
    send = dict(credential_ref="CRED-whatsapp", **WHO, **content(fake, "whatsapp"))

    async def body() -> None:
        async with make() as sidecar:
            require(sidecar, "whatsapp", "send")
            first = await sidecar.whatsapp.send(**send)
            assert first.waited_ms == 0
            started = time.monotonic()
            # One message per 6 s to a recipient: past the 5 s bound, so the answer comes at once.
            with pytest.raises(ss.RateLimited) as caught:
                await sidecar.whatsapp.send(**{**send, "text": "again"})
            assert time.monotonic() - started < DEFAULT_MAX_WAIT + 1.0
            assert caught.value.retry_after is not None and 4.0 < caught.value.retry_after <= 6.0
        fake.customer_message("15550003333")  # another recipient, its 24-hour window open
        async with make({"retry": {"maxAttempts": 2, "baseDelayMs": 10, "maxDelayMs": 20, "maxWaitMs": 15000}}) as patient:
            await patient.whatsapp.send(**{**send, "to": "+15550003333"})
            paced = await patient.whatsapp.send(**{**send, "to": "+15550003333", "text": "paced"})
            assert paced.waited_ms >= 4000  # the result says why it took seconds

    run(body(), timeout=60)


def test_sync_sidecar_publishes_from_eight_threads_at_once(fake: Any) -> None:
    credentials = fake.credentials()
    resolved_on: set[str] = set()

    def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
        resolved_on.add(threading.current_thread().name)  # a plain function: run off the client's loop
        return dict(credentials[platform])

    barrier = threading.Barrier(8)
    results: list[ss.PostResult] = []
    errors: list[BaseException] = []

    with SyncSidecar(config=fake.sidecar_config(), resolve_credentials=resolve, binary=real_binary()) as sidecar:

        def publish(n: int) -> None:
            try:
                barrier.wait()
                result = sidecar.facebook.post(
                    credential_ref="CRED-facebook", **WHO, text=f"thread {n}", idempotency_key=f"t-{n}"
                )
                results.append(result)
            except BaseException as exc:  # reported below, with the thread's result
                errors.append(exc)

        threads = [threading.Thread(target=publish, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert (sidecar.health()).status == "ok"
        assert sidecar.metrics_snapshot().platforms["facebook"].operations["post"].success == 8
    assert len({r.post_id for r in results}) == 8
    assert len(fake.published("facebook")) == 8
    assert "social-sidecar-loop" not in resolved_on


def test_a_prometheus_client_registry_exposes_the_sidecars_counters(fake: Any) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from social_sidecar.prometheus import SidecarCollector

    credentials = fake.credentials()

    def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
        return dict(credentials[platform])

    with SyncSidecar(config=fake.sidecar_config(), resolve_credentials=resolve, binary=real_binary()) as sidecar:
        registry = CollectorRegistry()
        registry.register(SidecarCollector(sidecar))
        sidecar.linkedin.post(credential_ref="CRED-linkedin", **WHO, text="counted")
        exposition = generate_latest(registry).decode()
    lines = exposition.splitlines()
    assert 'social_sidecar_operations_total{operation="post",outcome="success",platform="linkedin"} 1.0' in lines
    assert any(line.startswith("# TYPE social_sidecar_") for line in lines)


def test_a_200_mb_upload_reports_monotonic_progress_to_on_progress(
    make: Callable[..., Sidecar], fake: Any, tmp_path: Path
) -> None:
    video = tmp_path / "large.mp4"
    with video.open("wb") as file:
        file.truncate(200 * 1024 * 1024)  # sparse: no disk or time spent writing it
    reports: list[ss.Progress] = []

    async def body() -> ss.PostResult:
        # Local files are read only under media.localRoots (real paths).
        async with make({"media.localRoots": [str(tmp_path.resolve())]}, timeout=300.0) as sidecar:
            require(sidecar, "youtube", "post")
            return await sidecar.youtube.post(
                credential_ref="CRED-youtube",
                **WHO,
                title="Large upload",
                video_path=str(video),
                privacy_status="private",
                on_progress=reports.append,
            )

    result = run(body(), timeout=300)
    assert result.post_id
    assert [r.kind for r in reports[:1]] == ["begin"] and reports[-1].kind == "end"
    assert {r.kind for r in reports[1:-1]} == {"report"}
    sent = [r.bytes_sent for r in reports if r.bytes_sent is not None]
    assert sent == sorted(sent) and sent[-1] == 200 * 1024 * 1024 and len(set(sent)) > 10
    percentages = [r.percentage for r in reports if r.percentage is not None]
    assert percentages == sorted(percentages) and percentages[-1] == 100
    assert all(r.bytes_total == 200 * 1024 * 1024 for r in reports if r.bytes_sent is not None)


def test_pygls_json_rpc_client_initializes_calls_and_shuts_the_sidecar_down() -> None:
    from pygls.client import JsonRPCClient

    async def body() -> None:
        client = JsonRPCClient()
        await client.start_io(str(real_binary()))
        try:
            answer = await client.protocol.send_request_async("initialize", {"clientInfo": {"name": "pygls"}})
            assert answer.serverInfo.name == "social-sidecar"
            health = await client.protocol.send_request_async("health", None)
            assert health.status == "ok"
            assert await client.protocol.send_request_async("shutdown", None) is None  # sent as "params": null
            client.protocol.notify("exit", None)
            server = client._server  # pygls 2 keeps the process here (scripts/setup installs pygls 2)
            assert server is not None
            assert await asyncio.wait_for(server.wait(), 10) == 0  # 0: exit after a successful shutdown
        finally:
            await client.stop()

    run(body(), timeout=30)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_sync_sidecar_reads_insights_and_status(fake: Any) -> None:
    credentials = fake.credentials()

    def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, Any]:
        return dict(credentials[platform])

    with SyncSidecar(config=fake.sidecar_config(), resolve_credentials=resolve, binary=real_binary()) as sidecar:
        posted = sidecar.linkedin.post(credential_ref="CRED-linkedin", **WHO, text="sync numbers")
        fake.set_engagement(posted.post_id, likeCount=4, impressionCount=90)
        who = dict(credential_ref="CRED-linkedin", customer_id="CUST-123", post_id=posted.post_id)
        insights = sidecar.linkedin.insights(**who)
        assert insights.metrics["likes"] == 4 and insights.metrics["impressions"] == 90
        assert sidecar.linkedin.status(**who).state == "published"
        assert sidecar.linkedin.delete(**who).deleted is True
        assert sidecar.linkedin.status(**who).state == "deleted"
