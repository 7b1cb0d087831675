#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import SidecarSystem

/// Google's API error body, `{"error": {code, message, errors: [{reason, domain, message}], status}}`, classified by
/// `errors[0].reason` as Google asks (the HTTP status alone does not tell a spent quota from a permission problem).
enum YouTubeErrors {
  /// Reasons that mean a daily allowance is spent: the project's quota until midnight Pacific time, the channel's
  /// upload limit for a rolling 24 hours.
  static let quotaReasons: Set<String> = ["quotaExceeded", "dailyLimitExceeded", "uploadLimitExceeded"]
  /// The channel's upload limit counts the uploads of the last 24 hours, so it reopens no earlier than 24 hours after
  /// it was hit (docs/platforms/youtube.md).
  static let uploadLimitWindow: TimeInterval = 24 * 3600

  static func failure(_ response: HTTPResponse, now: Date) -> PlatformFailure {
    let error = (try? JSONParser.parse(response.body))?["error"]
    let first = error?["errors"]?.arrayValue?.first
    let reason = first?["reason"]?.stringValue
    let platformMessage = error?["message"]?.stringValue ?? first?["message"]?.stringValue
    let status = response.status
    let said = platformMessage.map { ": \($0)" } ?? ""
    func failure(_ classification: PlatformFailure.Classification, _ message: String, resetsAt: Date? = nil)
      -> PlatformFailure
    {
      PlatformFailure(
        classification, message: message, httpStatus: status, platformCode: reason.map { .string($0) },
        platformMessage: platformMessage,
        retryAfter: response.headers["Retry-After"].flatMap { RetryAfter.parse($0, now: now) },
        resetsAt: resetsAt, requestMayHaveReachedPlatform: status >= 500)
    }
    switch reason {
    case let reason? where quotaReasons.contains(reason):
      if reason == "uploadLimitExceeded" {
        return failure(
          .quotaExhausted,
          "The channel has reached YouTube's upload limit (\(reason)); the limit counts the last 24 hours, so uploads "
            + "resume 24 hours after it was reached.", resetsAt: now.addingTimeInterval(uploadLimitWindow))
      }
      return failure(
        .quotaExhausted, "The app's daily YouTube API quota is spent (\(reason)); it resets at midnight Pacific time.",
        resetsAt: nextPacificMidnight(after: now))
    case "youtubeSignupRequired":
      return failure(.permanent, "The Google account has no YouTube channel yet; create one before uploading.")
    case "insufficientPermissions":
      return failure(
        .auth(refreshable: false),
        "The token lacks the scope this call needs (youtube.upload to upload): the account must be reconnected, "
          + "granting it.")
    case "authError":
      return failure(.auth(refreshable: true), "YouTube rejected the access token (authError).")
    case "rateLimitExceeded":
      return failure(.rateLimited(scope: .app), "YouTube is rate limiting this app (rateLimitExceeded).")
    case "userRateLimitExceeded":
      return failure(.rateLimited(scope: .account), "YouTube is rate limiting this account (userRateLimitExceeded).")
    case "backendError", "internalError":
      return failure(.transient, "YouTube had a backend error (\(reason!)).")
    default:
      break
    }
    return failure(fallback.classification(status), fallback.message(status, said: said, code: reason))
  }

  /// Google's token errors are cured by refreshing the token.
  static let fallback = StatusFallback(.youtube, refreshable: true)

  /// When YouTube's daily quotas reset: the next midnight in America/Los_Angeles (PST or PDT, whichever is in force).
  static func nextPacificMidnight(after date: Date) -> Date {
    let tomorrow = Int((Double(pacificSeconds(utc: date.timeIntervalSince1970)) / 86_400).rounded(.down)) + 1
    // Midnight is never in a changeover hour, so the offset at midnight PST (UTC 08:00) is the one in force then.
    let midnight = tomorrow * 86_400
    return Date(timeIntervalSince1970: Double(midnight - pacificOffset(utc: midnight + 8 * 3_600)))
  }

  /// Seconds since 1970 on a Pacific wall clock.
  private static func pacificSeconds(utc: Double) -> Int {
    let seconds = Int(utc.rounded(.down))
    return seconds + pacificOffset(utc: seconds)
  }

  /// US Pacific time's offset from UTC: UTC-7 from 2:00 PST on the second Sunday of March to 2:00 PDT on the first
  /// Sunday of November (the US rule since 2007), else UTC-8. By hand: FoundationEssentials has no time zone data.
  private static func pacificOffset(utc seconds: Int) -> Int {
    let year = CivilDate.year(ofDay: Int((Double(seconds) / 86_400).rounded(.down)))
    let start = CivilDate.sunday(2, ofMonth: 3, year: year) * 86_400 + 10 * 3_600
    let end = CivilDate.sunday(1, ofMonth: 11, year: year) * 86_400 + 9 * 3_600
    return (start..<end).contains(seconds) ? -7 * 3_600 : -8 * 3_600
  }
}
