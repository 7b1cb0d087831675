import Foundation
import SidecarResilience
import Synchronization
import Testing

@Suite("Resilience core: retries", .timeLimit(.minutes(1)))
struct RetryTests {
  let clock = ManualClock()

  @Test("transient twice, then success, takes three attempts")
  func transientTwiceThenSuccessTakesThreeAttempts() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.unavailable), .fail(.unavailable), .succeed("post-1")])
    let context = CallContext(deadline: nil)
    let call = core.start(script, context: context)
    #expect(await clock.advanceToNextSleeper() == .seconds(1))
    #expect(await clock.advanceToNextSleeper() == .seconds(2))
    #expect(try await call.finished.get() == "post-1")
    #expect(script.attempts == 3)
    #expect(context.attempts == 3 && context.retries == 2 && context.requests == 3)
  }

  @Test("transient failures exhaust five attempts with delays 1, 2, 4, 8 s")
  func transientFailuresExhaustFiveAttemptsWithDelaysOneTwoFourEight() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.unavailable)])
    let call = core.start(script)
    for expected in [1, 2, 4, 8] {
      #expect(await clock.advanceToNextSleeper() == .seconds(expected))
    }
    let error = try #require(await call.finished.error)
    #expect(error.kind == .transientExhausted)
    #expect(error.attempts == 5 && script.attempts == 5)
    #expect(error.failure == .unavailable)
    #expect(error.platform == "facebook")
    #expect(error.message.contains("5 attempts") && error.message.contains("503"))
    #expect(clock.now() == .at(15))
  }

  @Test("rate limits until the end exhaust as rate_limited")
  func rateLimitsUntilTheEndExhaustAsRateLimited() async throws {
    let core = makeCore(clock: clock, retry: .patient)
    let script = Script([.fail(.throttled(.account, after: .seconds(2)))])
    let call = core.start(script)
    for _ in 0..<4 {
      #expect(await clock.advanceToNextSleeper() == .seconds(2))
    }
    let error = try #require(await call.finished.error)
    #expect(error.kind == .rateLimited)
    #expect(error.retryAfter == .seconds(2))
    #expect(error.attempts == 5)
  }

  @Test("Retry-After in both forms is honoured")
  func retryAfterInBothFormsIsHonoured() async throws {
    let core = makeCore(clock: clock, retry: .patient)
    // The manual wall clock starts at 2023-11-14T22:13:20Z.
    let seconds = RetryAfter.parse("7", now: clock.wallNow())
    let date = RetryAfter.parse("Tue, 14 Nov 2023 22:13:25 GMT", now: clock.wallNow())
    #expect(date == .seconds(5))
    let script = Script([
      .fail(.throttled(.account, after: seconds)),
      .fail(PlatformFailure(.transient, message: "Unavailable.", httpStatus: 503, retryAfter: date)),
      .succeed("ok"),
    ])
    let call = core.start(script)
    #expect(await clock.advanceToNextSleeper() == .seconds(7))
    #expect(await clock.advanceToNextSleeper() == .seconds(5))
    #expect(try await call.finished.get() == "ok")
  }

  @Test("a Retry-After beyond the deadline ends the call at once")
  func aRetryAfterBeyondTheDeadlineEndsTheCallAtOnce() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.throttled(.account, after: .seconds(30))), .succeed("late")])
    let error = try #require(await core.outcome(script, context: CallContext(deadline: .at(10))).error)
    #expect(error.kind == .rateLimited)
    #expect(error.retryAfter == .seconds(30))
    #expect(error.attempts == 1)
    #expect(clock.now() == .at(0))
  }

  @Test("a Retry-After beyond the longest wait ends the call, even without a deadline")
  func aRetryAfterBeyondTheLongestWaitEndsTheCallEvenWithoutDeadline() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.throttled(.app, after: .seconds(3_600))), .succeed("late")])
    let error = try #require(await core.outcome(script).error)
    #expect(error.kind == .rateLimited)
    #expect(error.retryAfter == .seconds(3_600))
    #expect(script.attempts == 1)
  }

  @Test("a backoff that would cross the deadline ends with deadline_exceeded")
  func backoffThatWouldCrossTheDeadlineEndsWithDeadlineExceeded() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.unavailable)])
    let call = core.start(script, context: CallContext(deadline: .at(2.5)))
    #expect(await clock.advanceToNextSleeper() == .seconds(1))
    let error = try #require(await call.finished.error)
    #expect(error.kind == .deadlineExceeded)
    #expect(error.retryAfter == .seconds(2))
    #expect(error.attempts == 2)
    #expect(error.failure == .unavailable)
    #expect(clock.now() == .at(1))
  }

  @Test("a deadline already passed sends nothing")
  func aDeadlineAlreadyPassedSendsNothing() async throws {
    clock.advance(to: .at(5))
    let core = makeCore(clock: clock)
    let script = Script([.succeed("never")])
    let error = try #require(await core.outcome(script, context: CallContext(deadline: .at(5))).error)
    #expect(error.kind == .deadlineExceeded)
    #expect(error.attempts == 0 && script.attempts == 0)
  }

  @Test("an ambiguous transient failure of a publish is not retried")
  func anAmbiguousTransientFailureOfAPublishIsNotRetried() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.timedOutAfterSending), .succeed("duplicate")])
    let context = CallContext(deadline: nil)
    let error = try #require(await core.outcome(script, step: .publish, context: context).error)
    #expect(error.kind == .outcomeUnknown)
    #expect(!error.kind.retryable)
    #expect(script.attempts == 1 && context.attempts == 1)
    #expect(error.failure == .timedOutAfterSending)
    #expect(error.message.contains("duplicate"))
  }

  @Test("a publish rejected before processing is retried")
  func aPublishRejectedBeforeProcessingIsRetried() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.unavailable), .succeed("post-1")])
    let call = core.start(script, step: .publish)
    #expect(await clock.advanceToNextSleeper() == .seconds(1))
    #expect(try await call.finished.get() == "post-1")
    #expect(script.attempts == 2)
  }

  @Test("a publish that was rate limited is retried")
  func aPublishThatWasRateLimitedIsRetried() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.throttled(.account, after: .seconds(3))), .succeed("post-1")])
    let call = core.start(script, step: .publish)
    #expect(await clock.advanceToNextSleeper() == .seconds(3))
    #expect(try await call.finished.get() == "post-1")
  }

  @Test("an ambiguous failure of an idempotent step is retried")
  func anAmbiguousFailureOfAnIdempotentStepIsRetried() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.timedOutAfterSending), .succeed("container-1")])
    let call = core.start(script, step: .idempotent)
    await clock.advanceToNextSleeper()
    #expect(try await call.finished.get() == "container-1")
  }

  enum Terminal: CaseIterable, Sendable {
    case auth, permanent, outcomeUnknown, other
  }

  @Test("terminal failures end the call after one attempt", arguments: Terminal.allCases)
  func terminalFailuresEndTheCallAfterOneAttempt(terminal: Terminal) async throws {
    let core = makeCore(clock: clock)
    let step: Script.Step
    let expected: ErrorKind
    switch terminal {
    case .auth: (step, expected) = (.fail(.expiredToken), .authFailed)
    case .permanent: (step, expected) = (.fail(.invalidParams), .permanent)
    case .outcomeUnknown:
      (step, expected) = (.fail(PlatformFailure(.outcomeUnknown, message: "Status unknown.")), .outcomeUnknown)
    case .other: (step, expected) = (.throwOther, .permanent)
    }
    let script = Script([step, .succeed("never")])
    let error = try #require(await core.outcome(script).error)
    #expect(error.kind == expected)
    #expect(error.attempts == 1 && script.attempts == 1)
    #expect(clock.sleeperCount == 0)
    // Whatever the underlying error said stays out of the message.
    #expect(!error.message.contains("secret-token") && !"\(error)".contains("secret-token"))
  }

  @Test("a spent quota ends with quota_exhausted until its reset")
  func aSpentQuotaEndsWithQuotaExhaustedUntilItsReset() async throws {
    let core = makeCore(clock: clock)
    let quota = PlatformFailure(
      .quotaExhausted, message: "The daily YouTube quota is spent.", httpStatus: 403, platformCode: "quotaExceeded",
      resetsAt: clock.wallNow().addingTimeInterval(3_600))
    let script = Script([.fail(quota), .succeed("never")])
    let error = try #require(await core.outcome(script, platform: "youtube").error)
    #expect(error.kind == .quotaExhausted)
    #expect(error.retryAfter == .seconds(3_600))
    #expect(error.failure?.platformCode == "quotaExceeded")
    #expect(script.attempts == 1)
  }

  @Test("a quota reset in the far future does not overflow")
  func aQuotaResetInTheFarFutureDoesNotOverflow() async throws {
    let core = makeCore(clock: clock)
    let quota = PlatformFailure(.quotaExhausted, message: "Quota spent.", resetsAt: .distantFuture)
    let error = try #require(await core.outcome(Script([.fail(quota)])).error)
    #expect(error.kind == .quotaExhausted)
    #expect(try #require(error.retryAfter) > .seconds(60_000_000_000))
  }

  @Test("the credential layer's retry counts as an attempt")
  func theCredentialLayersRetryCountsAsAnAttempt() async throws {
    let core = makeCore(clock: clock)
    let context = CallContext(deadline: nil)
    let first = try #require(await core.outcome(Script([.fail(.expiredToken)]), context: context).error)
    #expect(first.kind == .authFailed && first.attempts == 1)
    context.retries += 1
    #expect(try await core.outcome(Script([.succeed("ok")]), context: context).get() == "ok")
    #expect(context.attempts == 2 && context.requests == 2)
  }
}

@Suite("Resilience core: cancellation", .timeLimit(.minutes(1)))
struct CancellationTests {
  let clock = ManualClock()

  @Test("cancellation during backoff ends the call without waiting")
  func cancellationDuringBackoffEndsTheCallWithoutWaiting() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.unavailable), .succeed("never")])
    let call = core.start(script)
    await clock.waitForSleepers(count: 1)
    call.cancel()
    let error = try #require(await call.finished.error)
    #expect(error.kind == .cancelled && error.isCancellation)
    #expect(error.failure == .unavailable)
    #expect(script.attempts == 1)
    #expect(clock.now() == .at(0) && clock.sleeperCount == 0)
  }

  @Test("cancellation during a gate wait sends nothing")
  func cancellationDuringAGateWaitSendsNothing() async throws {
    let core = makeCore(clock: clock, retry: .patient)
    let page = RateLimitKey("facebook:page:1")
    core.gates.block(page, until: .at(100), reason: .throttled(.account))
    let script = Script([.succeed("never")])
    let call = core.start(script, gates: [page])
    await clock.waitForSleepers(count: 1)
    call.cancel()
    #expect(await call.finished.error?.kind == .cancelled)
    #expect(script.attempts == 0)
  }

  @Test("cancellation during the attempt ends the call")
  func cancellationDuringTheAttemptEndsTheCall() async throws {
    let core = makeCore(clock: clock)
    let call = core.start(Script([.hang(clock)]))
    await clock.waitForSleepers(count: 1)
    call.cancel()
    #expect(await call.finished.error?.kind == .cancelled)
    #expect(core.breakerStatus(platform: "facebook").consecutiveFailures == 0)
  }

  @Test("cancellation interrupts a real backoff", .timeLimit(.minutes(1)))
  func cancellationInterruptsARealBackoff() async throws {
    let core = ResilienceCore(retry: RetryPolicy(baseDelay: .seconds(3_600), maxDelay: .seconds(3_600)))
    let script = Script([.fail(.unavailable), .succeed("never")])
    let call = Task {
      try await core.run(platform: "facebook", step: .idempotent, context: CallContext(deadline: nil)) {
        try await script.attempt()
      }
    }
    call.cancel()
    // An uninterrupted backoff would wait an hour and hit the time limit.
    let error = try #require(await call.result.error as? SidecarError)
    #expect(error.kind == .cancelled)
  }
}

@Suite("Resilience core: gates", .timeLimit(.minutes(1)))
struct GateTests {
  let clock = ManualClock()
  let page = RateLimitKey("facebook:page:1")
  let app = RateLimitKey.app("facebook")

  @Test("a block that fits the deadline is waited out")
  func aBlockThatFitsTheDeadlineIsWaitedOut() async throws {
    let core = makeCore(clock: clock)
    core.gates.block(page, until: .at(5), reason: .throttled(.account))
    let script = Script([.succeed("ok")])
    let context = CallContext(deadline: .at(10))
    let call = core.start(script, gates: [page], context: context)
    #expect(await clock.advanceToNextSleeper() == .seconds(5))
    #expect(try await call.finished.get() == "ok")
    #expect(context.rateLimitWaits == 1 && context.attempts == 1 && context.retries == 0)
    #expect(context.waited == .seconds(5))
  }

  /// A sidecar killed while its publish waits here has sent nothing: the shared store must not have heard "sending"
  /// yet, or the call's retry is answered outcome_unknown instead of being published.
  @Test("a publish waiting on a gate announces itself only once its request may go")
  func aPublishWaitingOnAGateAnnouncesItselfOnlyOnceItsRequestMayGo() async throws {
    let core = makeCore(clock: clock)
    core.gates.block(page, until: .at(5), reason: .throttled(.account))
    let announced = Mutex(false)
    let context = CallContext(deadline: nil) { announced.withLock { $0 = true } }
    let call = core.start(Script([.succeed("ok")]), step: .publish, gates: [page], context: context)
    await clock.waitForSleepers(count: 1)
    #expect(!announced.withLock { $0 }, "announced while waiting on the gate")
    #expect(await clock.advanceToNextSleeper() == .seconds(5))
    #expect(try await call.finished.get() == "ok")
    #expect(announced.withLock { $0 })
  }

  @Test("a block that outlasts the deadline fails fast without a request")
  func aBlockThatOutlastsTheDeadlineFailsFastWithoutARequest() async throws {
    let core = makeCore(clock: clock)
    core.gates.block(page, until: .at(30), reason: .throttled(.account))
    let script = Script([.succeed("never")])
    let error = try #require(await core.outcome(script, gates: [page], context: CallContext(deadline: .at(10))).error)
    #expect(error.kind == .rateLimited)
    #expect(error.retryAfter == .seconds(30))
    #expect(error.attempts == 0 && script.attempts == 0)
    #expect(error.failure == .throttled(.account))
  }

  @Test("an app rate limit holds back other calls of the app")
  func anAppRateLimitHoldsBackOtherCallsOfTheApp() async throws {
    let core = makeCore(clock: clock)
    let first = try #require(
      await core.outcome(
        Script([.fail(.throttled(.app, after: .seconds(20)))]), gates: [app, page],
        context: CallContext(deadline: .at(10))
      ).error)
    #expect(first.kind == .rateLimited && first.retryAfter == .seconds(20))
    #expect(core.gates.blockedUntil(app) == .at(20))
    #expect(core.gates.blockedUntil(page) == nil)
    let other = Script([.succeed("never")])
    let second = try #require(
      await core.outcome(other, gates: [app, RateLimitKey("facebook:page:2")], context: CallContext(deadline: .at(10)))
        .error)
    #expect(second.kind == .rateLimited && second.retryAfter == .seconds(20))
    #expect(other.attempts == 0)
    // A call that does not name the app gate (a token refresh) is not held back.
    #expect(try await core.outcome(Script([.succeed("token")])).get() == "token")
  }

  @Test("an account rate limit blocks the first non-app gate and others wait behind it")
  func anAccountRateLimitBlocksTheFirstNonAppGateAndOthersWaitBehindIt() async throws {
    let core = makeCore(clock: clock)
    let script = Script([.fail(.throttled(.account, after: .seconds(3))), .succeed("first")])
    let first = core.start(script, gates: [app, page])
    await clock.waitForSleepers(count: 1)
    #expect(core.gates.blockedUntil(page) == .at(3))
    #expect(core.gates.blockedUntil(app) == nil)
    let waitingContext = CallContext(deadline: .at(60))
    let second = core.start(Script([.succeed("second")]), gates: [page], context: waitingContext)
    await clock.waitForSleepers(count: 2)
    clock.advance(to: .at(3))
    #expect(try await first.finished.get() == "first")
    #expect(try await second.finished.get() == "second")
    #expect(waitingContext.rateLimitWaits == 1)
    #expect(script.attempts == 2)
  }

  @Test("paced calls are spaced by the interval")
  func pacedCallsAreSpacedByTheInterval() async throws {
    let core = makeCore(clock: clock)
    let pair = RateLimitKey("whatsapp:pair:15550001:15550002")
    core.gates.pace(pair, minInterval: .seconds(6))
    #expect(try await core.outcome(Script([.succeed("m1")]), platform: "whatsapp", gates: [pair]).get() == "m1")
    clock.advance(by: .seconds(1))
    core.gates.pace(pair, minInterval: .seconds(6))
    let second = core.start(Script([.succeed("m2")]), platform: "whatsapp", gates: [pair])
    #expect(await clock.advanceToNextSleeper() == .seconds(5))
    #expect(try await second.finished.get() == "m2")
  }

  @Test("replicas sharing counters pace one recipient together")
  func replicasSharingCountersPaceOneRecipientTogether() async throws {
    // Two sidecars (two cores) sharing one store: each alone would let its first message go at once.
    let shared = MemoryCounters()
    let replicas = [makeCore(clock: clock, counters: shared), makeCore(clock: clock, counters: shared)]
    let pair = RateLimitKey("whatsapp:pair:15550001:15550002")
    for replica in replicas { replica.gates.pace(pair, minInterval: .seconds(6)) }
    let first = Script([.succeed("m1")])
    #expect(try await replicas[0].outcome(first, platform: "whatsapp", gates: [pair]).get() == "m1")
    clock.advance(by: .seconds(1))
    let second = Script([.succeed("m2")])
    let waiting = replicas[1].start(
      second, platform: "whatsapp", gates: [pair], context: CallContext(deadline: .at(60)))
    #expect(await clock.advanceToNextSleeper() == .seconds(5))
    #expect(try await waiting.finished.get() == "m2")
    // A third that cannot wait for its slot is refused without a request.
    let hurried = Script([.succeed("never")])
    let error = try #require(
      await replicas[0].outcome(hurried, platform: "whatsapp", gates: [pair], context: CallContext(deadline: .at(8)))
        .error)
    #expect(error.kind == .rateLimited && error.retryAfter == .seconds(6))
    #expect(hurried.attempts == 0)
  }

  @Test("a quota block fails fast as quota_exhausted")
  func aQuotaBlockFailsFastAsQuotaExhausted() async throws {
    let core = makeCore(clock: clock)
    let quota = PlatformFailure(.quotaExhausted, message: "The daily quota is spent.", platformCode: "quotaExceeded")
    core.gates.block(.app("youtube"), until: .at(3_600), reason: quota)
    let script = Script([.succeed("never")])
    let error = try #require(
      await core.outcome(script, platform: "youtube", gates: [.app("youtube")], context: CallContext(deadline: .at(60)))
        .error)
    #expect(error.kind == .quotaExhausted && error.retryAfter == .seconds(3_600))
    #expect(script.attempts == 0)
  }
}

@Suite("Resilience core: retry budget", .timeLimit(.minutes(1)))
struct RetryBudgetTests {
  let clock = ManualClock()

  func collect(_ core: ResilienceCore, _ scripts: [Script]) -> AsyncStream<Result<String, SidecarError>> {
    let (stream, continuation) = AsyncStream.makeStream(of: Result<String, SidecarError>.self)
    for script in scripts {
      Task { continuation.yield(await core.start(script).finished) }
    }
    return stream
  }

  @Test("at most three calls retry at once when few are active")
  func atMostThreeCallsRetryAtOnceWhenFewAreActive() async throws {
    #expect(RetryBudgetConfiguration().allowedRetries(activeCalls: 4) == 3)
    let core = makeCore(clock: clock, breaker: BreakerConfiguration(enabled: false))
    let scripts = (0..<4).map { _ in Script([.fail(.unavailable), .succeed("ok")]) }
    var results = collect(core, scripts).makeAsyncIterator()
    await clock.waitForSleepers(count: 3)
    let refused = try #require(await results.next()?.error)
    #expect(refused.kind == .transientExhausted)
    #expect(refused.message.contains("retry budget"))
    #expect(refused.attempts == 1)
    clock.advance(by: .seconds(1))
    for _ in 0..<3 {
      #expect(try await results.next()?.get() == "ok")
    }
  }

  @Test("twenty percent of active calls may retry")
  func twentyPercentOfActiveCallsMayRetry() async throws {
    #expect(RetryBudgetConfiguration().allowedRetries(activeCalls: 20) == 4)
    let core = makeCore(clock: clock, breaker: BreakerConfiguration(enabled: false))
    // All twenty are in flight before any fails.
    let scripts = (0..<20).map { _ in Script([.failAt(clock, .at(1), .unavailable), .succeed("ok")]) }
    var results = collect(core, scripts).makeAsyncIterator()
    await clock.waitForSleepers(count: 20)
    clock.advance(to: .at(1))
    var refused = 0
    for _ in 0..<16 {
      if await results.next()?.error?.kind == .transientExhausted { refused += 1 }
    }
    #expect(refused == 16)
    await clock.waitForSleepers(count: 4)
    clock.advance(to: .at(2))
    for _ in 0..<4 {
      #expect(try await results.next()?.get() == "ok")
    }
  }
}

@Suite("Resilience core: breakers", .timeLimit(.minutes(1)))
struct BreakerTests {
  let clock = ManualClock()
  let log = TransitionLog()

  @Test("opens after five failures, refuses without requests, then recovers through a probe")
  func opensAfterFiveFailuresRefusesWithoutRequestsThenRecoversThroughAProbe() async throws {
    let core = makeCore(clock: clock, log: log)
    let first = core.start(Script([.fail(.unavailable)]))
    for _ in 0..<4 { await clock.advanceToNextSleeper() }
    #expect(await first.finished.error?.kind == .transientExhausted)
    #expect(log.all == ["facebook:CLOSED>OPEN"])

    let refusedScript = Script([.succeed("never")])
    let refused = try #require(await core.outcome(refusedScript).error)
    #expect(refused.kind == .circuitOpen && refused.kind.retryable)
    #expect(refused.retryAfter == .seconds(60))
    #expect(refused.attempts == 0 && refusedScript.attempts == 0)
    #expect(
      core.breakerStatus() == [
        "facebook": BreakerSnapshot(state: .open, openUntil: .at(75), retryAfter: .seconds(60), opens: 1)
      ])

    clock.advance(by: .seconds(60))
    #expect(try await core.outcome(Script([.succeed("post-1")])).get() == "post-1")
    #expect(log.all == ["facebook:CLOSED>OPEN", "facebook:OPEN>HALF_OPEN", "facebook:HALF_OPEN>CLOSED"])
    #expect(core.breakerStatus(platform: "facebook") == BreakerSnapshot(state: .closed, opens: 1))
    #expect(core.breakerStatus(platform: "linkedin") == BreakerSnapshot())
  }

  @Test("a failed probe reopens the breaker")
  func aFailedProbeReopensTheBreaker() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]))
    clock.advance(by: .seconds(60))
    #expect(await core.outcome(Script([.fail(.unavailable)])).error?.kind == .transientExhausted)
    #expect(log.all == ["facebook:CLOSED>OPEN", "facebook:OPEN>HALF_OPEN", "facebook:HALF_OPEN>OPEN"])
    let refused = try #require(await core.outcome(Script([.succeed("never")])).error)
    #expect(refused.kind == .circuitOpen && refused.retryAfter == .seconds(60))
  }

  @Test("a retrying call stops as soon as the breaker opens")
  func aRetryingCallStopsAsSoonAsTheBreakerOpens() async throws {
    let core = makeCore(clock: clock, breaker: BreakerConfiguration(failureThreshold: 2), log: log)
    let call = core.start(Script([.fail(.unavailable)]))
    #expect(await clock.advanceToNextSleeper() == .seconds(1))
    let error = try #require(await call.finished.error)
    #expect(error.kind == .circuitOpen)
    #expect(error.retryAfter == .seconds(60))
    #expect(error.attempts == 2 && error.failure == .unavailable)
    #expect(clock.sleeperCount == 0)
  }

  @Test("failures that say nothing about the platform do not count")
  func failuresThatSayNothingAboutThePlatformDoNotCount() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    let neutral: [PlatformFailure] = [
      .invalidParams, .expiredToken, .throttled(.app), .throttled(.account),
      PlatformFailure(.quotaExhausted, message: "Quota spent."),
      PlatformFailure(.outcomeUnknown, message: "Processing state unknown.", httpStatus: 200),
    ]
    for failure in neutral {
      let script = Script([.fail(failure)])
      _ = await core.outcome(script)
      #expect(script.attempts == 1)
    }
    #expect(core.breakerStatus(platform: "facebook") == BreakerSnapshot(state: .closed))
    #expect(log.all.isEmpty)
    // An unknown outcome from the transport (no response at all) does count.
    _ = await core.outcome(Script([.fail(PlatformFailure(.outcomeUnknown, message: "Connection reset."))]))
    #expect(log.all == ["facebook:CLOSED>OPEN"])
  }

  @Test("breakers are per platform")
  func breakersArePerPlatform() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]), platform: "linkedin")
    #expect(try await core.outcome(Script([.succeed("ok")]), platform: "facebook").get() == "ok")
    #expect(core.breakerStatus()["linkedin"]?.state == .open)
    #expect(core.breakerStatus()["facebook"]?.state == .closed)
  }

  @Test("a disabled breaker never refuses")
  func aDisabledBreakerNeverRefuses() async throws {
    let core = makeCore(
      clock: clock, retry: .none, breaker: BreakerConfiguration(enabled: false, failureThreshold: 1), log: log)
    let script = Script([.fail(.unavailable)])
    for _ in 0..<10 { _ = await core.outcome(script) }
    #expect(script.attempts == 10)
    #expect(log.all.isEmpty)
  }

  @Test("reset closes an open breaker")
  func resetClosesAnOpenBreaker() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]))
    core.resetBreaker(platform: "facebook")
    #expect(log.all == ["facebook:CLOSED>OPEN", "facebook:OPEN>CLOSED"])
    #expect(try await core.outcome(Script([.succeed("ok")])).get() == "ok")
  }

  @Test("status turns an expired open breaker half-open")
  func statusTurnsAnExpiredOpenBreakerHalfOpen() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]))
    clock.advance(by: .seconds(60))
    #expect(core.breakerStatus()["facebook"] == BreakerSnapshot(state: .halfOpen, opens: 1))
    #expect(log.all == ["facebook:CLOSED>OPEN", "facebook:OPEN>HALF_OPEN"])
  }

  @Test("a cancelled probe frees its slot")
  func aCancelledProbeFreesItsSlot() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]))
    clock.advance(by: .seconds(60))
    let probe = core.start(Script([.hang(clock)]))
    await clock.waitForSleepers(count: 1)
    #expect(await core.outcome(Script([.succeed("never")])).error?.kind == .circuitOpen)
    probe.cancel()
    #expect(await probe.finished.error?.kind == .cancelled)
    #expect(try await core.outcome(Script([.succeed("ok")])).get() == "ok")
    #expect(log.all.last == "facebook:HALF_OPEN>CLOSED")
  }

  @Test("concurrent callers race for the half-open probes")
  func concurrentCallersRaceForTheHalfOpenProbes() async throws {
    let core = makeCore(
      clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1, halfOpenProbes: 2), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]))
    clock.advance(by: .seconds(60))
    let latch = Latch()
    let started = Counter()
    enum Event {
      case started
      case refused(SidecarError)
    }
    let (events, continuation) = AsyncStream.makeStream(of: Event.self)
    try await withThrowingTaskGroup(of: String?.self) { group in
      for _ in 0..<50 {
        group.addTask {
          do throws(SidecarError) {
            return try await core.run(platform: "facebook", step: .idempotent, context: CallContext(deadline: nil)) {
              started.increment()
              continuation.yield(.started)
              await latch.wait()
              return "probe"
            }
          } catch {
            continuation.yield(.refused(error))
            return nil
          }
        }
      }
      var refusals: [SidecarError] = []
      var seen = 0
      for await event in events {
        if case .refused(let error) = event { refusals.append(error) }
        seen += 1
        if seen == 50 { break }
      }
      #expect(started.count == 2)
      #expect(refusals.count == 48)
      #expect(refusals.allSatisfy { $0.kind == .circuitOpen && $0.retryAfter == nil && $0.attempts == 0 })
      latch.open()
      var probes = 0
      for try await result in group where result == "probe" { probes += 1 }
      #expect(probes == 2)
    }
    #expect(core.breakerStatus(platform: "facebook").state == .closed)
  }

  @Test("a thousand concurrent callers against an open breaker make no request")
  func aThousandConcurrentCallersAgainstAnOpenBreakerMakeNoRequest() async throws {
    let core = makeCore(clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: 1), log: log)
    _ = await core.outcome(Script([.fail(.unavailable)]))
    let requests = Counter()
    let kinds = await withTaskGroup(of: ErrorKind?.self) { group in
      for _ in 0..<1_000 {
        group.addTask {
          do throws(SidecarError) {
            _ = try await core.run(platform: "facebook", step: .publish, context: CallContext(deadline: nil)) {
              requests.increment()
              return "never"
            }
            return nil
          } catch {
            return error.kind
          }
        }
      }
      return await group.reduce(into: [ErrorKind?]()) { $0.append($1) }
    }
    #expect(kinds.count == 1_000)
    #expect(kinds.allSatisfy { $0 == .circuitOpen })
    #expect(requests.count == 0)
  }

  @Test("random outcomes through the core agree with the reference model", arguments: [11, 12, 13] as [UInt64])
  func randomOutcomesThroughTheCoreAgreeWithTheReferenceModel(seed: UInt64) async throws {
    let random = SeededRandom(seed: seed)
    let threshold = 1 + Int(random.next() % 5)
    let core = makeCore(
      clock: clock, retry: .none, breaker: BreakerConfiguration(failureThreshold: threshold), log: log)
    var model = CircuitBreakerStateMachineTests.ReferenceModel(threshold: threshold, openNanoseconds: 60_000_000_000)
    for step in 0..<400 {
      clock.advance(by: .nanoseconds(Int64(random.next() % 20_000_000_000)))
      let roll = random.nextUnit()
      let (scriptStep, outcome): (Script.Step, CircuitBreakerStateMachine.Outcome) =
        roll < 0.5
        ? (.fail(.unavailable), .failure)
        : roll < 0.8 ? (.succeed("ok"), .success) : (.fail(.invalidParams), .neutral)
      let script = Script([scriptStep])
      _ = await core.outcome(script)
      let expectedRequest = model.call(at: clock.now().nanoseconds, outcome)
      #expect((script.attempts == 1) == expectedRequest, "step \(step)")
      #expect(
        core.breakerStatus(platform: "facebook").state == model.state(at: clock.now().nanoseconds), "step \(step)")
    }
    #expect(model.opens > 3)
    #expect(log.all.filter { $0.hasSuffix(">OPEN") }.count == model.opens)
  }
}

/// `retry.maxWait`: the total a call spends waiting on rate limits, past which it answers at once.
@Suite("Resilience core: the bound on waits", .timeLimit(.minutes(1)))
struct WaitBoundTests {
  let clock = ManualClock()

  @Test("a platform-requested wait past the bound ends the call at once")
  func aPlatformRequestedWaitPastTheBoundEndsTheCallAtOnce() async throws {
    let core = makeCore(clock: clock)  // the default bound, 5 s
    let script = Script([.fail(.throttled(.app, after: .seconds(60))), .succeed("late")])
    let error = try #require(await core.outcome(script).error)
    #expect(error.kind == .rateLimited && error.retryAfter == .seconds(60))
    #expect(error.message.contains("retry.maxWaitMs"))
    #expect(script.attempts == 1 && clock.now() == .at(0))
  }

  @Test("waits add up against the bound")
  func waitsAddUpAgainstTheBound() async throws {
    let core = makeCore(clock: clock)
    let throttled = Script.Step.fail(.throttled(.account, after: .seconds(2)))
    let script = Script([throttled, throttled, throttled, .succeed("never")])
    let context = CallContext(deadline: nil)
    let call = core.start(script, gates: [RateLimitKey("facebook:page:1")], context: context)
    #expect(await clock.advanceToNextSleeper() == .seconds(2))
    #expect(await clock.advanceToNextSleeper() == .seconds(2))
    let error = try #require(await call.finished.error)
    #expect(error.kind == .rateLimited && error.retryAfter == .seconds(2))
    #expect(context.waited == .seconds(4) && script.attempts == 3)
  }

  @Test("a pacing gate past the bound answers at once with its wait")
  func aPacingGatePastTheBoundAnswersAtOnceWithItsWait() async throws {
    let core = makeCore(clock: clock)
    let pair = RateLimitKey("whatsapp:pair:15550001:15550002")
    core.gates.pace(pair, minInterval: .seconds(6))
    #expect(try await core.outcome(Script([.succeed("m1")]), platform: "whatsapp", gates: [pair]).get() == "m1")
    let second = Script([.succeed("never")])
    let error = try #require(await core.outcome(second, platform: "whatsapp", gates: [pair]).error)
    #expect(error.kind == .rateLimited && error.retryAfter == .seconds(6) && error.attempts == 0)
    #expect(second.attempts == 0)
  }
}
