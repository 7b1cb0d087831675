import Foundation
import SidecarHTTP
import SidecarResilience
import Testing

@testable import SidecarPlatforms

@Suite("Status fallback")
struct StatusFallbackTests {
  static let now = Date(timeIntervalSince1970: 1_700_000_000)

  /// Each family's mapper for an answer whose body names nothing it knows.
  static let mappers: [(String, @Sendable (HTTPResponse) -> PlatformFailure)] = [
    ("YouTube", { YouTubeErrors.failure($0, now: now) }),
    ("LinkedIn", { LinkedInErrors.failure($0, version: "202511", canRefresh: true, now: now) }),
    ("Facebook", { GraphAPI.failureWithoutGraphError($0, platform: .facebook, retryAfter: nil) }),
  ]

  @Test(
    "every family reads a bare status the same way",
    arguments: [
      (401, "auth"), (408, "transient"), (429, "rate_limited"), (500, "transient"), (503, "transient"),
      (400, "permanent"), (404, "permanent"),
    ])
  func sameClassification(status: Int, expected: String) {
    for (name, mapper) in Self.mappers {
      let failure = mapper(HTTPResponse(status: status, body: Data("<html>proxy</html>".utf8)))
      let kind: String =
        switch failure.classification {
        case .auth: "auth"
        case .transient: "transient"
        case .rateLimited: "rate_limited"
        case .permanent: "permanent"
        default: "other"
        }
      #expect(kind == expected, "\(name) read HTTP \(status) as \(kind)")
      #expect(failure.httpStatus == status)
      #expect(failure.requestMayHaveReachedPlatform == (status >= 500), "\(name), HTTP \(status)")
    }
  }

  @Test("a 429's Retry-After becomes the failure's wait on YouTube and LinkedIn")
  func retryAfter() {
    for (name, mapper) in Self.mappers.prefix(2) {
      let failure = mapper(HTTPResponse(status: 429, headers: ["Retry-After": "30"]))
      #expect(failure.retryAfter == .seconds(30), "\(name)")
      #expect(failure.message.contains("HTTP 429"), "\(name): \(failure.message)")
    }
  }

  @Test("a 401 may be cured by a refresh where the family refreshes tokens, not on Meta")
  func refreshable() {
    let response = HTTPResponse(status: 401)
    #expect(YouTubeErrors.failure(response, now: Self.now).classification == .auth(refreshable: true))
    #expect(
      LinkedInErrors.failure(response, version: "202511", canRefresh: false, now: Self.now).classification
        == .auth(refreshable: false))
    #expect(
      GraphAPI.failureWithoutGraphError(response, platform: .instagram, retryAfter: nil).classification
        == .auth(refreshable: false))
  }

  @Test("the platform's own words and code stay in the sentence")
  func message() {
    let fallback = StatusFallback(.youtube, refreshable: true)
    #expect(fallback.message(503, said: ": Backend down", code: nil) == "YouTube answered HTTP 503: Backend down")
    #expect(
      fallback.message(400, said: "", code: "badRequest") == "YouTube refused the request (badRequest) with HTTP 400")
    #expect(StatusFallback(.linkedin, refreshable: true, alsoTransient: [409]).classification(409) == .transient)
    #expect(fallback.classification(409) == .permanent)
  }
}
