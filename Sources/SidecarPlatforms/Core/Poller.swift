#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarResilience

/// Asks a platform whether work it does asynchronously (processing an upload, preparing a container) is finished,
/// waiting between asks as a ``RetryPolicy`` says: `delay(beforeRetry: n)` before ask `n + 1`, at most `maxAttempts`
/// asks. The one polling loop of every family; what running out means (fail, or go on and let the platform decide) is
/// the caller's.
struct Poller: Sendable {
  /// What the waiting came to.
  enum Outcome<Value: Sendable>: Sendable {
    case ready(Value)
    /// Every ask allowed (by `maxAttempts` or by `limit`) answered "still working".
    case exhausted(checks: Int)
    /// The next wait would end at or after the call's deadline.
    case pastDeadline(checks: Int, wait: Duration)
  }

  /// The waits and the most asks; jitter is ignored (one caller's asks do not herd).
  var schedule: RetryPolicy
  /// The longest the whole wait may take, when bounded by time rather than by asks.
  var limit: Duration?
  let clock: any SidecarClock

  init(_ schedule: RetryPolicy, limit: Duration? = nil, clock: any SidecarClock) {
    self.schedule = schedule
    self.schedule.jitter = false
    self.limit = limit
    self.clock = clock
  }

  /// The wait after `checks` asks that all answered "still working"; at least a millisecond, so that a policy without
  /// delays still lets time (and a time limit) move.
  func wait(after checks: Int) -> Duration {
    max(schedule.delay(beforeRetry: checks, random: SystemRandom()), .milliseconds(1))
  }

  /// Calls `check` until it answers a value, it throws, or the schedule, the limit or the deadline runs out.
  ///
  /// - Parameters:
  ///   - waiting: reported as progress before each wait.
  ///   - platform: named by the `cancelled` error thrown when the call is cancelled during a wait.
  func run<Value: Sendable>(
    waiting: String? = nil, platform: Platform, context: CallContext,
    _ check: () async throws(SidecarError) -> Value?
  ) async throws(SidecarError) -> Outcome<Value> {
    let started = clock.now()
    var checks = 0
    while true {
      if let value = try await check() { return .ready(value) }
      checks += 1
      if checks >= schedule.maxAttempts { return .exhausted(checks: checks) }
      if let waiting { context.progress?.report(message: waiting) }
      let wait = wait(after: checks)
      let now = clock.now()
      if let limit, started.duration(to: now + wait) > limit { return .exhausted(checks: checks) }
      if let deadline = context.deadline, now + wait >= deadline { return .pastDeadline(checks: checks, wait: wait) }
      do {
        try await clock.sleep(until: now + wait)
      } catch {
        throw SidecarError(
          kind: .cancelled, message: "The call was cancelled.", platform: platform.rawValue,
          attempts: context.attempts)
      }
    }
  }
}
