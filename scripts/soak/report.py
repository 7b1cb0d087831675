"""Turns the JSON lines of scripts/soak-transport into a Markdown table."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| transport | protocol | phase | requests | conc | req/s | p50 ms | p99 ms | CPU µs/req | errors | connections | RSS idle→1k→end MB | idle CPU % |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |")
for r in rows:
    if "idle_cpu_percent" in r:
        print(f"| {r['transport']} | {r['protocol']} | idle wait 3 s | {r['concurrency']} | {r['concurrency']} | | | | | | {r.get('connections', '')} | | {r['idle_cpu_percent']:.1f} |")
        continue
    errors = str(r["errors"])
    if r["errors"]:
        errors += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(r["error_kinds"].items())) + ")"
    print(
        f"| {r['transport']} | {r['protocol']} | {r['phase']} | {r['requests']} | {r['concurrency']} | {r['rps']:.0f} "
        f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['cpu_us_per_request']:.0f} | {errors} | {r.get('connections', '')} "
        f"| {r['rss_before_mb']:.0f}→{r.get('rss_after_1k_mb', 0):.0f}→{r['rss_after_mb']:.0f} | |"
    )

# What each kind of error said, once, under the table.
for r in rows:
    for kind, message in sorted(r.get("first_errors", {}).items()):
        print(f"\n{r['transport']} {r['protocol']} {r['phase']}, first {kind} error: {message}", end="")
if any(r.get("first_errors") for r in rows):
    print()
