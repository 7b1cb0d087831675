#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarSystem

/// RFC 3339 UTC timestamps with milliseconds (`2026-11-25T20:01:19.123Z`), as events and snapshots carry them.
///
/// Written by hand because it runs once per event: a pure function is `Sendable` without a shared formatter
/// object, and it is about three times faster than `Date.ISO8601FormatStyle`. Milliseconds are truncated, as clocks
/// do, after rounding to the microsecond so that binary floating point cannot turn `.123` into `.122`. Years are
/// clamped to 0000…9999, the range RFC 3339 can write.
public enum RFC3339 {
  public static func string(from date: Date) -> String {
    let micros = min(max((date.timeIntervalSince1970 * 1_000_000).rounded(), minMicros), maxMicros)
    let millis = floorDivide(Int64(micros), 1000)
    let days = floorDivide(millis, 86_400_000)
    let msOfDay = Int(millis - days * 86_400_000)
    let (year, month, day) = civil(fromDaysSinceEpoch: Int(days))

    return String(unsafeUninitializedCapacity: 24) { buffer in
      func put(_ value: Int, digits: Int, at offset: Int) {
        var value = value
        for position in (offset..<offset + digits).reversed() {
          buffer[position] = UInt8(truncatingIfNeeded: 0x30 + value % 10)
          value /= 10
        }
      }
      put(year, digits: 4, at: 0)
      buffer[4] = UInt8(ascii: "-")
      put(month, digits: 2, at: 5)
      buffer[7] = UInt8(ascii: "-")
      put(day, digits: 2, at: 8)
      buffer[10] = UInt8(ascii: "T")
      put(msOfDay / 3_600_000, digits: 2, at: 11)
      buffer[13] = UInt8(ascii: ":")
      put(msOfDay / 60_000 % 60, digits: 2, at: 14)
      buffer[16] = UInt8(ascii: ":")
      put(msOfDay / 1000 % 60, digits: 2, at: 17)
      buffer[19] = UInt8(ascii: ".")
      put(msOfDay % 1000, digits: 3, at: 20)
      buffer[23] = UInt8(ascii: "Z")
      return 24
    }
  }

  /// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, in microseconds since 1970.
  private static let minMicros = -62_167_219_200_000_000.0
  private static let maxMicros = 253_402_300_799_999_000.0

  private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    let quotient = value / divisor
    return value % divisor < 0 ? quotient - 1 : quotient
  }

  /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
  private static func civil(fromDaysSinceEpoch days: Int) -> (year: Int, month: Int, day: Int) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let shiftedMonth = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
    let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}

extension RFC3339 {
  /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t` and `z` accepted too); nil for anything else.
  public static func date(from text: String) -> Date? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 20 else { return nil }
    func number(_ start: Int, _ count: Int) -> Int? {
      var value = 0
      for byte in bytes[start..<start + count] {
        guard (0x30...0x39).contains(byte) else { return nil }
        value = value * 10 + Int(byte - 0x30)
      }
      return value
    }
    guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] | 0x20 == UInt8(ascii: "t"),
      bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), let year = number(0, 4),
      let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2), let minute = number(14, 2),
      let second = number(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
      second < 61
    else { return nil }
    var index = 19
    var fraction = 0.0
    if bytes[index] == UInt8(ascii: ".") {
      index += 1
      var scale = 0.1
      let start = index
      while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
        fraction += Double(bytes[index] - 0x30) * scale
        scale /= 10
        index += 1
      }
      guard index > start else { return nil }
    }
    guard index < bytes.count else { return nil }
    var offset = 0
    if bytes[index] | 0x20 == UInt8(ascii: "z") {
      guard index + 1 == bytes.count else { return nil }
    } else {
      guard index + 6 == bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"),
        bytes[index + 3] == UInt8(ascii: ":"), let hours = number(index + 1, 2), let minutes = number(index + 4, 2),
        hours < 24, minutes < 60
      else { return nil }
      offset = (hours * 60 + minutes) * 60 * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
    }
    let seconds = CivilDate.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
    return Date(timeIntervalSince1970: Double(seconds - offset) + fraction)
  }
}
