"""State shared by every platform fake: the clock, the token registry, the request and publish
logs, fault-scripting rules, and the tunable settings."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .wire import Request, Response

DAY = 86400.0


class Reply(Exception):
    """Raised anywhere inside a handler to answer at once with `response` (usually an API error)."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response
        self.account: str | None = None  # Graph: the object whose usage headers the answer carries


class Clock:
    """Wall time plus a scriptable offset; `freeze` stops it so windows and expiries can be stepped."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.frozen_at: float | None = None

    def now(self) -> float:
        return self.frozen_at if self.frozen_at is not None else time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if self.frozen_at is not None:
            self.frozen_at += seconds
        else:
            self.offset += seconds

    def set(self, epoch: float) -> None:
        if self.frozen_at is not None:
            self.frozen_at = epoch
        else:
            self.offset = epoch - time.time()

    def freeze(self, frozen: bool) -> None:
        if frozen and self.frozen_at is None:
            self.frozen_at = self.now()
        elif not frozen and self.frozen_at is not None:
            self.offset = self.frozen_at - time.time()
            self.frozen_at = None

    def state(self) -> dict:
        now = self.now()
        return {"now": now, "iso": iso(now), "offset": now - time.time(), "frozen": self.frozen_at is not None}


def iso(epoch: float, meta: bool = False) -> str:
    """ISO-8601 in UTC; Meta writes `+0000`, Google and LinkedIn write `Z`."""
    stamp = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S+0000") if meta else stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Token:
    """An access or refresh token the fake accepts. Times are epochs on the fake clock."""

    value: str
    platform: str                       # facebook | instagram | whatsapp | youtube | linkedin
    kind: str                           # USER | PAGE | SYSTEM_USER | IG_USER | ACCESS | REFRESH
    subject: str                        # user, page, IG user, Google account or LinkedIn member id
    scopes: list[str] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)   # Meta granular-scope target ids
    issued_at: float = 0.0
    expires_at: float | None = None     # None: never expires
    revoked: bool = False
    error_subcode: int | None = None    # Meta: 458/459/460/464/467/492 make the token invalid
    client_id: str = ""
    user_id: str = ""                   # PAGE tokens: the user who minted it
    authorized_at: float = 0.0          # REFRESH tokens: start of the fixed lifetime (LinkedIn)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def usable(self, now: float) -> bool:
        return not self.revoked and self.error_subcode is None and not self.expired(now)

    def to_json(self) -> dict:
        return asdict(self)


class TokenStore:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tokens: dict[str, Token] = {}
        self.serial = itertools.count(1)
        self.publish_serial = itertools.count(1)

    def add(self, token: Token) -> Token:
        if not token.issued_at:
            token.issued_at = self.clock.now()
        if token.kind == "REFRESH" and not token.authorized_at:
            token.authorized_at = token.issued_at
        self.tokens[token.value] = token
        return token

    def get(self, value: str | None) -> Token | None:
        return self.tokens.get(value) if value else None

    def mint(self, prefix: str, **fields: Any) -> Token:
        """A new token `<prefix>-<n>`: deterministic, and never shaped like a real one."""
        value = f"{prefix}-{next(self.serial)}"
        while value in self.tokens:
            value = f"{prefix}-{next(self.serial)}"
        return self.add(Token(value=value, **fields))

    def apply(self, spec: dict) -> Token:
        """`POST /_fake/tokens` entry: create or update a token; relative times are from now."""
        spec = dict(spec)
        value = spec.pop("token", None) or spec.pop("value", None)
        if not value:
            raise ValueError("token spec needs 'token'")
        now = self.clock.now()
        existing = self.tokens.get(value)
        token = existing or Token(value=value, platform=spec.get("platform", "facebook"),
                                  kind=spec.get("kind", "USER"), subject=spec.get("subject", ""))
        if "expires_in" in spec:
            expires_in = spec.pop("expires_in")
            token.expires_at = None if expires_in is None else now + float(expires_in)
        if spec.pop("expire", False) or spec.pop("expired", False):
            token.expires_at = now - 1
        if "issued_ago" in spec:
            token.issued_at = now - float(spec.pop("issued_ago"))
        if "delete" in spec and spec.pop("delete"):
            self.tokens.pop(value, None)
            return token
        known = set(Token.__dataclass_fields__)
        for key, val in spec.items():
            if key not in known:
                raise ValueError(f"unknown token field {key!r}")
            setattr(token, key, val)
        return self.add(token)


class Recorder:
    """Every request in arrival order (the oldest dropped beyond `limit`, for long soaks), and every
    object that became visible on a platform (never dropped: soaks reconcile against it)."""

    def __init__(self, clock: Clock, limit: Callable[[], int]) -> None:
        self.clock = clock
        self.limit = limit
        self.requests: list[dict] = []
        self.published: list[dict] = []
        self.serial = itertools.count(1)
        self.publish_serial = itertools.count(1)

    def record(self, request: Request) -> dict:
        if len(self.requests) >= self.limit():
            del self.requests[:max(1, len(self.requests) // 10)]
        entry = {"seq": next(self.serial), "time": self.clock.now(), "platform": request.platform,
                 "method": request.method, "path": request.path, "raw_path": request.raw_path,
                 "query": {k: v if len(v) > 1 else v[0] for k, v in request.query_lists.items()},
                 "headers": dict(request.headers), **request.recorded_body(),
                 "status": None, "outcome": "pending", "rule": None}
        self.requests.append(entry)
        return entry

    def publish(self, platform: str, kind: str, object_id: str, account: str, text: str | None = None,
                url: str | None = None, **extra: Any) -> dict:
        entry = {"seq": next(self.publish_serial), "time": self.clock.now(), "platform": platform, "kind": kind,
                 "id": object_id, "account": account, "text": text, "url": url, **extra}
        self.published.append(entry)
        return entry

    def query(self, entries: list[dict], platform: str | None = None, **filters: str | None) -> list[dict]:
        out = entries
        if platform:
            wanted = set(platform.split(","))
            out = [e for e in out if e["platform"] in wanted]
        for key, value in filters.items():
            if value is None:
                continue
            if key == "path":
                out = [e for e in out if re.search(value, e["path"])]
            elif key == "since":
                out = [e for e in out if e["seq"] > int(value)]
            else:
                out = [e for e in out if str(e.get(key, "")).upper() == str(value).upper()]
        return out


ACTIONS = {"respond", "error", "hang", "drop", "drop_after_processing", "malformed", "truncated", "delay"}


class Rule:
    """One fault-script rule: which requests it matches, when it fires, and what it does."""

    def __init__(self, spec: dict, index: int, seed: int) -> None:
        if not isinstance(spec, dict):
            raise ValueError("each rule must be an object")
        self.spec = spec
        self.action = spec.get("action", "respond")
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {sorted(ACTIONS)}")
        match = spec.get("match", spec)
        self.platform = _as_set(match.get("platform"))
        self.method = {m.upper() for m in _as_set(match.get("method")) or ()} or None
        self.path = re.compile(match["path"]) if match.get("path") else None
        self.query = re.compile(match["query"]) if match.get("query") else None
        self.body = re.compile(match["request_body"]) if match.get("request_body") else None
        self.header = {k.lower(): re.compile(v) for k, v in (match.get("request_header") or {}).items()}
        nth = spec.get("nth")
        self.nth = set([nth] if isinstance(nth, int) else nth or [])
        self.every = spec.get("every")
        self.times = spec.get("times")
        self.probability = spec.get("probability")
        self.rng = random.Random(f"{spec.get('seed', seed)}:{index}")
        self.matched = 0
        self.fired = 0
        self.index = index

    def matches(self, request: Request) -> bool:
        if self.platform and request.platform not in self.platform:
            return False
        if self.method and request.method not in self.method:
            return False
        if self.path and not self.path.search(request.path):
            return False
        if self.query and not self.query.search(request.raw_query):
            return False
        if self.body and not self.body.search(request.text()):
            return False
        return all(p.search(request.header(k) or "") for k, p in self.header.items())

    def fires(self) -> bool:
        """Called for the n-th matching request (n = self.matched, already counted)."""
        if self.times is not None and self.fired >= self.times:
            return False
        if self.nth and self.matched not in self.nth:
            return False
        if self.every and self.matched % int(self.every):
            return False
        if self.probability is not None and self.rng.random() >= float(self.probability):
            return False
        self.fired += 1
        return True

    def describe(self) -> dict:
        return {"index": self.index, "matched": self.matched, "fired": self.fired, **self.spec}


class Script:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rules: list[Rule] = []

    def load(self, specs: list[dict], append: bool = False) -> None:
        if isinstance(specs, dict):
            specs = [specs]
        start = len(self.rules) if append else 0
        rules = [Rule(spec, start + i, self.seed) for i, spec in enumerate(specs)]
        self.rules = (self.rules if append else []) + rules

    def pick(self, request: Request) -> Rule | None:
        """Every matching rule counts the request; the first one that fires wins."""
        chosen = None
        for rule in self.rules:
            if rule.matches(request):
                rule.matched += 1
                if chosen is None and rule.fires():
                    chosen = rule
        return chosen


def _as_set(value: Any) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def default_settings() -> dict:
    """Knobs tests may change with `POST /_fake/config` (deep-merged). Documented in README.md."""
    return {
        "recording": {"max_requests": 100000},
        "graph": {"version_header": "v23.0", "require_appsecret_proof": False},
        "contracts": {"enforce": True},
        "facebook": {"duplicate_window_seconds": 300, "reels_per_day": 30, "video_polls_until_ready": 1,
                     "video_chunk_bytes": 4194304},
        "instagram": {"polls_until_finished": 1, "quota_total": 50, "quota_duration": 86400,
                      "container_ttl_seconds": 86400, "refresh_min_age_seconds": 86400,
                      "long_lived_ttl_seconds": 5183944},
        "whatsapp": {"pair_rate_seconds": 6.0, "throughput_per_second": 80, "window_seconds": 86400,
                     "window_open_for_all": False},
        "youtube": {"quota_units_per_day": 10000, "list_cost": 1, "delete_cost": 50, "insert_cost": 1600,
                    "insert_calls_per_day": 100, "session_ttl_seconds": 7 * 86400, "chunk_multiple": 262144,
                    "access_token_ttl": 3599, "rotate_refresh_tokens": False, "processing_polls": 0,
                    "unaudited_project": False},
        "linkedin": {"active_versions": None, "duplicate_window_seconds": 3600, "member_daily_limit": 150,
                     "app_daily_limit": 100000, "upload_url_ttl_seconds": 3600, "image_processing_polls": 0, "video_part_bytes": 4194304,
                     "access_token_ttl": 5183999, "refresh_token_ttl": 31536000,
                     "rotate_refresh_tokens": True, "invalid_refresh_error": "invalid_request"},
    }


def deep_merge(base: dict, changes: dict, path: str = "") -> None:
    for key, value in changes.items():
        if key not in base:
            raise ValueError(f"unknown setting {path + key!r}")
        if isinstance(base[key], dict) and isinstance(value, dict):
            deep_merge(base[key], value, f"{path}{key}.")
        else:
            base[key] = copy.deepcopy(value)


class Ids:
    """Deterministic id sequences, one per name, so a seeded run always hands out the same ids."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.counters: dict[str, Callable[[], int]] = {}

    def next(self, name: str, start: int = 1) -> int:
        if name not in self.counters:
            self.counters[name] = itertools.count(start).__next__
        return self.counters[name]()
