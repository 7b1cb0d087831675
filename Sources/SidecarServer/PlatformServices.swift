#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarMetrics
import SidecarPlatforms
import SidecarResilience
import Synchronization

/// The methods that exist once `initialize` has fixed the configuration: platform operations, metrics, breaker.
///
/// Every platform operation takes the same path: common params, up-front content checks, idempotency, the platform
/// client (which goes through the one resilience core), then one metric event and one answer.
final class PlatformServices: Sendable {
  let configuration: SidecarConfiguration
  let connection: Connection
  let logger: Logger
  let clients: [Platform: any PlatformClient]
  let core: ResilienceCore
  let credentials: CredentialStore
  let metrics = MetricsAggregator()
  /// Idempotency records, shared with the other sidecars of the deployment (local journal or Redis).
  let sharedState: any SharedStateStore
  private let clock: any SidecarClock
  private let http = HTTPTransportStatus()

  init(configuration: SidecarConfiguration, connection: Connection, logger: Logger) throws {
    self.configuration = configuration
    self.connection = connection
    self.logger = logger
    let clock = SystemClock()
    self.clock = clock
    let metrics = self.metrics
    let sharedState: any SharedStateStore & RefreshLeases
    if let url = configuration.sharedStateURL {
      sharedState = try RedisStateStore(url: url, keyPrefix: configuration.sharedStateKeyPrefix, logger: logger)
    } else {
      sharedState = try LocalStateStore(directory: configuration.stateDir, logger: logger)
    }
    self.sharedState = sharedState
    core = ResilienceCore(
      retry: RetryPolicy(
        maxAttempts: configuration.retryMaxAttempts, baseDelay: .milliseconds(configuration.retryBaseDelayMs),
        maxDelay: .milliseconds(configuration.retryMaxDelayMs), jitter: configuration.retryJitter,
        maxWait: .milliseconds(configuration.retryMaxWaitMs)),
      breaker: BreakerConfiguration(
        enabled: configuration.breakerEnabled, failureThreshold: configuration.breakerFailureThreshold,
        openDuration: .milliseconds(configuration.breakerOpenMs), halfOpenProbes: configuration.breakerHalfOpenProbes),
      budget: RetryBudgetConfiguration(), clock: clock, random: SystemRandom(), counters: sharedState.counters,
      onBreakerTransition: { [connection, logger] platform, from, to in
        if to == .open { metrics.recordBreakerOpened(platform: platform) }
        logger.warn(
          "circuit breaker changed state",
          ["platform": .string(platform), "from": .string(from.rawValue), "to": .string(to.rawValue)])
        connection.notify(
          "breaker/stateChanged",
          params: [
            "platform": .string(platform), "from": .string(from.rawValue), "to": .string(to.rawValue),
            "at": .string(RFC3339.string(from: Date())),
          ])
      })
    credentials = CredentialStore(
      source: ParentCredentials(
        connection: connection, resolveTimeout: .milliseconds(configuration.credentialsResolveTimeoutMs),
        updateTimeout: .milliseconds(configuration.credentialsUpdateTimeoutMs)),
      clock: clock, logger: logger, fleet: sharedState)
    let transport = Self.makeTransport(configuration, logger: logger, status: http)
    var environment = PlatformEnvironment(
      endpoints: configuration.endpoints, transport: transport, core: core,
      media: MediaPolicy(
        allowPrivateNetworks: configuration.allowPrivateNetworks, localRoots: configuration.mediaLocalRoots,
        maxBytes: configuration.mediaMaxBytes),
      timeout: .milliseconds(configuration.httpTimeoutMs), connectTimeout: .milliseconds(configuration.httpConnectTimeoutMs),
      logger: logger, appSecrets: configuration.appSecrets)
    environment.youtubeDailyQuotaUnits = configuration.youtubeDailyQuotaUnits
    clients = makePlatformClients(environment)
    if sharedState.isShared {
      blockSync.withLock { $0 = Task { [weak self] in await self?.shareBlocks() } }
    }
  }

  deinit { blockSync.withLock { $0?.cancel() } }

  private let blockSync = Mutex<Task<Void, Never>?>(nil)

  /// Shares open breakers and rate-limit blocks with the other sidecars of the store, twice a second: one that starts
  /// here is published with the time it ends; one that started elsewhere holds here until then. Each replica then
  /// probes a breaker on its own timer.
  private func shareBlocks() async {
    var known: [String: Date] = [:]
    while !Task.isCancelled {
      let (now, wallNow) = (clock.now(), clock.wallNow())
      for (name, until, detail) in localBlocks(now: now, wallNow: wallNow)
      where known[name].map({ abs($0.timeIntervalSince(until)) >= 1 }) ?? true {
        known[name] = until
        await sharedState.shareBlock(name, until: until, detail: detail)
      }
      for (name, block) in await sharedState.sharedBlocks() where block.until > wallNow {
        if let previous = known[name], previous >= block.until.addingTimeInterval(-1) { continue }
        known[name] = block.until
        adopt(name, block, until: now + .milliseconds(Int(block.until.timeIntervalSince(wallNow) * 1000)))
      }
      known = known.filter { $0.value > wallNow }
      try? await Task.sleep(for: .milliseconds(500))
    }
  }

  /// Breakers open here (`breaker:<platform>`) and gate blocks here (`gate:<key>`), with wall-clock ends.
  private func localBlocks(now: ClockInstant, wallNow: Date) -> [(String, Date, JSONValue)] {
    var blocks: [(String, Date, JSONValue)] = []
    if configuration.breakerEnabled {
      for (platform, snapshot) in core.breakerStatus() where snapshot.state == .open {
        guard let retryAfter = snapshot.retryAfter else { continue }
        blocks.append(("breaker:\(platform)", wallNow.addingTimeInterval(Double(Self.milliseconds(retryAfter)) / 1000), .null))
      }
    }
    for (key, until, reason) in core.gates.blocks() {
      let quota = reason.classification == .quotaExhausted
      blocks.append(
        (
          "gate:\(key.raw)", wallNow.addingTimeInterval(Double(Self.milliseconds(now.duration(to: until))) / 1000),
          ["quota": .bool(quota), "message": .string(reason.message)]
        ))
    }
    return blocks
  }

  /// Holds here a block another sidecar shared.
  private func adopt(_ name: String, _ block: SharedBlock, until: ClockInstant) {
    if name.hasPrefix("breaker:") {
      let platform = String(name.dropFirst("breaker:".count))
      guard configuration.breakerEnabled, core.breakerStatus(platform: platform).state != .open else { return }
      logger.info("circuit breaker opened by another sidecar", ["platform": .string(platform)])
      core.adoptOpenBreaker(platform: platform, until: until)
    } else if name.hasPrefix("gate:") {
      let key = RateLimitKey(String(name.dropFirst("gate:".count)))
      let quota = block.detail["quota"]?.boolValue == true
      let reason = PlatformFailure(
        quota ? .quotaExhausted : .rateLimited(scope: key.isApp ? .app : .account),
        message: block.detail["message"]?.stringValue ?? "rate limited (seen by another sidecar)",
        resetsAt: quota ? block.until : nil)
      core.gates.block(key, until: until, reason: reason)
    }
  }

  private static func makeTransport(
    _ configuration: SidecarConfiguration, logger: Logger, status: HTTPTransportStatus
  ) -> any HTTPTransport {
    let settings = HTTPTransportConfiguration(
      maxConnectionsPerHost: max(64, min(configuration.maxInFlight, 1024)), caBundlePath: configuration.httpCABundle,
      userAgent: "social-sidecar/\(Server.version)")
    let name = configuration.httpTransport
    status.set(name, state: "pending", detail: nil)
    // Built on the first platform call, so that `initialize` loads neither libcurl nor URLSession.
    return makeDefaultTransport(settings, preferred: name) { [logger] chosen, usable in
      status.set(name, state: usable ? "ready" : "unavailable", detail: chosen)
      if usable {
        logger.debug("http transport ready", ["transport": .string(chosen)])
      } else {
        logger.error("no http transport can be loaded", ["reason": .string(chosen)])
      }
    }
  }

  /// `health.http` and `capabilities.http` (see `HTTPTransportStatus`), and whether no transport can run.
  var httpTransport: (json: JSONValue, unavailable: Bool) { http.value }

  var capabilities: JSONValue {
    var platforms: [String: JSONValue] = [:]
    for (platform, client) in clients {
      let operations = platform.operations + PostOperation.allCases.filter(client.postOperations.contains).map(\.rawValue)
      platforms[platform.rawValue] = .array(operations.map { .string($0) })
    }
    return [
      "platforms": .object(platforms),
      "methods": .array(Self.queryMethods.map { .string($0) }),
      "idempotency": [
        "durable": .bool(configuration.stateDir != nil || configuration.sharedStateURL != nil), "retentionHours": 24,
      ],
      "http": httpTransport.json,
    ]
  }

  /// The store of idempotency records, as `health` reports it.
  var sharedStateHealth: JSONValue { sharedState.health }

  static let queryMethods = ["breaker/reset", "breaker/status", "health", "metrics/prometheus", "metrics/snapshot"]

  func route(method: String) -> Route? {
    switch method {
    case "metrics/snapshot": return .inline { [metrics] _ in .success(metrics.snapshot()) }
    case "metrics/prometheus":
      return .inline { [self] _ in
        .success(["contentType": .string(PrometheusText.contentType), "text": .string(prometheusText())])
      }
    case "breaker/status": return .inline { [self] _ in .success(breakerStatus()) }
    case "breaker/reset": return .inline { [self] params in resetBreaker(params) }
    default: break
    }
    guard let slash = method.firstIndex(of: "/"), let platform = Platform(rawValue: String(method[..<slash])),
      let client = clients[platform]
    else { return nil }
    let operation = String(method[method.index(after: slash)...])
    // Every platform routes the post operations: where its API has none, the answer says so (`unsupported`).
    guard platform.operations.contains(operation) || PostOperation(rawValue: operation) != nil else { return nil }
    return .task { [self] params, id in await perform(operation, on: client, params: params, id: id) }
  }

  /// Flushes anything that must survive the process: refreshed tokens the parent has not acknowledged yet.
  func flush() async {
    await credentials.flushUpdates(timeout: .milliseconds(configuration.shutdownGraceMs))
  }

  // MARK: Operations

  /// Thin on purpose: only `pending` and the result live across the platform client's awaits, so a suspended call's
  /// async frame stays small (10,000 calls in flight must fit in 200 MB; see docs/performance.md). The work before
  /// and after is synchronous, in `begin` and `finish`.
  private func perform(_ operation: String, on client: any PlatformClient, params: JSONValue?, id: RequestID) async
    -> Result<JSONValue, JSONRPCError>
  {
    let pending: PendingCall
    switch await begin(operation, on: client, params: params, id: id) {
    case .run(let call): pending = call
    case .answered(let answer): return answer
    }
    pending.context.call.progress?.begin(title: "\(client.platform)/\(operation)")
    let result: Result<JSONValue, SidecarError>
    do throws(SidecarError) {
      switch pending.kind {
      case .publish(let prepared): result = .success(pending.json(try await prepared.run(pending.context)))
      case .validate, .refresh, .post: result = .success(try await Self.query(pending, on: client))
      }
    } catch {
      result = .failure(error)
    }
    return await finish(pending, result)
  }

  /// Every operation but a publish, apart so that their results take no room in `perform`'s frame.
  @inline(never)
  private static func query(_ pending: PendingCall, on client: any PlatformClient) async throws(SidecarError) -> JSONValue {
    let context = pending.context
    switch pending.kind {
    case .validate: return json(try await client.validate(context: context))
    case .refresh: return json(try await client.refresh(context: context))
    case .publish:  // `perform` runs publishes itself and never sends one here
      throw SidecarError(kind: .permanent, message: "a publish cannot run as a query")
    case .post(.delete, let postId, _):
      return pending.json(postId, try await client.delete(postId: postId, context: context))
    case .post(.insights, let postId, let metrics):
      return pending.json(postId, try await client.insights(postId: postId, context: context), only: metrics)
    case .post(.status, let postId, _):
      return pending.json(postId, try await client.status(postId: postId, context: context))
    }
  }

  private enum Start {
    case run(PendingCall)
    /// Invalid params, an idempotent replay or refusal: no platform call.
    case answered(Result<JSONValue, JSONRPCError>)
  }

  /// Params, the call's context and the idempotency decision.
  @inline(never)
  private func begin(_ operation: String, on client: any PlatformClient, params: JSONValue?, id: RequestID) async -> Start
  {
    let platform = client.platform
    let started = ContinuousClock.now
    let common: CommonParams
    let kind: PendingCall.Kind
    do throws(InvalidParams) {
      let all = try Params(params)
      common = try CommonParams(all, requireAgent: operation == platform.publishOperation)
      let content = Params(all.values.filter { !CommonParams.names.contains($0.key) })
      if operation == platform.publishOperation {
        if content.has("publishAt") && !Platform.schedulable.contains(platform) {
          throw InvalidParams(
            "`publishAt` schedules posts natively only on \(Platform.schedulable.map(\.rawValue).joined(separator: " and ")); "
              + "\(platform) publishes at once, so schedule this call in the backend instead", field: "publishAt")
        }
        kind = .publish(try client.preparePublish(content))
      } else if let postOperation = PostOperation(rawValue: operation) {
        try content.rejectUnknown(postOperation == .insights ? ["postId", "metrics"] : ["postId"], context: "\(platform)/\(operation)")
        kind = .post(postOperation, postId: try content.requiredString("postId", maxLength: 512), metrics: try Self.metrics(content))
      } else {
        try content.rejectUnknown([], context: "\(platform)/\(operation)")
        kind = operation == "validate" ? .validate : .refresh
      }
    } catch {
      return .answered(.failure(.invalidParams(error.reason, field: error.field)))
    }
    let deadline = common.deadlineMs.map { clock.now() + .milliseconds($0) }
    let progress = common.workDoneToken.map(progress(token:))
    func context(_ call: CallContext, idempotencyScope: String? = nil) -> OperationContext {
      OperationContext(
        key: CredentialKey(platform: platform, credentialRef: common.credentialRef, customerId: common.customerId),
        agentId: common.agentId, correlationId: common.correlationId, call: call, credentials: credentials,
        logger: logger.with(["correlationId": JSONValue(common.correlationId)]), idempotencyScope: idempotencyScope)
    }

    // Idempotency: only writes (publishes, deletes) carry a key that matters; the scope keeps customers apart.
    guard let key = common.idempotencyKey, kind.writes else {
      return .run(
        PendingCall(
          operation: operation, id: id, kind: kind, started: started, common: common,
          context: context(CallContext(deadline: deadline, progress: progress))))
    }
    let idempotencyKey = IdempotencyScope.key(
      platform: platform.rawValue, operation: operation, customerId: common.customerId, idempotencyKey: key)
    var fingerprinted = params?.objectValue ?? [:]
    for name in CommonParams.unfingerprinted { fingerprinted[name] = nil }
    let fingerprint = Fingerprint.of(.object(fingerprinted))
    let decision: IdempotencyDecision
    do throws(SharedStateError) {
      decision = try await sharedState.claim(key: idempotencyKey, fingerprint: fingerprint)
    } catch {
      logger.error("idempotency store failed", ["error": .string(error.description)])
      return .answered(.failure(Self.applicationError(Self.storeUnavailable(platform))))
    }
    func claimed(interruptedSince: Date?) -> PendingCall {
      // The store hears "sending" before the first publish request, so a sidecar that dies after it is never re-sent
      // blindly: whoever takes the key over gets it as interrupted, and looks for the post first.
      let call = CallContext(deadline: deadline, progress: progress, interruptedSince: interruptedSince) {
        [sharedState, logger] () async throws(SidecarError) in
        do throws(SharedStateError) {
          try await sharedState.markSending(key: idempotencyKey)
        } catch {
          logger.error("idempotency store failed before publishing", ["error": .string(error.description)])
          throw Self.storeUnavailable(platform)
        }
      }
      return PendingCall(
        operation: operation, id: id, kind: kind, started: started, common: common,
        context: context(call, idempotencyScope: idempotencyKey), idempotency: (idempotencyKey, fingerprint))
    }
    switch decision {
    case .proceed:
      return .run(claimed(interruptedSince: nil))
    case .interrupted(let since):
      logger.info("taking over a publish whose sidecar stopped while sending it; looking for the post first", [:])
      return .run(claimed(interruptedSince: since))
    case .replay(let response):
      record(
        operation, platform: platform, common: common, started: started, outcome: .success(response), replayed: true,
        answering: id)
      return .answered(.success(response))
    case .replayError(let error):
      let rpcError = JSONRPCError(
        code: error["code"]?.intValue ?? ErrorKind.outcomeUnknown.code, message: error["message"]?.stringValue ?? "outcome unknown",
        data: error["data"])
      record(
        operation, platform: platform, common: common, started: started, outcome: .failure(rpcError), replayed: true,
        answering: id)
      return .answered(.failure(rpcError))
    case .conflict:
      return .answered(
        .failure(
          Self.applicationError(
            SidecarError(
              kind: .idempotencyConflict,
              message: "a call with idempotencyKey \(key) is still running; wait for its answer or retry later",
              platform: platform.rawValue))))
    case .mismatch:
      return .answered(
        .failure(
          Self.applicationError(
            SidecarError(
              kind: .idempotencyMismatch,
              message: "idempotencyKey \(key) was already used with different params; use a new key for new content",
              platform: platform.rawValue))))
    }
  }

  /// The answer, the idempotency record and the metrics of a call that reached the platform client.
  @inline(never)
  private func finish(_ pending: PendingCall, _ result: Result<JSONValue, SidecarError>) async -> Result<JSONValue, JSONRPCError>
  {
    let (operation, platform, call) = (pending.operation, pending.context.key.platform, pending.context.call)
    // Before the error is answered, journaled or sent as an event: no platform's error text may carry a secret.
    let result = result.mapError(pending.context.redacted)
    let answer: Result<JSONValue, JSONRPCError>
    switch result {
    case .success(let value):
      answer = .success(value)
      if let (idempotencyKey, fingerprint) = pending.idempotency {
        var stored = value.objectValue ?? [:]
        stored["replayed"] = true
        do throws(SharedStateError) {
          try await sharedState.complete(key: idempotencyKey, fingerprint: fingerprint, response: .object(stored))
        } catch {
          // The claim stays "sending": replays answer outcome_unknown, never a second post.
          logger.error("idempotency store failed after publishing", ["error": .string(error.description)])
        }
      }
    case .failure(let failure):
      // An interrupted publish that could not be looked for (credential, breaker...) may still have been made by the
      // sidecar that died: the key keeps answering outcome_unknown, never a new publish.
      let error =
        call.isInterrupted && failure.kind != .outcomeUnknown && !failure.isCancellation
        ? SidecarError(
          kind: .outcomeUnknown,
          message: CallContext.interruptedMessage + "; it could not be looked for: \(failure.message)",
          platform: platform.rawValue, attempts: 1)
        : failure
      if error.isCancellation || Task.isCancelled {
        answer = .failure(.requestCancelled)
      } else {
        answer = .failure(Self.applicationError(error, attempts: max(error.attempts, call.attempts)))
      }
      if let (idempotencyKey, fingerprint) = pending.idempotency, case .failure(let rpcError) = answer {
        if error.kind == .outcomeUnknown {
          try? await sharedState.completeUnknown(key: idempotencyKey, fingerprint: fingerprint, error: rpcError.json)
        } else if error.isCancellation && (call.mayHavePublished || call.isInterrupted) {
          // Cancelled once the publish may have gone out (a publish request, or an announced upload's chunk), or before
          // an interrupted one was looked for: the key stays taken.
          let unknown = Self.applicationError(
            SidecarError(
              kind: .outcomeUnknown,
              message: "the call was cancelled after its publish may have gone out; it may have been published",
              platform: platform.rawValue, attempts: call.attempts))
          try? await sharedState.completeUnknown(key: idempotencyKey, fingerprint: fingerprint, error: unknown.json)
        } else {
          // Refused, invalid, rate limited, breaker open: nothing was published, so the key may be used again.
          await sharedState.release(key: idempotencyKey)
        }
      }
      if error.kind == .circuitOpen { metrics.recordNotPermitted(platform: platform.rawValue, operation: operation) }
    }
    call.progress?.end(message: result.failureValue?.message)
    if call.retries > 0 { metrics.recordRetries(platform: platform.rawValue, operation: operation, count: call.retries) }
    for _ in 0..<call.rateLimitWaits { metrics.recordRateLimitWait(platform: platform.rawValue, operation: operation) }
    record(
      operation, platform: platform, common: pending.common, started: pending.started, outcome: answer, replayed: false,
      attempts: call.attempts, httpStatus: result.failureValue?.failure?.httpStatus, answering: pending.id)
    return answer
  }

  /// One metric event per operation, aggregated always, sent as a notification when `metrics.enabled` (in the same
  /// write as the answer to `id`).
  private func record(
    _ operation: String, platform: Platform, common: CommonParams, started: ContinuousClock.Instant,
    outcome: Result<JSONValue, JSONRPCError>, replayed: Bool, attempts: Int = 0, httpStatus: Int? = nil,
    answering id: RequestID
  ) {
    let elapsed = ContinuousClock.now - started
    var event = MetricEvent(
      eventId: MetricEvent.newEventId(), timestamp: Date(), customerId: common.customerId, agentId: common.agentId,
      platform: platform.rawValue, operation: operation, correlationId: common.correlationId, success: false,
      attempts: replayed ? 0 : max(attempts, 0),
      durationMs: Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15,
      replayed: replayed)
    event.httpStatus = httpStatus
    switch outcome {
    case .success(let value):
      event.success = true
      event.postId = value["postId"]?.stringValue
      event.postUrl = value["postUrl"]?.stringValue
      if !replayed { event.attempts = max(1, attempts) }
    case .failure(let error):
      event.errorKind = error.data?["kind"]?.stringValue
      event.errorCode = error.code
      event.errorMessage = error.message
    }
    metrics.record(event)
    if configuration.metricsEnabled {
      connection.notify("metrics/event", serializedParams: event.serializedJSON(), withAnswerTo: id)
    }
    logger.info(
      "operation finished",
      [
        "platform": .string(platform.rawValue), "operation": .string(operation),
        "correlationId": JSONValue(common.correlationId), "success": .bool(event.success),
        "errorKind": JSONValue(event.errorKind), "attempts": .int(event.attempts),
        "durationMs": .int(Int(event.durationMs)), "replayed": .bool(replayed),
      ])
  }

  /// `$/progress` for the call that sent `token`; it begins when the call goes to its platform (a replay or a refused
  /// call reports nothing).
  private func progress(token: JSONValue) -> WorkDoneProgress {
    WorkDoneProgress { [connection] value in
      var object: [String: JSONValue] = ["kind": .string(value.kind.rawValue)]
      if let title = value.title { object["title"] = .string(title) }
      if let message = value.message { object["message"] = .string(message) }
      if let percentage = value.percentage { object["percentage"] = .int(percentage) }
      if let sent = value.bytesSent { object["bytesSent"] = .int(Int(sent)) }
      if let total = value.bytesTotal { object["bytesTotal"] = .int(Int(total)) }
      connection.notify("$/progress", params: ["token": token, "value": .object(object)])
    }
  }

  /// `metrics`: which of the common metric names an insights call wants (all when absent).
  private static func metrics(_ params: Params) throws(InvalidParams) -> Set<Metric>? {
    guard let names = try params.stringArray("metrics") else { return nil }
    var metrics: Set<Metric> = []
    for (index, name) in names.enumerated() {
      guard let metric = Metric(rawValue: name) else {
        throw InvalidParams(
          "`metrics[\(index)]` must be one of \(Metric.allCases.map(\.rawValue).joined(separator: ", ")), got \(name)",
          field: "metrics[\(index)]")
      }
      metrics.insert(metric)
    }
    return metrics
  }

  // MARK: Queries

  private func breakerStatus() -> JSONValue {
    let snapshots = core.breakerStatus()
    var platforms: [String: JSONValue] = [:]
    for platform in Platform.allCases where clients[platform] != nil {
      let snapshot = snapshots[platform.rawValue] ?? core.breakerStatus(platform: platform.rawValue)
      platforms[platform.rawValue] = [
        "state": .string(snapshot.state.rawValue), "consecutiveFailures": .int(snapshot.consecutiveFailures),
        "opens": .int(snapshot.opens),
        "retryAfterMs": snapshot.retryAfter.map { .int(Self.milliseconds($0)) } ?? .null,
      ]
    }
    return [
      "enabled": .bool(configuration.breakerEnabled), "platforms": .object(platforms),
    ]
  }

  private func resetBreaker(_ params: JSONValue?) -> Result<JSONValue, JSONRPCError> {
    guard let name = params?["platform"]?.stringValue else {
      return .failure(.invalidParams("`platform` is required: one of \(Platform.allCases.map(\.rawValue).joined(separator: ", "))", field: "platform"))
    }
    guard let platform = Platform(rawValue: name), clients[platform] != nil else {
      return .failure(.invalidParams("unknown platform \(name)", field: "platform"))
    }
    core.resetBreaker(platform: platform.rawValue)
    Task { [sharedState] in await sharedState.shareBlock("breaker:\(platform.rawValue)", until: nil, detail: .null) }
    return .success(["platform": .string(name), "state": .string(BreakerState.closed.rawValue)])
  }

  private func prometheusText() -> String {
    var states: [String: String] = [:]
    let snapshots = core.breakerStatus()
    for platform in clients.keys {
      states[platform.rawValue] = (snapshots[platform.rawValue] ?? core.breakerStatus(platform: platform.rawValue)).state.rawValue
    }
    return metrics.prometheusText(breakerStates: states)
  }

  // MARK: Mapping

  /// A keyed publish the store cannot vouch for is refused before anything is sent: running it without the store
  /// could publish twice.
  static func storeUnavailable(_ platform: Platform) -> SidecarError {
    SidecarError(
      kind: .transientExhausted,
      message: "the shared idempotency store is unavailable, so a publish with an idempotencyKey cannot be made safely; "
        + "nothing was published, retry later",
      platform: platform.rawValue, retryAfter: .seconds(1))
  }

  static func applicationError(_ error: SidecarError, attempts: Int? = nil) -> JSONRPCError {
    var data: [String: JSONValue] = [
      "kind": .string(error.kind.rawValue), "retryable": .bool(error.retryable),
      "attempts": .int(attempts ?? error.attempts),
    ]
    data["platform"] = JSONValue(error.platform)
    if let retryAfter = error.retryAfter { data["retryAfterMs"] = .int(milliseconds(retryAfter)) }
    if let failure = error.failure {
      if let status = failure.httpStatus { data["httpStatus"] = .int(status) }
      switch failure.platformCode {
      case .int(let code)?: data["platformCode"] = .int(code)
      case .string(let code)?: data["platformCode"] = .string(code)
      case nil: break
      }
      if let subcode = failure.platformSubcode { data["platformSubcode"] = .int(subcode) }
      if let message = failure.platformMessage { data["platformMessage"] = .string(message) }
      if let resetsAt = failure.resetsAt { data["resetAt"] = .string(RFC3339.string(from: resetsAt)) }
    }
    return JSONRPCError(code: error.kind.code, message: Self.title(error.kind) + ": " + error.message, data: .object(data))
  }

  private static func title(_ kind: ErrorKind) -> String {
    kind.rawValue.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
  }

  @inline(never)
  static func json(_ validation: ValidationResult) -> JSONValue {
    var object: [String: JSONValue] = [
      "valid": .bool(validation.valid), "accountId": .string(validation.accountId),
    ]
    if let name = validation.accountName { object["accountName"] = .string(name) }
    if let scopes = validation.scopes { object["scopes"] = .array(scopes.map { .string($0) }) }
    if let missing = validation.missing { object["missing"] = .array(missing.map { .string($0) }) }
    if let expiresAt = validation.expiresAt { object["expiresAt"] = .string(RFC3339.string(from: expiresAt)) }
    if let problems = validation.problems { object["problems"] = .array(problems.map { .string($0) }) }
    if let warnings = validation.warnings { object["warnings"] = .array(warnings.map { .string($0) }) }
    if let quota = validation.quota {
      object["quota"] = [
        "used": .int(quota.used), "total": .int(quota.total), "windowSeconds": JSONValue(quota.windowSeconds),
      ]
    }
    return .object(object)
  }

  @inline(never)
  static func json(_ refresh: RefreshResult) -> JSONValue {
    [
      "refreshed": .bool(refresh.refreshed),
      "expiresAt": refresh.expiresAt.map { .string(RFC3339.string(from: $0)) } ?? .null,
    ]
  }

  static func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
  }

  static func milliseconds(since start: ContinuousClock.Instant) -> Int { milliseconds(ContinuousClock.now - start) }
}

/// A platform call between `begin` and `finish`: what `perform` carries across the platform client's awaits, on the
/// heap so that the suspended task's frame holds one reference.
private final class PendingCall: Sendable {
  enum Kind: Sendable {
    case publish(PreparedOperation<PostResult>)
    case validate
    case refresh
    /// Delete, insights or status of `postId`; `metrics` narrows an insights answer.
    case post(PostOperation, postId: String, metrics: Set<Metric>?)

    /// Calls that change something on the platform, and so honour `idempotencyKey`.
    var writes: Bool {
      switch self {
      case .publish, .post(.delete, _, _): true
      default: false
      }
    }
  }

  let operation: String
  /// The request this call answers (its metric event leaves with the answer).
  let id: RequestID
  let kind: Kind
  let started: ContinuousClock.Instant
  let common: CommonParams
  let context: OperationContext
  /// The scoped key and the params' fingerprint, for a publish that carries an `idempotencyKey`.
  let idempotency: (key: String, fingerprint: String)?

  init(
    operation: String, id: RequestID, kind: Kind, started: ContinuousClock.Instant, common: CommonParams,
    context: OperationContext, idempotency: (key: String, fingerprint: String)? = nil
  ) {
    self.operation = operation
    self.id = id
    self.kind = kind
    self.started = started
    self.common = common
    self.context = context
    self.idempotency = idempotency
  }

  @inline(never)
  func json(_ postId: String, _ result: DeleteResult) -> JSONValue {
    var object = answer(postId)
    object["deleted"] = .bool(result.deleted)
    if let reason = result.reason { object["reason"] = .string(reason) }
    return .object(object)
  }

  @inline(never)
  func json(_ postId: String, _ result: InsightsResult, only wanted: Set<Metric>?) -> JSONValue {
    var metrics: [String: JSONValue] = [:]
    for (metric, value) in result.metrics where wanted?.contains(metric) ?? true { metrics[metric.rawValue] = .int(value) }
    var object = answer(postId)
    object["fetchedAt"] = .string(RFC3339.string(from: Date()))
    object["metrics"] = .object(metrics)
    object["raw"] = result.raw
    return .object(object)
  }

  @inline(never)
  func json(_ postId: String, _ result: StatusResult) -> JSONValue {
    var object = answer(postId)
    object["state"] = .string(result.state.rawValue)
    object["detail"] = JSONValue(result.detail)
    object["postUrl"] = JSONValue(result.postUrl)
    return .object(object)
  }

  private func answer(_ postId: String) -> [String: JSONValue] {
    [
      "platform": .string(context.key.platform.rawValue), "postId": .string(postId),
      "attempts": .int(max(1, context.call.attempts)), "durationMs": .int(PlatformServices.milliseconds(since: started)),
    ]
  }

  /// The answer to a publish.
  @inline(never)
  func json(_ post: PostResult) -> JSONValue {
    var object: [String: JSONValue] = [
      "platform": .string(context.key.platform.rawValue), "postId": .string(post.postId), "postUrl": JSONValue(post.postUrl),
      "status": .string(post.status.rawValue), "attempts": .int(max(1, context.call.attempts)),
      "durationMs": .int(PlatformServices.milliseconds(since: started)), "replayed": false,
      "waitedMs": .int(PlatformServices.milliseconds(context.call.waited)),
    ]
    if let privacy = post.privacyStatus { object["privacyStatus"] = .string(privacy) }
    if !post.warnings.isEmpty { object["warnings"] = .array(post.warnings.map(JSONValue.string)) }
    return .object(object)
  }
}

/// Params every platform method takes (design brief §3).
struct CommonParams: Sendable {
  static let names: Set<String> = [
    "credentialRef", "customerId", "agentId", "correlationId", "idempotencyKey", "deadlineMs", "workDoneToken",
  ]
  /// Params that say how to run a call, not what it publishes: left out of the idempotency fingerprint.
  static let unfingerprinted = ["deadlineMs", "correlationId", "workDoneToken"]

  var credentialRef: String
  var customerId: String
  var agentId: String?
  var correlationId: String?
  var idempotencyKey: String?
  var deadlineMs: Int?
  /// LSP's work-done token: a string or an integer naming the `$/progress` notifications of this call.
  var workDoneToken: JSONValue?

  init(_ params: Params, requireAgent: Bool) throws(InvalidParams) {
    credentialRef = try params.requiredString("credentialRef", maxLength: 512)
    customerId = try params.requiredString("customerId", maxLength: 512)
    agentId = requireAgent ? try params.requiredString("agentId", maxLength: 512) : try params.string("agentId", maxLength: 512)
    correlationId = try params.string("correlationId", maxLength: 512)
    idempotencyKey = try params.string("idempotencyKey", maxLength: 255)
    if idempotencyKey?.isEmpty == true { throw InvalidParams("`idempotencyKey` must not be empty", field: "idempotencyKey") }
    deadlineMs = try params.int("deadlineMs", in: 1...86_400_000)
    switch params.values["workDoneToken"] {
    case nil, .null?: workDoneToken = nil
    case .string(let token)? where !token.isEmpty && token.utf8.count <= 512: workDoneToken = .string(token)
    case .int(let token)?: workDoneToken = .int(token)
    default:
      throw InvalidParams(
        "`workDoneToken` must be a non-empty string (at most 512 bytes) or an integer", field: "workDoneToken")
    }
  }
}

extension Result {
  var failureValue: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}

extension SidecarConfiguration {
  var endpoints: PlatformEndpoints {
    var endpoints = PlatformEndpoints()
    endpoints.graphBaseURL = [.facebook: facebook.baseURL, .instagram: instagram.baseURL, .whatsapp: whatsapp.baseURL]
    endpoints.graphVersion = [.facebook: facebook.apiVersion, .instagram: instagram.apiVersion, .whatsapp: whatsapp.apiVersion]
    endpoints.instagramLoginBaseURL = instagramLoginBaseURL
    endpoints.youtubeBaseURL = youtube.baseURL
    endpoints.youtubeUploadURL = youtubeUploadURL
    endpoints.googleTokenURL = youtubeTokenURL
    endpoints.linkedinBaseURL = linkedin.baseURL
    endpoints.linkedinVersion = linkedin.apiVersion
    endpoints.linkedinTokenURL = linkedinTokenURL
    return endpoints
  }

  var appSecrets: [SidecarPlatforms.Platform: String] {
    [.facebook: facebook.appSecret, .instagram: instagram.appSecret, .whatsapp: whatsapp.appSecret]
      .compactMapValues { $0 }
  }
}

/// What `health.http` and `capabilities.http` say: the configured transport, whether it is `pending` (loaded on the
/// first platform call), `ready` or `unavailable`, and then its version or the reason it cannot run. Kept small:
/// `health` is answered at any rate.
final class HTTPTransportStatus: Sendable {
  private let status = Mutex<(json: JSONValue, unavailable: Bool)>((.null, false))

  var value: (json: JSONValue, unavailable: Bool) { status.withLock { $0 } }

  func set(_ configured: String, state: String, detail: String?) {
    var json: [String: JSONValue] = [
      "transport": .string(configured == "urlsession" ? "urlsession" : "libcurl"), "state": .string(state),
    ]
    json["detail"] = detail.map(JSONValue.string)
    status.withLock { $0 = (.object(json), state == "unavailable") }
  }
}
