/// How often and how patiently a step is retried.
///
/// The default waits exactly 1, 2, 4, 8 s between 5 attempts (16 s is the cap a sixth attempt would reach). With
/// `jitter`, each wait is drawn uniformly from `0 ... computed` ("full jitter", AWS), which spreads a herd of callers
/// that failed together.
public struct RetryPolicy: Sendable, Equatable {
  /// Requests per step, the first included; at least 1.
  public var maxAttempts: Int
  public var baseDelay: Duration
  public var maxDelay: Duration
  public var jitter: Bool
  /// The longest a call waits, in total, on rate limits: gates (blocks and pacing) and waits a platform asks for
  /// (`Retry-After`). A wait that would go past it is not started: the call ends at once with `rate_limited` and its
  /// `retryAfter`, so a caller without a deadline hears of a throttle in seconds and can reschedule.
  public var maxWait: Duration

  public init(
    maxAttempts: Int = 5, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(16), jitter: Bool = false,
    maxWait: Duration = .seconds(5)
  ) {
    self.maxAttempts = maxAttempts
    self.baseDelay = baseDelay
    self.maxDelay = maxDelay
    self.jitter = jitter
    self.maxWait = maxWait
  }

  /// One attempt, no retry.
  public static let none = RetryPolicy(maxAttempts: 1)

  /// The wait before retry number `retry` (1 for the first retry): `baseDelay × 2^(retry-1)`, capped at `maxDelay`,
  /// then jittered.
  ///
  /// Computed in floating point and capped before the conversion to integers, so a huge `retry` cannot overflow.
  public func delay(beforeRetry retry: Int, random: some RandomSource) -> Duration {
    let base = Double(max(baseDelay.saturatingNanoseconds, 0))
    let cap = Double(max(maxDelay.saturatingNanoseconds, 0))
    let exponent = min(max(retry, 1) - 1, 1000)
    var nanoseconds = min(base * Double(sign: .plus, exponent: exponent, significand: 1), cap)
    if jitter {
      nanoseconds *= random.nextUnit()
    }
    // Double(Int64.max) rounds up to 2^63, which does not fit: saturate instead.
    return .nanoseconds(nanoseconds >= 0x1p63 ? Int64.max : Int64(nanoseconds))
  }
}
