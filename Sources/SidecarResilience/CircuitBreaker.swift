/// Circuit breaker settings (`breaker.*` in the configuration).
public struct BreakerConfiguration: Sendable, Equatable {
  public var enabled: Bool
  /// Consecutive counted failures that open the breaker; at least 1.
  public var failureThreshold: Int
  /// How long an open breaker refuses calls before it lets probes through.
  public var openDuration: Duration
  /// Concurrent probe requests a half-open breaker admits; at least 1.
  public var halfOpenProbes: Int

  public init(
    enabled: Bool = true, failureThreshold: Int = 5, openDuration: Duration = .seconds(60), halfOpenProbes: Int = 1
  ) {
    self.enabled = enabled
    self.failureThreshold = failureThreshold
    self.openDuration = openDuration
    self.halfOpenProbes = halfOpenProbes
  }
}

/// The breaker's state, spelled as in `breaker/status` and metrics.
public enum BreakerState: String, Sendable {
  case closed = "CLOSED"
  case open = "OPEN"
  case halfOpen = "HALF_OPEN"
}

/// A state change, reported to `onBreakerTransition`.
public struct BreakerTransition: Sendable, Equatable {
  public var from: BreakerState
  public var to: BreakerState

  public init(from: BreakerState, to: BreakerState) {
    self.from = from
    self.to = to
  }
}

/// What `breaker/status` shows for one platform.
public struct BreakerSnapshot: Sendable, Equatable {
  public var state: BreakerState
  /// Counted failures in a row while CLOSED.
  public var consecutiveFailures: Int
  /// When an OPEN breaker starts letting probes through.
  public var openUntil: ClockInstant?
  /// Time from the snapshot until ``openUntil``.
  public var retryAfter: Duration?
  /// How many times the breaker has opened (CLOSED or HALF_OPEN → OPEN).
  public var opens: Int
  /// Probes in flight while HALF_OPEN.
  public var probesInFlight: Int

  public init(
    state: BreakerState = .closed, consecutiveFailures: Int = 0, openUntil: ClockInstant? = nil,
    retryAfter: Duration? = nil, opens: Int = 0, probesInFlight: Int = 0
  ) {
    self.state = state
    self.consecutiveFailures = consecutiveFailures
    self.openUntil = openUntil
    self.retryAfter = retryAfter
    self.opens = opens
    self.probesInFlight = probesInFlight
  }
}

/// One platform's circuit breaker as a pure value: methods take `now` and return what happened; the caller does the
/// rest.
///
/// CLOSED counts failures in a row and opens at the threshold. OPEN refuses until `openDuration` has passed, then
/// becomes HALF_OPEN lazily on the next ``admit(now:)`` or ``tick(now:)``. HALF_OPEN admits `halfOpenProbes` concurrent
/// probes: the first success closes, the first failure re-opens, a neutral outcome frees the probe's slot.
///
/// Every permit carries the generation it was issued in; an outcome from an earlier generation (a slow call admitted
/// before the last transition) changes nothing, so a stale success cannot close a breaker that opened since.
public struct CircuitBreakerStateMachine: Sendable {
  /// Leave to make one request.
  public struct Permit: Sendable, Equatable {
    /// True when the request is a HALF_OPEN probe.
    public let isProbe: Bool
    let generation: UInt64
  }

  public enum AdmitAction: Sendable, Equatable {
    /// Make the request, then ``record(_:for:now:)`` its outcome with this permit.
    case permit(Permit, transition: BreakerTransition?)
    /// Do not make the request. `retryAfter` is the time until HALF_OPEN, or nil while probes are in flight.
    case refuse(retryAfter: Duration?)
  }

  /// What a request's outcome says about the platform's health.
  public enum Outcome: Sendable, Equatable {
    case success
    /// Counts towards opening (see `PlatformFailure.countsAgainstBreaker`).
    case failure
    /// No evidence either way (the caller's error, a rate limit, cancellation): only frees a probe slot.
    case neutral
  }

  private enum State: Equatable {
    /// Serving normally; `failures` counted failures in a row.
    case closed(failures: Int)
    /// Refusing until `until`.
    case open(until: ClockInstant)
    /// Letting at most `halfOpenProbes` probes through; `probes` are in flight.
    case halfOpen(probes: Int)
  }

  public let configuration: BreakerConfiguration
  private var current: State = .closed(failures: 0)
  private var generation: UInt64 = 0
  /// Times the breaker has opened.
  public private(set) var opens = 0

  public init(configuration: BreakerConfiguration) {
    self.configuration = configuration
  }

  private var threshold: Int { max(configuration.failureThreshold, 1) }
  private var probeLimit: Int { max(configuration.halfOpenProbes, 1) }

  /// The state as last recorded (an expired OPEN stays OPEN until ``tick(now:)`` or ``admit(now:)``).
  public var state: BreakerState {
    switch current {
    case .closed: .closed
    case .open: .open
    case .halfOpen: .halfOpen
    }
  }

  /// When the breaker leaves OPEN, if it is OPEN.
  public var openUntil: ClockInstant? {
    if case .open(let until) = current { return until }
    return nil
  }

  /// Moves an OPEN breaker whose time is up to HALF_OPEN.
  public mutating func tick(now: ClockInstant) -> BreakerTransition? {
    guard case .open(let until) = current, now >= until else { return nil }
    return move(to: .halfOpen(probes: 0))
  }

  /// Decides whether a request may be made now.
  public mutating func admit(now: ClockInstant) -> AdmitAction {
    guard configuration.enabled else { return .permit(Permit(isProbe: false, generation: generation), transition: nil) }
    let transition = tick(now: now)
    switch current {
    case .closed:
      return .permit(Permit(isProbe: false, generation: generation), transition: transition)
    case .open(let until):
      return .refuse(retryAfter: now.duration(to: until))
    case .halfOpen(let probes):
      guard probes < probeLimit else { return .refuse(retryAfter: nil) }
      current = .halfOpen(probes: probes + 1)
      return .permit(Permit(isProbe: true, generation: generation), transition: transition)
    }
  }

  /// Records the outcome of a permitted request.
  public mutating func record(_ outcome: Outcome, for permit: Permit, now: ClockInstant) -> BreakerTransition? {
    guard configuration.enabled, permit.generation == generation else { return nil }
    switch (current, outcome) {
    case (.closed, .success):
      current = .closed(failures: 0)
    case (.closed(let failures), .failure):
      if failures + 1 >= threshold { return move(to: .open(until: now + configuration.openDuration)) }
      current = .closed(failures: failures + 1)
    case (.halfOpen, .success):
      return move(to: .closed(failures: 0))
    case (.halfOpen, .failure):
      return move(to: .open(until: now + configuration.openDuration))
    case (.halfOpen(let probes), .neutral):
      current = .halfOpen(probes: max(probes - 1, 0))
    case (.closed, .neutral), (.open, _):
      // Neutral outcomes say nothing; an OPEN breaker issued no permit of the current generation.
      break
    }
    return nil
  }

  /// Opens the breaker until `until` because another sidecar's breaker for the same platform opened (shared state):
  /// a breaker that is already OPEN at least that long, or disabled, stays as it is.
  public mutating func adoptOpen(until: ClockInstant, now: ClockInstant) -> BreakerTransition? {
    guard configuration.enabled, until > now else { return nil }
    if case .open(let current) = current, current >= until { return nil }
    return move(to: .open(until: until))
  }

  /// Closes the breaker (`breaker/reset`), keeping the count of opens.
  public mutating func reset() -> BreakerTransition? {
    move(to: .closed(failures: 0))
  }

  /// What `breaker/status` shows at `now` (call ``tick(now:)`` first to make an expired OPEN read HALF_OPEN).
  public func snapshot(now: ClockInstant) -> BreakerSnapshot {
    switch current {
    case .closed(let failures):
      BreakerSnapshot(state: .closed, consecutiveFailures: failures, opens: opens)
    case .open(let until):
      BreakerSnapshot(
        state: .open, openUntil: until, retryAfter: max(now.duration(to: until), .zero), opens: opens)
    case .halfOpen(let probes):
      BreakerSnapshot(state: .halfOpen, opens: opens, probesInFlight: probes)
    }
  }

  private mutating func move(to next: State) -> BreakerTransition? {
    let from = state
    current = next
    generation &+= 1
    if case .open = next { opens += 1 }
    return from == state ? nil : BreakerTransition(from: from, to: state)
  }
}
