"""Issue 20 end to end: delete, insights, status and native scheduling (`publishAt`) through the real binary against
the fakes, on every platform that offers them, plus the `unsupported` and scheduling-window errors, the capabilities
that advertise them and the metric events and Prometheus counters they leave."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
import pytest

from test_meta import FB, IG, IMAGE, PAGE, WA, failed, ok
from test_youtube_linkedin import LI, YT

METRICS = {"views", "impressions", "reach", "likes", "comments", "shares", "saves", "clicks"}


def graph_version(fake) -> str:
    return fake.sidecar_config()["platforms"]["facebook"]["apiVersion"]


def rfc3339(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def post(sidecar, method: str, params: dict, timeout: float = 60) -> str:
    return ok(sidecar.call(method, params, timeout=timeout))["postId"]


def youtube_video(sidecar, fake, **extra) -> str:
    return post(sidecar, "youtube/post", {**YT, "title": "Ops", "videoUrl": fake.media_url("video-1m.mp4"), **extra},
                timeout=120)


# ----- capabilities ------------------------------------------------------------------------------------------------

def test_initialize_advertises_each_platforms_operations(fake, sidecar_factory):
    driver = type(sidecar_factory())()
    try:
        capabilities = driver.initialize(fake.sidecar_config())["capabilities"]["platforms"]
    finally:
        driver.close()
    assert set(capabilities["facebook"]) >= {"post", "delete", "insights", "status"}
    assert set(capabilities["youtube"]) >= {"post", "delete", "insights", "status"}
    assert set(capabilities["linkedin"]) >= {"post", "delete", "insights", "status"}
    assert set(capabilities["instagram"]) >= {"insights", "status"} and "delete" not in capabilities["instagram"]
    assert not {"delete", "insights", "status"} & set(capabilities["whatsapp"])


# ----- Facebook ----------------------------------------------------------------------------------------------------

def test_facebook_delete_then_delete_again_answers_not_deleted(fake, sidecar_factory):
    sidecar = sidecar_factory()
    post_id = post(sidecar, "facebook/post", {**FB, "text": "to be deleted"})
    deleted = ok(sidecar.call("facebook/delete", {**FB, "postId": post_id}))
    assert deleted.items() >= {"platform": "facebook", "postId": post_id, "deleted": True}.items()
    [delete] = fake.requests(platform="facebook", method="DELETE")
    assert delete["path"] == f"/{graph_version(fake)}/{post_id}"
    again = ok(sidecar.call("facebook/delete", {**FB, "postId": post_id}))
    assert again["deleted"] is False and post_id in again["reason"]
    status = ok(sidecar.call("facebook/status", {**FB, "postId": post_id}))
    assert status["state"] == "deleted"


def test_facebook_delete_a_photo(fake, sidecar_factory):
    sidecar = sidecar_factory()
    ok(sidecar.call("facebook/post", {**FB, "imageUrl": IMAGE, "text": "photo"}))
    [photo] = fake.published(platform="facebook", kind="photo")
    answer = ok(sidecar.call("facebook/delete", {**FB, "postId": photo["photo_id"]}))
    assert answer["deleted"] is True


def test_facebook_insights_map_meta_names(fake, sidecar_factory):
    sidecar = sidecar_factory()
    post_id = post(sidecar, "facebook/post", {**FB, "text": "counted"})
    fake.set_engagement(post_id, post_impressions=120, post_impressions_unique=80, post_clicks=7, reactions=12,
                        comments=3, shares=2)
    answer = ok(sidecar.call("facebook/insights", {**FB, "postId": post_id}))
    assert answer["metrics"] == {"impressions": 120, "reach": 80, "clicks": 7, "likes": 12, "comments": 3, "shares": 2}
    assert answer["platform"] == "facebook" and answer["postId"] == post_id
    assert datetime.fromisoformat(answer["fetchedAt"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)
    assert answer["raw"]["insights"]["data"][0]["name"] == "post_impressions"
    [insights] = fake.requests(platform="facebook", method="GET", path="/insights$")
    assert insights["query"]["metric"] == "post_impressions,post_impressions_unique,post_clicks"
    narrowed = ok(sidecar.call("facebook/insights", {**FB, "postId": post_id, "metrics": ["likes", "reach"]}))
    assert narrowed["metrics"] == {"likes": 12, "reach": 80}


def test_facebook_insights_refuse_an_unknown_metric_name(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("facebook/insights", {**FB, "postId": f"{PAGE}_1", "metrics": ["likes", "hearts"]}))
    assert error["code"] == -32602 and error["data"]["field"] == "metrics[1]" and "views" in error["message"]
    assert not fake.requests(platform="facebook")


def test_facebook_scheduled_post(fake, sidecar_factory):
    sidecar = sidecar_factory()
    at = datetime.now(timezone.utc) + timedelta(hours=2)
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "later", "publishAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    assert answer["status"] == "scheduled"
    [feed] = fake.requests(platform="facebook", method="POST", path="/feed$")
    assert feed["body"]["published"] == "false"
    assert abs(int(feed["body"]["scheduled_publish_time"]) - int(at.timestamp())) <= 1
    [scheduled] = fake.published(platform="facebook", kind="scheduled")
    assert scheduled["id"] == answer["postId"]
    status = ok(sidecar.call("facebook/status", {**FB, "postId": answer["postId"]}))
    assert status["state"] == "scheduled" and status["postUrl"]


def test_facebook_scheduled_photo_goes_through_the_feed(fake, sidecar_factory):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("facebook/post", {**FB, "imageUrl": IMAGE, "text": "photo later",
                                               "publishAt": rfc3339(timedelta(days=3))}))
    assert answer["status"] == "scheduled"
    [photo] = fake.requests(platform="facebook", method="POST", path="/photos$")
    assert photo["body"]["published"] == "false"
    [feed] = fake.requests(platform="facebook", method="POST", path="/feed$")
    assert feed["body"]["published"] == "false" and "attached_media[0]" in feed["body"]


@pytest.mark.parametrize("delta", [timedelta(minutes=5), timedelta(days=31), timedelta(hours=-1)])
def test_facebook_publish_at_outside_the_window(fake, sidecar_factory, delta):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("facebook/post", {**FB, "text": "when?", "publishAt": rfc3339(delta)}))
    assert error["code"] == -32602 and error["data"]["field"] == "publishAt"
    assert "10 minutes and 30 days" in error["message"]
    assert not fake.requests(platform="facebook")


def test_publish_at_must_be_rfc3339(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("facebook/post", {**FB, "text": "when?", "publishAt": "tomorrow at noon"}))
    assert error["code"] == -32602 and "RFC 3339" in error["message"]


@pytest.mark.parametrize("method,params", [
    ("instagram/post", {**IG, "imageUrl": IMAGE}),
    ("linkedin/post", {**LI, "text": "later"}),
    ("whatsapp/send", {**WA, "to": "+15550001111", "text": "later"}),
])
def test_publish_at_elsewhere_names_the_platforms_that_can(fake, sidecar_factory, method, params):
    sidecar = sidecar_factory()
    error = failed(sidecar.call(method, {**params, "publishAt": rfc3339(timedelta(hours=2))}))
    assert error["code"] == -32602 and error["data"]["field"] == "publishAt"
    assert "facebook" in error["message"] and "youtube" in error["message"]
    assert not fake.requests(platform=method.split("/")[0])


# ----- Instagram ---------------------------------------------------------------------------------------------------

def test_instagram_insights_and_status(fake, sidecar_factory):
    sidecar = sidecar_factory()
    media_id = post(sidecar, "instagram/post", {**IG, "imageUrl": IMAGE, "caption": "numbers"})
    fake.set_engagement(media_id, reach=50, views=90, likes=9, comments=4, shares=1, saved=6)
    answer = ok(sidecar.call("instagram/insights", {**IG, "postId": media_id}))
    assert answer["metrics"] == {"reach": 50, "views": 90, "likes": 9, "comments": 4, "shares": 1, "saves": 6}
    [insights] = fake.requests(platform="instagram", method="GET", path="/insights$")
    assert insights["path"] == f"/{graph_version(fake)}/{media_id}/insights"
    status = ok(sidecar.call("instagram/status", {**IG, "postId": media_id}))
    assert status["state"] == "published" and status["postUrl"].startswith("https://www.instagram.com/")
    gone = ok(sidecar.call("instagram/status", {**IG, "postId": "17950000000099999"}))
    assert gone["state"] == "deleted"


def test_instagram_delete_is_unsupported(fake, sidecar_factory):
    sidecar = sidecar_factory()
    error = failed(sidecar.call("instagram/delete", {**IG, "postId": "17950000000000001"}))
    assert error["code"] == -31013 and error["data"]["kind"] == "unsupported"
    assert "Instagram" in error["message"]


# ----- WhatsApp ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["delete", "insights", "status"])
def test_whatsapp_operations_are_unsupported_with_a_sentence(fake, sidecar_factory, operation):
    sidecar = sidecar_factory()
    error = failed(sidecar.call(f"whatsapp/{operation}", {**WA, "postId": "wamid.1"}))
    assert error["code"] == -31013 and error["data"]["kind"] == "unsupported"
    assert "WhatsApp" in error["message"] and error["message"].rstrip().endswith(".")
    assert not fake.requests(platform="whatsapp")


# ----- YouTube -----------------------------------------------------------------------------------------------------

def test_youtube_insights_status_and_delete(fake, sidecar_factory):
    sidecar = sidecar_factory()
    video_id = youtube_video(sidecar, fake)
    fake.set_engagement(video_id, viewCount=1500, likeCount=40, commentCount=6)
    answer = ok(sidecar.call("youtube/insights", {**YT, "postId": video_id}))
    assert answer["metrics"] == {"views": 1500, "likes": 40, "comments": 6}
    assert answer["raw"]["statistics"]["viewCount"] == "1500"
    status = ok(sidecar.call("youtube/status", {**YT, "postId": video_id}))
    assert status["state"] in ("processing", "published")
    assert status["postUrl"] == f"https://www.youtube.com/watch?v={video_id}"
    lists = fake.requests(platform="youtube", method="GET", path="/youtube/v3/videos$")
    assert {r["query"]["part"] for r in lists} >= {"statistics", "status,processingDetails"}
    assert ok(sidecar.call("youtube/delete", {**YT, "postId": video_id}))["deleted"] is True
    [delete] = fake.requests(platform="youtube", method="DELETE")
    assert delete["query"] == {"id": video_id}
    again = ok(sidecar.call("youtube/delete", {**YT, "postId": video_id}))
    assert again["deleted"] is False and video_id in again["reason"]
    assert ok(sidecar.call("youtube/status", {**YT, "postId": video_id}))["state"] == "deleted"


def test_youtube_scheduled_upload_is_private_until_publish_at(fake, sidecar_factory):
    sidecar = sidecar_factory()
    at = rfc3339(timedelta(days=2))
    answer = ok(sidecar.call("youtube/post", {**YT, "title": "Premiere", "videoUrl": fake.media_url("video-1m.mp4"),
                                              "publishAt": at}, timeout=120))
    assert answer["status"] == "scheduled"
    [video] = fake.published(platform="youtube")
    assert video["privacy_status"] == "private" and video["publish_at"].startswith(at[:19])
    status = ok(sidecar.call("youtube/status", {**YT, "postId": answer["postId"]}))
    assert status["state"] in ("processing", "scheduled")


def test_youtube_publish_at_refuses_public_and_the_past(fake, sidecar_factory):
    sidecar = sidecar_factory()
    base = {**YT, "title": "Premiere", "videoUrl": fake.media_url("video-1m.mp4")}
    public = failed(sidecar.call("youtube/post", {**base, "publishAt": rfc3339(timedelta(days=1)),
                                                  "privacyStatus": "public"}))
    assert public["code"] == -32602 and public["data"]["field"] == "privacyStatus" and "private" in public["message"]
    past = failed(sidecar.call("youtube/post", {**base, "publishAt": rfc3339(timedelta(hours=-1))}))
    assert past["code"] == -32602 and "future" in past["message"]
    assert not fake.requests(platform="youtube")


# ----- LinkedIn ----------------------------------------------------------------------------------------------------

def test_linkedin_organization_post_statistics_status_and_delete(fake, sidecar_factory):
    sidecar = sidecar_factory()
    urn = post(sidecar, "linkedin/post", {**LI, "text": "Numbers, please"})
    fake.set_engagement(urn, impressionCount=300, uniqueImpressionsCount=210, clickCount=14, likeCount=22,
                        commentCount=5, shareCount=3)
    answer = ok(sidecar.call("linkedin/insights", {**LI, "postId": urn}))
    assert answer["metrics"] == {"impressions": 300, "reach": 210, "clicks": 14, "likes": 22, "comments": 5,
                                 "shares": 3}
    [stats] = fake.requests(platform="linkedin", method="GET", path="/rest/organizationalEntityShareStatistics$")
    assert stats["headers"]["linkedin-version"] and stats["headers"]["x-restli-protocol-version"] == "2.0.0"
    status = ok(sidecar.call("linkedin/status", {**LI, "postId": urn}))
    assert status["state"] == "published" and status["postUrl"] == f"https://www.linkedin.com/feed/update/{urn}/"
    assert ok(sidecar.call("linkedin/delete", {**LI, "postId": urn}))["deleted"] is True
    [delete] = fake.requests(platform="linkedin", method="DELETE")
    assert delete["path"] == "/rest/posts/" + urn  # the fake refuses an unencoded URN in a path
    again = ok(sidecar.call("linkedin/delete", {**LI, "postId": urn}))
    assert again["deleted"] is False and urn in again["reason"]
    assert ok(sidecar.call("linkedin/status", {**LI, "postId": urn}))["state"] == "deleted"


def test_linkedin_member_post_uses_social_actions(fake, sidecar_factory):
    credentials = {"CRED-li-member": {**fake.credentials()["linkedin_member"]}}
    sidecar = sidecar_factory(credentials=credentials)
    member = {**LI, "credentialRef": "CRED-li-member"}
    urn = post(sidecar, "linkedin/post", {**member, "text": "A member's post"})
    fake.set_engagement(urn, likeCount=8, commentCount=2)
    answer = ok(sidecar.call("linkedin/insights", {**member, "postId": urn}))
    assert answer["metrics"] == {"likes": 8, "comments": 2}
    [social] = fake.requests(platform="linkedin", method="GET", path="/rest/socialActions/")
    assert social["path"] == "/rest/socialActions/" + urn


# ----- pipeline: idempotency, metric events, Prometheus --------------------------------------------------------------

def test_delete_replays_with_its_idempotency_key(fake, sidecar_factory):
    sidecar = sidecar_factory()
    post_id = post(sidecar, "facebook/post", {**FB, "text": "once"})
    first = ok(sidecar.call("facebook/delete", {**FB, "postId": post_id, "idempotencyKey": "del-1"}))
    second = ok(sidecar.call("facebook/delete", {**FB, "postId": post_id, "idempotencyKey": "del-1"}))
    assert first["deleted"] is True and second["deleted"] is True and second["replayed"] is True
    assert len(fake.requests(platform="facebook", method="DELETE")) == 1


def test_operations_leave_metric_events_and_prometheus_counts(fake, sidecar_factory):
    sidecar = sidecar_factory({"metrics": {"enabled": True}})
    post_id = post(sidecar, "facebook/post", {**FB, "text": "measured"})
    ok(sidecar.call("facebook/insights", {**FB, "postId": post_id}))
    ok(sidecar.call("facebook/status", {**FB, "postId": post_id}))
    ok(sidecar.call("facebook/delete", {**FB, "postId": post_id}))
    failed(sidecar.call("whatsapp/insights", {**WA, "postId": "wamid.1"}))
    events = sidecar.wait_events(5)
    operations = [(e["platform"], e["operation"], e["success"]) for e in events]
    assert operations[1:] == [("facebook", "insights", True), ("facebook", "status", True),
                              ("facebook", "delete", True), ("whatsapp", "insights", False)]
    assert events[-1]["errorKind"] == "unsupported" and events[1]["postId"] == post_id
    text = ok(sidecar.call("metrics/prometheus"))["text"]
    for operation in ("insights", "status", "delete"):
        assert f'platform="facebook",operation="{operation}"' in text
    assert 'platform="whatsapp",operation="insights"' in text


def test_a_spent_upload_limit_does_not_stop_reads(fake, sidecar_factory):
    sidecar = sidecar_factory()
    video_id = youtube_video(sidecar, fake)
    fake.script([{"match": {"platform": "youtube", "method": "POST", "path": "/upload/youtube/v3/videos$"},
                  "action": "error", "reason": "uploadLimitExceeded"}])
    refused = failed(sidecar.call("youtube/post", {**YT, "title": "One more", "videoUrl": fake.media_url("video-1m.mp4")},
                                  timeout=60))
    assert refused["data"]["kind"] == "quota_exhausted"
    fake.clear_script()
    before = len(fake.requests(platform="youtube", method="POST"))
    again = failed(sidecar.call("youtube/post", {**YT, "title": "And one more",
                                                 "videoUrl": fake.media_url("video-1m.mp4")}, timeout=60))
    assert again["data"]["kind"] == "quota_exhausted"  # the channel's upload gate answers without a request
    assert len(fake.requests(platform="youtube", method="POST")) == before
    # Reads pass only the app-wide gate: the channel's spent upload allowance does not stop them.
    assert ok(sidecar.call("youtube/status", {**YT, "postId": video_id}))["state"] in ("processing", "published")
    assert "views" in ok(sidecar.call("youtube/insights", {**YT, "postId": video_id}))["metrics"]


def test_answers_match_their_schemas(fake, sidecar_factory):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "protocol" / "conformance"))
    from check_schemas import SchemaSet

    schemas = SchemaSet()
    sidecar = sidecar_factory({"metrics": {"enabled": True}})
    for platform, creds, params in [("facebook", FB, {"text": "schema"}), ("linkedin", LI, {"text": "schema"})]:
        posted = ok(sidecar.call(f"{platform}/post", {**creds, **params}))
        for operation in ("insights", "status", "delete", "status"):
            request = {**creds, "postId": posted["postId"]}
            assert not schemas.errors(f"{platform}.{operation}.params", request)
            answer = ok(sidecar.call(f"{platform}/{operation}", request))
            assert not schemas.errors(f"{platform}.{operation}.result", answer), answer
    scheduled = ok(sidecar.call("facebook/post", {**FB, "text": "later", "publishAt": rfc3339(timedelta(hours=1))}))
    assert not schemas.errors("facebook.post.result", scheduled)
    for event in sidecar.wait_events(11):
        assert not schemas.errors("metrics.event.params", event), event
    assert not schemas.errors("metrics.snapshot.result", ok(sidecar.call("metrics/snapshot")))
