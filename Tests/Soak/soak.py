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
  unknown                answered outcome_unknown (reported, allowed; by platform too)
Prints the counts; exits non-zero if any must-be-zero count is not zero.

  scripts/soak-publishing           # 2,000 posts, concurrency 32, 3 kills
  SOAK_POSTS=500 scripts/soak-publishing   # quicker

Several replicas (issue 15): N sidecars share one store, a real redis-server started here (`--store redis`, the
default with --replicas) or one state directory (`--store local`). Each job is delivered to two replicas at once,
like a queue that delivers at least once, and retried on a random replica after a retryable answer or a crash;
replicas are SIGKILLed at random. `--redis-outage START:SECONDS` kills Redis START seconds in and brings it back
SECONDS later: keyed publishes are then refused before anything is sent, and must resume by themselves.

  scripts/soak-publishing --replicas 4                       # 2,000 posts on Redis
  scripts/soak-publishing --replicas 4 --store local         # one shared stateDir
  scripts/soak-publishing --replicas 4 --redis-outage 15:8   # Redis down for 8 s mid-run
"""
from __future__ import annotations

import argparse
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
from redis_server import RedisServer  # noqa: E402
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
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("social_sidecar").setLevel(logging.CRITICAL)  # crashes are on purpose here
    parser = argparse.ArgumentParser(description="fault-injection soak of publishing")
    parser.add_argument("--replicas", type=int, default=1, help="sidecars sharing one store (default 1)")
    parser.add_argument("--store", choices=["local", "redis"], help="the store (default: redis with several replicas, a local stateDir with one)")
    parser.add_argument("--redis-outage", metavar="START:SECONDS", help="kill Redis START s in, for SECONDS s")
    options = parser.parse_args()
    return await soak(options)


def reconcile(posts: int, outcome: dict[tuple[str, int], str], published: list[dict]) -> int:
    """Prints what the platforms got against what the sidecars answered; non-zero if anything must-be-zero is not."""
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
    print(f"  attempted            {posts}")
    print(f"  published (answered) {answered_published}")
    print(f"  on the platforms     {len(published)}")
    print(f"  duplicates           {duplicates}   (must be 0)"
          + (" on " + ", ".join(sorted({p for (p, _), c in by_text.items() if c > 1})) if duplicates else ""))
    print(f"  lost                 {lost}   (must be 0)")
    print(f"  silently published   {silently}   (must be 0)")
    print(f"  unknown              {unknown}   (reported as outcome_unknown)")
    print(f"  failed definitively  {failed}")
    kinds = collections.Counter(r for r in outcome.values() if r.startswith("failed") or r == "gave-up")
    if kinds:
        print("  failures by kind     " + ", ".join(f"{k}: {v}" for k, v in kinds.most_common()))
    unknown_by_platform = collections.Counter(platform for (platform, _), r in outcome.items() if r == "unknown")
    if unknown_by_platform:
        print("  unknown by platform  " + ", ".join(f"{k}: {v}" for k, v in unknown_by_platform.most_common()))
    by_platform = collections.Counter(platform for (platform, _), r in outcome.items() if r.startswith("failed"))
    if by_platform:
        print("  failures by platform " + ", ".join(f"{k}: {v}" for k, v in by_platform.most_common()))
    return 1 if duplicates or lost or silently else 0


STORE_DOWN = "shared idempotency store is unavailable"


async def soak(options: argparse.Namespace) -> int:
    """N sidecars on one shared store; with several, every job is delivered to two of them at once; retried after
    retryable answers and kills."""
    replicas = max(1, options.replicas)
    store = options.store or ("redis" if replicas > 1 else "local")
    posts = int(os.environ.get("SOAK_POSTS", "2000"))
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "32"))
    kills = int(os.environ.get("SOAK_KILLS", str(3 if replicas == 1 else 2 * replicas)))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    rng = random.Random(seed)
    outcome: dict[tuple[str, int], str] = {}
    calls = collections.Counter()
    refused_store_down = 0
    outage: list[float] = []
    published_after_outage = 0
    started = time.monotonic()
    # With an outage, Redis runs as production should (append-only file, fsync always): stopped and started again it
    # keeps its records. A Redis that loses them (no persistence) forgets which jobs were published.
    redis = RedisServer(persistent=bool(options.redis_outage)) if store == "redis" else None
    shared = {"sharedState": {"url": redis.url}} if redis else {"stateDir": tempfile.mkdtemp(prefix="soak-state-")}

    with FakePlatforms(seed=seed) as fake:
        fake.configure({"whatsapp": {"pair_rate_seconds": 0, "window_open_for_all": True, "throughput_per_second": 100000},
                        "instagram": {"quota_total": 1000000},
                        "youtube": {"insert_calls_per_day": 1000000, "quota_units_per_day": 10**12},
                        "linkedin": {"member_daily_limit": 1000000}})
        platforms = fake.sidecar_config()["platforms"]
        # The fake's YouTube quota is raised above (as a project's can be): the sidecars count nothing ahead of it.
        platforms["youtube"]["dailyQuotaUnits"] = 0
        config = {**fake.sidecar_config(), **shared, "platforms": platforms,
                  # WhatsApp paces sends to one recipient 6 s apart: wait them out rather than answer rate_limited.
                  "retry": {"maxAttempts": 4, "baseDelayMs": 50, "maxDelayMs": 400, "maxWaitMs": 60000},
                  "breaker": {"failureThreshold": 50, "openMs": 2000},
                  "http": {"timeoutMs": 1500}, "limits": {"maxInFlight": 4096}}

        async def resolve(platform, credential_ref, customer_id):
            return CREDENTIALS[platform]

        sidecars = [Sidecar(config=config, resolve_credentials=resolve, on_credentials_updated=lambda update: None,
                            restart_delays=(0.0, 0.2))
                    for _ in range(replicas)]
        for sidecar in sidecars:
            await sidecar.__aenter__()
        fake.script(faults(seed))
        queue: asyncio.Queue = asyncio.Queue()
        for number in range(posts):
            queue.put_nowait((PLATFORMS[number % len(PLATFORMS)], number))

        async def deliver(sidecar: Sidecar, platform: str, params: dict) -> str:
            """One delivery: `published`, `unknown`, `failed:<kind>` (definitive) or `retry`."""
            nonlocal refused_store_down, published_after_outage
            method = getattr(getattr(sidecar, platform), "send" if platform == "whatsapp" else "post")
            calls[platform] += 1
            try:
                await method(**params)
                if len(outage) == 2 and time.monotonic() > outage[1]:
                    published_after_outage += 1
                return "published"
            except OutcomeUnknown:
                return "unknown"
            except SidecarCrashed:
                return "retry"
            except SidecarError as error:
                if STORE_DOWN in str(error):
                    refused_store_down += 1
                return "retry" if error.retryable else f"failed:{error.kind}"

        async def worker() -> None:
            while True:
                try:
                    platform, number = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                params = {"credential_ref": f"CRED-{platform}", "customer_id": "CUST-SOAK",
                          "agent_id": "AGENT-SOAK", "idempotency_key": f"soak-{seed}-{number}",
                          **content(platform, number, fake)}
                # At least once, and with replicas twice at the same time: the job queue hands it to two workers.
                first = rng.sample(range(replicas), min(2, replicas))
                answers = await asyncio.gather(*(deliver(sidecars[index], platform, params) for index in first))
                for attempt in range(60):
                    definitive = [a for a in answers if a != "retry"]
                    if definitive:
                        outcome[(platform, number)] = ("published" if "published" in definitive else
                                                       "unknown" if "unknown" in definitive else definitive[0])
                        break
                    await asyncio.sleep(min(2.0, 0.1 * (attempt + 1)))
                    answers = [await deliver(sidecars[rng.randrange(replicas)], platform, params)]
                else:
                    outcome[(platform, number)] = "gave-up"

        async def killer() -> None:
            for kill in range(kills):
                # With replicas, the first kill comes early, so that even a quick run kills one mid-publish.
                await asyncio.sleep(rng.uniform(3.0, 10.0) if replicas == 1 else
                                    rng.uniform(0.2, 0.8) if kill == 0 else rng.uniform(1.0, 4.0))
                victim = sidecars[rng.randrange(replicas)]
                if victim.pid and len(outcome) < posts:
                    os.kill(victim.pid, signal.SIGKILL)

        async def redis_outage() -> None:
            if not (redis and options.redis_outage):
                return
            start, seconds = (float(x) for x in options.redis_outage.split(":"))
            await asyncio.sleep(start)
            redis.stop()
            outage.append(time.monotonic())
            await asyncio.sleep(seconds)
            redis.start()
            outage.append(time.monotonic())

        background = [asyncio.create_task(killer()), asyncio.create_task(redis_outage())]
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        for task in background:
            task.cancel()
        restarts = sum(sidecar.restarts for sidecar in sidecars)
        for sidecar in sidecars:
            await sidecar.__aexit__(None, None, None)
        fake.script([])
        published = fake.published()
    if redis:
        redis.stop()

    elapsed = time.monotonic() - started
    delivery = "each job delivered to two replicas at once" if replicas > 1 else "each job delivered once"
    print(f"soak: {posts} posts over {len(PLATFORMS)} platforms, {replicas} replica(s) on a {store} store, "
          f"{delivery}, concurrency {concurrency}, {restarts} restarts after SIGKILL, {sum(calls.values())} calls, "
          f"{elapsed:.0f} s")
    if options.redis_outage:
        window = f"{outage[1] - outage[0]:.1f} s" if len(outage) == 2 else "did not happen"
        print(f"  redis outage         {window}: {refused_store_down} keyed publishes refused before sending; "
              f"{published_after_outage} published after it came back")
    status = reconcile(posts, outcome, published)
    gave_up = sum(1 for r in outcome.values() if r == "gave-up")
    if options.redis_outage and (len(outage) < 2 or published_after_outage == 0 or gave_up):
        print("  the service did not resume by itself after the outage")
        return 1
    return status

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
