"""Shared helpers. pytest-asyncio is not installed: each async test runs under :func:`run`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import pytest

from social_sidecar import Sidecar

STANDIN = Path(__file__).with_name("standin_peer.py")
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
    """Run one async test body with a hard limit, so a hang fails the test instead of the suite."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


class Recording:
    """Every message the stand-in received (``inbound``) or sent (``outbound``), read back from its record file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self, direction: str) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [e["msg"] for e in entries if e["dir"] == direction]

    @property
    def inbound(self) -> list[dict[str, Any]]:
        return self._lines("in")

    @property
    def outbound(self) -> list[dict[str, Any]]:
        return self._lines("out")

    def methods(self) -> list[str]:
        return [m["method"] for m in self.inbound if "method" in m]


@pytest.fixture
def recording(tmp_path: Path) -> Recording:
    return Recording(tmp_path / "record.jsonl")


@pytest.fixture
def standin(recording: Recording) -> Callable[..., Sidecar]:
    """Build a :class:`Sidecar` running the stand-in peer; ``mode`` sets ``STANDIN_MODE``."""

    def make(mode: str = "", **kwargs: Any) -> Sidecar:
        env = {"STANDIN_MODE": mode, "STANDIN_RECORD": str(recording.path), **kwargs.pop("env", {})}
        return Sidecar(binary=sys.executable, args=[str(STANDIN)], env=env, **kwargs)

    return make


def process_gone(pid: int) -> bool:
    """True when ``pid`` is neither running nor a zombie: it exited and was reaped."""
    return not os.path.exists(f"/proc/{pid}")
