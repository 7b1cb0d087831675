"""Error answers become the exception a caller would catch, per the kind/code table in docs/Modules.md."""

from __future__ import annotations

import pytest

import social_sidecar as ss
from social_sidecar import error_from_response

TABLE = [
    ("permanent", -31001, ss.PermanentError, False),
    ("transient_exhausted", -31002, ss.TransientExhausted, True),
    ("rate_limited", -31003, ss.RateLimited, True),
    ("auth_failed", -31004, ss.AuthFailed, False),
    ("circuit_open", -31005, ss.CircuitOpen, True),
    ("credential_unavailable", -31006, ss.CredentialUnavailable, True),
    ("deadline_exceeded", -31007, ss.DeadlineExceeded, True),
    ("outcome_unknown", -31008, ss.OutcomeUnknown, False),
    ("quota_exhausted", -31009, ss.QuotaExhausted, True),
    ("idempotency_conflict", -31010, ss.IdempotencyConflict, True),
    ("idempotency_mismatch", -31011, ss.IdempotencyMismatch, False),
    ("overloaded", -31012, ss.Overloaded, True),
    ("unsupported", -31013, ss.Unsupported, False),
]


@pytest.mark.parametrize("kind,code,cls,retryable", TABLE)
def test_each_kind_and_code_maps_to_its_exception(kind: str, code: int, cls: type, retryable: bool) -> None:
    by_kind = error_from_response({"code": code, "message": "m", "data": {"kind": kind}})
    assert type(by_kind) is cls and by_kind.code == code and by_kind.kind == kind
    assert by_kind.retryable is retryable
    by_code = error_from_response({"code": code, "message": "m"})
    assert type(by_code) is cls and by_code.kind == kind
    assert isinstance(by_code, ss.SidecarError)


@pytest.mark.parametrize(
    "code,cls",
    [
        (-32700, ss.ProtocolError),
        (-32600, ss.ProtocolError),
        (-32601, ss.MethodNotFound),
        (-32602, ss.InvalidParams),
        (-32603, ss.InternalError),
        (-32002, ss.ServerNotInitialized),
        (-32800, ss.RequestCancelled),
    ],
)
def test_standard_codes(code: int, cls: type) -> None:
    assert type(error_from_response({"code": code, "message": "m"})) is cls


def test_kind_wins_over_code_and_unknowns_fall_back_to_the_base() -> None:
    assert type(error_from_response({"code": -31999, "data": {"kind": "outcome_unknown"}})) is ss.OutcomeUnknown
    unknown = error_from_response({"code": -31999, "message": "new", "data": {"kind": "brand_new"}})
    assert type(unknown) is ss.SidecarError and unknown.kind == "brand_new" and unknown.code == -31999
    assert type(error_from_response({"message": "no code"})) is ss.SidecarError


def test_data_fields_are_exposed_in_caller_units() -> None:
    error = error_from_response(
        {
            "code": -31003,
            "message": "Application request limit reached",
            "data": {
                "kind": "rate_limited",
                "platform": "facebook",
                "retryable": True,
                "attempts": 3,
                "httpStatus": 429,
                "platformCode": 4,
                "platformMessage": "(#4) Application request limit reached",
                "retryAfterMs": 1500,
            },
        },
        method="facebook/post",
    )
    assert isinstance(error, ss.RateLimited)
    assert (error.retry_after, error.platform, error.attempts, error.http_status) == (1.5, "facebook", 3, 429)
    assert (error.platform_code, error.platform_message) == (4, "(#4) Application request limit reached")
    assert "facebook/post" in str(error) and "rate_limited" in str(error) and "-31003" in str(error)


def test_retryable_flag_from_the_sidecar_overrides_the_default() -> None:
    assert error_from_response({"code": -31001, "data": {"kind": "permanent", "retryable": True}}).retryable is True
    assert error_from_response({"code": -31002, "data": {"retryable": False}}).retryable is False


def test_invalid_params_names_the_field() -> None:
    error = error_from_response({"code": -32602, "message": "bad", "data": {"kind": "invalid_params", "field": "to"}})
    assert isinstance(error, ss.InvalidParams) and error.field == "to"


def test_invalid_params_name_the_keyword_a_python_caller_wrote() -> None:
    error = ss.error_from_response(
        {"code": -32602, "message": "Invalid params: `items[1].imageUrl` must be https",
         "data": {"kind": "invalid_params", "field": "items[1].imageUrl", "reason": "must be https"}}
    )
    assert isinstance(error, ss.InvalidParams)
    assert (error.field, error.keyword) == ("items[1].imageUrl", "items[1].image_url")
    assert str(error).endswith("(the keyword `items[1].image_url`)")
    plain = ss.error_from_response({"code": -32602, "message": "`to` is required", "data": {"field": "to"}})
    assert "keyword" not in str(plain)
    config = ss.error_from_response({"code": -32602, "message": "bad", "data": {"field": "config.retry.maxWaitMs"}})
    assert isinstance(config, ss.InvalidParams) and config.keyword is None


def test_client_side_errors_are_in_the_same_hierarchy() -> None:
    assert issubclass(ss.SidecarCrashed, ss.SidecarUnavailable)
    assert issubclass(ss.SidecarUnavailable, ss.SidecarError)
    assert issubclass(ss.CallTimeout, TimeoutError) and issubclass(ss.CallTimeout, ss.SidecarError)
    crashed = ss.SidecarCrashed("gone", outcome_unknown=True, method="facebook/post")
    assert crashed.retryable and crashed.outcome_unknown and crashed.code is None and crashed.kind == "crashed"


def test_requests_after_shutdown_are_shutting_down_not_a_protocol_bug() -> None:
    error = error_from_response({"code": -32600, "message": "shutting down", "data": {"kind": "shutting_down"}})
    assert isinstance(error, ss.ShuttingDown) and isinstance(error, ss.SidecarUnavailable) and error.retryable
    assert (
        type(error_from_response({"code": -32600, "message": "bad", "data": {"kind": "bad_framing"}}))
        is ss.ProtocolError
    )
