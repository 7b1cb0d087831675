#!/usr/bin/env bash
# Checks the operator kit with promtool: the alerting rules (syntax, then alerts.test.yml's synthetic series) and
# every query of the Grafana dashboard (wrapped as recording rules, so promtool parses each one).
set -euo pipefail
cd "$(dirname "$0")"
promtool check rules alerts.yml
promtool test rules alerts.test.yml
queries=$(mktemp --suffix=.yml)
trap 'rm -f "$queries"' EXIT
python3 - grafana-dashboard.json >"$queries" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
print("groups:\n  - name: grafana-dashboard-queries\n    rules:")
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        expr = target["expr"].replace("$__rate_interval", "5m")
        print(f"      - record: dashboard:panel{panel['id']}:{target['refId']}\n        expr: {json.dumps(expr)}")
PY
promtool check rules "$queries" | sed "s|$queries|grafana-dashboard.json queries|"
