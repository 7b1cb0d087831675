#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// A request body. `file` is streamed from disk in chunks so that uploading a large video does not
/// hold it in memory.
public enum HTTPBody: Sendable, Equatable {
  case empty
  case bytes(Data)
  /// `length` bytes of the file at `path`, starting at `offset`.
  case file(path: String, offset: Int64, length: Int64)

  public static func bytes(_ bytes: [UInt8]) -> HTTPBody { .bytes(Data(bytes)) }

  /// The bytes of an in-memory body (none for `.empty` and `.file`).
  var bytes: Data {
    if case .bytes(let data) = self { return data }
    return Data()
  }

  /// Byte count when known without touching the disk.
  var knownLength: Int64 {
    switch self {
    case .empty: 0
    case .bytes(let data): Int64(data.count)
    case .file(_, _, let length): length
    }
  }
}

/// One HTTP request, sent as one attempt: retries belong to the resilience layer above.
public struct HTTPRequest: Sendable {
  public var method: String
  public var url: URL
  public var headers: HTTPHeaders
  public var body: HTTPBody
  /// Total time for this attempt, from hand-off to the transport to the last body byte; nil = none.
  public var timeout: Duration?
  /// Time allowed to establish the connection (TCP and TLS); nil = libcurl's default (300 s).
  public var connectTimeout: Duration?
  /// A longer response body fails with `TransportError.Kind.tooLarge` rather than filling memory.
  public var maxResponseBytes: Int
  /// The request leaves at most once per attempt (a publish). libcurl silently re-sends a request on a new
  /// connection when the reused one it went out on closes before any response byte, which for a publish the
  /// platform already processed means a duplicate post. `CurlTransport` refuses that re-send (the attempt fails with
  /// `requestSent`, so the caller reconciles), sends over HTTP/1.1 (an HTTP/2 stream the server refuses is re-sent
  /// the same way) and reuses only recently used connections (`atMostOnceMaxIdle`). URLSession offers no such
  /// control, one more reason it is only the fallback.
  public var atMostOnce = false
  /// The addresses to connect to for the URL's host instead of resolving it again (IPv4 dotted or IPv6 text): the ones
  /// a caller checked, so that a DNS answer changed since (rebinding) cannot send the request elsewhere. Empty: resolve
  /// as usual. Only `CurlTransport` honours it (libcurl's resolve override).
  public var pinnedAddresses: [String] = []

  public static let defaultMaxResponseBytes = 16 << 20

  public init(
    method: String = "GET", url: URL, headers: HTTPHeaders = [:], body: HTTPBody = .empty,
    timeout: Duration? = nil, connectTimeout: Duration? = nil, maxResponseBytes: Int = defaultMaxResponseBytes
  ) {
    self.method = method
    self.url = url
    self.headers = headers
    self.body = body
    self.timeout = timeout
    self.connectTimeout = connectTimeout
    self.maxResponseBytes = maxResponseBytes
  }
}

/// A complete response. Statuses are never errors at this layer: a 429 or 500 is a response.
public struct HTTPResponse: Sendable {
  public var status: Int
  public var headers: HTTPHeaders
  public var body: Data

  public init(status: Int, headers: HTTPHeaders = [:], body: Data = Data()) {
    self.status = status
    self.headers = headers
    self.body = body
  }
}

extension URL {
  /// `scheme://host[:port]/path` with the query and fragment left out: Meta's tokens travel in the
  /// query string, so this is the only form of a URL that may appear in an error or a log.
  var redactedForLogs: String {
    var text = (scheme ?? "?") + "://" + (host ?? "")
    if let port { text += ":\(port)" }
    return text + path
  }
}
