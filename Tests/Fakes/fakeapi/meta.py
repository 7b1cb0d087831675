"""Graph API mechanics shared by Facebook Pages, Instagram and WhatsApp (docs/platforms/meta.md):
versioned paths, tokens from query/form/Bearer, the node registry, `fields=` projection,
error bodies, usage headers and the token endpoints (`debug_token`, `/me…`, exchanges)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from . import defaults as D
from .core import DAY, Reply, Token
from .wire import Request, Response

VERSION = re.compile(r"^/(v\d+\.\d+)(/.*)?$")

MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    3: "(#3) Application does not have the capability to make this API call.",
    4: "(#4) Application request limit reached",
    9: "(#9) Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    102: "Session key invalid or no longer valid",
    104: "An access token is required to request this resource.",
    190: "Invalid OAuth access token - Cannot parse access token",
    200: "(#200) Permissions error",
    341: "(#341) Application limit reached",
    368: "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    506: "(#506) Duplicate status message",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    9004: "Only photo or video can be accepted as media type.",
    9007: "Media ID is not available",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
    80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
    80007: "(#80007) Rate limit hit for the WhatsApp Business Account.",
    80008: "(#80008) There have been too many calls to this WhatsApp Business account. Wait a bit and try again.",
    130429: "(#130429) Rate limit hit",
    131047: "(#131047) Re-engagement message",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    131008: "(#131008) Required parameter is missing",
    131009: "(#131009) Parameter value is not valid",
    132000: "(#132000) Number of parameters does not match the expected number of params",
    132001: "(#132001) Template name does not exist in the translation",
}
TRANSIENT = {1, 2, 4, 17, 32, 341, 613, -1, -2, 80001, 80002, 80007, 80008, 130429, 131056}

# WhatsApp documents its own HTTP statuses (docs/platforms/meta.md); everything else is 400 or 500.
WA_STATUS = {0: 401, 190: 401, 3: 500, 10: 403, 4: 429, 80007: 429, 130429: 429, 131048: 429, 131056: 429,
             133016: 429, 368: 403, 131031: 403, 2: 503, 131000: 500, 131005: 403, 131016: 503}

BUC_ERROR = {"pages": 80001, "instagram": 80002, "messenger": 80006, "whatsapp_business_management": 80008,
             "whatsapp_business_messaging": 80007}

PLATFORM_OF_KIND = {"user": "facebook", "page": "facebook", "fb_post": "facebook", "fb_photo": "facebook",
                    "fb_video": "facebook", "ig_user": "instagram", "ig_container": "instagram",
                    "ig_media": "instagram", "wa_phone": "whatsapp", "waba": "whatsapp", "system_user": "whatsapp"}



def cursor_page(request: Request, items: list, platform: str = "facebook") -> dict:
    """One page of an edge listed newest first, paged as Graph does: `limit`, `after` from `paging.cursors`, and
    `paging.next` while more remain."""
    try:
        limit = int(request.params.get("limit") or 25)
        start = int(base64.b64decode(request.params["after"]).decode()) if request.params.get("after") else 0
    except ValueError:
        raise graph_error(100, message="(#100) Invalid limit or cursor", platform=platform) from None
    chunk = items[start:start + limit]
    body: dict[str, Any] = {"data": chunk}
    if chunk:
        after = base64.b64encode(str(start + len(chunk)).encode()).decode()
        body["paging"] = {"cursors": {"before": base64.b64encode(str(start).encode()).decode(), "after": after}}
        if start + len(chunk) < len(items):
            query = "&".join(f"{k}={v}" for k, v in {**request.query, "after": after}.items())
            body["paging"]["next"] = f"{request.base_url}{request.raw_path}?{query}"
    return body

def graph_error(code: int, subcode: int | None = None, message: str | None = None, *, platform: str = "facebook",
                status: int | None = None, user_title: str | None = None, user_msg: str | None = None,
                details: str | None = None, trace: str = "AFakeTrace0", headers: list | None = None,
                transient: bool | None = None, error_type: str = "OAuthException") -> Reply:
    """A Graph error body; HTTP 400 (500 for codes 1/2), or WhatsApp's documented statuses (docs/platforms/meta.md)."""
    body: dict[str, Any] = {"message": message or MESSAGES.get(code, f"(#{code}) Error"), "type": error_type,
                            "code": code}
    if subcode is not None:
        body["error_subcode"] = subcode
    if user_title:
        body["error_user_title"] = user_title
    if user_msg:
        body["error_user_msg"] = user_msg
    if platform == "whatsapp":
        body["error_data"] = {"messaging_product": "whatsapp", "details": details or body["message"]}
    body["is_transient"] = code in TRANSIENT if transient is None else transient
    body["fbtrace_id"] = trace
    if status is None:
        if platform == "whatsapp":
            status = WA_STATUS.get(code, 403 if 200 <= code <= 299 else 400)
        else:
            status = 500 if code in (1, 2) else 400
    extra = list(headers or [])
    if code == 190 and platform != "whatsapp":
        extra.append(("WWW-Authenticate", f'OAuth "Facebook Platform" "invalid_token" "{body["message"]}"'))
    return Reply(Response.json(status, {"error": body}, extra))


def unsupported(request: Request, object_id: str, platform: str) -> Reply:
    verb = request.method.lower()
    return graph_error(100, 33, f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
                       "loaded due to missing permissions, or does not support this operation. Please read the Graph "
                       "API documentation at https://developers.facebook.com/docs/graph-api", platform=platform)


def parse_fields(text: str | None) -> dict[str, Any] | None:
    """`id,name,instagram_business_account{id,username}` → {"id": None, …, "instagram_business_account": {…}}."""
    if not text:
        return None
    result: dict[str, Any] = {}
    stack = [result]
    name = ""
    for char in text + ",":
        if char == "{":
            child: dict[str, Any] = {}
            stack[-1][name.strip()] = child
            stack.append(child)
            name = ""
        elif char in ",}":
            if name.strip():
                stack[-1][name.strip().split(".")[0]] = None
            name = ""
            if char == "}" and len(stack) > 1:
                stack.pop()
        else:
            name += char
    return result


def project(data: dict, spec: dict | None, default: tuple[str, ...] = ("id",)) -> dict:
    spec = spec or {key: None for key in default}
    out: dict[str, Any] = {}
    for key, sub in spec.items():
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if sub is not None and isinstance(value, dict):
            value = project(value, sub)
        elif sub is not None and isinstance(value, list):
            value = [project(v, sub) if isinstance(v, dict) else v for v in value]
        out[key] = value
    if "id" in data and "id" not in out:
        out["id"] = data["id"]
    return out


def parse_bool(value: Any, default: bool = True) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("false", "0", "no")


def fb_time(epoch: float) -> str:
    """Facebook's expiry text: `Wednesday, 25-Nov-26 12:00:00 PST`."""
    pacific = dt.timezone(dt.timedelta(hours=-8), "PST")
    return dt.datetime.fromtimestamp(epoch, pacific).strftime("%A, %d-%b-%y %H:%M:%S PST")


SUBCODE_MESSAGES = {
    458: "Error validating access token: The user has not authorized application 900000001.",
    459: "Error validating access token: You cannot access the app till you log in to www.facebook.com and follow "
         "the instructions given.",
    460: "Error validating access token: The session has been invalidated because the user changed their password "
         "or Facebook has changed the session for security reasons.",
    464: "Error validating access token: Sessions for the user are not allowed because the user is not a confirmed "
         "user.",
    467: "Error validating access token: The session is invalid because the user logged out.",
    492: "Error validating access token: The session is invalid because the user no longer has a role on the Page.",
}


@dataclass
class Node:
    kind: str
    data: dict
    account: str  # the page, IG user or WABA it belongs to: what a token must be granted
    extra: dict = field(default_factory=dict)


Handler = Callable[[Request, Token, Node, dict], Response | dict]


class Graph:
    """Routes Graph requests to the handlers that the Facebook, Instagram and WhatsApp fakes register."""

    def __init__(self, world) -> None:
        self.world = world
        self.nodes: dict[str, Node] = {}
        self.handlers: dict[tuple[str, str, str], Handler] = {}
        self.usage: dict[str, Any] = {"app": {}, "buc": {}}
        self.trace = 0

    # ----- registry -------------------------------------------------------------------------------------------

    def on(self, kind: str, method: str, edge: str, handler: Handler) -> None:
        self.handlers[(kind, method, edge)] = handler

    def add(self, object_id: str, node_kind: str, data: dict, account: str, /, **extra: Any) -> Node:
        node = Node(node_kind, data, account, extra)
        self.nodes[object_id] = node
        return node

    def next_id(self, name: str, base: int) -> str:
        return str(base + self.world.ids.next(name))

    # ----- classification (runs before scripting, so rules can match on platform) ------------------------------

    def split(self, request: Request) -> tuple[str, list[str]]:
        match = VERSION.match(request.path)
        if match:
            return match.group(1), [s for s in (match.group(2) or "/").split("/") if s]
        return self.world.settings["graph"]["version_header"], [s for s in request.path.split("/") if s]

    def classify(self, request: Request) -> str:
        _, segments = self.split(request)
        if not segments:
            return "facebook"
        head = segments[0]
        if head == "video-upload":
            return "facebook"
        if head in ("ig-api-upload", "access_token", "refresh_access_token"):
            return "instagram"
        if head in ("me", "debug_token", "oauth"):
            token = self.world.tokens.get(request.params.get("input_token") or token_value(request))
            return token.platform if token and token.platform in ("facebook", "instagram", "whatsapp") else "facebook"
        node = self.nodes.get(head) or self.nodes.get(head.split("_")[0] if "_" in head else "")
        return PLATFORM_OF_KIND.get(node.kind, "facebook") if node else "facebook"

    # ----- dispatch --------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        version, segments = self.split(request)
        platform = request.platform
        self.trace += 1
        trace = "AFake" + base64.urlsafe_b64encode(self.trace.to_bytes(6, "big")).decode().rstrip("=")
        account: str | None = None
        try:
            response, account = self._route(request, segments, platform, trace)
        except Reply as reply:
            response = reply.response
            body = response.json_body()
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                body["error"]["fbtrace_id"] = trace
                response.body = json.dumps(body, separators=(",", ":")).encode()
            account = reply.account
        response.headers += [("x-fb-trace-id", trace), ("x-fb-rev", "1000000"), ("facebook-api-version", version)]
        response.headers += self.usage_headers(account, platform)
        return response

    def _route(self, request: Request, segments: list[str], platform: str, trace: str) -> tuple[Response, str | None]:
        if not segments:
            raise unsupported(request, "", platform)
        head, edge = segments[0], "/".join(segments[1:])
        special = {"oauth": self.oauth_access_token, "debug_token": self.debug_token,
                   "access_token": self.ig_exchange_token, "refresh_access_token": self.ig_refresh_token}
        if head in special and (head != "oauth" or edge == "access_token"):
            return special[head](request), None
        if head in ("video-upload", "ig-api-upload"):
            handler = self.handlers[("rupload", "POST", head)]
            return as_response(handler(request, None, None, {"segments": segments})), None
        token = self.authenticate(request, platform)
        if head == "me":
            if edge == "permissions":
                return self.me_permissions(token), None
            if edge == "accounts":
                return self.me_accounts(request, token), None
            head = token.subject
        node = self.nodes.get(head)
        person = node is not None and node.kind in ("user", "system_user")
        if node is None or (person and head not in (token.subject, token.user_id)) or (
                not person and token.targets and node.account not in token.targets):
            raise unsupported(request, head, platform)
        self.check_throttle(node, platform)
        handler = self.handlers.get((node.kind, request.method, edge))
        if handler is None:
            if edge:
                raise graph_error(2500, message=f"Unknown path components: /{edge}", platform=platform)
            raise unsupported(request, head, platform)
        self.world.contracts.check_graph(request, node.kind, edge, platform)
        context = {"id": head, "fields": parse_fields(request.params.get("fields")), "trace": trace}
        account = None if person else node.account  # BUC headers are for pages, IG users and WABAs
        try:
            return as_response(handler(request, token, node, context)), account
        except Reply as reply:
            reply.account = account
            raise

    # ----- auth ------------------------------------------------------------------------------------------------

    def authenticate(self, request: Request, platform: str) -> Token:
        value = token_value(request)
        if not value:
            raise graph_error(104, message=MESSAGES[104], platform=platform)
        token = self.world.tokens.get(value)
        now = self.world.clock.now()
        if token is None or token.platform not in ("facebook", "instagram", "whatsapp"):
            raise graph_error(190, platform=platform)
        proof = request.params.get("appsecret_proof")
        if proof is not None or self.world.settings["graph"]["require_appsecret_proof"]:
            expected = hmac.new(D.META_APP_SECRET.encode(), value.encode(), hashlib.sha256).hexdigest()
            if proof is None:
                raise graph_error(100, message="API calls from the server require an appsecret_proof argument",
                                  platform=platform)
            if not hmac.compare_digest(str(proof), expected):
                raise graph_error(100, message="Invalid appsecret_proof provided in the API argument",
                                  platform=platform)
        if token.error_subcode is not None or token.revoked:
            subcode = token.error_subcode or 460
            raise graph_error(190, subcode, SUBCODE_MESSAGES.get(subcode, "Error validating access token."),
                              platform=platform)
        if token.expired(now):
            raise graph_error(190, 463, f"Error validating access token: Session has expired on "
                              f"{fb_time(token.expires_at)}. The current time is {fb_time(now)}.", platform=platform)
        return token

    def require_scopes(self, token: Token, scopes: list[str], platform: str, message: str | None = None,
                       code: int = 200) -> None:
        missing = [s for s in scopes if s not in token.scopes]
        if missing:
            raise graph_error(code, message=message or f"(#{code}) Requires {missing[0]} permission to manage the "
                              "object", platform=platform)

    # ----- usage headers and throttling (docs/platforms/meta.md) ------------------------------------------------

    def set_usage(self, spec: dict) -> dict:
        now = self.world.clock.now()
        if "app" in spec:
            self.usage["app"] = dict(spec["app"] or {})
        for object_id, entry in (spec.get("buc") or {}).items():
            if entry is None:
                self.usage["buc"].pop(object_id, None)
            else:
                self.usage["buc"][object_id] = {**entry, "_set_at": now}
        return self.usage_state()

    def usage_state(self) -> dict:
        return {"app": self.app_usage(), "buc": {k: self.buc_entry(k, None) for k in self.usage["buc"]}}

    def app_usage(self) -> dict:
        app = self.usage["app"]
        return {k: app.get(k, 0) for k in ("call_count", "total_time", "total_cputime")}

    def buc_entry(self, object_id: str, platform: str | None) -> dict:
        kind = {"facebook": "pages", "instagram": "instagram", "whatsapp": "whatsapp_business_management"}
        entry = self.usage["buc"].get(object_id)
        base = {"type": kind.get(platform or "", "pages"), "call_count": 0, "total_cputime": 0, "total_time": 0,
                "estimated_time_to_regain_access": 0}
        if not entry:
            return base
        elapsed = (self.world.clock.now() - entry["_set_at"]) / 60
        remaining = max(0, math.ceil(entry.get("estimated_time_to_regain_access", 0) - elapsed))
        merged = {**base, **{k: v for k, v in entry.items() if not k.startswith("_")}}
        merged["estimated_time_to_regain_access"] = remaining
        if remaining == 0 and entry.get("estimated_time_to_regain_access", 0) > 0:
            merged.update(call_count=0, total_cputime=0, total_time=0)  # the throttle has lifted
        return merged

    def usage_headers(self, account: str | None, platform: str) -> list[tuple[str, str]]:
        headers = [("x-app-usage", json.dumps(self.app_usage(), separators=(",", ":")))]
        if account:
            buc = {account: [self.buc_entry(account, platform)]}
            headers.append(("x-business-use-case-usage", json.dumps(buc, separators=(",", ":"))))
        return headers

    def check_throttle(self, node: Node, platform: str) -> None:
        if max(self.app_usage().values()) >= 100:
            raise graph_error(4, platform=platform)
        entry = self.buc_entry(node.account, platform)
        if max(entry["call_count"], entry["total_time"], entry["total_cputime"]) >= 100:
            reply = graph_error(BUC_ERROR.get(entry["type"], 80001), platform=platform)
            reply.account = node.account
            raise reply

    # ----- token endpoints: exchange, debug_token, Instagram refresh (docs/platforms/meta.md, "Tokens") ---------

    def oauth_access_token(self, request: Request) -> Response:
        p = request.params
        if p.get("client_id") != D.META_APP_ID:
            raise graph_error(101, message="Error validating application. Invalid application ID.")
        if p.get("client_secret") != D.META_APP_SECRET:
            raise graph_error(1, message="Error validating client secret.")
        tokens, now = self.world.tokens, self.world.clock.now()
        if p.get("grant_type") == "fb_exchange_token":
            short = tokens.get(p.get("fb_exchange_token"))
            if short is None or short.kind != "USER" or not short.usable(now):
                raise graph_error(190)
            minted = tokens.mint("fake-fb-user-token-ll", platform="facebook", kind="USER", subject=short.subject,
                                 scopes=list(short.scopes), targets=list(short.targets), expires_at=now + 5183944)
            return Response.json(200, {"access_token": minted.value, "token_type": "bearer", "expires_in": 5183944})
        code = p.get("code") or ""
        if not code.startswith("fake-fb-code"):
            raise graph_error(100, 36007, "Invalid verification code format.")
        minted = tokens.mint("fake-fb-user-token-short", platform="facebook", kind="USER", subject=D.FB_USER_ID,
                             scopes=list(D.FB_PAGE_SCOPES), targets=[D.FB_PAGE_ID, D.FB_PAGE_2_ID, D.IG_USER_ID],
                             expires_at=now + 7200)
        return Response.json(200, {"access_token": minted.value, "token_type": "bearer", "expires_in": 7200})

    def debug_token(self, request: Request) -> Response:
        auth = token_value(request)
        now = self.world.clock.now()
        if auth != D.META_APP_TOKEN:
            self.authenticate(request, "facebook")
        target = self.world.tokens.get(request.params.get("input_token"))
        if target is None or target.platform not in ("facebook", "instagram", "whatsapp"):
            return Response.json(200, {"data": {"error": {"code": 190, "message": MESSAGES[190]},
                                                "is_valid": False, "scopes": []}})
        data: dict[str, Any] = {
            "app_id": D.META_APP_ID, "type": "USER" if target.kind == "IG_USER" else target.kind,
            "application": "Fake Sidecar App", "data_access_expires_at": int(target.issued_at + 90 * DAY),
            "expires_at": int(target.expires_at) if target.expires_at else 0,
            "is_valid": target.usable(now), "issued_at": int(target.issued_at), "scopes": list(target.scopes),
            "granular_scopes": [{"scope": s, "target_ids": list(target.targets)} for s in target.scopes
                                if s.startswith(("pages_", "instagram_", "whatsapp_"))],
            "user_id": target.user_id or target.subject,
        }
        if target.kind == "PAGE":
            data["profile_id"] = target.subject
        if not target.usable(now):
            subcode = target.error_subcode or (463 if target.expired(now) else 460)
            data["error"] = {"code": 190, "subcode": subcode, "message": SUBCODE_MESSAGES.get(
                subcode, "Error validating access token: Session has expired.")}
        return Response.json(200, {"data": data})

    def me_permissions(self, token: Token) -> Response:
        data = [{"permission": s, "status": "granted"} for s in token.scopes]
        data += [{"permission": s, "status": "declined"} for s in token.declined]
        return Response.json(200, {"data": data})

    def me_accounts(self, request: Request, token: Token) -> Response:
        if token.kind != "USER":
            raise graph_error(100, message="(#100) Tried accessing nonexisting field (accounts) on node type (Page)")
        pages = [n.data for n in self.nodes.values() if n.kind == "page" and token.subject in n.data["roles"]
                 and (not token.targets or n.account in token.targets)]
        fields = parse_fields(request.params.get("fields"))
        try:
            limit = int(request.params.get("limit") or 25)
            start = int(base64.b64decode(request.params["after"]).decode()) if request.params.get("after") else 0
        except ValueError:
            raise graph_error(100, message="(#100) Invalid limit or cursor") from None
        chunk = pages[start:start + limit]
        data = [project({**p, "access_token": p["token"], "tasks": p["roles"][token.subject]}, fields,
                        ("id", "name", "access_token", "category", "tasks")) for p in chunk]
        body: dict[str, Any] = {"data": data}
        if chunk:
            cursors = {"before": base64.b64encode(str(start).encode()).decode(),
                       "after": base64.b64encode(str(start + len(chunk)).encode()).decode()}
            body["paging"] = {"cursors": cursors}
            if start + len(chunk) < len(pages):
                query = {k: v for k, v in request.query.items() if k != "after"}
                query["after"] = cursors["after"]
                version, _ = self.split(request)
                qs = "&".join(f"{k}={v}" for k, v in query.items())
                body["paging"]["next"] = f"{request.base_url}/{version}/me/accounts?{qs}"
        return Response.json(200, body)

    def ig_exchange_token(self, request: Request) -> Response:
        p = request.params
        if p.get("grant_type") != "ig_exchange_token":
            raise graph_error(100, message="(#100) Unsupported grant_type", platform="instagram")
        if p.get("client_secret") != D.META_APP_SECRET:
            raise graph_error(101, message="Error validating client secret.", platform="instagram")
        short = self.authenticate(request, "instagram")
        return self._ig_long_lived(short)

    def ig_refresh_token(self, request: Request) -> Response:
        if request.params.get("grant_type") != "ig_refresh_token":
            raise graph_error(100, message="(#100) Unsupported grant_type", platform="instagram")
        token = self.authenticate(request, "instagram")
        now = self.world.clock.now()
        min_age = self.world.settings["instagram"]["refresh_min_age_seconds"]
        if token.kind != "IG_USER":
            raise graph_error(190, platform="instagram")
        if now - token.issued_at < min_age:
            raise graph_error(100, message="(#100) Access tokens can only be refreshed once they are at least 24 "
                              "hours old", platform="instagram")
        return self._ig_long_lived(token)

    def _ig_long_lived(self, source: Token) -> Response:
        ttl = self.world.settings["instagram"]["long_lived_ttl_seconds"]
        minted = self.world.tokens.mint("fake-ig-login-token", platform="instagram", kind="IG_USER",
                                        subject=source.subject, scopes=list(source.scopes),
                                        targets=list(source.targets), expires_at=self.world.clock.now() + ttl)
        return Response.json(200, {"access_token": minted.value, "token_type": "bearer", "expires_in": ttl})


def token_value(request: Request) -> str | None:
    auth = request.header("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return request.params.get("access_token") or None


def as_response(result: Response | dict) -> Response:
    return result if isinstance(result, Response) else Response.json(200, result)
