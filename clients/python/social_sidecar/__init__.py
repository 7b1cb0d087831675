"""Python client for SocialSidecar, the process that publishes to YouTube, Instagram, Facebook, LinkedIn and WhatsApp.

```python
from social_sidecar import Sidecar, RateLimited, OutcomeUnknown

async with Sidecar(config={...}, resolve_credentials=resolve, on_credentials_updated=save, on_event=record) as sidecar:
    result = await sidecar.facebook.post(credential_ref="CRED-fb-001", customer_id="CUST-123",
                                         agent_id="AGENT-456", text="Hello", idempotency_key="post-789")
```
"""

from ._version import __version__
from .client import EventStream, Sidecar, find_binary
from .connection import Connection, RemoteError
from .errors import (
    AuthFailed,
    CallTimeout,
    CircuitOpen,
    CredentialUnavailable,
    DeadlineExceeded,
    IdempotencyConflict,
    IdempotencyMismatch,
    InternalError,
    InvalidParams,
    MethodNotFound,
    OutcomeUnknown,
    Overloaded,
    PermanentError,
    ProtocolError,
    QuotaExhausted,
    RateLimited,
    RequestCancelled,
    ServerNotInitialized,
    ShuttingDown,
    SidecarCrashed,
    SidecarError,
    SidecarUnavailable,
    TransientExhausted,
    Unsupported,
    error_from_response,
)
from .types import (
    BreakerChange,
    CredentialRequest,
    Credentials,
    CredentialUpdate,
    Event,
    Health,
    InitializeResult,
    MetricEvent,
    PostResult,
    PrometheusExposition,
    RefreshResult,
    ServerInfo,
    ValidationResult,
)

__all__ = [
    "__version__",
    "Sidecar",
    "EventStream",
    "find_binary",
    "Connection",
    "RemoteError",
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
    "error_from_response",
    "PostResult",
    "ValidationResult",
    "RefreshResult",
    "Health",
    "ServerInfo",
    "InitializeResult",
    "PrometheusExposition",
    "MetricEvent",
    "BreakerChange",
    "Event",
    "CredentialRequest",
    "Credentials",
    "CredentialUpdate",
]
