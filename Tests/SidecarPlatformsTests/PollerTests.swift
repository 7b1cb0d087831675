import Foundation
import SidecarLogging
import SidecarResilience
import SidecarTestSupport
import Synchronization
import Testing

@testable import SidecarPlatforms

@Suite("Poller")
struct PollerTests {
  /// Runs `poller` against a check that answers "still working" `busy` times, then a value; moves the manual clock
  /// from sleeper to sleeper and returns the waits it saw with the outcome.
  static func drive(
    _ poller: Poller, clock: ManualClock, busy: Int, deadline: ClockInstant? = nil
  ) async throws -> (waits: [Duration], checks: Int, outcome: Poller.Outcome<String>) {
    let checks = Mutex(0)
    let task = Task {
      try await poller.run(platform: .linkedin, context: CallContext(deadline: deadline)) {
        () throws(SidecarError) -> String? in
        let done = checks.withLock { count in
          count += 1
          return count > busy
        }
        return done ? "ready" : nil
      }
    }
    let waits = await advance(clock, until: task)
    return (waits, checks.withLock { $0 }, try await task.value)
  }

  /// Moves `clock` to each sleeper's deadline until `task` ends; the waits it moved through.
  static func advance<T: Sendable, E: Error>(_ clock: ManualClock, until task: Task<T, E>) async -> [Duration] {
    let finished = Mutex(false)
    let watcher = Task {
      _ = await task.result
      finished.withLock { $0 = true }
    }
    var waits: [Duration] = []
    while !finished.withLock({ $0 }) {
      if clock.sleeperCount > 0 {
        waits.append(await clock.advanceToNextSleeper())
      } else {
        await Task.yield()
      }
    }
    await watcher.value
    return waits
  }

  @Test("the waits follow the RetryPolicy (doubling to the cap) and the poller gives up after maxAttempts asks")
  func scheduleAndGiveUp() async throws {
    let clock = ManualClock()
    let poller = Poller(LinkedInClient.processingSchedule, clock: clock)
    let (waits, checks, outcome) = try await Self.drive(poller, clock: clock, busy: 100)
    #expect(waits == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
    #expect(checks == 7)
    guard case .exhausted(checks: 7) = outcome else {
      Issue.record("expected exhausted, got \(outcome)")
      return
    }
  }

  @Test("an answer ends the polling at once, after only the waits it needed")
  func readyEarly() async throws {
    let clock = ManualClock()
    let poller = Poller(RetryPolicy(maxAttempts: 10, baseDelay: .seconds(2), maxDelay: .seconds(60)), clock: clock)
    let (waits, checks, outcome) = try await Self.drive(poller, clock: clock, busy: 3)
    #expect(waits == [.seconds(2), .seconds(4), .seconds(8)])
    #expect(checks == 4)
    guard case .ready("ready") = outcome else {
      Issue.record("expected ready, got \(outcome)")
      return
    }
  }

  @Test("a time limit gives up before a wait that would end past it; jitter in the policy is ignored")
  func timeLimit() async throws {
    let clock = ManualClock()
    var policy = RetryPolicy(maxAttempts: .max, baseDelay: .seconds(1), maxDelay: .seconds(16), jitter: true)
    policy.jitter = true
    let poller = Poller(policy, limit: .seconds(60), clock: clock)
    let (waits, checks, outcome) = try await Self.drive(poller, clock: clock, busy: 1000)
    // 1+2+4+8+16 = 31 s; another 16 would end at 47 s, still inside; a third 16 s would end at 63 s.
    #expect(waits == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(16)])
    #expect(checks == 7)
    guard case .exhausted(checks: 7) = outcome else {
      Issue.record("expected exhausted, got \(outcome)")
      return
    }
  }

  @Test("a wait that would reach the call's deadline is not started")
  func deadline() async throws {
    let clock = ManualClock()
    let poller = Poller(LinkedInClient.processingSchedule, clock: clock)
    let (waits, _, outcome) = try await Self.drive(poller, clock: clock, busy: 100, deadline: clock.now() + .seconds(7))
    #expect(waits == [.seconds(1), .seconds(2)])
    guard case .pastDeadline(checks: 3, wait: .seconds(4)) = outcome else {
      Issue.record("expected pastDeadline, got \(outcome)")
      return
    }
  }

  @Test("Meta's poll waits with the core's backoff and fails as transient_exhausted after its five minutes")
  func graphPoll() async throws {
    let clock = ManualClock()
    let harness = TestHarness(
      transport: ScriptedTransport([]), credentials: [:], clock: clock,
      retry: RetryPolicy(maxAttempts: 3, baseDelay: .seconds(5), maxDelay: .seconds(80)))
    let graph = GraphAPI(environment: harness.environment, platform: .instagram)
    let task = Task { () async throws(SidecarError) -> Bool in
      try await graph.poll("the media", context: CallContext(deadline: nil)) { () throws(SidecarError) -> Bool? in nil }
    }
    let waits = await Self.advance(clock, until: task)
    // 5+10+20+40+80+80 = 235 s; one more wait of 80 s would end past 300 s. The core's maxAttempts bounds requests,
    // not checks.
    #expect(waits == [5, 10, 20, 40, 80, 80].map { Duration.seconds($0) })
    let error = try await #require(throws: SidecarError.self) { try await task.value }
    #expect(error.kind == .transientExhausted)
    #expect(
      error.message
        == "Instagram was still processing the media after 7 checks; nothing was published. Try again later.")
  }

  /// A parent that refuses `credentials/update` a number of times, then acknowledges it.
  final class ReluctantParent: CredentialSource {
    let refusals: Int
    let updates = Mutex(0)
    init(refusals: Int) { self.refusals = refusals }
    func resolve(_ key: CredentialKey) async throws(SidecarError) -> Credential {
      Credential(accessToken: "old", accountId: "a")
    }
    func update(_ key: CredentialKey, credential: Credential) async throws {
      let count = updates.withLock { count in
        count += 1
        return count
      }
      if count <= refusals { throw CancellationError() }
    }
  }

  @Test("a refreshed token the parent did not acknowledge is handed over again on the RetryPolicy's schedule")
  func credentialUpdateRetries() async throws {
    let clock = ManualClock()
    let parent = ReluctantParent(refusals: 4)
    let store = CredentialStore(
      source: parent, clock: clock, logger: .disabled,
      updateRetry: RetryPolicy(maxAttempts: .max, baseDelay: .seconds(1), maxDelay: .seconds(4)))
    let key = CredentialKey(platform: .linkedin, credentialRef: "r", customerId: "c")
    let stale = try await store.credential(key)
    _ = try await store.refresh(key, stale: stale) { old throws(SidecarError) in
      var fresh = old
      fresh.accessToken = "new"
      return fresh
    }
    // The first hand-over was refused during the refresh; each retry waits on the clock, the fourth is acknowledged.
    var waits: [Duration] = []
    for _ in 0..<4 { waits.append(await clock.advanceToNextSleeper()) }
    #expect(waits == [.seconds(1), .seconds(2), .seconds(4), .seconds(4)])
    while parent.updates.withLock({ $0 }) < 5 { await Task.yield() }
  }
}
