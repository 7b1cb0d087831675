"""Typed results, events and credential records, converted from and to the camelCase wire form.

Each wire-facing dataclass keeps the object it came from in ``raw``, so fields the sidecar adds later are reachable
before this package names them. Fields every answer carries are plain types (an answer without one raises
:class:`~social_sidecar.errors.ProtocolError`); optional ones are ``None`` when the sidecar omits them.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping, TypeVar, Union

from .errors import CredentialError, ProtocolError

__all__ = [
    "JSONValue",
    "to_camel",
    "wire_time",
    "PostResult",
    "ValidationResult",
    "RefreshResult",
    "DeleteResult",
    "InsightsResult",
    "StatusResult",
    "Health",
    "ServerInfo",
    "InitializeResult",
    "PrometheusExposition",
    "OperationStats",
    "PlatformStats",
    "MetricsSnapshot",
    "PlatformBreaker",
    "BreakerStatus",
    "BreakerReset",
    "Progress",
    "MetricEvent",
    "BreakerChange",
    "SidecarLog",
    "Event",
    "CredentialRequest",
    "Credentials",
    "CredentialUpdate",
]

#: A JSON value as it travels: what :meth:`Sidecar.call` answers before any typing.
JSONValue = Union[None, bool, int, float, str, list["JSONValue"], dict[str, "JSONValue"]]

#: Timestamps travel as whatever the sidecar sends (ISO 8601 text or epoch numbers); datetimes are accepted outbound.
WireTime = Union[str, int, float, None]


def to_camel(name: str) -> str:
    """``post_id`` -> ``postId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_time(value: Any) -> Any:
    """Datetimes become ISO 8601 UTC text (naive ones are taken as UTC); everything else passes through."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return value


T = TypeVar("T", bound="_Wire")


class _Wire:
    """Mixin: build a dataclass from a camelCase wire object, keeping the original in ``raw``."""

    #: Field name -> wire key, where the camelCase rule does not fit.
    _wire_names: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_wire(cls: type[T], obj: object) -> T:
        """Build from a wire object; raises :class:`ProtocolError` when a field every answer carries is missing."""
        source: Mapping[str, Any] = obj if isinstance(obj, Mapping) else {}
        values: dict[str, Any] = {}
        for name, key, required in _wire_keys(cls):
            if key in source and (required or source[key] is not None):
                values[name] = source[key]
            elif required:
                raise ProtocolError(f"the sidecar's {cls.__name__} answer has no `{key}`")
        values["raw"] = dict(source)
        return cls(**values)


_WIRE_KEYS: dict[type, tuple[tuple[str, str, bool], ...]] = {}


def _wire_keys(cls: type[_Wire]) -> tuple[tuple[str, str, bool], ...]:
    """(field name, wire key, required) of each field but ``raw``: worked out once per class, not on every answer."""
    keys = _WIRE_KEYS.get(cls)
    if keys is None:
        keys = _WIRE_KEYS[cls] = _field_keys(cls)
    return keys


def _field_keys(cls: type[_Wire]) -> tuple[tuple[str, str, bool], ...]:
    return tuple(
        (
            f.name,
            cls._wire_names.get(f.name, to_camel(f.name)),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name != "raw"
    )


@dataclass(frozen=True)
class PostResult(_Wire):
    """What a publish answered. ``post_url`` is None where the platform has no public URL (WhatsApp)."""

    platform: str
    post_id: str
    post_url: str | None
    #: ``published``, ``processing`` (e.g. a video still transcoding), ``accepted`` (WhatsApp) or ``scheduled``
    #: (``publish_at`` on Facebook and YouTube).
    status: str
    #: Requests sent to the platform, the first one included.
    attempts: int
    duration_ms: int
    #: True when the answer came from the idempotency store and the platform was not called again.
    replayed: bool
    #: Time the call spent waiting on rate limits (the sidecar's gates and platform-requested waits).
    waited_ms: int = 0
    #: Who can see the post as the platform set it, read back after the publish (YouTube); None where not reported.
    privacy_status: str | None = None
    #: What the platform did differently from what was asked (a public upload YouTube locked to private).
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ValidationResult(_Wire):
    """Whether a credential can post for its account, and if not, what is missing."""

    valid: bool
    account_id: str
    account_name: str | None = None
    scopes: list[str] | None = None
    missing: list[str] | None = None
    expires_at: WireTime = None
    problems: list[str] | None = None
    #: ``{"used", "total", "windowSeconds"}`` where the platform has a publishing allowance (Instagram).
    quota: dict[str, Any] | None = None
    #: What works now but will not for long (a LinkedIn version close to its sunset).
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RefreshResult(_Wire):
    """Outcome of a forced token refresh; the new token itself went to ``on_credentials_updated``."""

    refreshed: bool
    expires_at: WireTime = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class DeleteResult(_Wire):
    """What ``<platform>.delete`` answered: ``deleted`` False (with ``reason``) when the post was already gone."""

    platform: str
    post_id: str
    deleted: bool
    reason: str | None = None
    attempts: int = 1
    duration_ms: int = 0
    #: True when the answer came from the idempotency store and the platform was not called again.
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class InsightsResult(_Wire):
    """What ``<platform>.insights`` answered. ``metrics`` holds, of ``views``, ``impressions``, ``reach``, ``likes``,
    ``comments``, ``shares``, ``saves``, ``clicks``, those the platform reports (PROTOCOL.md §3 maps its names)."""

    _wire_names: ClassVar[Mapping[str, str]] = {"platform_answer": "raw"}

    platform: str
    post_id: str
    fetched_at: str
    metrics: dict[str, int]
    #: The platform's own answer, as it came (the wire's ``raw``; this object's ``raw`` is the whole answer).
    platform_answer: Any = None
    attempts: int = 1
    duration_ms: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class StatusResult(_Wire):
    """What ``<platform>.status`` answered: ``state`` is ``processing``, ``published``, ``scheduled``, ``failed`` or
    ``deleted``."""

    platform: str
    post_id: str
    state: str
    detail: str | None = None
    post_url: str | None = None
    attempts: int = 1
    duration_ms: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Health(_Wire):
    """The sidecar's cheap liveness answer; ``status`` is ``ok``, ``degraded`` (no HTTP transport can run: see
    ``raw["http"]``) or ``shutting_down``."""

    status: str
    version: str
    uptime_ms: int
    in_flight: int
    #: Configuration that works now but will not for long (a LinkedIn version more than 10 months old).
    warnings: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ServerInfo(_Wire):
    """Name and version of the running sidecar binary."""

    name: str
    version: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class InitializeResult:
    """The ``initialize`` answer: who is running and which ``platform -> operations`` this build serves."""

    server_info: ServerInfo
    protocol_version: str
    capabilities: dict[str, tuple[str, ...]]
    #: Query methods this build serves beyond the platform ones (``health``, ``metrics/snapshot``, ...).
    methods: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, obj: Any) -> "InitializeResult":
        source: Mapping[str, Any] = obj if isinstance(obj, Mapping) else {}
        caps = source.get("capabilities")
        platforms = caps.get("platforms") if isinstance(caps, Mapping) else None
        capabilities: dict[str, tuple[str, ...]] = {}
        if isinstance(platforms, Mapping):
            for name, ops in platforms.items():
                if isinstance(ops, (list, tuple)):
                    capabilities[str(name)] = tuple(str(op) for op in ops)
        version = source.get("protocolVersion")
        methods = caps.get("methods") if isinstance(caps, Mapping) else None
        return cls(
            server_info=ServerInfo.from_wire(source.get("serverInfo")),
            protocol_version=str(version or ""),
            capabilities=capabilities,
            methods=tuple(str(m) for m in methods) if isinstance(methods, (list, tuple)) else (),
            raw=dict(source),
        )

    def supports(self, platform: str, operation: str) -> bool:
        """True when this build serves ``platform/operation`` (``whatsapp``/``send``, ``facebook``/``post``, ...)."""
        return operation in self.capabilities.get(platform, ())


@dataclass(frozen=True)
class PrometheusExposition(_Wire):
    """Prometheus text exposition, ready to serve as is with its content type."""

    content_type: str
    text: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class OperationStats(_Wire):
    """One platform operation's counters in ``metrics/snapshot``. Rates are fractions (0...1); rates and durations
    are None while ``total`` is 0. ``total`` excludes replays."""

    total: int
    success: int
    failure: int
    retries: int
    not_permitted: int
    rate_limit_waits: int
    replayed: int
    success_rate: float | None = None
    failure_rate: float | None = None
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    #: Failures by error kind (``{"rate_limited": 2}``).
    errors: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PlatformStats:
    """One platform in ``metrics/snapshot``: its operations (``post``, ``send``, ``validate``, ``refresh``) and how
    often its breaker opened."""

    operations: dict[str, OperationStats]
    breaker_opens: int


@dataclass(frozen=True)
class MetricsSnapshot:
    """The ``metrics/snapshot`` answer: counters per platform and operation since ``since``."""

    platforms: dict[str, PlatformStats]
    since: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, obj: object) -> "MetricsSnapshot":
        source: Mapping[str, Any] = obj if isinstance(obj, Mapping) else {}
        platforms: dict[str, PlatformStats] = {}
        raw_platforms = source.get("platforms")
        for name, entry in (raw_platforms.items() if isinstance(raw_platforms, Mapping) else ()):
            if not isinstance(entry, Mapping):
                continue
            operations = {
                str(op): OperationStats.from_wire(stats) for op, stats in entry.items() if isinstance(stats, Mapping)
            }
            opens = entry.get("breakerOpens")
            platforms[str(name)] = PlatformStats(operations, opens if isinstance(opens, int) else 0)
        return cls(platforms=platforms, since=str(source.get("since", "")), raw=dict(source))


@dataclass(frozen=True)
class PlatformBreaker(_Wire):
    """One platform's circuit breaker: ``state`` is ``CLOSED``, ``OPEN`` or ``HALF_OPEN``."""

    state: str
    consecutive_failures: int
    opens: int
    #: Milliseconds until an OPEN breaker lets a probe through (None unless OPEN).
    retry_after_ms: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BreakerStatus:
    """The ``breaker/status`` answer: whether breakers are enabled, and each platform's."""

    enabled: bool
    platforms: dict[str, PlatformBreaker]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, obj: object) -> "BreakerStatus":
        source: Mapping[str, Any] = obj if isinstance(obj, Mapping) else {}
        raw_platforms = source.get("platforms")
        platforms = {
            str(name): PlatformBreaker.from_wire(entry)
            for name, entry in (raw_platforms.items() if isinstance(raw_platforms, Mapping) else ())
        }
        return cls(enabled=source.get("enabled") is True, platforms=platforms, raw=dict(source))


@dataclass(frozen=True)
class BreakerReset(_Wire):
    """The ``breaker/reset`` answer: the platform whose breaker is now ``CLOSED``."""

    platform: str
    state: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Progress(_Wire):
    """One ``$/progress`` report of a long call (an upload, a processing wait), as LSP's work-done progress.

    ``kind`` is ``begin`` (once, with ``title``), ``report`` (any number) or ``end`` (once, last). ``percentage`` and
    the byte counts never go down.
    """

    kind: Literal["begin", "report", "end"]
    title: str | None = None
    message: str | None = None
    percentage: int | None = None
    bytes_sent: int | None = None
    bytes_total: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class MetricEvent(_Wire):
    """One ``metrics/event``: sent after every platform operation. ``event_id`` is unique: dedupe billing on it."""

    event_id: str
    timestamp: str
    customer_id: str
    platform: str
    operation: str
    success: bool
    #: Requests sent to the platform (0 for a replay or a call refused before any request).
    attempts: int
    #: Wall time of the call in milliseconds, with a fraction.
    duration_ms: float
    agent_id: str | None = None
    correlation_id: str | None = None
    post_id: str | None = None
    post_url: str | None = None
    error_kind: str | None = None
    #: The JSON-RPC error code of a failure (``-31003``).
    error_code: int | None = None
    error_message: str | None = None
    http_status: int | None = None
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BreakerChange(_Wire):
    """One ``breaker/stateChanged``: a platform's circuit moved between ``CLOSED``, ``OPEN`` and ``HALF_OPEN``."""

    _wire_names: ClassVar[Mapping[str, str]] = {"from_state": "from", "to_state": "to"}

    platform: str
    from_state: str
    to_state: str
    #: When it changed (RFC 3339 text).
    at: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class SidecarLog(_Wire):
    """One ``$/log`` notification (also forwarded to the ``social_sidecar.sidecar`` logger)."""

    level: str | None = None
    message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


#: What :meth:`Sidecar.events` yields.
Event = Union[MetricEvent, BreakerChange]


@dataclass(frozen=True)
class CredentialRequest(_Wire):
    """What the sidecar asks the resolver for: the credential behind ``credential_ref`` for ``customer_id``."""

    platform: str
    credential_ref: str
    customer_id: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Credentials:
    """What a resolver returns (a mapping with the same keys, snake_case or camelCase, works too).

    ``account_id`` is the page id, Instagram user id, organization URN, phone number id or channel id.
    ``expires_at`` is RFC 3339 text, Unix seconds or a datetime. ``variant="instagram_login"`` marks a token of the
    Instagram API with Instagram Login (refreshable). Secrets are left out of ``repr`` so that logging a
    ``Credentials`` never leaks a token.
    """

    access_token: str = field(repr=False)
    account_id: str
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: Any = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    variant: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"accessToken": self.access_token, "accountId": self.account_id}
        for name in ("refresh_token", "expires_at", "client_id", "client_secret", "variant"):
            value = getattr(self, name)
            if value is not None:
                wire[to_camel(name)] = wire_time(value)
        return wire

    @staticmethod
    def wire_from(value: Any) -> dict[str, Any]:
        """The wire object for whatever a resolver returned: a :class:`Credentials` or a mapping; raises
        :class:`~social_sidecar.errors.CredentialError` (a message safe to show) for anything else."""
        if isinstance(value, Credentials):
            return value.to_wire()
        if isinstance(value, Mapping):
            wire = {to_camel(str(k)): wire_time(v) for k, v in value.items() if v is not None}
            if not isinstance(wire.get("accessToken"), str) or not wire.get("accountId"):
                raise CredentialError("the resolved credentials need access_token and account_id")
            return wire
        raise CredentialError(f"the resolver returned {type(value).__name__}, not Credentials or a mapping")


@dataclass(frozen=True)
class CredentialUpdate(_Wire):
    """A token the sidecar refreshed: persist it (the refresh token may have rotated) before returning."""

    platform: str
    credential_ref: str
    customer_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    account_id: str | None = None
    expires_at: WireTime = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
