"""Issue 5 (items 3-7) end to end: Facebook Pages, Instagram and WhatsApp over the real binary against the fake Graph
API. Each post kind publishes, answers postId/postUrl/status, and the fake confirms the exact requests."""
from __future__ import annotations

import json
import time

import pytest
from fakeapi.contracts import graph_version

PAGE = "20000001"
IG_USER = "17841400000000001"
PHONE = "30000001"
VERSION_PREFIX = f"/{graph_version()}/"
FB = {"credentialRef": "CRED-fb-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
IG = {"credentialRef": "CRED-ig-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
WA = {"credentialRef": "CRED-wa-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
IMAGE = "https://cdn.example.test/photo.jpg"
VIDEO = "https://cdn.example.test/clip.mp4"


def ok(answer: dict) -> dict:
    assert "result" in answer, answer
    return answer["result"]


def failed(answer: dict) -> dict:
    assert "error" in answer, answer
    return answer["error"]


def graph_requests(fake, platform: str, method: str | None = None, path: str | None = None) -> list[dict]:
    return fake.requests(platform=platform, method=method, path=path)


def assert_graph_auth(request: dict, token: str, scheme: str = "Bearer") -> None:
    assert request["headers"].get("authorization") == f"{scheme} {token}"
    assert token not in json.dumps(request["query"])


# ----- Facebook Pages -------------------------------------------------------------------------------------------------


def test_facebook_text_and_link_post(fake, sidecar_factory):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "Hello from the sidecar", "link": "https://example.com"}))
    assert answer["postId"].startswith(PAGE + "_")
    assert answer["postUrl"] == f"https://www.facebook.com/{PAGE}/posts/{answer['postId'].split('_')[1]}"
    assert answer["status"] == "published" and answer["platform"] == "facebook" and answer["replayed"] is False
    [request] = graph_requests(fake, "facebook", "POST", "/feed$")
    assert request["path"] == f"{VERSION_PREFIX}{PAGE}/feed"
    assert request["query"] == {"fields": "id,permalink_url"}
    assert request["body"] == {"message": "Hello from the sidecar", "link": "https://example.com"}
    assert_graph_auth(request, "fake-fb-page-token-1")
    [published] = fake.published(platform="facebook")
    assert published["id"] == answer["postId"] and published["kind"] == "feed"


def test_facebook_single_photo(fake, sidecar_factory):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "A photo", "imageUrl": IMAGE}))
    assert answer["status"] == "published"
    assert answer["postUrl"] == f"https://www.facebook.com/{answer['postId']}"
    [request] = graph_requests(fake, "facebook", "POST", "/photos$")
    assert request["body"] == {"url": IMAGE, "caption": "A photo"}
    [published] = fake.published(platform="facebook", kind="photo")
    assert published["id"] == answer["postId"] and published["media_url"] == IMAGE


def test_facebook_multi_photo(fake, sidecar_factory):
    sidecar = sidecar_factory()
    urls = [f"https://cdn.example.test/{n}.jpg" for n in range(3)]
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "Three photos", "imageUrls": urls}))
    photos = graph_requests(fake, "facebook", "POST", "/photos$")
    assert [p["body"] for p in photos] == [{"url": url, "published": "false"} for url in urls]
    [feed] = graph_requests(fake, "facebook", "POST", "/feed$")
    assert feed["body"]["message"] == "Three photos"
    [published] = fake.published(platform="facebook")
    assert published["id"] == answer["postId"] and len(published["media"]) == 3
    assert [json.loads(feed["body"][f"attached_media[{i}]"])["media_fbid"] for i in range(3)] == published["media"]


def test_facebook_video(fake, sidecar_factory):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "A video", "videoUrl": VIDEO}))
    assert answer["status"] == "processing"
    assert answer["postUrl"] == f"https://www.facebook.com/{PAGE}/videos/{answer['postId']}"
    [request] = graph_requests(fake, "facebook", "POST", "/videos$")
    assert request["body"] == {"file_url": VIDEO, "description": "A video"}
    assert fake.published(platform="facebook", kind="video")[0]["id"] == answer["postId"]


def test_facebook_reel(fake, sidecar_factory):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("facebook/post", {**FB, "kind": "reel", "text": "A reel", "videoUrl": VIDEO}))
    video = answer["postId"]
    assert answer["postUrl"] == f"https://www.facebook.com/reel/{video}" and answer["status"] == "processing"
    reels = graph_requests(fake, "facebook", "POST", "/video_reels$")
    assert [r["body"]["upload_phase"] for r in reels] == ["start", "finish"]
    assert reels[1]["body"] == {"upload_phase": "finish", "video_id": video, "video_state": "PUBLISHED",
                                "description": "A reel"}
    [upload] = graph_requests(fake, "facebook", "POST", "^/video-upload/")
    assert upload["path"] == f"/video-upload/{graph_version()}/{video}"
    assert upload["headers"]["file_url"] == VIDEO
    assert_graph_auth(upload, "fake-fb-page-token-1", scheme="OAuth")
    assert graph_requests(fake, "facebook", "GET", f"/{video}$"), "the upload is confirmed before finishing"
    assert fake.published(platform="facebook", kind="reel")[0]["id"] == video


def test_facebook_photo_and_video_stories(fake, sidecar_factory):
    sidecar = sidecar_factory()
    photo = ok(sidecar.call("facebook/post", {**FB, "kind": "story", "imageUrl": IMAGE}))
    assert photo["status"] == "published" and photo["postUrl"] is None
    [story] = graph_requests(fake, "facebook", "POST", "/photo_stories$")
    assert set(story["body"]) == {"photo_id"}
    video = ok(sidecar.call("facebook/post", {**FB, "kind": "story", "videoUrl": VIDEO}))
    finish = graph_requests(fake, "facebook", "POST", "/video_stories$")[-1]
    assert finish["body"]["upload_phase"] == "finish"
    stories = fake.published(platform="facebook", kind="story")
    assert stories[0]["id"] == photo["postId"]
    assert stories[1]["post_id"] == video["postId"], "a video story answers the story's post id, not the video id"


def test_facebook_expired_token_is_auth_failed_after_one_request(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("facebook/post", {**FB, "credentialRef": "CRED-fb-expired", "text": "late"}))
    assert error["code"] == -31004 and error["data"]["kind"] == "auth_failed"
    assert error["data"]["platformCode"] == 190 and error["data"]["platformSubcode"] == 463
    assert "Reconnect the Facebook account" in error["message"]
    assert len(graph_requests(fake, "facebook", "POST")) == 1
    assert not fake.published()


def test_facebook_lost_response_is_reconciled_from_the_feed(fake, sidecar_factory):
    sidecar = sidecar_factory({"http": {"timeoutMs": 700}})
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/feed$"},
                  "action": "hang", "process": True, "seconds": 5, "times": 1}])
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "made it after all"}))
    [published] = fake.published(platform="facebook")
    assert answer["postId"] == published["id"]
    assert len(graph_requests(fake, "facebook", "POST", "/feed$")) == 1, "never posted twice"
    [lookup] = graph_requests(fake, "facebook", "GET", "/feed$")
    assert lookup["query"] == {"fields": "id,message,created_time,permalink_url", "limit": "100"}


def test_facebook_app_usage_at_100_percent_fails_fast(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.set_usage(app={"call_count": 100, "total_time": 40, "total_cputime": 30})
    first = failed(sidecar.call("facebook/post", {**FB, "text": "throttled", "deadlineMs": 5000}))
    assert first["data"]["kind"] == "rate_limited" and first["data"]["platformCode"] == 4
    assert first["data"]["retryAfterMs"] >= 55_000
    before = len(graph_requests(fake, "facebook"))
    second = failed(sidecar.call("facebook/post", {**FB, "text": "still throttled", "deadlineMs": 5000}))
    assert second["data"]["kind"] == "rate_limited" and second["data"]["attempts"] == 0
    assert len(graph_requests(fake, "facebook")) == before, "a surely throttled call spends no request"


def test_facebook_validate_and_refresh(fake, sidecar_factory):
    sidecar = sidecar_factory()
    validation = ok(sidecar.call("facebook/validate", {"credentialRef": "CRED-fb-001", "customerId": "CUST-1"}))
    assert validation["valid"] is True and validation["accountId"] == PAGE
    assert validation["accountName"] == "Fake Page One"
    assert {"pages_manage_posts", "pages_read_engagement"} <= set(validation["scopes"])
    refresh = failed(sidecar.call("facebook/refresh", {"credentialRef": "CRED-fb-001", "customerId": "CUST-1"}))
    assert refresh["code"] == -31013 and refresh["data"]["kind"] == "unsupported"


def test_facebook_invalid_params_are_refused_before_any_request(fake, sidecar_factory):
    sidecar = sidecar_factory()
    for params, field in [({}, "text"), ({"imageUrl": "http://cdn.example.test/a.jpg"}, "imageUrl"),
                          ({"text": "a", "captoin": "typo"}, "captoin"),
                          ({"imageUrls": [IMAGE]}, "imageUrls"), ({"kind": "reel", "imageUrl": IMAGE}, "videoUrl")]:
        error = failed(sidecar.call("facebook/post", {**FB, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "facebook")


# ----- Instagram --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params, kind, container", [
    ({"caption": "An image", "imageUrl": IMAGE}, "image", {"image_url": IMAGE, "caption": "An image"}),
    ({"caption": "A reel", "videoUrl": VIDEO}, "reels",
     {"media_type": "REELS", "video_url": VIDEO, "caption": "A reel"}),
    ({"kind": "story", "imageUrl": IMAGE}, "stories", {"media_type": "STORIES", "image_url": IMAGE}),
])
def test_instagram_single_media_kinds(fake, sidecar_factory, params, kind, container):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("instagram/post", {**IG, **params}))
    [published] = fake.published(platform="instagram")
    assert published["kind"] == kind
    assert answer["postId"] == published["id"] and answer["postUrl"] == published["url"]
    assert answer["postUrl"].startswith("https://www.instagram.com/") and answer["status"] == "published"
    [create] = graph_requests(fake, "instagram", "POST", "/media$")
    assert create["path"] == f"{VERSION_PREFIX}{IG_USER}/media" and create["body"] == container
    assert_graph_auth(create, "fake-fb-page-token-1")
    polls = graph_requests(fake, "instagram", "GET", f"/{published['container_id']}$")
    assert len(polls) == 2 and polls[0]["query"] == {"fields": "status_code,status"}, "IN_PROGRESS, then FINISHED"
    [publish] = graph_requests(fake, "instagram", "POST", "/media_publish$")
    assert publish["body"] == {"creation_id": published["container_id"]}


def test_instagram_carousel(fake, sidecar_factory):
    sidecar = sidecar_factory()
    items = [{"imageUrl": "https://cdn.example.test/1.jpg"}, {"videoUrl": VIDEO}, {"imageUrl": IMAGE}]
    answer = ok(sidecar.call("instagram/post", {**IG, "caption": "Swipe", "items": items}))
    [published] = fake.published(platform="instagram", kind="carousel")
    assert answer["postId"] == published["id"] and answer["postUrl"] == published["url"]
    creates = graph_requests(fake, "instagram", "POST", "/media$")
    assert [c["body"] for c in creates[:3]] == [
        {"is_carousel_item": "true", "image_url": "https://cdn.example.test/1.jpg"},
        {"is_carousel_item": "true", "media_type": "VIDEO", "video_url": VIDEO},
        {"is_carousel_item": "true", "image_url": IMAGE},
    ]
    parent = creates[3]["body"]
    assert parent["media_type"] == "CAROUSEL" and parent["caption"] == "Swipe"
    assert parent["children"].split(",") == published["children"]


def test_instagram_lost_publish_checks_the_container_and_does_not_publish_again(fake, sidecar_factory):
    sidecar = sidecar_factory({"http": {"timeoutMs": 700}})
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": "/media_publish$"},
                  "action": "hang", "process": True, "seconds": 5, "times": 1}])
    answer = ok(sidecar.call("instagram/post", {**IG, "caption": "exactly once", "imageUrl": IMAGE}))
    [published] = fake.published(platform="instagram")
    assert answer["postId"] == published["id"] and answer["postUrl"] == published["url"]
    assert len(graph_requests(fake, "instagram", "POST", "/media_publish$")) == 1
    status_checks = graph_requests(fake, "instagram", "GET", f"/{published['container_id']}$")
    assert len(status_checks) == 3, "two polls before the publish, one check after the lost answer"
    assert graph_requests(fake, "instagram", "GET", f"/{IG_USER}/media$")


def test_a_publish_reset_on_a_reused_connection_is_not_resent(fake, sidecar_factory):
    # libcurl re-sends a request when a *reused* connection dies before any response byte. The publish rides the
    # connection of the container's status checks, libcurl is refused the re-send, and the lost answer is reconciled
    # (the container says PUBLISHED) instead.
    sidecar = sidecar_factory()
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": "/media_publish$"},
                  "action": "drop_after_processing", "times": 1}])
    answer = sidecar.call("instagram/post", {**IG, "caption": "reset after processing", "imageUrl": IMAGE})
    publishes = graph_requests(fake, "instagram", "POST", "/media_publish$")
    assert len(publishes) == 1
    earlier = [r for r in graph_requests(fake, "instagram") if r["seq"] < publishes[0]["seq"]]
    assert publishes[0]["client_port"] in {r["client_port"] for r in earlier}, "the publish went out on a new connection"
    assert "result" in answer, answer
    assert len(fake.published(platform="instagram")) == 1


def test_instagram_container_error_is_permanent_and_nothing_is_published(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("instagram/post", {**IG, "imageUrl": IMAGE + "?fake_status=error"}))
    assert error["data"]["kind"] == "permanent" and "2207082" in error["message"]
    assert not graph_requests(fake, "instagram", "POST", "/media_publish$")
    assert not fake.published()


def test_instagram_validate_reports_the_account(fake, sidecar_factory):
    sidecar = sidecar_factory()
    validation = ok(sidecar.call("instagram/validate", {"credentialRef": "CRED-ig-001", "customerId": "CUST-1"}))
    assert validation["valid"] is True and validation["accountName"] == "fake_ig_one"
    [limit] = graph_requests(fake, "instagram", "GET", "/content_publishing_limit$")
    assert limit["query"] == {"fields": "config,quota_usage"}
    assert validation["quota"]["total"] == 50 and validation["quota"]["used"] == 0


def test_instagram_facebook_login_refresh_is_unsupported(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("instagram/refresh", {"credentialRef": "CRED-ig-001", "customerId": "CUST-1"}))
    assert error["data"]["kind"] == "unsupported" and "Facebook Login" in error["message"]


def instagram_login_sidecar(fake, sidecar_factory, expires_in: float):
    config = fake.sidecar_config()
    config["platforms"]["instagram"]["loginBaseUrl"] = fake.base_url
    sidecar = sidecar_factory({"platforms": config["platforms"]})
    sidecar.credentials["CRED-igl-001"] = {
        "accessToken": "fake-ig-login-token-1", "accountId": IG_USER, "variant": "instagram_login",
        "expiresAt": time.time() + expires_in}
    return sidecar


def test_instagram_login_refresh_hands_the_new_token_to_the_parent(fake, sidecar_factory):
    sidecar = instagram_login_sidecar(fake, sidecar_factory, expires_in=20 * 86400)
    answer = ok(sidecar.call("instagram/refresh", {"credentialRef": "CRED-igl-001", "customerId": "CUST-1"}))
    assert answer["refreshed"] is True and answer["expiresAt"]
    [refresh] = graph_requests(fake, "instagram", "GET", "^/refresh_access_token$")
    assert refresh["query"]["grant_type"] == "ig_refresh_token"
    updates = [r for r in sidecar.server_requests if r["method"] == "credentials/update"]
    assert len(updates) == 1
    new_token = updates[0]["params"]["accessToken"]
    assert new_token.startswith("fake-ig-login-token") and new_token != "fake-ig-login-token-1"
    assert sidecar.credentials["CRED-igl-001"]["accessToken"] == new_token
    assert new_token not in sidecar.stderr.decode(errors="replace")


def test_instagram_login_token_near_expiry_is_refreshed_once_before_posting(fake, sidecar_factory):
    sidecar = instagram_login_sidecar(fake, sidecar_factory, expires_in=60)
    answer = ok(sidecar.call("instagram/post", {**IG, "credentialRef": "CRED-igl-001", "imageUrl": IMAGE}))
    assert answer["postUrl"].startswith("https://www.instagram.com/p/")
    assert len(graph_requests(fake, "instagram", "GET", "^/refresh_access_token$")) == 1
    new_token = sidecar.credentials["CRED-igl-001"]["accessToken"]
    [create] = graph_requests(fake, "instagram", "POST", "/media$")
    assert_graph_auth(create, new_token)


def test_instagram_invalid_params(fake, sidecar_factory):
    sidecar = sidecar_factory()
    one = [{"imageUrl": IMAGE}]
    for params, field in [({"items": one}, "items"), ({"items": one * 11}, "items"),
                          ({"caption": "x" * 2201, "imageUrl": IMAGE}, "caption"),
                          ({"imageUrl": "http://cdn.example.test/a.jpg"}, "imageUrl"),
                          ({"kind": "story", "caption": "no", "imageUrl": IMAGE}, "caption")]:
        error = failed(sidecar.call("instagram/post", {**IG, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "instagram")


# ----- WhatsApp ---------------------------------------------------------------------------------------------------


def test_whatsapp_text_image_and_template(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.customer_message("15550003333")
    text = ok(sidecar.call("whatsapp/send", {**WA, "to": "+15550001111", "text": "Hello"}))
    image = ok(sidecar.call("whatsapp/send", {**WA, "to": "15550003333",
                                              "image": {"url": IMAGE, "caption": "Look"}}))
    template = ok(sidecar.call("whatsapp/send", {
        **WA, "to": "15550002222",
        "template": {"name": "order_update", "language": "en_US",
                     "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]}}))
    for answer in (text, image, template):
        assert answer["postId"].startswith("wamid.") and answer["postUrl"] is None
        assert answer["status"] == "accepted" and answer["platform"] == "whatsapp"
    assert [p["id"] for p in fake.published(platform="whatsapp")] == [text["postId"], image["postId"],
                                                                       template["postId"]]
    sends = graph_requests(fake, "whatsapp", "POST", "/messages$")
    assert all(s["path"] == f"{VERSION_PREFIX}{PHONE}/messages" for s in sends)
    assert_graph_auth(sends[0], "fake-wa-system-token-1")
    assert sends[0]["body"] == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": "15550001111", "type": "text", "text": {"body": "Hello"}}
    assert sends[1]["body"]["image"] == {"link": IMAGE, "caption": "Look"}
    assert sends[2]["body"]["template"]["language"] == {"code": "en_US"}


def test_whatsapp_outside_the_window_needs_a_template(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("whatsapp/send", {**WA, "to": "15550002222", "text": "Hello?"}))
    assert error["data"]["kind"] == "permanent" and error["data"]["platformCode"] == 131047
    assert "template" in error["message"]
    assert len(graph_requests(fake, "whatsapp", "POST")) == 1


def test_whatsapp_timeout_after_sending_is_outcome_unknown_after_one_request(fake, sidecar_factory):
    sidecar = sidecar_factory({"http": {"timeoutMs": 700}})
    fake.script([{"match": {"platform": "whatsapp", "method": "POST", "path": "/messages$"}, "action": "hang",
                  "seconds": 5}])
    error = failed(sidecar.call("whatsapp/send", {**WA, "to": "15550001111", "text": "lost?"}))
    assert error["code"] == -31008 and error["data"]["kind"] == "outcome_unknown"
    assert len(graph_requests(fake, "whatsapp", "POST", "/messages$")) == 1


def test_whatsapp_validate_and_refresh(fake, sidecar_factory):
    sidecar = sidecar_factory()
    validation = ok(sidecar.call("whatsapp/validate", {"credentialRef": "CRED-wa-001", "customerId": "CUST-1"}))
    assert validation["valid"] is True and validation["accountName"] == "Fake Business"
    [read] = graph_requests(fake, "whatsapp", "GET", f"/{PHONE}$")
    assert read["query"]["fields"].startswith("display_phone_number,verified_name,quality_rating")
    refresh = failed(sidecar.call("whatsapp/refresh", {"credentialRef": "CRED-wa-001", "customerId": "CUST-1"}))
    assert refresh["data"]["kind"] == "unsupported"


def test_whatsapp_invalid_params(fake, sidecar_factory):
    sidecar = sidecar_factory()
    for params, field in [({"text": "no recipient"}, "to"), ({"to": "+1 555 0001111", "text": "x"}, "to"),
                          ({"to": "15550001111", "text": "x" * 4097}, "text"),
                          ({"to": "15550001111", "image": {"url": "http://cdn.example.test/a.jpg"}}, "image.url")]:
        error = failed(sidecar.call("whatsapp/send", {**WA, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "whatsapp")


# ----- Secrets ----------------------------------------------------------------------------------------------------


def test_no_token_in_stderr_errors_or_notifications(fake, sidecar_factory):
    sidecar = sidecar_factory(args=["--log-level", "debug"])
    fake.set_usage(buc={PAGE: {"call_count": 100, "estimated_time_to_regain_access": 1}})
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": "/media_publish$"},
                  "action": "error", "code": 100, "message": "(#100) Invalid token fake-fb-page-token-1 given"}])
    answers = [
        sidecar.call("facebook/post", {**FB, "credentialRef": "CRED-fb-expired", "text": "dead token"}),
        sidecar.call("instagram/post", {**IG, "imageUrl": IMAGE}),
        sidecar.call("whatsapp/send", {**WA, "to": "15550002222", "text": "closed window"}),
        sidecar.call("facebook/post", {**FB, "text": "throttled page", "deadlineMs": 3000}),
        sidecar.call("whatsapp/validate", {"credentialRef": "CRED-wa-001", "customerId": "CUST-1"}),
    ]
    assert [a.get("error", {}).get("data", {}).get("kind") for a in answers[:4]] == [
        "auth_failed", "permanent", "permanent", "rate_limited"]
    sidecar.wait_events(5)
    sidecar.close()
    sidecar.assert_no_secrets()
    everything = sidecar.stderr.decode(errors="replace") + json.dumps(sidecar.notifications) + json.dumps(answers)
    assert sidecar.stderr, "debug logs were written"
    for token in ("fake-fb-page-token-1", "fake-fb-user-token-expired", "fake-wa-system-token-1"):
        assert token not in everything
