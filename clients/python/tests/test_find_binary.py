"""Which binary the client spawns: explicit, then $SOCIAL_SIDECAR_BIN, then the one a platform wheel bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_sidecar import client, find_binary


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for social_sidecar/bin/social-sidecar as a wheel installs it."""
    path = tmp_path / "social_sidecar" / "bin" / "social-sidecar"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    monkeypatch.setattr(client, "_BUNDLED_BINARY", path)
    monkeypatch.delenv("SOCIAL_SIDECAR_BIN", raising=False)
    return path


def test_the_bundled_binary_comes_before_a_checkouts_build(bundled: Path) -> None:
    assert find_binary() == bundled


def test_an_explicit_binary_and_the_environment_win_over_the_bundled_one(
    bundled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_binary("/opt/other/social-sidecar") == Path("/opt/other/social-sidecar")
    monkeypatch.setenv("SOCIAL_SIDECAR_BIN", "/srv/social-sidecar")
    assert find_binary() == Path("/srv/social-sidecar")


def test_a_bundled_file_that_is_not_executable_is_passed_over(bundled: Path) -> None:
    bundled.chmod(0o644)
    try:
        assert find_binary() != bundled
    except client.SidecarUnavailable as error:
        assert str(bundled) in str(error)
