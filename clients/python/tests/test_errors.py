"""Error answers become the exception a caller would catch, per the error table's one source,
protocol/error-kinds.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import social_sidecar as ss
from social_sidecar import error_from_response

SOURCE = json.loads((Path(__file__).resolve().parents[3] / "protocol" / "error-kinds.json").read_text())
#: (code, kind, retryable) of every row of the table, standard errors included.
ROWS = [(entry["code"], entry["kind"], entry["retryable"]) for entry in SOURCE["application"]] + [
    (entry["code"], kind, retryable) for entry in SOURCE["standard"] for kind, retryable in entry["kinds"].items()
]

#: The exception of each kind: the client's names, which the table does not hold.
CLASSES: dict[str, type[ss.SidecarError]] = {
    "permanent": ss.PermanentError,
    "transient_exhausted": ss.TransientExhausted,
    "rate_limited": ss.RateLimited,
    "auth_failed": ss.AuthFailed,
    "circuit_open": ss.CircuitOpen,
    "credential_unavailable": ss.CredentialUnavailable,
    "deadline_exceeded": ss.DeadlineExceeded,
    "outcome_unknown": ss.OutcomeUnknown,
    "quota_exhausted": ss.QuotaExhausted,
    "idempotency_conflict": ss.IdempotencyConflict,
    "idempotency_mismatch": ss.IdempotencyMismatch,
    "overloaded": ss.Overloaded,
    "unsupported": ss.Unsupported,
    "parse_error": ss.ProtocolError,
    "bad_framing": ss.ProtocolError,
    "invalid_request": ss.ProtocolError,
    "frame_too_large": ss.ProtocolError,
    "shutting_down": ss.ShuttingDown,
    "method_not_found": ss.MethodNotFound,
    "invalid_params": ss.InvalidParams,
    "internal": ss.InternalError,
    "server_not_initialized": ss.ServerNotInitialized,
    "cancelled": ss.RequestCancelled,
}


def test_every_kind_of_the_table_has_its_exception() -> None:
    assert sorted(CLASSES) == sorted(kind for _, kind, _ in ROWS)


@pytest.mark.parametrize("code,kind,retryable", ROWS)
def test_each_kind_maps_to_its_exception_with_the_tables_code_and_retryability(
    code: int, kind: str, retryable: bool
) -> None:
    error = error_from_response({"code": code, "message": "m", "data": {"kind": kind}})
    assert type(error) is CLASSES[kind] and error.code == code and error.kind == kind
    assert error.retryable is retryable


@pytest.mark.parametrize("code", sorted({code for code, _, _ in ROWS}))
def test_a_code_without_a_kind_maps_to_the_exception_of_its_kind(code: int) -> None:
    error = error_from_response({"code": code, "message": "m"})
    assert type(error) in {CLASSES[kind] for row_code, kind, _ in ROWS if row_code == code}
    assert error.code == code


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
