#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// Google's APIs as the YouTube client uses them (docs/platforms/youtube.md): the YouTube Data API v3
/// (`{base}/youtube/v3/…`), its upload endpoint and the OAuth token endpoint.
///
/// Sends the token as `Authorization: Bearer`, classifies error answers with ``YouTubeErrors`` (a spent quota also
/// closes its gate until the reset) and names the gates: the project's (`"youtube:app"`) and the channel's
/// (`"youtube:channel:<id>"`).
final class GoogleAPI: PlatformAPI {
  let platform = Platform.youtube
  let http: PlatformHTTP
  /// `https://www.googleapis.com`.
  let baseURL: String
  /// Where resumable uploads start (`…/upload/youtube/v3/videos`).
  let uploadURL: String
  let tokenURL: String

  init(environment: PlatformEnvironment) {
    http = environment.http(for: .youtube)
    baseURL = environment.endpoints.youtubeBaseURL
    uploadURL = environment.endpoints.youtubeUploadURL
    tokenURL = environment.endpoints.googleTokenURL
  }

  func url(_ path: String, query: [(String, String)] = []) -> URL {
    Encoding.url(baseURL, path, query: query)
  }

  /// A Data API request below `{base}`: the bearer token, and a JSON body when there is one.
  func request(
    _ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil,
    credential: Credential
  ) -> HTTPRequest {
    var headers: HTTPHeaders = ["Authorization": "Bearer \(credential.accessToken)"]
    if body != nil { headers["Content-Type"] = "application/json; charset=UTF-8" }
    return HTTPRequest(
      method: method, url: url(path, query: query), headers: headers, body: body.map(Encoding.jsonBody) ?? .empty)
  }

  /// The project's gate (daily quota, project rate limits).
  var appGates: [RateLimitKey] { [.app(platform.rawValue)] }

  /// The project's gate and the channel's (upload limit, user rate limits).
  func gates(_ channel: String) -> [RateLimitKey] {
    appGates + [RateLimitKey("youtube:channel:\(channel)")]
  }

  /// Classifies an error answer; a spent quota also closes the matching gate until it resets, so that later calls
  /// fail at once without spending a request.
  func failure(_ response: HTTPResponse, credential: Credential) -> PlatformFailure {
    failure(response, channel: credential.accountId)
  }

  /// ``failure(_:credential:)`` for the channel `channel`.
  func failure(_ response: HTTPResponse, channel: String) -> PlatformFailure {
    let now = clock.wallNow()
    let failure = YouTubeErrors.failure(response, now: now)
    if failure.classification == .quotaExhausted, let resetsAt = failure.resetsAt {
      let key = failure.platformCode == "uploadLimitExceeded" ? gates(channel)[1] : gates(channel)[0]
      http.core.gates.block(
        key, until: clock.now() + .seconds(max(resetsAt.timeIntervalSince(now), 0)), reason: failure)
    }
    return failure
  }
}
