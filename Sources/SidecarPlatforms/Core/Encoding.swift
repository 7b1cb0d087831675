#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

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

  /// A `multipart/form-data` body of text fields and one file part, and its `Content-Type`. Only for bounded parts
  /// (an upload chunk): the file's bytes are in memory.
  public static func multipart(
    _ fields: [(String, String)], file: (name: String, filename: String, contentType: String, data: Data)
  ) -> (body: HTTPBody, contentType: String) {
    let boundary = "social-sidecar-" + UUID().uuidString
    var data = Data()
    for (name, value) in fields {
      data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
    }
    data.append(
      Data(
        ("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.name)\"; filename=\"\(file.filename)\"\r\n"
          + "Content-Type: \(file.contentType)\r\n\r\n").utf8))
    data.append(file.data)
    data.append(Data("\r\n--\(boundary)--\r\n".utf8))
    return (.bytes(data), "multipart/form-data; boundary=\(boundary)")
  }
}

extension UInt8 {
  /// `a`–`z`, `A`–`Z` or `0`–`9`.
  var isASCIIAlphanumeric: Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self | 0x20)
      || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
  }
}

/// A `multipart/form-data` body written to a file (text fields, then one file's bytes, or a range of them, copied in
/// chunks), so that a large part is streamed from disk rather than held in memory. Remove it when done.
public struct MultipartFile: Sendable {
  public let path: String
  public let size: Int64
  public let contentType: String

  /// Writes the body into a new file (mode 0600) in `directory`; nil when it cannot be written or `source` read
  /// (the whole file, or `range` of it). The source is opened as every upload is: not through a link, only a regular
  /// file.
  public static func write(
    _ fields: [(String, String)], file name: String, filename: String, contentType fileType: String,
    source: LocalFile, range: Range<Int64>? = nil, directory: String = FileManager.default.temporaryDirectory.path
  ) -> MultipartFile? {
    let range = range ?? 0..<source.size
    let length = range.upperBound - range.lowerBound
    let boundary = "social-sidecar-" + UUID().uuidString
    let path = directory + "/social-sidecar-multipart-" + UUID().uuidString
    let output = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard output >= 0 else { return nil }
    defer { close(output) }
    guard let input = try? BodyFiles.openForUpload(source.path, offset: range.lowerBound, length: length) else {
      unlink(path)
      return nil
    }
    defer { close(input) }
    var head = ""
    for (field, value) in fields {
      head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(field)\"\r\n\r\n\(value)\r\n"
    }
    head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\n"
    head += "Content-Type: \(fileType)\r\n\r\n"
    var written = Int64(0)
    func put(_ bytes: UnsafeRawBufferPointer) -> Bool {
      var offset = 0
      while offset < bytes.count {
        let count = Glibc.write(output, bytes.baseAddress! + offset, bytes.count - offset)
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return false }
        offset += count
      }
      written += Int64(bytes.count)
      return true
    }
    var copied = Int64(0)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var ok = Array(head.utf8).withUnsafeBytes(put)
    while ok && copied < length {
      let count = buffer.withUnsafeMutableBytes {
        pread(input, $0.baseAddress, Int(min(Int64($0.count), length - copied)), off_t(range.lowerBound + copied))
      }
      if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
      guard count > 0 else {
        ok = count == 0
        break
      }
      ok = buffer.withUnsafeBytes { put(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
      copied += Int64(count)
    }
    ok = ok && copied == length && Array("\r\n--\(boundary)--\r\n".utf8).withUnsafeBytes(put)
    guard ok else {
      unlink(path)
      return nil
    }
    return MultipartFile(path: path, size: written, contentType: "multipart/form-data; boundary=\(boundary)")
  }

  public func remove() { unlink(path) }
}
