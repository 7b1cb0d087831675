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
final class LinkedInAPI: PlatformAPI {
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
  func failure(_ response: HTTPResponse, credential: Credential) -> PlatformFailure {
    LinkedInErrors.failure(
      response, version: version, canRefresh: credential.refreshToken?.isEmpty == false, now: clock.wallNow())
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
}
