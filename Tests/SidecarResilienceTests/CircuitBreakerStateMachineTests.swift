import Testing

@testable import SidecarResilience

@Suite("Circuit breaker state machine")
struct CircuitBreakerStateMachineTests {
  typealias Machine = CircuitBreakerStateMachine

  static func permit(_ machine: inout Machine, at now: ClockInstant) -> Machine.Permit? {
    if case .permit(let permit, _) = machine.admit(now: now) { return permit }
    return nil
  }

  @Test("closed opens after the threshold of consecutive failures")
  func closedOpensAfterThresholdConsecutiveFailures() throws {
    var machine = Machine(configuration: BreakerConfiguration())
    for _ in 0..<4 {
      let permit = try #require(Self.permit(&machine, at: .at(0)))
      #expect(machine.record(.failure, for: permit, now: .at(0)) == nil)
    }
    // A success in between starts the count again.
    let success = try #require(Self.permit(&machine, at: .at(0)))
    #expect(machine.record(.success, for: success, now: .at(0)) == nil)
    #expect(machine.snapshot(now: .at(0)).consecutiveFailures == 0)
    var transitions: [BreakerTransition] = []
    for _ in 0..<5 {
      let permit = try #require(Self.permit(&machine, at: .at(1)))
      if let transition = machine.record(.failure, for: permit, now: .at(1)) { transitions.append(transition) }
    }
    #expect(transitions == [BreakerTransition(from: .closed, to: .open)])
    #expect(machine.state == .open)
    #expect(
      machine.snapshot(now: .at(11))
        == BreakerSnapshot(
          state: .open, openUntil: .at(61), retryAfter: .seconds(50), opens: 1))
  }

  @Test("neutral outcomes neither count nor reset")
  func neutralOutcomesNeitherCountNorReset() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 2))
    let first = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: first, now: .at(0))
    let neutral = try #require(Self.permit(&machine, at: .at(0)))
    #expect(machine.record(.neutral, for: neutral, now: .at(0)) == nil)
    #expect(machine.snapshot(now: .at(0)).consecutiveFailures == 1)
    let second = try #require(Self.permit(&machine, at: .at(0)))
    #expect(machine.record(.failure, for: second, now: .at(0)) == BreakerTransition(from: .closed, to: .open))
  }

  @Test("open refuses until its time is up, then lets one probe through")
  func openRefusesUntilItsTimeIsUpThenLetsOneProbeThrough() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 1))
    let permit = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: permit, now: .at(0))
    #expect(machine.admit(now: .at(59.5)) == .refuse(retryAfter: .milliseconds(500)))
    guard case .permit(let probe, let transition) = machine.admit(now: .at(60)) else {
      Issue.record("expected a probe")
      return
    }
    #expect(probe.isProbe)
    #expect(transition == BreakerTransition(from: .open, to: .halfOpen))
    #expect(machine.admit(now: .at(60)) == .refuse(retryAfter: nil))
    #expect(machine.snapshot(now: .at(60)) == BreakerSnapshot(state: .halfOpen, opens: 1, probesInFlight: 1))
    #expect(machine.record(.success, for: probe, now: .at(61)) == BreakerTransition(from: .halfOpen, to: .closed))
    #expect(machine.state == .closed)
  }

  @Test("a failed probe reopens for another full period")
  func failedProbeReopensForAnotherFullPeriod() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 1, openDuration: .seconds(10)))
    let permit = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: permit, now: .at(0))
    let probe = try #require(Self.permit(&machine, at: .at(10)))
    #expect(machine.record(.failure, for: probe, now: .at(12)) == BreakerTransition(from: .halfOpen, to: .open))
    #expect(machine.openUntil == .at(22))
    #expect(machine.opens == 2)
    #expect(machine.admit(now: .at(21)) == .refuse(retryAfter: .seconds(1)))
  }

  @Test("a neutral probe frees its slot")
  func neutralProbeFreesItsSlot() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 1))
    let permit = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: permit, now: .at(0))
    let probe = try #require(Self.permit(&machine, at: .at(60)))
    #expect(machine.admit(now: .at(60)) == .refuse(retryAfter: nil))
    #expect(machine.record(.neutral, for: probe, now: .at(60)) == nil)
    #expect(machine.state == .halfOpen)
    #expect(Self.permit(&machine, at: .at(60))?.isProbe == true)
  }

  @Test("half-open admits exactly the configured probes")
  func halfOpenAdmitsExactlyTheConfiguredProbes() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 1, halfOpenProbes: 3))
    let permit = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: permit, now: .at(0))
    let admitted = (0..<10).compactMap { _ in Self.permit(&machine, at: .at(60)) }
    #expect(admitted.count == 3)
    // The first success closes; the other probes' outcomes are stale and change nothing.
    #expect(machine.record(.success, for: admitted[0], now: .at(61)) == BreakerTransition(from: .halfOpen, to: .closed))
    #expect(machine.record(.failure, for: admitted[1], now: .at(61)) == nil)
    #expect(machine.snapshot(now: .at(61)).consecutiveFailures == 0)
  }

  @Test("stale outcomes cannot move a breaker that changed since")
  func staleOutcomesCannotMoveABreakerThatChangedSince() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 1, halfOpenProbes: 1))
    let slowSuccess = try #require(Self.permit(&machine, at: .at(0)))
    let slowFailure = try #require(Self.permit(&machine, at: .at(0)))
    let fast = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: fast, now: .at(1))
    #expect(machine.record(.success, for: slowSuccess, now: .at(2)) == nil)
    #expect(machine.state == .open)
    // Half-open with its one probe out: stragglers from CLOSED neither close, re-open nor free the probe's slot.
    let probe = try #require(Self.permit(&machine, at: .at(61)))
    #expect(machine.record(.success, for: slowSuccess, now: .at(62)) == nil)
    #expect(machine.record(.failure, for: slowFailure, now: .at(62)) == nil)
    #expect(machine.record(.neutral, for: slowFailure, now: .at(62)) == nil)
    #expect(machine.snapshot(now: .at(62)) == BreakerSnapshot(state: .halfOpen, opens: 1, probesInFlight: 1))
    #expect(machine.record(.success, for: probe, now: .at(63)) == BreakerTransition(from: .halfOpen, to: .closed))
  }

  @Test("a disabled breaker never opens")
  func disabledBreakerNeverOpens() throws {
    var machine = Machine(configuration: BreakerConfiguration(enabled: false, failureThreshold: 1))
    for _ in 0..<20 {
      let permit = try #require(Self.permit(&machine, at: .at(0)))
      #expect(machine.record(.failure, for: permit, now: .at(0)) == nil)
    }
    #expect(machine.state == .closed)
  }

  @Test("reset closes and keeps the open count")
  func resetClosesAndKeepsTheOpenCount() throws {
    var machine = Machine(configuration: BreakerConfiguration(failureThreshold: 1))
    let permit = try #require(Self.permit(&machine, at: .at(0)))
    _ = machine.record(.failure, for: permit, now: .at(0))
    #expect(machine.reset() == BreakerTransition(from: .open, to: .closed))
    #expect(machine.reset() == nil)
    #expect(machine.snapshot(now: .at(0)) == BreakerSnapshot(state: .closed, opens: 1))
  }

  /// The breaker as protocol/PROTOCOL.md §5 describes it, written as differently as possible: state is derived from
  /// when it last opened and the time now.
  struct ReferenceModel {
    let threshold: Int
    let openNanoseconds: Int64
    var failuresInARow = 0
    var openedAt: Int64?
    var opens = 0

    func state(at now: Int64) -> BreakerState {
      guard let openedAt else { return .closed }
      return now - openedAt < openNanoseconds ? .open : .halfOpen
    }

    /// One call, start to end, at `now`; returns whether a request was made.
    mutating func call(at now: Int64, _ outcome: CircuitBreakerStateMachine.Outcome) -> Bool {
      switch state(at: now) {
      case .open:
        return false
      case .closed:
        if outcome == .success { failuresInARow = 0 }
        if outcome == .failure { failuresInARow += 1 }
      case .halfOpen:
        if outcome == .success { openedAt = nil }
        if outcome == .failure { failuresInARow = threshold }
      }
      if failuresInARow >= threshold {
        failuresInARow = 0
        openedAt = now
        opens += 1
      }
      return true
    }
  }

  @Test("random outcomes agree with the reference model", arguments: [1, 2, 3, 4, 5] as [UInt64])
  func randomOutcomesAgreeWithTheReferenceModel(seed: UInt64) {
    let random = SeededRandom(seed: seed)
    let threshold = 1 + Int(random.next() % 5)
    let configuration = BreakerConfiguration(failureThreshold: threshold, openDuration: .seconds(60))
    var machine = Machine(configuration: configuration)
    var model = ReferenceModel(threshold: threshold, openNanoseconds: 60_000_000_000)
    var now: Int64 = 0
    for step in 0..<5_000 {
      now += Int64(random.next() % 20_000_000_000)  // up to 20 s between calls
      let roll = random.nextUnit()
      let outcome: CircuitBreakerStateMachine.Outcome = roll < 0.5 ? .failure : roll < 0.8 ? .success : .neutral
      let instant = ClockInstant(nanoseconds: now)
      let expectedRequest = model.call(at: now, outcome)
      switch machine.admit(now: instant) {
      case .permit(let permit, _):
        #expect(expectedRequest, "step \(step): the machine admitted a call the model refused")
        _ = machine.record(outcome, for: permit, now: instant)
      case .refuse:
        #expect(!expectedRequest, "step \(step): the machine refused a call the model admitted")
      }
      _ = machine.tick(now: instant)
      let snapshot = machine.snapshot(now: instant)
      #expect(snapshot.state == model.state(at: now), "step \(step)")
      #expect(snapshot.consecutiveFailures == model.failuresInARow, "step \(step)")
      #expect(snapshot.opens == model.opens, "step \(step)")
    }
    #expect(model.opens > 10)
  }
}
