"""`/_fake/…`: the control surface tests drive, over HTTP or (same code) from Python."""

from __future__ import annotations

import json
from typing import Any

from . import defaults as D
from .core import deep_merge
from .wire import Request, Response


class ControlError(Exception):
    pass


class Control:
    def __init__(self, world) -> None:
        self.world = world

    def handle(self, request: Request) -> Response:
        body: Any = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return Response.json(400, {"error": "control bodies are JSON"})
        try:
            status, payload = self.call(request.method, request.path, body, request.query, request.base_url)
        except (ControlError, ValueError, KeyError, TypeError) as error:
            return Response.json(400, {"error": str(error)})
        return Response.json(status, payload)

    def call(self, method: str, path: str, body: Any = None, query: dict | None = None,
             base_url: str | None = None) -> tuple[int, Any]:
        world, query = self.world, query or {}
        name = path[len("/_fake/"):].strip("/")
        route = (method, name)
        if route == ("GET", "health"):
            return 200, {"ok": True, "seed": world.seed}
        if name == "requests":
            if method == "DELETE":
                world.recorder.requests.clear()
                return 200, {"cleared": True}
            return 200, world.recorder.query(world.recorder.requests, query.get("platform"),
                                             method=query.get("method"), path=query.get("path"),
                                             since=query.get("since"), outcome=query.get("outcome"))
        if name == "published":
            if method == "DELETE":
                world.recorder.published.clear()
                return 200, {"cleared": True}
            return 200, world.recorder.query(world.recorder.published, query.get("platform"),
                                             kind=query.get("kind"), account=query.get("account"))
        if name == "script":
            if method == "POST":
                rules = body.get("rules", []) if isinstance(body, dict) else body
                append = query.get("append") in ("1", "true") or (isinstance(body, dict) and body.get("append"))
                world.script.load(rules or [], append=bool(append))
            elif method == "DELETE":
                world.script.load([])
            return 200, [rule.describe() for rule in world.script.rules]
        if route == ("POST", "reset"):
            world.reset()
            return 200, {"reset": True}
        if name == "tokens":
            if method == "POST":
                specs = body if isinstance(body, list) else [body]
                updated = [world.tokens.apply(spec).to_json() for spec in specs]
                return 200, updated
            platform = query.get("platform")
            return 200, [t.to_json() for t in world.tokens.tokens.values() if not platform or t.platform == platform]
        if name == "clock":
            if method == "POST":
                body = body or {}
                if "freeze" in body:
                    world.clock.freeze(bool(body["freeze"]))
                if "set" in body:
                    world.clock.set(float(body["set"]))
                if "advance" in body:
                    world.clock.advance(float(body["advance"]))
            return 200, world.clock.state()
        if name == "config":
            if method == "POST":
                deep_merge(world.settings, body or {})
            return 200, world.settings
        if name == "usage":
            if method == "POST":
                return 200, world.graph.set_usage(body or {})
            return 200, world.graph.usage_state()
        if route == ("POST", "whatsapp/inbound"):
            body = body or {}
            sender = body.get("from")
            if not sender:
                raise ControlError("whatsapp/inbound needs 'from'")
            world.whatsapp.customer_message(body.get("phone_number_id", D.WA_PHONE_NUMBER_ID), sender,
                                            float(body.get("ago", 0)))
            return 200, {"ok": True}
        if route == ("GET", "quota"):
            return 200, {"youtube": world.youtube.quota_state(),
                         "instagram": {ig: world.instagram.quota_usage(ig) for ig in world.meta_accounts["ig_users"]},
                         "linkedin": dict(world.linkedin.daily)}
        if route == ("POST", "engagement"):
            world.engagement.setdefault(str(body["postId"]), {}).update(body.get("stats") or {})
            return 200, world.engagement[str(body["postId"])]
        if route == ("GET", "credentials"):
            return 200, D.credentials(world.tokens)
        if route == ("GET", "sidecar-config"):
            from .server import sidecar_config
            return 200, sidecar_config(base_url or world.base_url)
        raise ControlError(f"unknown control endpoint {method} /_fake/{name}")
