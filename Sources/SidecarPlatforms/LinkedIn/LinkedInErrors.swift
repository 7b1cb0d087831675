#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// LinkedIn's error body, `{"status", "serviceErrorCode", "code", "message"}`, classified by HTTP status and `code`.
enum LinkedInErrors {
  static let authCodes: Set<Int> = [65600, 65601, 65602]

  /// - Parameters:
  ///   - version: the `LinkedIn-Version` sent, named when LinkedIn refuses it.
  ///   - canRefresh: whether the credential has a refresh token, which decides whether an auth failure may be cured.
  static func failure(_ response: HTTPResponse, version: String, canRefresh: Bool, now: Date) -> PlatformFailure {
    let json = try? JSONParser.parse(response.body)
    let code = json?["code"]?.stringValue
    let serviceCode = json?["serviceErrorCode"]?.intValue
    let platformMessage = json?["message"]?.stringValue
    let status = response.status
    let said = platformMessage.map { ": \($0)" } ?? ""
    func failure(_ classification: PlatformFailure.Classification, _ message: String) -> PlatformFailure {
      PlatformFailure(
        classification, message: message, httpStatus: status,
        platformCode: code.map { .string($0) } ?? serviceCode.map { .int($0) },
        platformSubcode: code == nil ? nil : serviceCode,
        platformMessage: platformMessage,
        retryAfter: response.headers["Retry-After"].flatMap { RetryAfter.parse($0, now: now) },
        requestMayHaveReachedPlatform: status >= 500)
    }
    if status == 426 || code == "NONEXISTENT_VERSION" || code == "VERSION_MISSING" {
      return failure(
        .permanent,
        "LinkedIn does not accept API version \(version), the configured platforms.linkedin.apiVersion\(said); set a "
          + "version LinkedIn still serves (YYYYMM).")
    }
    if status == 401 || serviceCode.map(authCodes.contains) == true || code?.hasSuffix("_ACCESS_TOKEN") == true {
      return failure(
        .auth(refreshable: canRefresh),
        "LinkedIn rejected the access token (\(code ?? "HTTP \(status)"))"
          + (canRefresh ? "." : "; the credential has no refresh token, so the account must be reconnected."))
    }
    if status == 403 {
      if (platformMessage ?? "").lowercased().contains("throttle") {
        return failure(.rateLimited(scope: .account), "LinkedIn is rate limiting this member or app\(said)")
      }
      return failure(
        .permanent,
        "LinkedIn denied access\(said). Posting as an organization needs the w_organization_social scope and an "
          + "ADMINISTRATOR, CONTENT_ADMINISTRATOR or DIRECT_SPONSORED_CONTENT_POSTER role on it.")
    }
    let fallback = StatusFallback(.linkedin, refreshable: canRefresh, alsoTransient: [409])
    return failure(fallback.classification(status), fallback.message(status, said: said, code: code))
  }

  /// The original post's URN from a 422 "Content is a duplicate of urn:li:share:…", or nil for other 422s.
  static func duplicateOf(_ response: HTTPResponse) -> String? {
    guard response.status == 422, let message = (try? JSONParser.parse(response.body))?["message"]?.stringValue,
      message.lowercased().contains("duplicate"), let start = message.firstRange(of: "urn:li:")
    else { return nil }
    let urn = message[start.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == ":" || $0 == "_" || $0 == "-" }
    return urn.count > "urn:li:".count ? String(urn) : nil
  }
}
