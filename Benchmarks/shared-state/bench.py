#!/usr/bin/env python3
"""What the shared store costs a publish: keyed facebook/post through the release sidecar against the fake Graph API,
one call at a time (latency) and 32 at a time (throughput), with the idempotency store in memory (the baseline),
in a local state directory, and in Redis on loopback; the stores take turns within each repetition, so they share
the machine's noise. Also counts the store operations per publish (Redis commands from INFO commandstats; journal
lines for the local store). Prints a markdown table; with --summary, appends headline rows there.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(ROOT / "Tests" / "Fakes"))

from fake_platforms import FakePlatforms  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from social_sidecar import Sidecar  # noqa: E402

CREDENTIAL = {"accessToken": "fake-fb-page-token-1", "accountId": "20000001"}


def redis_commands(redis: RedisServer) -> tuple[int, int]:
    """(EVALSHA round trips, commands run counting those inside the scripts); INFO itself is not counted."""
    stats = {line.split(":")[0][len("cmdstat_"):]: int(line.split("calls=")[1].split(",")[0])
             for line in redis.command("INFO", "commandstats").decode().splitlines() if line.startswith("cmdstat_")}
    stats.pop("info", None)
    return stats.get("evalsha", 0) + stats.get("eval", 0), sum(stats.values())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(store: str, fake: FakePlatforms, redis: RedisServer, state: str, posts: int, rep: int) -> dict:
    shared = {"memory": {}, "local": {"stateDir": state}, "redis": {"sharedState": {"url": redis.url}}}[store]

    async def resolve(platform, credential_ref, customer_id):
        return CREDENTIAL

    async with Sidecar(config={**fake.sidecar_config(), **shared, "metrics": {"enabled": False}},
                       resolve_credentials=resolve) as sidecar:
        async def post(key: str) -> float:
            started = time.perf_counter()
            await sidecar.facebook.post(credential_ref="CRED", customer_id="CUST-BENCH", agent_id="AGENT",
                                        text=f"bench {key}", idempotency_key=key)
            return (time.perf_counter() - started) * 1000

        for n in range(20):
            await post(f"{store}-{rep}-warm-{n}")
        before = redis_commands(redis)
        journal = Path(state) / "idempotency.jsonl"
        lines = journal.read_bytes().count(b"\n") if journal.exists() else 0
        latencies = [await post(f"{store}-{rep}-seq-{n}") for n in range(posts)]
        after = redis_commands(redis)
        ops = {"redis": ((after[0] - before[0]) / posts, (after[1] - before[1]) / posts),
               "local": (((journal.read_bytes().count(b"\n") if journal.exists() else 0) - lines) / posts, 0.0),
               "memory": (0.0, 0.0)}[store]
        started = time.perf_counter()
        await asyncio.gather(*(post(f"{store}-{rep}-par-{n}") for n in range(posts)))
        rate = posts / (time.perf_counter() - started)
    return {"latencies": latencies, "ops": ops, "rate": rate}


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--summary")
    options = parser.parse_args()
    stores = ["memory", "local", "redis"]
    results: dict[str, list[dict]] = {store: [] for store in stores}
    with FakePlatforms() as fake, RedisServer() as redis:
        for rep in range(options.reps):
            for store in stores:
                state = tempfile.mkdtemp(prefix="bench-state-")
                results[store].append(await run(store, fake, redis, state, options.posts, rep))
    print(f"keyed facebook/post, {options.posts} posts x {options.reps} runs per store (fake Graph API on loopback)")
    print("| store | p50 ms | p99 ms | added p50 ms | added p99 ms | posts/s @32 | store ops per publish |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = {}
    for store in stores:
        latencies = [x for run in results[store] for x in run["latencies"]]
        rows[store] = (percentile(latencies, 0.5), percentile(latencies, 0.99),
                       statistics.median(run["rate"] for run in results[store]),
                       tuple(statistics.median(run["ops"][i] for run in results[store]) for i in range(2)))
    base = rows["memory"]
    for store in stores:
        p50, p99, rate, ops = rows[store]
        unit = {"memory": "none", "local": f"{ops[0]:.1f} fsynced journal lines",
                "redis": f"{ops[0]:.1f} EVALSHA round trips, {ops[1]:.1f} commands counting those inside scripts"}[store]
        print(f"| {store} | {p50:.2f} | {p99:.2f} | {p50 - base[0]:+.2f} | {p99 - base[1]:+.2f} | {rate:.0f} | {unit} |")
    if options.summary:
        with open(options.summary, "a") as summary:
            for store in ("local", "redis"):
                p50, p99, _, _ = rows[store]
                summary.write(f"| sharedstate | keyed post p50/p99 ms, {store} | {p50:.2f} / {p99:.2f} | "
                              f"memory {base[0]:.2f} / {base[1]:.2f} |\n")


if __name__ == "__main__":
    asyncio.run(main())
