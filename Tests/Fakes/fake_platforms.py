#!/usr/bin/env python3
"""Fake Meta Graph, YouTube/Google OAuth and LinkedIn APIs on one port, for SocialSidecar tests.

As a module:  from fake_platforms import FakePlatforms
              with FakePlatforms() as fake: ...  (see README.md)
As a CLI:     python3 Tests/Fakes/fake_platforms.py --port 0
              prints {"port": N, "baseUrl": "..."} on one line when ready; serves until SIGTERM,
              SIGINT, or (when stdin is a pipe) stdin closing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import stat
import sys
import threading

from fakeapi import FakePlatforms, media_bytes, media_sha256, sidecar_config
from fakeapi.server import Server, World

__all__ = ["FakePlatforms", "sidecar_config", "media_bytes", "media_sha256", "main"]


def _stdin_is_pipe() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _serve(args: argparse.Namespace) -> None:
    server = Server(World(args.seed), args.host, args.port, log=args.verbose)
    await server.start()
    print(json.dumps({"port": server.port, "baseUrl": f"http://{args.host}:{server.port}"}), flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if _stdin_is_pipe():
        def watch() -> None:  # raw os.read: a daemon thread blocked in a buffered read aborts at exit
            while os.read(sys.stdin.fileno(), 65536):
                pass
            loop.call_soon_threadsafe(done.set)
        threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
    await done.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and probabilistic fault rules")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
