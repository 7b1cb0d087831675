"""The fakes refuse requests that break the platforms' own contracts, loaded from the installed SDK packages."""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_platforms import FakePlatforms  # noqa: E402
from fakeapi.contracts import graph_version  # noqa: E402

PAGE, PAGE_TOKEN = "20000001", "fake-fb-page-token-1"
IG_USER = "17841400000000001"
YT_TOKEN = "fake-yt-access-token-1"
LI_TOKEN = "fake-li-access-token-1"


@pytest.fixture(scope="module")
def fake():
    with FakePlatforms() as server:
        yield server


def call(method: str, url: str, form: dict | None = None, body: dict | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    data = urlencode(form).encode() if form is not None else json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def graph(fake, path: str) -> str:
    return f"{fake.base_url}/{graph_version()}{path}"


def test_the_sdk_sets_the_graph_version_the_fake_expects():
    assert graph_version().startswith("v") and float(graph_version()[1:]) >= 26.0


@pytest.mark.parametrize("form, words", [
    ({"message": "hi", "not_a_param": "x"}, "not_a_param is not a valid parameter"),
    ({"message": "hi", "published": "maybe"}, "published must be a boolean"),
    ({"message": "hi", "formatting": "SHOUTING"}, "formatting must be one of"),
    ({"message": "hi", "attached_media[0]": "not json"}, "attached_media[0] must be a JSON object"),
])
def test_graph_refuses_what_page_create_feed_does_not_allow(fake, form, words):
    status, body = call("POST", graph(fake, f"/{PAGE}/feed"), form={**form, "access_token": PAGE_TOKEN})
    assert status == 400 and body["error"]["code"] == 100 and words in body["error"]["message"], body
    assert not fake.published(platform="facebook")


def test_graph_refuses_a_reel_state_outside_the_enum_and_accepts_the_documented_one(fake):
    status, body = call("POST", graph(fake, f"/{PAGE}/video_reels"),
                        form={"upload_phase": "finish", "video_id": "1", "video_state": "LIVE",
                              "access_token": PAGE_TOKEN})
    assert status == 400 and "video_state must be one of" in body["error"]["message"], body
    status, body = call("POST", graph(fake, f"/{PAGE}/video_reels"),
                        form={"upload_phase": "start", "access_token": PAGE_TOKEN})
    assert status == 200 and body["video_id"], body


def test_graph_refuses_an_instagram_container_with_a_wrong_type_and_a_nonexisting_field(fake):
    status, body = call("POST", graph(fake, f"/{IG_USER}/media"),
                        form={"image_url": "https://cdn.example.test/a.jpg", "is_carousel_item": "yes",
                              "access_token": PAGE_TOKEN})
    assert status == 400 and "is_carousel_item must be a boolean" in body["error"]["message"], body
    status, body = call("GET", graph(fake, f"/{IG_USER}?fields=id,follower_mood&access_token={PAGE_TOKEN}"))
    assert status == 400 and "nonexisting field (follower_mood)" in body["error"]["message"], body


def youtube(fake, path: str, **query) -> str:
    return f"{fake.base_url}{path}?{urlencode(query)}"


def test_youtube_refuses_a_missing_required_parameter_and_an_unknown_one(fake):
    auth = {"Authorization": f"Bearer {YT_TOKEN}"}
    status, body = call("GET", youtube(fake, "/youtube/v3/channels", mine="true"), headers=auth)
    assert status == 400 and body["error"]["errors"][0]["reason"] == "required", body
    status, body = call("GET", youtube(fake, "/youtube/v3/channels", part="id", mine="true", colour="blue"),
                        headers=auth)
    assert status == 400 and body["error"]["errors"][0]["reason"] == "unknownParameter", body
    status, body = call("GET", youtube(fake, "/youtube/v3/channels", part="id", mine="perhaps"), headers=auth)
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalidParameter", body


@pytest.mark.parametrize("metadata, words", [
    ({"snippet": {"title": "t"}, "status": {"privacyStatus": "friends"}}, "privacyStatus"),
    ({"snippet": {"title": "t", "mood": "happy"}}, "has no field mood"),
    ({"snippet": {"title": "t"}, "status": {"selfDeclaredMadeForKids": "no"}}, "must be of type boolean"),
])
def test_youtube_refuses_an_insert_body_that_breaks_the_video_schema(fake, metadata, words):
    status, body = call("POST", youtube(fake, "/upload/youtube/v3/videos", uploadType="resumable",
                                        part="snippet,status"), body=metadata,
                        headers={"Authorization": f"Bearer {YT_TOKEN}", "X-Upload-Content-Length": "10",
                                 "X-Upload-Content-Type": "video/mp4"})
    assert status == 400 and words in body["error"]["message"], body


def test_linkedin_refuses_a_call_without_the_rest_li_protocol_header_or_with_a_raw_urn(fake):
    urn = "urn:li:organization:40000001"
    base = {"Authorization": f"Bearer {LI_TOKEN}", "LinkedIn-Version": "202610"}
    status, body = call("GET", f"{fake.base_url}/rest/posts/{quote('urn:li:share:1', safe='')}", headers=base)
    assert status == 400 and "X-RestLi-Protocol-Version" in body["message"], body
    headers = {**base, "X-Restli-Protocol-Version": "2.0.0"}
    status, body = call("GET", f"{fake.base_url}/rest/posts/{quote('urn:li:share:1', safe=':')}", headers=headers)
    assert status == 400, body
    status, body = call("GET", f"{fake.base_url}/rest/posts?q=author&author={quote(urn, safe='')}",
                        headers={**headers, "X-RestLi-Method": "CREATE"})
    assert status == 400 and "X-RestLi-Method" in body["message"], body
    status, body = call("GET", f"{fake.base_url}/rest/posts?q=author&author={quote(urn, safe='')}",
                        headers={**headers, "X-RestLi-Method": "FINDER"})
    assert status == 200, body
