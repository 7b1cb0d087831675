#!/usr/bin/env python3
"""Fault-injection soak: thousands of posts across all five platforms through the Python client and the real
sidecar, while the fakes inject 5xx, 429 with Retry-After, hangs, dropped connections (before and after the platform
processed the request) and malformed bodies, and the sidecar is SIGKILLed and restarted a few times.

Each post has unique content and an idempotency key. Like a real backend, the driver retries a post with the same key
after a retryable error or a crash, and gives up on a definitive answer. At the end it reconciles what the fakes
published against what the sidecar answered:
  duplicates             content published more than once                        (must be 0)
  lost                   answered as published, but not on the platform          (must be 0)
  silently published     answered as NOT published, yet on the platform          (must be 0)
  unknown                answered outcome_unknown (reported, allowed)
Prints the counts; exits non-zero if any must-be-zero count is not zero.

  scripts/soak-publishing           # 2,000 posts, concurrency 32, 3 kills
  SOAK_POSTS=500 scripts/soak-publishing   # quicker
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT / "Tests" / "Fakes"))

from fake_platforms import FakePlatforms  # noqa: E402
from social_sidecar import OutcomeUnknown, Sidecar, SidecarCrashed, SidecarError  # noqa: E402

CREDENTIALS = {
    "facebook": {"accessToken": "fake-fb-page-token-1", "accountId": "20000001"},
    "instagram": {"accessToken": "fake-fb-page-token-1", "accountId": "17841400000000001"},
    "whatsapp": {"accessToken": "fake-wa-system-token-1", "accountId": "30000001"},
    "youtube": {"accessToken": "fake-yt-access-token-1", "refreshToken": "fake-yt-refresh-token-1",
                "clientId": "fake-google-client-id.apps.example.test", "clientSecret": "fake-google-client-secret",
                "accountId": "UCfakechannel00000000001"},
    "linkedin": {"accessToken": "fake-li-access-token-1", "refreshToken": "fake-li-refresh-token-1",
                 "clientId": "fake-linkedin-client-id", "clientSecret": "fake-linkedin-client-secret",
                 "accountId": "urn:li:organization:40000001"},
}
PLATFORMS = list(CREDENTIALS)


# A throttling answer in each platform's own error shape (the fake renders it), with Retry-After.
RATE_LIMITS = {
    "facebook": {"code": 32, "status": 400, "message": "(#32) Page request limit reached",
                 "headers": {"Retry-After": "1"}},
    "instagram": {"code": 4, "status": 400, "message": "(#4) Application request limit reached",
                  "headers": {"Retry-After": "1"}},
    "whatsapp": {"code": 130429, "status": 400, "message": "(#130429) Rate limit hit",
                 "headers": {"Retry-After": "1"}},
    "youtube": {"reason": "rateLimitExceeded", "status": 403, "headers": {"Retry-After": "1"}},
    "linkedin": {"status": 429, "message": "Too Many Requests", "headers": {"Retry-After": "1"}},
}


def faults(seed: int) -> list[dict]:
    """Every platform gets every kind of fault at a low rate, on its publishing and preparation calls."""
    rules = []
    for index, platform in enumerate(PLATFORMS):
        base = {"platform": platform, "method": ["POST", "PUT"]}
        for offset, (action, extra, probability) in enumerate([
            ("error", {"status": 503}, 0.04),
            ("error", RATE_LIMITS[platform], 0.02),
            ("hang", {"seconds": 3}, 0.01),
            ("drop", {}, 0.02),
            ("drop_after_processing", {}, 0.02),
            ("malformed", {}, 0.01),
        ]):
            rules.append({"match": base, "action": action, "probability": probability,
                          "seed": seed * 100 + index * 10 + offset, **extra})
    return rules


def content(platform: str, number: int, fake: FakePlatforms) -> dict:
    text = f"soak post {number} on {platform}"
    if platform == "facebook":
        return {"text": text}
    if platform == "instagram":
        return {"caption": text, "image_url": f"https://cdn.example.com/soak/{number}.jpg"}
    if platform == "whatsapp":
        # One recipient per message: the sidecar paces sends to one recipient 6 s apart (Meta's pair rate).
        return {"to": f"+1555{number:07d}", "text": text}
    if platform == "youtube":
        return {"title": text, "video_url": fake.media_url("video-600000.mp4")}
    return {"text": text}


async def main() -> int:
    logging.basicConfig(level=logging.ERROR)  # crashes are on purpose here; the client would log each one
    posts = int(os.environ.get("SOAK_POSTS", "2000"))
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "32"))
    kills = int(os.environ.get("SOAK_KILLS", "3"))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    rng = random.Random(seed)
    state = tempfile.mkdtemp(prefix="soak-state-")
    outcome: dict[tuple[str, int], str] = {}
    tries = collections.Counter()
    started = time.monotonic()

    with FakePlatforms(seed=seed) as fake:
        # Production-sized quotas: the soak is about faults, not about daily caps.
        fake.configure({"whatsapp": {"pair_rate_seconds": 0, "window_open_for_all": True, "throughput_per_second": 100000},
                        "instagram": {"quota_total": 1000000},
                        "youtube": {"insert_calls_per_day": 1000000, "quota_units_per_day": 10**12},
                        "linkedin": {"member_daily_limit": 1000000}})
        config = {**fake.sidecar_config(), "stateDir": state,
                  # WhatsApp paces sends to one recipient 6 s apart: wait them out rather than answer rate_limited.
                  "retry": {"maxAttempts": 4, "baseDelayMs": 50, "maxDelayMs": 400, "maxWaitMs": 60000},
                  "breaker": {"failureThreshold": 50, "openMs": 2000},
                  "http": {"timeoutMs": 1500}, "limits": {"maxInFlight": 4096}}

        async def resolve(platform, credential_ref, customer_id):
            return CREDENTIALS[platform]

        async with Sidecar(config=config, resolve_credentials=resolve,
                           on_credentials_updated=lambda update: None) as sidecar:
            fake.script(faults(seed))
            queue: asyncio.Queue = asyncio.Queue()
            for number in range(posts):
                queue.put_nowait((PLATFORMS[number % len(PLATFORMS)], number))

            async def worker() -> None:
                while True:
                    try:
                        platform, number = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    params = {"credential_ref": f"CRED-{platform}", "customer_id": "CUST-SOAK",
                              "agent_id": "AGENT-SOAK", "idempotency_key": f"soak-{seed}-{number}",
                              **content(platform, number, fake)}
                    method = getattr(getattr(sidecar, platform), "send" if platform == "whatsapp" else "post")
                    for attempt in range(12):
                        tries[(platform, number)] += 1
                        try:
                            await method(**params)
                            outcome[(platform, number)] = "published"
                            break
                        except OutcomeUnknown:
                            outcome[(platform, number)] = "unknown"
                            break
                        except SidecarCrashed:
                            await asyncio.sleep(0.2)
                            continue
                        except SidecarError as error:
                            if error.retryable and attempt < 11:
                                await asyncio.sleep(min(2.0, 0.1 * (attempt + 1)))
                                continue
                            outcome[(platform, number)] = f"failed:{error.kind}"
                            break
                    else:
                        outcome[(platform, number)] = "gave-up"

            async def killer() -> None:
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(3.0, 10.0))
                    if sidecar.pid and len(outcome) < posts:
                        os.kill(sidecar.pid, signal.SIGKILL)

            kill_task = asyncio.create_task(killer())
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            kill_task.cancel()
            restarts = sidecar.restarts
        fake.script([])
        published = fake.published()

    by_text = collections.Counter((p["platform"], p.get("text")) for p in published)
    duplicates = sum(count - 1 for count in by_text.values() if count > 1)
    on_platform = {key for key, count in by_text.items()}
    lost = silently = unknown = answered_published = failed = 0
    for (platform, number), result in outcome.items():
        text = f"soak post {number} on {platform}"
        present = (platform, text) in on_platform
        if result == "published":
            answered_published += 1
            lost += not present
        elif result == "unknown":
            unknown += 1
        else:
            failed += 1
            silently += present
    elapsed = time.monotonic() - started
    print(f"soak: {posts} posts over {len(PLATFORMS)} platforms, concurrency {concurrency}, {restarts} sidecar "
          f"restarts after SIGKILL, {sum(tries.values())} calls, {elapsed:.0f} s")
    print(f"  attempted            {posts}")
    print(f"  published (answered) {answered_published}")
    print(f"  on the platforms     {len(published)}")
    print(f"  duplicates           {duplicates}   (must be 0)")
    print(f"  lost                 {lost}   (must be 0)")
    print(f"  silently published   {silently}   (must be 0)")
    print(f"  unknown              {unknown}   (reported as outcome_unknown)")
    print(f"  failed definitively  {failed}")
    kinds = collections.Counter(r for r in outcome.values() if r.startswith("failed") or r == "gave-up")
    if kinds:
        print("  failures by kind     " + ", ".join(f"{k}: {v}" for k, v in kinds.most_common()))
    by_platform = collections.Counter(platform for (platform, _), r in outcome.items() if r.startswith("failed"))
    if by_platform:
        print("  failures by platform " + ", ".join(f"{k}: {v}" for k, v in by_platform.most_common()))
    return 1 if duplicates or lost or silently else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
