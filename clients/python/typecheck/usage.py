"""Checked by ``mypy --strict`` (scripts/test), never run: what a service writes against this package type-checks,
and what it should not write does not (each ``type: ignore[...]`` must stay needed: ``warn_unused_ignores``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from social_sidecar import (
    BreakerStatus,
    CredentialNotFound,
    Credentials,
    CredentialUpdate,
    DeleteResult,
    InsightsResult,
    MetricEvent,
    MetricsSnapshot,
    PostResult,
    Progress,
    RateLimited,
    Sidecar,
    SyncSidecar,
)
from social_sidecar.prometheus import SidecarCollector


async def resolve(platform: str, credential_ref: str, customer_id: str) -> dict[str, str]:
    if credential_ref == "gone":
        raise CredentialNotFound(f"no {platform} credential {credential_ref}")
    return {"accessToken": "token", "accountId": customer_id}


def resolve_blocking(*, platform: str, credential_ref: str, customer_id: str) -> Credentials:
    return Credentials(access_token="token", account_id=customer_id)


def resolve_wrongly(request: Any) -> Credentials:
    raise NotImplementedError


async def save(update: CredentialUpdate) -> None:
    print(update.credential_ref, update.expires_at)


def record(event: MetricEvent) -> None:
    duration: float = event.duration_ms
    print(event.event_id, duration)


async def publish() -> None:
    async with Sidecar(resolve_credentials=resolve, on_credentials_updated=save, on_event=record, timeout=20.0) as sc:
        progress: list[Progress] = []
        result: PostResult = await sc.youtube.post(
            credential_ref="CRED-1", customer_id="CUST-1", agent_id="AGENT-1", title="t", video_path="/v.mp4",
            on_progress=progress.append, timeout=600.0,
        )
        post_id: str = result.post_id
        waited: int = result.waited_ms
        privacy: str | None = result.privacy_status
        warnings: list[str] = result.warnings
        print(privacy, warnings)
        snapshot: MetricsSnapshot = await sc.metrics_snapshot()
        status: BreakerStatus = await sc.breaker_status()
        print(post_id, waited, snapshot.since, status.platforms["facebook"].state)
        try:
            await sc.facebook.post(credential_ref="CRED-1", customer_id="CUST-1", agent_id="AGENT-1", text="hi")
        except RateLimited as error:
            print(error.retry_after, error.platform_code)
        await sc.facebook.post(credential_ref="CRED-1", customer_id="CUST-1", text="hi")  # type: ignore[call-arg]
    Sidecar(resolve_credentials=resolve_wrongly)  # type: ignore[arg-type]


def publish_from_a_thread() -> None:
    with SyncSidecar(resolve_credentials=resolve_blocking) as sc:
        REGISTRY.register(SidecarCollector(sc))
        result: PostResult = sc.whatsapp.send(
            credential_ref="CRED-1", customer_id="CUST-1", agent_id="AGENT-1", to="+15551234567", text="hi"
        )
        print(result.post_url)
        sc.whatsapp.post(credential_ref="CRED-1")  # type: ignore[attr-defined]


def read_a_post() -> None:
    with SyncSidecar(resolve_credentials=resolve_blocking) as sc:
        insights: InsightsResult = sc.facebook.insights(
            credential_ref="CRED-1", customer_id="CUST-1", post_id="1_2", metrics=["likes"]
        )
        likes: int | None = insights.metrics.get("likes")
        state: str = sc.youtube.status(credential_ref="CRED-1", customer_id="CUST-1", post_id="v1").state
        deleted: DeleteResult = sc.linkedin.delete(
            credential_ref="CRED-1", customer_id="CUST-1", post_id="urn:li:share:1", idempotency_key="d-1"
        )
        print(likes, state, deleted.deleted, deleted.reason)
        sc.facebook.delete(credential_ref="CRED-1", customer_id="CUST-1")  # type: ignore[call-arg]
