import Foundation
import SidecarHTTP
import SidecarJSON

/// URL and body encodings shared by every platform client.
public enum Encoding {
  /// RFC 3986 unreserved characters stay; everything else is percent-encoded (safe for query values, form values
  /// and path segments such as LinkedIn URNs).
  public static func percentEncode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
  }

  /// `application/x-www-form-urlencoded` body or query string, in the order given.
  public static func form(_ pairs: [(String, String)]) -> String {
    pairs.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
  }

  /// `base` + `path` + `?query`; `path` segments must already be encoded.
  public static func url(_ base: String, _ path: String, query: [(String, String)] = []) -> URL {
    var text = base + path
    if !query.isEmpty { text += (text.contains("?") ? "&" : "?") + form(query) }
    return URL(string: text)!
  }

  public static func jsonBody(_ value: JSONValue) -> HTTPBody { .bytes(value.serialized()) }
}
