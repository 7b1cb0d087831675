"""LinkedIn versioned REST API (docs/platforms/linkedin.md): version and Rest.li headers, Posts (201 +
`x-restli-id`, duplicate detection, daily limits), Images (initializeUpload → PUT → status),
organizationAcls, userinfo, and the OAuth token endpoint with refresh-token rotation."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any
from urllib.parse import quote, unquote

from . import defaults as D
from .core import Reply, Token
from .wire import Request, Response

POSTING_ROLES = {"ADMINISTRATOR", "CONTENT_ADMINISTRATOR", "DIRECT_SPONSORED_CONTENT_POSTER"}
URN = re.compile(r"^urn:li:([A-Za-z]+):(.+)$")
ERRORS = {  # code → (status, serviceErrorCode, message)
    "VERSION_MISSING": (400, None, "A version must be present. Please specify a version by adding the "
                        "LinkedIn-Version header."),
    "INVALID_ACCESS_TOKEN": (401, 65600, "Invalid access token"),
    "REVOKED_ACCESS_TOKEN": (401, 65601, "The token used in the request has been revoked by the user"),
    "EXPIRED_ACCESS_TOKEN": (401, 65602, "The token used in the request has expired"),
    "ACCESS_DENIED": (403, 100, "Not enough permissions to access this resource"),
    "RESOURCE_NOT_FOUND": (404, None, "Not Found"),
    "CONFLICT": (409, None, "Conflict"),
    "DUPLICATE_POST": (422, None, "Content is a duplicate"),
    "NONEXISTENT_VERSION": (426, None, "Requested version is not active"),
    "TOO_MANY_REQUESTS": (429, None, "Resource level throttle limit for calls to this resource is reached."),
    "MISSING_FIELD": (400, None, "Missing field"),
    "INVALID_VALUE_FOR_FIELD": (400, None, "Invalid value for field"),
    "FIELD_LENGTH_TOO_LONG": (400, None, "Field length too long"),
    "INVALID_URN_TYPE": (400, None, "Invalid URN type"),
}
CODE_FOR_SERVICE = {v[1]: k for k, v in ERRORS.items() if v[1] and v[1] >= 65600}


def linkedin_error(status: int | None = None, code: str | None = None, message: str | None = None,
                   service_code: int | None = None, headers: list | None = None) -> Reply:
    """`{"status", "serviceErrorCode"?, "code"?, "message"}` with the HTTP status repeated in the body."""
    if code is None and service_code in CODE_FOR_SERVICE:
        code = CODE_FOR_SERVICE[service_code]
    default_status, default_service, default_message = ERRORS.get(code or "", (status or 400, None, "Error"))
    status = status or default_status
    body: dict[str, Any] = {"status": status}
    if service_code or default_service:
        body["serviceErrorCode"] = service_code or default_service
    if code:
        body["code"] = code
    body["message"] = message or default_message
    return Reply(Response.json(status, body, headers))


def oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(Response.json(status, {"error": error, "error_description": description}))


class LinkedIn:
    def __init__(self, world) -> None:
        self.world = world
        accounts = D.linkedin_accounts()
        self.members = accounts["members"]
        self.organizations = accounts["organizations"]
        self.acls = accounts["acls"]
        self.posts: dict[str, dict] = {}
        self.images: dict[str, dict] = {}
        self.uploads: dict[str, str] = {}
        self.documents: dict[str, dict] = {}
        self.videos: dict[str, dict] = {}
        self.video_parts: dict[str, tuple[str, int]] = {}  # upload key → (video URN, part index)
        self.daily: dict[str, int] = {}

    @staticmethod
    def owns(path: str) -> bool:
        return path.startswith(("/rest/", "/oauth/v2/", "/dms-uploads/")) or path in ("/v2/userinfo", "/v2/me")

    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/oauth/v2/accessToken" and method == "POST":
            return self.token(request)
        if path == "/oauth/v2/introspectToken" and method == "POST":
            return self.introspect(request)
        if path.startswith("/dms-uploads/video-") and method == "PUT":
            return self.upload_video_part(request)
        if path.startswith("/dms-uploads/captions-") and method == "PUT":
            return self.upload_captions(request)
        if path.startswith("/dms-uploads/") and method in ("PUT", "POST"):
            return self.upload(request)
        if path == "/v2/userinfo":
            token = self.authenticate(request)
            self.require(token, {"openid", "profile"}, "userinfo.GET.NO_VERSION", any_of=False)
            return Response.json(200, self.userinfo(token))
        if path == "/v2/me":
            self.authenticate(request)
            raise linkedin_error(403, "ACCESS_DENIED", "Not enough permissions to access: me.GET.NO_VERSION")
        version = self.check_headers(request)
        token = self.authenticate(request)
        segments = request.raw_path.split("/")[2:]  # ["posts", "<enc urn>"]
        resource = segments[0] if segments else ""
        key = segments[1] if len(segments) > 1 else None
        if key is not None and ":" in key:
            raise linkedin_error(400, message="Syntax exception in path variables")
        key = unquote(key) if key else None
        route = {("posts", "POST", False): self.create_post, ("posts", "GET", True): self.get_post,
                 ("posts", "DELETE", True): self.delete_post, ("posts", "GET", False): self.find_posts,
                 ("images", "POST", False): self.initialize_upload, ("images", "GET", True): self.get_image,
                 ("documents", "POST", False): self.initialize_document, ("documents", "GET", True): self.get_document,
                 ("videos", "POST", False): self.video_action, ("videos", "GET", True): self.get_video,
                 ("organizationAcls", "GET", False): self.organization_acls,
                 ("socialActions", "GET", True): self.social_actions,
                 ("organizationalEntityShareStatistics", "GET", False): self.share_statistics}
        handler = route.get((resource, request.method, key is not None))
        if handler is None:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", "No virtual resource found")
        return handler(request, token, version, key)

    # ----- headers and auth ------------------------------------------------------------------------------------

    def active_versions(self) -> set[str]:
        configured = self.world.settings["linkedin"]["active_versions"]
        if configured:
            return set(configured)
        today = dt.datetime.fromtimestamp(self.world.clock.now(), dt.timezone.utc)
        months = set()
        year, month = today.year, today.month
        for _ in range(12):  # each version is supported for (at least) a year
            months.add(f"{year:04d}{month:02d}")
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return months

    def check_headers(self, request: Request) -> str:
        version = request.header("linkedin-version")
        if not version:
            raise linkedin_error(400, "VERSION_MISSING", headers=[("X-RestLi-Gateway-Error", "true")])
        if version.split(".")[0] not in self.active_versions():
            raise linkedin_error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active",
                                 headers=[("X-RestLi-Gateway-Error", "true")])
        if request.header("x-restli-protocol-version") != "2.0.0":
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", "This fake requires X-Restli-Protocol-Version: 2.0.0 "
                                 "(Rest.li 2.0 URN encoding)")
        return version.split(".")[0]

    def authenticate(self, request: Request) -> Token:
        auth = request.header("authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise linkedin_error(401, message="Empty oauth2_access_token", service_code=401)
        token = self.world.tokens.get(auth[7:].strip())
        now = self.world.clock.now()
        if token is None or token.platform != "linkedin" or token.kind != "ACCESS":
            raise linkedin_error(code="INVALID_ACCESS_TOKEN")
        if token.revoked:
            raise linkedin_error(code="REVOKED_ACCESS_TOKEN")
        if token.expired(now):
            raise linkedin_error(code="EXPIRED_ACCESS_TOKEN")
        return token

    def require(self, token: Token, scopes: set[str], resource: str, any_of: bool = True) -> None:
        have = scopes & set(token.scopes)
        granted = bool(have) if any_of else have == scopes
        if not granted:
            raise linkedin_error(403, "ACCESS_DENIED", f"Not enough permissions to access: {resource}")

    def can_act_as(self, token: Token, author: str) -> bool:
        """A member acts as themself, or as an organization where they hold an approved posting role."""
        member = f"urn:li:person:{token.subject}"
        if author == member:
            return "w_member_social" in token.scopes
        return "w_organization_social" in token.scopes and any(
            a["roleAssignee"] == member and a["organization"] == author and a["state"] == "APPROVED"
            and a["role"] in POSTING_ROLES for a in self.acls)

    # ----- posts -----------------------------------------------------------------------------------------------

    def create_post(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        body = request.json if isinstance(request.json, dict) else None
        if body is None:
            raise linkedin_error(400, message="Request body must be a JSON object")
        for field in ("author", "visibility", "distribution", "lifecycleState"):
            if field not in body:
                raise linkedin_error(400, "MISSING_FIELD", f"/{field} :: field is required but not found and has no "
                                     "default value")
        author = body["author"]
        match = URN.match(str(author))
        if not match or match.group(1) not in ("person", "organization"):
            raise linkedin_error(400, "INVALID_URN_TYPE", f"/author :: {author} is not a person or organization URN")
        if not self.can_act_as(token, author):
            raise linkedin_error(403, "ACCESS_DENIED", f"Not enough permissions to access: "
                                 f"partnerApiPostsExternal.CREATE.{version}01")
        if body["visibility"] not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"):
            raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", f"/visibility :: {body['visibility']}")
        commentary = body.get("commentary", "")
        if not isinstance(commentary, str):
            raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", "/commentary :: must be a string")
        if len(commentary) > 3000:
            raise linkedin_error(400, "FIELD_LENGTH_TOO_LONG", "/commentary :: length exceeds 3000")
        images = self.content_images(body.get("content"), author)
        now = self.world.clock.now()
        window = self.world.settings["linkedin"]["duplicate_window_seconds"]
        if commentary and window:
            for post in self.posts.values():
                if post["author"] == author and post["commentary"] == commentary and now - post["_time"] < window:
                    raise linkedin_error(422, "DUPLICATE_POST", f"Content is a duplicate of {post['id']}")
        self.count_daily(token)
        urn = f"urn:li:share:{7000000000000000000 + self.world.ids.next('li_share')}"
        post = {**body, "id": urn, "commentary": commentary, "createdAt": int(now * 1000),
                "publishedAt": int(now * 1000), "lastModifiedAt": int(now * 1000), "_time": now}
        self.posts[urn] = post
        self.world.recorder.publish("linkedin", "post", urn, author, commentary,
                                    f"https://www.linkedin.com/feed/update/{urn}/", visibility=body["visibility"],
                                    images=[{k: i[k] for k in ("id", "sha256", "bytes")} for i in images],
                                    article=(body.get("content") or {}).get("article"),
                                    content=body.get("content"), asset=self.asset_record(body.get("content")))
        return Response.empty(201, [("x-restli-id", urn), ("x-linkedin-id", urn),
                                    ("Location", f"/rest/posts/{quote(urn, safe='')}")])

    def content_images(self, content: Any, author: str) -> list[dict]:
        if not content:
            return []
        if not isinstance(content, dict):
            raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", "/content :: must be an object")
        refs = []
        if isinstance(content.get("media"), dict):
            refs.append(content["media"].get("id"))
        if isinstance(content.get("multiImage"), dict):
            refs += [i.get("id") for i in content["multiImage"].get("images") or [] if isinstance(i, dict)]
            if not 2 <= len(refs) <= 20:
                raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", "/content/multiImage :: needs 2 to 20 images")
        article = content.get("article")
        if isinstance(article, dict):
            if not isinstance(article.get("source"), str) or not isinstance(article.get("title"), str):
                raise linkedin_error(400, "MISSING_FIELD", "/content/article/title :: field is required")
            if "thumbnail" in article:
                refs.append(article["thumbnail"])
        media = content.get("media") if isinstance(content.get("media"), dict) else {}
        ref = str(media.get("id") or "")
        if ref.startswith(("urn:li:document:", "urn:li:video:")):
            refs.remove(ref)
            asset = (self.documents if ref.startswith("urn:li:document:") else self.videos).get(ref)
            if asset is None or asset["owner"] != author or asset["status"] != "AVAILABLE":
                raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", f"/content/media/id :: {ref} is not an AVAILABLE "
                                     "asset owned by the author")
            if ref.startswith("urn:li:document:") and not media.get("title"):
                raise linkedin_error(400, "MISSING_FIELD", "/content/media/title :: a document needs a title")
            asset["used"] = True
        images = []
        for ref in refs:
            image = self.images.get(str(ref))
            if image is None or image["owner"] != author:
                raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", f"/content/media/id :: {ref} is not an image "
                                     "owned by the author")
            if self.image_status(image, poll=False) != "AVAILABLE":
                raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", f"/content/media/id :: {ref} is not AVAILABLE")
            images.append(image)
        return images

    def count_daily(self, token: Token) -> None:
        settings = self.world.settings["linkedin"]
        day = dt.datetime.fromtimestamp(self.world.clock.now(), dt.timezone.utc).strftime("%Y-%m-%d")
        member_key, app_key = f"{day}:member:{token.subject}", f"{day}:app:{token.client_id}"
        if (self.daily.get(member_key, 0) >= settings["member_daily_limit"]
                or self.daily.get(app_key, 0) >= settings["app_daily_limit"]):
            raise linkedin_error(429, "TOO_MANY_REQUESTS")
        self.daily[member_key] = self.daily.get(member_key, 0) + 1
        self.daily[app_key] = self.daily.get(app_key, 0) + 1

    def public_post(self, post: dict) -> dict:
        return {k: v for k, v in post.items() if not k.startswith("_")}

    def get_post(self, request: Request, token: Token, version: str, key: str) -> Response:
        post = self.posts.get(key)
        if post is None or post.get("_deleted"):
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", f"Post {key} not found")
        return Response.json(200, self.public_post(post))

    def delete_post(self, request: Request, token: Token, version: str, key: str) -> Response:
        post = self.posts.get(key)
        if post and not self.can_act_as(token, post["author"]):
            raise linkedin_error(403, "ACCESS_DENIED", f"Not enough permissions to access: "
                                 f"partnerApiPostsExternal.DELETE.{version}01")
        if post:
            # LinkedIn's duplicate check can still name a deleted post: keep it for that, invisible otherwise.
            post["_deleted"] = True
        return Response.empty(204)

    def social_actions(self, request: Request, token: Token, version: str, key: str) -> Response:
        """`GET /rest/socialActions/{encoded post urn}`: like and comment summaries."""
        if key not in self.posts:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", f"Post {key} not found")
        stats = self.world.engagement.get(key, {})
        return Response.json(200, {
            "target": key, "$URN": f"urn:li:socialActions:{key}",
            "likesSummary": {"totalLikes": stats.get("likeCount", 0), "likedByCurrentUser": False},
            "commentsSummary": {"totalFirstLevelComments": stats.get("commentCount", 0),
                                "aggregatedTotalComments": stats.get("commentCount", 0)}})

    def share_statistics(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        """`?q=organizationalEntity&organizationalEntity={org}&shares=List({urn})` (or `ugcPosts=List(…)`), with
        URNs percent-encoded inside `List(…)` as Rest.li 2.0 wants; needs an administrator of the organization."""
        if request.query.get("q") != "organizationalEntity":
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", "Only the organizationalEntity finder is supported")
        raw = dict(part.split("=", 1) for part in request.raw_query.split("&") if "=" in part)
        org_raw = raw.get("organizationalEntity", "")
        if ":" in org_raw:
            raise linkedin_error(400, message="Syntax exception in query parameter organizationalEntity")
        org = unquote(org_raw)
        member = f"urn:li:person:{token.subject}"
        if "r_organization_social" not in token.scopes or not any(
                a["roleAssignee"] == member and a["organization"] == org and a["state"] == "APPROVED"
                and a["role"] == "ADMINISTRATOR" for a in self.acls):
            raise linkedin_error(403, "ACCESS_DENIED", "Not enough permissions to access: "
                                 f"organizationalEntityShareStatistics.FINDER-organizationalEntity.{version}01")
        elements = []
        for name in ("shares", "ugcPosts"):
            listed = raw.get(name)
            if listed is None:
                continue
            if not (listed.startswith("List(") and listed.endswith(")")) or ":" in listed:
                raise linkedin_error(400, message=f"Syntax exception in query parameter {name}")
            for urn in (unquote(u) for u in listed[5:-1].split(",") if u):
                post = self.posts.get(urn)
                if post is None or post["author"] != org:
                    continue
                stats = self.world.engagement.get(urn, {})
                totals = {k: stats.get(k, 0) for k in ("impressionCount", "uniqueImpressionsCount", "clickCount",
                                                        "likeCount", "commentCount", "shareCount")}
                totals["engagement"] = 0.0
                elements.append({"organizationalEntity": org, "share" if name == "shares" else "ugcPost": urn,
                                 "totalShareStatistics": totals})
        return Response.json(200, {"paging": {"count": 10, "start": 0, "links": []}, "elements": elements})

    def find_posts(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        if request.query.get("q") != "author":
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", "Only the author finder (q=author) is supported")
        raw_author = re.search(r"(?:^|&)author=([^&]*)", request.raw_query)
        if raw_author and ":" in raw_author.group(1):
            raise linkedin_error(400, message="Syntax exception in query parameter author")
        self.require(token, {"r_member_social", "r_organization_social"}, "partnerApiPostsExternal.FINDER-author")
        author = request.query.get("author")
        posts = sorted((p for p in self.posts.values() if p["author"] == author and not p.get("_deleted")),
                       key=lambda p: -p["_time"])
        start, count = int(request.query.get("start", 0)), int(request.query.get("count", 10))
        page = [self.public_post(p) for p in posts[start:start + count]]
        return Response.json(200, {"paging": {"start": start, "count": count, "links": [], "total": len(posts)},
                                   "elements": page})

    # ----- images ----------------------------------------------------------------------------------------------

    def initialize_upload(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        if request.query.get("action") != "initializeUpload":
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", "Expected action=initializeUpload")
        body = request.json if isinstance(request.json, dict) else {}
        owner = (body.get("initializeUploadRequest") or {}).get("owner")
        if not owner:
            raise linkedin_error(400, "MISSING_FIELD", "/initializeUploadRequest/owner :: field is required")
        if not self.can_act_as(token, owner):
            raise linkedin_error(403, "ACCESS_DENIED", f"Not enough permissions to access: images.ACTION-"
                                 f"initializeUpload.{version}01")
        serial = self.world.ids.next("li_image")
        digest = hashlib.sha256(f"{self.world.seed}:image:{serial}".encode()).hexdigest()
        urn = f"urn:li:image:C4E10AQFake{digest[:16]}"
        upload_key = f"image-{serial}-{digest[16:32]}"
        now = self.world.clock.now()
        expires = now + self.world.settings["linkedin"]["upload_url_ttl_seconds"]
        self.images[urn] = {"id": urn, "owner": owner, "status": "WAITING_UPLOAD", "expires": expires,
                            "bytes": 0, "sha256": None, "polls": 0}
        self.uploads[upload_key] = urn
        upload_url = f"{request.base_url}/dms-uploads/{upload_key}/uploadedImage/0?ca=vector_feedshare&cn=uploads"
        return Response.json(200, {"value": {"uploadUrlExpiresAt": int(expires * 1000), "uploadUrl": upload_url,
                                             "image": urn}})

    def upload(self, request: Request) -> Response:
        parts = request.path.split("/")
        urn = self.uploads.get(parts[2] if len(parts) > 2 else "")
        image = self.images.get(urn or "") or self.documents.get(urn or "")
        if image is None:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", "Upload URL not found")
        if self.world.clock.now() > image["expires"]:
            raise linkedin_error(400, message="The upload URL has expired")
        if not request.body:
            raise linkedin_error(400, message="Empty upload body")
        image.update(bytes=len(request.body), sha256=hashlib.sha256(request.body).hexdigest(),
                     content_type=request.header("content-type"),
                     status="PROCESSING" if self.world.settings["linkedin"]["image_processing_polls"] else "AVAILABLE")
        return Response.empty(201)

    # ----- documents and videos ---------------------------------------------------------------------------------

    def asset_record(self, content: Any) -> dict | None:
        ref = str(((content or {}).get("media") or {}).get("id") or "") if isinstance(content, dict) else ""
        asset = self.documents.get(ref) or self.videos.get(ref)
        if asset is None:
            return None
        return {k: asset[k] for k in ("id", "sha256", "bytes", "captions_sha256") if k in asset}

    def owner_of(self, request: Request, token: Token, version: str, action: str) -> tuple[dict, str]:
        body = request.json if isinstance(request.json, dict) else {}
        init = body.get("initializeUploadRequest") if isinstance(body.get("initializeUploadRequest"), dict) else {}
        owner = init.get("owner")
        if not owner:
            raise linkedin_error(400, "MISSING_FIELD", "/initializeUploadRequest/owner :: field is required")
        if not self.can_act_as(token, owner):
            raise linkedin_error(403, "ACCESS_DENIED", f"Not enough permissions to access: {action}.{version}01")
        return init, owner

    def initialize_document(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        if request.query.get("action") != "initializeUpload":
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", "Expected action=initializeUpload")
        _, owner = self.owner_of(request, token, version, "documents.ACTION-initializeUpload")
        serial = self.world.ids.next("li_document")
        urn = f"urn:li:document:D4D10AQFake{serial:016d}"
        key = f"document-{serial}"
        expires = self.world.clock.now() + self.world.settings["linkedin"]["upload_url_ttl_seconds"]
        # Uploaded through the same path as images; `upload` finds either by key.
        self.documents[urn] = {"id": urn, "owner": owner, "status": "WAITING_UPLOAD", "expires": expires, "bytes": 0,
                               "sha256": None, "polls": 0}
        self.uploads[key] = urn
        return Response.json(200, {"value": {"uploadUrlExpiresAt": int(expires * 1000), "document": urn,
                                             "uploadUrl": f"{request.base_url}/dms-uploads/{key}/uploadedDocument/0"}})

    def get_document(self, request: Request, token: Token, version: str, key: str) -> Response:
        return self.asset_status(self.documents, "Document", key)

    def asset_status(self, assets: dict, name: str, key: str) -> Response:
        """`GET /rest/documents/{urn}`, `/rest/videos/{urn}`: the asset's processing status."""
        asset = assets.get(key)
        if asset is None:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", f"{name} {key} not found")
        return Response.json(200, {"id": asset["id"], "owner": asset["owner"],
                                   "status": self.image_status(asset, poll=True)})

    def video_action(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        action = request.query.get("action")
        if action == "initializeUpload":
            return self.initialize_video(request, token, version)
        if action == "finalizeUpload":
            return self.finalize_video(request, token, version)
        raise linkedin_error(400, "ILLEGAL_ARGUMENT", "Expected action=initializeUpload or finalizeUpload")

    def initialize_video(self, request: Request, token: Token, version: str) -> Response:
        init, owner = self.owner_of(request, token, version, "videos.ACTION-initializeUpload")
        size = init.get("fileSizeBytes")
        if not isinstance(size, int) or size <= 0:
            raise linkedin_error(400, "MISSING_FIELD", "/initializeUploadRequest/fileSizeBytes :: field is required")
        for flag in ("uploadCaptions", "uploadThumbnail"):
            if not isinstance(init.get(flag, False), bool):
                raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", f"/initializeUploadRequest/{flag} :: must be a "
                                     "boolean")
        serial = self.world.ids.next("li_video")
        urn = f"urn:li:video:D5F10AQFake{serial:016d}"
        part_size = self.world.settings["linkedin"].get("video_part_bytes", 4 * 1024 * 1024)
        instructions = []
        for index, first in enumerate(range(0, size, part_size)):
            key = f"video-{serial}-{index}"
            self.video_parts[key] = (urn, index)
            instructions.append({"uploadUrl": f"{request.base_url}/dms-uploads/{key}/uploadedVideo?sig=fake",
                                 "firstByte": first, "lastByte": min(first + part_size, size) - 1})
        token_value = f"fake-upload-token-{serial}"
        self.videos[urn] = {"id": urn, "owner": owner, "status": "WAITING_UPLOAD", "size": size, "bytes": 0,
                            "sha256": None, "polls": 0, "parts": {}, "instructions": instructions,
                            "upload_token": token_value, "expires": self.world.clock.now() + 3600}
        value = {"uploadUrlsExpireAt": int((self.world.clock.now() + 3600) * 1000), "video": urn,
                 "uploadInstructions": instructions, "uploadToken": token_value}
        if init.get("uploadCaptions"):
            # Captions (SubRip) go to their own URL, answered only when asked for.
            self.video_parts[f"captions-{serial}"] = (urn, -1)
            value["captionsUploadUrl"] = f"{request.base_url}/dms-uploads/captions-{serial}/uploadedCaptions?sig=fake"
        return Response.json(200, {"value": value})

    def upload_captions(self, request: Request) -> Response:
        key = request.path.split("/")[2]
        if key not in self.video_parts:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", "Upload URL not found")
        video = self.videos[self.video_parts[key][0]]
        if not request.body:
            raise linkedin_error(400, message="The captions file is empty")
        video["captions_sha256"] = hashlib.sha256(request.body).hexdigest()
        return Response.empty(201)

    def upload_video_part(self, request: Request) -> Response:
        key = request.path.split("/")[2]
        if key not in self.video_parts:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", "Upload URL not found")
        urn, index = self.video_parts[key]
        video = self.videos[urn]
        expected = video["instructions"][index]
        if len(request.body) != expected["lastByte"] - expected["firstByte"] + 1:
            raise linkedin_error(400, message="The part's length does not match its byte range")
        etag = '"' + hashlib.sha256(request.body).hexdigest()[:32] + '"'  # opaque to the client
        video["parts"][index] = (etag, bytes(request.body))
        return Response.empty(200, [("ETag", etag)])

    def finalize_video(self, request: Request, token: Token, version: str) -> Response:
        body = request.json if isinstance(request.json, dict) else {}
        final = body.get("finalizeUploadRequest") if isinstance(body.get("finalizeUploadRequest"), dict) else {}
        video = self.videos.get(str(final.get("video")))
        if video is None or not self.can_act_as(token, video["owner"]):
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", "Video not found")
        if final.get("uploadToken", "") != video["upload_token"]:
            raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", "/finalizeUploadRequest/uploadToken :: mismatch")
        parts = video["parts"]
        expected = [parts[i][0] if i in parts else None for i in range(len(video["instructions"]))]
        if final.get("uploadedPartIds") != expected:
            raise linkedin_error(400, "INVALID_VALUE_FOR_FIELD", "/finalizeUploadRequest/uploadedPartIds :: the parts "
                                 "uploaded do not match, in order")
        data = b"".join(parts[i][1] for i in range(len(expected)))
        video.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), parts={},
                     status="PROCESSING" if self.world.settings["linkedin"]["image_processing_polls"] else "AVAILABLE")
        return Response.empty(200)

    def get_video(self, request: Request, token: Token, version: str, key: str) -> Response:
        return self.asset_status(self.videos, "Video", key)

    def image_status(self, image: dict, poll: bool) -> str:
        if image["status"] == "PROCESSING":
            if poll:
                image["polls"] += 1
            if image["polls"] >= self.world.settings["linkedin"]["image_processing_polls"]:
                image["status"] = "AVAILABLE"
        return image["status"]

    def get_image(self, request: Request, token: Token, version: str, key: str) -> Response:
        image = self.images.get(key)
        if image is None:
            raise linkedin_error(404, "RESOURCE_NOT_FOUND", f"Image {key} not found")
        status = self.image_status(image, poll=True)
        body = {"id": image["id"], "owner": image["owner"], "status": status,
                "downloadUrlExpiresAt": int((self.world.clock.now() + 3600) * 1000)}
        if status == "AVAILABLE":
            body["downloadUrl"] = f"{request.base_url}/dms-uploads/download/{quote(image['id'], safe='')}"
        return Response.json(200, body)

    # ----- organizations and members ---------------------------------------------------------------------------

    def organization_acls(self, request: Request, token: Token, version: str, _key: Any) -> Response:
        if request.query.get("q") != "roleAssignee":
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", "Only the roleAssignee finder is supported")
        self.require(token, {"rw_organization_admin", "r_organization_admin"},
                     f"organizationAcls.FINDER-roleAssignee.{version}01")
        member = f"urn:li:person:{token.subject}"
        role, state = request.query.get("role"), request.query.get("state")
        rows = [a for a in self.acls if a["roleAssignee"] == member and (not role or a["role"] == role)
                and (not state or a["state"] == state)]
        start, count = int(request.query.get("start", 0)), int(request.query.get("count", 10))
        decorate = "organization~" in request.query.get("projection", "")
        elements = []
        for row in rows[start:start + count]:
            element = {**row, "lastModified": {"actor": member, "time": 1577836800000},
                       "created": {"actor": member, "time": 1577836800000}}
            if decorate:
                org = self.organizations.get(row["organization"].rsplit(":", 1)[-1])
                if org:
                    element["organization~"] = dict(org)
            elements.append(element)
        return Response.json(200, {"paging": {"start": start, "count": count, "links": [], "total": len(rows)},
                                   "elements": elements})

    def userinfo(self, token: Token) -> dict:
        member = self.members.get(token.subject, {"sub": token.subject, "name": token.subject})
        return {**member, "picture": "https://example.test/fake-member.jpg", "locale": {"country": "US",
                                                                                         "language": "en"},
                "email_verified": True}

    # ----- OAuth -----------------------------------------------------------------------------------------------

    def client(self, form: dict) -> None:
        if form.get("client_id") != D.LI_CLIENT_ID or form.get("client_secret") != D.LI_CLIENT_SECRET:
            raise oauth_error(401, "invalid_client", "Client authentication failed")

    def token(self, request: Request) -> Response:
        form = request.form if request.body_kind == "form" else {}
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            raise oauth_error(400, "invalid_request", "A required parameter \"grant_type\" is missing or invalid")
        self.client(form)
        tokens, now, settings = self.world.tokens, self.world.clock.now(), self.world.settings["linkedin"]
        if grant == "authorization_code":
            if not (form.get("code") or "").startswith("fake-li-code"):
                raise oauth_error(400, "invalid_request", "Unable to retrieve access token: appid/redirect uri/code "
                                  "verifier does not match authorization code. Or authorization code expired.")
            refresh = tokens.mint("fake-li-refresh-token", platform="linkedin", kind="REFRESH", subject=D.LI_MEMBER_ID,
                                  scopes=list(D.LI_SCOPES), client_id=D.LI_CLIENT_ID,
                                  expires_at=now + settings["refresh_token_ttl"], authorized_at=now)
            return self.issue(refresh)
        refresh = tokens.get(form.get("refresh_token"))
        if refresh is None or refresh.platform != "linkedin" or refresh.kind != "REFRESH" or not refresh.usable(now) \
                or refresh.client_id not in ("", D.LI_CLIENT_ID):
            error = settings["invalid_refresh_error"]
            raise oauth_error(400, error, "The provided authorization grant or refresh token is invalid, expired or "
                              "revoked")
        if settings["rotate_refresh_tokens"]:
            refresh.revoked = True
            refresh = tokens.mint("fake-li-refresh-token", platform="linkedin", kind="REFRESH", subject=refresh.subject,
                                  scopes=list(refresh.scopes), client_id=refresh.client_id,
                                  expires_at=refresh.expires_at, authorized_at=refresh.authorized_at)
        return self.issue(refresh)

    def issue(self, refresh: Token) -> Response:
        now, ttl = self.world.clock.now(), self.world.settings["linkedin"]["access_token_ttl"]
        access = self.world.tokens.mint("fake-li-access-token", platform="linkedin", kind="ACCESS",
                                        subject=refresh.subject, scopes=list(refresh.scopes),
                                        client_id=refresh.client_id, expires_at=now + ttl)
        remaining = int(refresh.expires_at - now) if refresh.expires_at else self.world.settings["linkedin"][
            "refresh_token_ttl"]
        return Response.json(200, {"access_token": access.value, "expires_in": ttl, "refresh_token": refresh.value,
                                   "refresh_token_expires_in": remaining, "scope": ",".join(refresh.scopes)})

    def introspect(self, request: Request) -> Response:
        self.client(request.form)
        token = self.world.tokens.get(request.form.get("token"))
        now = self.world.clock.now()
        if token is None or token.platform != "linkedin":
            return Response.json(200, {"active": False})
        status = "revoked" if token.revoked else "expired" if token.expired(now) else "active"
        return Response.json(200, {"active": status == "active", "status": status, "scope": ",".join(token.scopes),
                                   "client_id": token.client_id, "created_at": int(token.issued_at),
                                   "expires_at": int(token.expires_at) if token.expires_at else None,
                                   "authorized_at": int(token.authorized_at or token.issued_at), "auth_type": "3L"})
