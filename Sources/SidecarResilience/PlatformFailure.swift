#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A platform's own error code: Meta and LinkedIn use numbers (`190`), Google uses reasons (`"quotaExceeded"`).
public enum PlatformCode: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral,
  ExpressibleByStringLiteral
{
  case int(Int)
  case string(String)

  public init(integerLiteral value: Int) { self = .int(value) }
  public init(stringLiteral value: String) { self = .string(value) }

  public var description: String {
    switch self {
    case .int(let value): String(value)
    case .string(let value): value
    }
  }
}

/// What a failed platform call means for the caller.
///
/// Platform code maps every error response or transport failure into one of these; the resilience core decides what to
/// do from ``classification`` and ``requestMayHaveReachedPlatform`` alone, and never looks at HTTP.
public struct PlatformFailure: Error, Sendable, Equatable {
  public enum Classification: Sendable, Equatable {
    /// Worth retrying: 5xx, timeouts, connection errors, codes the platform marks transient.
    case transient
    /// Throttled; the request was rejected, so a retry after ``PlatformFailure/retryAfter`` is safe even for a publish.
    case rateLimited(scope: RateLimitScope)
    /// The token is expired or invalid; `refreshable` says whether a refresh may cure it.
    case auth(refreshable: Bool)
    /// The request itself is wrong (params, policy, permission); retrying cannot help.
    case permanent
    /// The platform may or may not have acted on the request.
    case outcomeUnknown
    /// A daily quota is spent until ``PlatformFailure/resetsAt``.
    case quotaExhausted
  }

  /// Who a rate limit applies to, which decides the gate that remembers it.
  public enum RateLimitScope: Sendable, Equatable {
    /// The whole app (Meta `X-App-Usage`, Google project limits): gate `"<platform>:app"`.
    case app
    /// One account, page, phone number or recipient: the first non-app gate key of the call.
    case account
  }

  public var classification: Classification
  /// True for a rate limit of any scope.
  public var isRateLimited: Bool {
    if case .rateLimited = classification { return true }
    return false
  }
  /// A sentence a person understands; never contains a secret.
  public var message: String
  public var httpStatus: Int?
  public var platformCode: PlatformCode?
  public var platformSubcode: Int?
  public var platformMessage: String?
  /// How long to wait before retrying: `Retry-After`, or a platform hint such as Meta's
  /// `estimated_time_to_regain_access`.
  public var retryAfter: Duration?
  /// When a spent quota becomes available again.
  public var resetsAt: Date?
  /// True when the platform may have received (and acted on) the request: a timeout after the body was sent, a reset
  /// mid-response, a 5xx on a publish. False when the failure proves the request was rejected (connection refused, 503
  /// before processing), which lets even a publish be retried.
  public var requestMayHaveReachedPlatform: Bool

  public init(
    _ classification: Classification,
    message: String,
    httpStatus: Int? = nil,
    platformCode: PlatformCode? = nil,
    platformSubcode: Int? = nil,
    platformMessage: String? = nil,
    retryAfter: Duration? = nil,
    resetsAt: Date? = nil,
    requestMayHaveReachedPlatform: Bool = false
  ) {
    self.classification = classification
    self.message = message
    self.httpStatus = httpStatus
    self.platformCode = platformCode
    self.platformSubcode = platformSubcode
    self.platformMessage = platformMessage
    self.retryAfter = retryAfter
    self.resetsAt = resetsAt
    self.requestMayHaveReachedPlatform = requestMayHaveReachedPlatform
  }
}

extension PlatformFailure {
  /// Whether this failure is evidence that the platform itself is unhealthy, which is all the circuit breaker counts.
  ///
  /// Transient failures count. An unknown outcome counts when it came from the transport (no HTTP status) or from a
  /// 5xx. Permanent errors (the caller's input), auth errors, rate limits (they have gates) and spent quotas do not.
  var countsAgainstBreaker: Bool {
    switch classification {
    case .transient: true
    case .outcomeUnknown: httpStatus.map { $0 >= 500 } ?? true
    case .rateLimited, .auth, .permanent, .quotaExhausted: false
    }
  }
}
