/// Proleptic Gregorian calendar arithmetic in whole days since 1970-01-01, by hand: FoundationEssentials has no
/// time zones but UTC, and the sidecar needs only HTTP-dates and one US time zone.
public enum CivilDate {
  /// Days from 1970-01-01 to a Gregorian date (Howard Hinnant's `days_from_civil`).
  public static func days(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  /// The year of a day count since 1970-01-01.
  public static func year(ofDay day: Int) -> Int {
    let year = 1970 + Int((Double(day) / 365.2425).rounded(.down))
    if day < days(year: year, month: 1, day: 1) { return year - 1 }
    return day < days(year: year + 1, month: 1, day: 1) ? year : year + 1
  }

  /// The day count of the `nth` Sunday (1-based) of a month.
  public static func sunday(_ nth: Int, ofMonth month: Int, year: Int) -> Int {
    let first = days(year: year, month: month, day: 1)
    let weekday = ((first + 4) % 7 + 7) % 7  // 0 is Sunday; 1970-01-01 was a Thursday
    return first + (7 - weekday) % 7 + 7 * (nth - 1)
  }
}
