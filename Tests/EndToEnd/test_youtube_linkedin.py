"""Issue 6's end-to-end acceptance: YouTube resumable uploads and LinkedIn posts through the real binary against the
fakes, with Google token refresh shared between concurrent calls and no secret leaking anywhere."""
from __future__ import annotations

import copy
import json
from datetime import datetime
import threading
import time

from fake_platforms import media_sha256

# The fake's seeded Google and LinkedIn credentials, as the parent would resolve them. Kept here rather than imported
# from conftest: several test folders have a conftest module, and which one `import conftest` finds depends on the
# order pytest collects them in.
CREDENTIALS = {
    "CRED-yt-001": {"accessToken": "fake-yt-access-token-1", "refreshToken": "fake-yt-refresh-token-1",
                    "clientId": "fake-google-client-id.apps.example.test",
                    "clientSecret": "fake-google-client-secret", "accountId": "UCfakechannel00000000001"},
    "CRED-li-001": {"accessToken": "fake-li-access-token-1", "refreshToken": "fake-li-refresh-token-1",
                    "clientId": "fake-linkedin-client-id", "clientSecret": "fake-linkedin-client-secret",
                    "accountId": "urn:li:organization:40000001"},
}

YT = {"credentialRef": "CRED-yt-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
LI = {"credentialRef": "CRED-li-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
CHUNK = 8 * 1024 * 1024  # the client's default chunk size
VIDEO = "video-20m.mp4"  # 20 MiB: three chunks (8 + 8 + 4 MiB)


def start(sidecar_factory, config: dict | None = None, credentials: dict | None = None, **kwargs):
    """A sidecar whose parent holds its own copy of the credentials: `credentials/update` changes the parent's copy,
    which must not leak into the next test (the shared dict's entries are otherwise mutated in place)."""
    return sidecar_factory(config, credentials=copy.deepcopy(CREDENTIALS if credentials is None else credentials),
                           **kwargs)


def chunk_puts(fake) -> list:
    return [r for r in fake.requests(platform="youtube", method="PUT")
            if not (r["headers"].get("content-range") or "").startswith("bytes */")]


def probes(fake) -> list:
    return [r for r in fake.requests(platform="youtube", method="PUT")
            if (r["headers"].get("content-range") or "").startswith("bytes */")]


def sessions(fake) -> list:
    return [r for r in fake.requests(platform="youtube", method="POST") if r["path"] == "/upload/youtube/v3/videos"]


def every_secret(fake) -> list[str]:
    """The credentials the parent handed out plus every token the fake minted during the test."""
    minted = [t["value"] for t in fake.control("GET", "/_fake/tokens") if t["platform"] in ("youtube", "linkedin")]
    handed = [v for c in CREDENTIALS.values() for k, v in c.items() if k in ("accessToken", "refreshToken", "clientSecret")]
    return sorted(set(minted + handed))


def assert_no_secret_leaks(sidecar, fake) -> None:
    """Tokens may travel only in credentials/update (to the parent); never in stderr, answers or notifications."""
    logs = sidecar.stderr.decode(errors="replace")
    frames = [json.dumps(n) for n in sidecar.notifications] + [json.dumps(r) for r in sidecar.responses.values()]
    for secret in every_secret(fake):
        assert secret not in logs, f"a secret appears in stderr: {secret[:12]}…"
        for frame in frames:
            assert secret not in frame, f"a secret appears in a frame: {secret[:12]}…"


def test_a_video_uploads_in_several_chunks_and_arrives_intact(fake, sidecar_factory):
    sidecar = start(sidecar_factory, args=["--log-level", "debug"])
    answer = sidecar.call("youtube/post", {**YT, "title": "Chunked upload", "description": "three chunks",
                                           "videoUrl": fake.media_url(VIDEO), "privacyStatus": "unlisted",
                                           "tags": ["e2e"]}, timeout=120)
    result = answer["result"]
    video = fake.published(platform="youtube")
    assert len(video) == 1
    assert video[0]["sha256"] == media_sha256(VIDEO) and video[0]["bytes"] == 20 * 1024 * 1024
    assert video[0]["privacy_status"] == "unlisted"
    assert result["postId"] == video[0]["id"]
    assert result["postUrl"] == f"https://www.youtube.com/watch?v={video[0]['id']}"
    assert result["status"] in ("processing", "published") and result["platform"] == "youtube"
    assert [r["headers"]["content-range"] for r in chunk_puts(fake)] == [
        f"bytes 0-{CHUNK - 1}/20971520", f"bytes {CHUNK}-{2 * CHUNK - 1}/20971520",
        f"bytes {2 * CHUNK}-20971519/20971520"]
    assert len(sessions(fake)) == 1
    session = sessions(fake)[0]
    assert session["query"]["uploadType"] == "resumable" and session["query"]["part"] == "snippet,status"
    assert session["headers"]["x-upload-content-length"] == "20971520"
    assert session["headers"]["x-upload-content-type"] == "video/mp4"
    event = sidecar.wait_events(1)[-1]
    assert event["success"] is True and event["platform"] == "youtube" and event["postId"] == result["postId"]
    assert_no_secret_leaks(sidecar, fake)


def test_a_200_mb_upload_reports_monotonic_progress_to_its_work_done_token(fake, sidecar_factory, tmp_path):
    video = tmp_path / "large.mp4"
    with video.open("wb") as file:
        file.truncate(200 * 1024 * 1024)  # sparse: nothing written to disk
    sidecar = start(sidecar_factory, {"media.localRoots": [str(tmp_path.resolve())]})
    answer = sidecar.call("youtube/post", {**YT, "title": "Large upload", "videoPath": str(video),
                                           "privacyStatus": "private", "workDoneToken": 42}, timeout=300)
    assert "result" in answer, answer
    progress = sidecar.events("$/progress")
    assert {p["token"] for p in progress} == {42}
    values = [p["value"] for p in progress]
    assert values[0] == {"kind": "begin", "title": "youtube/post", "percentage": 0}
    assert values[-1] == {"kind": "end"}
    reports = values[1:-1]
    assert reports and {v["kind"] for v in reports} == {"report"}
    sent = [v["bytesSent"] for v in reports]
    assert sent == sorted(sent) and sent[-1] == 200 * 1024 * 1024 and len(set(sent)) > 10
    assert [v["percentage"] for v in reports] == sorted(v["percentage"] for v in reports)
    assert reports[-1]["percentage"] == 100


def test_an_interrupted_upload_resumes_from_the_status_query_and_creates_one_video(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    # The second chunk is stored, then the connection is reset before the answer (twice: libcurl silently replays a
    # request once when a reused connection dies, so the second reset is the one the client sees if the first was
    # replayed); the third chunk is refused with a 503 once.
    fake.script([
        {"match": {"platform": "youtube", "method": "PUT", "request_header": {"content-range": f"^bytes {CHUNK}-"}},
         "action": "drop_after_processing", "times": 2},
        {"match": {"platform": "youtube", "method": "PUT", "request_header": {"content-range": f"^bytes {2 * CHUNK}-"}},
         "action": "error", "reason": "backendError", "status": 503, "times": 1},
    ])
    answer = sidecar.call("youtube/post", {**YT, "title": "Interrupted", "videoUrl": fake.media_url(VIDEO)},
                          timeout=120)
    assert "result" in answer, answer
    assert len(sessions(fake)) == 1, "a second upload session would create a second video"
    assert len(fake.published(platform="youtube")) == 1
    assert fake.published(platform="youtube")[0]["sha256"] == media_sha256(VIDEO)
    puts = fake.requests(platform="youtube", method="PUT")
    asked = [i for i, r in enumerate(puts) if r["headers"]["content-range"].startswith("bytes */")]
    assert len(asked) >= 2, "each failure the client saw is followed by a status query"
    for index in asked:
        reported = int(puts[index]["response_headers"]["range"].split("-")[1]) + 1
        resumed = puts[index + 1]["headers"]["content-range"]
        assert resumed.startswith(f"bytes {reported}-"), "the upload resumes where the status query says"
    assert answer["result"]["attempts"] >= 2


def test_a_stale_google_token_is_refreshed_once_for_five_concurrent_calls(fake, sidecar_factory):
    stale = dict(CREDENTIALS["CRED-yt-001"], expiresAt=int(time.time()) + 60)  # inside the refresh margin
    fake.tokens({"token": "fake-yt-access-token-1", "expired": True})
    sidecar = start(sidecar_factory, credentials={**CREDENTIALS, "CRED-yt-001": stale}, args=["--log-level", "debug"])
    answers: list = []
    lock = threading.Lock()

    def post(index: int) -> None:
        answer = sidecar.call("youtube/post", {**YT, "title": f"Concurrent {index}",
                                               "videoUrl": fake.media_url(f"clip{index}-300k.mp4")}, timeout=60)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all("result" in a for a in answers), answers
    refreshes = fake.requests(platform="youtube", method="POST", path="^/token$")
    assert len(refreshes) == 1
    assert refreshes[0]["body"]["grant_type"] == "refresh_token"
    assert refreshes[0]["body"]["refresh_token"] == "fake-yt-refresh-token-1"
    assert len(fake.published(platform="youtube")) == 5
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not updates(sidecar):
        time.sleep(0.02)
    sent = updates(sidecar)
    assert len(sent) == 1
    new_token = sent[0]["accessToken"]
    assert new_token != "fake-yt-access-token-1" and new_token.startswith("fake-yt-access-token-")
    assert sent[0]["refreshToken"] == "fake-yt-refresh-token-1", "Google does not rotate: the old one is kept"
    assert sent[0]["platform"] == "youtube" and sent[0]["credentialRef"] == "CRED-yt-001"
    assert datetime.fromisoformat(sent[0]["expiresAt"]).timestamp() > time.time() + 3000
    assert_no_secret_leaks(sidecar, fake)


def updates(sidecar) -> list:
    return [m["params"] for m in sidecar.server_requests if m["method"] == "credentials/update"]


def test_an_expired_google_token_rejected_mid_call_is_refreshed_and_the_upload_goes_on(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    fake.script([{"match": {"platform": "youtube", "method": "PUT", "request_header": {"content-range": f"^bytes {CHUNK}-"}},
                  "action": "error", "reason": "authError", "status": 401, "times": 1}])
    answer = sidecar.call("youtube/post", {**YT, "title": "Refresh mid upload", "videoUrl": fake.media_url(VIDEO)},
                          timeout=120)
    assert "result" in answer, answer
    assert len(fake.requests(platform="youtube", method="POST", path="^/token$")) == 1
    assert len(sessions(fake)) == 1 and len(fake.published(platform="youtube")) == 1
    assert fake.published(platform="youtube")[0]["sha256"] == media_sha256(VIDEO)


def test_a_revoked_refresh_token_ends_in_auth_failed_asking_for_a_reconnect(fake, sidecar_factory):
    fake.tokens({"token": "fake-yt-access-token-1", "expired": True},
                {"token": "fake-yt-refresh-token-1", "revoked": True})
    sidecar = start(sidecar_factory)
    answer = sidecar.call("youtube/validate", {"credentialRef": "CRED-yt-001", "customerId": "CUST-1"})
    error = answer["error"]
    assert error["data"]["kind"] == "auth_failed", answer
    assert "reconnect" in error["message"]
    assert_no_secret_leaks(sidecar, fake)


def test_a_text_only_youtube_post_is_invalid_params(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    answer = sidecar.call("youtube/post", {**YT, "title": "Words only"})
    assert answer["error"]["code"] == -32602
    assert "YouTube publishes videos" in answer["error"]["message"]
    assert not fake.requests(platform="youtube")


def test_a_spent_youtube_quota_is_quota_exhausted_until_pacific_midnight(fake, sidecar_factory):
    fake.configure({"youtube": {"insert_calls_per_day": 0, "quota_units_per_day": 0}})
    sidecar = start(sidecar_factory)
    answer = sidecar.call("youtube/post", {**YT, "title": "No quota", "videoUrl": fake.media_url("video-300k.mp4")})
    data = answer["error"]["data"]
    assert data["kind"] == "quota_exhausted", answer
    assert 0 < data["retryAfterMs"] <= 25 * 3600 * 1000
    before = len(fake.requests(platform="youtube"))
    again = sidecar.call("youtube/post", {**YT, "title": "Still none", "videoUrl": fake.media_url("video-300k.mp4")})
    assert again["error"]["data"]["kind"] == "quota_exhausted"
    assert len(fake.requests(platform="youtube")) == before, "a spent quota must not spend more requests"


def test_youtube_validate_names_the_channel_and_scopes(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    result = sidecar.call("youtube/validate", {"credentialRef": "CRED-yt-001", "customerId": "CUST-1"})["result"]
    assert result["valid"] is True, result
    assert result["accountId"] == "UCfakechannel00000000001" and result["accountName"] == "Fake Channel One"
    assert "https://www.googleapis.com/auth/youtube.upload" in result["scopes"]


def test_youtube_refresh_hands_the_new_token_to_the_parent(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    result = sidecar.call("youtube/refresh", {"credentialRef": "CRED-yt-001", "customerId": "CUST-1"})["result"]
    assert result["refreshed"] is True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not updates(sidecar):
        time.sleep(0.02)
    assert len(updates(sidecar)) == 1
    assert_no_secret_leaks(sidecar, fake)


def test_a_linkedin_text_post_answers_the_urn_and_its_url(fake, sidecar_factory):
    sidecar = start(sidecar_factory, args=["--log-level", "debug"])
    answer = sidecar.call("linkedin/post", {**LI, "text": "Hello from the sidecar (e2e)"})
    result = answer["result"]
    published = fake.published(platform="linkedin")
    assert len(published) == 1 and published[0]["account"] == "urn:li:organization:40000001"
    assert published[0]["text"] == r"Hello from the sidecar \(e2e\)"
    assert result["postId"] == published[0]["id"] and result["postId"].startswith("urn:li:share:")
    assert result["postUrl"] == f"https://www.linkedin.com/feed/update/{result['postId']}/"
    assert result["status"] == "published"
    post = fake.requests(platform="linkedin", method="POST", path="^/rest/posts$")[0]
    assert post["headers"]["x-restli-protocol-version"] == "2.0.0"
    assert post["headers"]["linkedin-version"] == fake.sidecar_config()["platforms"]["linkedin"]["apiVersion"]
    assert_no_secret_leaks(sidecar, fake)


def test_a_linkedin_image_post_uploads_the_image_and_posts_its_urn(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    answer = sidecar.call("linkedin/post", {**LI, "text": "A picture", "imageUrl": fake.media_url("image-20k.jpg")})
    assert "result" in answer, answer
    published = fake.published(platform="linkedin")
    assert len(published) == 1
    images = published[0]["images"]
    assert len(images) == 1 and images[0]["sha256"] == media_sha256("image-20k.jpg")
    assert answer["result"]["postId"] == published[0]["id"]


def test_a_linkedin_repost_of_the_same_text_answers_the_original_post(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    first = sidecar.call("linkedin/post", {**LI, "text": "Said once"})["result"]
    second = sidecar.call("linkedin/post", {**LI, "text": "Said once"})
    assert second["result"]["postId"] == first["postId"], second
    assert len(fake.published(platform="linkedin")) == 1


def test_an_unserved_linkedin_version_is_permanent_and_names_the_setting(fake, sidecar_factory):
    config = fake.sidecar_config(linkedin_version="202001")
    sidecar = start(sidecar_factory, {"platforms": config["platforms"]})
    answer = sidecar.call("linkedin/post", {**LI, "text": "Old version"})
    assert answer["error"]["data"]["kind"] == "permanent", answer
    assert "platforms.linkedin.apiVersion" in answer["error"]["message"]


def test_an_expired_linkedin_token_is_refreshed_and_the_rotated_refresh_token_reaches_the_parent(fake, sidecar_factory):
    fake.tokens({"token": "fake-li-access-token-1", "expired": True})
    sidecar = start(sidecar_factory)
    answer = sidecar.call("linkedin/post", {**LI, "text": "After a refresh"})
    assert "result" in answer, answer
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not updates(sidecar):
        time.sleep(0.02)
    sent = updates(sidecar)
    assert len(sent) == 1
    assert sent[0]["refreshToken"] != "fake-li-refresh-token-1", "LinkedIn rotates refresh tokens"
    assert sent[0]["refreshToken"].startswith("fake-li-refresh-token-")
    assert_no_secret_leaks(sidecar, fake)


def test_linkedin_validate_checks_the_organization_role(fake, sidecar_factory):
    sidecar = start(sidecar_factory)
    answer = sidecar.call("linkedin/validate", {"credentialRef": "CRED-li-001", "customerId": "CUST-1"})
    ok = answer.get("result")
    assert ok, answer
    assert ok["valid"] is True and ok["accountName"] == "Fake Org One", ok
    analyst = dict(CREDENTIALS["CRED-li-001"], accountId="urn:li:organization:40000002")
    sidecar2 = start(sidecar_factory, credentials={**CREDENTIALS, "CRED-li-analyst": analyst})
    result = sidecar2.call("linkedin/validate", {"credentialRef": "CRED-li-analyst", "customerId": "CUST-1"})["result"]
    assert result["valid"] is False
    assert result["missing"] == ["ADMINISTRATOR"]
    assert "ANALYST" in result["problems"][0]

