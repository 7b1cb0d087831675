"""WhatsApp Cloud API (docs/platforms/meta.md): `/{phone-number-id}/messages` for text, image and
template, with the 24-hour customer-service window, the per-recipient pair rate and the
per-number throughput limit; phone-number reads for validation."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from .core import Token
from .meta import Graph, Node, graph_error, project
from .wire import Request

TYPES = ("text", "image", "video", "audio", "document", "sticker", "location", "contacts", "interactive", "reaction",
         "template")
MEDIA = ("image", "video", "audio", "document", "sticker")
# The Cloud API's media types and sizes (bytes) for uploads.
MEDIA_LIMITS = {"image/jpeg": 5 << 20, "image/png": 5 << 20, "video/mp4": 16 << 20, "video/3gpp": 16 << 20,
                "audio/aac": 16 << 20, "audio/amr": 16 << 20, "audio/mpeg": 16 << 20, "audio/mp4": 16 << 20,
                "audio/ogg": 16 << 20, "image/webp": 500 << 10, "text/plain": 100 << 20, "application/pdf": 100 << 20,
                "application/msword": 100 << 20, "application/vnd.ms-excel": 100 << 20,
                "application/vnd.ms-powerpoint": 100 << 20,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 << 20,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 << 20,
                "application/vnd.openxmlformats-officedocument.presentationml.presentation": 100 << 20}
# The Cloud API's fields per message type; anything else is refused as it would be by WhatsApp (#100).
FIELDS = {"text": {"body", "preview_url"}, "image": {"link", "id", "caption"}, "video": {"link", "id", "caption"},
          "audio": {"link", "id"}, "sticker": {"link", "id"}, "document": {"link", "id", "caption", "filename"},
          "location": {"latitude", "longitude", "name", "address"}, "reaction": {"message_id", "emoji"},
          "interactive": {"type", "header", "body", "footer", "action"},
          "template": {"name", "language", "components"}}


def _err(code: int, message: str | None = None, details: str | None = None, **kw: Any):
    return graph_error(code, message=message, details=details, platform="whatsapp", **kw)


class WhatsApp:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.world = graph.world
        self.inbound: dict[tuple[str, str], float] = {}
        self.last_sent: dict[tuple[str, str], float] = {}
        self.recent: dict[str, list[float]] = {}
        self.uploaded: dict[str, dict] = {}
        self.current_phone = ""
        on = graph.on
        on("wa_phone", "GET", "", self.read_phone)
        on("wa_phone", "POST", "messages", self.send)
        on("wa_phone", "POST", "media", self.upload_media)
        on("waba", "GET", "", lambda r, t, n, c: project(n.data, c["fields"], ("id", "name")))
        on("waba", "GET", "phone_numbers", self.phone_numbers)
        on("system_user", "GET", "", lambda r, t, n, c: project(n.data, c["fields"], ("id", "name")))

    def upload_media(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        """`POST /{phone-number-id}/media` (multipart: messaging_product, type, file) → `{"id"}`; the id is valid for
        messages from this number."""
        if "whatsapp_business_messaging" not in token.scopes:
            raise _err(10)
        p, upload = request.params, request.files.get("file")
        if p.get("messaging_product") != "whatsapp":
            raise _err(100, "(#100) The parameter messaging_product is required.")
        if upload is None:
            raise _err(100, "(#100) The parameter file is required.")
        mime = p.get("type") or upload.content_type
        limit = MEDIA_LIMITS.get(mime)
        if limit is None:
            raise _err(131053, details=f"Media upload error: unsupported type {mime}")
        if len(upload.data) > limit:
            raise _err(131053, details=f"Media upload error: file is larger than {limit} bytes")
        media_id = str(self.graph.next_id("wa_media", 900000000000000))
        self.uploaded[media_id] = {"phone": node.data["id"], "type": mime, "bytes": len(upload.data),
                                   "sha256": hashlib.sha256(upload.data).hexdigest(), "filename": upload.filename}
        return {"id": media_id}

    def customer_message(self, phone_id: str, sender: str, ago: float = 0.0) -> None:
        """The user wrote to the business `ago` seconds ago: opens the 24-hour window."""
        self.inbound[(phone_id, digits(sender))] = self.world.clock.now() - ago

    def read_phone(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        # Meta renamed the messaging-limit field in v24.0: each version knows only its own name.
        version, _ = self.graph.split(request)
        gone = "messaging_limit_tier" if float(version[1:]) >= 24 else "whatsapp_business_manager_messaging_limit"
        if gone in (context["fields"] or {}):
            raise graph_error(100, message=f"(#100) Tried accessing nonexisting field ({gone}) on node type "
                              "(WhatsAppBusinessPhoneNumber)", platform="whatsapp")
        view = {k: v for k, v in node.data.items() if k != "waba"}
        return project(view, context["fields"], ("id", "display_phone_number", "verified_name", "quality_rating"))

    def phone_numbers(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        phones = [self.graph.nodes[p].data for p in node.data["phones"] if p in self.graph.nodes]
        fields = context["fields"] or {k: None for k in ("id", "display_phone_number", "verified_name",
                                                          "quality_rating")}
        return {"data": [project(p, fields) for p in phones]}

    def send(self, request: Request, token: Token, node: Node, context: dict) -> dict:
        if "whatsapp_business_messaging" not in token.scopes:
            raise _err(10)
        body = request.json if isinstance(request.json, dict) else request.params
        if body.get("messaging_product") != "whatsapp":
            raise _err(100, "(#100) The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not digits(to) or len(digits(to)) < 8:
            raise _err(131009, details="Invalid value for parameter 'to'")
        kind = body.get("type", "text")
        if kind not in TYPES:
            raise _err(131009, details=f"Parameter 'type' must be one of {', '.join(TYPES)}")
        content = body.get(kind)
        if not isinstance(content, list if kind == "contacts" else dict):
            raise _err(131008, details=f"The parameter {kind} is required.")
        unknown = set(content) - FIELDS[kind] if isinstance(content, dict) else set()
        if unknown:
            raise _err(100, f"(#100) Param {kind}['{sorted(unknown)[0]}'] is not a valid parameter.")
        context_ = body.get("context")
        if context_ is not None and not (isinstance(context_, dict) and set(context_) == {"message_id"}):
            raise _err(131009, details="Parameter 'context' must be {message_id}")
        self.current_phone = node.data["id"]
        text = self.content_text(kind, content)
        wa_id, phone_id = digits(to), node.data["id"]
        if wa_id == digits(node.data["display_phone_number"]):
            raise _err(131021, "(#131021) Recipient cannot be sender.")
        settings, now = self.world.settings["whatsapp"], self.world.clock.now()
        recent = [t for t in self.recent.get(phone_id, []) if now - t < 1.0]
        if len(recent) >= settings["throughput_per_second"]:
            raise _err(130429, details="Message failed to send because there were too many messages sent from this "
                       "phone number in a short period of time", subcode=2494055)
        last = self.last_sent.get((phone_id, wa_id))
        if settings["pair_rate_seconds"] and last is not None and now - last < settings["pair_rate_seconds"]:
            raise _err(131056, details="Message failed to send because there were too many messages sent from this "
                       "phone number to the same phone number in a short period of time.")
        if kind != "template" and not settings["window_open_for_all"]:
            opened = self.inbound.get((phone_id, wa_id))
            if opened is None or now - opened >= settings["window_seconds"]:
                raise _err(131047, details="Message failed to send because more than 24 hours have passed since the "
                           "customer last replied to this number.")
        self.recent[phone_id] = recent + [now]
        self.last_sent[(phone_id, wa_id)] = now
        serial = self.world.ids.next("wamid")
        wamid = "wamid." + base64.b64encode(f"FAKE:{wa_id}:{serial:012d}".encode()).decode()
        self.world.recorder.publish("whatsapp", kind, wamid, phone_id, text, None, to=wa_id,
                                    biz_opaque_callback_data=body.get("biz_opaque_callback_data"),
                                    reply_to=(context_ or {}).get("message_id"),
                                    media=self.uploaded.get(content.get("id")) if isinstance(content, dict) else None)
        message: dict[str, Any] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": wa_id}], "messages": [message]}

    def interactive_text(self, content: dict) -> str:
        problem = _interactive_limits(content)
        if problem:
            raise _err(131009, details=problem)
        return content["body"]["text"]

    def content_text(self, kind: str, content: Any) -> str | None:
        if kind == "text":
            if not isinstance(content.get("body"), str) or not content["body"]:
                raise _err(131008, details="The parameter text['body'] is required.")
            if len(content["body"]) > 4096:
                raise _err(131009, details="text['body'] is longer than 4096 characters")
            return content["body"]
        if kind in MEDIA:
            if not (content.get("link") or content.get("id")):
                raise _err(131008, details=f"The parameter {kind}['link'] or {kind}['id'] is required.")
            if content.get("id") and (content["id"] not in self.uploaded
                                      or self.uploaded[content["id"]]["phone"] != self.current_phone):
                raise _err(131053, details=f"Media id {content['id']} was not uploaded to this phone number")
            return content.get("caption")
        if kind == "location":
            if not all(isinstance(content.get(k), (int, float)) for k in ("latitude", "longitude")):
                raise _err(131008, details="The parameters location['latitude'] and ['longitude'] are required.")
            return content.get("name")
        if kind == "contacts":
            if not content or not all(isinstance(c, dict) and (c.get("name") or {}).get("formatted_name")
                                      for c in content):
                raise _err(131008, details="The parameter contacts[0]['name']['formatted_name'] is required.")
            return content[0]["name"]["formatted_name"]
        if kind == "reaction":
            if not isinstance(content.get("message_id"), str) or not isinstance(content.get("emoji"), str):
                raise _err(131008, details="The parameters reaction['message_id'] and ['emoji'] are required.")
            return content["emoji"]
        if kind == "interactive":
            return self.interactive_text(content)
        name = content.get("name")
        language = (content.get("language") or {}).get("code") if isinstance(content.get("language"), dict) else None
        templates = self.world.meta_accounts["wa_templates"]
        if (name, language) not in templates:
            raise _err(132001, details=f"template name ({name}) does not exist in {language}")
        expected = templates[(name, language)]
        given = sum(len(c.get("parameters") or []) for c in content.get("components") or []
                    if isinstance(c, dict) and c.get("type") == "body")
        if given != expected:
            raise _err(132000, details=f"body: number of localizable_params ({given}) does not match the expected "
                       f"number of params ({expected})")
        return name


def _interactive_limits(content: dict) -> str | None:
    """What WhatsApp refuses in an interactive object, or None."""
    body = content.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return "interactive['body']['text'] is required"
    action = content.get("action") or {}
    if content.get("type") == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "interactive['action']['buttons'] must have 1 to 3 buttons"
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if button.get("type") != "reply" or not isinstance(reply, dict) or len(reply.get("title") or "") > 20:
                return "each button needs type 'reply' and reply['title'] of at most 20 characters"
        return None
    if content.get("type") == "list":
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10 or not action.get("button"):
            return "interactive['action'] needs 'button' and 1 to 10 sections"
        if sum(len(s.get("rows") or []) for s in sections) > 10:
            return "a list has at most 10 rows"
        return None
    return "interactive['type'] must be button or list"


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())
