"""The platforms' own machine-readable contracts, checked on every request the fakes receive.

The tables are not written here: they are read at start-up from the platforms' official packages (installed by
scripts/setup, pinned there):
  facebook-business         each Graph edge's `param_types` and `enums` (`Page.create_feed`, `IGUser.create_media`...)
                            and each node's `Field` list
  google-api-python-client  the YouTube Data API v3 discovery document: parameters (required, types, enums), the
                            request body schemas and the media upload paths
  linkedin-api-client       no schema tables (it ships none): the versioned and unversioned base paths, the headers
                            every Rest.li call carries, the Rest.li method to HTTP method map and its key encoding

A request that breaks a contract gets the platform's own error for it, so a client bug fails a test the way it
would fail in production. `World.settings["contracts"]["enforce"]` turns the checks off for a fake-only test.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from .core import Reply
from .wire import Request

# Graph parameters every node and edge takes (auth, paging, projection, output format): not in the per-edge tables.
GRAPH_COMMON = {"access_token", "appsecret_proof", "fields", "limit", "after", "before", "pretty", "method", "format",
                "suppress_http_code", "locale", "debug", "include_headers", "transport"}

# Which SDK table describes each Graph (node kind, HTTP method, edge) the sidecar uses.
GRAPH_EDGES = {
    ("page", "POST", "feed"): ("page", "Page", "create_feed"),
    ("page", "GET", "feed"): ("page", "Page", "get_feed"),
    ("page", "POST", "photos"): ("page", "Page", "create_photo"),
    ("page", "POST", "videos"): ("page", "Page", "create_video"),
    ("page", "POST", "video_reels"): ("page", "Page", "create_video_reel"),
    ("page", "POST", "video_stories"): ("page", "Page", "create_video_story"),
    ("page", "POST", "photo_stories"): ("page", "Page", "create_photo_story"),
    ("ig_user", "POST", "media"): ("iguser", "IGUser", "create_media"),
    ("ig_user", "POST", "media_publish"): ("iguser", "IGUser", "create_media_publish"),
    ("ig_user", "GET", "content_publishing_limit"): ("iguser", "IGUser", "get_content_publishing_limit"),
}
# The node classes whose `Field` lists say which `fields=` a node read may ask for.
# Instagram nodes are read with Facebook Login tokens and with Instagram Login tokens, which have a class each.
GRAPH_NODES = {"page": [("page", "Page")],
               "ig_user": [("iguser", "IGUser"), ("iguserforigonlyapi", "IGUserForIGOnlyAPI")],
               "ig_media": [("igmedia", "IGMedia"), ("igmediaforigonlyapi", "IGMediaForIGOnlyAPI")],
               "waba": [("whatsappbusinessaccount", "WhatsAppBusinessAccount")]}


class Contracts:
    def __init__(self, world) -> None:
        self.world = world
        self.graph_tables: dict[tuple[str, str, str], tuple[dict, dict]] = {}
        for key, (module, cls, method) in GRAPH_EDGES.items():
            self.graph_tables[key] = graph_table(module, cls, method)
        self.graph_fields = {kind: set().union(*(graph_fields(module, cls) for module, cls in classes))
                             for kind, classes in GRAPH_NODES.items()}
        self.youtube = youtube_discovery()
        self.linkedin = linkedin_contract()

    @property
    def enforced(self) -> bool:
        return self.world.settings["contracts"]["enforce"]

    # ----- Graph ---------------------------------------------------------------------------------------------

    def check_graph(self, request: Request, kind: str, edge: str, platform: str) -> None:
        """Raises the Graph error for a parameter the SDK table of this edge does not allow."""
        if not self.enforced:
            return
        from .meta import graph_error
        table = self.graph_tables.get((kind, request.method, edge))
        if request.method == "GET" and not edge and kind in self.graph_fields:
            known = self.graph_fields[kind]
            for name in field_names(request.params.get("fields")):
                if name not in known:
                    raise graph_error(100, message=f"(#100) Tried accessing nonexisting field ({name}) on node type "
                                      f"({GRAPH_NODES[kind][0][1]})", platform=platform)
        if table is None:
            return
        types, enums = table
        for raw_name, value in request.params.items():
            name = re.sub(r"\[\d+\]$", "", raw_name)
            if name in GRAPH_COMMON:
                continue
            if name not in types:
                raise graph_error(100, message=f"(#100) Param {raw_name} is not a valid parameter of this edge",
                                  platform=platform)
            wanted = types[name]
            if raw_name != name:  # `attached_media[0]`: one element of a list
                wanted = wanted[5:-1] if wanted.startswith("list<") else wanted
            problem = graph_value_problem(wanted, value, enums)
            if problem:
                raise graph_error(100, message=f"(#100) Param {raw_name} {problem}", platform=platform)

    # ----- YouTube -------------------------------------------------------------------------------------------

    def check_youtube(self, request: Request) -> None:
        """Raises Google's error for a parameter, part or body field the discovery document does not allow."""
        if not self.enforced:
            return
        method = self.youtube_method(request)
        if method is None:
            return
        from .youtube import youtube_error
        document = self.youtube
        allowed = {**document["parameters"], **method.get("parameters", {})}
        query = request.query
        for name, spec in method.get("parameters", {}).items():
            if spec.get("required") and name not in query:
                raise youtube_error("required", f"Required parameter: {name}", status=400, location=name)
        for name, value in query.items():
            spec = allowed.get(name)
            if spec is None:
                raise youtube_error("unknownParameter", f"Unknown parameter: {name}", status=400, location=name)
            problem = json_value_problem(spec, value, from_query=True)
            if problem:
                raise youtube_error("invalidParameter", f"Invalid value for parameter {name}: {problem}", status=400,
                                    location=name)
        if "request" in method and request.method == "POST" and request.body:
            body = request.json
            schema = document["schemas"][method["request"]["$ref"]]
            problem = schema_problem(document["schemas"], schema, body, method["request"]["$ref"])
            if problem:
                raise youtube_error("invalidVideoMetadata" if method["id"] == "youtube.videos.insert"
                                    else "badRequest", f"Invalid request body: {problem}", status=400)

    def youtube_method(self, request: Request) -> dict | None:
        """The discovery method a request calls: its service path + method path, or one of its media upload paths."""
        for resource in self.youtube["resources"].values():
            for method in resource.get("methods", {}).values():
                if method["httpMethod"] != request.method:
                    continue
                if request.path == "/" + self.youtube["servicePath"] + method["path"]:
                    return method
                protocols = method.get("mediaUpload", {}).get("protocols", {})
                if "upload_id" not in request.query and request.path in {p["path"] for p in protocols.values()}:
                    return method
        return None

    # ----- LinkedIn ------------------------------------------------------------------------------------------

    def check_linkedin(self, request: Request) -> None:
        """Raises LinkedIn's error for a call that does not follow the official client's Rest.li conventions."""
        if not self.enforced:
            return
        from .linkedin import linkedin_error
        contract = self.linkedin
        path = request.raw_path
        versioned = path.startswith(contract["versioned"] + "/")
        if not versioned and not path.startswith(contract["unversioned"] + "/"):
            return  # OAuth and upload hosts: not Rest.li
        for name, value in contract["headers"].items():
            if name.lower() == "linkedin-version":
                if not versioned:
                    continue
                sent = request.header(name)
                if sent and not re.fullmatch(r"\d{6}(\.\d{2})?", sent):
                    raise linkedin_error(400, "ILLEGAL_ARGUMENT", f"{name} must be YYYYMM or YYYYMM.RR, got {sent}")
                continue  # a missing version is the platform's own VERSION_MISSING answer
            sent = request.header(name)
            if versioned and sent != value:
                raise linkedin_error(400, "ILLEGAL_ARGUMENT", f"Header {name} must be {value}, got {sent}")
        declared = request.header("x-restli-method")
        if declared and contract["methods"].get(declared.upper()) != request.method:
            raise linkedin_error(400, "ILLEGAL_ARGUMENT", f"X-RestLi-Method {declared} does not go with HTTP "
                                 f"{request.method}")
        for segment in path.split("/")[3:]:
            key = unquote(segment)
            if key.startswith("urn:") and contract["encode"](key) != segment:
                raise linkedin_error(400, message=f"Syntax exception in path variables: {segment} is not Rest.li 2.0 "
                                     "encoded")


# ----- loading the tables ------------------------------------------------------------------------------------------

@functools.cache
def graph_table(module: str, cls: str, method: str) -> tuple[dict, dict]:
    """`param_types` and `enums` of one SDK edge method, from the request object it builds when asked to wait."""
    adobject = getattr(__import__(f"facebook_business.adobjects.{module}", fromlist=[cls]), cls)
    request = getattr(adobject(fbid="0"), method)(pending=True)
    checker = request._param_checker
    # Some enums are a class's `__dict__` values: keep the enum's own strings (not the module name or attributes).
    enums = {name: {v for v in values if isinstance(v, str) and not v.startswith("facebook_business.")}
             for name, values in checker._enum_data.items()}
    return dict(checker._type_check_info), enums


@functools.cache
def graph_fields(module: str, cls: str) -> set[str]:
    """A node's fields, and its edges (`get_children` → `children`), which `fields=` may expand too."""
    adobject = getattr(__import__(f"facebook_business.adobjects.{module}", fromlist=[cls]), cls)
    fields = {value for name, value in vars(adobject.Field).items() if not name.startswith("_") and isinstance(value, str)}
    return fields | {name[4:] for name in vars(adobject) if name.startswith("get_")}


def graph_version() -> str:
    """The Graph API version the installed SDK targets (`v26.0` for 26.0.x)."""
    from facebook_business.apiconfig import ads_api_config
    return ads_api_config["API_VERSION"]


@functools.cache
def youtube_discovery() -> dict:
    documents = importlib.resources.files("googleapiclient") / "discovery_cache" / "documents"
    return json.loads((documents / "youtube.v3.json").read_text())


@functools.cache
def linkedin_contract() -> dict:
    from linkedin_api.clients.restli.utils import api
    from linkedin_api.clients.restli.utils.encoder import encode
    from linkedin_api.common import constants
    headers = api.get_restli_request_headers(restli_method=constants.RESTLI_METHODS.GET, access_token="x",
                                             version_string="000000")
    # What every call carries whatever its content: the protocol version and the API version.
    wanted = {k: v for k, v in headers.items() if k.lower() in ("x-restli-protocol-version", "linkedin-version")}
    return {"versioned": urlsplit(constants.VERSIONED_BASE_URL).path,
            "unversioned": urlsplit(constants.NON_VERSIONED_BASE_URL).path,
            "headers": wanted, "methods": dict(constants.RESTLI_METHOD_TO_HTTP_METHOD_MAP), "encode": encode}


# ----- value checks ------------------------------------------------------------------------------------------------

def field_names(text: str | None) -> list[str]:
    """Top-level names of a `fields=` value (`a,b{c},d.limit(1)`)."""
    names, depth, current = [], 0, ""
    for char in text or "":
        if char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        elif char == "," and depth == 0:
            names.append(current)
            current = ""
            continue
        if depth == 0 and char not in "})":
            current += char
    names.append(current)
    return [n.split(".")[0].strip() for n in names if n.strip()]


def graph_value_problem(wanted: str, value: Any, enums: dict[str, set]) -> str | None:
    """Why `value` (form or query text) is not of the SDK type `wanted`, or None."""
    text = value if isinstance(value, str) else json.dumps(value)
    if wanted.startswith("list<"):
        inner = wanted[5:-1]
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if not isinstance(items, list):
            items = [part for part in text.split(",") if part]
        for item in items:
            problem = graph_value_problem(inner, item if isinstance(item, str) else json.dumps(item), enums)
            if problem:
                return problem
        return None
    if wanted in enums:  # Graph compares enum values without regard to case
        allowed = {v.lower() for v in enums[wanted]}
        return None if text.lower() in allowed else f"must be one of {{{', '.join(sorted(enums[wanted]))}}}"
    if wanted == "bool":
        return None if text.lower() in ("true", "false", "1", "0") else "must be a boolean"
    if wanted in ("int", "unsigned int"):
        if not re.fullmatch(r"-?\d+", text) or (wanted == "unsigned int" and text.startswith("-")):
            return "must be a non-negative integer" if wanted == "unsigned int" else "must be an integer"
        return None
    if wanted == "float":
        try:
            float(text)
        except ValueError:
            return "must be a number"
        return None
    if wanted in ("Object", "map"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return "must be a JSON object"
        return None if isinstance(parsed, dict) else "must be a JSON object"
    return None  # string, datetime, file and node references take any text


def json_value_problem(spec: dict, value: Any, from_query: bool = False) -> str | None:
    """Why `value` does not fit a discovery parameter or property of a simple type, or None."""
    kind = spec.get("type")
    if from_query and kind == "boolean":
        return None if value in ("true", "false") else "must be true or false"
    if from_query and kind == "integer":
        if not re.fullmatch(r"-?\d+", str(value)):
            return "must be an integer"
        number = int(value)
        if "minimum" in spec and number < int(spec["minimum"]) or "maximum" in spec and number > int(spec["maximum"]):
            return f"must be between {spec.get('minimum')} and {spec.get('maximum')}"
        return None
    if "enum" in spec:
        values = value.split(",") if from_query and spec.get("repeated") else [value]
        for item in values:
            if item not in spec["enum"]:
                return f"{item!r} is not one of {', '.join(spec['enum'])}"
    return None


def schema_problem(schemas: dict, schema: dict, value: Any, where: str) -> str | None:
    """Why a JSON body does not fit a discovery schema: unknown property, wrong type or value not in the enum."""
    if "$ref" in schema:
        return schema_problem(schemas, schemas[schema["$ref"]], value, where)
    kind = schema.get("type")
    python_types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    if kind in python_types:
        ok = isinstance(value, python_types[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        if kind == "string" and schema.get("format") in ("int64", "uint64") and isinstance(value, int):
            ok = True
        if not ok:
            return f"{where} must be of type {kind}"
    if kind == "string" and "enum" in schema and value not in schema["enum"]:
        return f"{where} value {value!r} is not one of {', '.join(schema['enum'])}"
    if kind == "array":
        for index, item in enumerate(value):
            problem = schema_problem(schemas, schema.get("items", {}), item, f"{where}[{index}]")
            if problem:
                return problem
    if kind == "object":
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if properties is not None and name in properties:
                problem = schema_problem(schemas, properties[name], item, f"{where}.{name}")
            elif extra is not None:
                problem = schema_problem(schemas, extra, item, f"{where}.{name}")
            elif properties is not None:
                problem = f"{where} has no field {name}"
            else:
                problem = None
            if problem:
                return problem
    return None
