"""The client against the real social-sidecar binary (``SOCIAL_SIDECAR_BIN`` or the repository's build folder).

Without a binary these tests skip, unless ``SOCIAL_SIDECAR_REQUIRE_BINARY=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

import social_sidecar as ss
from conftest import process_gone, run
from social_sidecar import Sidecar, find_binary


def real_binary() -> Path:
    try:
        path = find_binary()
    except ss.SidecarUnavailable as exc:
        if os.environ.get("SOCIAL_SIDECAR_REQUIRE_BINARY") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    if not os.access(path, os.X_OK):
        pytest.fail(f"SOCIAL_SIDECAR_BIN={path} is not an executable file")
    return path


@pytest.fixture
def binary() -> Path:
    return real_binary()


def test_initialize_health_and_a_clean_exit(binary: Path) -> None:
    async def body() -> tuple[int, Sidecar]:
        sidecar = Sidecar(binary=binary)
        async with sidecar:
            info = sidecar.initialize_result
            assert info is not None and info.server_info.name == "social-sidecar"
            assert info.server_info.version and info.protocol_version
            health = await sidecar.health()
            assert health.status == "ok" and health.version == info.server_info.version
            assert health.in_flight == 0 and isinstance(health.uptime_ms, int)
            pid = sidecar.pid
            assert pid is not None
        return pid, sidecar

    pid, sidecar = run(body())
    assert process_gone(pid)
    assert sidecar.last_exit_code == 0  # shutdown then exit: code 0 by the protocol


def test_unknown_config_key_is_invalid_params(binary: Path) -> None:
    async def body() -> None:
        sidecar = Sidecar(binary=binary, config={"retyr": {"maxAttempts": 1}})
        with pytest.raises(ss.InvalidParams) as caught:
            await sidecar.start()
        assert (caught.value.field or "").startswith("config.retyr")
        await sidecar.close()

    run(body())


def test_unknown_method_is_method_not_found(binary: Path) -> None:
    async def body() -> None:
        async with Sidecar(binary=binary) as sidecar:
            with pytest.raises(ss.MethodNotFound) as caught:
                await sidecar.call("tiktok/post", {})
            assert caught.value.code == -32601 and caught.value.method == "tiktok/post"
            assert (await sidecar.health()).status == "ok"

    run(body())


def test_killed_sidecar_is_replaced_on_the_next_call(binary: Path) -> None:
    async def body() -> None:
        async with Sidecar(binary=binary) as sidecar:
            first = sidecar.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            for _ in range(200):  # until the client noticed; the next call must then restart
                if sidecar.pid is None or sidecar.last_exit_code is not None:
                    break
                await asyncio.sleep(0.01)
            health = await sidecar.health()
            assert health.status == "ok" and sidecar.pid not in (None, first)
            assert sidecar.restarts == 1 and sidecar.last_exit_code == -signal.SIGKILL
            assert process_gone(first)

    run(body())


def test_stderr_json_logs_become_structured_records(binary: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with Sidecar(binary=binary, args=["--log-level", "info"]) as sidecar:
            await sidecar.health()

    with caplog.at_level(logging.DEBUG, logger="social_sidecar"):
        run(body())
    records = [r for r in caplog.records if r.name == "social_sidecar.sidecar" and hasattr(r, "sidecar")]
    assert records, "the sidecar logged nothing on stderr at info level"
    assert all(isinstance(r.sidecar, dict) for r in records)  # type: ignore[attr-defined]
    assert {r.levelno for r in records} <= {logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR}


def test_many_concurrent_health_calls(binary: Path) -> None:
    async def body() -> None:
        async with Sidecar(binary=binary) as sidecar:
            answers = await asyncio.gather(*(sidecar.health() for _ in range(200)))
            assert {a.status for a in answers} == {"ok"}

    run(body())


def require_method(sidecar: Sidecar, method: str) -> None:
    info = sidecar.initialize_result
    assert info is not None
    if method not in info.methods:
        pytest.skip(f"this build does not serve {method} (capabilities.methods = {list(info.methods)})")


def test_metrics_and_breaker_queries(binary: Path) -> None:
    async def body() -> None:
        async with Sidecar(binary=binary) as sidecar:
            require_method(sidecar, "metrics/prometheus")
            exposition = await sidecar.prometheus_exposition()
            assert exposition.content_type.startswith("text/plain")
            assert "# TYPE social_sidecar_" in exposition.text
            require_method(sidecar, "breaker/status")
            status = await sidecar.breaker_status()
            assert status.enabled and set(status.platforms) >= {"facebook", "youtube"}
            require_method(sidecar, "metrics/snapshot")
            assert (await sidecar.metrics_snapshot()).since

    run(body())
