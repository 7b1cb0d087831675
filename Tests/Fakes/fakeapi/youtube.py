"""Google OAuth token endpoint and YouTube Data API v3 (docs/platforms/youtube.md): `channels.list`,
resumable `videos.insert` (session, chunked PUTs with 308 + Range, `bytes */N` probes,
session expiry), the daily quota, and Google's error shapes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import defaults as D
from .core import Reply, Token, iso
from .wire import Request, Response

UPLOAD_SCOPES = {"https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube",
                 "https://www.googleapis.com/auth/youtube.force-ssl"}
# playlistItems.insert and videos.delete need a scope that manages the account; youtube.upload is not one.
MANAGE_SCOPES = {"https://www.googleapis.com/auth/youtube", "https://www.googleapis.com/auth/youtube.force-ssl",
                 "https://www.googleapis.com/auth/youtubepartner"}
THUMBNAIL_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
READ_SCOPES = {"https://www.googleapis.com/auth/youtube", "https://www.googleapis.com/auth/youtube.readonly",
               "https://www.googleapis.com/auth/youtube.force-ssl", "https://www.googleapis.com/auth/youtubepartner"}
QUOTA_MESSAGE = ('The request cannot be completed because you have exceeded your <a href="/youtube/v3/getting-started'
                 '#quota">quota</a>.')
REASONS = {  # reason → (HTTP status, domain, message, status text)
    "authError": (401, "global", "Invalid Credentials", "UNAUTHENTICATED"),
    "youtubeSignupRequired": (401, "youtube.header", "Unauthorized", None),
    "quotaExceeded": (403, "youtube.quota", QUOTA_MESSAGE, None),
    "rateLimitExceeded": (403, "youtube.quota", "The request cannot be completed because you have exceeded your "
                          "rate limit.", "RESOURCE_EXHAUSTED"),
    "userRateLimitExceeded": (403, "usageLimits", "User Rate Limit Exceeded", "RESOURCE_EXHAUSTED"),
    "insufficientPermissions": (403, "global", "Insufficient Permission", "PERMISSION_DENIED"),
    "forbidden": (403, "youtube.video", "Forbidden", "PERMISSION_DENIED"),
    "uploadLimitExceeded": (400, "youtube.video", "The user has exceeded the number of videos they may upload.", None),
    "invalidTitle": (400, "youtube.video", "The request metadata specifies an invalid or empty video title.", None),
    "invalidDescription": (400, "youtube.video", "The request metadata specifies an invalid video description.", None),
    "invalidTags": (400, "youtube.video", "The request metadata specifies invalid video keywords.", None),
    "invalidCategoryId": (400, "youtube.video", "The snippet.categoryId property specifies an invalid category ID.",
                          None),
    "invalidPublishAt": (400, "youtube.video", "The request metadata specifies an invalid scheduled publishing time.",
                         None),
    "invalidVideoMetadata": (400, "youtube.video", "The request metadata is invalid.", None),
    "badContent": (400, "global", "Media type is not supported. Valid media types: [video/*, "
                   "application/octet-stream]", "INVALID_ARGUMENT"),
    "badRequest": (400, "global", "Bad Request", "INVALID_ARGUMENT"),
    "required": (400, "global", "Required parameter: part", "INVALID_ARGUMENT"),
    "missingRequiredParameter": (400, "youtube.parameter", "No filter selected. Expected one of: id, mine, forHandle, "
                                 "forUsername, managedByMe, categoryId", None),
    "unknownPart": (400, "youtube.part", "The request specifies an unknown part.", None),
    "notFound": (404, "global", "Not Found", "NOT_FOUND"),
    "videoNotFound": (404, "youtube.video", "The video that you are trying to update cannot be found.", None),
    "playlistNotFound": (404, "youtube.playlistItem", "The playlist identified with the request's playlistId "
                         "parameter cannot be found.", None),
    "invalidResourceId": (400, "youtube.playlistItem", "The resource ID specified in the request is invalid.", None),
    "playlistOperationUnsupported": (400, "youtube.playlistItem", "The API does not support the ability to list "
                                     "videos in the specified playlist.", None),
    "invalidImage": (400, "youtube.thumbnail", "The provided image content is invalid.", None),
    "mediaBodyRequired": (400, "youtube.thumbnail", "The request does not include the image content.", None),
    "mediaTooLarge": (413, "global", "Media is too large.", None),
    "invalidParameter": (400, "global", "Invalid value.", "INVALID_ARGUMENT"),
    "backendError": (503, "global", "Backend Error", "UNAVAILABLE"),
    "internalError": (500, "global", "Internal Error", "INTERNAL"),
}
CHANNEL_PARTS = {"id", "snippet", "contentDetails", "status", "statistics", "brandingSettings", "topicDetails",
                 "localizations", "contentOwnerDetails", "auditDetails"}
VIDEO_PARTS = {"id", "snippet", "status", "contentDetails", "processingDetails", "statistics", "player",
               "recordingDetails", "fileDetails", "suggestions", "topicDetails", "localizations",
               "liveStreamingDetails"}
try:
    PACIFIC: dt.tzinfo = ZoneInfo("America/Los_Angeles")  # quota days end at midnight Pacific
except ZoneInfoNotFoundError:
    PACIFIC = dt.timezone(dt.timedelta(hours=-8), "PST")


def youtube_error(reason: str, message: str | None = None, status: int | None = None,
                  location: str | None = None, headers: list | None = None) -> Reply:
    """Google's error body: `{"error": {code, message, errors: [{message, domain, reason}], status?}}`."""
    code, domain, default, status_text = REASONS.get(reason, (status or 400, "global", reason, None))
    code = status or code
    message = message or default
    item: dict[str, Any] = {"message": message, "domain": domain, "reason": reason}
    if location:
        item.update(location=location, locationType="header" if location == "Authorization" else "parameter")
    error: dict[str, Any] = {"code": code, "message": message, "errors": [item]}
    if status_text:
        error["status"] = status_text
    return Reply(Response.json(code, {"error": error}, headers))


def oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(Response.json(status, {"error": error, "error_description": description}))


class YouTube:
    def __init__(self, world) -> None:
        self.world = world
        self.channels: dict[str, dict] = {D.GOOGLE_ACCOUNT_ID: {
            "id": D.YT_CHANNEL_ID, "title": "Fake Channel One", "customUrl": "@fakechannelone",
            "description": "A channel that only exists in tests."}}
        self.sessions: dict[str, dict] = {}
        self.videos: dict[str, dict] = {}
        self.quota: dict[str, float] = {}
        self.playlists: dict[str, dict] = {D.YT_PLAYLIST_ID: {"channel": D.YT_CHANNEL_ID, "items": []}}

    @staticmethod
    def owns(path: str) -> bool:
        return path in ("/token", "/tokeninfo", "/revoke", "/oauth2/v4/token") or path.startswith(
            ("/youtube/v3/", "/upload/youtube/v3/"))

    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path in ("/token", "/oauth2/v4/token") and method == "POST":
            return self.token(request)
        if path == "/tokeninfo":
            return self.tokeninfo(request)
        if path == "/revoke" and method == "POST":
            return self.revoke(request)
        if path == "/youtube/v3/channels" and method == "GET":
            return self.list_channels(request)
        if path == "/youtube/v3/playlistItems" and method == "GET":
            return self.list_playlist_items(request)
        if path == "/youtube/v3/videos" and method == "GET":
            return self.list_videos(request)
        if path == "/upload/youtube/v3/thumbnails/set" and method == "POST":
            return self.set_thumbnail(request)
        if path == "/youtube/v3/playlistItems" and method == "POST":
            return self.insert_playlist_item(request)
        if path == "/youtube/v3/videos" and method == "DELETE":
            return self.delete_video(request)
        if path == "/upload/youtube/v3/videos" and method == "POST" and "upload_id" not in request.query:
            return self.start_session(request)
        if path == "/upload/youtube/v3/videos" and method in ("PUT", "POST") and "upload_id" in request.query:
            return self.upload_bytes(request)
        raise youtube_error("notFound", status=404)

    # ----- OAuth 2.0 token endpoint ----------------------------------------------------------------------------

    def client(self, request: Request) -> None:
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        auth = request.header("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if client_id != D.GOOGLE_CLIENT_ID:
            raise oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if secret != D.GOOGLE_CLIENT_SECRET:
            raise oauth_error(401, "invalid_client", "Unauthorized")

    def token(self, request: Request) -> Response:
        form = request.form if request.body_kind == "form" else {}
        grant = form.get("grant_type")
        if not grant:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            raise oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        self.client(request)
        tokens, now, settings = self.world.tokens, self.world.clock.now(), self.world.settings["youtube"]
        if grant == "authorization_code":
            code = form.get("code") or ""
            if not code.startswith("fake-google-code"):
                raise oauth_error(400, "invalid_grant", "Malformed auth code.")
            refresh = tokens.mint("fake-yt-refresh-token", platform="youtube", kind="REFRESH",
                                  subject=D.GOOGLE_ACCOUNT_ID, scopes=list(D.YT_SCOPES), client_id=D.GOOGLE_CLIENT_ID)
            return self.issue(refresh, include_refresh=True)
        if not form.get("refresh_token"):
            raise oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        refresh = tokens.get(form["refresh_token"])
        if refresh is None or refresh.kind != "REFRESH" or refresh.platform != "youtube" or not refresh.usable(now):
            raise oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        if refresh.client_id and refresh.client_id != D.GOOGLE_CLIENT_ID:
            raise oauth_error(400, "invalid_grant", "Bad Request")
        if settings["rotate_refresh_tokens"]:
            refresh.revoked = True
            refresh = tokens.mint("fake-yt-refresh-token", platform="youtube", kind="REFRESH", subject=refresh.subject,
                                  scopes=list(refresh.scopes), client_id=refresh.client_id)
            return self.issue(refresh, include_refresh=True)
        return self.issue(refresh, include_refresh=False)

    def issue(self, refresh: Token, include_refresh: bool) -> Response:
        ttl = self.world.settings["youtube"]["access_token_ttl"]
        access = self.world.tokens.mint("fake-yt-access-token", platform="youtube", kind="ACCESS",
                                        subject=refresh.subject, scopes=list(refresh.scopes),
                                        client_id=refresh.client_id, expires_at=self.world.clock.now() + ttl)
        body = {"access_token": access.value, "expires_in": ttl, "scope": " ".join(refresh.scopes),
                "token_type": "Bearer"}
        if include_refresh:
            body["refresh_token"] = refresh.value
        return Response.json(200, body, [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")])

    def tokeninfo(self, request: Request) -> Response:
        token = self.world.tokens.get(request.params.get("access_token"))
        now = self.world.clock.now()
        if token is None or token.platform != "youtube" or token.kind != "ACCESS" or not token.usable(now):
            raise oauth_error(400, "invalid_token", "Invalid Value")
        return Response.json(200, {"azp": token.client_id, "aud": token.client_id, "sub": token.subject,
                                   "scope": " ".join(token.scopes), "exp": str(int(token.expires_at or now + 3599)),
                                   "expires_in": str(max(0, int((token.expires_at or now + 3599) - now))),
                                   "access_type": "offline"})

    def revoke(self, request: Request) -> Response:
        token = self.world.tokens.get(request.params.get("token"))
        if token is None or token.platform != "youtube":
            raise oauth_error(400, "invalid_token", "Token expired or revoked")
        token.revoked = True
        return Response.json(200, {})

    # ----- auth and quota --------------------------------------------------------------------------------------

    def authenticate(self, request: Request, scopes: set[str]) -> Token:
        auth = request.header("authorization") or ""
        value = auth[7:].strip() if auth.lower().startswith("bearer ") else request.query.get("access_token")
        token = self.world.tokens.get(value)
        if token is None or token.platform != "youtube" or token.kind != "ACCESS" or not token.usable(
                self.world.clock.now()):
            challenge = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
            raise youtube_error("authError", "Request had invalid authentication credentials. Expected OAuth 2 access "
                                "token, login cookie or other valid authentication credential. See https://developers."
                                "google.com/identity/sign-in/web/devconsole-project.", location="Authorization",
                                headers=[("WWW-Authenticate", challenge)])
        if not scopes & set(token.scopes):
            raise youtube_error("insufficientPermissions", "Request had insufficient authentication scopes.",
                                headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", '
                                          'error="insufficient_scope", scope="' + " ".join(sorted(scopes)) + '"')])
        return token

    def quota_day(self) -> str:
        return dt.datetime.fromtimestamp(self.world.clock.now(), PACIFIC).strftime("%Y-%m-%d")

    def charge(self, bucket: str, cost: float, limit: float) -> None:
        key = f"{self.quota_day()}:{bucket}"
        if self.quota.get(key, 0) + cost > limit:
            raise youtube_error("quotaExceeded")
        self.quota[key] = self.quota.get(key, 0) + cost

    def charge_units(self, cost: float) -> None:
        self.charge("units", cost, self.world.settings["youtube"]["quota_units_per_day"])

    def charge_insert(self) -> None:
        settings = self.world.settings["youtube"]
        if settings["insert_calls_per_day"]:
            self.charge("insert", 1, settings["insert_calls_per_day"])
        else:
            self.charge_units(settings["insert_cost"])

    def quota_state(self) -> dict:
        day = self.quota_day()
        return {"day": day, "units_used": self.quota.get(f"{day}:units", 0),
                "inserts_used": self.quota.get(f"{day}:insert", 0)}

    # ----- channels and videos ---------------------------------------------------------------------------------

    def parts(self, request: Request, allowed: set[str]) -> list[str]:
        raw = request.query.get("part")
        if not raw:
            raise youtube_error("required", location="part")
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not set(parts) <= allowed:
            raise youtube_error("unknownPart", f"'{', '.join(sorted(set(parts) - allowed))}'", location="part")
        return parts

    def list_channels(self, request: Request) -> Response:
        token = self.authenticate(request, READ_SCOPES)
        parts = self.parts(request, CHANNEL_PARTS)
        self.charge_units(self.world.settings["youtube"]["list_cost"])
        if request.query.get("mine") != "true" and "id" not in request.query:
            raise youtube_error("missingRequiredParameter")
        channel = self.channels.get(token.subject)
        if "id" in request.query and channel and channel["id"] not in request.query["id"].split(","):
            channel = None
        items = [self.channel_resource(channel, parts)] if channel else []
        body: dict[str, Any] = {"kind": "youtube#channelListResponse", "etag": etag("channels", len(items)),
                                "pageInfo": {"totalResults": len(items), "resultsPerPage": 5}}
        if items:
            body["items"] = items
        return Response.json(200, body)

    def channel_resource(self, channel: dict, parts: list[str]) -> dict:
        full = {
            "snippet": {"title": channel["title"], "description": channel["description"],
                        "customUrl": channel["customUrl"], "publishedAt": "2020-01-01T00:00:00Z",
                        "thumbnails": {"default": {"url": "https://example.test/fake-channel.jpg", "width": 88,
                                                   "height": 88}},
                        "localized": {"title": channel["title"], "description": channel["description"]}},
            "contentDetails": {"relatedPlaylists": {"likes": "", "uploads": "UU" + channel["id"][2:]}},
            "status": {"privacyStatus": "public", "isLinked": True, "longUploadsStatus": "allowed",
                       "madeForKids": False},
            "statistics": {"viewCount": "0", "subscriberCount": "0", "hiddenSubscriberCount": False,
                           "videoCount": str(sum(1 for v in self.videos.values() if v["channel"] == channel["id"]))},
        }
        resource = {"kind": "youtube#channel", "etag": etag("channel", channel["id"]), "id": channel["id"]}
        resource.update({p: full[p] for p in parts if p in full})
        return resource

    def list_playlist_items(self, request: Request) -> Response:
        """The channel's uploads playlist (`UU` + the channel id without `UC`), newest first."""
        token = self.authenticate(request, READ_SCOPES)
        parts = self.parts(request, {"id", "snippet", "contentDetails", "status"})
        self.charge_units(self.world.settings["youtube"]["list_cost"])
        playlist = request.query.get("playlistId", "")
        channel = self.channels.get(token.subject)
        if not channel or playlist != "UU" + channel["id"][2:]:
            raise youtube_error("playlistNotFound", status=404)
        count = min(int(request.query.get("maxResults", "5")), 50)
        try:  # a page token is where the page starts, as YouTube's are opaque cursors
            start = int(base64.urlsafe_b64decode(request.query["pageToken"]).decode()) if "pageToken" in request.query else 0
        except ValueError:
            raise youtube_error("invalidPageToken", status=400) from None
        uploads = sorted((v for v in self.videos.values() if v["channel"] == channel["id"]), key=lambda v: -v["created"])
        videos = uploads[start:start + count]
        following = start + len(videos)
        items = []
        for video in videos:
            full = {"snippet": {"title": video["snippet"]["title"], "channelId": channel["id"],
                                "playlistId": playlist, "resourceId": {"kind": "youtube#video", "videoId": video["id"]}},
                    "contentDetails": {"videoId": video["id"],
                                       "videoPublishedAt": iso(video["created"]).replace(".000", "")},
                    "status": {"privacyStatus": video["status"].get("privacyStatus", "public")}}
            item = {"kind": "youtube#playlistItem", "etag": etag("item", video["id"]), "id": "PI" + video["id"]}
            item.update({p: full[p] for p in parts if p in full})
            items.append(item)
        body = {"kind": "youtube#playlistItemListResponse", "etag": etag("items", playlist),
                "pageInfo": {"totalResults": len(uploads), "resultsPerPage": count}, "items": items}
        if following < len(uploads):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(following).encode()).decode()
        return Response.json(200, body)

    def list_videos(self, request: Request) -> Response:
        token = self.authenticate(request, READ_SCOPES | UPLOAD_SCOPES)
        parts = self.parts(request, VIDEO_PARTS)
        self.charge_units(self.world.settings["youtube"]["list_cost"])
        ids = [i for i in request.query.get("id", "").split(",") if i]
        items = []
        for video_id in ids:
            video = self.videos.get(video_id)
            if video and video["owner"] == token.subject:
                video["polls"] += 1
                items.append(self.video_resource(video, parts))
        return Response.json(200, {"kind": "youtube#videoListResponse", "etag": etag("videos", ids),
                                   "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
                                   "items": items})

    def delete_video(self, request: Request) -> Response:
        """`videos.delete?id=…`: 204; 404 `videoNotFound` for a video that is gone (or not this channel's)."""
        token = self.authenticate(request, MANAGE_SCOPES)
        self.charge_units(self.world.settings["youtube"]["delete_cost"])
        video = self.videos.get(request.query.get("id", ""))
        if video is None or video["owner"] != token.subject:
            raise youtube_error("videoNotFound")
        del self.videos[video["id"]]
        return Response.empty(204)

    def video_resource(self, video: dict, parts: list[str]) -> dict:
        processed = video["polls"] > self.world.settings["youtube"]["processing_polls"]
        snippet, status = video["snippet"], video["status"]
        full = {
            "snippet": {"publishedAt": iso(video["created"]).replace(".000", ""), "channelId": video["channel"],
                        "title": snippet["title"], "description": snippet.get("description", ""),
                        "thumbnails": {"default": {"url": f"https://i.ytimg.com/vi/{video['id']}/default.jpg",
                                                   "width": 120, "height": 90}},
                        "channelTitle": video["channel_title"], "tags": snippet.get("tags") or None,
                        "categoryId": str(snippet.get("categoryId", "22")), "liveBroadcastContent": "none",
                        "localized": {"title": snippet["title"], "description": snippet.get("description", "")}},
            "status": {"uploadStatus": "processed" if processed and video["polls"] else "uploaded",
                       "privacyStatus": status.get("privacyStatus", "public"), "license": "youtube",
                       "embeddable": True, "publicStatsViewable": True,
                       "selfDeclaredMadeForKids": bool(status.get("selfDeclaredMadeForKids", False))},
            "processingDetails": {"processingStatus": "succeeded" if processed else "processing"},
            "statistics": {name: str(self.world.engagement.get(video["id"], {}).get(name, 0))
                           for name in ("viewCount", "likeCount", "dislikeCount", "favoriteCount", "commentCount")},
        }
        if status.get("publishAt"):
            full["status"]["publishAt"] = status["publishAt"]
        if full["snippet"]["tags"] is None:
            del full["snippet"]["tags"]
        resource = {"kind": "youtube#video", "etag": etag("video", video["id"]), "id": video["id"]}
        resource.update({p: full[p] for p in parts if p in full})
        return resource

    # ----- thumbnails.set and playlistItems.insert (50 units each) -----------------------------------------------

    def owned_video(self, token: Token, video_id: str | None) -> dict:
        video = self.videos.get(video_id or "")
        if video is None:
            raise youtube_error("videoNotFound", status=404)
        if video["owner"] != token.subject:
            raise youtube_error("forbidden", status=403)
        return video

    def set_thumbnail(self, request: Request) -> Response:
        token = self.authenticate(request, UPLOAD_SCOPES | MANAGE_SCOPES)
        if request.query.get("uploadType", "media") != "media":
            raise youtube_error("badRequest", "thumbnails.set takes uploadType=media", location="uploadType")
        video = self.owned_video(token, request.query.get("videoId"))
        media_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if media_type not in THUMBNAIL_TYPES:
            raise youtube_error("invalidImage", f"Media type '{media_type}' is not supported.")
        if not request.body:
            raise youtube_error("mediaBodyRequired")
        if len(request.body) > 2 * 1024 * 1024:
            raise youtube_error("mediaTooLarge", status=413)
        self.charge_units(50)
        video["thumbnail"] = {"bytes": len(request.body), "sha256": hashlib.sha256(request.body).hexdigest(),
                              "type": media_type}
        url = f"https://i.ytimg.com/vi/{video['id']}/custom.jpg"
        return Response.json(200, {"kind": "youtube#thumbnailSetResponse", "etag": etag("thumb", video["id"]),
                                   "items": [{"default": {"url": url, "width": 120, "height": 90}}]})

    def insert_playlist_item(self, request: Request) -> Response:
        token = self.authenticate(request, MANAGE_SCOPES)
        parts = self.parts(request, {"id", "snippet", "contentDetails", "status"})
        body = request.json if isinstance(request.json, dict) else {}
        snippet = body.get("snippet") if isinstance(body.get("snippet"), dict) else {}
        resource = snippet.get("resourceId") if isinstance(snippet.get("resourceId"), dict) else {}
        playlist = self.playlists.get(snippet.get("playlistId") or "")
        if playlist is None:
            raise youtube_error("playlistNotFound", status=404)
        if resource.get("kind") != "youtube#video":
            raise youtube_error("invalidResourceId", status=400)
        video = self.owned_video(token, resource.get("videoId"))
        if playlist["channel"] != video["channel"]:
            raise youtube_error("playlistOperationUnsupported", status=400)
        self.charge_units(50)
        item_id = base64.urlsafe_b64encode(f"{snippet['playlistId']}:{video['id']}:{len(playlist['items'])}"
                                           .encode()).decode().rstrip("=")
        playlist["items"].append(video["id"])
        full = {"snippet": {"playlistId": snippet["playlistId"], "position": len(playlist["items"]) - 1,
                            "resourceId": {"kind": "youtube#video", "videoId": video["id"]},
                            "channelId": video["channel"], "title": video["snippet"]["title"]}}
        item = {"kind": "youtube#playlistItem", "etag": etag("item", item_id), "id": item_id}
        item.update({p: full[p] for p in parts if p in full})
        return Response.json(200, item)

    # ----- resumable upload ------------------------------------------------------------------------------------

    def start_session(self, request: Request) -> Response:
        token = self.authenticate(request, UPLOAD_SCOPES)
        if request.query.get("uploadType") != "resumable":
            raise youtube_error("badRequest", "The fake only implements uploadType=resumable", location="uploadType")
        parts = self.parts(request, VIDEO_PARTS)
        notify = request.query.get("notifySubscribers", "true")
        if notify not in ("true", "false"):
            raise youtube_error("invalidParameter", f"Invalid value '{notify}'. Values must match the following "
                                "regular expression: 'true|false'", location="notifySubscribers")
        length_text = request.header("x-upload-content-length")
        total = None
        if length_text is not None:
            if not length_text.isdigit():
                raise youtube_error("badRequest", "Invalid X-Upload-Content-Length header",
                                    location="X-Upload-Content-Length")
            total = int(length_text)
        media_type = (request.header("x-upload-content-type") or "").split(";")[0].strip().lower()
        if media_type and not (media_type.startswith("video/") or media_type == "application/octet-stream"):
            raise youtube_error("badContent", f"Media type '{media_type}' is not supported. Valid media types: "
                                "[video/*, application/octet-stream]")
        if request.body_kind == "invalid-json" or (request.body and request.body_kind != "json"):
            raise youtube_error("badRequest", "The request body is not valid JSON")
        metadata = request.json if isinstance(request.json, dict) else {}
        snippet, status = validate_metadata(metadata)
        if self.world.settings["youtube"]["unaudited_project"]:
            status = {**status, "privacyStatus": "private"}  # projects YouTube has not audited upload private only
        channel = self.channels.get(token.subject)
        if channel is None:
            raise youtube_error("youtubeSignupRequired")
        self.charge_insert()
        upload_id = "fake-upload-" + hashlib.sha256(
            f"{self.world.seed}:{self.world.ids.next('yt_session')}".encode()).hexdigest()[:24]
        self.sessions[upload_id] = {"id": upload_id, "owner": token.subject, "channel": channel, "total": total,
                                    "media_type": media_type or None, "received": bytearray(),
                                    "snippet": snippet, "status": status, "parts": parts,
                                    "created": self.world.clock.now(), "video": None,
                                    "notify_subscribers": notify == "true"}
        location = (f"{request.base_url}/upload/youtube/v3/videos?uploadType=resumable&upload_id={upload_id}"
                    f"&part={','.join(parts)}")
        return Response.empty(200, [("Location", location), ("X-GUploader-UploadID", upload_id),
                                    ("Content-Type", "text/plain; charset=utf-8")])

    def upload_bytes(self, request: Request) -> Response:
        session = self.sessions.get(request.query["upload_id"])
        ttl = self.world.settings["youtube"]["session_ttl_seconds"]
        if session is None or self.world.clock.now() - session["created"] > ttl:
            raise youtube_error("notFound", status=404)
        if session["video"]:
            return Response.json(200, self.video_resource(self.videos[session["video"]], session["parts"]))
        received = session["received"]
        content_range = request.header("content-range")
        if content_range is None:
            start, end, total = 0, len(request.body) - 1, len(request.body)
            if received:
                raise youtube_error("badRequest", "Content-Range is required to resume an upload")
        else:
            match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", content_range.strip())
            if not match:
                raise youtube_error("badRequest", f"Invalid Content-Range: {content_range}")
            total = int(match.group(3)) if match.group(3) != "*" else None
            if match.group(1) is None:  # status probe
                return self.progress(session)
            start, end = int(match.group(1)), int(match.group(2))
            if end - start + 1 != len(request.body):
                raise youtube_error("badRequest", "Content-Range does not match the request body length")
        expected = session["total"]
        if total is not None and expected is not None and total != expected:
            raise youtube_error("badRequest", f"Upload length {total} does not match X-Upload-Content-Length "
                                f"{expected}")
        total = total if total is not None else expected
        if start > len(received):
            return self.progress(session)  # a gap: the client must trust Range and resend
        data = request.body[len(received) - start:]
        final = total is not None and start + len(request.body) >= total
        if not final:
            multiple = self.world.settings["youtube"]["chunk_multiple"]
            keep = ((len(received) + len(data)) // multiple) * multiple - len(received) if multiple else len(data)
            data = data[:max(0, keep)]
        received.extend(data)
        if final and len(received) == total:
            return self.complete(session)
        return self.progress(session)

    def progress(self, session: dict) -> Response:
        if session["video"]:
            return Response.json(200, self.video_resource(self.videos[session["video"]], session["parts"]))
        headers = [("X-GUploader-UploadID", session["id"])]
        if session["received"]:
            headers.append(("Range", f"bytes=0-{len(session['received']) - 1}"))
        return Response.empty(308, headers + [("Content-Type", "text/plain; charset=utf-8")])

    def complete(self, session: dict) -> Response:
        data = bytes(session["received"])
        video_id = base64.urlsafe_b64encode(hashlib.sha256(
            f"{self.world.seed}:video:{self.world.ids.next('yt_video')}".encode()).digest()).decode()[:11]
        channel = session["channel"]
        video = {"id": video_id, "owner": session["owner"], "channel": channel["id"], "channel_title": channel["title"],
                 "snippet": session["snippet"], "status": session["status"], "created": self.world.clock.now(),
                 "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "polls": 0}
        self.videos[video_id] = video
        session["video"] = video_id
        session["received"] = bytearray()
        self.world.recorder.publish("youtube", "video", video_id, channel["id"], session["snippet"]["title"],
                                    f"https://www.youtube.com/watch?v={video_id}",
                                    description=session["snippet"].get("description", ""), bytes=len(data),
                                    sha256=video["sha256"], privacy_status=session["status"].get("privacyStatus"),
                                    notify_subscribers=session["notify_subscribers"], status=session["status"],
                                    default_language=session["snippet"].get("defaultLanguage"),
                                    publish_at=session["status"].get("publishAt"))
        return Response.json(201, self.video_resource(video, session["parts"]))


def validate_metadata(metadata: dict) -> tuple[dict, dict]:
    snippet = metadata.get("snippet") if isinstance(metadata.get("snippet"), dict) else {}
    status = metadata.get("status") if isinstance(metadata.get("status"), dict) else {}
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 100 or "<" in title or ">" in title:
        raise youtube_error("invalidTitle")
    description = snippet.get("description", "")
    if not isinstance(description, str) or len(description.encode()) > 5000 or "<" in description or ">" in description:
        raise youtube_error("invalidDescription")
    tags = snippet.get("tags", [])
    if not isinstance(tags, list) or sum(len(str(t)) + (2 if " " in str(t) else 0) for t in tags) > 500:
        raise youtube_error("invalidTags")
    if "categoryId" in snippet and not str(snippet["categoryId"]).isdigit():
        raise youtube_error("invalidCategoryId")
    privacy = status.get("privacyStatus", "public")
    if privacy not in ("private", "unlisted", "public"):
        raise youtube_error("invalidVideoMetadata", "The request metadata specifies an invalid privacy status.")
    if status.get("license", "youtube") not in ("youtube", "creativeCommon"):
        raise youtube_error("invalidVideoMetadata", "The request metadata specifies an invalid license.")
    for flag in ("embeddable", "containsSyntheticMedia", "selfDeclaredMadeForKids"):
        if flag in status and not isinstance(status[flag], bool):
            raise youtube_error("invalidVideoMetadata", f"status.{flag} must be a boolean.")
    if "defaultLanguage" in snippet and not re.fullmatch(r"[A-Za-z0-9-]{1,35}", str(snippet["defaultLanguage"])):
        raise youtube_error("invalidVideoMetadata", "The request metadata specifies an invalid default language.")
    if status.get("publishAt"):
        if privacy != "private":
            raise youtube_error("invalidPublishAt", "A scheduled publishing time requires privacyStatus private.")
        try:
            dt.datetime.fromisoformat(str(status["publishAt"]).replace("Z", "+00:00"))
        except ValueError:
            raise youtube_error("invalidPublishAt") from None
    return snippet, status


def etag(*parts: Any) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(json.dumps(parts, default=str).encode()).digest()).decode()[:27]
