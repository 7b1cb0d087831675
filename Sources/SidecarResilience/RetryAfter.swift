#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarSystem

/// The HTTP `Retry-After` header (RFC 9110 §10.2.3).
public enum RetryAfter {
  /// The wait a `Retry-After` value asks for, measured from `now` for HTTP-dates.
  ///
  /// Accepts delta-seconds (`120`) and HTTP-dates in the preferred IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`)
  /// and the two obsolete forms (RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37 1994`).
  /// Returns nil for anything else, including negative numbers and dates already past, so that the caller falls back to
  /// its own backoff. Parsed by hand: no formatter, no locale, no allocation of shared state.
  public static func parse(_ header: String, now: Date) -> Duration? {
    // Without the whitespace around it (runs inside collapse to one space, which every accepted form allows).
    let value = header.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    guard let first = value.utf8.first else { return nil }
    if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) {
      guard value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
        let seconds = Int64(value)
      else { return nil }
      return .seconds(seconds)
    }
    guard let date = httpDate(value) else { return nil }
    let seconds = date - now.timeIntervalSince1970
    guard seconds >= 0 else { return nil }
    // At most year 9999, so the floating-point seconds fit a Duration; nanoseconds would not.
    return .seconds(seconds)
  }

  private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
  private static let shortDays: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
  private static let longDays: Set<String> = [
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
  ]

  /// Seconds since 1970 for an HTTP-date in any of its three forms.
  static func httpDate(_ value: String) -> Double? {
    let words = value.split(separator: " ", omittingEmptySubsequences: true).map { $0.lowercased() }
    if words.count == 6, words[0].hasSuffix(","), shortDays.contains(String(words[0].dropLast())), words[5] == "gmt" {
      // IMF-fixdate: day-name "," SP day SP month SP year SP time SP "GMT"
      guard let day = number(words[1], digits: 2...2), let month = month(words[2]),
        let year = number(words[3], digits: 4...4)
      else { return nil }
      return epochSeconds(year: year, month: month, day: day, time: words[4])
    }
    if words.count == 4, words[0].hasSuffix(","), longDays.contains(String(words[0].dropLast())), words[3] == "gmt" {
      // RFC 850: day-name-l "," SP day "-" month "-" 2DIGIT SP time SP "GMT"
      let parts = words[1].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
      guard parts.count == 3, let day = number(parts[0], digits: 2...2), let month = month(parts[1]),
        let shortYear = number(parts[2], digits: 2...2)
      else { return nil }
      // Two-digit years: 70-99 are the 1900s, the rest the 2000s (RFC 9110 asks for "not more than 50 years ahead").
      return epochSeconds(
        year: shortYear >= 70 ? 1900 + shortYear : 2000 + shortYear, month: month, day: day,
        time: words[2])
    }
    if words.count == 5, shortDays.contains(words[0]) {
      // asctime: day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time SP year
      guard let month = month(words[1]), let day = number(words[2], digits: 1...2),
        let year = number(words[4], digits: 4...4)
      else { return nil }
      return epochSeconds(year: year, month: month, day: day, time: words[3])
    }
    return nil
  }

  /// A decimal number of `digits` ASCII digits, no sign.
  private static func number(_ text: some StringProtocol, digits: ClosedRange<Int>) -> Int? {
    guard digits.contains(text.utf8.count),
      text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
    else { return nil }
    return Int(text)
  }

  private static func month(_ name: String) -> Int? {
    months.firstIndex(of: name).map { $0 + 1 }
  }

  /// Seconds since 1970 for a proleptic-Gregorian UTC date and an `HH:MM:SS` time, after range checks.
  private static func epochSeconds(year: Int, month: Int, day: Int, time: String) -> Double? {
    let clock = time.split(separator: ":", omittingEmptySubsequences: false)
    guard clock.count == 3, let hour = number(clock[0], digits: 2...2), let minute = number(clock[1], digits: 2...2),
      let second = number(clock[2], digits: 2...2), (0...23).contains(hour), (0...59).contains(minute),
      (0...60).contains(second),
      (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
    else { return nil }
    let days = CivilDate.days(year: year, month: month, day: day)
    return Double(days * 86_400 + hour * 3_600 + minute * 60 + second)
  }

  private static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
  }
}
