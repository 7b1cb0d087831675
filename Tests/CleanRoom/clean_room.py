"""Drives the clean room's flows (Tests/CleanRoom/run sets the stage): starts the fakes with this python, runs the
Python flow in the virtualenv and the Node flow in the npm project, then the Python flow again with libcurl made
unloadable, and checks what each reports and what reached the fakes. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "Fakes"))

from fake_platforms import FakePlatforms  # noqa: E402

EXPECTED_EVENTS = ["facebook/post:ok", "linkedin/post:ok"]


def run_flow(name: str, command: list[str], config: dict, extra_env: dict[str, str] | None = None) -> dict:
    env = {**os.environ, "CLEAN_ROOM_CONFIG": json.dumps(config), **(extra_env or {})}
    env.pop("SOCIAL_SIDECAR_BIN", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{name}: {json.dumps(report)}")
    return report


def check(name: str, condition: bool, detail: object) -> None:
    if not condition:
        raise SystemExit(f"{name}: FAILED: {detail}")


def check_published(name: str, report: dict, fake: FakePlatforms, before: int) -> None:
    check(name, report["exitCode"] == 0, f"exit code {report['exitCode']} after shutdown")
    check(name, report["events"] == EXPECTED_EVENTS, f"metric events {report['events']}")
    check(name, report["http"]["state"] == "ready", f"http transport {report['http']}")
    published = [p["platform"] for p in fake.published()[before:]]
    check(name, sorted(published) == ["facebook", "linkedin"], f"published on the fakes: {published}")


def libcurl_path() -> str:
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        if line.strip().startswith("libcurl.so.4 ") and "=>" in line:
            return os.path.realpath(line.split("=>")[1].strip())
    raise SystemExit("libcurl.so.4 is not installed, so the flows cannot publish")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", required=True, help="the virtualenv's python, with the wheel installed")
    parser.add_argument("--node-script", required=True, help="flow.js inside the npm project")
    args = parser.parse_args()
    with FakePlatforms() as fake:
        config = fake.sidecar_config()
        report = run_flow("python wheel", [args.python, str(HERE / "flow.py")], config)
        check_published("python wheel", report, fake, 0)

        before = len(fake.published())
        report = run_flow("npm package", ["node", args.node_script], config)
        check_published("npm package", report, fake, before)

        # libcurl present but unloadable (an empty file over it), in a mount namespace of this step's own.
        before = len(fake.requests())
        hide = f'mount --bind /dev/null "{libcurl_path()}" && exec "$0" "$@"'
        report = run_flow(
            "python wheel, no libcurl",
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, args.python, str(HERE / "flow.py"),
             "--no-libcurl"],
            config)
        refused = report["refused"] or {}
        name = "no libcurl"
        check(name, refused.get("kind") == "permanent", f"a post without libcurl ended {report['refused']}")
        check(name, "libcurl4" in refused.get("message", ""), f"message without the install hint: {refused}")
        check(name, report["seconds"] < 1, f"answered after {report['seconds']} s")
        check(name, report["breaker"] == "CLOSED", f"facebook's breaker is {report['breaker']}")
        check(name, report["health"] == "degraded" and report["http"]["state"] == "unavailable", report)
        check(name, len(fake.requests()) == before, "a request reached the fakes")
    print("clean room: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
