#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarMetrics
import SidecarPlatforms
import SidecarResilience

/// The one path every platform operation takes: common params, up-front content checks, idempotency, the platform
/// client (which goes through the one resilience core), then one metric event and one answer.
///
/// The idempotency decisions live here (`begin` and `finish`): a key seen for the first time is claimed and its answer
/// stored; a finished key replays its answer without a request; a publish that may have gone out (cancelled after
/// "sending", or taken over from a sidecar that died while sending) is stored as `outcome_unknown` and never sent
/// again; one that certainly did not go out releases its key.
final class OperationPipeline: Sendable {
  private let core: ResilienceCore
  private let credentials: CredentialStore
  /// Idempotency records, shared with the other sidecars of the deployment (local journal or Redis).
  private let sharedState: any SharedStateStore
  private let metrics: MetricsAggregator
  /// Where metric events (when `metricsEnabled`) and `$/progress` notifications go.
  private let connection: Connection
  private let metricsEnabled: Bool
  private let clock: any SidecarClock
  private let logger: Logger

  init(
    core: ResilienceCore, credentials: CredentialStore, sharedState: any SharedStateStore, metrics: MetricsAggregator,
    connection: Connection, metricsEnabled: Bool, clock: any SidecarClock, logger: Logger
  ) {
    self.core = core
    self.credentials = credentials
    self.sharedState = sharedState
    self.metrics = metrics
    self.connection = connection
    self.metricsEnabled = metricsEnabled
    self.clock = clock
    self.logger = logger
  }

  /// Thin on purpose: only `pending` and the result live across the platform client's awaits, so a suspended call's
  /// async frame stays small (10,000 calls in flight must fit in 200 MB; see docs/performance.md). The work before
  /// and after is synchronous, in `begin` and `finish`.
  func run(_ operation: String, on client: any PlatformClient, params: JSONValue?, id: RequestID) async
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

  /// Every operation but a publish, apart so that their results take no room in `run`'s frame.
  @inline(never)
  private static func query(_ pending: PendingCall, on client: any PlatformClient) async throws(SidecarError)
    -> JSONValue
  {
    let context = pending.context
    switch pending.kind {
    case .validate: return WireEncoding.json(try await client.validate(context: context))
    case .refresh: return WireEncoding.json(try await client.refresh(context: context))
    case .publish:  // `run` runs publishes itself and never sends one here
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
  private func begin(_ operation: String, on client: any PlatformClient, params: JSONValue?, id: RequestID) async
    -> Start
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
            "`publishAt` schedules posts natively only on "
              + "\(Platform.schedulable.map(\.rawValue).joined(separator: " and ")); "
              + "\(platform) publishes at once, so schedule this call in the backend instead", field: "publishAt")
        }
        kind = .publish(try client.preparePublish(content))
      } else if let postOperation = PostOperation(rawValue: operation) {
        try content.rejectUnknown(
          postOperation == .insights ? ["postId", "metrics"] : ["postId"], context: "\(platform)/\(operation)")
        kind = .post(
          postOperation, postId: try content.requiredString("postId", maxLength: 512),
          metrics: try Self.metrics(content))
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
    let fingerprint = CommonParams.fingerprint(of: params)
    let decision: IdempotencyDecision
    do throws(SharedStateError) {
      decision = try await sharedState.claim(key: idempotencyKey, fingerprint: fingerprint)
    } catch {
      logger.error("idempotency store failed", ["error": .string(error.description)])
      return .answered(.failure(WireEncoding.applicationError(Self.storeUnavailable(platform))))
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
        code: error["code"]?.intValue ?? ErrorKind.outcomeUnknown.code,
        message: error["message"]?.stringValue ?? "outcome unknown", data: error["data"])
      record(
        operation, platform: platform, common: common, started: started, outcome: .failure(rpcError), replayed: true,
        answering: id)
      return .answered(.failure(rpcError))
    case .conflict:
      return .answered(
        .failure(
          WireEncoding.applicationError(
            SidecarError(
              kind: .idempotencyConflict,
              message: "a call with idempotencyKey \(key) is still running; wait for its answer or retry later",
              platform: platform.rawValue))))
    case .mismatch:
      return .answered(
        .failure(
          WireEncoding.applicationError(
            SidecarError(
              kind: .idempotencyMismatch,
              message: "idempotencyKey \(key) was already used with different params; use a new key for new content",
              platform: platform.rawValue))))
    }
  }

  /// The answer, the idempotency record and the metrics of a call that reached the platform client.
  @inline(never)
  private func finish(
    _ pending: PendingCall, _ result: Result<JSONValue, SidecarError>
  ) async -> Result<JSONValue, JSONRPCError> {
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
        answer = .failure(WireEncoding.applicationError(error, attempts: max(error.attempts, call.attempts)))
      }
      if let (idempotencyKey, fingerprint) = pending.idempotency, case .failure(let rpcError) = answer {
        if error.kind == .outcomeUnknown {
          try? await sharedState.completeUnknown(key: idempotencyKey, fingerprint: fingerprint, error: rpcError.json)
        } else if error.isCancellation && (call.mayHavePublished || call.isInterrupted) {
          // Cancelled once the publish may have gone out (a publish request, or an announced upload's chunk), or before
          // an interrupted one was looked for: the key stays taken.
          let unknown = WireEncoding.applicationError(
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
    if call.retries > 0 {
      metrics.recordRetries(platform: platform.rawValue, operation: operation, count: call.retries)
    }
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
    if metricsEnabled {
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

  /// A keyed publish the store cannot vouch for is refused before anything is sent: running it without the store
  /// could publish twice.
  static func storeUnavailable(_ platform: Platform) -> SidecarError {
    SidecarError(
      kind: .transientExhausted,
      message:
        "the shared idempotency store is unavailable, so a publish with an idempotencyKey cannot be made safely; "
        + "nothing was published, retry later",
      platform: platform.rawValue, retryAfter: .seconds(1))
  }
}

/// A platform call between `begin` and `finish`: what `run` carries across the platform client's awaits, on the
/// heap so that the suspended task's frame holds one reference.
final class PendingCall: Sendable {
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
}

/// Params every platform method takes (`protocol/PROTOCOL.md` §3).
struct CommonParams: Sendable {
  static let names: Set<String> = [
    "credentialRef", "customerId", "agentId", "correlationId", "idempotencyKey", "deadlineMs", "workDoneToken",
  ]
  /// Params that say how to run a call, not what it publishes: left out of the idempotency fingerprint.
  static let unfingerprinted = ["deadlineMs", "correlationId", "workDoneToken"]

  /// What an `idempotencyKey` is bound to: every param of the call but the `unfingerprinted`.
  static func fingerprint(of params: JSONValue?) -> String {
    var fingerprinted = params?.objectValue ?? [:]
    for name in unfingerprinted { fingerprinted[name] = nil }
    return Fingerprint.of(.object(fingerprinted))
  }

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
    agentId =
      requireAgent ? try params.requiredString("agentId", maxLength: 512) : try params.string("agentId", maxLength: 512)
    correlationId = try params.string("correlationId", maxLength: 512)
    idempotencyKey = try params.string("idempotencyKey", maxLength: 255)
    if idempotencyKey?.isEmpty == true {
      throw InvalidParams("`idempotencyKey` must not be empty", field: "idempotencyKey")
    }
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
