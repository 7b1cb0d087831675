#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
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
    var interruptionCleared = false
  }

  /// No wait, and no new attempt, starts at or after this instant. Nil means no deadline.
  public let deadline: ClockInstant?
  /// Where the call's `$/progress` reports go, when the caller asked for them (`workDoneToken`).
  public let progress: WorkDoneProgress?
  private let counters = Mutex(Counters())
  /// Runs once, before the first publish-step request may go out (the server records "sending" in the shared store);
  /// if it throws, nothing is sent and the call ends with its error.
  private let beforeFirstPublish: (@Sendable () async throws(SidecarError) -> Void)?
  /// When the sidecar that first claimed this publish did so, if it died after recording "sending": its request may
  /// have published, so nothing is sent until a conclusive look shows the post absent (``clearInterruption()``).
  public let interruptedSince: Date?

  public init(
    deadline: ClockInstant?, progress: WorkDoneProgress? = nil, interruptedSince: Date? = nil,
    beforeFirstPublish: (@Sendable () async throws(SidecarError) -> Void)? = nil
  ) {
    self.deadline = deadline
    self.progress = progress
    self.interruptedSince = interruptedSince
    self.beforeFirstPublish = beforeFirstPublish
  }

  /// The answer to an interrupted publish that was not looked for (its platform cannot read posts back, or this kind
  /// of post cannot be found).
  public static let interruptedMessage =
    "the sidecar stopped while this publish was in flight; it may have been published, so it was not sent again"

  /// Whether this call continues an interrupted publish that no look has cleared yet: it must not send.
  public var isInterrupted: Bool {
    interruptedSince != nil && !counters.withLock { $0.interruptionCleared }
  }

  /// A conclusive look found no post of the interrupted publish: it may be sent (once, like any publish).
  public func clearInterruption() {
    counters.withLock { $0.interruptionCleared = true }
  }

  /// Runs ``beforeFirstPublish`` the first time it is called: the core calls it right before a publish-step request
  /// (or a request of a step run with `announcing`, such as a resumable upload's chunks, the last of which creates the
  /// video), once the gates let it go, so that a call that dies while waiting has recorded nothing. An interrupted
  /// publish that no look cleared is refused here, whatever the platform, so it can never be sent twice.
  public func announcePublish() async throws(SidecarError) {
    if isInterrupted { throw SidecarError(kind: .outcomeUnknown, message: Self.interruptedMessage, attempts: 1) }
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
