"""Tests for the platform fakes: every endpoint family over real HTTP (urllib), the error shapes,
the fault-script actions, recording, and the CLI. Run: python3 -m pytest Tests/Fakes -q"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_platforms import FakePlatforms, media_bytes, media_sha256  # noqa: E402

PAGE, IG, PHONE, WABA = "20000001", "17841400000000001", "30000001", "30000000"
PAGE_TOKEN, USER_TOKEN = "fake-fb-page-token-1", "fake-fb-user-token-1"
WA_TOKEN, IG_LOGIN_TOKEN = "fake-wa-system-token-1", "fake-ig-login-token-1"
YT_TOKEN, LI_TOKEN = "fake-yt-access-token-1", "fake-li-access-token-1"
LI_ORG = "urn:li:organization:40000001"
LI_HEADERS = {"LinkedIn-Version": "", "X-Restli-Protocol-Version": "2.0.0", "Authorization": f"Bearer {LI_TOKEN}"}


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def call(method: str, url: str, *, json_body: Any = None, form: dict | None = None, data: bytes | None = None,
         headers: dict | None = None, timeout: float = 10) -> Reply:
    headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


@pytest.fixture(scope="module")
def server():
    with FakePlatforms() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    yield server


def graph(fake, path: str) -> str:
    return f"{fake.base_url}/v23.0{path}"


def li_headers(fake, **extra: str) -> dict:
    headers = dict(LI_HEADERS)
    headers["LinkedIn-Version"] = fake.sidecar_config()["platforms"]["linkedin"]["apiVersion"]
    headers.update(extra)
    return headers


# ----- Graph mechanics --------------------------------------------------------------------------------------------

def test_graph_token_via_query_form_and_bearer(fake):
    assert call("GET", graph(fake, f"/me?access_token={USER_TOKEN}")).json == {"id": "10000001",
                                                                                 "name": "Fake User One"}
    assert call("POST", graph(fake, f"/{PAGE}/feed"), form={"message": "a", "access_token": PAGE_TOKEN}).status == 200
    reply = call("POST", graph(fake, f"/{PAGE}/feed"), json_body={"message": "b"},
                 headers={"Authorization": f"Bearer {PAGE_TOKEN}"})
    assert reply.status == 200 and reply.json["id"].startswith(f"{PAGE}_")
    assert call("GET", f"{fake.base_url}/v99.1/me?access_token={USER_TOKEN}").status == 200


def test_graph_merges_query_with_multipart_body(fake):
    boundary = "fakeboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nfrom multipart\r\n"
            f"--{boundary}--\r\n").encode()
    reply = call("POST", graph(fake, f"/{PAGE}/feed?access_token={PAGE_TOKEN}"), data=body,
                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 200
    assert fake.published("facebook")[0]["text"] == "from multipart"


def test_graph_error_shapes_for_missing_unknown_and_expired_tokens(fake):
    missing = call("GET", graph(fake, "/me"))
    assert missing.status == 400 and missing.json["error"]["code"] == 104
    unknown = call("GET", graph(fake, "/me?access_token=nope"))
    assert unknown.status == 400
    assert unknown.json["error"]["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert unknown.json["error"]["type"] == "OAuthException"
    fake.tokens({"token": PAGE_TOKEN, "expires_in": 60})
    assert call("GET", graph(fake, f"/{PAGE}?access_token={PAGE_TOKEN}")).status == 200
    fake.advance_clock(61)
    expired = call("GET", graph(fake, f"/{PAGE}?access_token={PAGE_TOKEN}"))
    error = expired.json["error"]
    assert expired.status == 400 and (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired on")
    assert error["fbtrace_id"] == expired.header("x-fb-trace-id")
    assert "invalid_token" in expired.header("WWW-Authenticate")


def test_graph_token_invalidated_with_subcode(fake):
    fake.tokens({"token": PAGE_TOKEN, "error_subcode": 492})
    error = call("GET", graph(fake, f"/{PAGE}?access_token={PAGE_TOKEN}")).json["error"]
    assert (error["code"], error["error_subcode"]) == (190, 492)


def test_graph_object_without_access_is_code_100_subcode_33(fake):
    reply = call("GET", graph(fake, f"/20000002?access_token={PAGE_TOKEN}"))
    assert reply.status == 400
    assert (reply.json["error"]["code"], reply.json["error"]["error_subcode"]) == (100, 33)


def test_debug_token_permissions_and_accounts_paging(fake):
    app = "900000001|fake-meta-app-secret"
    data = call("GET", graph(fake, f"/debug_token?input_token={PAGE_TOKEN}&access_token={app}")).json["data"]
    assert data["type"] == "PAGE" and data["profile_id"] == PAGE and data["expires_at"] == 0 and data["is_valid"]
    assert {"scope": "pages_manage_posts", "target_ids": [PAGE, IG]} in data["granular_scopes"]
    bad = call("GET", graph(fake, f"/debug_token?input_token=nope&access_token={app}"))
    assert bad.status == 200 and bad.json["data"]["is_valid"] is False and bad.json["data"]["error"]["code"] == 190
    permissions = call("GET", graph(fake, f"/me/permissions?access_token={USER_TOKEN}")).json["data"]
    assert {"permission": "pages_manage_posts", "status": "granted"} in permissions
    fields = "id,name,access_token,tasks"
    first = call("GET", graph(fake, f"/me/accounts?fields={fields}&limit=1&access_token={USER_TOKEN}"))
    page = first.json["data"][0]
    assert page["access_token"] == PAGE_TOKEN and "CREATE_CONTENT" in page["tasks"]
    second = call("GET", first.json["paging"]["next"]).json
    assert second["data"][0]["id"] == "20000002" and second["data"][0]["tasks"] == ["ANALYZE"]
    assert "next" not in second["paging"]


def test_page_fields_include_linked_instagram_account(fake):
    fields = urllib.parse.quote("id,name,instagram_business_account{id,username}")
    reply = call("GET", graph(fake, f"/{PAGE}?fields={fields}&access_token={USER_TOKEN}")).json
    assert reply == {"id": PAGE, "name": "Fake Page One",
                     "instagram_business_account": {"id": IG, "username": "fake_ig_one"}}


def test_usage_headers_are_scriptable_and_throttle_until_regained(fake):
    fake.set_usage(app={"call_count": 42, "total_time": 7, "total_cputime": 5},
                   buc={PAGE: {"type": "pages", "call_count": 100, "total_time": 20, "total_cputime": 10,
                               "estimated_time_to_regain_access": 19}})
    throttled = call("POST", graph(fake, f"/{PAGE}/feed"), form={"message": "x", "access_token": PAGE_TOKEN})
    assert throttled.status == 400 and throttled.json["error"]["code"] == 80001
    assert json.loads(throttled.header("x-app-usage"))["call_count"] == 42
    buc = json.loads(throttled.header("x-business-use-case-usage"))[PAGE][0]
    assert buc["estimated_time_to_regain_access"] == 19 and buc["type"] == "pages"
    fake.advance_clock(19 * 60 + 1)
    ok = call("POST", graph(fake, f"/{PAGE}/feed"), form={"message": "x", "access_token": PAGE_TOKEN})
    assert ok.status == 200
    assert json.loads(ok.header("x-business-use-case-usage"))[PAGE][0]["estimated_time_to_regain_access"] == 0


def test_facebook_code_exchange_for_long_lived_token(fake):
    query = urllib.parse.urlencode({"grant_type": "fb_exchange_token", "client_id": "900000001",
                                    "client_secret": "fake-meta-app-secret", "fb_exchange_token": USER_TOKEN})
    reply = call("GET", graph(fake, f"/oauth/access_token?{query}")).json
    assert reply["token_type"] == "bearer" and reply["expires_in"] == 5183944
    assert call("GET", graph(fake, f"/me?access_token={reply['access_token']}")).status == 200


# ----- Facebook Pages ---------------------------------------------------------------------------------------------

def test_feed_post_with_read_after_write_fields(fake):
    reply = call("POST", graph(fake, f"/{PAGE}/feed?fields=id,permalink_url"),
                 json_body={"message": "Hello", "link": "https://example.test", "access_token": PAGE_TOKEN}).json
    assert reply["id"].startswith(f"{PAGE}_") and reply["permalink_url"].startswith("https://www.facebook.com/")
    read = call("GET", graph(fake, f"/{reply['id']}?fields=message,permalink_url&access_token={PAGE_TOKEN}")).json
    assert read["message"] == "Hello"
    feed = call("GET", graph(fake, f"/{PAGE}/feed?fields=id,message&access_token={PAGE_TOKEN}")).json
    assert feed["data"][0] == {"id": reply["id"], "message": "Hello"}


def test_feed_rejects_user_token_and_page_without_create_content(fake):
    as_user = call("POST", graph(fake, f"/{PAGE}/feed"), form={"message": "x", "access_token": USER_TOKEN})
    assert as_user.status == 400 and as_user.json["error"]["code"] == 200
    page_two = call("POST", graph(fake, "/20000002/feed"),
                    form={"message": "x", "access_token": "fake-fb-page-token-2"})
    assert page_two.json["error"]["code"] == 200


def test_repeated_status_text_is_duplicate_506(fake):
    form = {"message": "same words", "access_token": PAGE_TOKEN}
    assert call("POST", graph(fake, f"/{PAGE}/feed"), form=form).status == 200
    again = call("POST", graph(fake, f"/{PAGE}/feed"), form=form)
    assert again.status == 400 and again.json["error"]["code"] == 506
    fake.advance_clock(301)
    assert call("POST", graph(fake, f"/{PAGE}/feed"), form=form).status == 200


def test_photos_published_unpublished_and_multi_photo(fake):
    single = call("POST", graph(fake, f"/{PAGE}/photos"),
                  form={"url": "https://example.test/a.jpg", "message": "cap", "access_token": PAGE_TOKEN}).json
    assert set(single) == {"id", "post_id"} and single["post_id"].startswith(f"{PAGE}_")
    ids = [call("POST", graph(fake, f"/{PAGE}/photos"), form={"url": f"https://example.test/{i}.jpg",
                                                               "published": "false", "access_token": PAGE_TOKEN}).json
           for i in range(2)]
    assert all(set(p) == {"id"} for p in ids)
    form = {"message": "two photos", "access_token": PAGE_TOKEN}
    form.update({f"attached_media[{i}]": json.dumps({"media_fbid": p["id"]}) for i, p in enumerate(ids)})
    post = call("POST", graph(fake, f"/{PAGE}/feed"), form=form)
    assert post.status == 200
    published = fake.published("facebook")
    assert [p["kind"] for p in published] == ["photo", "feed"]
    assert published[1]["media"] == [p["id"] for p in ids]
    reuse = call("POST", graph(fake, f"/{PAGE}/feed"), json_body={"message": "again", "access_token": PAGE_TOKEN,
                                                                   "attached_media": [{"media_fbid": ids[0]["id"]}]})
    assert reuse.status == 400 and reuse.json["error"]["code"] == 100


def test_video_by_file_url(fake):
    reply = call("POST", graph(fake, f"/{PAGE}/videos"), form={"file_url": "https://example.test/v.mp4",
                                                               "description": "clip", "access_token": PAGE_TOKEN})
    assert reply.status == 200 and set(reply.json) == {"id"}
    assert fake.published("facebook")[0]["kind"] == "video"


def test_reel_start_rupload_finish_and_status(fake):
    start = call("POST", graph(fake, f"/{PAGE}/video_reels"),
                 form={"upload_phase": "start", "access_token": PAGE_TOKEN}).json
    video_id = start["video_id"]
    early = call("POST", graph(fake, f"/{PAGE}/video_reels"), form={"upload_phase": "finish", "video_id": video_id,
                                                                    "access_token": PAGE_TOKEN})
    assert early.json["error"]["code"] == 6000
    no_offset = call("POST", start["upload_url"], data=b"x", headers={"Authorization": f"OAuth {PAGE_TOKEN}"})
    assert no_offset.status == 400 and no_offset.json["debug_info"]["type"] == "ParameterValidationError"
    content = media_bytes("reel-4096.mp4")
    upload = call("POST", start["upload_url"], data=content, headers={
        "Authorization": f"OAuth {PAGE_TOKEN}", "offset": "0", "file_size": str(len(content)),
        "Content-Type": "application/octet-stream"})
    assert upload.json == {"success": True}
    finish = call("POST", graph(fake, f"/{PAGE}/video_reels"), form={
        "upload_phase": "finish", "video_id": video_id, "video_state": "PUBLISHED", "description": "my reel",
        "access_token": PAGE_TOKEN})
    assert finish.json == {"success": True}
    status = call("GET", graph(fake, f"/{video_id}?fields=status&access_token={PAGE_TOKEN}")).json["status"]
    assert status["uploading_phase"] == {"status": "complete", "bytes_transferred": 4096}
    assert status["publishing_phase"]["status"] == "complete"
    reel = fake.published("facebook")[0]
    assert (reel["kind"], reel["text"], reel["sha256"]) == ("reel", "my reel", media_sha256("reel-4096.mp4"))


def test_facebook_photo_and_video_stories(fake):
    photo = call("POST", graph(fake, f"/{PAGE}/photos"), form={"url": "https://example.test/s.jpg",
                                                               "published": "false", "access_token": PAGE_TOKEN}).json
    story = call("POST", graph(fake, f"/{PAGE}/photo_stories"), form={"photo_id": photo["id"],
                                                                      "access_token": PAGE_TOKEN}).json
    assert story["success"] is True and story["post_id"]
    start = call("POST", graph(fake, f"/{PAGE}/video_stories"), form={"upload_phase": "start",
                                                                      "access_token": PAGE_TOKEN}).json
    hosted = call("POST", start["upload_url"], headers={"Authorization": f"OAuth {PAGE_TOKEN}", "offset": "0",
                                                        "file_size": "1234", "file_url": "https://example.test/s.mp4"})
    assert hosted.json == {"success": True}
    finish = call("POST", graph(fake, f"/{PAGE}/video_stories"), form={
        "upload_phase": "finish", "video_id": start["video_id"], "access_token": PAGE_TOKEN}).json
    assert finish["success"] is True and finish["post_id"]
    assert [p["kind"] for p in fake.published("facebook")] == ["story", "story"]


def test_appsecret_proof_is_checked_when_sent_or_required(fake):
    proof = hmac.new(b"fake-meta-app-secret", PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()
    assert call("GET", graph(fake, f"/{PAGE}?access_token={PAGE_TOKEN}&appsecret_proof={proof}")).status == 200
    wrong = call("GET", graph(fake, f"/{PAGE}?access_token={PAGE_TOKEN}&appsecret_proof=00"))
    assert wrong.status == 400 and wrong.json["error"]["code"] == 100
    fake.configure({"graph": {"require_appsecret_proof": True}})
    assert call("GET", graph(fake, f"/{PAGE}?access_token={PAGE_TOKEN}")).json["error"]["code"] == 100


def test_whatsapp_system_user_me_and_waba_numbers(fake):
    assert call("GET", graph(fake, f"/me?access_token={WA_TOKEN}")).json == {"id": "10000099",
                                                                               "name": "Fake System User"}
    numbers = call("GET", graph(fake, f"/{WABA}/phone_numbers?access_token={WA_TOKEN}")).json["data"]
    assert [n["id"] for n in numbers] == [PHONE]


# ----- Instagram --------------------------------------------------------------------------------------------------

def ig_create(fake, token=PAGE_TOKEN, **params) -> Reply:
    return call("POST", graph(fake, f"/{IG}/media?" + urllib.parse.urlencode({**params, "access_token": token})))


def ig_status(fake, container: str, token=PAGE_TOKEN) -> str:
    return call("GET", graph(fake, f"/{container}?fields=status_code,status&access_token={token}")).json["status_code"]


def ig_publish(fake, container: str, token=PAGE_TOKEN) -> Reply:
    return call("POST", graph(fake, f"/{IG}/media_publish"), form={"creation_id": container, "access_token": token})


def test_ig_container_finishes_after_polls_and_publishes_once(fake):
    container = ig_create(fake, image_url="https://example.test/a.jpg", caption="hi").json["id"]
    not_ready = ig_publish(fake, container)
    error = not_ready.json["error"]
    assert not_ready.status == 400 and (error["code"], error["error_subcode"]) == (9007, 2207027)
    assert ig_status(fake, container) == "IN_PROGRESS"
    assert ig_status(fake, container) == "FINISHED"
    media_id = ig_publish(fake, container).json["id"]
    assert ig_status(fake, container) == "PUBLISHED"
    twice = ig_publish(fake, container)
    assert twice.status == 400 and twice.json["error"]["code"] == 100
    permalink = call("GET", graph(fake, f"/{media_id}?fields=permalink,shortcode,media_type&access_token={PAGE_TOKEN}"))
    assert permalink.json["permalink"] == f"https://www.instagram.com/p/{permalink.json['shortcode']}/"
    assert [p["id"] for p in fake.published("instagram")] == [media_id]


def test_ig_polls_until_finished_is_configurable(fake):
    fake.configure({"instagram": {"polls_until_finished": 3}})
    container = ig_create(fake, media_type="REELS", video_url="https://example.test/v.mp4").json["id"]
    assert [ig_status(fake, container) for _ in range(4)] == ["IN_PROGRESS"] * 3 + ["FINISHED"]


def test_ig_error_and_expired_containers(fake):
    failing = ig_create(fake, image_url="https://example.test/a.jpg?fake_status=ERROR").json["id"]
    assert [ig_status(fake, failing) for _ in range(2)] == ["IN_PROGRESS", "ERROR"]
    old = ig_create(fake, image_url="https://example.test/b.jpg").json["id"]
    fake.advance_clock(86400)
    assert ig_status(fake, old) == "EXPIRED"
    assert ig_publish(fake, old).json["error"]["error_subcode"] == 2207020


def test_ig_bad_media_url_is_9004(fake):
    error = ig_create(fake, image_url="").json["error"]
    assert (error["code"], error["error_subcode"]) == (9004, 2207052)


def test_ig_publishing_limit_and_quota_error(fake):
    fake.configure({"instagram": {"quota_total": 1, "polls_until_finished": 0}})
    first = ig_create(fake, image_url="https://example.test/1.jpg").json["id"]
    assert ig_publish(fake, first).status == 200
    limit = call("GET", graph(fake, f"/{IG}/content_publishing_limit?fields=config,quota_usage"
                                    f"&access_token={PAGE_TOKEN}"))
    assert limit.json == {"data": [{"quota_usage": 1, "config": {"quota_total": 1, "quota_duration": 86400}}]}
    second = ig_create(fake, image_url="https://example.test/2.jpg").json["id"]
    error = ig_publish(fake, second).json["error"]
    assert (error["code"], error["error_subcode"]) == (9, 2207042)
    fake.advance_clock(86401)
    fresh = ig_create(fake, image_url="https://example.test/3.jpg").json["id"]
    assert ig_publish(fake, fresh).status == 200


def test_ig_carousel_with_children(fake):
    fake.configure({"instagram": {"polls_until_finished": 0}})
    children = [ig_create(fake, image_url=f"https://example.test/{i}.jpg", is_carousel_item="true").json["id"]
                for i in range(2)]
    child_publish = ig_publish(fake, children[0])
    assert child_publish.json["error"]["code"] == 100
    too_few = ig_create(fake, media_type="CAROUSEL", children=children[0])
    assert too_few.json["error"]["error_subcode"] == 2207028
    parent = ig_create(fake, media_type="CAROUSEL", children=",".join(children), caption="album").json["id"]
    media_id = ig_publish(fake, parent).json["id"]
    media = call("GET", graph(fake, f"/{media_id}?fields=media_type,children&access_token={PAGE_TOKEN}")).json
    assert media["media_type"] == "CAROUSEL_ALBUM"
    assert [c["id"] for c in media["children"]["data"]] == children
    assert fake.published("instagram")[0]["kind"] == "carousel"


def test_ig_login_token_on_same_paths_and_refresh(fake):
    me = call("GET", graph(fake, f"/me?fields=user_id,username,account_type&access_token={IG_LOGIN_TOKEN}")).json
    assert me == {"user_id": IG, "username": "fake_ig_one", "account_type": "BUSINESS", "id": IG}
    container = ig_create(fake, token=IG_LOGIN_TOKEN, image_url="https://example.test/x.jpg").json["id"]
    assert ig_status(fake, container, IG_LOGIN_TOKEN) == "IN_PROGRESS"
    refreshed = call("GET", f"{fake.base_url}/refresh_access_token?grant_type=ig_refresh_token"
                            f"&access_token={IG_LOGIN_TOKEN}").json
    assert refreshed["token_type"] == "bearer" and refreshed["expires_in"] == 5183944
    assert refreshed["access_token"] != IG_LOGIN_TOKEN
    too_young = call("GET", f"{fake.base_url}/refresh_access_token?grant_type=ig_refresh_token"
                            f"&access_token={refreshed['access_token']}")
    assert too_young.status == 400 and too_young.json["error"]["code"] == 100


def test_ig_resumable_video_upload(fake):
    fake.configure({"instagram": {"polls_until_finished": 0}})
    created = ig_create(fake, media_type="REELS", upload_type="resumable", caption="reel").json
    assert created["uri"] == f"{fake.base_url}/ig-api-upload/v23.0/{created['id']}"
    assert ig_status(fake, created["id"]) == "IN_PROGRESS"  # nothing uploaded yet
    content = media_bytes("reel-5000.mp4")
    upload = call("POST", created["uri"], data=content, headers={
        "Authorization": f"OAuth {PAGE_TOKEN}", "offset": "0", "file_size": str(len(content))})
    assert upload.json == {"success": True, "message": "Upload successful."}
    assert ig_status(fake, created["id"]) == "FINISHED"
    media_id = ig_publish(fake, created["id"]).json["id"]
    published = fake.published("instagram")[0]
    assert (published["id"], published["kind"], published["sha256"]) == (media_id, "reels",
                                                                        media_sha256("reel-5000.mp4"))
    listed = call("GET", graph(fake, f"/{IG}/media?fields=id,caption,permalink&access_token={PAGE_TOKEN}")).json
    assert listed["data"][0]["id"] == media_id and "/reel/" in listed["data"][0]["permalink"]


# ----- WhatsApp ---------------------------------------------------------------------------------------------------

def wa_send(fake, payload: dict, token=WA_TOKEN) -> Reply:
    return call("POST", graph(fake, f"/{PHONE}/messages"), json_body={"messaging_product": "whatsapp", **payload},
                headers={"Authorization": f"Bearer {token}"})


def test_whatsapp_text_inside_window_and_template_outside(fake):
    reply = wa_send(fake, {"to": "+1 555 000 1111", "type": "text", "text": {"body": "hi"}})
    assert reply.status == 200
    body = reply.json
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+1 555 000 1111", "wa_id": "15550001111"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    closed = wa_send(fake, {"to": "15550002222", "type": "text", "text": {"body": "hi"}})
    assert closed.status == 400 and closed.json["error"]["code"] == 131047
    assert closed.json["error"]["error_data"]["messaging_product"] == "whatsapp"
    template = wa_send(fake, {"to": "15550002222", "type": "template",
                              "template": {"name": "order_update", "language": {"code": "en_US"},
                                           "components": [{"type": "body", "parameters": [{"type": "text",
                                                                                            "text": "Ada"}]}]}})
    assert template.status == 200 and template.json["messages"][0]["message_status"] == "accepted"
    assert [(p["kind"], p["to"]) for p in fake.published("whatsapp")] == [("text", "15550001111"),
                                                                           ("template", "15550002222")]


def test_whatsapp_window_opens_with_customer_message(fake):
    fake.customer_message("15550003333")
    assert wa_send(fake, {"to": "15550003333", "type": "image",
                          "image": {"link": "https://example.test/a.jpg", "caption": "c"}}).status == 200
    fake.advance_clock(86400)
    assert wa_send(fake, {"to": "15550003333", "type": "text", "text": {"body": "x"}}).json["error"]["code"] == 131047


def test_whatsapp_pair_rate_and_throughput(fake):
    fake.clock(freeze=True)
    payload = {"to": "15550001111", "type": "text", "text": {"body": "one"}}
    assert wa_send(fake, payload).status == 200
    pair = wa_send(fake, payload)
    assert pair.status == 429 and pair.json["error"]["code"] == 131056
    fake.advance_clock(6)
    assert wa_send(fake, payload).status == 200
    fake.configure({"whatsapp": {"pair_rate_seconds": 0, "throughput_per_second": 2, "window_open_for_all": True}})
    assert wa_send(fake, {**payload, "to": "15550004444"}).status == 200
    burst = wa_send(fake, {**payload, "to": "15550005555"})
    assert burst.status == 429 and burst.json["error"]["code"] == 130429


def test_whatsapp_validation_errors_and_phone_read(fake):
    assert wa_send(fake, {"to": "15550001111", "type": "template",
                          "template": {"name": "nope", "language": {"code": "en_US"}}}).json["error"]["code"] == 132001
    assert wa_send(fake, {"to": "15550001111", "type": "text", "text": {}}).json["error"]["code"] == 131008
    phone = call("GET", graph(fake, f"/{PHONE}?fields=verified_name,display_phone_number,quality_rating,"
                                    f"throughput&access_token={WA_TOKEN}")).json
    assert phone["display_phone_number"] == "+1 555-010-0000" and phone["throughput"] == {"level": "STANDARD"}
    fake.tokens({"token": WA_TOKEN, "expired": True})
    expired = wa_send(fake, {"to": "15550001111", "type": "text", "text": {"body": "x"}})
    assert expired.status == 401 and expired.json["error"]["code"] == 190


# ----- Google OAuth and YouTube -----------------------------------------------------------------------------------

GOOGLE_FORM = {"grant_type": "refresh_token", "refresh_token": "fake-yt-refresh-token-1",
               "client_id": "fake-google-client-id.apps.example.test", "client_secret": "fake-google-client-secret"}


def test_google_token_refresh_errors_and_optional_rotation(fake):
    reply = call("POST", f"{fake.base_url}/token", form=GOOGLE_FORM).json
    assert reply["token_type"] == "Bearer" and reply["expires_in"] == 3599 and "refresh_token" not in reply
    assert "youtube.upload" in reply["scope"]
    info = call("GET", f"{fake.base_url}/tokeninfo?access_token={reply['access_token']}").json
    assert "youtube.upload" in info["scope"]
    bad_grant = call("POST", f"{fake.base_url}/token", form={**GOOGLE_FORM, "refresh_token": "nope"})
    assert bad_grant.status == 400 and bad_grant.json == {"error": "invalid_grant",
                                                         "error_description": "Token has been expired or revoked."}
    bad_client = call("POST", f"{fake.base_url}/token", form={**GOOGLE_FORM, "client_secret": "wrong"})
    assert bad_client.status == 401 and bad_client.json["error"] == "invalid_client"
    fake.configure({"youtube": {"rotate_refresh_tokens": True}})
    rotated = call("POST", f"{fake.base_url}/token", form=GOOGLE_FORM).json
    assert rotated["refresh_token"] != GOOGLE_FORM["refresh_token"]
    assert call("POST", f"{fake.base_url}/token", form=GOOGLE_FORM).json["error"] == "invalid_grant"


def test_youtube_channels_and_auth_errors(fake):
    auth = {"Authorization": f"Bearer {YT_TOKEN}"}
    reply = call("GET", f"{fake.base_url}/youtube/v3/channels?part=snippet&mine=true", headers=auth).json
    assert reply["kind"] == "youtube#channelListResponse" and reply["items"][0]["id"] == "UCfakechannel00000000001"
    none = call("GET", f"{fake.base_url}/youtube/v3/channels?part=id&mine=true",
                headers={"Authorization": "Bearer fake-yt-access-token-nochannel"}).json
    assert none["pageInfo"]["totalResults"] == 0 and "items" not in none
    expired = call("GET", f"{fake.base_url}/youtube/v3/channels?part=snippet&mine=true",
                   headers={"Authorization": "Bearer nope"})
    assert expired.status == 401 and expired.json["error"]["errors"][0]["reason"] == "authError"
    assert expired.json["error"]["status"] == "UNAUTHENTICATED"
    assert expired.header("WWW-Authenticate").startswith('Bearer realm="https://accounts.google.com/"')


def start_upload(fake, size: int, content_type="video/mp4", token=YT_TOKEN, metadata=None) -> Reply:
    metadata = metadata or {"snippet": {"title": "Fake video", "description": "d", "tags": ["a"], "categoryId": "22"},
                            "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": False}}
    return call("POST", f"{fake.base_url}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
                json_body=metadata, headers={"Authorization": f"Bearer {token}", "X-Upload-Content-Length": str(size),
                                             "X-Upload-Content-Type": content_type})


def test_youtube_resumable_upload_in_chunks_with_probe(fake):
    name = "video-700000.mp4"
    content = media_bytes(name)
    session = start_upload(fake, len(content))
    assert session.status == 200 and session.body == b""
    location = session.header("Location")
    assert location.startswith(f"{fake.base_url}/upload/youtube/v3/videos?uploadType=resumable&upload_id=")
    probe = call("PUT", location, data=b"", headers={"Content-Range": f"bytes */{len(content)}"})
    assert probe.status == 308 and probe.header("Range") is None
    first = call("PUT", location, data=content[:300000], headers={
        "Content-Range": f"bytes 0-299999/{len(content)}", "Content-Type": "video/mp4"})
    assert first.status == 308 and first.header("Range") == "bytes=0-262143"  # only whole 256 KiB chunks stick
    probe = call("PUT", location, data=b"", headers={"Content-Range": f"bytes */{len(content)}"})
    assert probe.header("Range") == "bytes=0-262143"
    rest = call("PUT", location, data=content[262144:], headers={
        "Content-Range": f"bytes 262144-{len(content) - 1}/{len(content)}"})
    assert rest.status == 201
    video = rest.json
    assert video["kind"] == "youtube#video" and len(video["id"]) == 11
    assert video["snippet"]["title"] == "Fake video" and video["status"]["uploadStatus"] == "uploaded"
    again = call("PUT", location, data=b"", headers={"Content-Range": f"bytes */{len(content)}"})
    assert again.status == 200 and again.json["id"] == video["id"]
    published = fake.published("youtube")
    assert len(published) == 1 and published[0]["sha256"] == media_sha256(name)


def test_youtube_session_validation_quota_and_expiry(fake):
    assert start_upload(fake, 10, content_type="text/plain").json["error"]["errors"][0]["reason"] == "badContent"
    bad_title = start_upload(fake, 10, metadata={"snippet": {"title": ""}, "status": {"privacyStatus": "public"}})
    assert bad_title.json["error"]["errors"][0]["reason"] == "invalidTitle"
    no_channel = start_upload(fake, 10, token="fake-yt-access-token-nochannel")
    assert no_channel.status == 401 and no_channel.json["error"]["errors"][0]["reason"] == "youtubeSignupRequired"
    no_scope = start_upload(fake, 10, token="fake-yt-access-token-readonly")
    assert no_scope.status == 403 and no_scope.json["error"]["errors"][0]["reason"] == "insufficientPermissions"
    fake.configure({"youtube": {"insert_calls_per_day": 0, "insert_cost": 1600, "quota_units_per_day": 3200}})
    location = start_upload(fake, 10).header("Location")
    assert start_upload(fake, 10).status == 200
    quota = start_upload(fake, 10)
    assert quota.status == 403 and quota.json["error"]["errors"][0] == {
        "message": quota.json["error"]["message"], "domain": "youtube.quota", "reason": "quotaExceeded"}
    fake.advance_clock(8 * 86400)
    assert call("PUT", location, data=b"0123456789", headers={"Content-Range": "bytes 0-9/10"}).status == 404


def test_google_code_exchange_tokeninfo_and_revoke(fake):
    form = {**GOOGLE_FORM, "grant_type": "authorization_code", "code": "fake-google-code-1",
            "redirect_uri": "http://localhost/cb"}
    del form["refresh_token"]
    tokens = call("POST", f"{fake.base_url}/token", form=form).json
    assert tokens["refresh_token"].startswith("fake-yt-refresh-token")
    assert call("POST", f"{fake.base_url}/revoke?token={tokens['access_token']}").status == 200
    info = call("GET", f"{fake.base_url}/tokeninfo?access_token={tokens['access_token']}")
    assert info.status == 400 and info.json == {"error": "invalid_token", "error_description": "Invalid Value"}


def test_youtube_video_processing_status(fake):
    content = media_bytes("video-1000.mp4")
    location = start_upload(fake, len(content)).header("Location")
    video_id = call("PUT", location, data=content, headers={"Content-Type": "video/mp4"}).json["id"]
    listed = call("GET", f"{fake.base_url}/youtube/v3/videos?part=status,processingDetails&id={video_id}",
                  headers={"Authorization": f"Bearer {YT_TOKEN}"}).json["items"][0]
    assert listed["status"]["uploadStatus"] == "processed"
    assert listed["processingDetails"]["processingStatus"] == "succeeded"


# ----- LinkedIn ---------------------------------------------------------------------------------------------------

def li_post(fake, body: dict, **headers) -> Reply:
    return call("POST", f"{fake.base_url}/rest/posts", json_body=body, headers=li_headers(fake, **headers))


def post_body(text: str, author: str = LI_ORG, **extra) -> dict:
    return {"author": author, "commentary": text, "visibility": "PUBLIC", "lifecycleState": "PUBLISHED",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []}, "isReshareDisabledByAuthor": False, **extra}


def test_linkedin_version_and_protocol_headers(fake):
    headers = li_headers(fake)
    del headers["LinkedIn-Version"]
    missing = call("POST", f"{fake.base_url}/rest/posts", json_body=post_body("x"), headers=headers)
    assert missing.status == 400 and missing.json["code"] == "VERSION_MISSING"
    old = li_post(fake, post_body("x"), **{"LinkedIn-Version": "202001"})
    assert old.status == 426 and old.json == {"status": 426, "code": "NONEXISTENT_VERSION",
                                              "message": "Requested version 202001 is not active"}
    headers = li_headers(fake)
    del headers["X-Restli-Protocol-Version"]
    assert call("POST", f"{fake.base_url}/rest/posts", json_body=post_body("x"), headers=headers).status == 400


def test_linkedin_401_bodies(fake):
    assert li_post(fake, post_body("x"), Authorization="Bearer nope").json == {
        "status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN", "message": "Invalid access token"}
    fake.tokens({"token": LI_TOKEN, "revoked": True})
    assert li_post(fake, post_body("x")).json["serviceErrorCode"] == 65601
    fake.tokens({"token": LI_TOKEN, "revoked": False, "expired": True})
    expired = li_post(fake, post_body("x"))
    assert expired.status == 401 and (expired.json["serviceErrorCode"], expired.json["code"]) == (
        65602, "EXPIRED_ACCESS_TOKEN")


def test_linkedin_post_created_and_duplicate(fake):
    created = li_post(fake, post_body("Hello LinkedIn"))
    assert created.status == 201 and created.body == b""
    urn = created.header("x-restli-id")
    assert urn.startswith("urn:li:share:")
    duplicate = li_post(fake, post_body("Hello LinkedIn"))
    assert duplicate.status == 422 and duplicate.json["message"] == f"Content is a duplicate of {urn}"
    raw = call("GET", f"{fake.base_url}/rest/posts/{urn}", headers=li_headers(fake))
    assert raw.status == 400
    encoded = call("GET", f"{fake.base_url}/rest/posts/{urllib.parse.quote(urn, safe='')}", headers=li_headers(fake))
    assert encoded.json["commentary"] == "Hello LinkedIn" and encoded.json["id"] == urn
    assert [(p["id"], p["text"]) for p in fake.published("linkedin")] == [(urn, "Hello LinkedIn")]


def test_linkedin_permissions_by_org_role(fake):
    analyst_org = li_post(fake, post_body("x", author="urn:li:organization:40000002"))
    assert analyst_org.status == 403 and analyst_org.json["code"] == "ACCESS_DENIED"
    member = li_post(fake, post_body("as me", author="urn:li:person:fakeMember1"))
    assert member.status == 201
    acls = call("GET", f"{fake.base_url}/rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&state=APPROVED",
                headers=li_headers(fake)).json
    assert [(e["organization"], e["role"]) for e in acls["elements"]] == [(LI_ORG, "ADMINISTRATOR")]
    every = call("GET", f"{fake.base_url}/rest/organizationAcls?q=roleAssignee", headers=li_headers(fake)).json
    assert {e["role"] for e in every["elements"]} == {"ADMINISTRATOR", "ANALYST"}


def test_linkedin_image_upload_then_post(fake):
    init = call("POST", f"{fake.base_url}/rest/images?action=initializeUpload",
                json_body={"initializeUploadRequest": {"owner": LI_ORG}}, headers=li_headers(fake)).json["value"]
    assert init["image"].startswith("urn:li:image:") and init["uploadUrl"].startswith(fake.base_url)
    early = li_post(fake, post_body("img", content={"media": {"id": init["image"], "altText": "a"}}))
    assert early.status == 400
    content = media_bytes("image-2048.jpg")
    put = call("PUT", init["uploadUrl"], data=content, headers={"Authorization": f"Bearer {LI_TOKEN}",
                                                                 "Content-Type": "image/jpeg"})
    assert put.status == 201
    status = call("GET", f"{fake.base_url}/rest/images/{urllib.parse.quote(init['image'], safe='')}",
                  headers=li_headers(fake)).json
    assert status["status"] == "AVAILABLE"
    assert li_post(fake, post_body("img", content={"media": {"id": init["image"], "altText": "a"}})).status == 201
    assert fake.published("linkedin")[0]["images"][0]["sha256"] == media_sha256("image-2048.jpg")


def test_linkedin_daily_limit(fake):
    fake.configure({"linkedin": {"member_daily_limit": 1}})
    assert li_post(fake, post_body("one")).status == 201
    limited = li_post(fake, post_body("two"))
    assert limited.status == 429 and limited.json["code"] == "TOO_MANY_REQUESTS"


def test_linkedin_token_rotation_and_invalid_refresh(fake):
    form = {"grant_type": "refresh_token", "refresh_token": "fake-li-refresh-token-1",
            "client_id": "fake-linkedin-client-id", "client_secret": "fake-linkedin-client-secret"}
    reply = call("POST", f"{fake.base_url}/oauth/v2/accessToken", form=form).json
    assert reply["expires_in"] == 5183999 and reply["refresh_token"] != form["refresh_token"]
    assert 0 < reply["refresh_token_expires_in"] <= 364 * 86400
    old = call("POST", f"{fake.base_url}/oauth/v2/accessToken", form=form)
    assert old.status == 400 and old.json["error"] == "invalid_request"
    fake.configure({"linkedin": {"invalid_refresh_error": "invalid_grant"}})
    assert call("POST", f"{fake.base_url}/oauth/v2/accessToken", form=form).json["error"] == "invalid_grant"
    newer = call("POST", f"{fake.base_url}/oauth/v2/accessToken",
                 form={**form, "refresh_token": reply["refresh_token"]})
    assert newer.status == 200
    assert li_post(fake, post_body("fresh token"), Authorization=f"Bearer {newer.json['access_token']}").status == 201


def test_linkedin_find_delete_and_introspect(fake):
    urn = li_post(fake, post_body("findable")).header("x-restli-id")
    author = urllib.parse.quote(LI_ORG, safe="")
    found = call("GET", f"{fake.base_url}/rest/posts?q=author&author={author}", headers=li_headers(fake)).json
    assert [p["id"] for p in found["elements"]] == [urn]
    encoded = urllib.parse.quote(urn, safe="")
    assert call("DELETE", f"{fake.base_url}/rest/posts/{encoded}", headers=li_headers(fake)).status == 204
    assert call("DELETE", f"{fake.base_url}/rest/posts/{encoded}", headers=li_headers(fake)).status == 204
    assert call("GET", f"{fake.base_url}/rest/posts/{encoded}", headers=li_headers(fake)).status == 404
    info = call("POST", f"{fake.base_url}/oauth/v2/introspectToken", form={
        "client_id": "fake-linkedin-client-id", "client_secret": "fake-linkedin-client-secret", "token": LI_TOKEN}).json
    assert info["active"] is True and info["status"] == "active" and "w_member_social" in info["scope"]
    me = call("GET", f"{fake.base_url}/v2/userinfo", headers={"Authorization": f"Bearer {LI_TOKEN}"}).json
    assert me["sub"] == "fakeMember1"


# ----- media --------------------------------------------------------------------------------------------------------

def test_media_is_deterministic_with_digest_and_ranges(fake):
    reply = call("GET", fake.media_url("video-1m.mp4"))
    assert reply.status == 200 and len(reply.body) == 1024 * 1024 and reply.header("Content-Type") == "video/mp4"
    assert reply.body == media_bytes("video-1m.mp4") and reply.body[4:8] == b"ftyp"
    assert reply.header("X-Fake-Sha256") == hashlib.sha256(reply.body).hexdigest()
    assert call("GET", fake.media_url("video-1m.mp4")).body == reply.body
    assert media_bytes("video-1000.mp4") != media_bytes("other-1000.mp4")
    part = call("GET", fake.media_url("image-100.jpg"), headers={"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == media_bytes("image-100.jpg")[10:20]


def test_media_redirect_for_ssrf_tests(fake):
    reply = call("GET", fake.redirect_url("http://169.254.169.254/latest/meta-data/"))
    assert reply.status == 302 and reply.header("Location") == "http://169.254.169.254/latest/meta-data/"
    assert call("GET", fake.media_url("status/404")).status == 404


# ----- fault scripting ----------------------------------------------------------------------------------------------

def feed(fake, text: str, timeout: float = 10) -> Reply:
    return call("POST", graph(fake, f"/{PAGE}/feed"), form={"message": text, "access_token": PAGE_TOKEN},
                timeout=timeout)


def test_script_respond_on_nth_occurrence_with_headers(fake):
    fake.script([{"platform": "facebook", "method": "POST", "path": r"/feed$", "nth": 2, "action": "respond",
                  "status": 429, "body": {"error": {"message": "slow down", "code": 4}},
                  "headers": {"Retry-After": "7"}}])
    assert feed(fake, "1").status == 200
    second = feed(fake, "2")
    assert second.status == 429 and second.header("Retry-After") == "7" and second.json["error"]["code"] == 4
    assert feed(fake, "3").status == 200
    assert [p["text"] for p in fake.published("facebook")] == ["1", "3"]
    assert fake.rules()[0]["matched"] == 3 and fake.rules()[0]["fired"] == 1


def test_script_error_action_uses_each_platforms_shape(fake):
    fake.script([{"platform": "facebook", "action": "error", "code": 1, "times": 1},
                 {"platform": "youtube", "action": "error", "reason": "backendError", "times": 1},
                 {"platform": "linkedin", "action": "error", "status": 503, "times": 1}])
    meta = feed(fake, "x")
    assert meta.status == 500 and meta.json["error"]["message"] == "An unknown error occurred"
    assert meta.json["error"]["is_transient"] is True
    youtube = call("GET", f"{fake.base_url}/youtube/v3/channels?part=id&mine=true",
                   headers={"Authorization": f"Bearer {YT_TOKEN}"})
    assert youtube.status == 503 and youtube.json["error"]["errors"][0]["reason"] == "backendError"
    linkedin = li_post(fake, post_body("x"))
    assert linkedin.status == 503 and linkedin.json["status"] == 503
    assert feed(fake, "after").status == 200


def test_script_probability_is_seeded_and_repeatable(fake):
    def outcomes() -> list[int]:
        fake.reset()
        fake.configure({"facebook": {"duplicate_window_seconds": 0}})
        fake.script([{"path": "/feed", "probability": 0.5, "seed": 7, "action": "respond", "status": 503}])
        return [feed(fake, "same").status for _ in range(12)]

    first = outcomes()
    assert first == outcomes()
    assert set(first) == {200, 503}


def test_script_every_and_times(fake):
    fake.configure({"facebook": {"duplicate_window_seconds": 0}})
    fake.script([{"path": "/feed", "every": 2, "times": 2, "action": "respond", "status": 503}])
    assert [feed(fake, "x").status for _ in range(6)] == [200, 503, 200, 503, 200, 200]


def test_drop_before_processing_publishes_nothing(fake):
    fake.script([{"path": "/feed", "action": "drop", "times": 1}])
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        feed(fake, "lost")
    assert fake.published("facebook") == []
    assert fake.requests("facebook")[-1]["outcome"] == "dropped"


def test_drop_after_processing_publishes_but_loses_the_response(fake):
    fake.script([{"path": "/feed", "action": "drop_after_processing", "times": 1}])
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        feed(fake, "ambiguous")
    published = fake.published("facebook")
    assert [p["text"] for p in published] == ["ambiguous"]
    record = fake.requests("facebook")[-1]
    assert (record["outcome"], record["processed"], record["processed_status"]) == ("dropped", True, 200)
    read = call("GET", graph(fake, f"/{PAGE}/feed?fields=id,message&access_token={PAGE_TOKEN}")).json
    assert read["data"][0] == {"id": published[0]["id"], "message": "ambiguous"}


def test_hang_until_timeout_and_hang_with_processing(fake):
    fake.script([{"path": "/feed", "action": "hang", "process": True, "times": 1}])
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        feed(fake, "slow", timeout=0.5)
    assert [p["text"] for p in fake.published("facebook")] == ["slow"]
    assert fake.requests("facebook")[-1]["outcome"] == "hung"
    assert feed(fake, "next").status == 200  # other connections are unaffected


def test_hang_for_seconds_then_close(fake):
    fake.script([{"path": "/feed", "action": "hang", "seconds": 0.2, "times": 1}])
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        feed(fake, "x", timeout=5)
    assert fake.published("facebook") == []


def test_malformed_truncated_and_delayed_responses(fake):
    fake.script([{"path": "/feed", "nth": 1, "action": "malformed", "process": True},
                 {"path": "/feed", "nth": 2, "action": "truncated"},
                 {"path": "/feed", "nth": 3, "action": "delay", "seconds": 0.2}])
    malformed = feed(fake, "m")
    assert malformed.status == 200
    with pytest.raises(ValueError):
        malformed.json
    with pytest.raises((http.client.IncompleteRead, ConnectionError, urllib.error.URLError)):
        feed(fake, "t")
    started = time.monotonic()
    delayed = feed(fake, "d")
    assert delayed.status == 200 and time.monotonic() - started >= 0.2
    assert [p["text"] for p in fake.published("facebook")] == ["m", "t", "d"]


# ----- recording and control --------------------------------------------------------------------------------------

def test_requests_are_recorded_with_parsed_bodies(fake):
    feed(fake, "recorded")
    wa_send(fake, {"to": "15550001111", "type": "text", "text": {"body": "x"}})
    start = start_upload(fake, 4)
    call("PUT", start.header("Location"), data=b"\x00\x01\x02\x03", headers={"Content-Type": "video/mp4"})
    fb = fake.requests("facebook")
    assert fb[0]["method"] == "POST" and fb[0]["body"]["message"] == "recorded" and fb[0]["status"] == 200
    assert fake.requests("whatsapp")[0]["body"]["text"] == {"body": "x"}
    put = fake.requests("youtube", method="PUT")[0]
    assert put["body_bytes"] == 4 and put["body_sha256"] == hashlib.sha256(b"\x00\x01\x02\x03").hexdigest()
    over_http = call("GET", f"{fake.base_url}/_fake/requests?platform=facebook,whatsapp").json
    assert [r["platform"] for r in over_http] == ["facebook", "whatsapp"]
    assert call("DELETE", f"{fake.base_url}/_fake/requests").status == 200
    assert fake.requests() == []


def test_request_log_keeps_the_newest_when_capped(fake):
    fake.configure({"recording": {"max_requests": 10}})
    for _ in range(25):
        call("GET", graph(fake, f"/me?access_token={USER_TOKEN}"))
    seqs = [r["seq"] for r in fake.requests()]
    assert len(seqs) <= 10 and seqs[-1] == 25 and seqs == sorted(seqs)
    assert [r["seq"] for r in fake.requests(since=23)] == [24, 25]


def test_control_endpoints_over_http(fake):
    base = fake.base_url
    rules = call("POST", f"{base}/_fake/script", json_body=[{"path": "/feed", "action": "respond", "status": 502}])
    assert rules.status == 200 and rules.json[0]["action"] == "respond"
    assert feed(fake, "x").status == 502
    assert call("POST", f"{base}/_fake/reset").json == {"reset": True}
    assert feed(fake, "x").status == 200
    clock = call("POST", f"{base}/_fake/clock", json_body={"advance": 3600}).json
    assert 3590 < clock["offset"] < 3610
    assert call("POST", f"{base}/_fake/config", json_body={"nope": 1}).status == 400
    assert call("POST", f"{base}/_fake/script", json_body=[{"action": "explode"}]).status == 400
    token = call("POST", f"{base}/_fake/tokens", json_body={"token": "fake-extra-page-token", "platform": "facebook",
                                                           "kind": "PAGE", "subject": PAGE,
                                                           "scopes": ["pages_manage_posts", "pages_read_engagement"],
                                                           "user_id": "10000001"}).json
    assert token[0]["value"] == "fake-extra-page-token"
    assert call("POST", graph(fake, f"/{PAGE}/feed"), form={"message": "extra",
                                                           "access_token": "fake-extra-page-token"}).status == 200
    published = call("GET", f"{base}/_fake/published?platform=facebook").json
    assert [p["text"] for p in published] == ["x", "extra"]


def test_credentials_are_obvious_fakes_and_config_points_at_the_fake(fake):
    credentials = call("GET", f"{fake.base_url}/_fake/credentials").json
    secrets = [v for entry in credentials.values() for k, v in entry.items()
               if k in ("accessToken", "refreshToken", "clientSecret", "appSecret")]
    assert secrets and all(s.startswith("fake-") for s in secrets)
    assert not any(s.startswith(("EAA", "ya29.", "AQV", "AQX", "1//")) for s in secrets)
    config = call("GET", f"{fake.base_url}/_fake/sidecar-config").json
    platforms = config["platforms"]
    assert {p["baseUrl"] for p in platforms.values()} == {fake.base_url}
    assert platforms["youtube"]["uploadUrl"] == f"{fake.base_url}/upload/youtube/v3/videos"
    assert platforms["youtube"]["tokenUrl"] == f"{fake.base_url}/token"
    assert platforms["linkedin"]["tokenUrl"] == f"{fake.base_url}/oauth/v2/accessToken"
    assert config["media"] == {"allowPrivateNetworks": True}


# ----- HTTP behaviour -----------------------------------------------------------------------------------------------

def test_keep_alive_chunked_bodies_and_expect_continue(fake):
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    for text in ("one", "two"):
        connection.request("POST", f"/v23.0/{PAGE}/feed?access_token={PAGE_TOKEN}",
                           body=iter([b"message=", text.encode()]),  # no length: http.client sends chunks
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Connection") == "keep-alive"
        response.read()
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    sock.sendall(f"POST /v23.0/{PAGE}/feed?access_token={PAGE_TOKEN} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\n\r\n".encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
    sock.sendall(b"message=three")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK")
    sock.close()
    connection.close()
    assert [p["text"] for p in fake.published("facebook")] == ["one", "two", "three"]


def test_hundreds_of_concurrent_keep_alive_connections(fake):
    fake.configure({"facebook": {"duplicate_window_seconds": 0}})
    errors: list[BaseException] = []
    barrier = threading.Barrier(300)

    def client(index: int) -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=30)
            connection.connect()
            barrier.wait(timeout=30)
            for _ in range(3):
                connection.request("POST", f"/v23.0/{PAGE}/feed?access_token={PAGE_TOKEN}", body=f"message=m{index}",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
                response = connection.getresponse()
                response.read()
                assert response.status == 200
            connection.close()
        except BaseException as error:  # collected and re-raised below
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(300)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(fake.published("facebook")) == 900


# ----- CLI ----------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def cli() -> Iterator[tuple[subprocess.Popen, int]]:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_platforms.py")
    with subprocess.Popen([sys.executable, script, "--port", "0", "--seed", "3"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            line = process.stdout.readline()
            assert line, process.stderr.read().decode()
            yield process, json.loads(line)["port"]
        finally:
            if process.poll() is None:
                process.kill()


def test_cli_prints_port_and_exits_when_stdin_closes():
    with cli() as (process, port):
        reply = call("GET", f"http://127.0.0.1:{port}/_fake/health")
        assert reply.json == {"ok": True, "seed": 3}
        process.stdin.close()
        assert process.wait(timeout=10) == 0


def test_cli_exits_on_sigterm():
    with cli() as (process, port):
        assert call("GET", f"http://127.0.0.1:{port}/v23.0/me?access_token={USER_TOKEN}").status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_unique_ids_are_deterministic_across_resets(fake):
    first = [feed(fake, f"{i}-{uuid.uuid4()}").json["id"] for i in range(3)]
    fake.reset()
    assert [feed(fake, f"{i}-{uuid.uuid4()}").json["id"] for i in range(3)] == first
