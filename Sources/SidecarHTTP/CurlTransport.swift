internal import CCurl
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// HTTP over libcurl's multi interface, the production transport on Linux (URLSession there busy-spins
/// on fresh connections, churns keep-alive connections and fails on HTTP/2 GOAWAY).
///
/// One thread drives every transfer with `curl_multi_poll`; callers hand requests over through a locked
/// queue and are resumed through continuations, so there is no thread per request. Past a host's connection
/// limit, requests wait in an `AdmissionQueue` before they take an easy handle. Connections are reused per host
/// (HTTP/2 multiplexed where the server offers it over TLS; an `atMostOnce` request over HTTP/1.1, never re-sent),
/// easy handles are pooled, TLS is always verified, bodies stream from and to files in chunks.
public final class CurlTransport: HTTPTransport {
  let engine: CurlEngine
  private let configuration: HTTPTransportConfiguration

  /// Throws `TransportError.Kind.unavailable` when libcurl cannot be loaded (e.g. it is not installed),
  /// which `makeDefaultTransport` turns into a clear error for every request.
  public init(configuration: HTTPTransportConfiguration = HTTPTransportConfiguration()) throws(TransportError) {
    var reason = [CChar](repeating: 0, count: 256)
    guard ccurl_load(&reason, reason.count) == 0 else {
      let text = String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      throw TransportError(.unavailable, requestSent: false, message: text)
    }
    let perHost = min(max(1, configuration.maxConnectionsPerHost), 100_000)
    // Idle connections kept for reuse. libcurl walks the whole cache for every new connection (21% of CPU with
    // 2,048 slots when every publish opened one), and an idle TLS connection holds tens of KB: 128 is enough for
    // the concurrency a sidecar sees; past it, connections close as transfers finish.
    guard let engine = CurlEngine(maxHostConnections: perHost, maxCachedConnections: min(max(16, perHost * 2), 128))
    else {
      throw TransportError(.unavailable, requestSent: false, message: "cannot create a libcurl multi handle")
    }
    self.engine = engine
    self.configuration = configuration
    engine.start()
  }

  deinit {
    engine.shutdown()
  }

  /// libcurl's version line (e.g. "libcurl/7.88.1 OpenSSL/3.0.19 ... nghttp2/1.52.0"), nil if not loadable.
  public static var libraryVersion: String? {
    guard ccurl_load(nil, 0) == 0 else { return nil }
    return String(cString: ccurl_version())
  }

  public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    let transfer = try await run(request, sink: .memory(cap: Int64(max(0, request.maxResponseBytes))))
    defer { engine.recycle(transfer) }
    var length = 0
    let body: Data
    if let bytes = ccurl_transfer_take_body(transfer.raw, &length), length > 0 {
      body = Data(bytesNoCopy: bytes, count: length, deallocator: .free)
    } else {
      body = Data()
    }
    return HTTPResponse(
      status: ccurl_transfer_status(transfer.raw), headers: Self.responseHeaders(transfer), body: body)
  }

  public func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    let fd = try BodyFiles.createForDownload(path)
    do {
      let transfer = try await run(request, sink: .file(descriptor: fd, cap: maxBytes))
      defer { engine.recycle(transfer) }
      let response = HTTPResponse(status: ccurl_transfer_status(transfer.raw), headers: Self.responseHeaders(transfer))
      return (response, ccurl_transfer_body_bytes(transfer.raw))
    } catch {
      unlink(path)
      throw error
    }
  }

  // MARK: - One attempt

  private enum Sink {
    case memory(cap: Int64)
    case file(descriptor: Int32, cap: Int64)

    /// Closes what the sink owns when no transfer took it over.
    func abandon() {
      if case .file(let fd, _) = self { close(fd) }
    }
  }

  /// Runs the request to completion and returns the transfer (owned by the caller, to be recycled)
  /// when libcurl reports success; throws a `TransportError` otherwise. Takes ownership of a file sink.
  private func run(_ request: HTTPRequest, sink: Sink) async throws(TransportError) -> TransferHandle {
    let queuedAt = ContinuousClock.now
    let origin: String
    do throws(TransportError) {
      origin = try Self.origin(of: request.url)
    } catch {
      sink.abandon()
      throw error
    }
    let admission = await engine.admit(origin, deadline: request.timeout.map { queuedAt + $0 })
    guard case .admitted = admission else {
      sink.abandon()
      throw Self.error(admission, request: request, waited: queuedAt.duration(to: .now))
    }
    defer { engine.leave(origin) }

    guard let transfer = engine.checkout() else {
      sink.abandon()
      throw TransportError(.unavailable, requestSent: false, message: "cannot allocate a libcurl handle")
    }
    switch sink {
    case .memory(let cap): ccurl_transfer_set_response_memory(transfer.raw, cap)
    case .file(let fd, let cap): ccurl_transfer_set_response_fd(transfer.raw, fd, cap)
    }
    do throws(TransportError) {
      if Task.isCancelled {
        throw TransportError(.cancelled, requestSent: false, message: "\(request.method) cancelled before sending")
      }
      // The request's timeout counts the time it waited for admission.
      let timeout = request.timeout.map { $0 - queuedAt.duration(to: .now) }
      if let timeout, timeout <= .zero {
        throw Self.error(.timedOut, request: request, waited: queuedAt.duration(to: .now))
      }
      try configure(transfer, for: request, timeout: timeout)
    } catch {
      engine.recycle(transfer)
      throw error
    }
    let outcome = await engine.perform(transfer)
    if case .done(CCURLE_OK) = outcome { return transfer }
    let failure = Self.error(outcome, transfer: transfer, request: request)
    engine.recycle(transfer)
    throw failure
  }

  @inline(never)
  private static func error(_ outcome: CurlEngine.Outcome, transfer: TransferHandle, request: HTTPRequest)
    -> TransportError
  {
    switch outcome {
    case .done(let code):
      return error(code: code, transfer: transfer, request: request)
    case .cancelled:
      return TransportError(
        .cancelled, requestSent: ccurl_transfer_request_size(transfer.raw) > 0,
        message: "\(request.method) \(request.url.redactedForLogs) cancelled")
    case .shutdown:
      return TransportError(.cancelled, requestSent: false, message: "the transport shut down")
    case .rejected(let code):
      return TransportError(.other, requestSent: false, message: "libcurl refused the transfer (multi code \(code))")
    }
  }

  /// The admission key: libcurl caps connections per host and port, and so do we.
  @inline(never)
  private static func origin(of url: URL) throws(TransportError) -> String {
    guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
      let host = url.host?.lowercased(), !host.isEmpty
    else {
      throw TransportError(
        .invalidURL, requestSent: false, message: "not an absolute http(s) URL: \(url.redactedForLogs)")
    }
    return "\(scheme)://\(host):\(url.port ?? (scheme == "https" ? 443 : 80))"
  }

  /// A request that never reached libcurl.
  @inline(never)
  private static func error(_ admission: CurlEngine.Admission, request: HTTPRequest, waited: Duration) -> TransportError
  {
    let target = "\(request.method) \(request.url.redactedForLogs)"
    switch admission {
    case .admitted, .cancelled:
      return TransportError(.cancelled, requestSent: false, message: "\(target) cancelled before sending")
    case .timedOut:
      return TransportError(
        .timedOut, requestSent: false,
        message: "\(target): timed out after \(waited.wholeMilliseconds) ms queued for one of the host's connections")
    case .shutdown:
      return TransportError(.cancelled, requestSent: false, message: "the transport shut down")
    }
  }

  private static let bodyMethods: Set<String> = ["POST", "PUT", "PATCH"]

  @inline(never)
  private func configure(_ transfer: TransferHandle, for request: HTTPRequest, timeout: Duration?)
    throws(TransportError)
  {
    let t = transfer.raw
    let url = request.url
    let method = request.method.uppercased()
    guard !method.isEmpty, method.utf8.allSatisfy({ Self.isTokenByte($0) }) else {
      throw TransportError(.invalidRequest, requestSent: false, message: "invalid method")
    }
    ccurl_transfer_setopt_string(t, CCURLOPT_URL, url.absoluteString)
    if !request.pinnedAddresses.isEmpty, let host = url.host {
      // Connect where the caller checked, not where a second DNS answer points (rebinding).
      let port = url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80)
      let addresses = request.pinnedAddresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
      guard ccurl_transfer_add_resolve(t, "\(host):\(port):\(addresses)") == 0 else {
        throw TransportError(.other, requestSent: false, message: "out of memory for the pinned addresses")
      }
    }
    ccurl_transfer_setopt_string(t, CCURLOPT_PROTOCOLS_STR, "http,https")
    if request.atMostOnce {
      ccurl_transfer_setopt_long(t, CCURLOPT_HTTP_VERSION, Int(CCURL_HTTP_VERSION_1_1))
      let maxIdle = max(0, Int(configuration.atMostOnceMaxIdle.components.seconds))
      guard ccurl_transfer_send_at_most_once(t, maxIdle) == 0 else {
        throw TransportError(
          .unavailable, requestSent: false, message: "libcurl cannot send at most once (older than 7.80)")
      }
    } else {
      ccurl_transfer_setopt_long(t, CCURLOPT_HTTP_VERSION, Int(CCURL_HTTP_VERSION_2TLS))
      // Wait for a connection that may multiplex rather than open a new one per request at start-up.
      ccurl_transfer_setopt_long(t, CCURLOPT_PIPEWAIT, 1)
    }
    ccurl_transfer_setopt_long(t, CCURLOPT_SSL_VERIFYPEER, 1)
    ccurl_transfer_setopt_long(t, CCURLOPT_SSL_VERIFYHOST, 2)
    guard ccurl_transfer_trust(t, configuration.caBundlePath) == 0 else {
      throw TransportError(.tls, requestSent: false, message: "libcurl refused the CA bundle settings")
    }
    ccurl_transfer_setopt_string(t, CCURLOPT_USERAGENT, configuration.userAgent)
    if configuration.followRedirects {
      ccurl_transfer_setopt_long(t, CCURLOPT_FOLLOWLOCATION, 1)
      ccurl_transfer_setopt_long(t, CCURLOPT_MAXREDIRS, 5)
      ccurl_transfer_setopt_string(t, CCURLOPT_REDIR_PROTOCOLS_STR, "http,https")
    }
    if let timeout {
      ccurl_transfer_setopt_long(t, CCURLOPT_TIMEOUT_MS, timeout.wholeMilliseconds)
    }
    if let connectTimeout = request.connectTimeout {
      ccurl_transfer_setopt_long(t, CCURLOPT_CONNECTTIMEOUT_MS, connectTimeout.wholeMilliseconds)
    }

    let uploads = Self.bodyMethods.contains(method) || request.body != .empty
    for (name, value) in request.headers {
      guard !name.isEmpty, name.utf8.allSatisfy({ Self.isTokenByte($0) }) else {
        throw TransportError(.invalidRequest, requestSent: false, message: "invalid header name")
      }
      guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
        throw TransportError(.invalidRequest, requestSent: false, message: "line break in the value of header \(name)")
      }
      if HTTPHeaders.sameName(name, "Content-Length") { continue }  // libcurl derives it from the body
      // "Name:" would tell libcurl to drop the header; "Name;" sends it empty.
      ccurl_transfer_add_header(t, value.isEmpty ? name + ";" : name + ": " + value)
    }
    if uploads && !request.headers.contains("Expect") {
      ccurl_transfer_add_header(t, "Expect:")  // no 100-continue round trip
    }

    if uploads {
      if case .file(let path, let offset, let length) = request.body {
        try attachFile(path, offset: offset, length: length, to: t)
        ccurl_transfer_setopt_long(t, CCURLOPT_UPLOAD, 1)
        ccurl_transfer_setopt_off(t, CCURLOPT_INFILESIZE_LARGE, request.body.knownLength)
        if method != "PUT" { ccurl_transfer_setopt_string(t, CCURLOPT_CUSTOMREQUEST, method) }
      } else {
        let rc = request.body.bytes.withUnsafeBytes { ccurl_transfer_set_body_bytes(t, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw TransportError(.other, requestSent: false, message: "out of memory for the body") }
        if method != "POST" { ccurl_transfer_setopt_string(t, CCURLOPT_CUSTOMREQUEST, method) }
        // libcurl labels a POSTFIELDS body as a form unless told otherwise; send only what the caller set.
        if !request.headers.contains("Content-Type") { ccurl_transfer_add_header(t, "Content-Type:") }
      }
    } else if method == "HEAD" {
      ccurl_transfer_setopt_long(t, CCURLOPT_NOBODY, 1)
    } else if method != "GET" {
      ccurl_transfer_setopt_string(t, CCURLOPT_CUSTOMREQUEST, method)
    }
    guard ccurl_transfer_prepare(t) == 0 else {
      throw TransportError(.other, requestSent: false, message: "libcurl rejected the transfer's callbacks")
    }
  }

  private func attachFile(_ path: String, offset: Int64, length: Int64, to t: OpaquePointer) throws(TransportError) {
    let fd = try BodyFiles.openForUpload(path, offset: offset, length: length)
    ccurl_transfer_set_upload_fd(t, fd, offset, length)
  }

  /// RFC 9110 token characters (header names, methods).
  private static func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      true
    default:
      "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
  }

  // MARK: - Results

  private static func responseHeaders(_ transfer: TransferHandle) -> HTTPHeaders {
    var length = 0
    guard let start = ccurl_transfer_headers(transfer.raw, &length), length > 0 else { return HTTPHeaders() }
    let block = UnsafeRawBufferPointer(start: start, count: length)
    var pairs: [(String, String)] = []
    var lineStart = 0
    var isStatusLine = true
    while lineStart < block.count {
      var lineEnd = block[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? block.count
      let next = lineEnd + 1
      if lineEnd > lineStart && block[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
      let line = UnsafeRawBufferPointer(rebasing: block[lineStart..<lineEnd])
      lineStart = next
      if isStatusLine {
        isStatusLine = false
        continue
      }
      guard let first = line.first else { continue }
      if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {  // obsolete line folding
        if let last = pairs.indices.last { pairs[last].1 += " " + trimmed(line) }
        continue
      }
      guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
      let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[..<colon]), as: UTF8.self)
      pairs.append((name, trimmed(UnsafeRawBufferPointer(rebasing: line[(colon + 1)...]))))
    }
    return HTTPHeaders(pairs)
  }

  private static func trimmed(_ bytes: UnsafeRawBufferPointer) -> String {
    let isSpace = { (b: UInt8) in b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
    guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) })
    else { return "" }
    return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[first...last]), as: UTF8.self)
  }

  private static func error(code: Int32, transfer: TransferHandle, request: HTTPRequest) -> TransportError {
    let t = transfer.raw
    let flags = ccurl_transfer_flags(t)
    let sent = ccurl_transfer_request_size(t) > 0
    let target = "\(request.method) \(request.url.redactedForLogs)"
    if flags & CCURL_FLAG_BODY_TOO_LARGE != 0 || code == CCURLE_FILESIZE_EXCEEDED {
      return TransportError(.tooLarge, requestSent: sent, message: "\(target): response body over the size cap")
    }
    if flags & CCURL_FLAG_HEADERS_TOO_LARGE != 0 {
      return TransportError(.tooLarge, requestSent: sent, message: "\(target): response headers over 256 KiB")
    }
    if flags & CCURL_FLAG_UPLOAD_READ_FAILED != 0 {
      return TransportError(.other, requestSent: sent, message: "\(target): reading the body file failed")
    }
    if flags & CCURL_FLAG_RESEND_REFUSED != 0 {
      return TransportError(
        .other, requestSent: true,
        message: "\(target): the kept-alive connection closed before any answer; the request was not sent again, "
          + "since the server may have acted on it")
    }
    if flags & CCURL_FLAG_DOWNLOAD_WRITE_FAILED != 0 {
      return TransportError(.other, requestSent: sent, message: "\(target): writing the download failed")
    }
    var detail = String(cString: ccurl_transfer_error(t))
    if detail.isEmpty { detail = String(cString: ccurl_strerror(code)) }
    detail = scrub(detail, of: request.url)
    let kind: TransportError.Kind
    switch code {
    case CCURLE_UNSUPPORTED_PROTOCOL, CCURLE_URL_MALFORMAT:
      return TransportError(.invalidURL, requestSent: false, message: "\(target): \(detail)")
    case CCURLE_COULDNT_RESOLVE_HOST, CCURLE_COULDNT_RESOLVE_PROXY, CCURLE_COULDNT_CONNECT, CCURLE_INTERFACE_FAILED:
      kind = .connectFailed
    case CCURLE_OPERATION_TIMEDOUT:
      kind = .timedOut
    case CCURLE_SSL_CONNECT_ERROR, CCURLE_PEER_FAILED_VERIFICATION, CCURLE_SSL_CACERT_BADFILE, CCURLE_SSL_CERTPROBLEM,
      CCURLE_SSL_CIPHER, CCURLE_SSL_ENGINE_NOTFOUND, CCURLE_SSL_CRL_BADFILE, CCURLE_SSL_ISSUER_ERROR,
      CCURLE_SSL_PINNEDPUBKEYNOTMATCH, CCURLE_SSL_INVALIDCERTSTATUS, CCURLE_SSL_CLIENTCERT:
      kind = .tls
    default:
      kind = .other
    }
    return TransportError(kind, requestSent: sent, message: "\(target): \(detail) (curl \(code))")
  }

  /// libcurl's texts name hosts and ports, not URLs; strip the query anyway should one ever appear.
  private static func scrub(_ text: String, of url: URL) -> String {
    var text = text.replacing(url.absoluteString, with: url.redactedForLogs)
    if let query = url.query, !query.isEmpty { text = text.replacing(query, with: "…") }
    return text
  }
}

extension Duration {
  /// Rounded up, at least 1: libcurl reads 0 as "no timeout".
  var wholeMilliseconds: Int {
    let (seconds, attoseconds) = components
    let perMillisecond: Int64 = 1_000_000_000_000_000
    let milliseconds = seconds.multipliedReportingOverflow(by: 1000)
    guard !milliseconds.overflow else { return seconds > 0 ? Int.max : 1 }
    let total = milliseconds.partialValue + attoseconds / perMillisecond + (attoseconds % perMillisecond > 0 ? 1 : 0)
    return Int(max(1, total))
  }
}
