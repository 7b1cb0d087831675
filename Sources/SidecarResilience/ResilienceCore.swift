#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Synchronization

/// The one place every platform request goes through: retry with backoff, circuit breaker, rate-limit gates, retry
/// budget, deadline and cancellation.
///
/// Platform code only builds the request and maps the response into a ``PlatformFailure``; what to do next is decided
/// here, the same way for all five platforms. State (breakers, budgets) is per `platform` string, kept behind one lock
/// that is never held across an await, I/O or a callback.
public final class ResilienceCore: Sendable {
  public let retry: RetryPolicy
  public let breakerConfiguration: BreakerConfiguration
  public let budget: RetryBudgetConfiguration
  public let clock: any SidecarClock
  public let gates: RateLimitGates
  /// The store the sidecars of a deployment share, when there is one: paced gates are spaced across all of them, and
  /// platform code spends app-wide budgets (YouTube quota units) there. Nil: each process paces on its own.
  public let counters: (any SharedCounters)?
  private let random: any RandomSource
  private let onBreakerTransition: @Sendable (_ platform: String, _ from: BreakerState, _ to: BreakerState) -> Void
  private let state: Mutex<State>

  fileprivate struct Platform {
    var breaker: CircuitBreakerStateMachine
    /// Calls inside ``ResilienceCore/run(platform:step:gates:context:_:)``, waiting or not.
    var activeCalls = 0
    /// Calls that have decided to retry and not finished that retry.
    var activeRetries = 0
  }

  private typealias PendingTransition = (platform: String, transition: BreakerTransition)

  private struct State {
    var platforms: [String: Platform] = [:]
    /// Transitions not yet handed to `onBreakerTransition`, in the order they happened.
    var pendingTransitions: [PendingTransition] = []
    /// True while one caller is delivering transitions; others leave theirs in the queue for it.
    var delivering = false
  }

  /// - Parameters:
  ///   - onBreakerTransition: told of every breaker state change, in order, outside any lock. It may call back into
  ///     the core.
  public init(
    retry: RetryPolicy = RetryPolicy(),
    breaker: BreakerConfiguration = BreakerConfiguration(),
    budget: RetryBudgetConfiguration = RetryBudgetConfiguration(),
    clock: any SidecarClock = SystemClock(),
    random: any RandomSource = SystemRandom(),
    counters: (any SharedCounters)? = nil,
    onBreakerTransition: @escaping @Sendable (_ platform: String, _ from: BreakerState, _ to: BreakerState) -> Void = {
      _, _, _ in
    }
  ) {
    self.retry = retry
    self.breakerConfiguration = breaker
    self.budget = budget
    self.clock = clock
    self.random = random
    self.gates = RateLimitGates(clock: clock)
    self.counters = counters
    self.onBreakerTransition = onBreakerTransition
    self.state = Mutex(State())
  }

  /// Runs one step of a platform operation with retry, breaker, gates, budget, deadline and cancellation.
  ///
  /// `attempt` makes one request and throws a ``PlatformFailure`` when it fails (any other error is treated as a
  /// permanent failure with a generic message, since its text may hold anything). It must honour
  /// `context.deadline` itself (pass it to the transport) and stop promptly when its task is cancelled.
  ///
  /// Outcomes, by the last failure's classification:
  /// - transient: retried after the policy delay (or its `retryAfter`). A `.publish` step whose request may have
  ///   reached the platform ends at once with `outcome_unknown`.
  /// - rate limited: the scope's gate is blocked (`app` → `"<platform>:app"`, `account` → the first non-app key in
  ///   `gates`), then retried after `retryAfter` (or the policy delay).
  /// - auth → `auth_failed` (the credential layer refreshes and runs again); permanent → `permanent`;
  ///   outcome unknown → `outcome_unknown`; quota → `quota_exhausted` with `retryAfter` until `resetsAt`.
  ///
  /// Attempts used up end with `transient_exhausted`, or `rate_limited` when the last failure was a rate limit. A wait
  /// that would not end before the deadline is never started: the call ends now with `rate_limited` (when the platform
  /// asked for the wait) or `deadline_exceeded` (when our backoff did), carrying the wait as `retryAfter`. A wait the
  /// platform asks for or a gate imposes adds to `context.waited`; one that would take it past `retry.maxWait` is not
  /// started either: the call ends at once with `rate_limited` (`transient_exhausted` after a transient failure)
  /// and the wait as `retryAfter`. An open breaker, or a gate blocked past the deadline, ends the call with
  /// `circuit_open` / `rate_limited` before any request. A retry the budget cannot afford ends with
  /// `transient_exhausted` (`rate_limited` after a rate limit).
  ///
  /// Cancellation of the calling task interrupts any wait at once and ends the call with ``ErrorKind/cancelled``
  /// (answer it with -32800): `run` throws only ``SidecarError``, so cancellation is one of its kinds rather than a
  /// `CancellationError`.
  ///
  /// - Parameters:
  ///   - platform: the breaker and budget key, e.g. `"facebook"`.
  ///   - gates: rate-limit keys to honour before each attempt; include ``RateLimitKey/app(_:)`` to respect app-wide
  ///     blocks.
  ///   - breaker: false for hosts that are not the platform's but the caller's choice (media fetches): their failures
  ///     must open no breaker that other callers share.
  ///   - announcing: an idempotent step that can still make the visible post (a resumable upload's chunk): like a
  ///     publish step, it announces the publish (``CallContext/announcePublish()``) before its first request.
  public func run<T: Sendable>(
    platform: String,
    step: StepSafety,
    gates keys: [RateLimitKey] = [],
    breaker: Bool = true,
    announcing: Bool = false,
    context: CallContext,
    _ attempt: @Sendable () async throws -> T
  ) async throws(SidecarError) -> T {
    // The decisions are synchronous methods of `call`: only it and the permit live across the awaits, which keeps
    // this function's async frame (held by every call in flight) small.
    let call = Call(
      core: self, platform: platform, step: step, gates: keys, breaker: breaker,
      announces: announcing || step == .publish, context: context)
    defer { call.finish() }
    while true {
      let permit = try await call.admit()
      let value: T
      do {
        value = try await attempt()
      } catch {
        let retryAt = try call.failed(error, permit: permit)
        if let last = call.last, last.isRateLimited || last.retryAfter != nil {
          try await call.waitOnGate(until: retryAt)
        } else {
          try await call.sleep(until: retryAt, last: call.last)
        }
        continue
      }
      call.record(.success, permit)
      return value
    }
  }

  /// Every breaker the core has used, as `breaker/status` shows them (an expired OPEN turns HALF_OPEN here).
  public func breakerStatus() -> [String: BreakerSnapshot] {
    let now = clock.now()
    let status = state.withLock { state in
      var status: [String: BreakerSnapshot] = [:]
      for name in state.platforms.keys {
        if let transition = state.platforms[name]!.breaker.tick(now: now) {
          state.pendingTransitions.append((name, transition))
        }
        status[name] = state.platforms[name]!.breaker.snapshot(now: now)
      }
      return status
    }
    deliverTransitions()
    return status
  }

  /// One platform's breaker; CLOSED if the core has not used it yet.
  public func breakerStatus(platform: String) -> BreakerSnapshot {
    let now = clock.now()
    return update(platform) { entry in
      let transition = entry.breaker.tick(now: now)
      return (entry.breaker.snapshot(now: now), transition)
    }
  }

  /// Opens a platform's breaker until `until` because another sidecar's opened (see
  /// ``CircuitBreakerStateMachine/adoptOpen(until:now:)``); the transition is notified like any other.
  public func adoptOpenBreaker(platform: String, until: ClockInstant) {
    let now = clock.now()
    update(platform) { ((), $0.breaker.adoptOpen(until: until, now: now)) }
  }

  /// Closes a platform's breaker (`breaker/reset`).
  public func resetBreaker(platform: String) {
    update(platform) { ((), $0.breaker.reset()) }
  }

  // MARK: - State

  /// Mutates one platform's state under the lock; a returned transition is queued and delivered after unlocking.
  @discardableResult
  fileprivate func update<R: Sendable>(_ platform: String, _ body: (inout Platform) -> (R, BreakerTransition?)) -> R {
    let configuration = breakerConfiguration
    let (result, transitioned) = state.withLock { state in
      let (result, transition) = body(
        &state.platforms[platform, default: Platform(breaker: CircuitBreakerStateMachine(configuration: configuration))]
      )
      if let transition { state.pendingTransitions.append((platform, transition)) }
      return (result, transition != nil)
    }
    if transitioned { deliverTransitions() }
    return result
  }

  /// Hands queued transitions to the callback outside the lock. One caller delivers at a time, so the callback sees
  /// transitions in the order they happened even when they race.
  private func deliverTransitions() {
    var batch = state.withLock { state -> [PendingTransition] in
      guard !state.delivering, !state.pendingTransitions.isEmpty else { return [] }
      state.delivering = true
      defer { state.pendingTransitions.removeAll() }
      return state.pendingTransitions
    }
    while !batch.isEmpty {
      for (platform, transition) in batch {
        onBreakerTransition(platform, transition.from, transition.to)
      }
      batch = state.withLock { state -> [PendingTransition] in
        if state.pendingTransitions.isEmpty { state.delivering = false }
        defer { state.pendingTransitions.removeAll() }
        return state.pendingTransitions
      }
    }
  }

  fileprivate func openUntil(_ platform: String) -> ClockInstant? {
    state.withLock { $0.platforms[platform]?.breaker.openUntil }
  }

  fileprivate func retryDelay(beforeRetry retry: Int) -> Duration {
    let source: any RandomSource = random
    return self.retry.delay(beforeRetry: retry, random: source)
  }
}

/// One `run`: its decisions and the state they keep between attempts.
private final class Call {
  let core: ResilienceCore
  let platform: String
  let step: StepSafety
  let keys: [RateLimitKey]
  /// False: the breaker is neither consulted nor told (see `breaker` of ``ResilienceCore/run``).
  let usesBreaker: Bool
  /// The step announces the publish before its first request (see `announcing` of ``ResilienceCore/run``).
  let announces: Bool
  let context: CallContext
  /// Requests made by this step so far.
  private var attemptsInStep = 0
  /// The latest failure, carried into the error that ends the call.
  private(set) var last: PlatformFailure?
  /// True while this call holds one of the platform's retry-budget slots.
  private var holdsRetry = false

  @inline(never)
  init(
    core: ResilienceCore, platform: String, step: StepSafety, gates keys: [RateLimitKey], breaker: Bool,
    announces: Bool, context: CallContext
  ) {
    self.core = core
    self.platform = platform
    self.step = step
    self.keys = keys
    self.usesBreaker = breaker
    self.announces = announces
    self.context = context
    core.update(platform) { platform in
      platform.activeCalls += 1
      return ((), nil)
    }
  }

  /// Gives back what the call counted against its platform.
  @inline(never)
  func finish() {
    let release = holdsRetry
    core.update(platform) { platform in
      platform.activeCalls -= 1
      if release { platform.activeRetries -= 1 }
      return ((), nil)
    }
  }

  /// Waits for the gates and gets a breaker permit for the next request, or throws why no request may be made.
  ///
  /// A publish is announced (the shared store records "sending") only once every wait is over, right before its
  /// request: a sidecar that dies while its publish waits for a gate has sent nothing, so the call can be taken over
  /// as a new publish rather than answered `outcome_unknown`.
  @inline(never)
  func admit() async throws(SidecarError) -> CircuitBreakerStateMachine.Permit {
    while true {
      switch try admission() {
      case .permit(let permit):
        if let until = await sharedPace() {
          record(.neutral, permit)
          try await waitOnGate(until: try boundedWait(until: until, reason: nil, now: core.clock.now()))
          continue
        }
        if announces {
          do { try await context.announcePublish() } catch {
            record(.neutral, permit)
            throw error
          }
        }
        context.recordRequest(step)
        attemptsInStep += 1
        return permit
      case .wait(let until):
        try await waitOnGate(until: until)
      }
    }
  }

  private enum Admission {
    case permit(CircuitBreakerStateMachine.Permit)
    case wait(until: ClockInstant)
  }

  @inline(never)
  private func admission() throws(SidecarError) -> Admission {
    if Task.isCancelled { throw cancelled(last) }
    let now = core.clock.now()
    if let deadline = context.deadline, now >= deadline {
      throw error(
        .deadlineExceeded,
        last == nil
          ? "The call's deadline passed before \(platform) was called."
          : "The call's deadline passed before \(platform) could be tried again.",
        failure: last)
    }
    let permit: CircuitBreakerStateMachine.Permit
    switch admitBreaker(now: now) {
    case .permit(let granted, _):
      permit = granted
    case .refuse(let retryAfter):
      throw error(
        .circuitOpen,
        retryAfter == nil
          ? "Calls to \(platform) are failing, and its circuit breaker lets only a probe through while it recovers; "
            + "no request was sent."
          : "Calls to \(platform) are failing, so its circuit breaker is open; no request was sent.",
        retryAfter: retryAfter, failure: last)
    }
    guard case .wait(let until, let reason) = core.gates.check(keys, now: now, pacing: core.counters == nil) else {
      return .permit(permit)
    }
    record(.neutral, permit)
    return .wait(until: try boundedWait(until: until, reason: reason, now: now))
  }

  /// Takes the shared slot of each paced gate (spaced across every sidecar of the store); nil when all were taken,
  /// else when to try again. A slot taken is used: only a publish's announcement separates this from the request.
  private func sharedPace() async -> ClockInstant? {
    guard let counters = core.counters else { return nil }
    for (key, interval) in core.gates.pacing(keys) {
      let wallNow = core.clock.wallNow()
      if let next = await counters.pass("pace:\(key.raw)", interval: interval, now: wallNow) {
        return core.clock.now() + .milliseconds(max(Int64((next.timeIntervalSince(wallNow) * 1000).rounded(.up)), 1))
      }
    }
    return nil
  }

  /// `until`, when a gate's wait fits the call's deadline and `retry.maxWait`; else the error that ends the call now.
  private func boundedWait(until: ClockInstant, reason: PlatformFailure?, now: ClockInstant) throws(SidecarError)
    -> ClockInstant
  {
    let wait = now.duration(to: until)
    let fits = context.deadline.map { until < $0 } ?? true
    if !fits || context.waited + wait > core.retry.maxWait {
      let why = fits ? "longer than retry.maxWaitMs lets a call wait" : "past the call's deadline"
      if let reason, reason.classification == .quotaExhausted {
        throw error(
          .quotaExhausted,
          "The \(platform) quota is spent for another \(describe(wait)) (\(why)); no request was sent.",
          retryAfter: wait, failure: reason)
      }
      throw error(
        .rateLimited,
        "\(platform) is rate limiting this app, account or recipient for another \(describe(wait)) (\(why)); "
          + "no request was sent.",
        retryAfter: wait, failure: reason ?? last)
    }
    return until
  }

  /// Books a failed attempt and returns when to try again, or throws the error that ends the call.
  @inline(never)
  func failed(_ error: any Error, permit: CircuitBreakerStateMachine.Permit) throws(SidecarError) -> ClockInstant {
    let failure: PlatformFailure
    switch error {
    case let error as PlatformFailure:
      failure = error
    case is CancellationError:
      record(.neutral, permit)
      throw cancelled(last)
    default:
      failure = PlatformFailure(.permanent, message: "An unexpected error occurred while calling \(platform).")
    }
    if Task.isCancelled {
      record(.neutral, permit)
      throw cancelled(failure)
    }
    record(failure.countsAgainstBreaker ? .failure : .neutral, permit)
    if holdsRetry {
      core.update(platform) { platform in
        platform.activeRetries -= 1
        return ((), nil)
      }
      holdsRetry = false
    }
    last = failure
    let now = core.clock.now()
    let wait = try retryWait(after: failure, step: step, gates: keys, attemptsInStep: attemptsInStep, now: now)
    holdsRetry = try spendRetryBudget(failure: failure, wait: wait)
    context.recordRetry()
    return now + wait
  }

  func admitBreaker(now: ClockInstant) -> CircuitBreakerStateMachine.AdmitAction {
    guard usesBreaker else {
      return .permit(CircuitBreakerStateMachine.Permit(isProbe: false, generation: 0), transition: nil)
    }
    return core.update(platform) { entry in
      let action = entry.breaker.admit(now: now)
      guard case .permit(_, let transition) = action else { return (action, nil) }
      return (action, transition)
    }
  }

  /// How long to wait before retrying after `failure`, or the error that ends the call.
  func retryWait(
    after failure: PlatformFailure, step: StepSafety, gates keys: [RateLimitKey], attemptsInStep: Int, now: ClockInstant
  ) throws(SidecarError) -> Duration {
    let wait = failure.retryAfter.map { max($0, .zero) } ?? core.retryDelay(beforeRetry: attemptsInStep)
    let rateLimited: Bool
    switch failure.classification {
    case .permanent:
      throw error(.permanent, failure.message, failure: failure)
    case .auth:
      throw error(.authFailed, failure.message, failure: failure)
    case .outcomeUnknown:
      throw error(.outcomeUnknown, failure.message, failure: failure)
    case .quotaExhausted:
      // Clamped to 0 ... 1e12 s so that any date, even `distantFuture`, makes a valid Duration.
      let retryAfter =
        failure.resetsAt.map { Duration.seconds(min(max($0.timeIntervalSince(core.clock.wallNow()), 0), 1e12)) }
        ?? failure.retryAfter
      throw error(.quotaExhausted, failure.message, retryAfter: retryAfter, failure: failure)
    case .transient:
      if step == .publish && failure.requestMayHaveReachedPlatform {
        throw error(
          .outcomeUnknown,
          "The publish request may have reached \(platform), so it was not retried to avoid a duplicate: "
            + failure.message,
          failure: failure)
      }
      rateLimited = false
    case .rateLimited(let scope):
      let key = scope == .app ? RateLimitKey.app(platform) : keys.first { !$0.isApp }
      if let key { core.gates.block(key, until: now + wait, reason: failure) }
      rateLimited = true
    }
    if attemptsInStep >= max(core.retry.maxAttempts, 1) {
      throw rateLimited
        ? error(
          .rateLimited, "\(platform) was still rate limiting after \(attemptsInStep) attempts: \(failure.message)",
          retryAfter: wait, failure: failure)
        : error(
          .transientExhausted, "\(platform) kept failing after \(attemptsInStep) attempts: \(failure.message)",
          retryAfter: failure.retryAfter, failure: failure)
    }
    if (rateLimited || failure.retryAfter != nil) && context.waited + wait > core.retry.maxWait {
      throw error(
        rateLimited ? .rateLimited : .transientExhausted,
        "\(platform) asks to wait \(describe(wait)) before trying again, longer than retry.maxWaitMs lets a call "
          + "wait: \(failure.message)",
        retryAfter: wait, failure: failure)
    }
    if let deadline = context.deadline, now + wait >= deadline {
      throw rateLimited
        ? error(
          .rateLimited,
          "\(platform) asks to wait \(describe(wait)), past the call's deadline: \(failure.message)",
          retryAfter: wait, failure: failure)
        : error(
          .deadlineExceeded,
          "The call's deadline leaves no time to retry \(platform) in \(describe(wait)): \(failure.message)",
          retryAfter: wait, failure: failure)
    }
    if let until = core.openUntil(platform), until > now + wait {
      throw error(
        .circuitOpen, "Calls to \(platform) keep failing, so its circuit breaker opened: \(failure.message)",
        retryAfter: now.duration(to: until), failure: failure)
    }
    return wait
  }

  /// Takes a retry slot from the platform's budget, or throws when the budget is spent.
  func spendRetryBudget(failure: PlatformFailure, wait: Duration) throws(SidecarError) -> Bool {
    let budget = core.budget
    let granted = core.update(platform) { entry in
      guard entry.activeRetries < budget.allowedRetries(activeCalls: entry.activeCalls) else { return (false, nil) }
      entry.activeRetries += 1
      return (true, nil)
    }
    guard granted else {
      let rateLimited = failure.isRateLimited
      throw error(
        rateLimited ? .rateLimited : .transientExhausted,
        "The \(platform) retry budget is spent (too many calls are retrying at once), so this call was not retried: "
          + failure.message,
        retryAfter: rateLimited ? wait : failure.retryAfter, failure: failure)
    }
    return true
  }

  @inline(never)
  func record(_ outcome: CircuitBreakerStateMachine.Outcome, _ permit: CircuitBreakerStateMachine.Permit) {
    guard usesBreaker else { return }
    let now = core.clock.now()
    core.update(platform) { ((), $0.breaker.record(outcome, for: permit, now: now)) }
  }

  /// Sleeps until a rate limit lets the call go, counting the time in the call's `waited`.
  func waitOnGate(until instant: ClockInstant) async throws(SidecarError) {
    let started = core.clock.now()
    defer { context.recordRateLimitWait(started.duration(to: core.clock.now())) }
    try await sleep(until: instant, last: last)
  }

  func sleep(until instant: ClockInstant, last: PlatformFailure?) async throws(SidecarError) {
    do {
      try await core.clock.sleep(until: instant)
    } catch {
      throw cancelled(last)
    }
  }

  func cancelled(_ last: PlatformFailure?) -> SidecarError {
    error(.cancelled, "The call was cancelled.", failure: last)
  }

  func error(_ kind: ErrorKind, _ message: String, retryAfter: Duration? = nil, failure: PlatformFailure?)
    -> SidecarError
  {
    SidecarError(
      kind: kind, message: message, platform: platform, attempts: context.attempts, retryAfter: retryAfter,
      failure: failure)
  }
}

/// A short human form of a wait: "250 ms", "4 s", "3 min", "2 h" (rounded up).
func describe(_ duration: Duration) -> String {
  let milliseconds = max(duration.saturatingNanoseconds, 0) / 1_000_000
  if milliseconds < 1_000 { return "\(milliseconds) ms" }
  let seconds = (milliseconds + 999) / 1_000
  if seconds < 120 { return "\(seconds) s" }
  let minutes = (seconds + 59) / 60
  if minutes < 120 { return "\(minutes) min" }
  return "\((minutes + 59) / 60) h"
}
