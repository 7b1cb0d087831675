import Foundation
import Testing

@testable import SidecarHTTP

#if canImport(Glibc)
  import Glibc
#endif

/// How the transports open the files they stream (issue 22: a FIFO held a thread forever; a planted link was written
/// through; a checked name was resolved again by libcurl).
@Suite("HTTP transports: body files and pinned addresses", .serialized)
struct BodyFileTests {
  let server = TestServer.shared

  private func scratch() throws -> String {
    let directory = NSTemporaryDirectory() + "sidecar-body-files-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
  }

  @Test(
    "A FIFO, or a link to one, as an upload body is refused at once rather than waited on",
    arguments: TransportKind.allCases)
  func fifoBody(kind: TransportKind) async throws {
    let directory = try scratch()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let fifo = directory + "/f"
    #expect(mkfifo(fifo, 0o600) == 0)
    #expect(symlink(fifo, directory + "/v.mp4") == 0)
    // Should a transport block in open(2), this writer frees it after 3 s, and the elapsed time below tells.
    let unblocker = Task.detached {
      try? await Task.sleep(for: .seconds(3))
      let fd = open(fifo, O_WRONLY | O_NONBLOCK)
      if fd >= 0 { close(fd) }
    }
    defer { unblocker.cancel() }
    let transport = try kind.make()
    for path in [fifo, directory + "/v.mp4"] {
      let started = ContinuousClock.now
      let error = try await #require(throws: TransportError.self) {
        try await transport.send(
          HTTPRequest(method: "PUT", url: server.url("/upload"), body: .file(path: path, offset: 0, length: 10)))
      }
      #expect(error.kind == .invalidRequest && !error.requestSent)
      #expect(ContinuousClock.now - started < .seconds(2), "\(path) must be refused without blocking")
    }
  }

  @Test(
    "A download is created for its owner only, and never written through a link planted at its path",
    arguments: TransportKind.allCases)
  func downloadFile(kind: TransportKind) async throws {
    let directory = try scratch()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let transport = try kind.make()
    let path = directory + "/media"
    _ = try await transport.download(HTTPRequest(url: server.url("/bytes?n=1000")), to: path, maxBytes: 10_000)
    let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    #expect(mode & 0o777 == 0o600)
    try FileManager.default.removeItem(atPath: path)

    let victim = directory + "/victim.txt"
    try "keep me".write(toFile: victim, atomically: true, encoding: .utf8)
    #expect(symlink(victim, path) == 0)
    await #expect(throws: TransportError.self) {
      _ = try await transport.download(HTTPRequest(url: server.url("/bytes?n=1000")), to: path, maxBytes: 10_000)
    }
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me")
  }

  @Test("curl connects to the pinned address rather than resolving the name again")
  func pinnedCurl() async throws {
    let transport = try TransportKind.curl.make()
    var request = HTTPRequest(url: URL(string: "http://media.pinned.invalid:\(server.port)/echo")!)
    request.pinnedAddresses = ["127.0.0.1"]
    let response = try await transport.send(request)
    #expect(response.status == 200)
  }

  @Test("URLSession cannot pin addresses, so it refuses a pinned request instead of resolving the name itself")
  func pinnedURLSession() async throws {
    let transport = try TransportKind.urlsession.make()
    var request = HTTPRequest(url: server.url("/echo"))
    request.pinnedAddresses = ["127.0.0.1"]
    let error = try await #require(throws: TransportError.self) { try await transport.send(request) }
    #expect(error.kind == .invalidRequest && !error.requestSent)
  }
}
