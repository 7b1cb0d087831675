// ESM entry point: the CommonJS implementation (lib/index.js), re-exported by name.
import client from './index.js';

export const {
  Sidecar, findBinary, PLATFORMS, Connection, RemoteError, FrameDecoder, FramingError, encodeMessage, SidecarError,
  errorFromResponse, PermanentError, TransientExhausted, RateLimited, AuthFailed, CircuitOpen, CredentialUnavailable,
  DeadlineExceeded, OutcomeUnknown, QuotaExhausted, IdempotencyConflict, IdempotencyMismatch, Overloaded,
  Unsupported, InvalidParams, MethodNotFound, InternalError, ServerNotInitialized, RequestCancelled, ProtocolError,
  SidecarUnavailable, SidecarCrashed, ShuttingDown, CallTimeout, CredentialError, CredentialNotFound,
} = client;
export default client;
