import Foundation
import Testing

@testable import SidecarResilience

@Suite("Retry policy")
struct RetryPolicyTests {
  @Test("default delays are exactly 1, 2, 4, 8, 16 seconds")
  func defaultDelaysAreExactlyOneTwoFourEightSixteenSeconds() {
    let policy = RetryPolicy()
    let random = SeededRandom(seed: 1)
    let delays = (1...5).map { policy.delay(beforeRetry: $0, random: random) }
    #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16)])
    #expect(policy.delay(beforeRetry: 6, random: random) == .seconds(16))
    #expect(policy.maxAttempts == 5 && policy.jitter == false)
  }

  @Test("huge retry numbers are capped without overflow")
  func hugeRetryNumbersAreCappedWithoutOverflow() {
    let random = SeededRandom(seed: 1)
    #expect(RetryPolicy().delay(beforeRetry: .max, random: random) == .seconds(16))
    // A cap beyond Int64 nanoseconds saturates instead of trapping.
    let unbounded = RetryPolicy(maxDelay: .seconds(Int64.max))
    #expect(unbounded.delay(beforeRetry: 5_000, random: random) == .nanoseconds(Int64.max))
    #expect(unbounded.delay(beforeRetry: 4, random: random) == .seconds(8))
  }

  @Test("full jitter stays within the computed delay", arguments: 1...6)
  func fullJitterStaysWithinTheComputedDelay(retry: Int) {
    let computed = RetryPolicy().delay(beforeRetry: retry, random: SeededRandom(seed: 0))
    let jittered = RetryPolicy(jitter: true)
    let random = SeededRandom(seed: UInt64(retry))
    let draws = (0..<1_000).map { _ in jittered.delay(beforeRetry: retry, random: random) }
    #expect(draws.allSatisfy { $0 >= .zero && $0 <= computed })
    // Spread over the whole range, not clustered (deterministic for this seed).
    #expect(draws.min()! < computed / 10)
    #expect(draws.max()! > computed * 9 / 10)
  }

  @Test("seeded random is reproducible and in the unit range")
  func seededRandomIsReproducibleAndInUnitRange() {
    let a = SeededRandom(seed: 42)
    let b = SeededRandom(seed: 42)
    let first = (0..<100).map { _ in a.nextUnit() }
    #expect(first == (0..<100).map { _ in b.nextUnit() })
    #expect(first.allSatisfy { (0..<1).contains($0) })
    #expect(Set(first).count == 100)
    #expect(SeededRandom(seed: 43).nextUnit() != first[0])
  }
}

@Suite("Retry-After")
struct RetryAfterTests {
  /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
  let now = Date(timeIntervalSince1970: 784_111_777)

  @Test("a number of seconds is a wait that long")
  func deltaSeconds() {
    #expect(RetryAfter.parse("120", now: now) == .seconds(120))
    #expect(RetryAfter.parse(" 5 ", now: now) == .seconds(5))
    #expect(RetryAfter.parse("0", now: now) == .zero)
  }

  @Test(
    "HTTP dates are read in all three forms",
    arguments: [
      "Sun, 06 Nov 1994 08:50:07 GMT",  // IMF-fixdate
      "Sunday, 06-Nov-94 08:50:07 GMT",  // RFC 850
      "Sun Nov  6 08:50:07 1994",  // asctime
    ])
  func httpDatesInAllThreeForms(header: String) {
    #expect(RetryAfter.parse(header, now: now) == .seconds(30))
  }

  @Test("leap days and centuries are counted right")
  func leapDaysAndCenturies() {
    let beforeLeapMidnight = Date(timeIntervalSince1970: 1_709_164_740)  // 2024-02-28T23:59:00Z
    #expect(RetryAfter.parse("Thu, 29 Feb 2024 00:00:00 GMT", now: beforeLeapMidnight) == .seconds(60))
    #expect(RetryAfter.parse("Wed, 29 Feb 2023 00:00:00 GMT", now: beforeLeapMidnight) == nil)
    #expect(RetryAfter.httpDate("Tue, 29 Feb 2000 00:00:00 GMT") == 951_782_400)
    #expect(RetryAfter.httpDate("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
  }

  @Test(
    "garbage is rejected",
    arguments: [
      "", "   ", "-5", "+5", "1.5", "soon", "12abc", "99999999999999999999999",
      "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 PST",
      "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
      "Sun, 06 Nov 1994 8:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov  6 08:49:37",
      "Sun, 06 Nov 1994 08:49:37 GMT extra",
    ])
  func garbageIsRejected(header: String) {
    #expect(RetryAfter.parse(header, now: now) == nil)
  }

  @Test("far-future dates do not overflow")
  func farFutureDatesDoNotOverflow() throws {
    let wait = try #require(RetryAfter.parse("Fri, 31 Dec 9999 23:59:59 GMT", now: now))
    #expect(wait > .seconds(252_000_000_000))
    #expect(RetryAfter.parse("9223372036854775807", now: now) == .seconds(Int64.max))
  }

  @Test("dates in the past are rejected")
  func datesInThePastAreRejected() {
    #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:36 GMT", now: now) == nil)
    #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .zero)
  }
}

@Suite("Clocks", .timeLimit(.minutes(1)))
struct ClockTests {
  @Test("instant arithmetic saturates")
  func instantArithmeticSaturates() {
    let max = ClockInstant(nanoseconds: .max)
    let min = ClockInstant(nanoseconds: .min)
    #expect(max + .seconds(1) == max)
    #expect(min + .seconds(-1) == min)
    #expect(ClockInstant.at(1) + .milliseconds(500) == .at(1.5))
    #expect(ClockInstant.at(1).duration(to: .at(3)) == .seconds(2))
    #expect(ClockInstant.at(3).duration(to: .at(1)) == .seconds(-2))
    #expect(min.duration(to: max) == .nanoseconds(Int64.max))
    #expect(ClockInstant.at(0) + .seconds(Int64.max) == max)
  }

  @Test("the manual clock wakes sleepers only when time reaches them")
  func manualClockWakesSleepersOnlyWhenTimeReachesThem() async throws {
    let clock = ManualClock()
    let woke = Task {
      try await clock.sleep(until: .at(5))
      return clock.now()
    }
    await clock.waitForSleepers(count: 1)
    #expect(clock.nextSleeperDeadline == .at(5))
    clock.advance(by: .seconds(4))
    #expect(clock.sleeperCount == 1)
    clock.advance(by: .seconds(1))
    #expect(try await woke.value == .at(5))
    #expect(clock.sleeperCount == 0)
    #expect(clock.wallNow() == Date(timeIntervalSince1970: 1_700_000_005))
  }

  @Test("a manual clock sleep ends with CancellationError when cancelled")
  func manualClockSleepEndsWithCancellationError() async {
    let clock = ManualClock()
    let sleeper = Task { try await clock.sleep(until: .at(3_600)) }
    await clock.waitForSleepers(count: 1)
    sleeper.cancel()
    await #expect(throws: CancellationError.self) { try await sleeper.value }
    #expect(clock.sleeperCount == 0)
    #expect(clock.now() == .at(0))
  }

  @Test("waiting for sleepers ends early when cancelled")
  func waitingForSleepersEndsEarlyWhenCancelled() async {
    let clock = ManualClock()
    let waiter = Task { await clock.waitForSleepers(count: 1) }
    waiter.cancel()
    await waiter.value
    #expect(clock.sleeperCount == 0)
  }

  @Test("manual clock sleeps to past deadlines return at once")
  func manualClockPastDeadlinesReturnAtOnce() async throws {
    let clock = ManualClock(now: .at(10))
    try await clock.sleep(until: .at(10))
    try await clock.sleep(until: .at(2))
    #expect(clock.sleeperCount == 0)
  }

  @Test("a system clock sleep is interrupted by cancellation", .timeLimit(.minutes(1)))
  func systemClockSleepIsInterruptedByCancellation() async {
    let clock = SystemClock()
    let sleeper = Task { try await clock.sleep(until: clock.now() + .seconds(3_600)) }
    sleeper.cancel()
    // Without prompt cancellation this would wait an hour and hit the time limit.
    await #expect(throws: CancellationError.self) { try await sleeper.value }
  }

  @Test("the system clock is monotonic")
  func systemClockIsMonotonic() {
    let clock = SystemClock()
    let a = clock.now()
    let b = clock.now()
    #expect(a <= b)
  }
}

@Suite("Error kinds")
struct ErrorKindTests {
  /// The part of `protocol/error-kinds.json`, the error table's one source, that `ErrorKind` carries.
  struct Table: Decodable {
    struct Application: Decodable {
      let code: Int
      let kind: String
      let retryable: Bool
    }
    struct Standard: Decodable {
      let code: Int
      let kinds: [String: Bool]
    }
    let application: [Application]
    let standard: [Standard]
  }

  @Test("kinds, codes and retryability are the ones of protocol/error-kinds.json")
  func kindsCodesAndRetryabilityAreTheOnesOfProtocolErrorKindsJSON() throws {
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../protocol/error-kinds.json")
    let table = try JSONDecoder().decode(Table.self, from: Data(contentsOf: source))
    #expect(ErrorKind.all.map(\.rawValue) == table.application.map(\.kind))
    for entry in table.application {
      let kind = ErrorKind(rawValue: entry.kind)
      #expect(kind?.code == entry.code, "\(entry.kind)")
      #expect(kind?.retryable == entry.retryable, "\(entry.kind)")
    }
    #expect(ErrorKind.cancelled.code == table.standard.first { $0.kinds["cancelled"] != nil }?.code)
    #expect(ErrorKind(rawValue: "nope") == nil)
    #expect(ErrorKind(rawValue: "cancelled") == .cancelled)
  }

  @Test("waits are described for people")
  func waitsAreDescribedForPeople() {
    #expect(describe(.milliseconds(250)) == "250 ms")
    #expect(describe(.milliseconds(4_001)) == "5 s")
    #expect(describe(.seconds(180)) == "3 min")
    #expect(describe(.seconds(10_800)) == "3 h")
  }
}

@Suite("Rate-limit gates")
struct RateLimitGatesTests {
  let clock = ManualClock()
  let key = RateLimitKey("facebook:page:1")

  @Test("blocks extend but never shorten")
  func blocksExtendButNeverShorten() {
    let gates = RateLimitGates(clock: clock)
    gates.block(key, until: .at(10), reason: .throttled(.account))
    gates.block(key, until: .at(5), reason: .unavailable)
    #expect(gates.blockedUntil(key) == .at(10))
    #expect(gates.blockReason(key) == .throttled(.account))
    gates.block(key, until: .at(20), reason: .unavailable)
    #expect(gates.blockedUntil(key) == .at(20))
    clock.advance(to: .at(20))
    #expect(gates.blockedUntil(key) == nil)
    #expect(gates.blockReason(key) == nil)
    gates.block(key, until: .at(30), reason: .unavailable)
    gates.unblock(key)
    #expect(gates.blockedUntil(key) == nil)
    #expect(gates.check([key], now: clock.now()) == .go)
  }

  @Test("pacing spaces passes atomically")
  func pacingSpacesPassesAtomically() {
    let gates = RateLimitGates(clock: clock)
    gates.pace(key, minInterval: .seconds(6))
    #expect(gates.check([key], now: .at(0)) == .go)
    #expect(gates.check([key], now: .at(1)) == .wait(until: .at(6), reason: nil))
    #expect(gates.check([key, RateLimitKey("other")], now: .at(6)) == .go)
    #expect(gates.check([key], now: .at(6)) == .wait(until: .at(12), reason: nil))
  }

  @Test("the latest of several blocks wins")
  func theLatestOfSeveralBlocksWins() {
    let gates = RateLimitGates(clock: clock)
    let app = RateLimitKey.app("facebook")
    #expect(app.raw == "facebook:app" && app.isApp && !key.isApp)
    gates.block(app, until: .at(8), reason: .throttled(.app))
    gates.block(key, until: .at(3), reason: .throttled(.account))
    #expect(gates.check([key, app], now: .at(0)) == .wait(until: .at(8), reason: .throttled(.app)))
  }

  @Test("idle keys are forgotten")
  func idleKeysAreForgotten() {
    let gates = RateLimitGates(clock: clock)
    for index in 0..<1_000 {
      let pair = RateLimitKey("whatsapp:pair:1:\(index)")
      gates.pace(pair, minInterval: .seconds(6))
      #expect(gates.check([pair], now: clock.now()) == .go)
      clock.advance(by: .seconds(1))
    }
    // A recent pair is still paced; a long-idle one is not held back.
    #expect(gates.blockedUntil(RateLimitKey("whatsapp:pair:1:999")) == clock.now() + .seconds(5))
    #expect(gates.blockedUntil(RateLimitKey("whatsapp:pair:1:0")) == nil)
    #expect(gates.keyCount < 200)
  }
}
