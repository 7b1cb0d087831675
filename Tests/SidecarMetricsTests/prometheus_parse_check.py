#!/usr/bin/env python3
"""Validate Prometheus text exposition (format 0.0.4) read from stdin with the official Python client's parser.

Usage: prometheus_parse_check.py [EXPECTED_SAMPLE ...] < exposition.txt

Each EXPECTED_SAMPLE is one exposition line, e.g.
    'social_sidecar_operations_total{platform="youtube",operation="post",outcome="success"} 3'
and must match a parsed sample exactly (name, all labels, value). Labels in it are escaped as in the format.

Beyond parsing, checks what the lax parser lets through: every family has HELP and TYPE (counter, gauge or
histogram) and appears once; counter samples end in _total and are finite and >= 0; each histogram series has
cumulative, monotone buckets ending in le="+Inf", with +Inf equal to _count, and a _sum.

Exit status: 0 valid; 1 invalid or an expected sample missing; 2 prometheus_client is not installed (this check
never passes without the real parser: `pip install prometheus-client`).
"""

import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as error:
    print(f"prometheus_parse_check: cannot import prometheus_client ({error}); "
          "install it with `pip install prometheus-client`", file=sys.stderr)
    sys.exit(2)


def parse(text):
    """Every family, fully parsed (the parser is a generator: errors surface while iterating)."""
    return list(text_string_to_metric_families(text))


def check_histogram(family, problems):
    series = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if sample.name == family.name + "_bucket":
            entry["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name == family.name + "_count":
            entry["count"] = sample.value
        elif sample.name == family.name + "_sum":
            entry["sum"] = sample.value
    for key, entry in series.items():
        where = f"{family.name}{dict(key)}"
        bounds = [le for le, _ in entry["buckets"]]
        counts = [value for _, value in entry["buckets"]]
        if not bounds or bounds[-1] != math.inf:
            problems.append(f"{where}: no le=\"+Inf\" bucket last")
        if bounds != sorted(set(bounds)):
            problems.append(f"{where}: le bounds not strictly increasing: {bounds}")
        if any(later < earlier for earlier, later in zip(counts, counts[1:])):
            problems.append(f"{where}: buckets not cumulative: {counts}")
        if entry["count"] is None or entry["sum"] is None:
            problems.append(f"{where}: missing _count or _sum")
        elif counts and counts[-1] != entry["count"]:
            problems.append(f"{where}: +Inf bucket {counts[-1]} != _count {entry['count']}")


def check(text, expected_lines):
    problems = []
    if not text.endswith("\n"):
        problems.append("text does not end with a newline")
    try:
        families = parse(text)
    except Exception as error:  # the parser raises ValueError and friends on malformed lines
        return [f"parser rejected the text: {error!r}"], 0
    if not families:
        problems.append("no metric families")
    seen = set()
    for family in families:
        if family.name in seen:
            problems.append(f"{family.name}: family appears more than once (or a sample strayed outside it)")
        seen.add(family.name)
        if family.type not in ("counter", "gauge", "histogram"):
            problems.append(f"{family.name}: no usable TYPE (parsed as {family.type})")
        if not family.documentation:
            problems.append(f"{family.name}: no HELP")
        for sample in family.samples:
            if not math.isfinite(sample.value) and family.type != "histogram":
                problems.append(f"{sample.name}{sample.labels}: value {sample.value}")
            if family.type == "counter" and (not sample.name.endswith("_total") or sample.value < 0):
                problems.append(f"{sample.name}{sample.labels}: counter sample must end in _total and be >= 0")
        if family.type == "histogram":
            check_histogram(family, problems)

    samples = [s for family in families for s in family.samples]
    for line in expected_lines:
        try:
            [wanted] = [s for family in parse(line + "\n") for s in family.samples]
        except Exception as error:
            problems.append(f"expected sample {line!r} is not an exposition line: {error!r}")
            continue
        matches = [s for s in samples if s.name == wanted.name and s.labels == wanted.labels]
        if not matches:
            problems.append(f"expected sample missing: {line}")
        elif matches[0].value != wanted.value:
            problems.append(f"{line}: got {matches[0].value}")
    return problems, len(families)


def main():
    text = sys.stdin.buffer.read().decode("utf-8")
    problems, family_count = check(text, sys.argv[1:])
    if problems:
        for problem in problems:
            print(f"prometheus_parse_check: {problem}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {family_count} families, {len(sys.argv) - 1} expected samples matched")


if __name__ == "__main__":
    main()
