'use strict';
// One error class per `data.kind` (table: protocol/error-kinds.json, which test/errors.test.js checks this against),
// so callers can `instanceof RateLimited`.

class SidecarError extends Error {
  constructor(message, { code = null, kind = null, data = null, method = null } = {}) {
    super(method ? `${method}: ${message}` : message);
    this.name = new.target.name;
    this.code = code ?? new.target.defaultCode ?? null;
    this.data = data || {};
    this.kind = kind || this.data.kind || new.target.defaultKind || 'unknown';
    this.method = method;
  }

  /** Whether the same call may succeed later (data.retryable when sent, else the kind's default). */
  get retryable() {
    return typeof this.data.retryable === 'boolean' ? this.data.retryable : Boolean(this.constructor.defaultRetryable);
  }

  /** Milliseconds to wait before trying again, when the sidecar knows. */
  get retryAfterMs() {
    return typeof this.data.retryAfterMs === 'number' ? this.data.retryAfterMs : null;
  }
}

const classes = {};
function define(name, code, kind, retryable) {
  const cls = { [name]: class extends SidecarError {} }[name];
  cls.defaultCode = code;
  cls.defaultKind = kind;
  cls.defaultRetryable = retryable;
  classes[name] = cls;
  return cls;
}

const TABLE = [
  ['PermanentError', -31001, 'permanent', false],
  ['TransientExhausted', -31002, 'transient_exhausted', true],
  ['RateLimited', -31003, 'rate_limited', true],
  ['AuthFailed', -31004, 'auth_failed', false],
  ['CircuitOpen', -31005, 'circuit_open', true],
  ['CredentialUnavailable', -31006, 'credential_unavailable', true],
  ['DeadlineExceeded', -31007, 'deadline_exceeded', true],
  ['OutcomeUnknown', -31008, 'outcome_unknown', false],
  ['QuotaExhausted', -31009, 'quota_exhausted', true],
  ['IdempotencyConflict', -31010, 'idempotency_conflict', true],
  ['IdempotencyMismatch', -31011, 'idempotency_mismatch', false],
  ['Overloaded', -31012, 'overloaded', true],
  ['Unsupported', -31013, 'unsupported', false],
  ['InvalidParams', -32602, 'invalid_params', false],
  ['MethodNotFound', -32601, 'method_not_found', false],
  ['InternalError', -32603, 'internal', false],
  ['ServerNotInitialized', -32002, 'server_not_initialized', true],
  ['RequestCancelled', -32800, 'cancelled', false],
];
const byKind = new Map();
const byCode = new Map();
for (const [name, code, kind, retryable] of TABLE) {
  const cls = define(name, code, kind, retryable);
  byKind.set(kind, cls);
  byCode.set(code, cls);
}
const ProtocolError = define('ProtocolError', -32600, 'invalid_request', false);
byCode.set(-32600, ProtocolError);
byCode.set(-32700, ProtocolError);
const SidecarUnavailable = define('SidecarUnavailable', null, 'unavailable', true);
const SidecarCrashed = { SidecarCrashed: class extends SidecarUnavailable {} }.SidecarCrashed;
SidecarCrashed.defaultKind = 'crashed';
SidecarCrashed.defaultRetryable = true;
classes.SidecarCrashed = SidecarCrashed;
const ShuttingDown = { ShuttingDown: class extends SidecarUnavailable {} }.ShuttingDown;
Object.assign(ShuttingDown, { defaultCode: -32600, defaultKind: 'shutting_down', defaultRetryable: true });
classes.ShuttingDown = ShuttingDown;
byKind.set('shutting_down', ShuttingDown);
const CallTimeout = define('CallTimeout', null, 'client_timeout', true);

/** The error for a JSON-RPC error object: by data.kind when known, else by code, else the base class. */
function errorFromResponse(error, method = null) {
  const data = error && typeof error.data === 'object' && error.data !== null ? error.data : {};
  const code = Number.isInteger(error && error.code) ? error.code : null;
  const cls = byKind.get(data.kind) || byCode.get(code) || SidecarError;
  return new cls((error && error.message) || 'sidecar error', { code, kind: data.kind || null, data, method });
}

/**
 * Throw from `resolveCredentials` to fail the call with this message: it travels to the sidecar and into the caller's
 * CredentialUnavailable, so keep it free of secrets. Anything else a resolver throws is reported by its name only,
 * never its message, and is retryable.
 */
class CredentialError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }

  /** Whether the same call may succeed later. */
  get retryable() { return true; }
}

/** Throw from `resolveCredentials` when the credential does not exist: the call fails, not retryable. */
class CredentialNotFound extends CredentialError {
  get retryable() { return false; }
}

module.exports = {
  SidecarError, errorFromResponse, ...classes, ProtocolError, SidecarUnavailable, SidecarCrashed, CallTimeout,
  CredentialError, CredentialNotFound,
};
