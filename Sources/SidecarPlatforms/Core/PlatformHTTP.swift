import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// Sends a platform's HTTP requests through the resilience core.
///
/// Platform clients only build requests and say what a response means (`classify`); retries, backoff, the breaker,
/// rate-limit gates, deadlines and cancellation all happen here, the same way for every platform.
public final class PlatformHTTP: Sendable {
  public let platform: Platform
  public let transport: any HTTPTransport
  public let core: ResilienceCore
  /// Per-attempt timeout (`http.timeoutMs`); the whole call is bounded by the call's deadline as well.
  public let timeout: Duration
  public let connectTimeout: Duration
  public let logger: Logger

  public init(
    platform: Platform, transport: any HTTPTransport, core: ResilienceCore, timeout: Duration, connectTimeout: Duration,
    logger: Logger
  ) {
    self.platform = platform
    self.transport = transport
    self.core = core
    self.timeout = timeout
    self.connectTimeout = connectTimeout
    self.logger = logger
  }

  /// Sends `request` with retries as `step` allows.
  ///
  /// - Parameters:
  ///   - request: sent as is on every attempt (steps whose request changes per attempt call `core.run` directly).
  ///   - classify: returns `nil` when the response is a success, or what kind of failure it is. It may also record
  ///     rate-limit hints in `core.gates`.
  /// - Returns: the successful response.
  public func send(
    _ request: HTTPRequest, step: StepSafety, gates: [RateLimitKey] = [], context: CallContext,
    classify: @escaping @Sendable (HTTPResponse) -> PlatformFailure?
  ) async throws(SidecarError) -> HTTPResponse {
    let prepared = prepare(request, step: step)
    return try await core.run(platform: platform.rawValue, step: step, gates: gates, context: context) {
      () async throws -> HTTPResponse in
      // Work before and after the await lives in synchronous helpers, keeping this closure's async frame small.
      let attempt = try self.attempt(prepared, context: context)
      let response: HTTPResponse
      do {
        response = try await transport.send(attempt)
      } catch let error as TransportError {
        throw Self.failure(error)
      }
      try check(response, to: prepared, classify: classify)
      return response
    }
  }

  /// The request with the configured timeouts where it sets none.
  @inline(never)
  private func prepare(_ request: HTTPRequest, step: StepSafety) -> HTTPRequest {
    var request = request
    if request.timeout == nil { request.timeout = timeout }
    if request.connectTimeout == nil { request.connectTimeout = connectTimeout }
    // A publish must never be re-sent behind our back (see `HTTPRequest.atMostOnce`).
    if step == .publish { request.atMostOnce = true }
    return request
  }

  /// The request with its timeout cut to what is left of the call's deadline.
  @inline(never)
  private func attempt(_ request: HTTPRequest, context: CallContext) throws -> HTTPRequest {
    guard let deadline = context.deadline else { return request }
    let remaining = core.clock.now().duration(to: deadline)
    if remaining <= .zero { throw CancellationError() }
    var attempt = request
    attempt.timeout = min(attempt.timeout ?? remaining, remaining)
    return attempt
  }

  @inline(never)
  private static func failure(_ error: TransportError) -> any Error {
    error.kind == .cancelled ? CancellationError() : PlatformFailure.transport(error)
  }

  @inline(never)
  private func check(
    _ response: HTTPResponse, to request: HTTPRequest, classify: (HTTPResponse) -> PlatformFailure?
  ) throws(PlatformFailure) {
    logger.debug(
      "platform response",
      [
        "platform": .string(platform.rawValue), "method": .string(request.method),
        "url": .string(Redaction.url(request.url)), "status": .int(response.status),
      ])
    if let failure = classify(response) { throw failure }
  }

  /// Sends a request whose success body is JSON and returns that JSON.
  ///
  /// A success status with a body that is not JSON (a proxy's error page, a truncated answer) is a transient
  /// failure: retried for idempotent steps, `outcome_unknown` for a publish, since the platform may have acted.
  public func sendJSON(
    _ request: HTTPRequest, step: StepSafety, gates: [RateLimitKey] = [], context: CallContext,
    classify: @escaping @Sendable (HTTPResponse) -> PlatformFailure?
  ) async throws(SidecarError) -> (HTTPResponse, JSONValue) {
    let platform = self.platform
    let response = try await send(request, step: step, gates: gates, context: context) { response in
      if let failure = classify(response) { return failure }
      return Self.notJSON(response, platform: platform)
    }
    return (response, Self.json(response.body))
  }

  /// A success whose body is not JSON, as a failure; nil when the body is JSON or empty.
  @inline(never)
  private static func notJSON(_ response: HTTPResponse, platform: Platform) -> PlatformFailure? {
    guard !response.body.isEmpty, (try? JSONParser.parse(response.body)) == nil else { return nil }
    return PlatformFailure(
      .transient, message: "\(platform) answered \(response.status) with a body that is not JSON",
      httpStatus: response.status, requestMayHaveReachedPlatform: true)
  }

  @inline(never)
  private static func json(_ body: Data) -> JSONValue {
    guard !body.isEmpty, let json = try? JSONParser.parse(body) else { return .null }
    return json
  }
}

extension PlatformFailure {
  /// A transport failure: transient, and ambiguous for a publish when the request may have left.
  public static func transport(_ error: TransportError) -> PlatformFailure {
    PlatformFailure(
      .transient,
      message: "network error: \(error.message)",
      requestMayHaveReachedPlatform: error.requestSent)
  }

  /// A generic failure for an HTTP status with no parseable platform error body.
  public static func status(_ response: HTTPResponse, platform: Platform) -> PlatformFailure {
    let status = response.status
    let classification: Classification
    switch status {
    case 429: classification = .rateLimited(scope: .account)
    case 401: classification = .auth(refreshable: true)
    case 500...599, 408: classification = .transient
    default: classification = .permanent
    }
    return PlatformFailure(
      classification, message: "\(platform) answered HTTP \(status)", httpStatus: status,
      retryAfter: response.headers["Retry-After"].flatMap { RetryAfter.parse($0, now: Date()) },
      requestMayHaveReachedPlatform: status >= 500)
  }
}

/// Keeps secrets out of anything logged or returned.
public enum Redaction {
  /// `scheme://host[:port]/path`: Meta tokens travel in query strings, so queries never appear.
  public static func url(_ url: URL) -> String {
    var text = (url.scheme ?? "?") + "://" + (url.host ?? "")
    if let port = url.port { text += ":\(port)" }
    return text + url.path
  }
}
