"""Issue 21 end to end: the content types beyond text, image and video, per platform, over the real binary against the
fakes. Each type publishes, and the fake (which checks the platform's field names) confirms the exact request."""
from __future__ import annotations

import json
import os

from fake_platforms import media_sha256

from test_meta import FB, IG, IMAGE, VIDEO, WA, failed, graph_requests, ok

PDF = "https://cdn.example.test/terms.pdf"
WAMID = "wamid.HBgLMTU1NTAwMDExMTEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


# ----- WhatsApp ---------------------------------------------------------------------------------------------------


def wa_send(sidecar, to: str = "15550001111", **content) -> dict:
    return ok(sidecar.call("whatsapp/send", {**WA, "to": to, **content}))


BUTTONS = {"type": "button", "body": {"text": "Keep the booking?"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Keep it"}},
                                  {"type": "reply", "reply": {"id": "no", "title": "Cancel"}}]}}
LIST = {"type": "list", "header": {"type": "text", "text": "Slots"}, "body": {"text": "Pick a time"},
        "footer": {"text": "Times are local"},
        "action": {"button": "Times", "sections": [
            {"title": "Morning", "rows": [{"id": "9", "title": "9:00"}, {"id": "10", "title": "10:00"}]},
            {"title": "Afternoon", "rows": [{"id": "14", "title": "14:00", "description": "after lunch"}]}]}}
CONTACT = [{"name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"},
            "phones": [{"phone": "+15550009999", "type": "WORK"}]}]


def test_whatsapp_every_message_type_goes_out_as_the_cloud_api_shapes_it(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.configure({"whatsapp": {"window_open_for_all": True}})
    cases = [
        ({"video": {"url": VIDEO, "caption": "Clip"}}, "video", {"link": VIDEO, "caption": "Clip"}),
        ({"audio": {"url": "https://cdn.example.test/note.ogg"}}, "audio",
         {"link": "https://cdn.example.test/note.ogg"}),
        ({"document": {"url": PDF, "caption": "Terms", "filename": "terms.pdf"}}, "document",
         {"link": PDF, "caption": "Terms", "filename": "terms.pdf"}),
        ({"sticker": {"url": "https://cdn.example.test/s.webp"}}, "sticker", {"link": "https://cdn.example.test/s.webp"}),
        ({"location": {"latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"}}, "location",
         {"latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"}),
        ({"contacts": CONTACT}, "contacts", CONTACT),
        ({"interactive": BUTTONS}, "interactive", BUTTONS),
        ({"interactive": LIST}, "interactive", LIST),
        ({"reaction": {"messageId": WAMID, "emoji": "\U0001F44D"}}, "reaction",
         {"message_id": WAMID, "emoji": "\U0001F44D"}),
        ({"text": "See https://example.com", "previewUrl": True}, "text",
         {"body": "See https://example.com", "preview_url": True}),
    ]
    # One recipient each: the sidecar paces sends to one recipient 6 s apart.
    answers = [wa_send(sidecar, f"1555000{4000 + n}", **params) for n, (params, _, _) in enumerate(cases)]
    sends = graph_requests(fake, "whatsapp", "POST", "/messages$")
    assert len(sends) == len(cases)
    for (params, kind, expected), send, answer in zip(cases, sends, answers):
        assert send["body"]["type"] == kind and send["body"][kind] == expected, params
        assert "context" not in send["body"]
        assert answer["status"] == "accepted" and answer["postId"].startswith("wamid.")
    assert [p["kind"] for p in fake.published(platform="whatsapp")] == [kind for _, kind, _ in cases]


def test_whatsapp_reply_carries_the_context(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.configure({"whatsapp": {"window_open_for_all": True}})
    first = wa_send(sidecar, "15550004100", text="Your order shipped")
    wa_send(sidecar, "15550004101", image={"url": IMAGE}, replyTo=first["postId"])
    reply = graph_requests(fake, "whatsapp", "POST", "/messages$")[-1]
    assert reply["body"]["context"] == {"message_id": first["postId"]}
    assert fake.published(platform="whatsapp")[-1]["reply_to"] == first["postId"]


def test_whatsapp_impossible_combinations_are_refused_before_sending(fake, sidecar_factory):
    sidecar = sidecar_factory()
    three_rows = [{"id": str(i), "title": f"Row {i}"} for i in range(4)]
    for params, field in [
        ({"sticker": {"url": "https://cdn.example.test/s.webp", "caption": "hi"}}, "sticker.caption"),
        ({"audio": {"url": "https://cdn.example.test/a.ogg", "caption": "hi"}}, "audio.caption"),
        ({"image": {"url": IMAGE, "filename": "a.jpg"}}, "image.filename"),
        ({"image": {"url": IMAGE}, "previewUrl": True}, "previewUrl"),
        ({"reaction": {"messageId": WAMID, "emoji": "x"}, "replyTo": WAMID}, "replyTo"),
        ({"location": {"latitude": 91, "longitude": 0}}, "location.latitude"),
        ({"location": {"latitude": 1}}, "location.longitude"),
        ({"contacts": [{"phones": []}]}, "contacts[0].name.formatted_name"),
        ({"interactive": {**BUTTONS, "action": {"buttons": BUTTONS["action"]["buttons"] * 2}}},
         "interactive.action.buttons"),
        ({"interactive": {**BUTTONS, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "A title longer than twenty"}}]}}},
         "interactive.action.buttons[0].reply.title"),
        ({"interactive": {**LIST, "action": {"button": "Times", "sections": [
            {"title": "A", "rows": three_rows}, {"title": "B", "rows": [{"id": f"b{i}", "title": "x"}
                                                                          for i in range(7)]}]}}},
         "interactive.action.sections"),
        ({"interactive": {**LIST, "action": {"button": "Times", "sections": [
            {"rows": [{"id": "1", "title": "x"}, {"id": "1", "title": "y"}]}]}}},
         "interactive.action.sections[0].rows[1].id"),
    ]:
        error = failed(sidecar.call("whatsapp/send", {**WA, "to": "15550001111", **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "whatsapp")


# ----- YouTube ----------------------------------------------------------------------------------------------------

YT_MANAGE = ["https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube"]
PLAYLIST = "PLfakeplaylist000000000000000001"


def test_youtube_metadata_thumbnail_and_playlist(fake, sidecar_factory):
    from test_youtube_linkedin import YT, start
    fake.tokens({"token": "fake-yt-access-token-1", "scopes": YT_MANAGE})
    sidecar = start(sidecar_factory)
    result = ok(sidecar.call("youtube/post", {
        **YT, "title": "With extras", "videoUrl": fake.media_url("video-1m.mp4"), "notifySubscribers": False,
        "defaultLanguage": "pt-BR", "containsSyntheticMedia": True, "license": "creativeCommon", "embeddable": False,
        "thumbnailUrl": fake.media_url("image-50k.jpg"), "playlistId": PLAYLIST}, timeout=60))
    [session] = [r for r in fake.requests(platform="youtube", method="POST") if r["path"] == "/upload/youtube/v3/videos"]
    assert session["query"]["notifySubscribers"] == "false"
    assert session["body"]["snippet"]["defaultLanguage"] == "pt-BR"
    assert {k: session["body"]["status"][k] for k in ("license", "embeddable", "containsSyntheticMedia")} == {
        "license": "creativeCommon", "embeddable": False, "containsSyntheticMedia": True}
    [video] = fake.published(platform="youtube")
    assert video["id"] == result["postId"] and video["notify_subscribers"] is False
    [thumb] = fake.requests(platform="youtube", path="/thumbnails/set$")
    assert thumb["query"]["videoId"] == result["postId"] and thumb["headers"]["content-type"] == "image/jpeg"
    [item] = fake.requests(platform="youtube", path="/playlistItems$")
    assert item["body"] == {"snippet": {"playlistId": PLAYLIST,
                                        "resourceId": {"kind": "youtube#video", "videoId": result["postId"]}}}


def test_youtube_a_step_after_the_upload_fails_naming_the_video_and_never_uploads_twice(fake, sidecar_factory):
    from test_youtube_linkedin import YT, start
    sidecar = start(sidecar_factory)
    error = failed(sidecar.call("youtube/post", {**YT, "title": "No such playlist",
                                                 "videoUrl": fake.media_url("video-1m.mp4"),
                                                 "playlistId": "PLnosuchplaylist0000000000000001"}, timeout=60))
    [video] = fake.published(platform="youtube")
    # The playlist step fails after the video exists: never a retryable kind, and the message names the video.
    assert error["data"]["kind"] == "permanent" and video["id"] in error["message"]
    assert len([r for r in fake.requests(platform="youtube", method="POST")
                if r["path"] == "/upload/youtube/v3/videos"]) == 1


def test_youtube_bad_extras_are_refused_before_any_request(fake, sidecar_factory):
    from test_youtube_linkedin import YT, start
    sidecar = start(sidecar_factory)
    base = {**YT, "title": "x", "videoUrl": fake.media_url("video-1m.mp4")}
    for params, field in [({"license": "cc-by"}, "license"), ({"embeddable": "no"}, "embeddable"),
                          ({"defaultLanguage": "en US"}, "defaultLanguage"), ({"playlistId": "PL/../x"}, "playlistId"),
                          ({"thumbnailUrl": "ftp://cdn.example.test/t.jpg"}, "thumbnailUrl"),
                          ({"notifySubscribers": 0}, "notifySubscribers")]:
        error = failed(sidecar.call("youtube/post", {**base, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not fake.requests(platform="youtube")


def test_youtube_a_thumbnail_youtube_would_refuse_fails_before_the_video_uploads(fake, sidecar_factory):
    from test_youtube_linkedin import YT, start
    sidecar = start(sidecar_factory)
    error = failed(sidecar.call("youtube/post", {**YT, "title": "Big thumbnail", "videoUrl": fake.media_url("video-1m.mp4"),
                                                 "thumbnailUrl": fake.media_url("image-3m.jpg")}, timeout=60))
    assert error["data"]["kind"] == "permanent" and str(2 * 1024 * 1024) in error["message"]
    assert not fake.published(platform="youtube")
    assert not [r for r in fake.requests(platform="youtube", method="POST") if r["path"].startswith("/upload/")]


# ----- Instagram --------------------------------------------------------------------------------------------------


def container_posts(fake) -> list[dict]:
    return graph_requests(fake, "instagram", "POST", "/media$")


def test_instagram_feed_image_with_alt_text_tags_collaborators_and_location(fake, sidecar_factory):
    sidecar = sidecar_factory()
    answer = ok(sidecar.call("instagram/post", {
        **IG, "caption": "Team day", "imageUrl": IMAGE, "altText": "Five people on a beach",
        "userTags": [{"username": "ada.l", "x": 0.25, "y": 0.5}, {"username": "@grace_h", "x": 1, "y": 0}],
        "collaborators": ["partner_brand"], "locationId": "110843418940484"}))
    [container] = container_posts(fake)
    body = container["body"]
    assert body["alt_text"] == "Five people on a beach" and body["location_id"] == "110843418940484"
    assert json.loads(body["user_tags"]) == [{"username": "ada.l", "x": 0.25, "y": 0.5},
                                             {"username": "grace_h", "x": 1, "y": 0}]
    assert json.loads(body["collaborators"]) == ["partner_brand"]
    [published] = fake.published(platform="instagram")
    assert published["id"] == answer["postId"] and published["options"]["collaborators"] == ["partner_brand"]


def test_instagram_reel_cover_share_to_feed_and_tags_without_position(fake, sidecar_factory):
    sidecar = sidecar_factory()
    ok(sidecar.call("instagram/post", {**IG, "videoUrl": VIDEO, "coverUrl": IMAGE, "shareToFeed": False,
                                       "userTags": [{"username": "ada.l"}], "collaborators": ["a", "b", "c"]}))
    ok(sidecar.call("instagram/post", {**IG, "videoUrl": VIDEO, "thumbOffsetMs": 1500}))
    first, second = container_posts(fake)
    assert first["body"]["media_type"] == "REELS" and first["body"]["cover_url"] == IMAGE
    assert first["body"]["share_to_feed"] == "false" and json.loads(first["body"]["user_tags"]) == [{"username": "ada.l"}]
    assert second["body"]["thumb_offset"] == "1500" and "cover_url" not in second["body"]
    assert len(fake.published(platform="instagram", kind="reels")) == 2


def test_instagram_extras_on_the_wrong_kind_are_refused_before_any_request(fake, sidecar_factory):
    sidecar = sidecar_factory()
    carousel = [{"imageUrl": IMAGE}, {"imageUrl": IMAGE}]
    for params, field in [
        ({"items": carousel, "altText": "x"}, "altText"),
        ({"videoUrl": VIDEO, "altText": "x"}, "altText"),
        ({"imageUrl": IMAGE, "kind": "story", "collaborators": ["a"]}, "collaborators"),
        ({"imageUrl": IMAGE, "coverUrl": IMAGE}, "coverUrl"),
        ({"imageUrl": IMAGE, "shareToFeed": True}, "shareToFeed"),
        ({"videoUrl": VIDEO, "coverUrl": IMAGE, "thumbOffsetMs": 10}, "thumbOffsetMs"),
        ({"imageUrl": IMAGE, "userTags": [{"username": "ada"}]}, "userTags[0].x"),
        ({"imageUrl": IMAGE, "userTags": [{"username": "ada", "x": 1.5, "y": 0}]}, "userTags[0].x"),
        ({"videoUrl": VIDEO, "userTags": [{"username": "ada", "x": 0.5, "y": 0.5}]}, "userTags[0].x"),
        ({"imageUrl": IMAGE, "collaborators": ["a", "b", "c", "d"]}, "collaborators"),
        ({"imageUrl": IMAGE, "collaborators": ["not a name"]}, "collaborators[0]"),
        ({"imageUrl": IMAGE, "locationId": "Paris"}, "locationId"),
        ({"items": [{"imageUrl": IMAGE}] * 11}, "items"),
    ]:
        error = failed(sidecar.call("instagram/post", {**IG, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "instagram")


# ----- Facebook ---------------------------------------------------------------------------------------------------


def test_facebook_photo_alt_text_and_video_title(fake, sidecar_factory):
    sidecar = sidecar_factory()
    ok(sidecar.call("facebook/post", {**FB, "text": "Our stand", "imageUrl": IMAGE, "altText": "A booth with banners"}))
    video = ok(sidecar.call("facebook/post", {**FB, "text": "Full talk", "videoUrl": VIDEO, "videoTitle": "Keynote"}))
    [photo] = graph_requests(fake, "facebook", "POST", "/photos$")
    assert photo["body"]["alt_text_custom"] == "A booth with banners"
    [upload] = graph_requests(fake, "facebook", "POST", "/videos$")
    assert upload["body"]["title"] == "Keynote" and upload["body"]["description"] == "Full talk"
    published = {p["kind"]: p for p in fake.published(platform="facebook")}
    assert published["photo"]["alt_text"] == "A booth with banners"
    assert published["video"]["title"] == "Keynote" and published["video"]["id"] == video["postId"]


def test_facebook_extras_on_the_wrong_post_are_refused(fake, sidecar_factory):
    sidecar = sidecar_factory()
    for params, field in [({"text": "x", "altText": "y"}, "altText"),
                          ({"imageUrls": [IMAGE, IMAGE], "altText": "y"}, "altText"),
                          ({"imageUrl": IMAGE, "videoTitle": "y"}, "videoTitle"),
                          ({"videoUrl": VIDEO, "kind": "reel", "videoTitle": "y"}, "videoTitle")]:
        error = failed(sidecar.call("facebook/post", {**FB, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "facebook")


def test_facebook_video_thumbnail_is_fetched_and_sent_as_the_thumb_file_part(fake, sidecar_factory, tmp_path):
    sidecar = sidecar_factory(local_roots(tmp_path))
    thumbnail = fake.media_url("cover-40k.png")
    video = ok(sidecar.call("facebook/post", {**FB, "text": "Full talk", "videoUrl": VIDEO, "videoTitle": "Keynote",
                                              "thumbnailUrl": thumbnail}, timeout=60))
    [upload] = graph_requests(fake, "facebook", "POST", "/videos$")
    assert upload["body"]["file_url"] == VIDEO and upload["body"]["title"] == "Keynote"
    [published] = fake.published(platform="facebook", kind="video")
    assert published["id"] == video["postId"] and published["thumb_bytes"] == 40 * 1024
    assert published["thumb_sha256"] == media_sha256("cover-40k.png")
    # Not an image: refused before any video exists. On a post that is not a hosted video: refused up front.
    error = failed(sidecar.call("facebook/post", {**FB, "videoUrl": VIDEO, "thumbnailUrl": fake.media_url("notes-2k.pdf")},
                                timeout=60))
    assert error["code"] != -32602 and "JPEG or PNG" in error["message"], error
    local = local_copy(tmp_path, "talk-1m.mp4")
    for params in [{"text": "x", "thumbnailUrl": thumbnail}, {"imageUrl": IMAGE, "thumbnailUrl": thumbnail},
                   {"videoUrl": VIDEO, "kind": "reel", "thumbnailUrl": thumbnail},
                   {"videoPath": str(local), "thumbnailUrl": thumbnail},
                   {"videoUrl": VIDEO, "thumbnailUrl": "ftp://cdn.example.test/t.jpg"}]:
        error = failed(sidecar.call("facebook/post", {**FB, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == "thumbnailUrl", (params, error)
    assert len(graph_requests(fake, "facebook", "POST", "/videos$")) == 1


def test_facebook_link_post_with_a_call_to_action_button(fake, sidecar_factory):
    sidecar = sidecar_factory()
    link = "https://example.test/spring-sale"
    post = ok(sidecar.call("facebook/post", {**FB, "text": "Spring sale", "link": link, "callToAction": "SHOP_NOW"}))
    [published] = fake.published(platform="facebook", kind="feed")
    assert published["id"] == post["postId"] and published["link"] == link
    assert published["call_to_action"] == {"type": "SHOP_NOW", "value": {"link": link}}
    for params in [{"text": "no link", "callToAction": "SHOP_NOW"}, {"imageUrl": IMAGE, "callToAction": "SHOP_NOW"},
                   {"link": link, "callToAction": "CALL_NOW"}]:
        error = failed(sidecar.call("facebook/post", {**FB, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == "callToAction", (params, error)
    assert len(graph_requests(fake, "facebook", "POST", "/feed$")) == 1


# ----- LinkedIn ---------------------------------------------------------------------------------------------------


def li_post(fake, sidecar_factory, **content) -> tuple[dict, dict]:
    from test_youtube_linkedin import LI, start
    sidecar = start(sidecar_factory)
    answer = ok(sidecar.call("linkedin/post", {**LI, "text": "Content test", **content}, timeout=120))
    [published] = fake.published(platform="linkedin")
    assert published["id"] == answer["postId"]
    return answer, published


def test_linkedin_multi_image_post_uploads_each_image_in_order(fake, sidecar_factory):
    urls = [fake.media_url(f"image-{n}k.jpg") for n in (20, 21, 22)]
    _, published = li_post(fake, sidecar_factory, imageUrls=urls)
    assert len(published["content"]["multiImage"]["images"]) == 3
    assert [i["sha256"] for i in published["images"]] == [media_sha256(f"image-{n}k.jpg") for n in (20, 21, 22)]


def test_linkedin_image_alt_text(fake, sidecar_factory):
    _, published = li_post(fake, sidecar_factory, imageUrl=fake.media_url("image-20k.jpg"), altText="A chart")
    assert published["content"]["media"]["altText"] == "A chart"


def test_linkedin_article_with_title_description_and_uploaded_thumbnail(fake, sidecar_factory):
    _, published = li_post(fake, sidecar_factory, link="https://example.com/launch", linkTitle="Launch notes",
                           linkDescription="What shipped", linkThumbnailUrl=fake.media_url("image-20k.jpg"))
    article = published["content"]["article"]
    assert article["source"] == "https://example.com/launch" and article["title"] == "Launch notes"
    assert article["description"] == "What shipped" and article["thumbnail"].startswith("urn:li:image:")
    assert published["images"][0]["sha256"] == media_sha256("image-20k.jpg")


def test_linkedin_document_post(fake, sidecar_factory):
    _, published = li_post(fake, sidecar_factory, documentUrl=fake.media_url("doc-300k.pdf"), documentTitle="Q3 deck")
    assert published["content"]["media"]["title"] == "Q3 deck"
    assert published["asset"]["id"].startswith("urn:li:document:")
    assert published["asset"]["sha256"] == media_sha256("doc-300k.pdf")


def test_linkedin_video_uploads_in_parts_and_resumes_a_dropped_part(fake, sidecar_factory):
    from test_youtube_linkedin import LI, start
    # The second part's connection is reset before it is stored: only that part is sent again.
    fake.script([{"match": {"platform": "linkedin", "method": "PUT", "path": "/dms-uploads/video-.*-1/"},
                  "action": "drop", "times": 2}])
    sidecar = start(sidecar_factory)
    answer = sidecar.call("linkedin/post", {**LI, "text": "A video", "videoUrl": fake.media_url("video-10m.mp4"),
                                            "workDoneToken": "li-video"}, timeout=120)
    ok(answer)
    [published] = fake.published(platform="linkedin")
    assert published["asset"]["id"].startswith("urn:li:video:")
    assert published["asset"]["sha256"] == media_sha256("video-10m.mp4")
    puts = fake.requests(platform="linkedin", method="PUT")
    parts = [r["path"].split("/")[2].rsplit("-", 1)[1] for r in puts]
    assert parts.count("0") == 1 and parts.count("2") == 1 and parts.count("1") >= 2, parts
    [finalize] = fake.requests(platform="linkedin", method="POST", path="/rest/videos$")[1:]
    assert len(finalize["body"]["finalizeUploadRequest"]["uploadedPartIds"]) == 3
    reports = [n["params"]["value"] for n in sidecar.notifications
               if n["method"] == "$/progress" and n["params"]["value"]["kind"] == "report"
               and "bytesSent" in n["params"]["value"]]
    assert reports[-1]["bytesSent"] == reports[-1]["bytesTotal"] == 10 * 1024 * 1024


def test_linkedin_impossible_combinations_are_refused(fake, sidecar_factory):
    from test_youtube_linkedin import LI, start
    sidecar = start(sidecar_factory)
    image = fake.media_url("image-20k.jpg")
    for params, field in [({"imageUrls": [image]}, "imageUrls"), ({"imageUrls": [image] * 21}, "imageUrls"),
                          ({"imageUrls": [image, image], "altText": "x"}, "altText"),
                          ({"imageUrl": image, "videoUrl": fake.media_url("video-1m.mp4")}, "videoUrl"),
                          ({"documentUrl": fake.media_url("doc-300k.pdf")}, "documentTitle"),
                          ({"linkTitle": "x"}, "linkTitle"), ({"documentTitle": "x"}, "documentTitle")]:
        error = failed(sidecar.call("linkedin/post", {**LI, "text": "x", **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not fake.requests(platform="linkedin")


def test_linkedin_video_captions_from_a_url_or_a_local_file(fake, sidecar_factory, tmp_path):
    from test_youtube_linkedin import LI, start
    sidecar = start(sidecar_factory, local_roots(tmp_path))
    ok(sidecar.call("linkedin/post", {**LI, "text": "Captioned", "videoUrl": fake.media_url("video-1m.mp4"),
                                      "captionsUrl": fake.media_url("talk-2k.srt")}, timeout=60))
    video, captions = local_copy(tmp_path, "clip-1m.mp4"), local_copy(tmp_path, "clip-3k.srt")
    ok(sidecar.call("linkedin/post", {**LI, "text": "Captioned too", "videoPath": str(video),
                                      "captionsPath": str(captions)}, timeout=60))
    ok(sidecar.call("linkedin/post", {**LI, "text": "No captions", "videoPath": str(video)}, timeout=60))
    first, second, plain = fake.published(platform="linkedin")
    assert first["asset"]["captions_sha256"] == media_sha256("talk-2k.srt")
    assert second["asset"]["captions_sha256"] == media_sha256("clip-3k.srt")
    assert second["asset"]["sha256"] == media_sha256("clip-1m.mp4") and "captions_sha256" not in plain["asset"]
    initializes = [r["body"]["initializeUploadRequest"] for r in fake.requests(platform="linkedin", method="POST",
                                                                                path="/rest/videos$")
                   if r["query"].get("action") == "initializeUpload"]
    assert [i["uploadCaptions"] for i in initializes] == [True, True, False]
    # Captions that are not SubRip fail before any of the video is sent; captions without a video are refused.
    fake.clear_requests()
    not_srt = local_copy(tmp_path, "notes-2k.txt")
    error = failed(sidecar.call("linkedin/post", {**LI, "text": "x", "videoPath": str(video),
                                                  "captionsPath": str(not_srt)}))
    assert "SubRip" in error["message"] and "captionsPath" in error["message"]
    assert not fake.requests(platform="linkedin", path="/rest/videos")
    for params, field in [({"captionsUrl": fake.media_url("talk-2k.srt")}, "captionsUrl"),
                          ({"imageUrl": fake.media_url("image-20k.jpg"), "captionsPath": str(captions)},
                           "captionsPath"),
                          ({"videoPath": str(video), "captionsUrl": fake.media_url("talk-2k.srt"),
                            "captionsPath": str(captions)}, "captionsPath"),
                          ({"videoPath": str(video), "captionsPath": "/etc/hostname"}, "captionsPath")]:
        error = failed(sidecar.call("linkedin/post", {**LI, "text": "x", **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert "needs `videoUrl` or `videoPath`" in failed(sidecar.call(
        "linkedin/post", {**LI, "text": "x", "captionsUrl": fake.media_url("talk-2k.srt")}))["message"]
    assert not fake.requests(platform="linkedin")


def local_roots(tmp_path) -> dict:
    """Config that lets the sidecar read local files under `tmp_path` (its real path, as the sidecar compares)."""
    return {"media": {"allowPrivateNetworks": True, "localRoots": [os.path.realpath(tmp_path)]}}


def local_copy(tmp_path, name: str):
    """The fake's media `name` as a local file, for the `…Path` params."""
    from fake_platforms import media_bytes
    path = tmp_path / name
    path.write_bytes(media_bytes(name))
    return path


def test_linkedin_document_and_video_from_local_files(fake, sidecar_factory, tmp_path):
    from test_youtube_linkedin import LI, start
    sidecar = start(sidecar_factory, local_roots(tmp_path))
    document = local_copy(tmp_path, "deck-200k.pdf")
    video = local_copy(tmp_path, "clip-5m.mp4")
    ok(sidecar.call("linkedin/post", {**LI, "text": "Deck", "documentPath": str(document), "documentTitle": "Deck"}))
    ok(sidecar.call("linkedin/post", {**LI, "text": "Clip", "videoPath": str(video)}, timeout=60))
    deck, clip = fake.published(platform="linkedin")
    assert deck["asset"]["sha256"] == media_sha256("deck-200k.pdf")
    assert clip["asset"]["sha256"] == media_sha256("clip-5m.mp4") and clip["asset"]["id"].startswith("urn:li:video:")
    for params, field in [({"videoPath": "relative/clip.mp4"}, "videoPath"),
                          ({"videoPath": str(tmp_path / "missing.mp4")}, "videoPath"),
                          ({"videoPath": "/etc/hostname"}, "videoPath"),  # outside media.localRoots
                          ({"documentPath": str(document)}, "documentTitle")]:
        error = failed(sidecar.call("linkedin/post", {**LI, "text": "x", **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)


def test_youtube_thumbnail_from_a_local_file(fake, sidecar_factory, tmp_path):
    from test_youtube_linkedin import YT, start
    sidecar = start(sidecar_factory, local_roots(tmp_path))
    thumb = local_copy(tmp_path, "thumb-30k.png")
    result = ok(sidecar.call("youtube/post", {**YT, "title": "Local thumbnail", "videoUrl": fake.media_url("video-1m.mp4"),
                                              "thumbnailPath": str(thumb)}, timeout=60))
    [request] = fake.requests(platform="youtube", path="/thumbnails/set$")
    assert request["query"]["videoId"] == result["postId"] and request["headers"]["content-type"] == "image/png"
    big = local_copy(tmp_path, "big-3m.jpg")
    for params, field in [({"thumbnailPath": str(big)}, "thumbnailPath"),
                          ({"thumbnailPath": str(thumb), "thumbnailUrl": fake.media_url("t-1k.jpg")}, "thumbnailPath")]:
        error = failed(sidecar.call("youtube/post", {**YT, "title": "x", "videoUrl": fake.media_url("video-1m.mp4"),
                                                     **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)


def test_facebook_video_from_a_local_file_in_chunks_resumes_a_lost_answer(fake, sidecar_factory, tmp_path):
    video = local_copy(tmp_path, "talk-10m.mp4")
    # The second chunk is stored, then its answer is lost (twice, as libcurl may replay once): the chunk is sent
    # again and the session carries on from where it stands.
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "/videos$"}, "nth": [3, 4],
                  "action": "drop_after_processing"}])
    sidecar = sidecar_factory(local_roots(tmp_path))
    answer = ok(sidecar.call("facebook/post", {**FB, "text": "The talk", "videoPath": str(video), "videoTitle": "Talk",
                                               "workDoneToken": "fb-video"}, timeout=60))
    [published] = fake.published(platform="facebook", kind="video")
    assert published["id"] == answer["postId"] and answer["status"] == "processing"
    assert published["sha256"] == media_sha256("talk-10m.mp4") and published["title"] == "Talk"
    uploads = graph_requests(fake, "facebook", "POST", "/videos$")
    phases = [r["body"].get("upload_phase") for r in uploads]
    assert phases[0] == "start" and phases[-1] == "finish" and phases.count("finish") == 1
    assert phases.count("transfer") >= 4  # 3 chunks of 4 MiB + 2 MiB, one of them sent again
    reports = [n["params"]["value"] for n in sidecar.notifications
               if n["method"] == "$/progress" and "bytesSent" in n["params"]["value"]]
    assert reports[-1]["bytesSent"] == 10 * 1024 * 1024


def test_facebook_reel_and_story_from_local_files_resume_from_what_the_upload_host_holds(fake, sidecar_factory,
                                                                                          tmp_path):
    reel, story = local_copy(tmp_path, "reel-6m.mp4"), local_copy(tmp_path, "story-2m.mp4")
    # The reel's connection breaks after 2 MiB have arrived: the rest is sent from there, not the whole file again.
    fake.script([{"match": {"platform": "facebook", "method": "POST", "path": "^/video-upload/"}, "times": 1,
                  "action": "drop_after_processing", "keep_bytes": 2 * 1024 * 1024}])
    sidecar = sidecar_factory(local_roots(tmp_path))
    answer = ok(sidecar.call("facebook/post", {**FB, "kind": "reel", "text": "From disk", "videoPath": str(reel),
                                               "workDoneToken": "fb-reel"}, timeout=60))
    [published] = fake.published(platform="facebook", kind="reel")
    assert published["id"] == answer["postId"] and published["sha256"] == media_sha256("reel-6m.mp4")
    uploads = graph_requests(fake, "facebook", "POST", "^/video-upload/")
    assert uploads[0]["headers"]["offset"] == "0" and "file_url" not in uploads[0]["headers"]
    assert {u["headers"]["file_size"] for u in uploads} == {str(6 * 1024 * 1024)}
    assert uploads[-1]["headers"]["offset"] == str(2 * 1024 * 1024), [u["headers"]["offset"] for u in uploads]
    reports = [n["params"]["value"] for n in sidecar.notifications
               if n["method"] == "$/progress" and "bytesSent" in n["params"]["value"]]
    assert 2 * 1024 * 1024 in [r["bytesSent"] for r in reports] and reports[-1]["bytesSent"] == 6 * 1024 * 1024
    fake.clear_requests()
    ok(sidecar.call("facebook/post", {**FB, "kind": "story", "videoPath": str(story)}, timeout=60))
    [published] = fake.published(platform="facebook", kind="story")
    assert published["sha256"] == media_sha256("story-2m.mp4")
    [upload] = graph_requests(fake, "facebook", "POST", "^/video-upload/")
    assert upload["headers"]["offset"] == "0" and upload["headers"]["file_size"] == str(2 * 1024 * 1024)
    for params, field in [({"kind": "reel", "videoPath": str(reel), "thumbnailUrl": IMAGE}, "thumbnailUrl"),
                          ({"kind": "story", "videoPath": str(story), "text": "x"}, "text"),
                          ({"kind": "reel", "videoPath": "/etc/hostname"}, "videoPath")]:
        error = failed(sidecar.call("facebook/post", {**FB, **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)


def test_instagram_reel_from_a_local_file_is_sent_again_to_the_same_container(fake, sidecar_factory, tmp_path):
    video = local_copy(tmp_path, "reel-6m.mp4")
    # The bytes arrive but the answer is lost (twice, as libcurl may replay once): sent again to the same container.
    fake.script([{"match": {"platform": "instagram", "method": "POST", "path": "/ig-api-upload/"},
                  "action": "drop_after_processing", "times": 2}])
    sidecar = sidecar_factory(local_roots(tmp_path))
    answer = ok(sidecar.call("instagram/post", {**IG, "caption": "From disk", "videoPath": str(video),
                                                "shareToFeed": True, "workDoneToken": "ig-reel"}, timeout=60))
    [container] = container_posts(fake)
    assert container["body"]["upload_type"] == "resumable" and container["body"]["media_type"] == "REELS"
    assert "video_url" not in container["body"] and container["body"]["share_to_feed"] == "true"
    uploads = graph_requests(fake, "instagram", "POST", "/ig-api-upload/")
    assert len(uploads) >= 2 and {u["path"] for u in uploads} == {uploads[0]["path"]}
    assert uploads[0]["headers"]["authorization"].startswith("OAuth ")
    assert uploads[0]["headers"]["offset"] == "0" and uploads[0]["headers"]["file_size"] == str(6 * 1024 * 1024)
    [published] = fake.published(platform="instagram")
    assert published["id"] == answer["postId"] and published["sha256"] == media_sha256("reel-6m.mp4")
    error = failed(sidecar.call("instagram/post", {**IG, "videoPath": str(video), "kind": "story"}))
    assert error["code"] == -32602 and error["data"]["field"] == "kind"


def test_whatsapp_local_files_are_uploaded_once_and_sent_by_id(fake, sidecar_factory, tmp_path):
    fake.configure({"whatsapp": {"window_open_for_all": True}})
    sidecar = sidecar_factory(local_roots(tmp_path))
    pdf = local_copy(tmp_path, "terms-300k.pdf")
    sticker = local_copy(tmp_path, "wave-40k.webp")
    first = wa_send(sidecar, "15550004200", document={"path": str(pdf), "caption": "Terms", "filename": "terms.pdf"})
    wa_send(sidecar, "15550004201", document={"path": str(pdf)})  # the same file again: its media id is reused
    wa_send(sidecar, "15550004202", sticker={"path": str(sticker)})
    uploads = graph_requests(fake, "whatsapp", "POST", "/media$")
    assert len(uploads) == 2, "the second send of the same file reuses the first upload"
    assert uploads[0]["body"]["messaging_product"] == "whatsapp" and uploads[0]["body"]["type"] == "application/pdf"
    assert uploads[0]["files"]["file"]["bytes"] == 300 * 1024
    sends = graph_requests(fake, "whatsapp", "POST", "/messages$")
    pdf_id = sends[0]["body"]["document"]["id"]
    assert sends[0]["body"]["document"] == {"id": pdf_id, "caption": "Terms", "filename": "terms.pdf"}
    assert sends[1]["body"]["document"] == {"id": pdf_id} and "link" not in sends[2]["body"]["sticker"]
    published = fake.published(platform="whatsapp")
    assert published[0]["id"] == first["postId"] and published[0]["media"]["sha256"] == media_sha256("terms-300k.pdf")
    assert published[2]["media"]["sha256"] == media_sha256("wave-40k.webp")
    big = local_copy(tmp_path, "big-600k.webp")
    for params, field in [({"sticker": {"path": str(big)}}, "sticker.path"),
                          ({"image": {"path": str(pdf)}}, "image.path"),
                          ({"image": {"path": "photo.jpg"}}, "image.path"),
                          ({"image": {"path": str(pdf), "url": IMAGE}}, "image.path")]:
        error = failed(sidecar.call("whatsapp/send", {**WA, "to": "15550004203", **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
