#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// One request to the Graph API, before the token is attached.
struct GraphCall: Sendable {
  enum Body: Sendable {
    case none
    case form([(String, String)])
    case json(JSONValue)
    /// A body already encoded, with its `Content-Type` (multipart chunks, rupload bytes streamed from a file).
    case encoded(HTTPBody, contentType: String)
  }

  var method: String
  /// Below `{base}/{version}`, segments already encoded (see ``GraphAPI/path(_:)``).
  var path: String
  var query: [(String, String)]
  var body: Body
  /// An absolute URL handed out by Meta (rupload `upload_url`); replaces `{base}/{version}{path}`.
  var url: URL?
  var headers: HTTPHeaders
  /// `Bearer` for the Graph API; `OAuth` for the rupload host; nil when the token travels in the query (Instagram
  /// Login's `refresh_access_token`, as documented).
  var scheme: String?

  init(
    _ method: String, _ path: String, query: [(String, String)] = [], body: Body = .none, url: URL? = nil,
    headers: HTTPHeaders = [:], scheme: String? = "Bearer"
  ) {
    self.method = method
    self.path = path
    self.query = query
    self.body = body
    self.url = url
    self.headers = headers
    self.scheme = scheme
  }

  static func get(_ path: String, fields: String? = nil, query: [(String, String)] = []) -> GraphCall {
    GraphCall("GET", path, query: (fields.map { [("fields", $0)] } ?? []) + query)
  }

  static func post(_ path: String, query: [(String, String)] = [], form: [(String, String?)]) -> GraphCall {
    GraphCall("POST", path, query: query, body: .form(form.compactMap { name, value in value.map { (name, $0) } }))
  }
}

/// An access token and the app secret that proves it was issued to our app, when the app has one.
///
/// Apps with "Require App Secret" on refuse any call without `appsecret_proof` = hex HMAC-SHA256(key: app secret,
/// message: access token), so every Graph call carries it when a secret is known (docs/platforms/meta.md).
struct GraphToken: Sendable {
  let value: String
  let appSecret: String?

  /// The proof for this token, or nil without an app secret.
  var proof: String? {
    guard let appSecret, !appSecret.isEmpty else { return nil }
    return SHA256.hex(SHA256.hmac(key: Array(appSecret.utf8), message: Array(value.utf8)))
  }
}

/// The Graph API as Facebook Pages, Instagram and WhatsApp share it (docs/platforms/meta.md).
///
/// Builds `{base}/{version}{path}` URLs, sends the token as `Authorization: Bearer` (never in a URL that could be
/// logged), maps Meta's error body to a ``PlatformFailure`` by `code` and `error_subcode` (never by HTTP status alone)
/// and turns the usage headers into rate-limit gates, so that a call Meta would surely throttle fails fast without
/// spending a request. Every call names the gates `"<platform>:app"` and `"<platform>:account:<accountId>"`.
final class GraphAPI: Sendable {
  let platform: Platform
  let http: PlatformHTTP
  /// Without a trailing slash: `https://graph.facebook.com`.
  let baseURL: String
  let version: String
  /// The configured app secret (`platforms.<platform>.appSecret`).
  let appSecret: String?

  init(environment: PlatformEnvironment, platform: Platform, baseURL: String? = nil) {
    self.platform = platform
    appSecret = environment.appSecrets[platform]
    http = environment.http(for: platform)
    var base = baseURL ?? environment.endpoints.graphBaseURL[platform] ?? PlatformEndpoints.defaultGraphBaseURL
    while base.hasSuffix("/") { base.removeLast() }
    self.baseURL = base
    version = environment.endpoints.graphVersion[platform] ?? PlatformEndpoints.defaultGraphVersion
  }

  /// The credential's token with its app secret (the credential's own, else the configured one).
  func token(_ credential: Credential) -> GraphToken {
    GraphToken(value: credential.accessToken, appSecret: credential.appSecret ?? appSecret)
  }

  /// Another token of the same app (an app token `id|secret`, a token from an exchange).
  func token(_ value: String, like credential: Credential) -> GraphToken {
    GraphToken(value: value, appSecret: credential.appSecret ?? appSecret)
  }

  var clock: any SidecarClock { http.core.clock }
  var gates: RateLimitGates { http.core.gates }
  var name: String { platform.displayName }

  /// `/a/b/c` from raw segments, each percent-encoded.
  static func path(_ segments: String...) -> String {
    segments.map { "/" + Encoding.pathSegment($0) }.joined()
  }

  func url(_ path: String, query: [(String, String)] = []) -> URL {
    Encoding.url(baseURL, "/" + version + path, query: query)
  }

  func accountGate(_ accountId: String) -> RateLimitKey {
    RateLimitKey("\(platform.rawValue):account:\(accountId)")
  }

  /// Sends one call through the resilience core and returns its JSON body.
  ///
  /// - Parameters:
  ///   - token: sent in the `Authorization` header with its proof in the query (messages are scrubbed of both by
  ///     ``OperationContext/redacted(_:)``).
  ///   - accountId: the page, Instagram user or phone number the call acts for (its gate).
  ///   - gates: further keys checked before the account's (WhatsApp's recipient pair).
  @inline(never)
  func send(
    _ call: GraphCall, token: GraphToken, accountId: String, step: StepSafety = .idempotent,
    gates extra: [RateLimitKey] = [], context: CallContext
  ) async throws(SidecarError) -> JSONValue {
    let prepared = prepare(call, token: token, accountId: accountId, gates: extra)
    return try await http.sendJSON(
      prepared.request, step: step, gates: prepared.gates, context: context, classify: prepared.classify
    ).1
  }

  private struct Prepared {
    let request: HTTPRequest
    let gates: [RateLimitKey]
    let classify: @Sendable (HTTPResponse) -> PlatformFailure?
  }

  @inline(never)
  private func prepare(
    _ call: GraphCall, token: GraphToken, accountId: String, gates extra: [RateLimitKey]
  ) -> Prepared {
    let account = accountGate(accountId)
    return Prepared(
      request: request(call, token: token), gates: [RateLimitKey.app(platform.rawValue)] + extra + [account],
      classify: { [self] response in interpret(response, account: account) })
  }

  /// The HTTP request for `call`, with `appsecret_proof` in the query of every Graph call when there is a secret
  /// (Meta's upload host, reached by an absolute `url`, takes no proof).
  private func request(_ call: GraphCall, token: GraphToken) -> HTTPRequest {
    var headers = call.headers
    if let scheme = call.scheme { headers["Authorization"] = "\(scheme) \(token.value)" }
    var query = call.query
    if call.url == nil, let proof = token.proof { query.append(("appsecret_proof", proof)) }
    var body = HTTPBody.empty
    switch call.body {
    case .none:
      break
    case .form(let pairs):
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      body = .bytes(Data(Encoding.form(pairs).utf8))
    case .json(let value):
      headers["Content-Type"] = "application/json"
      body = Encoding.jsonBody(value)
    case .encoded(let encoded, let contentType):
      headers["Content-Type"] = contentType
      body = encoded
    }
    return HTTPRequest(
      method: call.method, url: call.url ?? url(call.path, query: query), headers: headers, body: body)
  }

  // MARK: - Responses

  /// Records what the usage headers say, then returns nil for a success or what the failure means.
  func interpret(_ response: HTTPResponse, account: RateLimitKey) -> PlatformFailure? {
    let usage = recordUsage(response.headers, account: account)
    if (200..<300).contains(response.status) { return nil }
    let headerWait = response.headers["Retry-After"].flatMap { RetryAfter.parse($0, now: clock.wallNow()) }
    guard let error = GraphError(body: response.body) else {
      return Self.failureWithoutGraphError(response, platform: platform, retryAfter: headerWait)
    }
    var failure = Self.failure(for: error, status: response.status, platform: platform)
    if case .rateLimited(let scope) = failure.classification {
      let fromUsage = scope == .app ? usage.app : usage.account
      failure.retryAfter = fromUsage ?? headerWait ?? failure.retryAfter ?? (scope == .app ? Self.defaultAppWait : nil)
      if error.code == 130429, let wait = failure.retryAfter {
        // The core blocks the first non-app gate (the recipient pair on WhatsApp); the throughput limit is the
        // whole number's.
        gates.block(account, until: clock.now() + wait, reason: failure)
      }
    }
    return failure
  }

  /// How long an app at 100% of its Graph usage is blocked when Meta gives no estimate.
  static let defaultAppWait: Duration = .seconds(60)

  /// Blocks the app gate when `X-App-Usage` is at 100%, and the account gate when `X-Business-Use-Case-Usage` says this
  /// business object is throttled, until the estimated regain (minutes) or 60 s.
  ///
  /// The BUC header names business objects (a page, an IG user, a WABA) that may differ from the call's account id (a
  /// phone number's WABA), so any throttled entry in a response to this call blocks this call's account.
  ///
  /// - Returns: the waits announced, for a rate-limit failure's `retryAfter`.
  func recordUsage(_ headers: HTTPHeaders, account: RateLimitKey) -> (app: Duration?, account: Duration?) {
    var appWait: Duration?
    var accountWait: Duration?
    if let text = headers["X-App-Usage"], let usage = try? JSONParser.parse(text), let wait = Self.throttleWait(usage) {
      appWait = wait
    }
    if let text = headers["X-Business-Use-Case-Usage"], case .object(let objects)? = try? JSONParser.parse(text) {
      for entries in objects.values {
        for entry in entries.arrayValue ?? [entries] {
          if let wait = Self.throttleWait(entry) { accountWait = max(accountWait ?? .zero, wait) }
        }
      }
    }
    let now = clock.now()
    if let appWait {
      gates.block(
        .app(platform.rawValue), until: now + appWait,
        reason: PlatformFailure(
          .rateLimited(scope: .app),
          message: "Meta reports this app at its \(name) Graph API call limit (X-App-Usage at 100%).",
          retryAfter: appWait))
    }
    if let accountWait {
      gates.block(
        account, until: now + accountWait,
        reason: PlatformFailure(
          .rateLimited(scope: .account),
          message: "Meta reports this \(name) account at its call limit (X-Business-Use-Case-Usage).",
          retryAfter: accountWait))
    }
    return (appWait, accountWait)
  }

  /// The wait a usage entry asks for, or nil when it is below its limits.
  static func throttleWait(_ entry: JSONValue) -> Duration? {
    let percent = ["call_count", "total_time", "total_cputime"].compactMap { entry[$0]?.doubleValue }.max() ?? 0
    let minutes = entry["estimated_time_to_regain_access"]?.doubleValue ?? 0
    guard percent >= 100 || minutes > 0 else { return nil }
    return minutes > 0 ? .seconds(Int64((minutes * 60).rounded(.up))) : defaultAppWait
  }

  /// Responses without a Graph error body: rupload's `debug_info`, proxies, outages.
  static func failureWithoutGraphError(
    _ response: HTTPResponse, platform: Platform, retryAfter: Duration?
  ) -> PlatformFailure {
    let status = response.status
    let name = platform.displayName
    if let json = try? JSONParser.parse(response.body), let info = json["debug_info"] {
      let detail = info["message"]?.stringValue ?? "upload failed"
      let classification: PlatformFailure.Classification =
        info["type"]?.stringValue == "AuthError"
        ? .auth(refreshable: false) : info["retriable"]?.boolValue == true ? .transient : .permanent
      let message =
        classification == .auth(refreshable: false)
        ? "\(name) rejected the access token at its upload host: \(detail). Reconnect the \(name) account."
        : "\(name)'s upload host refused the upload: \(detail)"
      return PlatformFailure(
        classification, message: message, httpStatus: status,
        platformCode: info["type"]?.stringValue.map(PlatformCode.string),
        platformMessage: detail, requestMayHaveReachedPlatform: status >= 500)
    }
    // Meta's tokens are not refreshed in a call: a 401 needs the account reconnected.
    let classification = StatusFallback(platform, refreshable: false).classification(status)
    let message =
      status == 401
      ? "\(name) answered HTTP 401 without an error body; reconnect the \(name) account if this persists."
      : "\(name) answered HTTP \(status) without a Graph API error body."
    return PlatformFailure(
      classification, message: message, httpStatus: status, retryAfter: retryAfter,
      requestMayHaveReachedPlatform: status >= 500)
  }
}

extension JSONValue {
  /// A Graph id: ids are strings on the wire, but some answers carry numbers.
  var graphID: String? {
    switch self {
    case .string(let text) where !text.isEmpty: text
    case .int(let number): String(number)
    default: nil
    }
  }
}
