#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON

/// URL and body encodings shared by every platform client.
public enum Encoding {
  /// RFC 3986 unreserved characters stay; everything else is percent-encoded (safe for query values, form values
  /// and path segments such as LinkedIn URNs).
  public static func percentEncode(_ text: String) -> String {
    var output: [UInt8] = []
    output.reserveCapacity(text.utf8.count)
    let hex = Array("0123456789ABCDEF".utf8)
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        output.append(byte)
      default:
        output.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
      }
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// `application/x-www-form-urlencoded` body or query string, in the order given.
  public static func form(_ pairs: [(String, String)]) -> String {
    pairs.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
  }

  /// `base` + `path` + `?query`; `path` segments must already be encoded.
  public static func url(_ base: String, _ path: String, query: [(String, String)] = []) -> URL {
    var text = base + path
    if !query.isEmpty { text += (text.contains("?") ? "&" : "?") + form(query) }
    return parse(text)
  }

  /// A URL built from configuration and encoded pieces. `initialize` checks every configured URL still parses with a
  /// path and query appended, so this cannot fail; were it ever to, the result is a URL every transport refuses as a
  /// local error (permanent, never retried), never a crash.
  public static func parse(_ text: String) -> URL {
    URL(string: text) ?? unusable
  }

  /// Not http(s): the transports refuse it before sending anything.
  static let unusable = URL(fileURLWithPath: "/")

  /// One path segment, percent-encoded; `.` and `..` are encoded too (`%2E`), so that an id cannot become a dot
  /// segment and move the request to another path.
  public static func pathSegment(_ text: String) -> String {
    let encoded = percentEncode(text)
    return encoded.allSatisfy({ $0 == "." }) ? String(repeating: "%2E", count: encoded.count) : encoded
  }

  public static func jsonBody(_ value: JSONValue) -> HTTPBody { .bytes(value.serialized()) }
}
