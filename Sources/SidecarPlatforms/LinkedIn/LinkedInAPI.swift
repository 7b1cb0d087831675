#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// LinkedIn's versioned REST API (`/rest/…`) as the LinkedIn client uses it (docs/platforms/linkedin.md).
///
/// Builds `{base}/rest/…` URLs, sends the token as `Authorization: Bearer` with the configured `LinkedIn-Version` and
/// Rest.li 2.0 on every call, classifies error answers with ``LinkedInErrors`` and names the gates: the app's daily
/// limits (`"linkedin:app"`) and the author's (`"linkedin:author:<urn>"`).
final class LinkedInAPI: Sendable {
  let platform = Platform.linkedin
  let http: PlatformHTTP
  /// Without a trailing path: `https://api.linkedin.com`.
  let baseURL: String
  /// The `LinkedIn-Version` sent (`platforms.linkedin.apiVersion`, YYYYMM).
  let version: String
  let tokenURL: String

  init(environment: PlatformEnvironment) {
    http = environment.http(for: .linkedin)
    baseURL = environment.endpoints.linkedinBaseURL
    version = environment.endpoints.linkedinVersion
    tokenURL = environment.endpoints.linkedinTokenURL
  }

  var clock: any SidecarClock { http.core.clock }

  func url(_ path: String, query: String? = nil) -> URL {
    Encoding.parse(baseURL + path + (query.map { "?" + $0 } ?? ""))
  }

  /// Authorization, the configured `LinkedIn-Version` and Rest.li 2.0, on every `/rest` call.
  func headers(_ credential: Credential, json: Bool) -> HTTPHeaders {
    var headers: HTTPHeaders = [
      "Authorization": "Bearer \(credential.accessToken)", "LinkedIn-Version": version,
      "X-Restli-Protocol-Version": "2.0.0",
    ]
    if json { headers["Content-Type"] = "application/json" }
    return headers
  }

  /// A `/rest` request: a JSON body when there is one.
  func request(
    _ method: String, _ path: String, query: String? = nil, body: JSONValue? = nil, credential: Credential
  ) -> HTTPRequest {
    HTTPRequest(
      method: method, url: url(path, query: query), headers: headers(credential, json: body != nil),
      body: body.map(Encoding.jsonBody) ?? .empty)
  }

  /// What an error answer means; whether an auth failure may be cured depends on the credential's refresh token.
  func classifier(_ credential: Credential) -> @Sendable (HTTPResponse) -> PlatformFailure {
    let version = version
    let canRefresh = credential.refreshToken?.isEmpty == false
    let clock = clock
    return { response in
      LinkedInErrors.failure(response, version: version, canRefresh: canRefresh, now: clock.wallNow())
    }
  }

  /// The app's daily limits.
  var appGates: [RateLimitKey] { [.app(platform.rawValue)] }

  /// The app's daily limits and the author's.
  func gates(_ author: String) -> [RateLimitKey] {
    appGates + [RateLimitKey("linkedin:author:\(author)")]
  }

  /// Whether the upload URL is LinkedIn's (or the configured API host), where the bearer token may go.
  func trusted(_ url: URL) -> Bool {
    guard let host = url.host?.lowercased() else { return false }
    return host == "linkedin.com" || host.hasSuffix(".linkedin.com")
      || host == URL(string: baseURL)?.host?.lowercased()
  }

  /// Sends `request` through the resilience core: a 2xx, or an answer `answering` accepts (a 404 that means "no such
  /// post"), is returned; anything else fails as ``LinkedInErrors`` classifies it.
  @inline(never)
  func send(
    _ request: HTTPRequest, credential: Credential, step: StepSafety = .idempotent, gates: [RateLimitKey] = [],
    answering: @escaping @Sendable (HTTPResponse) -> Bool = { _ in false }, context: CallContext
  ) async throws(SidecarError) -> HTTPResponse {
    try await http.send(request, step: step, gates: gates, context: context, classify: accept(credential, answering))
  }

  /// ``send(_:credential:step:gates:answering:context:)`` for an answer whose body is JSON.
  @inline(never)
  func sendJSON(
    _ request: HTTPRequest, credential: Credential, step: StepSafety = .idempotent, gates: [RateLimitKey] = [],
    answering: @escaping @Sendable (HTTPResponse) -> Bool = { _ in false }, context: CallContext
  ) async throws(SidecarError) -> (HTTPResponse, JSONValue) {
    try await http.sendJSON(request, step: step, gates: gates, context: context, classify: accept(credential, answering))
  }

  private func accept(
    _ credential: Credential, _ answering: @escaping @Sendable (HTTPResponse) -> Bool
  ) -> @Sendable (HTTPResponse) -> PlatformFailure? {
    let classify = classifier(credential)
    return { response in (200..<300).contains(response.status) || answering(response) ? nil : classify(response) }
  }
}
