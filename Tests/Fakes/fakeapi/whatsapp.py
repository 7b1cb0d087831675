"""WhatsApp Cloud API (platform-apis.md §4): `/{phone-number-id}/messages` for text, image and
template, with the 24-hour customer-service window, the per-recipient pair rate and the
per-number throughput limit; phone-number reads for validation."""

from __future__ import annotations

import base64
from typing import Any

from .core import Token
from .meta import Graph, Node, graph_error, project
from .wire import Request

TYPES = ("text", "image", "template")


def _err(code: int, message: str | None = None, details: str | None = None, **kw: Any):
    return graph_error(code, message=message, details=details, platform="whatsapp", **kw)


class WhatsApp:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.world = graph.world
        self.inbound: dict[tuple[str, str], float] = {}
        self.last_sent: dict[tuple[str, str], float] = {}
        self.recent: dict[str, list[float]] = {}
        on = graph.on
        on("wa_phone", "GET", "", self.read_phone)
        on("wa_phone", "POST", "messages", self.send)
        on("waba", "GET", "", lambda r, t, n, c: project(n.data, c["fields"], ("id", "name")))
        on("waba", "GET", "phone_numbers", self.phone_numbers)
        on("system_user", "GET", "", lambda r, t, n, c: project(n.data, c["fields"], ("id", "name")))

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
        if not isinstance(content, dict):
            raise _err(131008, details=f"The parameter {kind} is required.")
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
                                    biz_opaque_callback_data=body.get("biz_opaque_callback_data"))
        message: dict[str, Any] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": wa_id}], "messages": [message]}

    def content_text(self, kind: str, content: dict) -> str | None:
        if kind == "text":
            if not isinstance(content.get("body"), str) or not content["body"]:
                raise _err(131008, details="The parameter text['body'] is required.")
            if len(content["body"]) > 4096:
                raise _err(131009, details="text['body'] is longer than 4096 characters")
            return content["body"]
        if kind == "image":
            if not (content.get("link") or content.get("id")):
                raise _err(131008, details="The parameter image['link'] or image['id'] is required.")
            return content.get("caption")
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


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())
