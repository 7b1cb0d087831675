"""Instagram content publishing (docs/platforms/meta.md): containers that finish after N status polls,
`media_publish` with its not-ready, already-published and quota errors, carousels, resumable
video uploads, permalinks and the publishing limit. Same paths for Facebook-Login and
Instagram-Login tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .core import Token, iso
from .meta import Graph, Node, cursor_page, graph_error, parse_bool, project
from .wire import Request, Response

STATUS_TEXT = {
    "IN_PROGRESS": "In Progress: Media is still being processed.",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been successfully published.",
    "EXPIRED": "Expired: Media was not published within 24 hours.",
    "ERROR": "Error: Media upload has failed with error code 2207082",
}
KINDS = {None: "IMAGE", "IMAGE": "IMAGE", "VIDEO": "VIDEO", "REELS": "REELS", "STORIES": "STORIES",
         "CAROUSEL": "CAROUSEL"}


def _err(code: int, subcode: int | None = None, message: str | None = None, **kw: Any):
    return graph_error(code, subcode, message, platform="instagram", **kw)


# The metrics each media product type answers (others are refused with error 100).
MEDIA_METRICS = {
    "FEED": {"reach", "views", "likes", "comments", "shares", "saved", "total_interactions", "profile_visits"},
    "REELS": {"reach", "views", "likes", "comments", "shares", "saved", "total_interactions",
              "ig_reels_avg_watch_time"},
    "STORY": {"reach", "views", "shares", "replies", "navigation", "total_interactions"},
}


class Instagram:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.world = graph.world
        self.publish_times: dict[str, list[float]] = {}
        on = graph.on
        on("ig_user", "GET", "", self.read_user)
        on("ig_user", "POST", "media", self.create_container)
        on("ig_user", "GET", "media", self.list_media)
        on("ig_user", "POST", "media_publish", self.media_publish)
        on("ig_user", "GET", "content_publishing_limit", self.publishing_limit)
        on("ig_container", "GET", "", self.read_container)
        on("ig_media", "GET", "", self.read_media)
        on("ig_media", "GET", "children", self.media_children)
        on("ig_media", "GET", "insights", self.media_insights)
        on("rupload", "POST", "ig-api-upload", self.rupload)

    def settings(self) -> dict:
        return self.world.settings["instagram"]

    def require(self, token: Token, publish: bool) -> None:
        if token.kind == "IG_USER":
            needed = ["instagram_business_basic"] + (["instagram_business_content_publish"] if publish else [])
        else:
            needed = ["instagram_basic"] + (["instagram_content_publish", "pages_read_engagement"] if publish else [])
        if not set(needed) <= set(token.scopes):
            raise _err(10)

    # ----- account ---------------------------------------------------------------------------------------------

    def read_user(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require(token, publish=False)
        user = node.data
        count = sum(1 for n in self.graph.nodes.values() if n.kind == "ig_media" and n.account == node.account)
        view = {**user, "user_id": user["id"], "media_count": count, "followers_count": 0}
        return project(view, context["fields"], ("id", "username") if token.kind != "IG_USER" else ("id",))

    def publishing_limit(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require(token, publish=False)
        since = request.params.get("since")
        usage = self.quota_usage(node.account, float(since) if since else None)
        entry = {"quota_usage": usage,
                 "config": {"quota_total": self.settings()["quota_total"],
                            "quota_duration": self.settings()["quota_duration"]}}
        fields = context["fields"]
        return {"data": [{k: v for k, v in entry.items() if not fields or k in fields}]}

    def quota_usage(self, account: str, since: float | None = None) -> int:
        now = self.world.clock.now()
        start = max(now - self.settings()["quota_duration"], since or 0)
        times = [t for t in self.publish_times.get(account, []) if t > now - self.settings()["quota_duration"]]
        self.publish_times[account] = times
        return sum(1 for t in times if t >= start)

    # ----- containers ------------------------------------------------------------------------------------------

    def create_container(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require(token, publish=True)
        p = request.params
        media_type = p.get("media_type")
        media_type = media_type.upper() if isinstance(media_type, str) else None
        if media_type not in KINDS:
            raise _err(100, 2207023, "The media type is not supported", user_title="Unknown media type")
        kind = KINDS[media_type]
        carousel_item = parse_bool(p.get("is_carousel_item"), default=False)
        resumable = p.get("upload_type") == "resumable"
        if kind == "VIDEO" and not carousel_item:
            raise _err(100, 2207023, "(#100) The VIDEO media type is not supported for feed posts; use REELS")
        caption = p.get("caption")
        if caption and len(caption) > 2200:
            raise _err(36004, 2207010, "The caption is too long", user_title="Caption too long",
                       user_msg="The caption can be at most 2200 characters.")
        children: list[str] = []
        url = None
        if kind == "CAROUSEL":
            children = self.carousel_children(p.get("children"), node)
        elif resumable and kind in ("REELS", "STORIES", "VIDEO"):
            if token.kind == "IG_USER":
                raise _err(100, message="(#100) upload_type=resumable is not supported with Instagram Login")
        else:
            url = p.get("video_url") if kind in ("REELS", "VIDEO") else p.get("image_url")
            if kind == "STORIES":
                url = p.get("image_url") or p.get("video_url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _err(9004, 2207052, user_title="Media download has failed.",
                           user_msg="The media could not be fetched from this URI: " + str(url or ""))
        options = container_options(p, kind, carousel_item)
        container_id = self.graph.next_id("ig_container", 17900000000000000)
        outcome = (parse_qs(urlsplit(url).query).get("fake_status", [""])[0].upper() if url else "") or None
        now = self.world.clock.now()
        data = {"id": container_id, "caption": caption, "media_type": kind, "url": url,
                "is_carousel_item": carousel_item, "children": children, "options": options}
        self.graph.add(container_id, "ig_container", data, node.account, created=now, polls=0, outcome=outcome,
                       published=None, awaiting_upload=resumable, bytes=0, sha256=None)
        answer = {"id": container_id}
        if resumable:
            version, _ = self.graph.split(request)
            answer["uri"] = f"{request.base_url}/ig-api-upload/{version}/{container_id}"
        return answer

    def carousel_children(self, raw: Any, node: Node) -> list[str]:
        if isinstance(raw, str):
            try:
                parsed = json.loads(raw)
                raw = parsed if isinstance(parsed, list) else raw.split(",")
            except ValueError:
                raw = raw.split(",")
        ids = [str(c).strip() for c in raw or [] if str(c).strip()]
        if not 2 <= len(ids) <= 10:
            raise _err(100, 2207028, "(#100) A carousel needs between 2 and 10 children",
                       user_title="Carousel validation failed")
        for child_id in ids:
            child = self.graph.nodes.get(child_id)
            if child is None or child.kind != "ig_container" or child.account != node.account \
                    or not child.data["is_carousel_item"]:
                raise _err(100, 2207028, f"(#100) Child {child_id} is not a carousel item of this account",
                           user_title="Carousel validation failed")
            if self.status(child) != "FINISHED":
                raise _err(9007, 2207027, user_title="Media not ready for publishing",
                           user_msg="The media is not ready for publishing, please wait for a moment")
        return ids

    def status(self, container: Node) -> str:
        extra, now = container.extra, self.world.clock.now()
        if extra["published"]:
            return "PUBLISHED"
        if now - extra["created"] >= self.settings()["container_ttl_seconds"] or extra["outcome"] == "EXPIRED":
            return "EXPIRED"
        if extra["awaiting_upload"] or extra["polls"] < self.settings()["polls_until_finished"]:
            return "IN_PROGRESS"
        return "ERROR" if extra["outcome"] == "ERROR" else "FINISHED"

    def read_container(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        status = self.status(node)
        if status == "IN_PROGRESS" and not node.extra["awaiting_upload"]:
            node.extra["polls"] += 1
        view = {"id": node.data["id"], "status_code": status, "status": STATUS_TEXT[status]}
        return project(view, context["fields"], ("id", "status_code"))

    # ----- publishing ------------------------------------------------------------------------------------------

    def media_publish(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require(token, publish=True)
        creation_id = str(request.params.get("creation_id") or "")
        if not creation_id:
            raise _err(100, message="(#100) The parameter creation_id is required.")
        container = self.graph.nodes.get(creation_id)
        if container is None or container.kind != "ig_container" or container.account != node.account:
            raise _err(24, 2207006, "The media with the given id could not be found",
                       user_title="Media not found")
        if container.data["is_carousel_item"]:
            raise _err(100, message="(#100) Carousel item containers cannot be published on their own")
        status = self.status(container)
        if status == "PUBLISHED":
            raise _err(100, message=f"(#100) The media container {creation_id} has already been published",
                       user_title="Media already published")
        if status == "EXPIRED":
            raise _err(-2, 2207020, "The media container has expired", user_title="Media expired",
                       user_msg="The media has expired. Please upload it again.")
        if status != "FINISHED":
            raise _err(9007, 2207027, user_title="Media not ready for publishing",
                       user_msg="The media is not ready for publishing, please wait for a moment")
        if self.quota_usage(node.account) >= self.settings()["quota_total"]:
            raise _err(9, 2207042, user_title="Publishing limit reached",
                       user_msg="You reached maximum number of posts that is allowed to be published by Content "
                                "Publishing API.")
        media = self.new_media(container, node)
        self.publish_times.setdefault(node.account, []).append(self.world.clock.now())
        container.extra["published"] = media["id"]
        return {"id": media["id"]}

    def new_media(self, container: Node, user: Node) -> dict:
        media_id = self.graph.next_id("ig_media", 17950000000000000)
        shortcode = base64.urlsafe_b64encode(hashlib.sha256(f"{self.world.seed}:{media_id}".encode())
                                             .digest()).decode()[:11]
        kind = container.data["media_type"]
        username = user.data["username"]
        media_type, product, permalink = {
            "IMAGE": ("IMAGE", "FEED", f"https://www.instagram.com/p/{shortcode}/"),
            "REELS": ("VIDEO", "REELS", f"https://www.instagram.com/reel/{shortcode}/"),
            "STORIES": ("VIDEO" if (container.data["url"] or "").split("?")[0].endswith((".mp4", ".mov")) else "IMAGE",
                        "STORY", f"https://www.instagram.com/stories/{username}/{media_id}/"),
            "CAROUSEL": ("CAROUSEL_ALBUM", "FEED", f"https://www.instagram.com/p/{shortcode}/"),
        }[kind]
        now = self.world.clock.now()
        data = {"id": media_id, "caption": container.data["caption"], "media_type": media_type,
                "media_product_type": product, "permalink": permalink, "shortcode": shortcode,
                "timestamp": iso(now, meta=True), "username": username, "owner": {"id": user.data["id"]},
                "children": {"data": [{"id": c} for c in container.data["children"]]} if kind == "CAROUSEL" else None,
                "media_url": container.data["url"], "_seq": self.world.ids.next("ig_media_seq")}
        self.graph.add(media_id, "ig_media", data, user.account, container=container.data["id"])
        self.world.recorder.publish("instagram", kind.lower(), media_id, user.account, container.data["caption"],
                                    permalink, container_id=container.data["id"],
                                    children=container.data["children"], media_url=container.data["url"],
                                    bytes=container.extra["bytes"] or None, sha256=container.extra["sha256"],
                                    options=container.data.get("options") or {})
        return data

    def list_media(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        self.require(token, publish=False)
        media = [n.data for n in self.graph.nodes.values() if n.kind == "ig_media" and n.account == node.account]
        media.sort(key=lambda m: m["_seq"], reverse=True)
        return cursor_page(request, [project(m, context["fields"]) for m in media], platform="instagram")

    def read_media(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        stats = self.world.engagement.get(node.data["id"], {})
        view = {**node.data, "like_count": stats.get("likes", 0), "comments_count": stats.get("comments", 0),
                "media_product_type": node.data.get("media_product_type") or "FEED"}
        return project(view, context["fields"])

    def media_insights(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        """`/{media}/insights?metric=…`; each product type takes its own metrics (an unknown one is error 100)."""
        product = node.data.get("media_product_type") or "FEED"
        allowed = MEDIA_METRICS.get(product, MEDIA_METRICS["FEED"])
        names = [m for m in str(request.params.get("metric") or "").split(",") if m]
        if not names:
            raise graph_error(100, message="(#100) The parameter metric is required", platform="instagram")
        for name in names:
            if name not in allowed:
                raise graph_error(100, message=f"(#100) metric[0] must be one of the following values: "
                                  f"{', '.join(sorted(allowed))}", platform="instagram")
        stats = self.world.engagement.get(node.data["id"], {})
        return {"data": [{"name": name, "period": "lifetime", "values": [{"value": stats.get(name, 0)}],
                          "title": name, "id": f"{node.data['id']}/insights/{name}/lifetime"} for name in names]}

    def media_children(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        return node.data.get("children") or {"data": []}

    # ----- rupload.facebook.com/ig-api-upload ------------------------------------------------------------------

    def rupload(self, request: Request, _token: Any, _node: Any, context: dict) -> Response:
        container = self.graph.nodes.get(context["segments"][-1])
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        token = self.world.tokens.get(value.strip() if scheme.lower() in ("oauth", "bearer") else None)
        if token is None or not token.usable(self.world.clock.now()):
            return Response.json(401, {"debug_info": {"retriable": False, "type": "AuthError",
                                                      "message": "Invalid OAuth access token."}})
        resent = (container is not None and container.kind == "ig_container" and not container.extra["published"]
                  and container.extra.get("sha256") is not None
                  and container.extra["sha256"] == hashlib.sha256(request.body).hexdigest())
        if resent:  # the same bytes again (the client lost the answer): the upload stands
            return Response.json(200, {"success": True, "message": "Upload successful."})
        if container is None or container.kind != "ig_container" or not container.extra["awaiting_upload"]:
            return Response.json(404, {"debug_info": {"retriable": False, "type": "NotFoundError",
                                                      "message": "Upload session not found."}})
        try:
            offset, size = int(request.header("offset") or ""), int(request.header("file_size") or "")
        except ValueError:
            return Response.json(400, {"debug_info": {"retriable": False, "type": "ParameterValidationError",
                                                      "message": "HeaderValuePredicate: Header Offset not "
                                                                 "convertable to unsigned long"}})
        file_url = request.header("file_url")
        if file_url:
            container.data["url"] = file_url
            container.extra.update(awaiting_upload=False, bytes=size)
        elif offset == 0 and len(request.body) == size:
            container.extra.update(awaiting_upload=False, bytes=size, sha256=hashlib.sha256(request.body).hexdigest())
        else:
            return Response.json(400, {"debug_info": {"retriable": False, "type": "ProcessingFailedError",
                                                      "message": "Request body does not match file_size"}})
        return Response.json(200, {"success": True, "message": "Upload successful."})


# Which container fields each kind takes (IG User Media's table); the JSON-encoded ones are parsed and checked.
OPTION_KINDS = {"alt_text": {"IMAGE"}, "user_tags": {"IMAGE", "REELS"}, "collaborators": {"IMAGE", "REELS", "CAROUSEL"},
                "location_id": {"IMAGE", "REELS", "CAROUSEL"}, "cover_url": {"REELS"}, "thumb_offset": {"REELS"},
                "share_to_feed": {"REELS"}}


def container_options(p: dict, kind: str, carousel_item: bool) -> dict:
    options: dict[str, Any] = {}
    for name, kinds in OPTION_KINDS.items():
        if p.get(name) is None:
            continue
        if kind not in kinds or carousel_item and name != "user_tags":
            raise _err(100, message=f"(#100) The parameter {name} is not supported for media type {kind}")
        value: Any = p[name]
        if name in ("user_tags", "collaborators"):
            try:
                value = json.loads(value) if isinstance(value, str) else value
            except ValueError:
                raise _err(100, message=f"(#100) Param {name} must be a JSON array") from None
            if not isinstance(value, list):
                raise _err(100, message=f"(#100) Param {name} must be a JSON array")
        if name == "collaborators" and (len(value) > 3 or not all(isinstance(v, str) for v in value)):
            raise _err(100, 2207053, "(#100) At most 3 collaborators can be invited")
        if name == "user_tags":
            for tag in value:
                positioned = kind == "IMAGE"
                if not isinstance(tag, dict) or not isinstance(tag.get("username"), str) or positioned and not all(
                        isinstance(tag.get(k), (int, float)) and 0 <= tag[k] <= 1 for k in ("x", "y")):
                    raise _err(100, 2207040, "(#100) Invalid user tag: username, and x and y between 0 and 1")
        if name == "thumb_offset" and not str(value).isdigit():
            raise _err(100, message="(#100) Param thumb_offset must be a non-negative integer")
        if name == "share_to_feed" and str(value) not in ("true", "false"):
            raise _err(100, message="(#100) Param share_to_feed must be a boolean")
        options[name] = value
    return options
