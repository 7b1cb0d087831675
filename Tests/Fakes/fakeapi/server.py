"""One asyncio server for every platform: classify, record, apply the fault script, answer.
`FakePlatforms` runs it on a background thread for pytest; `fake_platforms.py` runs it as a CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import struct
import sys
import threading
import traceback
from typing import Any

from . import defaults as D
from . import media
from .contracts import Contracts, graph_version as sdk_graph_version
from .control import Control
from .core import DAY, Clock, Ids, Recorder, Reply, Script, TokenStore, default_settings
from .facebook import Facebook
from .instagram import Instagram
from .linkedin import LinkedIn, linkedin_error, oauth_error as li_oauth_error
from .meta import Graph, graph_error
from .whatsapp import WhatsApp
from .wire import MAX_HEADER_BYTES, BadRequest, Request, Response, read_request, wants_keep_alive
from .youtube import YouTube, oauth_error as google_oauth_error, youtube_error


class World:
    """All mutable state; `reset()` rebuilds it from the seed."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.base_url = "http://127.0.0.1"
        self.reset()

    def reset(self) -> None:
        self.clock = Clock()
        # Engagement a test sets per post id, in each platform's own names (`/_fake/engagement`); read by insights.
        self.engagement: dict[str, dict] = {}
        self.settings = default_settings()
        self.ids = Ids(self.seed)
        self.tokens = TokenStore(self.clock)
        D.seed_tokens(self.tokens)
        self.recorder = Recorder(self.clock, lambda: self.settings["recording"]["max_requests"])
        self.script = Script(self.seed)
        self.meta_accounts = D.meta_accounts()
        self.graph = Graph(self)
        self.facebook = Facebook(self.graph)
        self.instagram = Instagram(self.graph)
        self.whatsapp = WhatsApp(self.graph)
        accounts = self.meta_accounts
        for user in accounts["users"].values():
            self.graph.add(user["id"], "user", user, user["id"])
        for user in accounts["system_users"].values():
            self.graph.add(user["id"], "system_user", user, user["id"])
        for page in accounts["pages"].values():
            self.graph.add(page["id"], "page", page, page["id"])
        for ig in accounts["ig_users"].values():
            self.graph.add(ig["id"], "ig_user", ig, ig["id"])
        for phone in accounts["wa_phones"].values():
            self.graph.add(phone["id"], "wa_phone", phone, phone["waba"])
        for waba in accounts["wabas"].values():
            self.graph.add(waba["id"], "waba", waba, waba["id"])
        self.whatsapp.customer_message(D.WA_PHONE_NUMBER_ID, D.WA_OPEN_WINDOW_RECIPIENT)
        self.whatsapp.customer_message(D.WA_PHONE_NUMBER_ID, D.WA_CLOSED_WINDOW_RECIPIENT, ago=DAY + 3600)
        self.youtube = YouTube(self)
        self.linkedin = LinkedIn(self)
        self.control = Control(self)
        self.contracts = Contracts(self)

    def classify(self, request: Request) -> str:
        path = request.path
        if path.startswith("/_fake/"):
            return "control"
        if path.startswith("/media/"):
            return "media"
        if YouTube.owns(path):
            return "youtube"
        if LinkedIn.owns(path):
            return "linkedin"
        return self.graph.classify(request)

    def process(self, request: Request) -> Response:
        """Answers a request as the platform would; never raises."""
        try:
            if request.platform == "media":
                return media.handle(request)
            if request.platform == "youtube":
                self.contracts.check_youtube(request)
                return self.youtube.handle(request)
            if request.platform == "linkedin":
                self.contracts.check_linkedin(request)
                return self.linkedin.handle(request)
            return self.graph.handle(request)
        except Reply as reply:
            return reply.response
        except Exception:  # a bug in the fake: say so loudly rather than look like a platform answer
            traceback.print_exc(file=sys.stderr)
            return Response.text(599, "fake_platforms internal error:\n" + traceback.format_exc())

    def scripted_error(self, request: Request, spec: dict) -> Response:
        """`{"action": "error", …}` rendered in the shape the request's platform uses."""
        platform, headers = request.platform, list((spec.get("headers") or {}).items())
        try:
            if isinstance(spec.get("error"), str):  # OAuth token endpoints
                maker = google_oauth_error if platform == "youtube" else li_oauth_error
                raise maker(spec.get("status", 400), spec["error"], spec.get("error_description", spec["error"]))
            if platform in ("facebook", "instagram", "whatsapp"):
                raise graph_error(int(spec.get("code", 1)), spec.get("subcode"), spec.get("message"), platform=platform,
                                  status=spec.get("status"), user_title=spec.get("user_title"),
                                  user_msg=spec.get("user_msg"), details=spec.get("details"),
                                  transient=spec.get("is_transient"), headers=headers)
            if platform == "youtube":
                raise youtube_error(spec.get("reason", "backendError"), spec.get("message"), spec.get("status"),
                                    headers=headers)
            if platform == "linkedin":
                raise linkedin_error(spec.get("status"), spec.get("code"), spec.get("message"),
                                     spec.get("serviceErrorCode"), headers=headers)
            return Response.text(int(spec.get("status", 500)), spec.get("message", "scripted error"))
        except Reply as reply:
            if platform in ("facebook", "instagram", "whatsapp"):
                reply.response.headers += self.graph.usage_headers(None, platform)
            return reply.response


def scripted_response(spec: dict) -> Response:
    body = spec.get("body", b"")
    headers = list((spec.get("headers") or {}).items())
    if isinstance(body, (dict, list)):
        return Response.json(int(spec.get("status", 500)), body, headers)
    content_type = [("Content-Type", "text/plain; charset=UTF-8")] if body else []
    return Response(int(spec.get("status", 500)), str(body).encode() if body else b"", content_type + headers)


class Server:
    """asyncio HTTP/1.1 server over a `World`, with the fault-script actions applied per request."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0, log: bool = False) -> None:
        self.world = world
        self.host = host
        self.port = port
        self.log = log
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.connection, self.host, self.port, limit=MAX_HEADER_BYTES,
                                                 backlog=1024, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        self.world.base_url = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server:
            await self.server.wait_closed()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.connections.add(task)
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    request = await read_request(reader, writer)
                except BadRequest as error:
                    writer.write(Response.text(400, str(error)).serialize(keep_alive=False))
                    await writer.drain()
                    break
                if request is None or not await self.serve(request, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            self.connections.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def serve(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answers one request; False when the connection must end."""
        world = self.world
        keep_alive = wants_keep_alive(request)
        head = request.method == "HEAD"
        request.platform = world.classify(request)
        if request.platform == "control":
            await self.send(writer, world.control.handle(request), keep_alive, head)
            return keep_alive
        entry = world.recorder.record(request)
        entry["client_port"] = (writer.get_extra_info("peername") or ("", 0))[1]  # tells connections apart
        rule = world.script.pick(request)
        if rule is None:
            response = world.process(request)
            self.finish(entry, response, "responded", True)
            await self.send(writer, response, keep_alive, head)
            return keep_alive
        spec, action = rule.spec, rule.action
        entry["rule"] = rule.index
        pause = spec.get("seconds", 0) if action == "delay" else spec.get("delay", 0)
        if pause:
            await asyncio.sleep(float(pause))
        processed = None
        if "keep_bytes" in spec:  # the connection broke mid-body: the platform saw only the first bytes
            request.body = request.body[:int(spec["keep_bytes"])]
        if spec.get("process", action in ("drop_after_processing", "truncated", "delay")):
            processed = world.process(request)
            entry["processed"] = True
            entry["processed_status"] = processed.status
        if action in ("drop", "drop_after_processing"):
            self.finish(entry, None, "dropped", processed is not None)
            abort(writer, rst=spec.get("rst", True))
            return False
        if action == "hang":
            self.finish(entry, None, "hung", processed is not None)
            await wait_for_close(reader, spec.get("seconds"))
            abort(writer, rst=False)
            return False
        if action == "delay":
            self.finish(entry, processed, "delayed", True)
            await self.send(writer, processed, keep_alive, head)
            return keep_alive
        if action == "truncated":
            response = processed or scripted_response(spec)
            self.finish(entry, response, "truncated", processed is not None)
            wire = response.serialize(keep_alive=True, head=head)
            cut = len(wire) - max(1, len(response.body) // 2) if response.body else len(wire) // 2
            writer.write(wire[:cut])
            await writer.drain()
            abort(writer, rst=spec.get("rst", False))
            return False
        if action == "malformed":
            response = Response(int(spec.get("status", 200)), str(spec.get("body", '{"id":"12345')).encode(),
                                [("Content-Type", spec.get("content_type", "application/json; charset=UTF-8"))])
        elif action == "error":
            response = world.scripted_error(request, spec)
        else:
            response = scripted_response(spec)
        self.finish(entry, response, action, processed is not None)
        await self.send(writer, response, keep_alive, head)
        return keep_alive

    def finish(self, entry: dict, response: Response | None, outcome: str, processed: bool) -> None:
        entry["status"] = response.status if response else None
        entry["outcome"] = outcome
        entry["processed"] = processed
        if response is not None:
            entry["response_headers"] = {k.lower(): v for k, v in response.headers}
            body = response.json_body()
            entry["response"] = body if body is not None else (response.body[:500].decode("utf-8", "replace")
                                                                if not response.header("x-fake-sha256") else None)
        if self.log:
            print(f"{entry['method']} {entry['path']} -> {entry['status']} ({outcome})", file=sys.stderr)

    @staticmethod
    async def send(writer: asyncio.StreamWriter, response: Response, keep_alive: bool, head: bool) -> None:
        writer.write(response.serialize(keep_alive, head))
        await writer.drain()


def abort(writer: asyncio.StreamWriter, rst: bool) -> None:
    """Ends the connection without a response: RST by default (like a reset), or FIN."""
    sock = writer.get_extra_info("socket")
    if rst and sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def wait_for_close(reader: asyncio.StreamReader, seconds: float | None) -> None:
    async def drained() -> None:
        while await reader.read(65536):
            pass
    try:
        await asyncio.wait_for(drained(), None if seconds is None else float(seconds))
    except (asyncio.TimeoutError, ConnectionError):
        pass


def sidecar_config(base_url: str, *, graph_version: str | None = None, linkedin_version: str | None = None) -> dict:
    """`initialize.config` pointing every platform at the fake; the Graph version defaults to the installed SDK's."""
    graph_version = graph_version or sdk_graph_version()
    if linkedin_version is None:
        last_month = dt.datetime.now(dt.timezone.utc).replace(day=1) - dt.timedelta(days=1)
        linkedin_version = last_month.strftime("%Y%m")
    return {
        "platforms": {
            "facebook": {"baseUrl": base_url, "apiVersion": graph_version},
            "instagram": {"baseUrl": base_url, "apiVersion": graph_version},
            "whatsapp": {"baseUrl": base_url, "apiVersion": graph_version},
            "youtube": {"baseUrl": base_url, "uploadUrl": f"{base_url}/upload/youtube/v3/videos",
                        "tokenUrl": f"{base_url}/token"},
            "linkedin": {"baseUrl": base_url, "tokenUrl": f"{base_url}/oauth/v2/accessToken",
                         "apiVersion": linkedin_version},
        },
        "media": {"allowPrivateNetworks": True},
    }


class FakePlatforms:
    """The fake on a background thread: `with FakePlatforms() as fake: fake.base_url, fake.script([...])`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 0, log: bool = False) -> None:
        self.world = World(seed)
        self.server = Server(self.world, host, port, log)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "FakePlatforms":
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.server.start())
            except BaseException as error:  # surface bind errors to the caller
                failure.append(error)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.server.stop())
            self.loop.close()

        self.thread = threading.Thread(target=run, name="fake-platforms", daemon=True)
        self.thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self.loop and self.thread and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    def __enter__(self) -> "FakePlatforms":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # ----- control (same code as the /_fake endpoints, run on the server's loop) -------------------------------

    def control(self, verb: str, path: str, body: Any = None, /, **query: Any) -> Any:
        """Calls a `/_fake/…` endpoint in-process: `fake.control("GET", "/_fake/quota")`."""
        method = verb
        query = {k: str(v) for k, v in query.items() if v is not None}

        async def call() -> Any:
            return self.world.control.call(method, path, body, query, self.base_url)[1]

        if self.loop is None:
            return self.world.control.call(method, path, body, query, self.base_url)[1]
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=10)

    def script(self, rules: list[dict], append: bool = False) -> list[dict]:
        return self.control("POST", "/_fake/script", {"rules": rules, "append": append})

    def clear_script(self) -> None:
        self.control("DELETE", "/_fake/script")

    def rules(self) -> list[dict]:
        return self.control("GET", "/_fake/script")

    def requests(self, platform: str | None = None, method: str | None = None, path: str | None = None,
                 since: int | None = None, outcome: str | None = None) -> list[dict]:
        return self.control("GET", "/_fake/requests", platform=platform, method=method, path=path, since=since,
                            outcome=outcome)

    def clear_requests(self) -> None:
        self.control("DELETE", "/_fake/requests")

    def published(self, platform: str | None = None, kind: str | None = None) -> list[dict]:
        return self.control("GET", "/_fake/published", platform=platform, kind=kind)

    def reset(self) -> None:
        self.control("POST", "/_fake/reset")

    def tokens(self, *specs: dict) -> list[dict]:
        """Registers or changes tokens: `fake.tokens({"token": "fake-fb-page-token-1", "expired": True})`."""
        return self.control("POST", "/_fake/tokens", list(specs))

    def clock(self, advance: float | None = None, set: float | None = None, freeze: bool | None = None) -> dict:
        body = {k: v for k, v in {"advance": advance, "set": set, "freeze": freeze}.items() if v is not None}
        return self.control("POST", "/_fake/clock", body)

    def advance_clock(self, seconds: float) -> dict:
        return self.clock(advance=seconds)

    def configure(self, settings: dict) -> dict:
        return self.control("POST", "/_fake/config", settings)

    def set_usage(self, app: dict | None = None, buc: dict | None = None) -> dict:
        body: dict[str, Any] = {}
        if app is not None:
            body["app"] = app
        if buc is not None:
            body["buc"] = buc
        return self.control("POST", "/_fake/usage", body)

    def customer_message(self, sender: str, phone_number_id: str = D.WA_PHONE_NUMBER_ID, ago: float = 0) -> None:
        self.control("POST", "/_fake/whatsapp/inbound", {"from": sender, "phone_number_id": phone_number_id,
                                                          "ago": ago})

    def credentials(self) -> dict:
        return self.control("GET", "/_fake/credentials")

    def set_engagement(self, post_id: str, **stats: Any) -> dict:
        """What insights report for `post_id`, in the platform's own names: `fake.set_engagement(id, viewCount=5)`."""
        return self.control("POST", "/_fake/engagement", {"postId": post_id, "stats": stats})

    def sidecar_config(self, **kwargs: Any) -> dict:
        return sidecar_config(self.base_url, **kwargs)

    def media_url(self, name: str) -> str:
        return media.media_url(self.base_url, name)

    def redirect_url(self, to: str, status: int = 302) -> str:
        return media.redirect_url(self.base_url, to, status)
