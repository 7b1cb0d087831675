#!/usr/bin/env python3
"""SocialSidecar end to end, on this machine only: local fakes of the five platform APIs, the real sidecar binary,
driven through the Python client the backend uses. Needs no credentials and no network.

It publishes to all five platforms, shows one call that fails transiently and is retried, one platform whose circuit
breaker opens (and the call that is then refused without touching the platform), one idempotent replay and one
invalid request, and prints the metrics the sidecar aggregated.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT / "Tests" / "Fakes"))

from fake_platforms import FakePlatforms  # noqa: E402
from social_sidecar import DeleteResult, InsightsResult, Sidecar, SidecarError, StatusResult  # noqa: E402

# The backend's credential store, here a dict. The sidecar asks for credentials by reference and never keeps them.
CREDENTIALS = {
    "CRED-fb-001": {"accessToken": "fake-fb-page-token-1", "accountId": "20000001"},
    "CRED-ig-001": {"accessToken": "fake-fb-page-token-1", "accountId": "17841400000000001"},
    "CRED-wa-001": {"accessToken": "fake-wa-system-token-1", "accountId": "30000001"},
    "CRED-yt-001": {"accessToken": "fake-yt-access-token-1", "refreshToken": "fake-yt-refresh-token-1",
                    "clientId": "fake-google-client-id.apps.example.test",
                    "clientSecret": "fake-google-client-secret", "accountId": "UCfakechannel00000000001"},
    "CRED-li-001": {"accessToken": "fake-li-access-token-1", "refreshToken": "fake-li-refresh-token-1",
                    "clientId": "fake-linkedin-client-id", "clientSecret": "fake-linkedin-client-secret",
                    "accountId": "urn:li:organization:40000001"},
}

BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() \
    else ("", "", "", "", "")


async def resolve(platform: str, credential_ref: str, customer_id: str) -> dict:
    return CREDENTIALS[credential_ref]


async def save(update) -> None:
    """A refreshed token: persist it (a rotated refresh token is otherwise lost) before returning."""
    CREDENTIALS[update.credential_ref]["accessToken"] = update.access_token
    if update.refresh_token:
        CREDENTIALS[update.credential_ref]["refreshToken"] = update.refresh_token


def row(step: str, outcome: str, detail: str) -> None:
    pad = 13 + len(outcome) - len(outcome.replace(GREEN, "").replace(RED, "").replace(RESET, ""))
    print(f"  {step:<48} {outcome:<{pad}} {detail}")


def more(text: str) -> None:
    """A continuation line under the detail column, wrapped."""
    for line in textwrap.wrap(text, 90):
        print(f"  {'':<48} {'':<13} {DIM}{line}{RESET}")


async def run(fake: FakePlatforms) -> int:
    events: list = []
    config = fake.sidecar_config()
    # Demo-friendly timings: the production defaults are 1, 2, 4, 8, 16 s backoff and a 60 s open breaker.
    config.update({"retry": {"maxAttempts": 3, "baseDelayMs": 200, "maxDelayMs": 800},
                   "breaker": {"failureThreshold": 3, "openMs": 30000}})
    common = {"customer_id": "CUST-123", "agent_id": "AGENT-456"}
    video = fake.media_url("video-3000000.mp4")

    async with Sidecar(config=config, resolve_credentials=resolve, on_credentials_updated=save,
                       on_event=events.append) as sidecar:
        info = sidecar.initialize_result
        print(f"{BOLD}social-sidecar {info.server_info.version}{RESET} (pid {sidecar.pid}) against fakes at "
              f"{fake.base_url}\n")
        print(f"  {'step':<48} {'outcome':<13} detail")
        print(f"  {'-' * 48} {'-' * 13} {'-' * 50}")

        async def attempt(step: str, call):
            started = time.monotonic()
            try:
                result = await call
            except SidecarError as error:
                row(step, f"{RED}{error.kind}{RESET}", f"attempts={error.attempts}" if error.attempts else "")
                more(error.message)
                return None
            elapsed = (time.monotonic() - started) * 1000
            post_id = getattr(result, "post_id", None)
            detail = f"{post_id}  attempts={result.attempts}  {elapsed:.0f} ms" if post_id else str(result)[:70]
            if isinstance(result, InsightsResult):
                detail = ", ".join(f"{name}={value}" for name, value in sorted(result.metrics.items()))
            elif isinstance(result, StatusResult):
                detail = f"{result.state}: {result.detail or ''}"[:70]
            elif isinstance(result, DeleteResult):
                detail = f"deleted={result.deleted}  {result.reason or ''}"[:70]
            if getattr(result, "status", None) == "scheduled":
                detail += "  (scheduled by the platform)"
            if getattr(result, "replayed", False):
                detail += "  (replayed: no platform call)"
            row(step, f"{GREEN}ok{RESET}", detail)
            if getattr(result, "post_url", None):
                more(result.post_url)
            return result

        first = await attempt("facebook/post  text", sidecar.facebook.post(
            credential_ref="CRED-fb-001", text="Hello from the sidecar", idempotency_key="demo-fb-1", **common))
        await attempt("instagram/post  image (container → publish)", sidecar.instagram.post(
            credential_ref="CRED-ig-001", caption="Launch day", image_url="https://cdn.example.com/launch.jpg",
            **common))
        await attempt("whatsapp/send  text", sidecar.whatsapp.send(
            credential_ref="CRED-wa-001", to="+15550001111", text="Your order shipped", **common))
        uploaded = await attempt("youtube/post  3 MB video, resumable upload", sidecar.youtube.post(
            credential_ref="CRED-yt-001", title="Demo video", description="Uploaded in chunks", video_url=video,
            **common))
        hiring = await attempt("linkedin/post  organization text", sidecar.linkedin.post(
            credential_ref="CRED-li-001", text="We are hiring", **common))

        print(f"\n  {DIM}One newer content type per platform.{RESET}")
        await attempt("facebook/post  photo with alt text", sidecar.facebook.post(
            credential_ref="CRED-fb-001", text="Our stand", image_url="https://cdn.example.com/stand.jpg",
            alt_text="A booth with blue banners", **common))
        await attempt("instagram/post  reel, cover, collaborator", sidecar.instagram.post(
            credential_ref="CRED-ig-001", video_url="https://cdn.example.com/reel.mp4",
            cover_url="https://cdn.example.com/cover.jpg", collaborators=["partner_brand"], **common))
        fake.customer_message("15550003333")  # another customer writes in: their 24-hour window opens
        await attempt("whatsapp/send  reply buttons", sidecar.whatsapp.send(
            credential_ref="CRED-wa-001", to="+15550003333", interactive={
                "type": "button", "body": {"text": "Keep your booking?"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "keep", "title": "Keep it"}},
                                       {"type": "reply", "reply": {"id": "cancel", "title": "Cancel"}}]}},
            **common))
        await attempt("youtube/post  video with a custom thumbnail", sidecar.youtube.post(
            credential_ref="CRED-yt-001", title="Demo with thumbnail", video_url=video,
            thumbnail_url=fake.media_url("thumb-40k.jpg"), **common))
        await attempt("linkedin/post  video uploaded in parts, with captions", sidecar.linkedin.post(
            credential_ref="CRED-li-001", text="Watch the launch", video_url=fake.media_url("launch-9m.mp4"),
            captions_url=fake.media_url("launch-2k.srt"), **common))

        print(f"\n  {DIM}Beyond posting: schedule natively, read a post's numbers and state, delete it.{RESET}")
        await attempt("facebook/post  publishAt tomorrow (native)", sidecar.facebook.post(
            credential_ref="CRED-fb-001", text="See you tomorrow",
            publish_at=datetime.now(timezone.utc) + timedelta(days=1), **common))
        if first:
            # The fake reports what a test sets, in Meta's own names; the sidecar maps them to the common ones.
            fake.set_engagement(first.post_id, post_impressions=1200, post_impressions_unique=900, reactions=48,
                                comments=6, shares=3)
            await attempt("facebook/insights  of the first post", sidecar.facebook.insights(
                credential_ref="CRED-fb-001", customer_id="CUST-123", post_id=first.post_id))
        if uploaded:
            await attempt("youtube/status  of the uploaded video", sidecar.youtube.status(
                credential_ref="CRED-yt-001", customer_id="CUST-123", post_id=uploaded.post_id))
        if hiring:
            await attempt("linkedin/delete  the hiring post", sidecar.linkedin.delete(
                credential_ref="CRED-li-001", customer_id="CUST-123", post_id=hiring.post_id))

        print(f"\n  {DIM}Facebook answers a publish with a temporary Graph error (code 2): the sidecar looks for the post on the Page first, and sends again only when it is not there.{RESET}")
        fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"}, "action": "error",
                      "code": 2, "status": 500, "is_transient": True, "times": 1}])
        await attempt("facebook/post  looked for, then sent again", sidecar.facebook.post(
            credential_ref="CRED-fb-001", text="Second post", **common))

        print(f"\n  {DIM}The same idempotency key again: answered from the store, nothing re-sent.{RESET}")
        await attempt("facebook/post  same idempotencyKey", sidecar.facebook.post(
            credential_ref="CRED-fb-001", text="Hello from the sidecar", idempotency_key="demo-fb-1", **common))

        print(f"\n  {DIM}YouTube's API answers 503 to everything: 3 failures open its circuit breaker.{RESET}")
        fake.script([{"match": {"platform": "youtube", "path": "/youtube/v3/channels"}, "action": "respond",
                      "status": 503, "body": {"error": {"code": 503, "message": "Backend Error",
                                                        "errors": [{"reason": "backendError"}]}}}])
        await attempt("youtube/validate  (503, retried, breaker opens)", sidecar.youtube.validate(
            credential_ref="CRED-yt-001", customer_id="CUST-123"))
        before = len(fake.requests(platform="youtube"))
        await attempt("youtube/validate  refused by the open breaker", sidecar.youtube.validate(
            credential_ref="CRED-yt-001", customer_id="CUST-123"))
        after = len(fake.requests(platform="youtube"))
        more(f"requests made to YouTube by that call: {after - before}")
        fake.script([])

        print(f"\n  {DIM}Bad input is refused up front with a sentence a person understands.{RESET}")
        await attempt("youtube/post  text only", sidecar.youtube.post(
            credential_ref="CRED-yt-001", title="No video", **common))

        await asyncio.sleep(0.1)
        snapshot = await sidecar.metrics_snapshot()
        status = await sidecar.breaker_status()

    print(f"\n{BOLD}Metrics snapshot{RESET} (what metrics/snapshot returns, summarised)")
    print(f"  {'platform/operation':<22} {'total':>5} {'ok':>4} {'fail':>4} {'retries':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for platform, stats in sorted(snapshot.platforms.items()):
        for operation, numbers in sorted(stats.operations.items()):
            p50, p99 = numbers.p50_ms, numbers.p99_ms
            print(f"  {platform + '/' + operation:<22} {numbers.total:>5} {numbers.success:>4} "
                  f"{numbers.failure:>4} {numbers.retries:>7} "
                  f"{(f'{p50:.0f}' if p50 is not None else '-'):>8} {(f'{p99:.0f}' if p99 is not None else '-'):>8}")
    breakers = ", ".join(f"{p}={b.state}" for p, b in sorted(status.platforms.items()))
    print(f"\n{BOLD}Circuit breakers{RESET}: {breakers}")
    print(f"{BOLD}Metric events received{RESET}: {len(events)} (one per operation, each with a unique eventId: "
          f"{len({e.event_id for e in events})} distinct)")
    published = fake.published()
    print(f"{BOLD}Published on the fakes{RESET}: "
          + ", ".join(f"{p}: {sum(1 for x in published if x['platform'] == p)}"
                      for p in ("facebook", "instagram", "whatsapp", "youtube", "linkedin")))
    return 0


def main() -> int:
    # The sidecar's own log lines (stderr, JSON) arrive through the client's logger; DEMO_LOG_LEVEL=INFO shows them.
    logging.basicConfig(level=os.environ.get("DEMO_LOG_LEVEL", "ERROR"))
    with FakePlatforms() as fake:
        return asyncio.run(run(fake))


if __name__ == "__main__":
    sys.exit(main())
