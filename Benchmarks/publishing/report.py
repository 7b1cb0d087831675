#!/usr/bin/env python3
"""Tables and PASS/MISS lines for `scripts/bench publishing|memory|metrics` from the driver's JSON lines.

  report.py publishing RUNS.jsonl SUMMARY
  report.py tls RUNS.jsonl SUMMARY
  report.py memory SIDECAR.json AIOHTTP.json UPLOAD.txt SUMMARY
  report.py metrics RUNS.jsonl METRICS_BENCH.txt SUMMARY

Every figure is the median over the interleaved runs of this invocation (the runs themselves are listed too), and
every comparison is against a baseline measured in the same run. Appends the headline rows to SUMMARY (Markdown).
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict

NAMES = {
    "sidecar-curl": "sidecar, curl",
    "sidecar-baseline": "baseline sidecar, curl",
    "sidecar-urlsession": "sidecar, URLSession",
    "httpx": "httpx+tenacity+breaker",
    "aiohttp": "aiohttp",
    "sidecar-validate": "sidecar validate (GET)",
}


def check(name: str, ok: bool, detail: str) -> None:
    print(f"{'PASS' if ok else 'MISS'} {name}  ({detail})")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rates(runs: list[dict]) -> str:
    return "/".join(f"{run['rate']:.0f}" for run in runs)


def load(path: str) -> list[dict]:
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.startswith("{")]


def summary(path: str, rows: list[tuple[str, str, str, str]]) -> None:
    with open(path, "a") as out:
        for row in rows:
            out.write("| " + " | ".join(row) + " |\n")


def group(runs: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[tuple(run.get(key) for key in keys)].append(run)
    return groups


def publishing(runs_path: str, summary_path: str) -> int:
    runs = load(runs_path)
    failed = [run for run in runs if run["errors"]]
    groups = group(runs, "scheme", "concurrency", "stack")
    med: dict[tuple, dict[str, float]] = {}
    print("| conc | stack                   | proto | posts  |  posts/s | runs (posts/s)  | p50 ms | p99 ms "
          "| client CPU µs/post (sidecar+driver) | nginx CPU µs/post | TCP conns | errors |")
    print("| ---: | ---                     | ---   |   ---: |     ---: | ---             |   ---: |   ---: "
          "|                                ---: |              ---: |      ---: |   ---: |")
    order = ["sidecar-curl", "sidecar-baseline", "sidecar-urlsession", "httpx", "aiohttp", "sidecar-validate"]
    for (scheme, conc, stack), items in sorted(groups.items(), key=lambda kv: (kv[0][0] != "http", kv[0][1],
                                                                                order.index(kv[0][2]))):
        m = {key: median([run[key] for run in items]) for key in
             ("rate", "p50_ms", "p99_ms", "client_cpu_us", "sidecar_cpu_us", "driver_cpu_us", "server_cpu_us")}
        m["connections"] = median([run["connections"] for run in items if run["connections"] is not None])
        med[(scheme, conc, stack)] = m
        split = (f"{m['client_cpu_us']:.0f} ({m['sidecar_cpu_us']:.0f}+{m['driver_cpu_us']:.0f})"
                 if stack.startswith("sidecar") else f"{m['client_cpu_us']:.0f}")
        proto = ("h2" if stack.startswith("sidecar-curl") else "h1.1") + "+TLS" if scheme == "https" else "h1.1"
        print(f"| {conc:>4} | {NAMES[stack]:<23} | {proto:<5} | {items[0]['posts']:>6,} | {m['rate']:>8,.0f} | "
              f"{rates(items):<15} | {m['p50_ms']:>6.1f} | {m['p99_ms']:>6.1f} | "
              f"{split:>35} | {m['server_cpu_us']:>17.0f} | {m['connections']:>9,.0f} | "
              f"{sum(run['errors'] for run in items):>6} |")
    print()
    for run in failed:
        print(f"errors: {run['stack']} @{run['concurrency']} {run['scheme']}: {run['errors']} ({run['first_error']})")

    rows = []
    for conc in sorted({key[1] for key in med if key[0] == "http"}):
        side, base = med.get(("http", conc, "sidecar-curl")), med.get(("http", conc, "sidecar-baseline"))
        if side and base:
            # BENCH_BASELINE: the same stack with another binary, interleaved in the same run.
            print(f"@{conc}: this build {side['rate']:,.0f} posts/s, p99 {side['p99_ms']:.1f} ms, "
                  f"{side['sidecar_cpu_us']:.0f} µs sidecar CPU/post; baseline {base['rate']:,.0f} posts/s "
                  f"({side['rate'] / base['rate']:.2f}x), p99 {base['p99_ms']:.1f} ms, {base['sidecar_cpu_us']:.0f} µs")
            rows.append(("publishing", f"posts/s @{conc}, this build vs BENCH_BASELINE", f"{side['rate']:,.0f}",
                         f"{base['rate']:,.0f} ({side['rate'] / base['rate']:.2f}x)"))
    for conc in sorted({key[1] for key in med if key[0] == "http"}):
        side, hx, aio = (med.get(("http", conc, stack)) for stack in ("sidecar-curl", "httpx", "aiohttp"))
        if side and hx and aio:
            print(f"@{conc}: sidecar (curl) {side['rate']:,.0f} posts/s = {side['rate'] / hx['rate']:.2f}x "
                  f"httpx+tenacity, {side['rate'] / aio['rate']:.2f}x aiohttp; p99 {side['p99_ms']:.1f} ms vs "
                  f"{hx['p99_ms']:.1f} / {aio['p99_ms']:.1f} ms")
            rows.append(("publishing", f"posts/s @{conc}, sidecar (curl)", f"{side['rate']:,.0f}",
                         f"httpx {hx['rate']:,.0f} ({side['rate'] / hx['rate']:.2f}x), aiohttp {aio['rate']:,.0f} "
                         f"({side['rate'] / aio['rate']:.2f}x)"))
            rows.append(("publishing", f"p99 ms @{conc}, sidecar (curl)", f"{side['p99_ms']:.1f}",
                         f"httpx {hx['p99_ms']:.1f}, aiohttp {aio['p99_ms']:.1f}"))
    side, hx, aio = (med.get(("http", 64, stack)) for stack in ("sidecar-curl", "httpx", "aiohttp"))
    if side and hx and aio:
        print()
        check("sidecar @64 >= 3x httpx+tenacity posts/s", side["rate"] >= 3 * hx["rate"],
              f"{side['rate'] / hx['rate']:.2f}x")
        check("sidecar @64 >= aiohttp posts/s", side["rate"] >= aio["rate"], f"{side['rate'] / aio['rate']:.2f}x")
        check("sidecar @64 p99 <= httpx and aiohttp p99", side["p99_ms"] <= min(hx["p99_ms"], aio["p99_ms"]),
              f"{side['p99_ms']:.1f} ms vs {hx['p99_ms']:.1f} / {aio['p99_ms']:.1f} ms")
        rows.append(("publishing", "client CPU µs/post @64, sidecar (curl)", f"{side['client_cpu_us']:.0f}",
                     f"httpx {hx['client_cpu_us']:.0f}, aiohttp {aio['client_cpu_us']:.0f}"))
        rows.append(("publishing", "TCP conns per 1,000 posts @64, sidecar (curl)",
                     f"{1000 * side['connections'] / med_posts(groups, ('http', 64, 'sidecar-curl')):.0f}",
                     f"aiohttp {1000 * aio['connections'] / med_posts(groups, ('http', 64, 'aiohttp')):.1f}"))
    summary(summary_path, rows)
    return 1 if failed else 0


def tls(runs_path: str, summary_path: str) -> int:
    """Cold bursts and rotation-heavy runs over TLS, sidecar beside aiohttp, with h2load's figures."""
    runs = load(runs_path)
    h2load = [run for run in runs if run["stack"] == "h2load"]
    bursts = group([run for run in runs if run["stack"] != "h2load" and "total_ms" in run], "stack")
    rotations = group([run for run in runs if run["stack"] != "h2load" and "rate" in run], "rotation", "stack")
    failed = [run for run in runs if run.get("errors") or run.get("succeeded", run.get("posts")) != run.get("posts")]

    print("TLS cold burst: a new client, one warm-up post, then 64 posts at once (each needs a connection of its own; "
          "TCP conns counts the connections that carried them); medians over the runs")
    print("| stack         | runs | total ms | runs (total ms)                  | p50 ms | max ms | TCP conns "
          "| client CPU ms |")
    print("| ---           | ---: |     ---: | ---                              |   ---: |   ---: |      ---: "
          "|          ---: |")
    burst: dict[str, dict[str, float]] = {}
    for (stack,), items in sorted(bursts.items(), key=lambda kv: kv[0][0] != "sidecar-curl"):
        m = burst[stack] = {key: median([run[key] for run in items])
                            for key in ("total_ms", "p50_ms", "max_ms", "client_cpu_ms")}
        connections = median([run["connections"] for run in items if run["connections"] is not None])
        totals = "/".join(f"{run['total_ms']:.0f}" for run in items)
        print(f"| {NAMES[stack]:<13} | {len(items):>4} | {m['total_ms']:>8.1f} | {totals:<32} | {m['p50_ms']:>6.1f} | "
              f"{m['max_ms']:>6.1f} | {connections:>9.0f} | {m['client_cpu_ms']:>13.1f} |")
    for run in (run for run in h2load if run["kind"] == "burst"):
        print(f"| {'h2load':<13} | {1:>4} | {run['total_ms']:>8.1f} | {'':<32} | {'':>6} | {'':>6} | {run['posts']:>9} | "
              f"{'':>13} |")
    print()
    print("TLS with the server closing each connection after N requests (keepalive_requests), concurrency 64")
    print("| N     | stack                   | posts  |  posts/s | runs (posts/s)  | p50 ms | p99 ms | TCP conns "
          "| client CPU µs/post |")
    print("| ---:  | ---                     |   ---: |     ---: | ---             |   ---: |   ---: |      ---: "
          "|               ---: |")
    rotation: dict[tuple, dict[str, float]] = {}
    for (every, stack), items in sorted(rotations.items(), key=lambda kv: (kv[0][0], kv[0][1] != "sidecar-curl")):
        m = rotation[(every, stack)] = {key: median([run[key] for run in items])
                                        for key in ("rate", "p50_ms", "p99_ms", "client_cpu_us")}
        connections = median([run["connections"] for run in items if run["connections"] is not None])
        print(f"| {every:>5} | {NAMES[stack]:<23} | {items[0]['posts']:>6,} | {m['rate']:>8,.0f} | {rates(items):<15} | "
              f"{m['p50_ms']:>6.1f} | {m['p99_ms']:>6.1f} | {connections:>9,.0f} | {m['client_cpu_us']:>18.0f} |")
        if stack == "aiohttp":
            for run in (run for run in h2load if run["kind"] == "post" and run["rotation"] == every):
                print(f"| {every:>5} | {'h2load, HTTP/1.1':<23} | {run['posts']:>6,} | {run['rate']:>8,.0f} | {'':<15} | "
                      f"{'':>6} | {'':>6} | {'':>9} | {'':>18} |")
    for run in (run for run in h2load if run["kind"] == "post" and run["rotation"] == 0):
        print(f"| {'never':>5} | {'h2load, HTTP/2':<23} | {run['posts']:>6,} | {run['rate']:>8,.0f} | {'':<15} | "
              f"{'':>6} | {'':>6} | {'':>9} | {'':>18} |")
    print()
    for run in failed:
        print(f"errors: {run['stack']} {run}")

    rows = []
    side, aio = burst.get("sidecar-curl"), burst.get("aiohttp")
    if side and aio:
        check("TLS cold burst of 64: sidecar total <= 1.5x aiohttp", side["total_ms"] <= 1.5 * aio["total_ms"],
              f"{side['total_ms']:.0f} ms vs {aio['total_ms']:.0f} ms, {side['total_ms'] / aio['total_ms']:.2f}x")
        rows.append(("publishing", "TLS cold burst of 64, total ms, sidecar (curl)", f"{side['total_ms']:.0f}",
                     f"aiohttp {aio['total_ms']:.0f} ({side['total_ms'] / aio['total_ms']:.2f}x)"))
    for every, target in ((1000, 1.5), (100, 1.0)):
        side, aio = rotation.get((every, "sidecar-curl")), rotation.get((every, "aiohttp"))
        if not (side and aio):
            continue
        check(f"TLS, connections closed every {every:,} requests: sidecar posts/s >= {target}x aiohttp",
              side["rate"] >= target * aio["rate"], f"{side['rate'] / aio['rate']:.2f}x")
        if every == 1000:
            check(f"TLS, connections closed every {every:,} requests: sidecar p99 <= aiohttp p99",
                  side["p99_ms"] <= aio["p99_ms"], f"{side['p99_ms']:.1f} ms vs {aio['p99_ms']:.1f} ms")
        rows.append(("publishing", f"TLS posts/s, connections closed every {every:,}, sidecar (curl)",
                     f"{side['rate']:,.0f}", f"aiohttp {aio['rate']:,.0f} ({side['rate'] / aio['rate']:.2f}x); "
                     f"p99 {side['p99_ms']:.1f} vs {aio['p99_ms']:.1f} ms"))
    summary(summary_path, rows)
    return 1 if failed else 0


def med_posts(groups: dict, key: tuple) -> float:
    return median([run["posts"] for run in groups[key]])


def memory(sidecar_path: str, aiohttp_path: str, upload_path: str, summary_path: str) -> int:
    side = load(sidecar_path)[0]
    aio = load(aiohttp_path)[0] if aiohttp_path != "-" else None
    growth = side["peak_mb"] - side["idle_warm_mb"]
    print("| what | RSS MB | baseline (same run) |")
    print("| --- | ---: | --- |")
    print(f"| sidecar, idle after initialize (no transport loaded yet) | {side['idle_init_mb']:.1f} | |")
    print(f"| sidecar, idle after one post (transport loaded) | {side['idle_warm_mb']:.1f} | |")
    print(f"| sidecar, peak with {side['calls']:,} posts in flight | {side['peak_mb']:.1f} | "
          f"+{growth:.1f} MB over idle = {growth * 1024 / side['calls']:.1f} KB per call |")
    if aio:
        agrowth = aio["peak_mb"] - aio["idle_mb"]
        print(f"| aiohttp in-process, peak with the same {aio['calls']:,} calls | {aio['peak_mb']:.1f} | "
              f"+{agrowth:.1f} MB over its idle {aio['idle_mb']:.1f} = {agrowth * 1024 / aio['calls']:.1f} KB per call |")
    print()
    print(f"{side['calls']:,} posts: {side['errors']} errors, at most {side['most_in_flight']:,} in flight (health), "
          f"all answered in {side['elapsed']:.1f} s (p50 {side['p50_ms'] / 1000:.1f} s); RSS after {side['after_mb']:.1f} MB")
    if side["errors"]:
        print(f"first error: {side['first_error']}")
    if aio and aio["errors"]:
        print(f"aiohttp errors: {aio['errors']} ({aio['first_error']})")
    upload = open(upload_path).read() if upload_path != "-" else ""
    upload_growth = re.search(r"peak growth\s+([0-9.]+) MB", upload)
    upload_idle = re.search(r"idle RSS\s+([0-9.]+) MB", upload)
    upload_size = re.search(r"video\s+(\d+) MiB", upload)
    if upload:
        print()
        print("upload (scripts/bench-upload):")
        print("\n".join("  " + line for line in upload.strip().splitlines()))
    print()
    check(f"{side['calls']:,} slow posts all complete without error", side["errors"] == 0,
          f"{side['errors']} errors, most in flight {side['most_in_flight']:,}")
    check(f"RSS with {side['calls']:,} in flight < 200 MB", side["peak_mb"] < 200, f"{side['peak_mb']:.1f} MB")
    rows = [("memory", "idle RSS MB after initialize", f"{side['idle_init_mb']:.1f}",
             f"after one post {side['idle_warm_mb']:.1f}"),
            ("memory", f"peak RSS MB, {side['calls']:,} posts in flight", f"{side['peak_mb']:.1f}",
             f"idle {side['idle_warm_mb']:.1f}; target < 200; errors {side['errors']}")]
    if aio:
        rows.append(("memory", f"RSS growth KB per in-flight call", f"{growth * 1024 / side['calls']:.1f}",
                     f"aiohttp {(aio['peak_mb'] - aio['idle_mb']) * 1024 / aio['calls']:.1f}"))
    if upload_growth and upload_idle:
        rows.append(("memory", f"RSS growth MB, {upload_size.group(1) if upload_size else '?'} MiB video upload",
                     upload_growth.group(1), f"idle {upload_idle.group(1)}; target < 64"))
    summary(summary_path, rows)
    return 1 if side["errors"] else 0


def metrics(runs_path: str, bench_path: str, summary_path: str) -> int:
    runs = load(runs_path)
    on = [run for run in runs if run["metrics"]]
    off = [run for run in runs if not run["metrics"]]
    keys = ("rate", "p50_ms", "p99_ms", "client_cpu_us", "sidecar_cpu_us", "driver_cpu_us")
    m_on = {key: median([run[key] for run in on]) for key in keys}
    m_off = {key: median([run[key] for run in off]) for key in keys}
    print("| metrics.enabled | posts  | posts/s | runs (posts/s)      | wall µs/post | sidecar CPU µs/post | "
          "driver CPU µs/post | p99 ms |")
    print("| ---             |   ---: |    ---: | ---                 |         ---: |                ---: | "
          "              ---: |   ---: |")
    for name, items, m in (("true", on, m_on), ("false (baseline)", off, m_off)):
        print(f"| {name:<15} | {items[0]['posts']:>6,} | {m['rate']:>7,.0f} | "
              f"{rates(items):<19} | {1e6 / m['rate']:>12.1f} | "
              f"{m['sidecar_cpu_us']:>19.1f} | {m['driver_cpu_us']:>18.1f} | {m['p99_ms']:>6.1f} |")
    wall = 1e6 / m_on["rate"] - 1e6 / m_off["rate"]
    side = m_on["sidecar_cpu_us"] - m_off["sidecar_cpu_us"]
    driver = m_on["driver_cpu_us"] - m_off["driver_cpu_us"]
    noise = statistics.pstdev([run["sidecar_cpu_us"] for run in off]) if len(off) > 1 else float("nan")
    print()
    print(f"difference (on - off): wall {wall:+.1f} µs/post, sidecar CPU {side:+.1f} µs/post, Python client CPU "
          f"{driver:+.1f} µs/post (it decodes one metrics/event per call); run-to-run spread of sidecar CPU with "
          f"metrics off: ±{noise:.1f} µs/post")
    bench = open(bench_path).read() if bench_path != "-" else ""
    cost = re.search(r"=> metrics cost per event.*?\n(?:.*\n)*?\s+newEventId\(\) \+ record \+ serializedJSON\(\)\s+"
                     r"([0-9.]+) ns", bench)
    if bench:
        print()
        print("in-process cost (scripts/bench-metrics, thread CPU, median of 7 rounds):")
        print("\n".join("  " + line for line in bench.strip().splitlines()))
    print()
    if cost:
        ns = float(cost.group(1))
        check("in-process metrics cost < 5 µs per call", ns < 5000, f"{ns / 1000:.2f} µs")
    name = "end-to-end sidecar CPU difference < 5 µs per call"
    if side >= 5 and side <= noise:
        print(f"NOISE {name}  ({side:+.1f} µs, within the run-to-run spread of ±{noise:.1f} µs)")
    else:
        check(name, side < 5, f"{side:+.1f} µs ± {noise:.1f} µs")
    rows = [("metrics", "sidecar CPU µs/post, metrics on", f"{m_on['sidecar_cpu_us']:.1f}",
             f"off {m_off['sidecar_cpu_us']:.1f} (diff {side:+.1f}, spread ±{noise:.1f})")]
    if cost:
        rows.append(("metrics", "in-process µs per event (id+record+JSON)", f"{float(cost.group(1)) / 1000:.2f}",
                     "baseline: build the event only; target < 5"))
    summary(summary_path, rows)
    return 0


def main() -> int:
    mode, *paths = sys.argv[1:]
    return {"publishing": publishing, "tls": tls, "memory": memory, "metrics": metrics}[mode](*paths)


if __name__ == "__main__":
    sys.exit(main())
