"""One real flow through the installed wheel's bundled binary, run by the clean room's virtualenv python.

Publishes on Facebook and LinkedIn (fakes from $CLEAN_ROOM_CONFIG), waits for their metric events, shuts down
cleanly, and prints one JSON line for clean_room.py. With --no-libcurl (libcurl made unloadable by the caller), checks
instead that a post is refused at once with the install hint and that the breaker stays closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import social_sidecar
from social_sidecar import PermanentError, Sidecar, find_binary

CREDENTIALS = {
    "CRED-fb-001": {"accessToken": "fake-fb-page-token-1", "accountId": "20000001"},
    "CRED-li-001": {"accessToken": "fake-li-access-token-1", "accountId": "urn:li:organization:40000001"},
}
COMMON = {"customer_id": "CUST-CLEAN", "agent_id": "AGENT-CLEAN"}


async def resolve(platform: str, credential_ref: str, customer_id: str) -> dict:
    return CREDENTIALS[credential_ref]


async def flow(config: dict) -> dict:
    events: list = []
    sidecar = Sidecar(config=config, resolve_credentials=resolve, on_event=events.append)
    async with sidecar:
        facebook = await sidecar.facebook.post(credential_ref="CRED-fb-001", text="From the clean room", **COMMON)
        linkedin = await sidecar.linkedin.post(credential_ref="CRED-li-001", text="From the clean room", **COMMON)
        for _ in range(100):
            if len(events) >= 2:
                break
            await asyncio.sleep(0.02)
        health = await sidecar.health()
    return {
        "facebook": facebook.post_id, "linkedin": linkedin.post_id,
        "events": sorted(f"{e.platform}/{e.operation}:{'ok' if e.success else 'failed'}" for e in events),
        "http": health.raw.get("http"), "exitCode": sidecar.last_exit_code,
    }


async def without_libcurl(config: dict) -> dict:
    sidecar = Sidecar(config=config, resolve_credentials=resolve)
    async with sidecar:
        started = time.monotonic()
        try:
            await sidecar.facebook.post(credential_ref="CRED-fb-001", text="No libcurl here", **COMMON)
            refused = None
        except PermanentError as error:
            refused = {"kind": error.kind, "message": error.message, "attempts": error.attempts}
        seconds = time.monotonic() - started
        breakers = await sidecar.breaker_status()
        health = await sidecar.health()
    return {
        "refused": refused, "seconds": round(seconds, 3), "breaker": breakers.raw["platforms"]["facebook"]["state"],
        "health": health.status, "http": health.raw.get("http"), "exitCode": sidecar.last_exit_code,
    }


def main() -> int:
    binary = find_binary()
    package = Path(social_sidecar.__file__).resolve().parent
    # The wheel's own binary, not a checkout's build or $SOCIAL_SIDECAR_BIN.
    assert binary.resolve().is_relative_to(package), f"{binary} is not the bundled binary under {package}"
    config = json.loads(os.environ["CLEAN_ROOM_CONFIG"])
    run = without_libcurl if "--no-libcurl" in sys.argv else flow
    print(json.dumps({"binary": str(binary), **asyncio.run(run(config))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
