import Synchronization

/// One platform operation as the caller sees it: its whole-call deadline and the counters the server reports.
///
/// A call may run several steps through the core (upload, then publish; or fail on auth, refresh, run again); they all
/// share one context, so the deadline covers everything and `attempts` counts across steps.
public final class CallContext: Sendable {
  private struct Counters {
    var requests = 0
    var publishRequests = 0
    var retries = 0
    var rateLimitWaits = 0
    var waited = Duration.zero
    /// ``requests`` when the publish was announced; nil until then.
    var requestsWhenAnnounced: Int?
  }

  /// No wait, and no new attempt, starts at or after this instant. Nil means no deadline.
  public let deadline: ClockInstant?
  /// Where the call's `$/progress` reports go, when the caller asked for them (`workDoneToken`).
  public let progress: WorkDoneProgress?
  private let counters = Mutex(Counters())
  /// Runs once, before the first publish-step request may go out (the server records "sending" in the shared store);
  /// if it throws, nothing is sent and the call ends with its error.
  private let beforeFirstPublish: (@Sendable () async throws(SidecarError) -> Void)?

  public init(
    deadline: ClockInstant?, progress: WorkDoneProgress? = nil,
    beforeFirstPublish: (@Sendable () async throws(SidecarError) -> Void)? = nil
  ) {
    self.deadline = deadline
    self.progress = progress
    self.beforeFirstPublish = beforeFirstPublish
  }

  /// Runs ``beforeFirstPublish`` the first time it is called: the core calls it before it admits a publish-step
  /// request, and a client whose visible publish runs as idempotent steps (a resumable upload's last chunk creates the
  /// video) calls it before the first of them.
  public func announcePublish() async throws(SidecarError) {
    let first = counters.withLock { counters in
      defer { counters.requestsWhenAnnounced = counters.requestsWhenAnnounced ?? counters.requests }
      return counters.requestsWhenAnnounced == nil
    }
    guard first, let beforeFirstPublish else { return }
    try await beforeFirstPublish()
  }

  /// Tries of the operation: 1 + ``retries`` once any request has been sent, 0 while none has (a call refused by an
  /// open breaker or a rate-limit gate).
  public var attempts: Int {
    counters.withLock { $0.requests == 0 && $0.retries == 0 ? 0 : 1 + $0.retries }
  }

  /// Retries made across all steps. The core adds one per retry; a layer that re-runs a step itself (the credential
  /// layer after a refresh) adds its own.
  public var retries: Int {
    get { counters.withLock { $0.retries } }
    set { counters.withLock { $0.retries = newValue } }
  }

  /// Times the call waited for a rate-limit gate.
  public var rateLimitWaits: Int {
    get { counters.withLock { $0.rateLimitWaits } }
    set { counters.withLock { $0.rateLimitWaits = newValue } }
  }

  /// Time spent waiting on rate limits (gates and platform-requested waits), the result's `waitedMs`.
  public var waited: Duration {
    counters.withLock { $0.waited }
  }

  /// Requests actually handed to the platform (attempt closures started), across all steps.
  public var requests: Int {
    counters.withLock { $0.requests }
  }

  /// Publish-step requests handed to the platform: once this is non-zero, an interrupted call may have published.
  public var publishRequests: Int {
    counters.withLock { $0.publishRequests }
  }

  /// Whether an interrupted call may have published: a publish-step request went out, or a request went out after the
  /// publish was announced (a resumable upload's chunks, the last of which creates the video).
  public var mayHavePublished: Bool {
    counters.withLock { counters in
      counters.publishRequests > 0 || counters.requestsWhenAnnounced.map { counters.requests > $0 } == true
    }
  }

  func recordRequest(_ step: StepSafety) {
    counters.withLock {
      $0.requests += 1
      if step == .publish { $0.publishRequests += 1 }
    }
  }

  func recordRetry() {
    counters.withLock { $0.retries += 1 }
  }

  func recordRateLimitWait(_ duration: Duration) {
    counters.withLock {
      $0.rateLimitWaits += 1
      $0.waited += duration
    }
  }
}

/// Whether a step may be repeated without risking a duplicate the user would see.
public enum StepSafety: Sendable {
  /// Safe to retry: GETs, token refresh, Instagram container create, upload chunks, status polls.
  case idempotent
  /// A visible publish. A transient failure whose request may have reached the platform is not retried: the call ends
  /// with `outcome_unknown`. Failures that prove rejection (rate limits, 503 before processing, connection refused)
  /// are still retried.
  case publish
}

/// Envoy-style retry budget settings: concurrent retries per platform stay at or below
/// `max(minRetryConcurrency, budgetPercent% of active calls)`.
public struct RetryBudgetConfiguration: Sendable, Equatable {
  public var budgetPercent: Double
  public var minRetryConcurrency: Int

  public init(budgetPercent: Double = 20, minRetryConcurrency: Int = 3) {
    self.budgetPercent = budgetPercent
    self.minRetryConcurrency = minRetryConcurrency
  }

  /// Concurrent retries allowed while `activeCalls` calls are running.
  public func allowedRetries(activeCalls: Int) -> Int {
    max(minRetryConcurrency, Int((Double(activeCalls) * budgetPercent / 100).rounded(.down)))
  }
}
