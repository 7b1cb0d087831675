import Foundation
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport

/// A platform environment over a scripted transport with fast, deterministic resilience settings.
struct TestHarness {
  let transport: ScriptedTransport
  let environment: PlatformEnvironment
  let credentials: FixedCredentials
  let store: CredentialStore
  let logs = InMemoryLogSink()

  init(
    transport: ScriptedTransport, credentials: [CredentialKey: Credential], clock: any SidecarClock = SystemClock(),
    // Platform tests follow platform-requested waits of minutes; the bound on them is the core's tests' concern.
    retry: RetryPolicy = RetryPolicy(
      maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(4), maxWait: .seconds(300)),
    counters: (any SharedCounters)? = nil
  ) {
    self.transport = transport
    let logger = Logger(level: .debug, sink: logs)
    let core = ResilienceCore(
      retry: retry, breaker: BreakerConfiguration(), budget: RetryBudgetConfiguration(), clock: clock,
      random: SeededRandom(seed: 1), counters: counters, onBreakerTransition: { _, _, _ in })
    // A short per-attempt timeout: the scripted transport never waits, and a lost answer's settle time is this long.
    environment = PlatformEnvironment(
      endpoints: PlatformEndpoints(), transport: transport, core: core,
      media: MediaPolicy(allowPrivateNetworks: false, localRoots: [Self.temporaryRoot]),
      timeout: .milliseconds(20), logger: logger)
    self.credentials = FixedCredentials(credentials)
    store = CredentialStore(source: self.credentials, clock: clock, logger: logger)
  }

  /// The real path of the temporary directory, where tests put local videos: the harness's `media.localRoots`.
  static let temporaryRoot: String = {
    let resolved = realpath(NSTemporaryDirectory(), nil)!
    defer { free(resolved) }
    return String(cString: resolved)
  }()

  /// - Parameter interruptedSince: the call takes over a publish whose sidecar died while sending it (claimed then).
  func context(
    _ key: CredentialKey, deadline: Duration? = nil, progress: WorkDoneProgress? = nil, interruptedSince: Date? = nil,
    idempotencyScope: String? = nil
  ) -> OperationContext {
    let clock = environment.clock
    return OperationContext(
      key: key, agentId: "AGENT-1", correlationId: "corr-1",
      call: CallContext(
        deadline: deadline.map { clock.now() + $0 }, progress: progress, interruptedSince: interruptedSince),
      credentials: store, logger: environment.logger, idempotencyScope: idempotencyScope)
  }
}
