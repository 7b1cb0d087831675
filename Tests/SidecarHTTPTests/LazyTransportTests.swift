import Foundation
@testable import SidecarHTTP
import Synchronization
import Testing

@Suite("LazyTransport and transport loading")
struct LazyTransportTests {
  /// Answers every request with its own path; counts how many were made.
  private final class PathEcho: HTTPTransport {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
      HTTPResponse(status: 200, body: Data(request.url.path.utf8))
    }

    func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
      (HTTPResponse(status: 200), 0)
    }
  }

  @Test("Nothing is built before the first request, so start-up loads no HTTP library")
  func notBuiltUpFront() {
    let builds = Atomic<Int>(0)
    let lazy = LazyTransport {
      builds.add(1, ordering: .relaxed)
      return PathEcho()
    }
    #expect(!lazy.isBuilt)
    #expect(!makeDefaultTransport(HTTPTransportConfiguration()).isBuilt)
    #expect(!makeDefaultTransport(HTTPTransportConfiguration(), preferred: "urlsession").isBuilt)
    #expect(builds.load(ordering: .relaxed) == 0)
  }

  @Test("100 concurrent first requests build the transport once and all get their answer")
  func buildsOnce() async throws {
    let builds = Atomic<Int>(0)
    let lazy = LazyTransport {
      builds.add(1, ordering: .relaxed)
      return PathEcho()
    }
    let paths = try await withThrowingTaskGroup(of: String.self) { group in
      for index in 0..<100 {
        group.addTask {
          let response = try await lazy.send(HTTPRequest(url: URL(string: "http://example.invalid/\(index)")!))
          return String(decoding: response.body, as: UTF8.self)
        }
      }
      return try await group.reduce(into: Set<String>()) { $0.insert($1) }
    }
    #expect(paths == Set((0..<100).map { "/\($0)" }))
    #expect(builds.load(ordering: .relaxed) == 1)
    #expect(lazy.transport is PathEcho)
    #expect(builds.load(ordering: .relaxed) == 1)
  }

  @Test("A missing URLSession plugin fails the request as unavailable, naming where it looked")
  func missingPlugin() async throws {
    let path = "/nonexistent/sidecar-\(UUID().uuidString)/libSidecarURLSession.so"
    let notes = Mutex<[String]>([])
    let lazy = LazyTransport {
      let (transport, note) = buildTransport(HTTPTransportConfiguration(), preferred: "urlsession", pluginPath: path)
      notes.withLock { $0.append(note) }
      return transport
    }
    for _ in 0..<2 {
      let error = try await #require(throws: TransportError.self) {
        try await lazy.send(HTTPRequest(method: "POST", url: URL(string: "https://graph.facebook.com/v23.0/me/feed")!))
      }
      #expect(error.kind == .unavailable)
      #expect(!error.requestSent)
      #expect(error.message.contains(path))
      #expect(error.message.contains("SOCIAL_SIDECAR_URLSESSION_PLUGIN"))
    }
    #expect(notes.withLock { $0.count } == 1)
    #expect(notes.withLock { $0.first?.contains(path) } == true)
  }

  @Test("A file that is not the plugin is refused as unavailable")
  func notAPlugin() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "sidecar-not-a-plugin-\(UUID().uuidString).so"
    ).path
    try Data("not a shared library".utf8).write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let error = try #require(throws: TransportError.self) {
      try URLSessionPluginTransport(configuration: HTTPTransportConfiguration(), pluginPath: path)
    }
    #expect(error.kind == .unavailable)
    #expect(error.message.contains(path))
  }

  @Test("With libcurl available, a missing plugin does not matter")
  func curlNeedsNoPlugin() {
    let (transport, note) = buildTransport(
      HTTPTransportConfiguration(), preferred: "curl", pluginPath: "/nonexistent/libSidecarURLSession.so")
    #expect(transport is CurlTransport)
    #expect(note.hasPrefix("libcurl"))
  }

  @Test("The plugin is looked for at SOCIAL_SIDECAR_URLSESSION_PLUGIN, else beside the executable")
  func pluginLocation() {
    let name = URLSessionPlugin.fileName
    #expect(
      URLSessionPlugin.defaultPath(environment: "/opt/x/plugin.so", executable: "/usr/bin/social-sidecar")
        == "/opt/x/plugin.so")
    #expect(
      URLSessionPlugin.defaultPath(environment: nil, executable: "/usr/lib/sidecar/social-sidecar")
        == "/usr/lib/sidecar/\(name)")
    #expect(URLSessionPlugin.defaultPath(environment: "", executable: "/srv/social-sidecar") == "/srv/\(name)")
    #expect(URLSessionPlugin.executablePath().map { FileManager.default.isExecutableFile(atPath: $0) } == true)
  }

  #if os(Linux)
    @Test("The social-sidecar executable does not link FoundationNetworking or libcurl")
    func executableLinksNoNetworkingLibraries() throws {
      let directory = try #require(URLSessionPlugin.executablePath().map { ($0 as NSString).deletingLastPathComponent })
      let binary = directory + "/social-sidecar"
      try #require(
        FileManager.default.isExecutableFile(atPath: binary),
        "\(binary) is missing: build it with `swift build --build-tests`")
      let ldd = Process()
      ldd.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      ldd.arguments = ["ldd", binary]
      let output = Pipe()
      ldd.standardOutput = output
      try ldd.run()
      let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      ldd.waitUntilExit()
      #expect(ldd.terminationStatus == 0)
      #expect(text.contains("libswiftCore"))  // the listing is real
      #expect(!text.contains("libcurl"))
      #expect(!text.contains("FoundationNetworking"))
    }
  #endif
}
