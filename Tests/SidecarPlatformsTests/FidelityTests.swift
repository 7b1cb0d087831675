import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
@testable import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport
import Testing

/// Issue 16: what the live platforms do that the first fakes did not show.
@Suite("Platform fidelity")
struct FidelityTests {
  // MARK: - SHA-256 and HMAC (FIPS 180-4 examples, RFC 4231 test cases)

  @Test(
    "SHA-256 matches the FIPS 180-4 examples",
    arguments: [
      ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
      ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
      (
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
      ),
    ])
  func sha256(message: String, digest: String) {
    #expect(SHA256.hex(SHA256.hash(Array(message.utf8))) == digest)
  }

  @Test("SHA-256 of a million 'a' (several blocks) matches FIPS 180-4")
  func sha256Long() {
    let digest = SHA256.hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
    #expect(digest == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  @Test(
    "HMAC-SHA256 matches RFC 4231 test cases 1, 2 and 6 (a key longer than a block)",
    arguments: [
      (
        [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
      ),
      (
        Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
      ),
      (
        [UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
      ),
    ])
  func hmac(key: [UInt8], message: [UInt8], mac: String) {
    #expect(SHA256.hex(SHA256.hmac(key: key, message: message)) == mac)
  }

  // MARK: - Meta

  static func graphHarness(
    _ platform: Platform, _ replies: [ScriptedTransport.Reply], credential: Credential, appSecret: String?
  ) -> (TestHarness, PlatformEnvironment) {
    let harness = MetaTest.harness(platform, replies, credential: credential)
    let environment = PlatformEnvironment(
      endpoints: PlatformEndpoints(), transport: harness.transport, core: harness.environment.core,
      media: harness.environment.media, logger: harness.environment.logger,
      appSecrets: appSecret.map { [platform: $0] } ?? [:])
    return (harness, environment)
  }

  @Test("every Graph call carries appsecret_proof = HMAC-SHA256(app secret, token); the credential's secret wins")
  func appSecretProof() async throws {
    let configured = "configured-app-secret"
    let own = "credentials-own-app-secret"
    for (credentialSecret, secret) in [(nil, configured), (own, own)] as [(String?, String)] {
      var credential = MetaTest.credential(.facebook)
      credential.appSecret = credentialSecret
      let (harness, environment) = Self.graphHarness(
        .facebook, [MetaTest.ok(#"{"id":"111_222","permalink_url":"https://www.facebook.com/111/posts/222"}"#)],
        credential: credential, appSecret: configured)
      _ = try await FacebookClient(environment: environment).preparePublish(Params(["text": "signed"]))
        .run(harness.context(MetaTest.key(.facebook)))
      let request = try #require(harness.transport.requests.first)
      let expected = SHA256.hex(SHA256.hmac(key: Array(secret.utf8), message: Array(MetaTest.pageToken.utf8)))
      #expect(request.url.query?.contains("appsecret_proof=\(expected)") == true)
      #expect(!request.url.absoluteString.contains(secret))
      #expect(!harness.logs.entries.joined().contains(secret))
    }
  }

  @Test("without an app secret no proof is sent")
  func noAppSecret() async throws {
    let (harness, environment) = Self.graphHarness(
      .facebook, [MetaTest.ok(#"{"id":"111_222"}"#)], credential: MetaTest.credential(.facebook), appSecret: nil)
    _ = try await FacebookClient(environment: environment).preparePublish(Params(["text": "plain"]))
      .run(harness.context(MetaTest.key(.facebook)))
    #expect(harness.transport.requests.first?.url.query?.contains("appsecret_proof") == false)
  }

  @Test("Graph code 2 on a WhatsApp send is not re-sent: one request, outcome_unknown")
  func codeTwoNotResent() async throws {
    let harness = MetaTest.harness(
      .whatsapp, [MetaTest.error(2, message: "Service temporarily unavailable", status: 503)])
    let send = try WhatsAppClient(environment: harness.environment).preparePublish(
      Params(["to": "+15551234567", "text": "hi"]))
    let result = await MetaTest.run { () throws(SidecarError) in
      try await send.run(harness.context(MetaTest.key(.whatsapp)))
    }
    guard case .failure(let error) = result else {
      Issue.record("expected a failure")
      return
    }
    #expect(error.kind == .outcomeUnknown)
    #expect(harness.transport.requests.count == 1)
  }

  @Test("WhatsApp 131048 (spam rate limit) is permanent and says why")
  func spamLimitPermanent() {
    let failure = GraphAPI.failure(
      for: GraphError(message: "Spam rate limit hit", code: 131048), status: 400, platform: .whatsapp)
    #expect(failure.classification == .permanent)
    #expect(failure.message.contains("retrying cannot lift it"))
  }

  @Test("whatsapp/validate asks for the messaging-limit field under the configured version's name")
  func messagingLimitField() {
    for (version, field) in [("v23.0", "messaging_limit_tier"), ("v24.0", "whatsapp_business_manager_messaging_limit")]
    {
      var endpoints = PlatformEndpoints()
      endpoints.graphVersion[.whatsapp] = version
      let harness = MetaTest.harness(.whatsapp, [])
      let environment = PlatformEnvironment(
        endpoints: endpoints, transport: harness.transport, core: harness.environment.core,
        media: harness.environment.media, logger: harness.environment.logger)
      #expect(WhatsAppClient(environment: environment).messagingLimitField == field)
    }
  }

  // MARK: - YouTube

  @Test("a public upload that YouTube locked to private is reported as private with a warning")
  func privacyReadBack() throws {
    let harness = TestHarness(transport: ScriptedTransport([]), credentials: [:])
    let client = YouTubeClient(environment: harness.environment, chunkSize: 256 << 10)
    let video: JSONValue = ["id": "abc", "status": ["uploadStatus": "uploaded", "privacyStatus": "private"]]
    let result = try client.result(video, asked: "public", attempts: 1)
    #expect(result.privacyStatus == "private")
    #expect(result.warnings.count == 1 && result.warnings[0].contains("private although public was asked"))
    let asked = try client.result(video, asked: "private", attempts: 1)
    #expect(asked.warnings.isEmpty)
  }

  // MARK: - LinkedIn

  @Test("RECRUITING_POSTER cannot post for an organization")
  func recruitingPoster() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        200,
        #"{"elements":[{"organization":"urn:li:organization:2414183","role":"RECRUITING_POSTER","state":"APPROVED"}]}"#)
    ])
    var credential = LinkedInClientTests.credential()
    credential.clientSecret = nil
    let harness = TestHarness(transport: transport, credentials: [LinkedInClientTests.key: credential])
    let result = try await LinkedInClient(environment: harness.environment).validate(
      context: harness.context(LinkedInClientTests.key))
    #expect(!result.valid)
    #expect(result.problems?.first?.contains("holds only RECRUITING_POSTER") == true)
  }

  @Test("a personal token with only w_member_social validates as invalid with the reason, not an error")
  func personalWithoutProfile() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(403, #"{"status":403,"code":"ACCESS_DENIED","message":"Not enough permissions"}"#)
    ])
    var credential = LinkedInClientTests.credential(accountId: "urn:li:person:abc")
    credential.clientSecret = nil
    let harness = TestHarness(transport: transport, credentials: [LinkedInClientTests.key: credential])
    let result = try await LinkedInClient(environment: harness.environment).validate(
      context: harness.context(LinkedInClientTests.key))
    #expect(!result.valid)
    #expect(result.missing == ["openid", "profile"])
  }

  @Test("a 422 duplicate whose post is gone is a permanent error naming it; a live one answers that post")
  func duplicateReadBack() async throws {
    let duplicate = ScriptedTransport.json(
      422, #"{"status":422,"code":"DUPLICATE_POST","message":"Content is a duplicate of urn:li:share:7001"}"#)
    for (read, live) in [
      (ScriptedTransport.json(200, #"{"id":"urn:li:share:7001"}"#), true),
      (ScriptedTransport.json(404, #"{"status":404,"code":"RESOURCE_NOT_FOUND"}"#), false),
    ] {
      let transport = ScriptedTransport([duplicate, read])
      let harness = TestHarness(
        transport: transport, credentials: [LinkedInClientTests.key: LinkedInClientTests.credential()])
      let publish = try LinkedInClient(environment: harness.environment).preparePublish(Params(["text": "again"]))
      let run = await MetaTest.run { () throws(SidecarError) in
        try await publish.run(harness.context(LinkedInClientTests.key))
      }
      #expect(transport.requests.last?.url.absoluteString.hasSuffix("/rest/posts/urn%3Ali%3Ashare%3A7001") == true)
      switch run {
      case .success(let result): #expect(live && result.postId == "urn:li:share:7001")
      case .failure(let error):
        #expect(!live && error.kind == .permanent && error.message.contains("urn:li:share:7001"))
      }
    }
  }

  @Test(
    "a LinkedIn version older than 10 months is warned about",
    arguments: [
      ("202510", "2026-12-01T00:00:00Z", true), ("202602", "2026-12-01T00:00:00Z", false),
      ("202610", "2026-12-01T00:00:00Z", false), ("202601", "2026-12-01T00:00:00Z", true),
    ])
  func versionWarning(version: String, now: String, warned: Bool) throws {
    let date = try Date(now, strategy: .iso8601)
    #expect((LinkedInClient.versionWarning(version, now: date) != nil) == warned)
  }

  @Test("the defaults are inside the platforms' support windows")
  func defaults() {
    #expect(PlatformEndpoints.defaultGraphVersion == "v26.0")
    #expect(PlatformEndpoints().graphVersion[.whatsapp] == PlatformEndpoints.defaultGraphVersion)
    #expect(PlatformEndpoints().linkedinVersion >= "202607")
  }
}
