import Foundation
@testable import SidecarHTTP
import Testing

/// What one new connection costs the transport's loop thread (the thread every request goes through), measured
/// against baselines taken in the same test: a TLS connection verified with a one-certificate CA file, and a
/// plain-HTTP connection. A new TLS connection must not load the CA bundle again: with a bundle the size of the
/// system's, that alone costs tens of milliseconds of CPU per connection.
@Suite("TLS connection cost", .serialized)
struct TLSConnectionCostTests {
  let server = TestServer.shared

  @Test("A new TLS connection costs a few ms of loop CPU at most, whatever the size of the CA bundle")
  func newConnectionCost() async throws {
    let bundle = try systemSizedBundle()
    // Interleaved rounds, the cheapest of each kind: other processes' load only ever adds to a round.
    var oneCertificate = Duration.seconds(1000)
    var systemSized = Duration.seconds(1000)
    var plain = Duration.seconds(1000)
    for _ in 0..<3 {
      oneCertificate = min(oneCertificate, try await loopCPUPerConnection(caBundle: server.caPath, tls: true))
      systemSized = min(systemSized, try await loopCPUPerConnection(caBundle: bundle, tls: true))
      plain = min(plain, try await loopCPUPerConnection(caBundle: nil, tls: false))
    }
    let measured =
      "per new connection: TLS with a system-sized CA bundle \(systemSized.ms), with one CA certificate "
      + "\(oneCertificate.ms), plain HTTP \(plain.ms)"
    // The bundle's size must not show: it is loaded once per transport, not once per connection.
    #expect(systemSized < oneCertificate * 3, "\(measured)")
    // And the handshake itself stays within a few plain connections' worth of work (about 10x here).
    #expect(systemSized < plain * 40, "\(measured)")
  }

  /// The loop thread's CPU per request over `connections` sequential requests, each on a new connection (the server
  /// closes every one), after one request that sets the transport up.
  private func loopCPUPerConnection(caBundle: String?, tls: Bool, connections: Int = 24) async throws -> Duration {
    let transport = try CurlTransport(configuration: HTTPTransportConfiguration(caBundlePath: caBundle))
    let url = tls ? server.tlsURL("/echo?close=1") : server.url("/echo?close=1")
    _ = try await transport.send(HTTPRequest(url: url))
    let before = try #require(transport.engine.loopCPUTime)
    var ports = Set<Int>()
    for _ in 0..<connections {
      let response = try await transport.send(HTTPRequest(url: url))
      ports.insert(try JSONDecoder().decode(Echo.self, from: response.body).clientPort)
    }
    let used = try #require(transport.engine.loopCPUTime) - before
    #expect(ports.count == connections, "every request must have opened its own connection")
    return used / connections
  }

  /// The system's CA bundle with the test CA appended: what a production transport loads, plus trust in our server.
  private func systemSizedBundle() throws -> String {
    let system = "/etc/ssl/certs/ca-certificates.crt"
    let certificates = try #require(FileManager.default.contents(atPath: system), "\(system) is missing")
    let path = temporaryPath("bundle.pem")
    try (certificates + Data("\n".utf8) + (try Data(contentsOf: URL(fileURLWithPath: server.caPath)))).write(
      to: URL(fileURLWithPath: path))
    return path
  }
}

extension Duration {
  fileprivate var ms: String {
    let microseconds = components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    return "\(Double(microseconds) / 1000) ms"
  }
}
