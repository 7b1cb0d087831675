import Foundation
@testable import SidecarHTTP
import Testing

/// The transports against a real local HTTP server: what a platform client would notice.
@Suite("HTTP transports", .serialized)
struct TransportTests {
  let server = TestServer.shared

  @Test("GET carries headers and the query", arguments: TransportKind.allCases)
  func getWithHeaders(kind: TransportKind) async throws {
    let transport = try kind.make(HTTPTransportConfiguration(userAgent: "sidecar-test/1"))
    var headers = HTTPHeaders()
    headers.add(name: "X-Request-Id", value: "abc-123")
    headers.add(name: "Accept", value: "application/json")
    let response = try await transport.send(
      HTTPRequest(url: server.url("/echo?fields=id,name&limit=5"), headers: headers))
    #expect(response.status == 200)
    let echo = try JSONDecoder().decode(Echo.self, from: response.body)
    #expect(echo.method == "GET")
    #expect(echo.query == "fields=id,name&limit=5")
    #expect(echo.header("x-request-id") == "abc-123")
    #expect(echo.header("accept") == "application/json")
    #expect(echo.header("user-agent") == "sidecar-test/1")
    #expect(echo.bodyLength == 0)
  }

  @Test("POST sends the body with its length and the caller's content type", arguments: TransportKind.allCases)
  func postBody(kind: TransportKind) async throws {
    let transport = try kind.make()
    let json = #"{"message":"héllo","published":true}"#
    let response = try await transport.send(
      HTTPRequest(
        method: "POST", url: server.url("/v23.0/123/feed"), headers: ["Content-Type": "application/json"],
        body: .bytes(Data(json.utf8))))
    let echo = try JSONDecoder().decode(Echo.self, from: response.body)
    #expect(echo.method == "POST")
    #expect(echo.path == "/v23.0/123/feed")
    #expect(echo.bodyLength == json.utf8.count)
    #expect(Data(echo.body.unicodeScalars.map { UInt8($0.value) }) == Data(json.utf8))
    #expect(echo.header("content-type") == "application/json")
    #expect(echo.header("expect") == nil)
  }

  @Test("Methods without a body: DELETE, HEAD, and POST with an empty body", arguments: TransportKind.allCases)
  func bodilessMethods(kind: TransportKind) async throws {
    let transport = try kind.make()
    let delete = try await transport.send(HTTPRequest(method: "DELETE", url: server.url("/object/9")))
    #expect(try JSONDecoder().decode(Echo.self, from: delete.body).method == "DELETE")
    let head = try await transport.send(HTTPRequest(method: "HEAD", url: server.url("/bytes?n=5000")))
    #expect(head.status == 200)
    #expect(head.headers["Content-Length"] == "5000")
    #expect(head.body.isEmpty)
    let post = try await transport.send(HTTPRequest(method: "POST", url: server.url("/echo")))
    let echo = try JSONDecoder().decode(Echo.self, from: post.body)
    #expect(echo.method == "POST")
    #expect(echo.header("content-length") == "0")
  }

  @Test("A file body streams from disk and arrives intact, whole or as a byte range", arguments: TransportKind.allCases)
  func fileUpload(kind: TransportKind) async throws {
    let transport = try kind.make()
    let source = temporaryPath("upload-source")
    var contents = Data(count: 3_000_017)
    contents.withUnsafeMutableBytes { bytes in
      var state: UInt32 = 2_463_534_242
      for index in bytes.indices {
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        bytes[index] = UInt8(truncatingIfNeeded: state)
      }
    }
    try contents.write(to: URL(fileURLWithPath: source))
    defer { try? FileManager.default.removeItem(atPath: source) }

    for (offset, length) in [(Int64(0), Int64(contents.count)), (Int64(1000), Int64(2_000_000))] {
      let received = temporaryPath("upload-received")
      defer { try? FileManager.default.removeItem(atPath: received) }
      let response = try await transport.send(
        HTTPRequest(
          method: "PUT", url: server.url("/upload?save=\(received)"), headers: ["Content-Type": "video/mp4"],
          body: .file(path: source, offset: offset, length: length)))
      #expect(response.status == 200)
      let arrived = try Data(contentsOf: URL(fileURLWithPath: received))
      #expect(arrived.count == Int(length))
      #expect(arrived == contents[Int(offset)..<Int(offset + length)])
    }
  }

  @Test("A missing upload file fails before anything is sent", arguments: TransportKind.allCases)
  func missingUploadFile(kind: TransportKind) async throws {
    let transport = try kind.make()
    let error = try await #require(throws: TransportError.self) {
      try await transport.send(
        HTTPRequest(
          method: "POST", url: server.url("/upload"), body: .file(path: "/nonexistent/video.mp4", offset: 0, length: 10)
        ))
    }
    #expect(error.kind == .invalidRequest)
    #expect(!error.requestSent)
  }

  @Test("A download streams into a file", arguments: TransportKind.allCases)
  func downloadToFile(kind: TransportKind) async throws {
    let transport = try kind.make()
    let path = temporaryPath("download")
    defer { try? FileManager.default.removeItem(atPath: path) }
    for chunked in [false, true] {
      let (response, written) = try await transport.download(
        HTTPRequest(url: server.url("/bytes?n=2500000&chunked=\(chunked ? 1 : 0)")), to: path, maxBytes: 10_000_000)
      #expect(response.status == 200)
      #expect(response.body.isEmpty)
      #expect(written == 2_500_000)
      #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == servedPattern(2_500_000))
    }
  }

  @Test("A download over its cap fails as tooLarge and leaves no file", arguments: TransportKind.allCases)
  func downloadCap(kind: TransportKind) async throws {
    let transport = try kind.make()
    let path = temporaryPath("download-capped")
    for chunked in [false, true] {
      let error = try await #require(throws: TransportError.self) {
        try await transport.download(
          HTTPRequest(url: server.url("/bytes?n=300000&chunked=\(chunked ? 1 : 0)")), to: path, maxBytes: 100_000)
      }
      #expect(error.kind == .tooLarge)
      #expect(!FileManager.default.fileExists(atPath: path))
    }
  }

  @Test("A response body over maxResponseBytes fails as tooLarge", arguments: TransportKind.allCases)
  func responseCap(kind: TransportKind) async throws {
    let transport = try kind.make()
    for chunked in [false, true] {
      let error = try await #require(throws: TransportError.self) {
        try await transport.send(
          HTTPRequest(url: server.url("/bytes?n=200000&chunked=\(chunked ? 1 : 0)"), maxResponseBytes: 65_536))
      }
      #expect(error.kind == .tooLarge)
      #expect(error.requestSent)
    }
    let fits = try await transport.send(HTTPRequest(url: server.url("/bytes?n=65536"), maxResponseBytes: 65_536))
    #expect(fits.body == servedPattern(65_536))
  }

  @Test(
    "Response headers are found whatever their case; repeated ones keep every value", arguments: TransportKind.allCases)
  func responseHeaders(kind: TransportKind) async throws {
    let transport = try kind.make()
    let response = try await transport.send(HTTPRequest(url: server.url("/headers?status=429")))
    #expect(response.status == 429)
    #expect(response.headers["x-mixed-case"] == "one")
    #expect(response.headers["X-MIXED-CASE"] == "one")
    #expect(response.headers["retry-after"] == "7")
    if kind == .curl {  // URLSession folds repeated fields into one
      #expect(response.headers.values(for: "set-cookie") == ["a=1", "b=2"])
    }
  }

  @Test("The total timeout ends a slow attempt, after the request was sent", arguments: TransportKind.allCases)
  func timeout(kind: TransportKind) async throws {
    let transport = try kind.make()
    let clock = ContinuousClock()
    let start = clock.now
    let error = try await #require(throws: TransportError.self) {
      try await transport.send(HTTPRequest(url: server.url("/sleep?ms=4000"), timeout: .milliseconds(300)))
    }
    #expect(error.kind == .timedOut)
    #expect(error.requestSent)
    #expect(clock.now - start < .seconds(2))
  }

  @Test("Cancelling the task aborts the transfer at once", arguments: TransportKind.allCases)
  func cancel(kind: TransportKind) async throws {
    let transport = try kind.make()
    let id = UUID().uuidString
    let task = Task {
      try await transport.send(HTTPRequest(url: server.url("/hold?id=\(id)&ms=5000")))
    }
    // Wait until the server holds the request, so the cancel hits a transfer in flight.
    let probe = try kind.make()
    while try await probe.send(HTTPRequest(url: server.url("/seen?id=\(id)"))).body != Data("yes".utf8) {
      try await Task.sleep(for: .milliseconds(5))
    }
    let clock = ContinuousClock()
    let cancelledAt = clock.now
    task.cancel()
    let result = await task.result
    let elapsed = clock.now - cancelledAt
    let error = try #require(throws: TransportError.self) { try result.get() }
    #expect(error.kind == .cancelled)
    #expect(error.requestSent)
    #expect(elapsed < .milliseconds(kind == .curl ? 250 : 1000), "cancel took \(elapsed)")
  }

  @Test("A task cancelled before sending sends nothing", arguments: TransportKind.allCases)
  func cancelledBeforeSending(kind: TransportKind) async throws {
    let transport = try kind.make()
    let task = Task {
      withUnsafeCurrentTask { $0?.cancel() }
      return try await transport.send(HTTPRequest(url: server.url("/echo")))
    }
    let error = try await #require(throws: TransportError.self) { try await task.value }
    #expect(error.kind == .cancelled)
    #expect(!error.requestSent)
  }

  @Test("A cancellation landing at any moment of a request ends it, once", arguments: TransportKind.allCases)
  func cancellationRaces(kind: TransportKind) async throws {
    let transport = try kind.make()
    // Even requests finish at once, odd ones would take 5 s: a lost cancellation shows up as a 200.
    let outcomes = await withTaskGroup(of: (Int, String).self) { group in
      for index in 0..<100 {
        let task = Task {
          try await transport.send(HTTPRequest(url: server.url("/sleep?ms=\(index % 2 == 0 ? 0 : 5000)")))
        }
        group.addTask {
          for _ in 0..<(index % 7) { await Task.yield() }
          task.cancel()
          switch await task.result {
          case .success(let response): return (index, "\(response.status)")
          case .failure(let error as TransportError): return (index, "\(error.kind)")
          case .failure(let error): return (index, "\(error)")
          }
        }
      }
      return await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
    }
    #expect(outcomes.count == 100)
    for (index, outcome) in outcomes {
      #expect(outcome == "cancelled" || (index % 2 == 0 && outcome == "200"), "request \(index): \(outcome)")
    }
    #expect(try await transport.send(HTTPRequest(url: server.url("/bytes?n=10"))).body == servedPattern(10))
  }

  @Test("curl: past the per-host limit requests queue before libcurl, on as many connections as the limit")
  func admissionLimit() async throws {
    let transport = try CurlTransport(configuration: HTTPTransportConfiguration(maxConnectionsPerHost: 2))
    let ports = try await withThrowingTaskGroup(of: Int.self) { group in
      for index in 0..<12 {
        group.addTask {
          let response = try await transport.send(HTTPRequest(url: server.url("/echo?n=\(index)")))
          return try JSONDecoder().decode(Echo.self, from: response.body).clientPort
        }
      }
      return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
    }
    #expect(ports.count <= 2, "\(ports.count) connections for a limit of 2")
    #expect(transport.engine.queuedCount == 0)
  }

  @Test("curl: a request queued behind a busy host times out within its own timeout, unsent")
  func admissionTimeout() async throws {
    let transport = try CurlTransport(configuration: HTTPTransportConfiguration(maxConnectionsPerHost: 1))
    let id = UUID().uuidString
    let busy = Task { try await transport.send(HTTPRequest(url: server.url("/hold?id=\(id)&ms=3000"))) }
    defer { busy.cancel() }
    try await waitUntilHeld(id, probe: transport)
    let clock = ContinuousClock()
    let start = clock.now
    let error = try await #require(throws: TransportError.self) {
      try await transport.send(HTTPRequest(url: server.url("/echo"), timeout: .milliseconds(300)))
    }
    #expect(error.kind == .timedOut)
    #expect(!error.requestSent)
    #expect(error.message.contains("queued"))
    #expect(clock.now - start < .milliseconds(2500), "the queued request waited for the busy one")
  }

  @Test("curl: cancelling a queued request frees its turn, and the host's place is not leaked")
  func admissionCancel() async throws {
    let transport = try CurlTransport(configuration: HTTPTransportConfiguration(maxConnectionsPerHost: 1))
    let id = UUID().uuidString
    let busy = Task { try await transport.send(HTTPRequest(url: server.url("/hold?id=\(id)&ms=1000"))) }
    try await waitUntilHeld(id, probe: transport)
    let queued = Task { try await transport.send(HTTPRequest(url: server.url("/echo?queued"))) }
    while transport.engine.queuedCount == 0 { try await Task.sleep(for: .milliseconds(2)) }
    queued.cancel()
    let result = await queued.result
    let error = try #require(throws: TransportError.self) { try result.get() }
    #expect(error.kind == .cancelled)
    #expect(!error.requestSent)
    #expect(try await busy.value.body == Data("held".utf8))
    #expect(try await transport.send(HTTPRequest(url: server.url("/echo?after"))).status == 200)
  }

  /// Waits until the test server holds the `/hold` request `id` (asked on another host name, so that the probe is
  /// not queued behind it).
  private func waitUntilHeld(_ id: String, probe transport: some HTTPTransport) async throws {
    let seen = URL(
      string: server.url("/seen?id=\(id)").absoluteString.replacingOccurrences(of: "127.0.0.1", with: "localhost"))!
    while try await transport.send(HTTPRequest(url: seen)).body != Data("yes".utf8) {
      try await Task.sleep(for: .milliseconds(5))
    }
  }

  @Test("A refused connection reports that nothing was sent, and never the query", arguments: TransportKind.allCases)
  func connectRefused(kind: TransportKind) async throws {
    let transport = try kind.make()
    let url = URL(string: "http://127.0.0.1:\(refusedPort())/v23.0/me/feed?access_token=SECRET-TOKEN")!
    let error = try await #require(throws: TransportError.self) {
      try await transport.send(HTTPRequest(method: "POST", url: url, body: .bytes(Data("{}".utf8))))
    }
    #expect(error.kind == .connectFailed)
    #expect(!error.requestSent)
    #expect(!error.message.contains("SECRET"))
    #expect(!error.description.contains("access_token"))
  }

  @Test("Non-http URLs and header injection are refused before sending", arguments: TransportKind.allCases)
  func invalidRequests(kind: TransportKind) async throws {
    let transport = try kind.make()
    let file = try await #require(throws: TransportError.self) {
      try await transport.send(HTTPRequest(url: URL(fileURLWithPath: "/etc/passwd")))
    }
    #expect(file.kind == .invalidURL)
    #expect(!file.requestSent)
    let injected = try await #require(throws: TransportError.self) {
      try await transport.send(HTTPRequest(url: server.url("/echo"), headers: ["X-Evil": "a\r\nHost: elsewhere"]))
    }
    #expect(injected.kind == .invalidRequest)
    #expect(!injected.requestSent)
  }

  @Test("Concurrent requests all complete", arguments: TransportKind.allCases)
  func concurrency(kind: TransportKind) async throws {
    let transport = try kind.make()
    let paths = try await withThrowingTaskGroup(of: String.self) { group in
      for index in 0..<200 {
        group.addTask {
          let response = try await transport.send(HTTPRequest(url: server.url("/echo/\(index)")))
          return try JSONDecoder().decode(Echo.self, from: response.body).path
        }
      }
      return try await group.reduce(into: Set<String>()) { $0.insert($1) }
    }
    #expect(paths == Set((0..<200).map { "/echo/\($0)" }))
  }
}

@Suite("CurlTransport specifics")
struct CurlTransportTests {
  let server = TestServer.shared

  @Test("Sequential requests reuse one keep-alive connection")
  func connectionReuse() async throws {
    let transport = try CurlTransport()
    var ports = Set<Int>()
    for _ in 0..<5 {
      let response = try await transport.send(HTTPRequest(url: server.url("/echo")))
      ports.insert(try JSONDecoder().decode(Echo.self, from: response.body).clientPort)
    }
    #expect(ports.count == 1)
  }

  @Test("An at-most-once request (a publish) rides a recent keep-alive connection over HTTP/1.1")
  func atMostOnceReuses() async throws {
    // A generous idle limit: on a loaded machine the requests below may be more than a second apart.
    let transport = try CurlTransport(configuration: HTTPTransportConfiguration(atMostOnceMaxIdle: .seconds(60)))
    var publish = HTTPRequest(method: "POST", url: server.url("/echo"), body: .bytes(Array("x".utf8)))
    publish.atMostOnce = true
    var ports: [Int] = []
    for request in [HTTPRequest(url: server.url("/echo")), publish, publish] {
      ports.append(try JSONDecoder().decode(Echo.self, from: try await transport.send(request).body).clientPort)
    }
    #expect(Set(ports).count == 1)
  }

  @Test("When a reused connection closes unanswered, libcurl re-sends a request, but never an at-most-once one")
  func atMostOnceIsNotResent() async throws {
    let transport = try CurlTransport()
    func sendDropped(_ id: String, atMostOnce: Bool) async throws -> (TransportError, Int) {
      _ = try await transport.send(HTTPRequest(url: server.url("/echo")))  // a keep-alive connection to reuse
      var request = HTTPRequest(method: "POST", url: server.url("/drop?id=\(id)"), body: .bytes(Array("{}".utf8)))
      request.atMostOnce = atMostOnce
      let error = try await #require(throws: TransportError.self) { try await transport.send(request) }
      let count = try await transport.send(HTTPRequest(url: server.url("/drops?id=\(id)"))).body
      return (error, Int(String(decoding: count, as: UTF8.self)) ?? -1)
    }
    // What a publish must never do: the server got the request twice.
    let (_, resent) = try await sendDropped(UUID().uuidString, atMostOnce: false)
    #expect(resent == 2)

    let (error, once) = try await sendDropped(UUID().uuidString, atMostOnce: true)
    #expect(once == 1)
    #expect(error.requestSent)
    #expect(error.message.contains("not sent again"))
  }

  @Test("The transport serves requests again after a cancellation and after errors")
  func reusableAfterFailures() async throws {
    let transport = try CurlTransport()
    let task = Task { try await transport.send(HTTPRequest(url: server.url("/sleep?ms=3000"))) }
    task.cancel()
    _ = await task.result
    _ = try? await transport.send(HTTPRequest(url: server.url("/bytes?n=100000"), maxResponseBytes: 10))
    let response = try await transport.send(HTTPRequest(url: server.url("/bytes?n=10")))
    #expect(response.body == servedPattern(10))
  }

  @Test("TLS is verified: a private CA is trusted only when configured")
  func tlsVerification() async throws {
    let trusting = try CurlTransport(configuration: HTTPTransportConfiguration(caBundlePath: server.caPath))
    let response = try await trusting.send(HTTPRequest(url: server.tlsURL("/echo?over=tls")))
    #expect(try JSONDecoder().decode(Echo.self, from: response.body).query == "over=tls")

    let systemTrust = try CurlTransport()
    let error = try await #require(throws: TransportError.self) {
      try await systemTrust.send(
        HTTPRequest(method: "POST", url: server.tlsURL("/publish"), body: .bytes(Data("{}".utf8))))
    }
    #expect(error.kind == .tls)
    #expect(!error.requestSent)
  }

  @Test("Dropping a transport stops its loop thread")
  func shutdown() async throws {
    var engine: CurlEngine?
    do {
      let transport = try CurlTransport()
      _ = try await transport.send(HTTPRequest(url: server.url("/echo")))
      engine = transport.engine
      #expect(engine?.hasStopped == false)
    }
    let stopped = try #require(engine)
    for _ in 0..<500 where !stopped.hasStopped {  // the loop thread notices the shutdown asynchronously
      try await Task.sleep(for: .milliseconds(2))
    }
    #expect(stopped.hasStopped)
  }

  @Test("The default transport is libcurl where libcurl loads, URLSession's plugin when asked for")
  func defaultTransport() throws {
    #expect(CurlTransport.libraryVersion != nil)
    #expect(makeDefaultTransport(HTTPTransportConfiguration()).transport is CurlTransport)
    #expect(
      makeDefaultTransport(HTTPTransportConfiguration(), preferred: "urlsession").transport is URLSessionPluginTransport
    )
  }
}

@Suite("HTTPHeaders")
struct HTTPHeadersTests {
  @Test("Lookups ignore case and keep order; setting replaces every field of the name")
  func caseInsensitive() {
    var headers: HTTPHeaders = ["Content-Type": "application/json"]
    headers.add(name: "link", value: "<a>; rel=next")
    headers.add(name: "Link", value: "<b>; rel=last")
    #expect(headers["content-type"] == "application/json")
    #expect(headers["CONTENT-TYPE"] == "application/json")
    #expect(headers.values(for: "LINK") == ["<a>; rel=next", "<b>; rel=last"])
    #expect(headers["Missing"] == nil)
    headers["LINK"] = "<c>"
    #expect(headers.values(for: "link") == ["<c>"])
    headers["content-type"] = nil
    #expect(!headers.contains("Content-Type"))
    #expect(headers.map(\.name) == ["link"])
  }

  @Test("Descriptions never show values")
  func redactedDescription() {
    let headers: HTTPHeaders = ["Authorization": "Bearer SECRET"]
    #expect(!"\(headers)".contains("SECRET"))
  }
}
