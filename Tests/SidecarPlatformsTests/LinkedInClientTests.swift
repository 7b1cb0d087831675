import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport
import Testing

@Suite("LinkedIn")
struct LinkedInClientTests {
  static let key = CredentialKey(platform: .linkedin, credentialRef: "li-ref", customerId: "cust-1")
  static let version = PlatformEndpoints().linkedinVersion

  static func credential(accountId: String = "urn:li:organization:2414183", refreshToken: String? = "AQX-refresh")
    -> Credential
  {
    Credential(
      accessToken: "AQV-access", refreshToken: refreshToken, expiresAt: Date().addingTimeInterval(86_400 * 30),
      accountId: accountId, clientId: "li-client", clientSecret: "li-secret")
  }

  static func created(_ urn: String) -> ScriptedTransport.Reply {
    .response(HTTPResponse(status: 201, headers: ["x-restli-id": urn]))
  }

  func post(_ harness: TestHarness, _ values: [String: JSONValue], environment: PlatformEnvironment? = nil)
    async throws -> PostResult
  {
    try await LinkedInClient(environment: environment ?? harness.environment).preparePublish(Params(values))
      .run(harness.context(Self.key))
  }

  static func expectRestHeaders(_ request: ScriptedTransport.Recorded, json: Bool = true) {
    #expect(request.headers["Authorization"] == "Bearer AQV-access")
    #expect(request.headers["LinkedIn-Version"] == version)
    #expect(request.headers["X-Restli-Protocol-Version"] == "2.0.0")
    if json { #expect(request.headers["Content-Type"] == "application/json") }
  }

  @Test("a text post is one POST /rest/posts with the documented body; the URN comes from x-restli-id")
  func textPost() async throws {
    let transport = ScriptedTransport([Self.created("urn:li:share:7012345678901234567")])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await post(harness, ["text": "Hello (world) #launch"])

    let request = try #require(transport.requests.first)
    #expect(transport.requests.count == 1)
    #expect(request.method == "POST")
    #expect(request.url.absoluteString == "https://api.linkedin.com/rest/posts")
    Self.expectRestHeaders(request)
    #expect(
      request.json
        == [
          "author": "urn:li:organization:2414183", "commentary": #"Hello \(world\) #launch"#, "visibility": "PUBLIC",
          "distribution": [
            "feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": [],
          ],
          "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": false,
        ])
    #expect(
      result
        == PostResult(
          postId: "urn:li:share:7012345678901234567",
          postUrl: "https://www.linkedin.com/feed/update/urn:li:share:7012345678901234567/", status: .published))
  }

  @Test("a bare organization id becomes the organization URN; a link becomes an article card")
  func linkPost() async throws {
    let transport = ScriptedTransport([Self.created("urn:li:share:1")])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential(accountId: "2414183")])
    _ = try await post(
      harness, ["text": "Read this", "link": "https://www.example.com/blog/post-1", "visibility": "LOGGED_IN"])
    let body = try #require(transport.requests.first?.json)
    #expect(body["author"] == "urn:li:organization:2414183")
    #expect(body["visibility"] == "LOGGED_IN")
    #expect(
      body["content"] == [
        "article": ["source": "https://www.example.com/blog/post-1", "title": "example.com/blog/post-1"]
      ])
  }

  @Test("an image post fetches the image, uploads it to LinkedIn and posts its URN")
  func imagePost() async throws {
    let image = Data([0xFF, 0xD8, 0xFF, 0xE0] + (0..<2000).map { UInt8($0 % 256) })
    let transport = ScriptedTransport([
      .response(HTTPResponse(status: 200, headers: ["Content-Type": "image/jpeg"], body: image)),
      ScriptedTransport.json(
        200,
        #"{"value":{"uploadUrlExpiresAt":1650567510704,"#
          + #""uploadUrl":"https://www.linkedin.com/dms-uploads/abc/uploadedImage/0?ca=vector_feedshare","#
          + #""image":"urn:li:image:C4E10AQFoyyAjHPMQuQ"}}"#
      ),
      .response(HTTPResponse(status: 201)),
      ScriptedTransport.json(200, #"{"id":"urn:li:image:C4E10AQFoyyAjHPMQuQ","status":"AVAILABLE"}"#),
      Self.created("urn:li:share:7"),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await post(
      harness, ["text": "Look", "imageUrl": "https://media.test/photo.jpg"], environment: harness.permissiveEnvironment)

    let requests = transport.requests
    #expect(
      requests.map { "\($0.method) \($0.url.absoluteString)" } == [
        "GET https://media.test/photo.jpg",
        "POST https://api.linkedin.com/rest/images?action=initializeUpload",
        "PUT https://www.linkedin.com/dms-uploads/abc/uploadedImage/0?ca=vector_feedshare",
        "GET https://api.linkedin.com/rest/images/urn%3Ali%3Aimage%3AC4E10AQFoyyAjHPMQuQ",
        "POST https://api.linkedin.com/rest/posts",
      ])
    Self.expectRestHeaders(requests[1])
    #expect(requests[1].json == ["initializeUploadRequest": ["owner": "urn:li:organization:2414183"]])
    #expect(requests[2].body == image)
    #expect(requests[2].headers["Content-Type"] == "image/jpeg")
    #expect(requests[2].headers["Authorization"] == "Bearer AQV-access")
    Self.expectRestHeaders(requests[3], json: false)
    Self.expectRestHeaders(requests[4])
    #expect(requests[4].json?["content"] == ["media": ["id": "urn:li:image:C4E10AQFoyyAjHPMQuQ"]])
    #expect(requests[4].json?["author"] == "urn:li:organization:2414183")
    #expect(result.postId == "urn:li:share:7")
    #expect(result.postUrl == "https://www.linkedin.com/feed/update/urn:li:share:7/")
  }

  @Test("the bearer token is not sent to an upload URL outside LinkedIn")
  func foreignUploadHost() async throws {
    let transport = ScriptedTransport([
      .response(HTTPResponse(status: 200, headers: ["Content-Type": "image/png"], body: Data([1, 2, 3]))),
      ScriptedTransport.json(
        200, #"{"value":{"uploadUrl":"https://uploads.elsewhere.test/x","image":"urn:li:image:X"}}"#),
      .response(HTTPResponse(status: 201)),
      ScriptedTransport.json(200, #"{"status":"AVAILABLE"}"#),
      Self.created("urn:li:share:8"),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    _ = try await post(harness, ["imageUrl": "https://media.test/p.png"], environment: harness.permissiveEnvironment)
    #expect(transport.requests[2].headers["Authorization"] == nil)
  }

  @Test("a 422 saying the content duplicates a post answers with that post once a read shows it exists")
  func duplicate() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        422,
        #"{"status":422,"code":"DUPLICATE_POST","#
          + #""message":"Content is a duplicate of urn:li:share:7243000000000000001"}"#),
      ScriptedTransport.json(200, #"{"id":"urn:li:share:7243000000000000001"}"#),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await post(harness, ["text": "Same again"])
    #expect(result.postId == "urn:li:share:7243000000000000001")
    #expect(result.postUrl == "https://www.linkedin.com/feed/update/urn:li:share:7243000000000000001/")
    #expect(result.status == .published)
  }

  @Test(
    "a version LinkedIn does not serve is permanent and names platforms.linkedin.apiVersion",
    arguments: [
      (426, #"{"status":426,"code":"NONEXISTENT_VERSION","message":"Requested version 20240101 is not active"}"#),
      (400, #"{"status":400,"code":"VERSION_MISSING","message":"A version must be present."}"#),
    ])
  func version(status: Int, body: String) async throws {
    let transport = ScriptedTransport([ScriptedTransport.json(status, body)])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let error = try await #require(throws: SidecarError.self) { try await post(harness, ["text": "Hi"]) }
    #expect(error.kind == .permanent)
    #expect(error.message.contains("platforms.linkedin.apiVersion"))
    #expect(error.message.contains(Self.version))
    #expect(transport.requests.count == 1)
  }

  @Test("an expired token is refreshed once and the post retried; the parent keeps the rotated refresh token")
  func expiredToken() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        401,
        #"{"status":401,"serviceErrorCode":65602,"code":"EXPIRED_ACCESS_TOKEN","#
          + #""message":"The token used in the request has expired"}"#),
      ScriptedTransport.json(
        200,
        #"{"access_token":"AQV-new","expires_in":5183999,"#
          + #""refresh_token":"AQX-rotated","refresh_token_expires_in":31000000}"#),
      Self.created("urn:li:share:9"),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await post(harness, ["text": "Hi"])
    #expect(result.postId == "urn:li:share:9")
    let refresh = transport.requests[1]
    #expect(refresh.url.absoluteString == "https://www.linkedin.com/oauth/v2/accessToken")
    #expect(
      refresh.text == "grant_type=refresh_token&refresh_token=AQX-refresh&client_id=li-client&client_secret=li-secret")
    #expect(transport.requests[2].headers["Authorization"] == "Bearer AQV-new")
    await harness.store.flushUpdates(timeout: .seconds(5))
    #expect(harness.credentials.updates.map(\.1.refreshToken) == ["AQX-rotated"])
    #expect(harness.credentials.updates.map(\.1.accessToken) == ["AQV-new"])
  }

  @Test("without a refresh token an expired token is auth_failed and nothing is refreshed")
  func expiredWithoutRefresh() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        401, #"{"status":401,"serviceErrorCode":65601,"code":"REVOKED_ACCESS_TOKEN","message":"revoked"}"#)
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential(refreshToken: nil)])
    let error = try await #require(throws: SidecarError.self) { try await post(harness, ["text": "Hi"]) }
    #expect(error.kind == .authFailed)
    #expect(error.message.contains("reconnected"))
    #expect(transport.requests.count == 1)
  }

  @Test("429 is rate_limited")
  func rateLimited() async throws {
    let throttled = ScriptedTransport.json(
      429, #"{"status":429,"message":"Resource level throttle limit for calls to this resource is reached."}"#)
    let transport = ScriptedTransport([throttled, throttled, throttled])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let error = try await #require(throws: SidecarError.self) { try await post(harness, ["text": "Hi"]) }
    #expect(error.kind == .rateLimited)
  }

  @Test("a 5xx on the publish is re-sent only after a read shows no such post, up to 3 sends; then outcome_unknown")
  func ambiguousPublish() async throws {
    let other = ScriptedTransport.json(
      200, #"{"elements":[{"id":"urn:li:share:9","commentary":"Older","createdAt":1}]}"#)
    let replies: [ScriptedTransport.Reply] = [.response(HTTPResponse(status: 504)), other]
    let transport = ScriptedTransport(Array(repeating: replies, count: 3).flatMap { $0 })
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let error = try await #require(throws: SidecarError.self) { try await post(harness, ["text": "Hi"]) }
    #expect(error.kind == .outcomeUnknown)
    #expect(error.message.contains("since the publish started showed no such post after it was sent 3 times"))
    #expect(transport.requests.map(\.method) == ["POST", "GET", "POST", "GET", "POST", "GET"])
    #expect(transport.requests[1].url.query?.hasPrefix("q=author&author=urn%3Ali%3Aorganization%3A2414183") == true)
  }

  @Test("a lost LinkedIn answer is reconciled: the author's post with this text made since the call is the answer")
  func reconciledPublish() async throws {
    let now = Int(Date().timeIntervalSince1970 * 1000)
    let transport = ScriptedTransport([
      .failure(TransportError(.timedOut, requestSent: true, message: "timed out")),
      ScriptedTransport.json(200, #"{"elements":[{"id":"urn:li:share:11","commentary":"Hi","createdAt":\#(now)}]}"#),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await post(harness, ["text": "Hi"])
    #expect(result.postId == "urn:li:share:11")
    #expect(transport.requests.filter { $0.method == "POST" }.count == 1)
  }

  /// A publish taken over from a sidecar that died while sending it, claimed a minute ago.
  func interrupted(_ harness: TestHarness, deadline: Duration? = nil) async throws -> PostResult {
    let claimed = Date().addingTimeInterval(-60)
    return try await LinkedInClient(environment: harness.environment).preparePublish(Params(["text": "Hi"]))
      .run(harness.context(Self.key, deadline: deadline, interruptedSince: claimed))
  }

  @Test("an interrupted publish found among the author's posts is the answer; nothing is sent")
  func interruptedFound() async throws {
    let made = Int(Date().addingTimeInterval(-30).timeIntervalSince1970 * 1000)
    let transport = ScriptedTransport([
      ScriptedTransport.json(200, #"{"elements":[{"id":"urn:li:share:21","commentary":"Hi","createdAt":\#(made)}]}"#)
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await interrupted(harness)
    #expect(result.postId == "urn:li:share:21")
    #expect(transport.requests.map(\.method) == ["GET"])
  }

  @Test("an interrupted publish that a conclusive read shows absent is sent, once")
  func interruptedAbsent() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(200, #"{"elements":[]}"#), Self.created("urn:li:share:22"),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await interrupted(harness)
    #expect(result.postId == "urn:li:share:22")
    #expect(transport.requests.map(\.method) == ["GET", "POST"])
  }

  @Test("an interrupted publish whose author's posts cannot be read is outcome_unknown saying so; nothing is sent")
  func interruptedUnreadable() async throws {
    let transport = ScriptedTransport(
      Array(repeating: ScriptedTransport.json(500, #"{"status":500,"message":"Internal error"}"#), count: 5))
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let error = try await #require(throws: SidecarError.self) { try await interrupted(harness) }
    #expect(error.kind == .outcomeUnknown)
    #expect(error.message.contains("stopped while this publish was in flight"))
    #expect(error.message.contains("posts made since the publish started could not be read"), "\(error.message)")
    #expect(transport.requests.allSatisfy { $0.method == "GET" })
  }

  @Test("an interrupted publish with no time left to let its request land is looked for once, never sent")
  func interruptedNoTime() async throws {
    let transport = ScriptedTransport([ScriptedTransport.json(200, #"{"elements":[]}"#)])
    let clock = ManualClock()
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()], clock: clock)
    let error = try await #require(throws: SidecarError.self) {
      try await interrupted(harness, deadline: .milliseconds(5))
    }
    #expect(error.kind == .outcomeUnknown)
    #expect(error.message.contains("no time left before the deadline"), "\(error.message)")
    #expect(transport.requests.map(\.method) == ["GET"])
  }

  @Test(
    "content LinkedIn cannot take is refused before any request, with a sentence saying why",
    arguments: [
      ([:], "text", "needs `text` or an attachment"),
      (["text": "   "], "text", "needs `text` or an attachment"),
      (["text": .string(String(repeating: "a", count: 3001))], "text", "3000"),
      (["text": .string(String(repeating: "(", count: 1600))], "text", "escaped"),
      (
        ["text": "x", "link": "https://a.test", "imageUrl": "https://b.test/i.jpg"], "imageUrl",
        "not `link` and `imageUrl`"
      ),
      (["text": "x", "visibility": "FRIENDS"], "visibility", "PUBLIC, CONNECTIONS, LOGGED_IN"),
      (["text": "x", "link": "ftp://a.test/x"], "link", "http(s)"),
      (["text": "x", "imageUrl": "http://media.test/i.jpg"], "imageUrl", "https"),
      (["text": "x", "caption": "y"], "caption", "unknown param"),
    ] as [([String: JSONValue], String, String)])
  func invalidParams(values: [String: JSONValue], field: String, phrase: String) throws {
    let harness = TestHarness(transport: ScriptedTransport(), credentials: [:])
    let error = try #require(throws: InvalidParams.self) {
      try LinkedInClient(environment: harness.environment).preparePublish(Params(values))
    }
    #expect(error.field == field)
    #expect(error.reason.contains(phrase), "\(error.reason)")
  }

  @Test("an accountId that is not an organization is refused before any request")
  func badAccount() async throws {
    let harness = TestHarness(
      transport: ScriptedTransport(), credentials: [Self.key: Self.credential(accountId: "acme-corp")])
    let error = try await #require(throws: SidecarError.self) { try await post(harness, ["text": "Hi"]) }
    #expect(error.kind == .permanent)
    #expect(error.message.contains("urn:li:organization:"))
    #expect(harness.transport.requests.isEmpty)
  }

  @Test("validate finds the member's approved posting role on the organization")
  func validateAdmin() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        200,
        #"{"active":true,"status":"active","scope":"w_organization_social,rw_organization_admin","#
          + #""expires_at":1900000000}"#),
      ScriptedTransport.json(
        200,
        #"{"paging":{"start":0,"count":100,"total":2},"elements":["#
          + #"{"roleAssignee":"urn:li:person:a","organization":"urn:li:organization:2414183","#
          + #""role":"ADMINISTRATOR","state":"APPROVED","organization~":{"localizedName":"Org One"}},"#
          + #"{"roleAssignee":"urn:li:person:a","organization":"urn:li:organization:9","#
          + #""role":"ANALYST","state":"APPROVED"}]}"#
      ),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await LinkedInClient(environment: harness.environment).validate(context: harness.context(Self.key))
    #expect(transport.requests[0].url.absoluteString == "https://www.linkedin.com/oauth/v2/introspectToken")
    let acl = transport.requests[1]
    #expect(acl.url.path == "/rest/organizationAcls")
    #expect(acl.url.query?.hasPrefix("q=roleAssignee&state=APPROVED") == true)
    Self.expectRestHeaders(acl, json: false)
    #expect(result.valid)
    #expect(result.accountId == "urn:li:organization:2414183")
    #expect(result.accountName == "Org One")
    #expect(result.scopes == ["w_organization_social", "rw_organization_admin"])
    #expect(result.expiresAt == Date(timeIntervalSince1970: 1_900_000_000))
  }

  @Test("validate names the missing role when the member is only an analyst")
  func validateAnalyst() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        200, #"{"elements":[{"organization":"urn:li:organization:2414183","role":"ANALYST","state":"APPROVED"}]}"#)
    ])
    var credential = Self.credential()
    credential.clientSecret = nil  // no introspection
    let harness = TestHarness(transport: transport, credentials: [Self.key: credential])
    let result = try await LinkedInClient(environment: harness.environment).validate(context: harness.context(Self.key))
    #expect(!result.valid)
    #expect(result.missing == ["ADMINISTRATOR"])
    #expect(result.problems?.first?.contains("holds only ANALYST") == true)
  }
}
