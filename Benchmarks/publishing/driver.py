#!/usr/bin/env python3
"""Publishing benchmark driver for `scripts/bench publishing|memory|metrics`: one run, one JSON line on stdout.

  driver.py post --stack STACK --url BASE --concurrency N --posts M [--server-pid PID] [--access-log FILE]
  driver.py burst --stack STACK --url BASE --ca BUNDLE --posts 64 [--access-log FILE]
  driver.py memory --url BASE --calls N [--transport curl]

Stacks (every one does what `facebook/post` with `text` does on the wire: `POST {base}/v26.0/{page}/feed?fields=
id,permalink_url`, a form body with `message`, `Authorization: Bearer`, and reads the post id from the JSON answer):

- `sidecar-curl`, `sidecar-urlsession`: the release sidecar through the Python client (`clients/python`), with its
  default retry (5 attempts, 1-16 s backoff) and circuit breaker; `--no-metrics` sets `metrics.enabled` false.
  `sidecar-baseline` is `sidecar-curl` run with another `--binary` (BENCH_BASELINE), for before/after in one run.
- `httpx`: in-process httpx with tenacity (5 attempts, exponential backoff 1-16 s, transient errors only) and a small
  circuit breaker (5 consecutive transient failures open it for 60 s): the stack the sidecar replaces.
- `aiohttp`: in-process aiohttp, one ClientSession whose connector limit is the concurrency.
- `sidecar-validate`: `facebook/validate` (two GETs) through the sidecar, to show connection reuse for reads.

`burst` is a cold burst: a new sidecar (or aiohttp session), one warm-up post, then `--posts` posts at once, each of
which needs a connection of its own: total time and per-post latencies.

Latency is measured around each awaited call in this process, i.e. what the backend sees. CPU comes from
`time.process_time()` (this process, every thread), `/proc/PID/stat` (the sidecar, the server). Connections are the
distinct nginx `$connection` numbers in the access-log lines written during the measured window.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))

PAGE = "20000001"
TOKEN = "bench-token"
TEXT = "Benchmark post"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), 0 when there is none."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class Window:
    """Counters at the start of the measured window, and their differences at its end."""

    def __init__(self, sidecar_pid: int | None, server_pids: list[int], access_log: str | None) -> None:
        self.sidecar_pid, self.server_pids, self.access_log = sidecar_pid, server_pids, access_log
        self.log_offset = os.path.getsize(access_log) if access_log else 0
        self.started = time.perf_counter()
        self.driver_cpu = time.process_time()
        self.sidecar_cpu = cpu_seconds(sidecar_pid)
        self.server_cpu = sum(cpu_seconds(pid) for pid in server_pids)

    def close(self) -> dict[str, Any]:
        result = {
            "elapsed": time.perf_counter() - self.started,
            "driver_cpu": time.process_time() - self.driver_cpu,
            "sidecar_cpu": cpu_seconds(self.sidecar_pid) - self.sidecar_cpu,
            "server_cpu": sum(cpu_seconds(pid) for pid in self.server_pids) - self.server_cpu,
            "connections": None,
        }
        if self.access_log:
            with open(self.access_log, "rb") as log:
                log.seek(self.log_offset)
                result["connections"] = len({line.split(b" ", 1)[0] for line in log.read().splitlines() if line})
        return result


async def drive(call: Callable[[], Awaitable[str]], concurrency: int, count: int) -> tuple[list[float], int, str]:
    """`count` calls from `concurrency` workers; returns sorted latencies (s), errors and the first error."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    remaining = count
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal remaining, errors, first_error
        while remaining > 0:
            remaining -= 1
            started = clock()
            try:
                post_id = await call()
                if not post_id.startswith(PAGE + "_"):
                    raise ValueError(f"unexpected post id {post_id!r}")
            except Exception as error:  # counted and reported: a benchmark must finish
                errors += 1
                first_error = first_error or f"{type(error).__name__}: {error}"[:300]
            latencies.append(clock() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return latencies, errors, first_error


def feed_url(base: str) -> str:
    return f"{base}/v26.0/{PAGE}/feed"


def client_ssl(ca: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=ca) if ca else None


# MARK: - Stacks


class Transient(Exception):
    """A failure worth retrying: 5xx, a Graph transient code, a connection error."""


class OpenCircuit(Exception):
    pass


class Breaker:
    """CLOSED -> OPEN after `threshold` consecutive transient failures; OPEN refuses for `open_s`; then one probe."""

    def __init__(self, threshold: int = 5, open_s: float = 60.0) -> None:
        self.threshold, self.open_s = threshold, open_s
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False

    def before(self) -> None:
        if self.opened_at is None:
            return
        if time.monotonic() - self.opened_at < self.open_s or self.probing:
            raise OpenCircuit("circuit open")
        self.probing = True

    def success(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        self.probing = False
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()


async def httpx_stack(base: str, concurrency: int, ca: str | None):
    import httpx
    import tenacity

    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=httpx.Timeout(30.0, connect=10.0), verify=client_ssl(ca) or True)
    breaker = Breaker()
    url = feed_url(base)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    @tenacity.retry(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_exponential(multiplier=1, min=1, max=16),
                    retry=tenacity.retry_if_exception_type(Transient), reraise=True)
    async def attempt() -> str:
        breaker.before()
        try:
            response = await client.post(url, params={"fields": "id,permalink_url"}, data={"message": TEXT},
                                         headers=headers)
        except httpx.TransportError as error:
            breaker.failure()
            raise Transient(str(error)) from error
        if response.status_code >= 500 or response.status_code == 429:
            breaker.failure()
            raise Transient(f"HTTP {response.status_code}")
        breaker.success()
        response.raise_for_status()
        return response.json()["id"]

    return attempt, client.aclose


async def aiohttp_stack(base: str, concurrency: int, ca: str | None, timeout: float = 30.0):
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, ssl=client_ssl(ca) or True),
                                    timeout=aiohttp.ClientTimeout(total=timeout))
    url = feed_url(base)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def post() -> str:
        async with session.post(url, params={"fields": "id,permalink_url"}, data={"message": TEXT},
                                headers=headers) as response:
            response.raise_for_status()
            return (await response.json())["id"]

    return post, session.close


def sidecar_config(args: argparse.Namespace, transport: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "platforms": {"facebook": {"baseUrl": args.url}},
        "http": {"transport": transport, "timeoutMs": args.timeout_ms},
        "limits": {"maxInFlight": max(4096, args.max_in_flight)},
        "metrics": {"enabled": not args.no_metrics},
    }
    if args.ca:
        config["http"]["caBundle"] = args.ca
    return config


def sidecar_client(args: argparse.Namespace, config: dict[str, Any]):
    from social_sidecar import Sidecar

    def resolve(*, platform: str, credential_ref: str, customer_id: str) -> dict[str, str]:
        return {"accessToken": TOKEN, "accountId": PAGE}

    return Sidecar(config=config, resolve_credentials=resolve, binary=args.binary,
                   args=["--log-level", "warn"], timeout=None)


async def open_stack(args: argparse.Namespace) -> tuple[Callable[[], Awaitable[str]], Callable[[], Awaitable[Any]], Any]:
    """The stack's post call, how to close it, and the sidecar (None for the in-process stacks)."""
    stack = args.stack
    sidecar = None
    if stack.startswith("sidecar"):
        transport = "urlsession" if stack == "sidecar-urlsession" else "curl"
        sidecar = sidecar_client(args, sidecar_config(args, transport))
        await sidecar.start()
        common = {"credential_ref": "CRED-fb-bench", "customer_id": "CUST-bench"}
        if stack == "sidecar-validate":
            async def call() -> str:
                result = await sidecar.facebook.validate(**common)
                return f"{result.account_id}_validated" if result.valid else f"invalid: {result.problems}"
        else:
            async def call() -> str:
                return (await sidecar.facebook.post(agent_id="AGENT-bench", text=TEXT, **common)).post_id or ""
        return call, sidecar.close, sidecar
    if stack == "httpx":
        call, close = await httpx_stack(args.url, args.concurrency, args.ca)
    elif stack == "aiohttp":
        call, close = await aiohttp_stack(args.url, args.concurrency, args.ca)
    else:
        raise SystemExit(f"unknown stack {stack}")
    return call, close, None


async def run_post(args: argparse.Namespace) -> dict[str, Any]:
    call, close, sidecar = await open_stack(args)
    try:
        # Warm-up: loads the transport, fills connection pools, resolves and caches the credential.
        await drive(call, args.concurrency, max(args.concurrency, args.posts // 10))
        window = Window(sidecar.pid if sidecar else None, args.server_pid, args.access_log)
        latencies, errors, first_error = await drive(call, args.concurrency, args.posts)
        measured = window.close()
        rss = status_kb(sidecar.pid, "VmRSS") if sidecar else status_kb(os.getpid(), "VmRSS")
    finally:
        await close()
    posts = len(latencies)
    return {
        "stack": args.stack, "rotation": args.rotation, "concurrency": args.concurrency, "posts": posts, "errors": errors, "first_error": first_error,
        "rate": posts / measured["elapsed"], "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "client_cpu_us": (measured["driver_cpu"] + measured["sidecar_cpu"]) / posts * 1e6,
        "driver_cpu_us": measured["driver_cpu"] / posts * 1e6, "sidecar_cpu_us": measured["sidecar_cpu"] / posts * 1e6,
        "server_cpu_us": measured["server_cpu"] / posts * 1e6, "connections": measured["connections"],
        "rss_mb": rss / 1024, "metrics": not args.no_metrics, "scheme": args.url.split(":", 1)[0],
    }


async def run_burst(args: argparse.Namespace) -> dict[str, Any]:
    """One warm-up post (loads the transport and the CA bundle, resolves the credential), then `posts` at once."""
    args.concurrency = args.posts
    call, close, sidecar = await open_stack(args)
    try:
        await call()
        window = Window(sidecar.pid if sidecar else None, args.server_pid, args.access_log)
        latencies, errors, first_error = await drive(call, args.posts, args.posts)
        measured = window.close()
    finally:
        await close()
    return {
        "stack": args.stack, "posts": len(latencies), "errors": errors, "first_error": first_error,
        "total_ms": measured["elapsed"] * 1e3, "p50_ms": percentile(latencies, 0.5) * 1e3,
        "max_ms": latencies[-1] * 1e3 if latencies else float("nan"), "connections": measured["connections"],
        "client_cpu_ms": (measured["driver_cpu"] + measured["sidecar_cpu"]) * 1e3,
    }


# MARK: - Memory


async def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Idle RSS after initialize, then `calls` posts at once against a slow endpoint, with RSS sampled meanwhile."""
    args.max_in_flight = max(args.max_in_flight, args.calls + 100)
    sidecar = sidecar_client(args, sidecar_config(args, args.transport))
    await sidecar.start()
    pid = sidecar.pid
    assert pid is not None
    await asyncio.sleep(0.3)
    idle_init = status_kb(pid, "VmRSS")
    common = {"credential_ref": "CRED-fb-bench", "customer_id": "CUST-bench", "agent_id": "AGENT-bench"}
    await sidecar.facebook.post(text=TEXT, **common)  # loads the transport: the baseline for the growth below
    await asyncio.sleep(0.3)
    idle_warm = status_kb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS

    peak_sampled = idle_warm
    most_in_flight = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak_sampled, most_in_flight
        while not stop.is_set():
            peak_sampled = max(peak_sampled, status_kb(pid, "VmRSS"))
            try:
                health = await sidecar.health(timeout=5)
                most_in_flight = max(most_in_flight, health.in_flight or 0)
            except Exception:
                pass
            await asyncio.sleep(0.1)

    async def post() -> str:
        return (await sidecar.facebook.post(text=TEXT, **common)).post_id or ""

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    latencies, errors, first_error = await drive(post, args.calls, args.calls)
    elapsed = time.perf_counter() - started
    stop.set()
    await sampler
    hwm = status_kb(pid, "VmHWM")
    after = status_kb(pid, "VmRSS")
    await sidecar.close()
    return {
        "calls": args.calls, "errors": errors, "first_error": first_error, "elapsed": elapsed,
        "idle_init_mb": idle_init / 1024, "idle_warm_mb": idle_warm / 1024,
        "peak_mb": max(hwm, peak_sampled) / 1024, "after_mb": after / 1024, "most_in_flight": most_in_flight,
        "p50_ms": percentile(latencies, 0.5) * 1e3, "max_ms": latencies[-1] * 1e3 if latencies else 0.0,
    }


async def run_memory_aiohttp(args: argparse.Namespace) -> dict[str, Any]:
    """The same calls from in-process aiohttp (the baseline): this process's RSS before and while they wait."""
    call, close = await aiohttp_stack(args.url, args.connections, None, timeout=args.timeout_ms / 1000)
    await call()
    idle = status_kb(os.getpid(), "VmRSS")
    peak = idle
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, status_kb(os.getpid(), "VmRSS"))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    latencies, errors, first_error = await drive(call, args.calls, args.calls)
    elapsed = time.perf_counter() - started
    stop.set()
    await sampler
    await close()
    return {"calls": args.calls, "errors": errors, "first_error": first_error, "elapsed": elapsed,
            "idle_mb": idle / 1024, "peak_mb": max(peak, status_kb(os.getpid(), "VmHWM")) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["post", "burst", "memory", "memory-aiohttp"])
    parser.add_argument("--stack", default="sidecar-curl")
    parser.add_argument("--url", required=True, help="the Graph base URL (http://127.0.0.1:PORT)")
    parser.add_argument("--ca", help="CA bundle for https URLs")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=1024, help="memory-aiohttp: connector limit")
    parser.add_argument("--transport", default="curl")
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--timeout-ms", type=int, default=30000)
    parser.add_argument("--max-in-flight", type=int, default=4096)
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--access-log")
    parser.add_argument("--rotation", type=int, help="recorded with the run: the server closes a connection after "
                        "this many requests")
    parser.add_argument("--binary", default=str(ROOT / ".build/release/social-sidecar"))
    args = parser.parse_args()
    runner = {"post": run_post, "burst": run_burst, "memory": run_memory, "memory-aiohttp": run_memory_aiohttp}[args.mode]
    print(json.dumps(asyncio.run(runner(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
