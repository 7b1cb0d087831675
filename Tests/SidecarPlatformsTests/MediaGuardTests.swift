import Foundation
import SidecarHTTP
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport
import Testing

@Suite("SSRF guard for media the sidecar fetches itself")
struct MediaGuardTests {
  let strict = MediaPolicy(allowPrivateNetworks: false)

  @Test(
    "Loopback, private, link-local, metadata and non-https URLs are refused before any request",
    arguments: [
      "http://cdn.example.com/v.mp4", "https://127.0.0.1/v.mp4", "https://localhost/v.mp4",
      "https://10.1.2.3/v.mp4", "https://172.20.0.1/v.mp4", "https://192.168.1.1/v.mp4",
      "https://169.254.169.254/latest/meta-data", "https://[::1]/v.mp4", "https://[fd00:ec2::254]/x",
      "https://[::ffff:127.0.0.1]/v.mp4", "https://100.64.0.1/v.mp4", "https://0.0.0.0/v.mp4",
      "https://metadata.google.internal/computeMetadata/v1/", "ftp://example.com/v.mp4", "not a url",
    ])
  func refusesDirect(_ url: String) {
    #expect(throws: InvalidParams.self) { try strict.sidecarFetchedURL(url, field: "videoUrl") }
  }

  @Test("Public https URLs pass, and tests may allow loopback http explicitly")
  func allows() throws {
    _ = try strict.sidecarFetchedURL("https://93.184.216.34/v.mp4", field: "videoUrl")
    _ = try strict.sidecarFetchedURL("https://cdn.example.com/v.mp4", field: "videoUrl")
    _ = try MediaPolicy(allowPrivateNetworks: true).sidecarFetchedURL("http://127.0.0.1:8080/v.mp4", field: "videoUrl")
  }

  @Test("Address classification covers the IPv4 and IPv6 special ranges")
  func addresses() {
    for text in ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"] {
      #expect(AddressCheck.literal(text)?.isPublic == true, "\(text)")
    }
    for text in [
      "127.0.0.1", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.1.1", "100.127.0.1", "224.0.0.1",
      "::1", "::", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "2001:db8::1",
    ] {
      #expect(AddressCheck.literal(text)?.isPublic == false, "\(text)")
    }
  }

  private func fetcher(_ transport: ScriptedTransport, policy: MediaPolicy) -> MediaFetcher {
    let environment = PlatformEnvironment(
      endpoints: PlatformEndpoints(), transport: transport,
      core: ResilienceCore(retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(1), maxDelay: .milliseconds(1))),
      media: policy, logger: .disabled)
    return environment.fetcher(for: .youtube)
  }

  @Test(
    "A redirect to a private, loopback or metadata address is refused on that hop, without requesting it",
    arguments: [
      "http://169.254.169.254/latest/meta-data/iam", "https://10.0.0.5/internal", "https://127.0.0.1:9000/admin",
      "http://93.184.216.35/plain-http",
    ])
  func refusesRedirect(_ location: String) async {
    let transport = ScriptedTransport([.response(HTTPResponse(status: 302, headers: ["Location": location]))])
    let media = fetcher(transport, policy: strict)
    await #expect(throws: SidecarError.self) {
      _ = try await media.fetch(
        URL(string: "https://93.184.216.34/v.mp4")!, field: "videoUrl", limit: 1 << 20,
        context: CallContext(deadline: nil))
    }
    #expect(transport.requests.count == 1, "only the first hop may be requested")
  }

  @Test("With allowPrivateNetworks the same redirect is followed and the media fetched")
  func followsWhenAllowed() async throws {
    let transport = ScriptedTransport([
      .response(HTTPResponse(status: 302, headers: ["Location": "http://127.0.0.1:9/v.mp4"])),
      .response(HTTPResponse(status: 200, headers: ["Content-Type": "video/mp4"], body: Data([1, 2, 3]))),
    ])
    let media = fetcher(transport, policy: MediaPolicy(allowPrivateNetworks: true))
    let fetched = try await media.fetch(
      URL(string: "http://127.0.0.1:8/v.mp4")!, field: "videoUrl", limit: 1 << 20, context: CallContext(deadline: nil))
    defer { fetched.remove() }
    #expect(fetched.byteCount == 3 && fetched.contentType == "video/mp4")
    #expect(transport.requests.map(\.url.absoluteString) == ["http://127.0.0.1:8/v.mp4", "http://127.0.0.1:9/v.mp4"])
  }
}
