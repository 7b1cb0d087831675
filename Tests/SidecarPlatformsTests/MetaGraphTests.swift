import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience
import SidecarTestSupport
import Testing

@testable import SidecarPlatforms

/// Credentials and request helpers shared by the Meta suites.
enum MetaTest {
  static let pageToken = "fb-page-token-SECRET-0001"
  static let igToken = "ig-token-SECRET-0002"
  static let waToken = "wa-system-token-SECRET-0003"

  static func key(_ platform: Platform) -> CredentialKey {
    CredentialKey(platform: platform, credentialRef: "cred-\(platform)", customerId: "cust-1")
  }

  static func credential(_ platform: Platform) -> Credential {
    switch platform {
    case .facebook: Credential(accessToken: pageToken, accountId: "111")
    case .instagram: Credential(accessToken: igToken, accountId: "178414")
    default: Credential(accessToken: waToken, accountId: "30001")
    }
  }

  static func harness(
    _ platform: Platform, _ replies: [ScriptedTransport.Reply], credential: Credential? = nil,
    clock: any SidecarClock = SystemClock()
  ) -> TestHarness {
    TestHarness(
      transport: ScriptedTransport(replies), credentials: [key(platform): credential ?? self.credential(platform)],
      clock: clock)
  }

  static func ok(_ body: String, headers: HTTPHeaders = [:]) -> ScriptedTransport.Reply {
    ScriptedTransport.json(200, body, headers: headers)
  }

  /// A Graph error body as Meta sends it (docs/platforms/meta.md).
  static func error(
    _ code: Int, subcode: Int? = nil, message: String? = nil, status: Int = 400, transient: Bool? = nil,
    headers: HTTPHeaders = [:]
  ) -> ScriptedTransport.Reply {
    var error: [String: JSONValue] = [
      "message": .string(message ?? "(#\(code)) Error"), "type": "OAuthException", "code": .int(code),
      "fbtrace_id": "AbC",
    ]
    if let subcode { error["error_subcode"] = .int(subcode) }
    if let transient { error["is_transient"] = .bool(transient) }
    return ScriptedTransport.json(status, JSONValue.object(["error": .object(error)]).jsonString, headers: headers)
  }

  /// A failure after the request left: the response was lost.
  static let lostResponse = ScriptedTransport.Reply.failure(
    TransportError(.timedOut, requestSent: true, message: "timed out waiting for the response"))

  static func run<T>(_ body: () async throws(SidecarError) -> T) async -> Result<T, SidecarError> {
    do {
      return .success(try await body())
    } catch {
      return .failure(error)
    }
  }
}

extension ScriptedTransport.Recorded {
  var path: String { url.path }

  var query: [String: String] { MetaTest.decodeForm(url.query ?? "") }

  /// The `application/x-www-form-urlencoded` body as a dictionary.
  var form: [String: String] { MetaTest.decodeForm(String(decoding: body, as: UTF8.self)) }

  var summary: String { "\(method) \(path)" }
}

extension MetaTest {
  static func decodeForm(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for pair in text.split(separator: "&") {
      let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
      result[parts[0]] = parts.count > 1 ? parts[1] : ""
    }
    return result
  }
}

extension Result {
  var error: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
}

@Suite("Graph API error mapping")
struct MetaGraphErrorMappingTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var code: Int
    var subcode: Int?
    var status: Int
    var transient: Bool
    var platform: Platform
    var expected: PlatformFailure.Classification
    var testDescription: String { "code \(code)/\(subcode.map(String.init) ?? "-") on \(platform)" }
  }

  static let cases: [Case] = [
    Case(
      code: 190, subcode: 463, status: 400, transient: false, platform: .facebook, expected: .auth(refreshable: false)),
    Case(
      code: 190, subcode: 460, status: 400, transient: false, platform: .instagram,
      expected: .auth(refreshable: false)),
    Case(
      code: 190, subcode: 467, status: 401, transient: false, platform: .whatsapp, expected: .auth(refreshable: false)),
    Case(
      code: 190, subcode: nil, status: 400, transient: false, platform: .facebook, expected: .auth(refreshable: false)),
    Case(
      code: 102, subcode: nil, status: 400, transient: false, platform: .facebook, expected: .auth(refreshable: false)),
    Case(code: 10, subcode: nil, status: 403, transient: false, platform: .instagram, expected: .permanent),
    Case(code: 200, subcode: nil, status: 403, transient: false, platform: .facebook, expected: .permanent),
    Case(code: 299, subcode: nil, status: 403, transient: false, platform: .facebook, expected: .permanent),
    Case(code: 100, subcode: 33, status: 400, transient: false, platform: .facebook, expected: .permanent),
    Case(code: 1, subcode: nil, status: 500, transient: false, platform: .facebook, expected: .transient),
    Case(code: 2, subcode: nil, status: 503, transient: false, platform: .whatsapp, expected: .transient),
    Case(code: 12345, subcode: nil, status: 400, transient: true, platform: .instagram, expected: .transient),
    Case(code: 4, subcode: nil, status: 400, transient: true, platform: .facebook, expected: .rateLimited(scope: .app)),
    Case(
      code: 17, subcode: nil, status: 400, transient: true, platform: .facebook, expected: .rateLimited(scope: .account)
    ),
    Case(
      code: 32, subcode: nil, status: 400, transient: true, platform: .facebook, expected: .rateLimited(scope: .account)
    ),
    Case(
      code: 613, subcode: nil, status: 400, transient: false, platform: .facebook,
      expected: .rateLimited(scope: .account)),
    Case(
      code: 80001, subcode: nil, status: 400, transient: true, platform: .facebook,
      expected: .rateLimited(scope: .account)),
    Case(
      code: 80002, subcode: nil, status: 400, transient: true, platform: .instagram,
      expected: .rateLimited(scope: .account)),
    Case(
      code: 80014, subcode: nil, status: 400, transient: true, platform: .facebook,
      expected: .rateLimited(scope: .account)),
    Case(
      code: 130429, subcode: nil, status: 429, transient: true, platform: .whatsapp,
      expected: .rateLimited(scope: .account)),
    Case(
      code: 131056, subcode: nil, status: 429, transient: true, platform: .whatsapp,
      expected: .rateLimited(scope: .account)),
    Case(code: 368, subcode: 1_390_008, status: 400, transient: false, platform: .facebook, expected: .permanent),
    Case(code: 506, subcode: nil, status: 400, transient: false, platform: .facebook, expected: .permanent),
    Case(code: 131047, subcode: nil, status: 400, transient: false, platform: .whatsapp, expected: .permanent),
    Case(code: 131026, subcode: nil, status: 400, transient: false, platform: .whatsapp, expected: .permanent),
    Case(code: 131051, subcode: nil, status: 400, transient: false, platform: .whatsapp, expected: .permanent),
    Case(code: 9, subcode: 2_207_042, status: 400, transient: false, platform: .instagram, expected: .quotaExhausted),
    Case(code: 9007, subcode: 2_207_027, status: 400, transient: false, platform: .instagram, expected: .transient),
    Case(code: 9004, subcode: 2_207_052, status: 400, transient: false, platform: .instagram, expected: .permanent),
    Case(
      code: 25, subcode: 2_207_050, status: 400, transient: false, platform: .instagram,
      expected: .auth(refreshable: false)),
  ]

  @Test("code and subcode decide the class, never the HTTP status alone", arguments: cases)
  func classification(_ item: Case) {
    let error = GraphError(
      message: "(#\(item.code)) message", code: item.code, subcode: item.subcode, isTransient: item.transient)
    let failure = GraphAPI.failure(for: error, status: item.status, platform: item.platform)
    #expect(failure.classification == item.expected)
    #expect(failure.platformCode == .int(item.code))
    #expect(failure.platformSubcode == item.subcode)
    #expect(failure.httpStatus == item.status)
  }

  @Test("a dead token tells the user to reconnect the account")
  func reconnectMessage() {
    let error = GraphError(
      message: "Error validating access token: Session has expired on Tuesday.", code: 190, subcode: 463)
    let failure = GraphAPI.failure(for: error, status: 400, platform: .facebook)
    #expect(failure.message.contains("expired"))
    #expect(failure.message.contains("Reconnect the Facebook account"))
  }

  @Test("a permission error names the missing permission")
  func permissionNamed() {
    let error = GraphError(
      message: "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts", code: 200)
    let failure = GraphAPI.failure(for: error, status: 403, platform: .facebook)
    #expect(failure.message.contains("Missing permission: pages_read_engagement, pages_manage_posts"))
  }

  @Test("a duplicate post and the 24-hour window get sentences a person understands")
  func explainedPermanents() {
    let duplicate = GraphAPI.failure(
      for: GraphError(message: "(#506) Duplicate status message", code: 506), status: 400,
      platform: .facebook)
    #expect(duplicate.message.contains("duplicate"))
    let window = GraphAPI.failure(
      for: GraphError(message: "(#131047) Re-engagement message", code: 131047), status: 400,
      platform: .whatsapp)
    #expect(window.message.contains("24 hours"))
    #expect(window.message.contains("template"))
  }

  @Test("an unknown error or an outage may have reached Meta (reconciled, not re-sent); a not-ready container did not")
  func reachedPlatform() {
    let unknown = GraphAPI.failure(
      for: GraphError(message: "An unknown error occurred", code: 1), status: 500, platform: .facebook)
    #expect(unknown.requestMayHaveReachedPlatform)
    let down = GraphAPI.failure(
      for: GraphError(message: "Service temporarily unavailable", code: 2), status: 500, platform: .facebook)
    #expect(down.requestMayHaveReachedPlatform)
    let notReady = GraphAPI.failure(
      for: GraphError(message: "Media ID is not available", code: 9007, subcode: 2_207_027), status: 400,
      platform: .instagram)
    #expect(!notReady.requestMayHaveReachedPlatform)
  }

  @Test("WhatsApp error_data.details and Instagram user messages reach the message")
  func platformWords() throws {
    let body =
      #"{"error":{"message":"(#131009) Parameter value is not valid","type":"OAuthException","code":131009,"#
      + #""error_data":{"messaging_product":"whatsapp","details":"Invalid value for parameter 'to'"},"#
      + #""fbtrace_id":"x"}}"#
    let error = try #require(GraphError(body: Data(body.utf8)))
    #expect(error.details == "Invalid value for parameter 'to'")
    let failure = GraphAPI.failure(for: error, status: 400, platform: .whatsapp)
    #expect(failure.message.contains("Invalid value for parameter 'to'"))
  }
}

@Suite("Graph API requests, gates and secrets")
struct MetaGraphRequestTests {
  @Test("URLs carry the configured version; the token travels only in the Authorization header")
  func urlAndBearer() async throws {
    let harness = MetaTest.harness(.whatsapp, [MetaTest.ok(#"{"id":"30001","verified_name":"Acme"}"#)])
    let graph = GraphAPI(environment: harness.environment, platform: .whatsapp)
    _ = try await graph.send(
      .get("/30001", fields: "verified_name"), token: GraphToken(value: MetaTest.waToken, appSecret: nil),
      accountId: "30001", context: CallContext(deadline: nil))
    let request = try #require(harness.transport.requests.first)
    #expect(request.url.absoluteString == "https://graph.facebook.com/v26.0/30001?fields=verified_name")
    #expect(request.headers["Authorization"] == "Bearer \(MetaTest.waToken)")
    #expect(!request.url.absoluteString.contains(MetaTest.waToken))
  }

  @Test("another base URL and version come from the endpoints")
  func configuredEndpoints() {
    var endpoints = PlatformEndpoints()
    endpoints.graphBaseURL[.facebook] = "http://127.0.0.1:9999/"
    endpoints.graphVersion[.facebook] = "v99.0"
    let harness = MetaTest.harness(.facebook, [])
    let environment = PlatformEnvironment(
      endpoints: endpoints, transport: harness.transport, core: harness.environment.core,
      media: harness.environment.media, logger: harness.environment.logger)
    let graph = GraphAPI(environment: environment, platform: .facebook)
    #expect(graph.url(GraphAPI.path("123", "feed")).absoluteString == "http://127.0.0.1:9999/v99.0/123/feed")
  }

  @Test("code 4 with X-App-Usage at 100% ends rate_limited and blocks the app: the next call sends nothing")
  func appUsageBlocksApp() async throws {
    let usage: HTTPHeaders = ["X-App-Usage": #"{"call_count":100,"total_time":20,"total_cputime":12}"#]
    let harness = MetaTest.harness(
      .facebook, [MetaTest.error(4, message: "(#4) Application request limit reached", headers: usage)],
      clock: ManualClock())
    let client = FacebookClient(environment: harness.environment)
    let first = await MetaTest.run { () throws(SidecarError) in
      try await client.validate(context: harness.context(MetaTest.key(.facebook), deadline: .seconds(5)))
    }
    #expect(first.error?.kind == .rateLimited)
    #expect(first.error?.retryAfter == .seconds(60))
    #expect(harness.transport.requests.count == 1)

    let operation = try client.preparePublish(Params(["text": "Hello"]))
    let second = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(MetaTest.key(.facebook), deadline: .seconds(5)))
    }
    #expect(second.error?.kind == .rateLimited)
    #expect(second.error?.attempts == 0)
    #expect(harness.transport.requests.count == 1)
  }

  @Test("a successful answer at 100% business use case usage blocks that account for the estimated regain")
  func businessUsageBlocksAccount() async throws {
    let usage: HTTPHeaders = [
      "X-Business-Use-Case-Usage":
        #"{"111":[{"type":"pages","call_count":100,"total_cputime":10,"#
        + #""total_time":10,"estimated_time_to_regain_access":7}]}"#
    ]
    let harness = MetaTest.harness(.facebook, [MetaTest.ok(#"{"id":"111_1"}"#, headers: usage)], clock: ManualClock())
    let client = FacebookClient(environment: harness.environment)
    let operation = try client.preparePublish(Params(["text": "one"]))
    _ = try await operation.run(harness.context(MetaTest.key(.facebook)))
    let gates = harness.environment.core.gates
    let until = try #require(gates.blockedUntil(RateLimitKey("facebook:account:111")))
    let wait = harness.environment.clock.now().duration(to: until)
    #expect(wait == .seconds(420))
    #expect(gates.blockedUntil(.app("facebook")) == nil)

    let second = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(MetaTest.key(.facebook)))
    }
    #expect(second.error?.kind == .rateLimited)
    #expect(harness.transport.requests.count == 1)
  }

  @Test("transient codes are retried: code 2 and is_transient")
  func transientRetried() async throws {
    let harness = MetaTest.harness(
      .whatsapp,
      [
        MetaTest.error(2, message: "Service temporarily unavailable", status: 503),
        MetaTest.error(77777, message: "Please retry", transient: true),
        MetaTest.ok(#"{"id":"30001","verified_name":"Acme","platform_type":"CLOUD_API"}"#),
        MetaTest.ok(
          #"{"data":{"is_valid":true,"type":"SYSTEM_USER","scopes":["whatsapp_business_messaging"],"expires_at":0}}"#),
      ])
    let result = try await WhatsAppClient(environment: harness.environment).validate(
      context: harness.context(MetaTest.key(.whatsapp)))
    #expect(result.valid)
    #expect(
      harness.transport.requests.map(\.path) == ["/v26.0/30001", "/v26.0/30001", "/v26.0/30001", "/v26.0/debug_token"])
  }
}

@Suite("Graph timestamps")
struct MetaGraphTimeTests {
  @Test(
    "Meta's timestamp forms parse to the same instant",
    arguments: [
      "2025-11-25T12:00:00+0000", "2025-11-25T12:00:00Z", "2025-11-25T13:00:00+01:00", "2025-11-25T07:00:00-0500",
    ])
  func parses(_ text: String) throws {
    let date = try #require(GraphTime.parse(text))
    #expect(date.timeIntervalSince1970 == 1_764_072_000)
  }

  @Test("garbage is not a time", arguments: ["", "yesterday", "2025-13-01T00:00:00+0000", "2025-11-25T12:00:00+00"])
  func rejects(_ text: String) {
    #expect(GraphTime.parse(text) == nil)
  }
}
