"""Facebook Pages (docs/platforms/meta.md): feed posts, photos (single, unpublished, multi-photo via
`attached_media`), videos, reels and stories with the rupload host, and reads for reconciliation."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .core import DAY, Token, iso
from .meta import Graph, Node, cursor_page, graph_error, parse_bool, project
from .wire import Request, Response

POST_METRICS = {"post_impressions", "post_impressions_unique", "post_clicks", "post_reactions_by_type_total",
                "post_video_views"}
VIDEO_METRICS = {"total_video_impressions", "total_video_impressions_unique", "total_video_views"}
POST_PERMISSION = ("(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an "
                   "admin with sufficient administrative permission")


class Facebook:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.world = graph.world
        self.reel_times: dict[str, list[float]] = {}
        self.upload_sessions: dict[str, str] = {}  # chunked video upload session → video id
        on = graph.on
        on("page", "GET", "", self.read_page)
        on("page", "POST", "feed", self.post_feed)
        on("page", "GET", "feed", self.list_feed)
        on("page", "GET", "published_posts", self.list_feed)
        on("page", "POST", "photos", self.post_photo)
        on("page", "POST", "videos", self.post_video)
        on("page", "POST", "video_reels", self.video_reels)
        on("page", "POST", "video_stories", self.video_stories)
        on("page", "POST", "photo_stories", self.photo_stories)
        on("fb_post", "GET", "", self.read_post)
        on("fb_post", "DELETE", "", self.delete_post)
        on("fb_post", "GET", "insights", self.insights)
        on("fb_photo", "GET", "", lambda r, t, n, c: project(n.data, c["fields"]))
        on("fb_photo", "DELETE", "", self.delete_post)
        on("fb_video", "GET", "", self.read_video)
        on("fb_video", "DELETE", "", self.delete_post)
        on("fb_video", "GET", "video_insights", self.insights)
        on("user", "GET", "", lambda r, t, n, c: project(n.data, c["fields"], ("id", "name")))
        on("rupload", "POST", "video-upload", self.rupload)

    # ----- reads -----------------------------------------------------------------------------------------------

    def read_page(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        page = node.data
        ig = self.graph.nodes.get(page.get("instagram") or "")
        view: dict[str, Any] = {"id": page["id"], "name": page["name"], "username": page["username"],
                                "category": page["category"], "link": f"https://www.facebook.com/{page['username']}",
                                "fan_count": 0}
        if ig:
            view["instagram_business_account"] = {"id": ig.data["id"], "username": ig.data["username"]}
        if token.kind == "USER" and token.subject in page["roles"]:
            view["access_token"] = page["token"]
            view["tasks"] = page["roles"][token.subject]
        elif token.kind == "PAGE" and token.subject == page["id"]:
            view["access_token"] = token.value
        return project(view, context["fields"], ("id", "name"))

    def list_feed(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        posts = [n.data for n in self.graph.nodes.values() if n.kind == "fb_post" and n.account == node.account
                 and n.extra.get("published", True)]
        posts.sort(key=lambda p: p["_seq"], reverse=True)
        fields = context["fields"] or {"id": None, "message": None, "created_time": None}
        return cursor_page(request, [project(p, fields) for p in posts])

    def read_post(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        """A post with the engagement edges Graph summarises: `reactions.summary(total_count)`, `comments…`, `shares`."""
        stats = self.world.engagement.get(node.data["id"], {})
        view = dict(node.data)
        view["reactions"] = {"data": [], "summary": {"total_count": stats.get("reactions", 0), "viewer_reaction": "NONE"}}
        view["comments"] = {"data": [], "summary": {"order": "ranked", "total_count": stats.get("comments", 0),
                                                    "can_comment": True}}
        if stats.get("shares"):
            view["shares"] = {"count": stats["shares"]}  # Graph leaves `shares` out of a post nobody shared
        return project(view, context["fields"])

    def insights(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        """`/{post}/insights?metric=…` and `/{video}/video_insights?metric=…`: lifetime values per metric."""
        known = POST_METRICS if node.kind == "fb_post" else VIDEO_METRICS
        names = [m for m in str(request.params.get("metric") or "").split(",") if m]
        for name in names:
            if name not in known:
                raise graph_error(100, message=f"(#100) The value must be a valid insights metric: {name}")
        stats = self.world.engagement.get(node.data["id"], {})
        return {"data": [{"name": name, "period": "lifetime", "values": [{"value": stats.get(name, 0)}],
                          "title": name, "id": f"{node.data['id']}/insights/{name}/lifetime"}
                         for name in names or sorted(known)]}

    def read_video(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        video = node.extra
        if video["uploaded"]:
            video["polls"] += 1
        return project({**node.data, "status": self.video_status(video)}, context["fields"])

    def video_status(self, video: dict) -> dict:
        ready = video["uploaded"] and video["polls"] > self.world.settings["facebook"]["video_polls_until_ready"]
        if not video["uploaded"]:
            overall, processing = "processing", "not_started"
        else:
            overall, processing = ("ready", "complete") if ready else ("upload_complete", "in_progress")
        publishing: dict[str, Any] = {"status": "not_started"}
        if video["published_at"]:
            publishing = {"status": "complete", "publish_status": "published",
                          "publish_time": int(video["published_at"])}
        return {"video_status": overall,
                "uploading_phase": {"status": "complete" if video["uploaded"] else "not_started",
                                    "bytes_transferred": video["bytes"]},
                "processing_phase": {"status": processing}, "publishing_phase": publishing}

    # ----- publishing ------------------------------------------------------------------------------------------

    def require_page_token(self, token: Token, node: Node) -> None:
        page = node.data
        tasks = page["roles"].get(token.user_id or token.subject, [])
        if (token.kind != "PAGE" or token.subject != page["id"] or "CREATE_CONTENT" not in tasks
                or not {"pages_manage_posts", "pages_read_engagement"} <= set(token.scopes)):
            raise graph_error(200, message=POST_PERMISSION)

    def post_feed(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require_page_token(token, node)
        p = request.params
        message, link = p.get("message"), p.get("link")
        media = self.attached_media(p, node)
        if not (message or link or media):
            raise graph_error(100, message="(#100) The parameter message or link or attached_media is required")
        published = parse_bool(p.get("published"))
        scheduled = p.get("scheduled_publish_time")
        now = self.world.clock.now()
        window = self.world.settings["facebook"]["duplicate_window_seconds"]
        if window and message and not media and not link:
            for other in self.graph.nodes.values():
                if (other.kind == "fb_post" and other.account == node.account and other.data.get("message") == message
                        and not other.extra.get("media") and now - other.extra["time"] < window):
                    raise graph_error(506)
        button = self.call_to_action(p.get("call_to_action"), link)
        post = self.new_post(node, message=message, link=link, media=[m["media_fbid"] for m in media],
                             published=published, scheduled=scheduled, **button)
        for item in media:
            self.graph.nodes[item["media_fbid"]].extra["attached"] = post["id"]
        return project(post, context["fields"]) if context["fields"] else {"id": post["id"]}

    @staticmethod
    def call_to_action(raw: Any, link: str | None) -> dict:
        """`call_to_action` on a feed post: a button `{type, value: {link}}` on the post's own link, its type one of
        the SDK's call-to-action types; recorded as `call_to_action`."""
        if raw is None:
            return {}
        from facebook_business.adobjects.adcreativelinkdatacalltoaction import AdCreativeLinkDataCallToAction
        types = {v for k, v in vars(AdCreativeLinkDataCallToAction.Type).items() if not k.startswith("_")}
        try:
            button = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            button = None
        if not isinstance(button, dict) or button.get("type") not in types:
            raise graph_error(100, message="(#100) Param call_to_action[type] must be a call-to-action type")
        if not link or (button.get("value") or {}).get("link") != link:
            raise graph_error(100, message="(#100) call_to_action[value][link] must be the post's link")
        return {"call_to_action": button}

    def attached_media(self, params: dict, node: Node) -> list[dict]:
        raw: Any = params.get("attached_media")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise graph_error(100, message="(#100) param attached_media must be an array.") from None
        if raw is None:
            indexed = sorted((int(k[15:-1]), v) for k, v in params.items()
                             if k.startswith("attached_media[") and k.endswith("]") and k[15:-1].isdigit())
            raw = [json.loads(v) if isinstance(v, str) else v for _, v in indexed]
        items = raw if isinstance(raw, list) else []
        for index, item in enumerate(items):
            fbid = str(item.get("media_fbid", "")) if isinstance(item, dict) else ""
            photo = self.graph.nodes.get(fbid)
            if (photo is None or photo.kind != "fb_photo" or photo.account != node.account
                    or photo.extra.get("published") or photo.extra.get("attached")):
                raise graph_error(100, message=f"(#100) param attached_media[{index}] must be a valid unpublished "
                                  "photo id of this Page")
            item["media_fbid"] = fbid
        return items

    def new_post(self, node: Node, *, message: str | None, link: str | None = None, media: list | None = None,
                 published: bool = True, scheduled: Any = None, kind: str = "feed", **extra: Any) -> dict:
        page_id = node.account
        post_id = f"{page_id}_{self.graph.next_id('fb_post', 1000000000000000)}"
        now = self.world.clock.now()
        local = post_id.split("_")[1]
        data = {"id": post_id, "message": message, "link": link, "created_time": iso(now, meta=True),
                "permalink_url": f"https://www.facebook.com/{page_id}/posts/{local}", "is_published": published,
                "scheduled_publish_time": int(scheduled) if scheduled and not published else None,
                "_seq": self.world.ids.next("fb_post_seq")}
        self.graph.add(post_id, "fb_post", data, page_id, published=published, media=media or [], time=now)
        if published:
            self.world.recorder.publish("facebook", kind, post_id, page_id, message, data["permalink_url"],
                                        link=link, media=media or [], **extra)
        elif scheduled:
            self.world.recorder.publish("facebook", "scheduled", post_id, page_id, message, data["permalink_url"],
                                        scheduled_publish_time=scheduled, media=media or [])
        return data

    def post_photo(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require_page_token(token, node)
        p = request.params
        url, source = p.get("url"), request.files.get("source")
        if not url and source is None:
            raise graph_error(324, message="(#324) Requires upload file")
        published = parse_bool(p.get("published"))
        caption = p.get("message") or p.get("caption")
        photo_id = self.graph.next_id("fb_photo", 5000000000000000)
        now = self.world.clock.now()
        digest = hashlib.sha256(source.data).hexdigest() if source else None
        data = {"id": photo_id, "created_time": iso(now, meta=True), "name": caption,
                "link": f"https://www.facebook.com/photo.php?fbid={photo_id}"}
        self.graph.add(photo_id, "fb_photo", data, node.account, published=published, url=url, sha256=digest)
        if not published:
            return {"id": photo_id}
        alt = p.get("alt_text_custom")
        if alt is not None and (not isinstance(alt, str) or len(alt) > 1000):
            raise graph_error(100, message="(#100) Param alt_text_custom must be a string of at most 1000 characters")
        post = self.new_post(node, message=caption, media=[photo_id], kind="photo", photo_id=photo_id,
                             media_url=url, sha256=digest, alt_text=alt)
        return {"id": photo_id, "post_id": post["id"]}

    def post_video(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require_page_token(token, node)
        if "publish_video" not in token.scopes:
            raise graph_error(200, message="(#200) Requires publish_video permission")
        p = request.params
        if p.get("upload_phase"):
            return self.chunked_video(request, node, p)
        source = request.files.get("source")
        file_url = p.get("file_url") or p.get("fbuploader_video_file_chunk")
        if not file_url and source is None:
            raise graph_error(100, message="(#100) Either file_url, source or fbuploader_video_file_chunk is required")
        thumb = request.files.get("thumb")
        if thumb is not None and not thumb.data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
            raise graph_error(100, message="(#100) Param thumb must be an image file")
        video = self.new_video(node, "video", description=p.get("description"), title=p.get("title"))
        video.extra.update(uploaded=True, bytes=len(source.data) if source else 0)
        if parse_bool(p.get("published")):
            recorded = {"thumb_bytes": len(thumb.data), "thumb_sha256": hashlib.sha256(thumb.data).hexdigest()} \
                if thumb is not None else {}
            self.publish_video(video, "video", file_url=file_url, **recorded)
        return {"id": video.data["id"]}

    def chunked_video(self, request: Request, node: Node, p: dict) -> dict:
        """`/{page-id}/videos` in phases: `start` (file_size) → a session and the first byte range; each `transfer`
        (start_offset, video_file_chunk) → the next range; `finish` publishes. A transfer of a range already stored
        is answered with the range now expected, so a client whose answer was lost resends and carries on."""
        phase = p.get("upload_phase")
        chunk = self.world.settings["facebook"]["video_chunk_bytes"]
        if phase == "start":
            size = int(p.get("file_size") or 0)
            if size <= 0:
                raise graph_error(100, message="(#100) file_size must be a positive integer")
            video = self.new_video(node, "video")
            session = str(self.graph.next_id("fb_upload_session", 8000000000000000))
            video.extra.update(session=session, size=size, received=bytearray())
            self.upload_sessions[session] = video.data["id"]
            return {"video_id": video.data["id"], "upload_session_id": session, "start_offset": "0",
                    "end_offset": str(min(chunk, size))}
        video = self.graph.nodes.get(self.upload_sessions.get(str(p.get("upload_session_id") or ""), ""))
        if video is None or video.account != node.account:
            raise graph_error(100, message="(#100) Invalid upload_session_id")
        received, size = video.extra["received"], video.extra["size"]
        if phase == "transfer":
            piece = request.files.get("video_file_chunk")
            start = int(p.get("start_offset") or -1)
            if piece is None:
                raise graph_error(100, message="(#100) video_file_chunk is required")
            if start == len(received):
                expected = min(chunk, size - start)
                if len(piece.data) != expected:
                    raise graph_error(6001, message="Video upload chunk has the wrong size", is_transient=False)
                received.extend(piece.data)
            elif start > len(received) or start < 0:
                raise graph_error(1363037, message="(#1363037) The start_offset does not match the upload session")
            done = len(received)
            return {"start_offset": str(done), "end_offset": str(min(done + chunk, size))}
        if phase != "finish":
            raise graph_error(100, message="(#100) upload_phase must be one of {start, transfer, finish}")
        if len(received) != size:
            raise graph_error(6000, message="Video Upload Is Missing", user_title="Problem with file",
                              user_msg="Problem with file. Try with another file.")
        if video.extra["published_at"]:
            raise graph_error(100, message="(#100) This video has already been published")
        video.data.update(description=p.get("description"), title=p.get("title"))
        video.extra.update(uploaded=True, bytes=size, sha256=hashlib.sha256(bytes(received)).hexdigest(),
                           received=bytearray())
        self.publish_video(video, "video", chunked=True)
        return {"success": True}

    def new_video(self, node: Node, kind: str, **data: Any) -> Node:
        video_id = self.graph.next_id("fb_video", 6000000000000000)
        now = self.world.clock.now()
        link = (f"https://www.facebook.com/reel/{video_id}" if kind == "reel"
                else f"https://www.facebook.com/{node.account}/videos/{video_id}")
        return self.graph.add(video_id, "fb_video", {"id": video_id, "created_time": iso(now, meta=True),
                                                     "permalink_url": link, **data}, node.account,
                              kind=kind, uploaded=False, bytes=0, polls=0, published_at=None, sha256=None)

    def publish_video(self, video: Node, kind: str, **extra: Any) -> dict:
        video.extra["published_at"] = self.world.clock.now()
        text = video.data.get("description") or video.data.get("title")
        return self.world.recorder.publish("facebook", kind, video.data["id"], video.account, text,
                                           video.data["permalink_url"], title=video.data.get("title"),
                                           bytes=video.extra["bytes"], sha256=video.extra["sha256"], **extra)

    def video_reels(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        return self.video_phases(request, token, node, "reel")

    def video_stories(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        return self.video_phases(request, token, node, "story")

    def video_phases(self, request: Request, token: Token, node: Node, kind: str) -> dict:
        self.require_page_token(token, node)
        p = request.params
        phase = p.get("upload_phase")
        if phase == "start":
            video = self.new_video(node, kind)
            version, _ = self.graph.split(request)
            return {"video_id": video.data["id"],
                    "upload_url": f"{request.base_url}/video-upload/{version}/{video.data['id']}"}
        if phase != "finish":
            raise graph_error(100, message="(#100) upload_phase must be one of {start, finish}")
        video = self.graph.nodes.get(str(p.get("video_id") or ""))
        if video is None or video.kind != "fb_video" or video.account != node.account or video.extra["kind"] != kind:
            raise graph_error(100, message="(#100) Invalid video_id")
        if not video.extra["uploaded"]:
            raise graph_error(6000, message="Video Upload Is Missing", user_title="Problem with file",
                              user_msg="Problem with file. Try with another file.")
        if video.extra["published_at"]:
            raise graph_error(100, message="(#100) This video has already been published")
        video.data.update(description=p.get("description"), title=p.get("title"))
        if kind == "story":
            post_id = self.graph.next_id("fb_story", 7000000000000000)
            self.publish_video(video, "story", post_id=post_id)
            return {"success": True, "post_id": post_id}
        state = (p.get("video_state") or "PUBLISHED").upper()
        if state == "PUBLISHED":
            now = self.world.clock.now()
            recent = [t for t in self.reel_times.get(node.account, []) if now - t < DAY]
            if len(recent) >= self.world.settings["facebook"]["reels_per_day"]:
                raise graph_error(9, message="(#9) This Page has reached the limit of 30 API-published reels in 24 "
                                  "hours")
            self.reel_times[node.account] = recent + [now]
            self.publish_video(video, "reel")
        return {"success": True}

    def photo_stories(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require_page_token(token, node)
        photo = self.graph.nodes.get(str(request.params.get("photo_id") or ""))
        if photo is None or photo.kind != "fb_photo" or photo.account != node.account or photo.extra.get("published"):
            raise graph_error(100, message="(#100) photo_id must be an unpublished photo of this Page")
        photo.extra["published"] = True
        post_id = self.graph.next_id("fb_story", 7000000000000000)
        self.world.recorder.publish("facebook", "story", post_id, node.account, None, None, photo_id=photo.data["id"])
        return {"success": True, "post_id": post_id}

    def delete_post(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require_page_token(token, self.graph.nodes[node.account])
        self.graph.nodes.pop(context["id"], None)
        return {"success": True}

    # ----- rupload.facebook.com --------------------------------------------------------------------------------

    def rupload(self, request: Request, _token: Any, _node: Any, context: dict) -> Response:
        """`POST /video-upload/{v}/{video-id}`: needs `Authorization: OAuth`, `offset` and `file_size`."""
        segments = context["segments"]
        video = self.graph.nodes.get(segments[-1])
        token = self.world.tokens.get(_oauth(request))
        if token is None or not token.usable(self.world.clock.now()):
            return _rupload_error(401, "AuthError", "Invalid OAuth access token.")
        if video is None or video.kind != "fb_video" or (token.targets and video.account not in token.targets):
            return _rupload_error(404, "NotFoundError", "Video not found.")
        offset, size = _int_header(request, "offset"), _int_header(request, "file_size")
        if offset is None or size is None:
            name = "Offset" if offset is None else "file_size"
            return _rupload_error(400, "ParameterValidationError",
                                  f"HeaderValuePredicate: Header {name} not convertable to unsigned long")
        file_url = request.header("file_url")
        if file_url:
            video.extra.update(uploaded=True, bytes=size, file_url=file_url)
        else:
            if offset != video.extra["bytes"] or offset + len(request.body) > size:
                return _rupload_error(400, "OffsetInvalidError", f"Offset {offset} is not the next expected offset")
            video.extra.setdefault("_hash", hashlib.sha256())
            video.extra["_hash"].update(request.body)
            video.extra["bytes"] = offset + len(request.body)
            if video.extra["bytes"] == size:
                video.extra.update(uploaded=True, sha256=video.extra.pop("_hash").hexdigest())
        return Response.json(200, {"success": True})


def _oauth(request: Request) -> str | None:
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() in ("oauth", "bearer") else None


def _int_header(request: Request, name: str) -> int | None:
    try:
        value = int(request.header(name) or "")
        return value if value >= 0 else None
    except ValueError:
        return None


def _rupload_error(status: int, kind: str, message: str) -> Response:
    return Response.json(status, {"debug_info": {"retriable": False, "type": kind, "message": message}})

