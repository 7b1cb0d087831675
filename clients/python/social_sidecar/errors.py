"""One exception hierarchy for everything a sidecar call can raise.

Every error the sidecar answers becomes a :class:`SidecarError` subclass chosen by ``data.kind`` (or, failing that, the
JSON-RPC code), so callers write ``except RateLimited as e: await asyncio.sleep(e.retry_after)`` instead of decoding
codes. The table of codes and kinds is the sidecar repository's ``protocol/error-kinds.json``; ``tests/test_errors.py``
checks these classes against it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

__all__ = [
    "SidecarError",
    "PermanentError",
    "TransientExhausted",
    "RateLimited",
    "AuthFailed",
    "CircuitOpen",
    "CredentialUnavailable",
    "DeadlineExceeded",
    "OutcomeUnknown",
    "QuotaExhausted",
    "IdempotencyConflict",
    "IdempotencyMismatch",
    "Overloaded",
    "Unsupported",
    "ProtocolError",
    "InvalidParams",
    "MethodNotFound",
    "InternalError",
    "ServerNotInitialized",
    "RequestCancelled",
    "CallTimeout",
    "SidecarUnavailable",
    "SidecarCrashed",
    "ShuttingDown",
    "CredentialError",
    "CredentialNotFound",
    "error_from_response",
]


class SidecarError(Exception):
    """Base of every error raised by this package.

    ``code`` is the JSON-RPC error code (``None`` for errors raised by the client itself), ``kind`` the stable
    ``data.kind`` string, ``data`` the error's ``data`` object as received.
    """

    #: JSON-RPC code of this class (the default when building one locally).
    default_code: int | None = None
    #: ``data.kind`` of this class.
    default_kind: str = "unknown"
    #: Whether trying again later can succeed, when ``data.retryable`` does not say.
    default_retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        kind: str | None = None,
        data: Mapping[str, Any] | None = None,
        method: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.data: dict[str, Any] = dict(data or {})
        self.kind: str = kind or str(self.data.get("kind") or self.default_kind)
        #: The JSON-RPC method that failed, when known.
        self.method = method

    def __str__(self) -> str:
        where = f"{self.method}: " if self.method else ""
        return f"{where}{self.message} [{self.kind}{'' if self.code is None else f', {self.code}'}]"

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (``data.retryable`` when sent, else the kind's default)."""
        value = self.data.get("retryable")
        return value if isinstance(value, bool) else self.default_retryable

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again (from ``data.retryAfterMs``), when the sidecar knows."""
        ms = self.data.get("retryAfterMs")
        return ms / 1000.0 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else None

    @property
    def platform(self) -> str | None:
        """The platform the failure came from, when the sidecar says."""
        value = self.data.get("platform")
        return value if isinstance(value, str) else None

    @property
    def attempts(self) -> int | None:
        """How many requests the sidecar sent to the platform before giving up."""
        value = self.data.get("attempts")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def http_status(self) -> int | None:
        """The platform's last HTTP status, when there was one."""
        value = self.data.get("httpStatus")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def platform_code(self) -> int | str | None:
        """The platform's own error code (Graph ``code`` as an int, Google ``reason`` as text, ...)."""
        value = self.data.get("platformCode")
        return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None

    @property
    def platform_message(self) -> str | None:
        """The platform's own error message."""
        value = self.data.get("platformMessage")
        return value if isinstance(value, str) else None


# Application errors (-31001 ... -31013).


class PermanentError(SidecarError):
    """The platform refused the content or the request (bad params, policy, permission): do not retry as is."""

    default_code, default_kind = -31001, "permanent"


class TransientExhausted(SidecarError):
    """Transient failures used up the attempts (or the retry budget); the platform may recover."""

    default_code, default_kind, default_retryable = -31002, "transient_exhausted", True


class RateLimited(SidecarError):
    """Throttled by the platform or by the sidecar's own rate-limit gates; see :attr:`retry_after`."""

    default_code, default_kind, default_retryable = -31003, "rate_limited", True


class AuthFailed(SidecarError):
    """The token is expired or revoked and could not be refreshed: the account must be reconnected."""

    default_code, default_kind = -31004, "auth_failed"


class CircuitOpen(SidecarError):
    """The platform's circuit breaker is open; :attr:`retry_after` says when the next probe is allowed."""

    default_code, default_kind, default_retryable = -31005, "circuit_open", True


class CredentialUnavailable(SidecarError):
    """The sidecar could not get the credential from this process (the resolver raised or timed out).

    :attr:`retryable` is False when the resolver raised :class:`CredentialNotFound`.
    """

    default_code, default_kind, default_retryable = -31006, "credential_unavailable", True


class DeadlineExceeded(SidecarError):
    """The call's ``timeout`` (the sidecar's ``deadlineMs``) ran out inside the sidecar, which answered in time."""

    default_code, default_kind, default_retryable = -31007, "deadline_exceeded", True


class OutcomeUnknown(SidecarError):
    """A publish may have reached the platform and was not retried, to avoid a duplicate. Check before reposting."""

    default_code, default_kind = -31008, "outcome_unknown"


class QuotaExhausted(SidecarError):
    """A daily quota is spent; :attr:`retry_after` says when it resets."""

    default_code, default_kind, default_retryable = -31009, "quota_exhausted", True


class IdempotencyConflict(SidecarError):
    """A call with the same ``idempotency_key`` is still running."""

    default_code, default_kind, default_retryable = -31010, "idempotency_conflict", True


class IdempotencyMismatch(SidecarError):
    """The ``idempotency_key`` was already used with different params."""

    default_code, default_kind = -31011, "idempotency_mismatch"


class Overloaded(SidecarError):
    """The sidecar already runs ``limits.maxInFlight`` calls."""

    default_code, default_kind, default_retryable = -31012, "overloaded", True


class Unsupported(SidecarError):
    """The platform does not offer this operation for this credential (e.g. refreshing a Meta page token)."""

    default_code, default_kind = -31013, "unsupported"


# JSON-RPC and LSP standard errors.


class ProtocolError(SidecarError):
    """The peer could not parse or accept a message (-32700, -32600): a bug on one side, not a platform failure."""

    default_code, default_kind = -32600, "invalid_request"


class InvalidParams(SidecarError):
    """The params were refused before any platform call (``data.field`` and ``data.reason`` say why)."""

    default_code, default_kind = -32602, "invalid_params"

    @property
    def field(self) -> str | None:
        """The offending param as the wire names it (``items[1].imageUrl``), when the sidecar names one."""
        value = self.data.get("field")
        return value if isinstance(value, str) else None

    @property
    def keyword(self) -> str | None:
        """The offending param as this client's keywords spell it (``items[1].image_url``), when the sidecar names
        one; None for a ``config`` key, which is passed as the wire spells it."""
        field = self.field
        if field is None or field.startswith("config."):
            return None
        return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda match: "_" + match.group(1).lower(), field)

    def __str__(self) -> str:
        keyword = self.keyword
        text = super().__str__()
        return text if keyword is None or keyword == self.field else f"{text} (the keyword `{keyword}`)"


class MethodNotFound(SidecarError):
    """The sidecar binary does not serve this method (check :meth:`Sidecar.supports`)."""

    default_code, default_kind = -32601, "method_not_found"


class InternalError(SidecarError):
    """The sidecar failed unexpectedly while handling the call."""

    default_code, default_kind = -32603, "internal"


class ServerNotInitialized(SidecarError):
    """A request reached the sidecar before ``initialize`` finished."""

    default_code, default_kind, default_retryable = -32002, "server_not_initialized", True


class RequestCancelled(SidecarError):
    """The sidecar stopped the call because it was cancelled (``$/cancelRequest``)."""

    default_code, default_kind = -32800, "cancelled"


# Raised by the client itself.


class CallTimeout(SidecarError, TimeoutError):
    """The per-call ``timeout=`` ran out; the sidecar was told to cancel.

    A publish may or may not have happened: retry with the same ``idempotency_key``.
    """

    default_kind, default_retryable = "client_timeout", True


class SidecarUnavailable(SidecarError):
    """The sidecar process cannot be used: it could not be started or initialised, or the client is closed."""

    default_kind, default_retryable = "unavailable", True


class SidecarCrashed(SidecarUnavailable):
    """The sidecar process died while this call was in flight; the next call starts a fresh process.

    ``outcome_unknown`` is true for publishes, which may have reached the platform before the crash.
    """

    default_kind, default_retryable = "crashed", True

    def __init__(self, message: str, *, outcome_unknown: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.outcome_unknown = outcome_unknown


class ShuttingDown(SidecarUnavailable):
    """The sidecar received ``shutdown`` and refuses new work (-32600, ``data.kind = "shutting_down"``)."""

    default_code, default_kind, default_retryable = -32600, "shutting_down", True


# Raised by a credential resolver (your code), read by the client.


class CredentialError(Exception):
    """Raise from ``resolve_credentials`` to fail the call with this message.

    Its message travels to the sidecar and into the caller's :class:`CredentialUnavailable`, so keep it free of
    secrets. Any other exception a resolver raises is reported by its type name only, never its text, and is retryable.
    """

    #: Whether the same call may succeed later (the sidecar's ``data.retryable``).
    retryable: bool = True


class CredentialNotFound(CredentialError):
    """Raise from ``resolve_credentials`` when the credential does not exist: the call fails, not retryable."""

    retryable = False


_BY_KIND: dict[str, type[SidecarError]] = {"shutting_down": ShuttingDown}
_BY_CODE: dict[int, type[SidecarError]] = {}
for _cls in (
    PermanentError,
    TransientExhausted,
    RateLimited,
    AuthFailed,
    CircuitOpen,
    CredentialUnavailable,
    DeadlineExceeded,
    OutcomeUnknown,
    QuotaExhausted,
    IdempotencyConflict,
    IdempotencyMismatch,
    Overloaded,
    Unsupported,
    InvalidParams,
    MethodNotFound,
    InternalError,
    ServerNotInitialized,
    RequestCancelled,
):
    _BY_KIND[_cls.default_kind] = _cls
    assert _cls.default_code is not None
    _BY_CODE[_cls.default_code] = _cls
_BY_CODE[-32700] = ProtocolError
_BY_CODE[-32600] = ProtocolError


def error_from_response(error: Mapping[str, Any], method: str | None = None) -> SidecarError:
    """Build the exception for a JSON-RPC ``error`` object: by ``data.kind`` when known, else by code."""
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    raw_data = error.get("data")
    data: dict[str, Any] = dict(raw_data) if isinstance(raw_data, Mapping) else {}
    kind = data.get("kind")
    cls = (_BY_KIND.get(kind) if isinstance(kind, str) else None) or (_BY_CODE.get(code) if code is not None else None)
    message = error.get("message")
    text = message if isinstance(message, str) and message else "sidecar error"
    if not isinstance(kind, str):
        kind = "parse_error" if code == -32700 else None
    return (cls or SidecarError)(text, code=code, kind=kind, data=data, method=method)
