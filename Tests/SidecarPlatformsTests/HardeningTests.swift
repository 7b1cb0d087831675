import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience
import SidecarTestSupport
import Testing

@testable import SidecarPlatforms

#if canImport(Glibc)
  import Glibc
#endif

/// Regression cases of issue 22's hostile-input review, one group per finding.
@Suite("Hardening: local files (videoPath)")
struct LocalFileHardeningTests {
  /// A fresh directory under the harness's `media.localRoots`.
  static func directory() throws -> String {
    let directory = TestHarness.temporaryRoot + "/hardening-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
  }

  static func prepare(_ path: String, harness: TestHarness? = nil) throws(InvalidParams) {
    let harness = harness ?? TestHarness(transport: ScriptedTransport(), credentials: [:])
    _ = try YouTubeClient(environment: harness.environment).preparePublish(
      Params(["title": "t", "videoPath": .string(path)]))
  }

  @Test("a videoPath that is a link to a FIFO is refused before any request, without blocking")
  func fifoLink() throws {
    let directory = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    #expect(mkfifo(directory + "/f", 0o600) == 0)
    #expect(symlink(directory + "/f", directory + "/v.mp4") == 0)
    let error = try #require(throws: InvalidParams.self) { try Self.prepare(directory + "/v.mp4") }
    #expect(error.field == "videoPath")
    #expect(error.reason.contains("not a regular file"), "\(error.reason)")
  }

  @Test("a videoPath link uploads the bytes of the file it names, sized from the opened file (not the link)")
  func linkSize() async throws {
    let directory = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let target = directory + "/target-with-a-long-name.mp4"
    let bytes = Data((0..<44).map { UInt8($0) })
    _ = FileManager.default.createFile(atPath: target, contents: bytes)
    #expect(symlink(target, directory + "/l.mp4") == 0)
    let simulator = YouTubeSimulator()
    let harness = TestHarness(
      transport: ScriptedTransport(fallback: simulator.reply),
      credentials: [YouTubeClientTests.key: YouTubeClientTests.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: YouTubeClientTests.chunk)
    _ = try await client.preparePublish(Params(["title": "t", "videoPath": .string(directory + "/l.mp4")]))
      .run(harness.context(YouTubeClientTests.key))
    #expect(harness.transport.requests[0].headers["X-Upload-Content-Length"] == "44")
    #expect(simulator.snapshot.received == bytes)
  }

  @Test(
    "devices, directories, `..`, NUL bytes and files outside media.localRoots are refused with a sentence",
    arguments: [
      ("/dev/zero", "outside"), ("/etc/passwd", "outside"), ("\(TestHarness.temporaryRoot)/../etc/passwd", ".."),
      ("\(TestHarness.temporaryRoot)/x\u{0}.mp4", "NUL"), ("relative.mp4", "absolute"),
    ])
  func refused(path: String, phrase: String) throws {
    let error = try #require(throws: InvalidParams.self) { try Self.prepare(path) }
    #expect(error.field == "videoPath")
    #expect(error.reason.contains(phrase), "\(error.reason)")
  }

  @Test(
    "a character device or a directory under a root is refused as not a regular file", arguments: ["/dev/zero", "/tmp"])
  func device(path: String) throws {
    let policy = MediaPolicy(allowPrivateNetworks: false, localRoots: ["/"])
    let error = try #require(throws: InvalidParams.self) { try policy.localFile(path, field: "videoPath") }
    #expect(error.reason.contains("not a regular file"))
  }

  @Test("with media.localRoots empty (the default) every videoPath is refused, naming the setting")
  func noRoots() throws {
    let directory = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    _ = FileManager.default.createFile(atPath: directory + "/v.mp4", contents: Data([1, 2, 3]))
    let error = try #require(throws: InvalidParams.self) {
      try MediaPolicy(allowPrivateNetworks: false).localFile(directory + "/v.mp4", field: "videoPath")
    }
    #expect(error.reason.contains("media.localRoots"))
  }

  @Test("a link inside a root that points outside it is refused")
  func linkOut() throws {
    let directory = try Self.directory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    #expect(symlink("/etc/passwd", directory + "/v.mp4") == 0)
    let policy = MediaPolicy(allowPrivateNetworks: false, localRoots: [directory])
    let error = try #require(throws: InvalidParams.self) {
      try policy.localFile(directory + "/v.mp4", field: "videoPath")
    }
    #expect(error.reason.contains("outside"))
  }
}

@Suite("Hardening: media downloads")
struct MediaDownloadHardeningTests {
  static let url = URL(string: "https://93.184.216.34/v.mp4")!

  static func fetcher(
    _ transport: ScriptedTransport, policy: MediaPolicy = MediaPolicy(allowPrivateNetworks: false),
    core: ResilienceCore? = nil, directory: String = NSTemporaryDirectory()
  ) -> MediaFetcher {
    let environment = PlatformEnvironment(
      endpoints: PlatformEndpoints(), transport: transport,
      core: core
        ?? ResilienceCore(retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(1), maxDelay: .milliseconds(1))),
      media: policy, logger: .disabled)
    return MediaFetcher(http: environment.http(for: .youtube), policy: policy, directory: directory)
  }

  static func body(_ count: Int) -> ScriptedTransport.Reply {
    .response(HTTPResponse(status: 200, headers: ["Content-Type": "video/mp4"], body: Data(count: count)))
  }

  @Test("a body over the media kind's cap stops with a clear error and leaves nothing on disk")
  func cap() async throws {
    let directory = try LocalFileHardeningTests.directory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let error = try await #require(throws: SidecarError.self) {
      try await Self.fetcher(ScriptedTransport([Self.body(2000)]), directory: directory)
        .fetch(Self.url, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil))
    }
    #expect(error.kind == .permanent)
    #expect(error.message.contains("larger than 1000 bytes"), "\(error.message)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
  }

  @Test("media.maxBytes replaces the documented limit")
  func override() async throws {
    let error = try await #require(throws: SidecarError.self) {
      try await Self.fetcher(
        ScriptedTransport([Self.body(200)]), policy: MediaPolicy(allowPrivateNetworks: false, maxBytes: 100)
      )
      .fetch(Self.url, field: "videoUrl", limit: 1 << 30, context: CallContext(deadline: nil))
    }
    #expect(error.message.contains("larger than 100 bytes"))
  }

  @Test("the download is private (file 0600 in a 0700 directory of its own) and remove() takes both away")
  func privateFile() async throws {
    let media = try await Self.fetcher(ScriptedTransport([Self.body(10)]))
      .fetch(Self.url, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil))
    let directory = media.directory
    #expect(media.path.hasPrefix(directory + "/") && directory.contains("social-sidecar-media-"))
    let dirMode = try #require(try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int)
    let fileMode = try #require(try FileManager.default.attributesOfItem(atPath: media.path)[.posixPermissions] as? Int)
    #expect(dirMode & 0o777 == 0o700 && fileMode & 0o777 == 0o600)
    media.remove()
    #expect(!FileManager.default.fileExists(atPath: directory))
  }

  @Test("the call's deadline bounds each download attempt, not only http.timeoutMs")
  func deadline() async throws {
    let transport = ScriptedTransport([Self.body(10)])
    let clock = SystemClock()
    let media = try await Self.fetcher(transport)
      .fetch(Self.url, field: "videoUrl", limit: 1000, context: CallContext(deadline: clock.now() + .seconds(20)))
    media.remove()
    let timeout = try #require(transport.requests.first?.timeout)
    #expect(timeout <= .seconds(20), "http.timeoutMs is 30 s here: the deadline must cut it")
  }

  @Test("a media host's failures open neither the platform's breaker nor one another caller shares")
  func breakers() async throws {
    let core = ResilienceCore(
      retry: RetryPolicy(maxAttempts: 1, baseDelay: .milliseconds(1), maxDelay: .milliseconds(1)),
      breaker: BreakerConfiguration(failureThreshold: 1))
    let refused = ScriptedTransport.Reply.failure(
      TransportError(.connectFailed, requestSent: false, message: "refused"))
    let transport = ScriptedTransport([refused, refused, refused, Self.body(10)])
    let fetcher = Self.fetcher(transport, core: core)
    for _ in 0..<3 {
      await #expect(throws: SidecarError.self) {
        try await fetcher.fetch(Self.url, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil))
      }
    }
    // Another customer's upload from a healthy host is fetched, not refused with circuit_open.
    let media = try await fetcher.fetch(
      URL(string: "https://93.184.216.35/ok.mp4")!, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil))
    media.remove()
    #expect(core.breakerStatus(platform: "youtube").state == .closed)
    #expect(core.breakerStatus().values.allSatisfy { $0.state == .closed })
  }

  @Test("the addresses checked for a name are the ones the connection is pinned to; a literal address needs none")
  func pinning() async throws {
    let transport = ScriptedTransport([Self.body(10), Self.body(10)])
    let plain = Self.fetcher(transport)
    let fetcher = MediaFetcher(
      http: plain.http, policy: plain.policy, directory: plain.directory,
      resolve: { _ in [AddressCheck.literal("93.184.216.34")!, AddressCheck.literal("2606:2800:220:1::1")!] })
    try await fetcher.fetch(
      URL(string: "https://cdn.example/v.mp4")!, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil)
    ).remove()
    try await fetcher.fetch(Self.url, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil)).remove()
    #expect(transport.requests.map(\.pinnedAddresses) == [["93.184.216.34", "2606:2800:220:1::1"], []])
  }

  @Test("a name that resolves to any private address is refused before any request")
  func rebinding() async throws {
    let transport = ScriptedTransport([Self.body(10)])
    let plain = Self.fetcher(transport)
    let fetcher = MediaFetcher(
      http: plain.http, policy: plain.policy, directory: plain.directory,
      resolve: { _ in [AddressCheck.literal("93.184.216.34")!, AddressCheck.literal("10.0.0.7")!] })
    let error = try await #require(throws: SidecarError.self) {
      try await fetcher.fetch(
        URL(string: "https://cdn.example/v.mp4")!, field: "videoUrl", limit: 1000, context: CallContext(deadline: nil))
    }
    #expect(error.message.contains("10.0.0.7"))
    #expect(transport.requests.isEmpty)
  }

  @Test(
    "IPv4-compatible, IPv4-translated and 6to4 forms of private addresses are refused",
    arguments: [
      "https://[::127.0.0.1]/v.mp4", "https://[::ffff:0:7f00:1]/v.mp4", "https://[::ffff:0:a00:1]/v.mp4",
      "https://[::10.0.0.1]/v.mp4", "https://[2002:7f00:1::1]/v.mp4", "https://[::a9fe:a9fe]/latest",
    ])
  func ipv6Forms(_ url: String) {
    #expect(throws: InvalidParams.self) {
      try MediaPolicy(allowPrivateNetworks: false).sidecarFetchedURL(url, field: "videoUrl")
    }
  }

  @Test("the same forms around a public address pass")
  func ipv6Public() {
    for text in ["::ffff:0:808:808", "2002:5db8:d822::1", "::8.8.8.8"] {
      #expect(AddressCheck.literal(text)?.isPublic == true, "\(text)")
    }
  }
}

@Suite("Hardening: local failures, paths, credentials")
struct LocalFailureHardeningTests {
  @Test("a request that cannot be built here (a CR/LF in a token) is permanent: not retried, no breaker counts it")
  func localFailure() async throws {
    let core = ResilienceCore(
      retry: RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(1)),
      breaker: BreakerConfiguration(failureThreshold: 1))
    let transport = ScriptedTransport(fallback: { _ in
      .failure(
        TransportError(.invalidRequest, requestSent: false, message: "line break in the value of header Authorization"))
    })
    let http = PlatformHTTP(
      platform: .linkedin, transport: transport, core: core, timeout: .seconds(5), connectTimeout: .seconds(5),
      logger: .disabled)
    let error = try await #require(throws: SidecarError.self) {
      try await http.send(
        HTTPRequest(url: URL(string: "https://api.linkedin.com/rest/posts")!), step: .idempotent,
        context: CallContext(deadline: nil)
      ) { _ in nil }
    }
    #expect(error.kind == .permanent)
    #expect(transport.requests.count == 1)
    #expect(core.breakerStatus(platform: "linkedin").state == .closed)
  }

  @Test("an account id `.` or `..` stays one encoded path segment, never a dot segment")
  func dotSegments() async throws {
    #expect(Encoding.pathSegment("..") == "%2E%2E" && Encoding.pathSegment(".") == "%2E")
    #expect(Encoding.pathSegment("a.b") == "a.b")
    let harness = MetaTest.harness(
      .facebook, [MetaTest.ok(#"{"id":"1_2"}"#)], credential: Credential(accessToken: "tok-dots-0001", accountId: ".."))
    _ = try? await FacebookClient(environment: harness.environment).preparePublish(Params(["text": "Hi"]))
      .run(harness.context(MetaTest.key(.facebook)))
    let url = try #require(harness.transport.requests.first?.url.absoluteString)
    #expect(url.contains("/\(PlatformEndpoints.defaultGraphVersion)/%2E%2E/feed?"), "\(url)")
  }

  @Test("a credential without expiresAt is asked for again after the cache lifetime")
  func cacheLifetime() async throws {
    let clock = ManualClock()
    let key = CredentialKey(platform: .linkedin, credentialRef: "r", customerId: "c")
    let source = FixedCredentials([key: Credential(accessToken: "never-expires", accountId: "a")])
    let store = CredentialStore(source: source, clock: clock, logger: .disabled, cacheLifetime: .seconds(60))
    _ = try await store.credential(key)
    _ = try await store.credential(key)
    #expect(source.resolveCount == 1)
    clock.advance(by: .seconds(61))
    _ = try await store.credential(key)
    #expect(source.resolveCount == 2)
  }

  @Test("the credential cache keeps at most its capacity, pushing out the oldest")
  func cacheCapacity() async throws {
    let keys = (0..<5).map { CredentialKey(platform: .linkedin, credentialRef: "r", customerId: "c\($0)") }
    let source = FixedCredentials(
      Dictionary(uniqueKeysWithValues: keys.map { ($0, Credential(accessToken: "t", accountId: "a")) }))
    let clock = ManualClock()
    let store = CredentialStore(source: source, clock: clock, logger: .disabled, cacheCapacity: 3)
    for key in keys {
      _ = try await store.credential(key)
      clock.advance(by: .milliseconds(1))
    }
    #expect(store.cachedCount == 3)
    _ = try await store.credential(keys[4])
    #expect(source.resolveCount == 5, "the newest stays cached")
    _ = try await store.credential(keys[0])
    #expect(source.resolveCount == 6, "the oldest was pushed out")
  }
}

@Suite("Hardening: one redaction step for every platform's error text")
struct RedactionHardeningTests {
  static let token = "tok-SECRET-4242"
  static let refresh = "refresh-SECRET-4343"
  static let clientSecret = "csecret-4444"

  static func credential(_ accountId: String) -> Credential {
    Credential(
      accessToken: token, refreshToken: refresh, expiresAt: Date().addingTimeInterval(86_400), accountId: accountId,
      clientId: "client-1", clientSecret: clientSecret)
  }

  /// The error an operation ends with when every request is answered `status` with `body` (which echoes secrets).
  static func failure(
    _ platform: Platform, status: Int, body: String, operation: (PlatformEnvironment) -> any PlatformClient,
    refresh: Bool = false
  ) async throws -> (raw: SidecarError, redacted: SidecarError) {
    let key = CredentialKey(platform: platform, credentialRef: "ref", customerId: "cust")
    let transport = ScriptedTransport(fallback: { _ in ScriptedTransport.json(status, body) })
    let accountId = platform == .linkedin ? "urn:li:organization:1" : platform == .youtube ? "UC1" : "111"
    let harness = TestHarness(transport: transport, credentials: [key: credential(accountId)])
    let client = operation(harness.environment)
    let context = harness.context(key)
    let directory = try LocalFileHardeningTests.directory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    _ = FileManager.default.createFile(atPath: directory + "/v.mp4", contents: Data(count: 10))
    do {
      if refresh {
        _ = try await client.refresh(context: context)
      } else {
        let params: [String: JSONValue] = ["title": "t", "text": "Hi", "videoPath": .string(directory + "/v.mp4")]
        let known: [String: JSONValue] = platform == .youtube ? params.filter { $0.key != "text" } : ["text": "Hi"]
        _ = try await client.preparePublish(Params(known)).run(context)
      }
    } catch let error as SidecarError {
      return (error, context.redacted(error))
    }
    throw SidecarError(kind: .permanent, message: "expected a failure")
  }

  static func text(_ error: SidecarError) -> String {
    [
      error.message, error.failure?.message ?? "", error.failure?.platformMessage ?? "",
      "\(error.failure?.platformCode.map { "\($0)" } ?? "")",
    ]
    .joined(separator: " | ")
  }

  static let echo = "token \(token) refresh \(refresh) secret \(clientSecret)"

  @Test(
    "each platform's error shape, echoing every secret, is scrubbed by the one step",
    arguments: [
      (Platform.facebook, 400, #"{"error":{"message":"(#100) \#(echo)","type":"OAuthException","code":100}}"#),
      (Platform.linkedin, 400, #"{"status":400,"serviceErrorCode":100,"code":"BAD","message":"\#(echo)"}"#),
      (
        Platform.youtube, 400,
        #"{"error":{"code":400,"message":"\#(echo)","errors":[{"reason":"badRequest","message":"\#(echo)"}]}}"#
      ),
    ])
  func platformShapes(platform: Platform, status: Int, body: String) async throws {
    let (raw, redacted) = try await Self.failure(platform, status: status, body: body) { environment in
      switch platform {
      case .facebook: FacebookClient(environment: environment)
      case .linkedin: LinkedInClient(environment: environment)
      default: YouTubeClient(environment: environment)
      }
    }
    #expect(Self.text(raw).contains(Self.token), "the case must echo the token to prove anything")
    for secret in [Self.token, Self.refresh, Self.clientSecret] { #expect(!Self.text(redacted).contains(secret)) }
    #expect(redacted.message.contains("[redacted]"))
  }

  @Test("the OAuth token endpoint's error shape is scrubbed too")
  func tokenEndpoint() async throws {
    let body = #"{"error":"invalid_client","error_description":"\#(Self.echo)"}"#
    let (raw, redacted) = try await Self.failure(
      .linkedin, status: 401, body: body, operation: LinkedInClient.init, refresh: true)
    #expect(Self.text(raw).contains(Self.clientSecret))
    for secret in [Self.token, Self.refresh, Self.clientSecret] { #expect(!Self.text(redacted).contains(secret)) }
  }
}
