import Foundation
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
    return URL(string: text)!
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
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
  }
}

/// A `multipart/form-data` body written to a file (text fields, then one file's bytes copied in chunks), so that a
/// large part is streamed from disk rather than held in memory. Remove it when done.
public struct MultipartFile: Sendable {
  public let path: String
  public let size: Int64
  public let contentType: String

  /// Writes the body into a new file in `directory`; nil when the file cannot be written or `source` read.
  public static func write(
    _ fields: [(String, String)], file name: String, filename: String, contentType fileType: String,
    source: LocalFile, directory: String = NSTemporaryDirectory()
  ) -> MultipartFile? {
    let boundary = "social-sidecar-" + UUID().uuidString
    let path = (directory as NSString).appendingPathComponent("social-sidecar-multipart-\(UUID().uuidString)")
    guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
      let output = FileHandle(forWritingAtPath: path)
    else { return nil }
    defer { try? output.close() }
    guard let input = FileHandle(forReadingAtPath: source.path) else {
      try? FileManager.default.removeItem(atPath: path)
      return nil
    }
    defer { try? input.close() }
    var head = ""
    for (field, value) in fields {
      head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(field)\"\r\n\r\n\(value)\r\n"
    }
    head += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\n"
    head += "Content-Type: \(fileType)\r\n\r\n"
    do {
      try output.write(contentsOf: Data(head.utf8))
      var copied: Int64 = 0
      while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
        try output.write(contentsOf: chunk)
        copied += Int64(chunk.count)
      }
      guard copied == source.size else { throw ShortRead() }
      try output.write(contentsOf: Data("\r\n--\(boundary)--\r\n".utf8))
      let size = Int64(try output.offset())
      return MultipartFile(path: path, size: size, contentType: "multipart/form-data; boundary=\(boundary)")
    } catch {
      try? FileManager.default.removeItem(atPath: path)
      return nil
    }
  }

  public func remove() { try? FileManager.default.removeItem(atPath: path) }

  /// The source file changed size while it was copied.
  private struct ShortRead: Error {}
}
