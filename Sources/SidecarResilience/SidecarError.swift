/// A stable error kind: ``rawValue`` is the wire `data.kind`, ``code`` the JSON-RPC error code.
///
/// The table's one source is `protocol/error-kinds.json`: a test checks these kinds against it, as the clients' tests
/// check theirs, and `scripts/tables` renders the docs' tables from it.
public struct ErrorKind: Sendable, Hashable, RawRepresentable, CustomStringConvertible {
  public let rawValue: String
  /// The JSON-RPC error code.
  public let code: Int
  /// Whether the same call may succeed later without a change by the user.
  public let retryable: Bool

  private init(_ rawValue: String, code: Int, retryable: Bool) {
    self.rawValue = rawValue
    self.code = code
    self.retryable = retryable
  }

  /// Looks a kind up in ``all`` (and ``cancelled``); unknown names give `nil`.
  public init?(rawValue: String) {
    guard let kind = (Self.all + [.cancelled]).first(where: { $0.rawValue == rawValue }) else { return nil }
    self = kind
  }

  public static func == (lhs: ErrorKind, rhs: ErrorKind) -> Bool { lhs.rawValue == rhs.rawValue }
  public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
  public var description: String { rawValue }

  /// The platform refused the content or the request (bad params, policy, permission).
  public static let permanent = ErrorKind("permanent", code: -31001, retryable: false)
  /// Transient failures used up the attempts (or the retry budget).
  public static let transientExhausted = ErrorKind("transient_exhausted", code: -31002, retryable: true)
  /// Throttled; `retryAfter` says when to try again.
  public static let rateLimited = ErrorKind("rate_limited", code: -31003, retryable: true)
  /// The token is expired or revoked and could not be refreshed: the account must be reconnected.
  public static let authFailed = ErrorKind("auth_failed", code: -31004, retryable: false)
  /// The platform's breaker is open; `retryAfter` until the next probe.
  public static let circuitOpen = ErrorKind("circuit_open", code: -31005, retryable: true)
  /// The parent could not resolve the credential.
  public static let credentialUnavailable = ErrorKind("credential_unavailable", code: -31006, retryable: true)
  /// The call's deadline ran out (no further wait would fit).
  public static let deadlineExceeded = ErrorKind("deadline_exceeded", code: -31007, retryable: true)
  /// A publish may have reached the platform; it was not retried to avoid a duplicate.
  public static let outcomeUnknown = ErrorKind("outcome_unknown", code: -31008, retryable: false)
  /// A daily quota is spent; `retryAfter` until it resets.
  public static let quotaExhausted = ErrorKind("quota_exhausted", code: -31009, retryable: true)
  /// The same idempotency key is still running.
  public static let idempotencyConflict = ErrorKind("idempotency_conflict", code: -31010, retryable: true)
  /// The idempotency key was used with different params.
  public static let idempotencyMismatch = ErrorKind("idempotency_mismatch", code: -31011, retryable: false)
  /// `limits.maxInFlight` calls are already running.
  public static let overloaded = ErrorKind("overloaded", code: -31012, retryable: true)
  /// The platform does not offer this operation for this credential.
  public static let unsupported = ErrorKind("unsupported", code: -31013, retryable: false)
  /// The task was cancelled (`$/cancelRequest`, shutdown). Not an application error: the server answers it with the
  /// LSP code -32800 "request cancelled" and no `data.kind`. It exists because
  /// ``ResilienceCore/run(platform:step:gates:context:_:)`` throws only ``SidecarError``.
  public static let cancelled = ErrorKind("cancelled", code: -32800, retryable: false)

  /// The application error kinds of the wire table, in code order (``cancelled`` is not one of them).
  public static let all: [ErrorKind] = [
    .permanent, .transientExhausted, .rateLimited, .authFailed, .circuitOpen, .credentialUnavailable,
    .deadlineExceeded, .outcomeUnknown, .quotaExhausted, .idempotencyConflict, .idempotencyMismatch, .overloaded,
    .unsupported,
  ]
}

/// The one error a platform operation ends with; the server maps it to a JSON-RPC error.
///
/// Its fields live in one shared, immutable box (copied on write): every async function that can throw it reserves
/// room for it in its frame, and a 226-byte inline error made each of 10,000 calls in flight several KB larger.
public struct SidecarError: Error, Sendable, CustomStringConvertible {
  private final class Fields: Sendable {
    let kind: ErrorKind
    let message: String
    let platform: String?
    let attempts: Int
    let retryAfter: Duration?
    let failure: PlatformFailure?
    let retryable: Bool?

    init(
      kind: ErrorKind, message: String, platform: String?, attempts: Int, retryAfter: Duration?,
      failure: PlatformFailure?, retryable: Bool?
    ) {
      self.retryable = retryable
      self.kind = kind
      self.message = message
      self.platform = platform
      self.attempts = attempts
      self.retryAfter = retryAfter
      self.failure = failure
    }
  }

  private var fields: Fields

  public init(
    kind: ErrorKind, message: String, platform: String? = nil, attempts: Int = 0, retryAfter: Duration? = nil,
    failure: PlatformFailure? = nil, retryable: Bool? = nil
  ) {
    fields = Fields(
      kind: kind, message: message, platform: platform, attempts: attempts, retryAfter: retryAfter, failure: failure,
      retryable: retryable)
  }

  private mutating func change(
    kind: ErrorKind? = nil, message: String? = nil, platform: String?? = nil, attempts: Int? = nil,
    retryAfter: Duration?? = nil, failure: PlatformFailure?? = nil
  ) {
    fields = Fields(
      kind: kind ?? fields.kind, message: message ?? fields.message, platform: platform ?? fields.platform,
      attempts: attempts ?? fields.attempts, retryAfter: retryAfter ?? fields.retryAfter,
      failure: failure ?? fields.failure, retryable: kind == nil ? fields.retryable : nil)
  }

  public var kind: ErrorKind {
    get { fields.kind }
    set { change(kind: newValue) }
  }
  /// A sentence a person understands; never contains a secret.
  public var message: String {
    get { fields.message }
    set { change(message: newValue) }
  }
  public var platform: String? {
    get { fields.platform }
    set { change(platform: .some(newValue)) }
  }
  /// Tries of the whole call so far (``CallContext/attempts``); 0 when no request was sent.
  public var attempts: Int {
    get { fields.attempts }
    set { change(attempts: newValue) }
  }
  /// When trying again makes sense (`retryAfterMs` on the wire).
  public var retryAfter: Duration? {
    get { fields.retryAfter }
    set { change(retryAfter: .some(newValue)) }
  }
  /// The last underlying platform failure, for `httpStatus`, the platform's code and message, and `resetAt`.
  public var failure: PlatformFailure? {
    get { fields.failure }
    set { change(failure: .some(newValue)) }
  }

  /// Whether the same call may succeed later: the kind's rule, unless this error knows better (a credential the parent
  /// says does not exist is `credential_unavailable` for good).
  public var retryable: Bool { fields.retryable ?? kind.retryable }

  /// True when the call ended because its task was cancelled; answer with -32800.
  public var isCancellation: Bool { kind == .cancelled }

  public var description: String {
    "\(kind)\(platform.map { " (\($0))" } ?? ""): \(message)"
  }
}
