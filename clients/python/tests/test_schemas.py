"""What the Python client puts on the wire validates against the protocol's JSON Schemas (``protocol/schemas``).

Skips when the schemas or the ``jsonschema`` package are not there (``SOCIAL_SIDECAR_PROTOCOL`` points at the
``protocol`` folder when this package is not inside the repository).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import run
import social_sidecar as ss
from social_sidecar import Credentials, Sidecar

WHO = dict(
    credential_ref="CRED-1",
    customer_id="CUST-1",
    agent_id="AGENT-1",
    correlation_id="corr-1",
    idempotency_key="key-1",
    timeout=30.0,
)


def schema_set() -> Any:
    pytest.importorskip("jsonschema")
    configured = os.environ.get("SOCIAL_SIDECAR_PROTOCOL")
    folder = Path(configured) if configured else None
    if folder is None:
        for parent in Path(__file__).resolve().parents:
            if (parent / "Package.swift").is_file():
                folder = parent / "protocol"
                break
    if folder is None or not (folder / "conformance" / "check_schemas.py").is_file():
        pytest.skip(f"no protocol schemas at {folder} (set SOCIAL_SIDECAR_PROTOCOL)")
    sys.path.insert(0, str(folder / "conformance"))
    try:
        module = importlib.import_module("check_schemas")
    finally:
        sys.path.remove(str(folder / "conformance"))
    return module.SchemaSet(folder / "schemas")


class Recorder(Sidecar):
    """A Sidecar whose calls are recorded instead of sent."""

    def __init__(self) -> None:
        super().__init__(binary="/nonexistent")
        self.sent: list[tuple[str, Any]] = []

    async def call(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        self.sent.append((method, params))
        operation = method.rpartition("/")[2]
        if operation in ("post", "send"):
            return {"platform": method.partition("/")[0], "postId": "1", "postUrl": None, "status": "published",
                    "attempts": 1, "durationMs": 1, "replayed": False, "waitedMs": 0}
        return {"validate": {"valid": True, "accountId": "1"}, "refresh": {"refreshed": True, "expiresAt": None},
                "reset": {"platform": "facebook", "state": "CLOSED"}}[operation]


async def every_typed_call(sidecar: Recorder) -> None:
    https = "https://example.test/"
    await sidecar.facebook.post(**WHO, text="Hello", link="https://example.test/article")
    await sidecar.facebook.post(**WHO, text="Photos", image_urls=[https + "1.jpg", https + "2.jpg"])
    await sidecar.facebook.post(**WHO, video_url=https + "v.mp4", kind="reel")
    await sidecar.facebook.post(**WHO, video_url=https + "v.mp4", thumbnail_url=https + "cover.jpg")
    await sidecar.facebook.post(**WHO, link=https + "sale", call_to_action="SHOP_NOW")
    await sidecar.facebook.post(**WHO, image_url=https + "s.jpg", kind="story")
    await sidecar.facebook.post(**WHO, video_path="/media/story.mp4", kind="story")
    await sidecar.instagram.post(**WHO, caption="c", image_url=https + "1.jpg")
    await sidecar.instagram.post(
        **WHO, caption="c", items=[{"image_url": https + "1.jpg"}, {"video_url": https + "v.mp4"}], kind="carousel"
    )
    await sidecar.instagram.post(**WHO, video_url=https + "v.mp4", kind="reel")
    await sidecar.linkedin.post(**WHO, text="t", image_url=https + "1.jpg", visibility="PUBLIC")
    await sidecar.linkedin.post(**WHO, text="t", video_url=https + "v.mp4", captions_url=https + "v.srt")
    await sidecar.linkedin.post(**WHO, text="t", video_path="/media/v.mp4", captions_path="/media/v.srt")
    await sidecar.youtube.post(
        **WHO,
        title="t",
        description="d",
        video_url=https + "v.mp4",
        tags=["a", "b"],
        privacy_status="private",
        category_id="22",
        made_for_kids=False,
        on_progress=lambda progress: None,
    )
    await sidecar.whatsapp.send(**WHO, to="+15550001111", text="hi")
    await sidecar.whatsapp.send(**WHO, to="+15550001111", image={"url": https + "1.jpg", "caption": "c"})
    await sidecar.whatsapp.send(**WHO, to="+15550001111", template={"name": "hello_world", "language": "en_US"})
    for platform in ("facebook", "instagram", "linkedin", "youtube", "whatsapp"):
        client = getattr(sidecar, platform)
        await client.validate(credential_ref="CRED-1", customer_id="CUST-1", correlation_id="c", timeout=1.0)
        await client.refresh(credential_ref="CRED-1", customer_id="CUST-1")
    await sidecar.breaker_reset("facebook")


def test_every_typed_call_sends_params_the_schemas_accept() -> None:
    schemas = schema_set()
    sidecar = Recorder()
    run(every_typed_call(sidecar))
    assert len(sidecar.sent) == 28
    captioned = [params for method, params in sidecar.sent if "captionsUrl" in params or "captionsPath" in params]
    assert [sorted(k for k in p if k.startswith("captions")) for p in captioned] == [["captionsUrl"], ["captionsPath"]]
    for method, params in sidecar.sent:
        assert schemas.errors(f"{method.replace('/', '.')}.params", params) == [], (method, params)


def test_credentials_answers_match_the_schemas() -> None:
    schemas = schema_set()
    full = Credentials(
        access_token="a",
        account_id="PAGE-1",
        refresh_token="r",
        client_id="id",
        client_secret="s",
        expires_at=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        variant="instagram_login",
    )
    for answer in (
        full.to_wire(),
        Credentials(access_token="a", account_id="PAGE-1", expires_at=1900000000).to_wire(),
        Credentials.wire_from(
            {"access_token": "a", "account_id": "urn:li:organization:1", "expires_at": dt.datetime(2030, 1, 1)}
        ),
    ):
        assert schemas.errors("credentials.resolve.result", answer) == [], answer
    assert full.to_wire()["expiresAt"] == "2030-01-02T03:04:05Z"
    assert schemas.errors("credentials.update.result", {}) == []


def test_initialize_params_match_the_schema() -> None:
    schemas = schema_set()
    sidecar = Sidecar(config={"retry": {"maxAttempts": 2}})
    params = {"clientInfo": sidecar._client_info, "config": sidecar.config}
    assert schemas.errors("initialize.params", params) == []


def test_results_the_schemas_allow_read_into_typed_fields() -> None:
    schemas = schema_set()
    locked = {"platform": "youtube", "postId": "v1", "postUrl": "https://youtu.be/v1", "status": "processing",
              "attempts": 1, "durationMs": 5, "replayed": False, "waitedMs": 0, "privacyStatus": "private",
              "warnings": ["YouTube set the video to private, not public as asked"]}
    assert schemas.errors("youtube.post.result", locked) == []
    result = ss.PostResult.from_wire(locked)
    assert (result.privacy_status, result.warnings) == ("private", locked["warnings"])
    plain = ss.PostResult.from_wire({k: v for k, v in locked.items() if k not in ("privacyStatus", "warnings")})
    assert (plain.privacy_status, plain.warnings) == (None, [])
    validation = {"valid": True, "accountId": "urn:li:person:1", "warnings": ["LinkedIn-Version 202501 is old"]}
    assert schemas.errors("linkedin.validate.result", validation) == []
    assert ss.ValidationResult.from_wire(validation).warnings == validation["warnings"]
    health = {"status": "ok", "version": "1", "uptimeMs": 1, "inFlight": 0, "warnings": ["old version"]}
    assert schemas.errors("health.result", health) == []
    assert ss.Health.from_wire(health).warnings == ["old version"]
    assert ss.Health.from_wire({**health, "warnings": None}).warnings == []
