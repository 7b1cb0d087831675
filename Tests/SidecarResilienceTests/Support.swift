import Foundation
import SidecarResilience
import Synchronization

/// A scripted platform: each attempt takes the next step; the last step repeats.
final class Script: Sendable {
  enum Step: Sendable {
    case succeed(String)
    case fail(PlatformFailure)
    /// Throws an error that is not a `PlatformFailure`, whose text must never leak.
    case throwOther
    /// Parks on `clock` until the task is cancelled.
    case hang(ManualClock)
    /// Parks on `clock` until `instant`, then fails.
    case failAt(ManualClock, ClockInstant, PlatformFailure)
  }

  struct UnexpectedError: Error, CustomStringConvertible {
    var description: String { "connection to https://x?access_token=secret-token failed" }
  }

  private let steps: [Step]
  private let count = Atomic<Int>(0)

  init(_ steps: [Step]) {
    self.steps = steps
  }

  /// Attempts made so far.
  var attempts: Int { count.load(ordering: .relaxed) }

  func attempt() async throws -> String {
    let index = count.add(1, ordering: .relaxed).oldValue
    switch steps[min(index, steps.count - 1)] {
    case .succeed(let value): return value
    case .fail(let failure): throw failure
    case .throwOther: throw UnexpectedError()
    case .hang(let clock):
      try await clock.sleep(until: ClockInstant(nanoseconds: .max))
      return "woke"
    case .failAt(let clock, let instant, let failure):
      try await clock.sleep(until: instant)
      throw failure
    }
  }
}

/// A counter shared between tasks.
final class Counter: Sendable {
  private let value = Atomic<Int>(0)

  var count: Int { value.load(ordering: .relaxed) }

  @discardableResult
  func increment() -> Int {
    value.add(1, ordering: .relaxed).newValue
  }
}

/// Breaker transitions as "platform:FROM>TO" strings.
final class TransitionLog: Sendable {
  private let entries = Mutex<[String]>([])

  var all: [String] { entries.withLock { $0 } }

  func record(_ platform: String, _ from: BreakerState, _ to: BreakerState) {
    entries.withLock { $0.append("\(platform):\(from.rawValue)>\(to.rawValue)") }
  }
}

/// A one-shot gate that parks tasks until opened.
final class Latch: Sendable {
  private struct State {
    var isOpen = false
    var waiters: [CheckedContinuation<Void, Never>] = []
  }

  private let state = Mutex(State())

  func wait() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let isOpen = state.withLock { state in
        if !state.isOpen { state.waiters.append(continuation) }
        return state.isOpen
      }
      if isOpen { continuation.resume() }
    }
  }

  func open() {
    let waiters = state.withLock { state in
      state.isOpen = true
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume() }
  }
}

extension PlatformFailure {
  static let unavailable = PlatformFailure(.transient, message: "The platform answered 503.", httpStatus: 503)
  static let timedOutAfterSending = PlatformFailure(
    .transient, message: "The request timed out after it was sent.", requestMayHaveReachedPlatform: true)
  static let invalidParams = PlatformFailure(
    .permanent, message: "The caption is too long.", httpStatus: 400, platformCode: 100)
  static let expiredToken = PlatformFailure(
    .auth(refreshable: true), message: "The access token has expired.", httpStatus: 400, platformCode: 190,
    platformSubcode: 463)

  static func throttled(_ scope: RateLimitScope, after: Duration? = nil) -> PlatformFailure {
    PlatformFailure(
      .rateLimited(scope: scope), message: "Too many calls.", httpStatus: 429, platformCode: 32, retryAfter: after)
  }
}

extension ClockInstant {
  static func at(_ seconds: Double) -> ClockInstant {
    ClockInstant(nanoseconds: Int64(seconds * 1e9))
  }
}

extension RetryPolicy {
  /// The default policy with a bound on waits far beyond any test's, for tests of what happens during long waits.
  static let patient = RetryPolicy(maxWait: .seconds(3_600))
}

func makeCore(
  clock: ManualClock,
  retry: RetryPolicy = RetryPolicy(),
  breaker: BreakerConfiguration = BreakerConfiguration(),
  budget: RetryBudgetConfiguration = RetryBudgetConfiguration(),
  log: TransitionLog = TransitionLog(),
  counters: (any SharedCounters)? = nil
) -> ResilienceCore {
  ResilienceCore(
    retry: retry, breaker: breaker, budget: budget, clock: clock, random: SeededRandom(seed: 7), counters: counters,
    onBreakerTransition: { log.record($0, $1, $2) })
}

extension ResilienceCore {
  /// Starts a call to `script` in a new task.
  func start(
    _ script: Script, platform: String = "facebook", step: StepSafety = .idempotent, gates: [RateLimitKey] = [],
    context: CallContext = CallContext(deadline: nil)
  ) -> Task<Result<String, SidecarError>, Never> {
    Task {
      do throws(SidecarError) {
        return .success(
          try await run(platform: platform, step: step, gates: gates, context: context) { try await script.attempt() })
      } catch {
        return .failure(error)
      }
    }
  }

  /// Runs a call to `script` to its end, returning its error if it failed.
  func outcome(
    _ script: Script, platform: String = "facebook", step: StepSafety = .idempotent, gates: [RateLimitKey] = [],
    context: CallContext = CallContext(deadline: nil)
  ) async -> Result<String, SidecarError> {
    await start(script, platform: platform, step: step, gates: gates, context: context).finished
  }
}

extension Task where Failure == Never {
  /// The task's value; cancels the task when the waiting test is cancelled (its time limit), so nothing hangs.
  var finished: Success {
    get async {
      await withTaskCancellationHandler {
        await value
      } onCancel: {
        cancel()
      }
    }
  }
}

extension Result {
  var error: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}
