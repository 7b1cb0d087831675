#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarResilience

/// What an HTTP status alone says, for an error answer whose body names nothing a family's error mapper knows: 401 an
/// auth failure, 429 a rate limit (the response's `Retry-After` is kept by the mapper), 408 and 5xx transient,
/// anything else permanent. Every family's mapper ends here, so a status means the same on every platform.
struct StatusFallback: Sendable {
  let platform: Platform
  /// Whether refreshing the token may cure a 401.
  var refreshable: Bool
  /// Statuses that are transient on this platform besides 408 and 5xx (LinkedIn's 409, a concurrent change).
  var alsoTransient: Set<Int> = []

  init(_ platform: Platform, refreshable: Bool, alsoTransient: Set<Int> = []) {
    self.platform = platform
    self.refreshable = refreshable
    self.alsoTransient = alsoTransient
  }

  func classification(_ status: Int) -> PlatformFailure.Classification {
    switch status {
    case 401: .auth(refreshable: refreshable)
    case 429: .rateLimited(scope: .account)
    case 408, 500...599: .transient
    default: alsoTransient.contains(status) ? .transient : .permanent
    }
  }

  /// A sentence for `status`.
  ///
  /// - Parameters:
  ///   - said: what the platform said, as `": message"`, or empty.
  ///   - code: the platform's error code or reason, when it gave one.
  func message(_ status: Int, said: String, code: String?) -> String {
    let name = platform.displayName
    return switch classification(status) {
    case .auth: "\(name) rejected the access token (HTTP 401)\(said)"
    case .rateLimited: "\(name) is rate limiting (HTTP 429)\(said)"
    case .transient: "\(name) answered HTTP \(status)\(said)"
    default:
      "\(name) refused the request\(code.map { " (\($0))" } ?? "")\(said.isEmpty ? " with HTTP \(status)" : said)"
    }
  }

  /// The classifier of a side lookup (token introspection, Google's tokeninfo) whose answer is read only when 2xx:
  /// its callers fall back to what they know without it, so any other status fails it, retried only when 408 or 5xx.
  static func sideLookup(_ what: String) -> @Sendable (HTTPResponse) -> PlatformFailure? {
    { response in
      (200..<300).contains(response.status)
        ? nil
        : PlatformFailure(
          response.status == 408 || response.status >= 500 ? .transient : .permanent,
          message: "\(what) answered HTTP \(response.status)", httpStatus: response.status)
    }
  }
}
