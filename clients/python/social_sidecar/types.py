"""Typed results, events and credential records, converted from and to the camelCase wire form.

Each wire-facing dataclass keeps the object it came from in ``raw``, so fields the sidecar adds later are reachable
before this package names them. Fields the sidecar omits are ``None``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, TypeVar, Union

__all__ = [
    "to_camel",
    "wire_time",
    "PostResult",
    "ValidationResult",
    "RefreshResult",
    "Health",
    "ServerInfo",
    "InitializeResult",
    "PrometheusExposition",
    "MetricEvent",
    "BreakerChange",
    "SidecarLog",
    "Event",
    "CredentialRequest",
    "Credentials",
    "CredentialUpdate",
]

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
    def from_wire(cls: type[T], obj: Any) -> T:
        source: Mapping[str, Any] = obj if isinstance(obj, Mapping) else {}
        values = {name: source[key] for name, key in _wire_keys(cls) if key in source}
        return cls(**values, raw=dict(source))  # type: ignore[call-arg]


@functools.cache
def _wire_keys(cls: type[_Wire]) -> tuple[tuple[str, str], ...]:
    """(field name, wire key) of each field but ``raw``: worked out once per class, not on every answer."""
    return tuple(
        (f.name, cls._wire_names.get(f.name, to_camel(f.name)))
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name != "raw"
    )


@dataclass(frozen=True)
class PostResult(_Wire):
    """What a publish answered. ``post_url`` is None where the platform has no public URL (WhatsApp)."""

    platform: str | None = None
    post_id: str | None = None
    post_url: str | None = None
    #: ``published``, ``processing`` (e.g. a video still transcoding) or ``accepted`` (WhatsApp).
    status: str | None = None
    attempts: int | None = None
    duration_ms: int | None = None
    #: True when the answer came from the idempotency store and the platform was not called again.
    replayed: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ValidationResult(_Wire):
    """Whether a credential can post for its account, and if not, what is missing."""

    valid: bool = False
    account_id: str | None = None
    account_name: str | None = None
    scopes: list[str] | None = None
    missing: list[str] | None = None
    expires_at: WireTime = None
    problems: list[Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RefreshResult(_Wire):
    """Outcome of a forced token refresh; the new token itself went to ``on_credentials_updated``."""

    refreshed: bool = False
    expires_at: WireTime = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Health(_Wire):
    """The sidecar's cheap liveness answer; ``status`` is ``starting``, ``ok`` or ``shutting_down``."""

    status: str | None = None
    version: str | None = None
    uptime_ms: int | None = None
    in_flight: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ServerInfo(_Wire):
    """Name and version of the running sidecar binary."""

    name: str | None = None
    version: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class InitializeResult:
    """The ``initialize`` answer: who is running and which ``platform -> operations`` this build serves."""

    server_info: ServerInfo
    protocol_version: str | None
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
            protocol_version=None if version is None else str(version),
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

    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    text: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class MetricEvent(_Wire):
    """One ``metrics/event``: sent after every platform operation. ``event_id`` is unique: dedupe billing on it."""

    event_id: str | None = None
    timestamp: WireTime = None
    customer_id: str | None = None
    agent_id: str | None = None
    platform: str | None = None
    operation: str | None = None
    correlation_id: str | None = None
    success: bool | None = None
    post_id: str | None = None
    post_url: str | None = None
    error_kind: str | None = None
    error_code: Any = None
    error_message: str | None = None
    http_status: int | None = None
    attempts: int | None = None
    duration_ms: int | None = None
    replayed: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BreakerChange(_Wire):
    """One ``breaker/stateChanged``: a platform's circuit moved between ``closed``, ``open`` and ``half_open``."""

    _wire_names: ClassVar[Mapping[str, str]] = {"from_state": "from", "to_state": "to"}

    platform: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    at: WireTime = None
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

    platform: str | None = None
    credential_ref: str | None = None
    customer_id: str | None = None
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
        """The wire object for whatever a resolver returned: a :class:`Credentials` or a mapping."""
        if isinstance(value, Credentials):
            return value.to_wire()
        if isinstance(value, Mapping):
            wire = {to_camel(str(k)): wire_time(v) for k, v in value.items() if v is not None}
            if not isinstance(wire.get("accessToken"), str) or not wire.get("accountId"):
                raise ValueError("resolved credentials need access_token and account_id")
            return wire
        raise TypeError(f"resolver returned {type(value).__name__}, expected Credentials or a mapping")


@dataclass(frozen=True)
class CredentialUpdate(_Wire):
    """A token the sidecar refreshed: persist it (the refresh token may have rotated) before returning."""

    platform: str | None = None
    credential_ref: str | None = None
    customer_id: str | None = None
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    account_id: str | None = None
    expires_at: WireTime = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
