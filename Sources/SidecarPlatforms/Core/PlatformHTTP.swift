#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
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
    try await exchange(request, step: step, gates: gates, context: context) { response throws(PlatformFailure) in
      if let failure = classify(response) { throw failure }
      return response
    }
  }

  /// Sends a request whose success body is JSON and returns that JSON (parsed once, in the attempt).
  ///
  /// A success status with a body that is not JSON (a proxy's error page, a truncated answer) is a transient
  /// failure: retried for idempotent steps, `outcome_unknown` for a publish, since the platform may have acted.
  /// An empty body is `null`.
  public func sendJSON(
    _ request: HTTPRequest, step: StepSafety, gates: [RateLimitKey] = [], context: CallContext,
    classify: @escaping @Sendable (HTTPResponse) -> PlatformFailure?
  ) async throws(SidecarError) -> (HTTPResponse, JSONValue) {
    let platform = self.platform
    return try await exchange(request, step: step, gates: gates, context: context) {
      response throws(PlatformFailure) in
      if let failure = classify(response) { throw failure }
      return (response, try Self.json(response, platform: platform))
    }
  }

  /// One `core.run` of `request`: each attempt sends it and hands the response to `accept`, which returns the
  /// result or throws what kind of failure the response is.
  private func exchange<T: Sendable>(
    _ request: HTTPRequest, step: StepSafety, gates: [RateLimitKey], context: CallContext,
    accept: @escaping @Sendable (HTTPResponse) throws(PlatformFailure) -> T
  ) async throws(SidecarError) -> T {
    let prepared = prepare(request, step: step)
    return try await core.run(platform: platform.rawValue, step: step, gates: gates, context: context) {
      () async throws -> T in
      // Work before and after the await lives in synchronous helpers, keeping this closure's async frame small.
      let attempt = try self.attempt(prepared, context: context)
      let response: HTTPResponse
      do {
        response = try await transport.send(attempt)
      } catch let error as TransportError {
        throw Self.failure(error)
      }
      log(response, to: prepared)
      return try accept(response)
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
  private func log(_ response: HTTPResponse, to request: HTTPRequest) {
    logger.debug(
      "platform response",
      [
        "platform": .string(platform.rawValue), "method": .string(request.method),
        "url": .string(Redaction.url(request.url)), "status": .int(response.status),
      ])
  }

  /// The success body as JSON: `null` when empty, a transient failure when it is not JSON.
  @inline(never)
  private static func json(_ response: HTTPResponse, platform: Platform) throws(PlatformFailure) -> JSONValue {
    guard !response.body.isEmpty else { return .null }
    guard let json = try? JSONParser.parse(response.body) else {
      throw PlatformFailure(
        .transient, message: "\(platform) answered \(response.status) with a body that is not JSON",
        httpStatus: response.status, requestMayHaveReachedPlatform: true)
    }
    return json
  }
}

extension PlatformFailure {
  /// A transport failure: transient, and ambiguous for a publish when the request may have left.
  ///
  /// A request that could not be built or sent from here (a line break in a token, a URL the configuration made
  /// unusable, a body file that is not a regular file) is a local failure, and a transport that cannot run here
  /// (libcurl missing) is the deployment's: both permanent, never retried, and not evidence against the platform, so
  /// no breaker counts them.
  public static func transport(_ error: TransportError) -> PlatformFailure {
    if error.kind == .unavailable {
      return PlatformFailure(
        .permanent, message: "no HTTP transport: \(error.message)", requestMayHaveReachedPlatform: false)
    }
    if [.invalidRequest, .invalidURL].contains(error.kind) {
      return PlatformFailure(
        .permanent, message: "the request could not be sent from here: \(error.message)",
        requestMayHaveReachedPlatform: false)
    }
    return PlatformFailure(
      .transient,
      message: "network error: \(error.message)",
      requestMayHaveReachedPlatform: error.requestSent)
  }
}

/// Keeps secrets out of anything logged or returned.
public enum Redaction {
  /// Secrets shorter than this are not searched for: replacing two or three letters would garble messages and protect
  /// nothing.
  static let shortestSecret = 4

  /// `text` with every secret (as sent, and percent-encoded as in a form or query) replaced by `[redacted]`.
  public static func scrub(_ text: String, secrets: Set<String>) -> String {
    var text = text
    // Longest first, so that a secret containing another is replaced whole.
    for secret in secrets.sorted(by: { $0.count > $1.count }) where secret.count >= shortestSecret {
      for form in Set([secret, Encoding.percentEncode(secret)]) where text.contains(form) {
        text = text.replacing(form, with: "[redacted]")
      }
    }
    return text
  }

  /// The error with its message and its platform failure's message and code scrubbed of `secrets`.
  public static func scrub(_ error: SidecarError, secrets: Set<String>) -> SidecarError {
    guard !secrets.isEmpty else { return error }
    var error = error
    error.message = scrub(error.message, secrets: secrets)
    if var failure = error.failure {
      failure.message = scrub(failure.message, secrets: secrets)
      failure.platformMessage = failure.platformMessage.map { scrub($0, secrets: secrets) }
      if case .string(let code)? = failure.platformCode {
        failure.platformCode = .string(scrub(code, secrets: secrets))
      }
      error.failure = failure
    }
    return error
  }

  /// `scheme://host[:port]/path`: Meta tokens travel in query strings, so queries never appear.
  public static func url(_ url: URL) -> String {
    var text = (url.scheme ?? "?") + "://" + (url.host ?? "")
    if let port = url.port { text += ":\(port)" }
    return text + url.path
  }
}
