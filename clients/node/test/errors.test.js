'use strict';
// Error answers become the error a caller would catch, per the error table's one source, protocol/error-kinds.json.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const errors = require('../lib');

const sourcePath = path.join(__dirname, '..', '..', '..', 'protocol', 'error-kinds.json');
const source = JSON.parse(fs.readFileSync(sourcePath, 'utf8'));
const rows = [
  ...source.application.map(({ code, kind, retryable }) => ({ code, kind, retryable })),
  ...source.standard.flatMap(({ code, kinds }) =>
    Object.entries(kinds).map(([kind, retryable]) => ({ code, kind, retryable }))),
];

// The class of each kind: the client's names, which the table does not hold.
const classes = {
  permanent: errors.PermanentError, transient_exhausted: errors.TransientExhausted, rate_limited: errors.RateLimited,
  auth_failed: errors.AuthFailed, circuit_open: errors.CircuitOpen,
  credential_unavailable: errors.CredentialUnavailable, deadline_exceeded: errors.DeadlineExceeded,
  outcome_unknown: errors.OutcomeUnknown,
  quota_exhausted: errors.QuotaExhausted, idempotency_conflict: errors.IdempotencyConflict,
  idempotency_mismatch: errors.IdempotencyMismatch, overloaded: errors.Overloaded, unsupported: errors.Unsupported,
  parse_error: errors.ProtocolError, bad_framing: errors.ProtocolError, invalid_request: errors.ProtocolError,
  frame_too_large: errors.ProtocolError, shutting_down: errors.ShuttingDown, method_not_found: errors.MethodNotFound,
  invalid_params: errors.InvalidParams, internal: errors.InternalError,
  server_not_initialized: errors.ServerNotInitialized, cancelled: errors.RequestCancelled,
};

test('every kind of the table has its error class', () => {
  assert.deepEqual(Object.keys(classes).sort(), rows.map((row) => row.kind).sort());
  for (const cls of Object.values(classes)) assert.equal(typeof cls, 'function');
});

test('each kind maps to its class with the code and retryability of the table', () => {
  for (const { code, kind, retryable } of rows) {
    const error = errors.errorFromResponse({ code, message: 'm', data: { kind } });
    assert.equal(error.constructor, classes[kind], kind);
    assert.deepEqual([error.code, error.kind, error.retryable], [code, kind, retryable], kind);
  }
});

test('a code without a kind maps to the class of one of its kinds', () => {
  for (const { code } of rows) {
    const error = errors.errorFromResponse({ code, message: 'm' });
    assert.ok(rows.some((row) => row.code === code && classes[row.kind] === error.constructor), String(code));
    assert.equal(error.code, code);
  }
});
