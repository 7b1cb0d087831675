import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport
import Synchronization
import Testing

@Suite("OAuth2 refresh-token grant")
struct OAuthRefresherTests {
  static let key = CredentialKey(platform: .youtube, credentialRef: "yt-ref", customerId: "cust-1")

  static func stale(_ clock: any SidecarClock, expiresIn: TimeInterval = 60) -> Credential {
    Credential(
      accessToken: "ya29.old-access", refreshToken: "1//refresh-secret",
      expiresAt: clock.wallNow().addingTimeInterval(expiresIn),
      accountId: "UCchannel0001", clientId: "client-id.apps", clientSecret: "client-secret-xyz")
  }

  func refresher(_ harness: TestHarness, url: String = "https://oauth2.googleapis.com/token") -> OAuth2Refresher {
    OAuth2Refresher(
      platform: .youtube, tokenURL: url, http: harness.environment.http(for: .youtube), clock: harness.environment.clock
    )
  }

  @Test("sends the refresh-token grant as a form and reads the new token and its expiry")
  func exactRequest() async throws {
    let clock = ManualClock(wallNow: Date(timeIntervalSince1970: 1_750_000_000))
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        200, #"{"access_token":"ya29.new-access","expires_in":3599,"scope":"s","token_type":"Bearer"}"#)
    ])
    let harness = TestHarness(transport: transport, credentials: [:], clock: clock)
    let fresh = try await refresher(harness).refresh(Self.stale(clock), deadline: nil)

    let request = try #require(transport.requests.first)
    #expect(request.method == "POST")
    #expect(request.url.absoluteString == "https://oauth2.googleapis.com/token")
    #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
    #expect(
      String(decoding: request.body, as: UTF8.self)
        == "grant_type=refresh_token&refresh_token=1%2F%2Frefresh-secret"
        + "&client_id=client-id.apps&client_secret=client-secret-xyz")
    #expect(fresh.accessToken == "ya29.new-access")
    #expect(fresh.expiresAt == Date(timeIntervalSince1970: 1_750_003_599))
    #expect(fresh.refreshToken == "1//refresh-secret")
    #expect(fresh.accountId == "UCchannel0001")
  }

  @Test("a rotated refresh token replaces the old one")
  func rotation() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(200, #"{"access_token":"AQV-new","expires_in":5183999,"refresh_token":"AQX-rotated"}"#)
    ])
    let harness = TestHarness(transport: transport, credentials: [:])
    let fresh = try await refresher(harness).refresh(Self.stale(harness.environment.clock), deadline: nil)
    #expect(fresh.refreshToken == "AQX-rotated")
  }

  @Test("invalid_grant ends in auth_failed saying the account must be reconnected, without a secret")
  func invalidGrant() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        400, #"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#)
    ])
    let harness = TestHarness(transport: transport, credentials: [:])
    let stale = Self.stale(harness.environment.clock)
    let error = try await #require(throws: SidecarError.self) {
      try await refresher(harness).refresh(stale, deadline: nil)
    }
    #expect(error.kind == .authFailed)
    #expect(error.message.contains("reconnected"))
    #expect(error.failure?.classification == .auth(refreshable: false))
    #expect(transport.requests.count == 1)
    for secret in stale.secrets { #expect(!"\(error) \(error.failure.map { "\($0)" } ?? "")".contains(secret)) }
  }

  @Test("LinkedIn's invalid_request for a dead refresh token also asks for a reconnect")
  func linkedInDeadRefreshToken() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        400,
        #"{"error":"invalid_request","#
          + #""error_description":"The provided authorization grant or refresh token is invalid, expired or revoked"}"#
      )
    ])
    let harness = TestHarness(transport: transport, credentials: [:])
    let error = try await #require(throws: SidecarError.self) {
      try await refresher(harness, url: "https://www.linkedin.com/oauth/v2/accessToken")
        .refresh(Self.stale(harness.environment.clock), deadline: nil)
    }
    #expect(error.kind == .authFailed)
    #expect(error.message.contains("reconnected"))
  }

  @Test("a wrong client secret is a configuration error, not a reconnect")
  func invalidClient() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(401, #"{"error":"invalid_client","error_description":"Unauthorized"}"#)
    ])
    let harness = TestHarness(transport: transport, credentials: [:])
    let error = try await #require(throws: SidecarError.self) {
      try await refresher(harness).refresh(Self.stale(harness.environment.clock), deadline: nil)
    }
    #expect(error.kind == .permanent)
    #expect(error.message.contains("clientSecret"))
  }

  @Test("a 5xx from the token endpoint is retried (a refresh is idempotent)")
  func transientRetried() async throws {
    let transport = ScriptedTransport([
      .response(HTTPResponse(status: 503)),
      ScriptedTransport.json(200, #"{"access_token":"ya29.new","expires_in":3599}"#),
    ])
    let harness = TestHarness(transport: transport, credentials: [:])
    let fresh = try await refresher(harness).refresh(Self.stale(harness.environment.clock), deadline: nil)
    #expect(fresh.accessToken == "ya29.new")
    #expect(transport.requests.count == 2)
  }

  @Test("without a refresh token nothing is sent and the error asks for a reconnect")
  func noRefreshToken() async throws {
    let transport = ScriptedTransport()
    let harness = TestHarness(transport: transport, credentials: [:])
    var credential = Self.stale(harness.environment.clock)
    credential.refreshToken = nil
    let error = try await #require(throws: SidecarError.self) {
      try await refresher(harness).refresh(credential, deadline: nil)
    }
    #expect(error.kind == .authFailed)
    #expect(error.message.contains("reconnected"))
    #expect(transport.requests.isEmpty)
  }

  @Test("youtube/refresh hands the new token to the parent once and keeps the refresh token")
  func refreshOnDemand() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(200, #"{"access_token":"ya29.on-demand","expires_in":3599}"#)
    ])
    let clock = SystemClock()
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.stale(clock, expiresIn: 3000)])
    let client = YouTubeClient(environment: harness.environment)
    let result = try await client.refresh(context: harness.context(Self.key))
    #expect(result.refreshed)
    await harness.store.flushUpdates(timeout: .seconds(5))
    let updates = harness.credentials.updates
    #expect(updates.count == 1)
    #expect(updates.first?.1.accessToken == "ya29.on-demand")
    #expect(updates.first?.1.refreshToken == "1//refresh-secret")
    #expect(result.expiresAt == updates.first?.1.expiresAt)
  }

  @Test("refresh without a refresh token says it is unsupported for this credential")
  func refreshUnsupported() async throws {
    var credential = Self.stale(SystemClock())
    credential.refreshToken = nil
    let harness = TestHarness(transport: ScriptedTransport(), credentials: [Self.key: credential])
    let error = try await #require(throws: SidecarError.self) {
      try await YouTubeClient(environment: harness.environment).refresh(context: harness.context(Self.key))
    }
    #expect(error.kind == .unsupported)
    #expect(harness.transport.requests.isEmpty)
  }
}

// MARK: - Support shared by the YouTube and LinkedIn tests

extension TestHarness {
  /// The harness's environment with media fetching allowed on any host (test media hosts do not resolve).
  var permissiveEnvironment: PlatformEnvironment {
    PlatformEnvironment(
      endpoints: environment.endpoints, transport: transport, core: environment.core,
      media: MediaPolicy(allowPrivateNetworks: true), logger: environment.logger)
  }
}

/// A transport that holds token-endpoint requests until released, so that concurrent calls pile up on one refresh.
final class HoldingTransport: HTTPTransport {
  let inner: ScriptedTransport
  let heldPath: String
  private let state = Mutex<(released: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

  init(_ inner: ScriptedTransport, holding path: String) {
    self.inner = inner
    heldPath = path
  }

  func release() {
    let waiting = state.withLock { state in
      state.released = true
      defer { state.waiting.removeAll() }
      return state.waiting
    }
    for continuation in waiting { continuation.resume() }
  }

  func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    if request.url.path == heldPath {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let go = state.withLock { state in
          if !state.released { state.waiting.append(continuation) }
          return state.released
        }
        if go { continuation.resume() }
      }
    }
    return try await inner.send(request)
  }

  func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    try await inner.download(request, to: path, maxBytes: maxBytes)
  }
}
