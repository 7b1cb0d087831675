"""Issue 16 end to end: what the live platforms require and the fakes now check (app secret proof, API versions,
LinkedIn duplicates, reconciling lost answers), over the real binary."""
from __future__ import annotations

import datetime
import urllib.request
from urllib.parse import quote

import pytest

from fakeapi.contracts import graph_version

META_APP_SECRET = "fake-meta-app-secret"
FB = {"credentialRef": "CRED-fb-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
WA = {"credentialRef": "CRED-wa-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
LI = {"credentialRef": "CRED-li-001", "customerId": "CUST-1", "agentId": "AGENT-1"}
YT = {"credentialRef": "CRED-yt-001", "customerId": "CUST-1", "agentId": "AGENT-1"}


def without_graph_versions(config: dict) -> dict:
    for platform in ("facebook", "instagram", "whatsapp"):
        config["platforms"][platform].pop("apiVersion")
    return config


def test_the_default_graph_version_is_the_one_the_official_sdk_targets(fake, sidecar_factory):
    sidecar = sidecar_factory({"platforms": without_graph_versions(fake.sidecar_config())["platforms"]})
    assert "result" in sidecar.call("facebook/post", {**FB, "text": "which version?"})
    [request] = [r for r in fake.requests(platform="facebook", method="POST") if r["path"].endswith("/feed")]
    assert request["path"].startswith(f"/{graph_version()}/")


def test_every_graph_call_carries_the_app_secret_proof_when_the_app_requires_it(fake, sidecar_factory):
    fake.configure({"graph": {"require_appsecret_proof": True}})
    platforms = fake.sidecar_config()["platforms"]
    without = sidecar_factory({"platforms": platforms})
    refused = without.call("facebook/post", {**FB, "text": "no proof"})["error"]
    assert refused["data"]["kind"] == "permanent" and "appsecret_proof" in refused["message"]

    platforms["facebook"]["appSecret"] = META_APP_SECRET
    platforms["whatsapp"]["appSecret"] = META_APP_SECRET
    sidecar = sidecar_factory({"platforms": platforms})
    assert "result" in sidecar.call("facebook/post", {**FB, "text": "with proof"})
    assert sidecar.call("whatsapp/validate", WA)["result"]["valid"] is True
    assert all("appsecret_proof" in r["query"] for r in fake.requests(platform="facebook")[1:]), "every call"
    sidecar.close()
    for driver in (without, sidecar):
        assert META_APP_SECRET.encode() not in driver.stderr and META_APP_SECRET.encode() not in driver.raw


def test_a_credentials_own_app_secret_overrides_the_configured_one(fake, sidecar_factory):
    fake.configure({"graph": {"require_appsecret_proof": True}})
    platforms = fake.sidecar_config()["platforms"]
    platforms["facebook"]["appSecret"] = "some-other-apps-secret"
    from conftest import CREDENTIALS
    credentials = {**CREDENTIALS, "CRED-fb-001": {**CREDENTIALS["CRED-fb-001"], "appSecret": META_APP_SECRET}}
    sidecar = sidecar_factory({"platforms": platforms}, credentials=credentials)
    assert "result" in sidecar.call("facebook/post", {**FB, "text": "the credential's secret"})


def test_whatsapp_validate_asks_for_the_messaging_limit_under_the_name_of_the_configured_version(fake, sidecar_factory):
    for version in ("v23.0", graph_version()):
        sidecar = sidecar_factory({"platforms": fake.sidecar_config(graph_version=version)["platforms"]})
        answer = sidecar.call("whatsapp/validate", WA)["result"]
        assert answer["valid"] is True, (version, answer)


def test_a_linkedin_duplicate_of_a_deleted_post_is_a_permanent_error_naming_it(fake, sidecar_factory):
    sidecar = sidecar_factory()
    first = sidecar.call("linkedin/post", {**LI, "text": "said twice"})["result"]
    again = sidecar.call("linkedin/post", {**LI, "text": "said twice"})["result"]
    assert again["postId"] == first["postId"], "a duplicate of a live post answers that post"
    deleted = urllib.request.Request(
        fake.url("/rest/posts/" + quote(first["postId"], safe="")), method="DELETE",
        headers={"Authorization": "Bearer fake-li-access-token-1", "LinkedIn-Version": "202610",
                 "X-Restli-Protocol-Version": "2.0.0"})
    assert urllib.request.urlopen(deleted, timeout=10).status == 204
    error = sidecar.call("linkedin/post", {**LI, "text": "said twice"})["error"]
    assert error["data"]["kind"] == "permanent" and first["postId"] in error["message"], error
    assert len(fake.published(platform="linkedin")) == 1


# A lost answer is given one per-attempt timeout to land before the read: short here.
QUICK = {"http": {"timeoutMs": 500}}


@pytest.mark.parametrize("fault, sends", [("drop_after_processing", 1), ("drop", 2)])
def test_a_lost_linkedin_answer_is_reconciled_from_the_authors_posts(fake, sidecar_factory, fault, sends):
    """Processed: the author's posts show it. Not processed: they show it absent, so it is sent once more."""
    sidecar = sidecar_factory(QUICK)
    fake.script([{"match": {"platform": "linkedin", "method": "POST", "path": r"/rest/posts$"},
                  "action": fault, "times": 1}])
    answer = sidecar.call("linkedin/post", {**LI, "text": f"answer lost on the way back ({fault})"})
    [published] = fake.published(platform="linkedin")
    assert answer["result"]["postId"] == published["id"], answer
    assert len([r for r in fake.requests(platform="linkedin", method="POST") if r["path"] == "/rest/posts"]) == sends
    finder = [r for r in fake.requests(platform="linkedin", method="GET") if r["query"].get("q") == "author"]
    assert finder, "the author's posts were read"


def test_a_linkedin_publish_lost_twice_says_what_was_checked(fake, sidecar_factory):
    sidecar = sidecar_factory(QUICK)
    fake.script([{"match": {"platform": "linkedin", "method": "POST", "path": r"/rest/posts$"},
                  "action": "drop", "times": 3}])
    error = sidecar.call("linkedin/post", {**LI, "text": "never arrived"})["error"]
    assert error["data"]["kind"] == "outcome_unknown", error
    assert "posts made since the publish started showed no such post after it was sent 3 times" in error["message"], error
    assert not fake.published(platform="linkedin")


def test_a_lost_youtube_answer_is_reconciled_from_the_channels_uploads(fake, sidecar_factory):
    sidecar = sidecar_factory({"retry": {"maxAttempts": 1, "baseDelayMs": 10, "maxDelayMs": 10}})
    fake.script([{"match": {"platform": "youtube", "method": "PUT"}, "action": "drop_after_processing", "times": 1}])
    answer = sidecar.call("youtube/post", {**YT, "title": "answer lost", "videoUrl": fake.media_url("video-600000.mp4")})
    [published] = fake.published(platform="youtube")
    assert answer["result"]["postId"] == published["id"], answer
    assert answer["result"]["privacyStatus"] == "public"


def months_ago(months: int) -> str:
    today = datetime.date.today()
    index = today.year * 12 + today.month - 1 - months
    return f"{index // 12:04d}{index % 12 + 1:02d}"


def test_an_old_linkedin_version_is_warned_about_in_health_and_validate(fake, sidecar_factory):
    fresh = sidecar_factory()
    assert "warnings" not in fresh.call("health")["result"]
    platforms = fake.sidecar_config(linkedin_version=months_ago(11))["platforms"]
    sidecar = sidecar_factory({"platforms": platforms})
    [warning] = sidecar.call("health")["result"]["warnings"]
    assert "platforms.linkedin.apiVersion" in warning and months_ago(11) in warning
    answer = sidecar.call("linkedin/validate", LI)["result"]
    assert answer["valid"] is True and answer["warnings"] == [warning]


def test_a_sunset_linkedin_version_names_the_key_to_change(fake, sidecar_factory):
    sidecar = sidecar_factory({"platforms": fake.sidecar_config(linkedin_version=months_ago(14))["platforms"]})
    error = sidecar.call("linkedin/post", {**LI, "text": "too old"})["error"]
    assert error["data"]["kind"] == "permanent" and "platforms.linkedin.apiVersion" in error["message"], error


def test_a_public_upload_from_an_unaudited_project_is_reported_private_with_a_warning(fake, sidecar_factory):
    fake.configure({"youtube": {"unaudited_project": True}})
    sidecar = sidecar_factory()
    answer = sidecar.call("youtube/post", {**YT, "title": "for everyone", "privacyStatus": "public",
                                           "videoUrl": fake.media_url("video-600000.mp4")})["result"]
    assert answer["privacyStatus"] == "private"
    [warning] = answer["warnings"]
    assert "private although public was asked" in warning
