import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import SidecarTestSupport
import Testing

@testable import SidecarPlatforms

@Suite("WhatsApp sending")
struct MetaWhatsAppSendTests {
  let key = MetaTest.key(.whatsapp)
  static let accepted = MetaTest.ok(
    #"{"messaging_product":"whatsapp","contacts":[{"input":"15551234567","wa_id":"15551234567"}],"#
      + #""messages":[{"id":"wamid.HBgLMTU1"}]}"#
  )

  func send(
    _ params: [String: JSONValue], _ replies: [ScriptedTransport.Reply], clock: any SidecarClock = SystemClock()
  )
    async throws -> (Result<PostResult, SidecarError>, [ScriptedTransport.Recorded])
  {
    let harness = MetaTest.harness(.whatsapp, replies, clock: clock)
    let operation = try WhatsAppClient(environment: harness.environment).preparePublish(Params(params))
    let result = await MetaTest.run { () throws(SidecarError) in try await operation.run(harness.context(key)) }
    return (result, harness.transport.requests)
  }

  @Test("text: JSON body to /messages, answers the wamid, no URL, accepted")
  func text() async throws {
    let (result, requests) = try await send(["to": "+15551234567", "text": "Hello"], [Self.accepted])
    #expect(try result.get() == PostResult(postId: "wamid.HBgLMTU1", postUrl: nil, status: .accepted))
    let request = try #require(requests.first)
    #expect(request.summary == "POST /v26.0/30001/messages")
    #expect(request.headers["Authorization"] == "Bearer \(MetaTest.waToken)")
    #expect(request.headers["Content-Type"] == "application/json")
    #expect(
      request.json == [
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567", "type": "text",
        "text": ["body": "Hello"],
      ])
  }

  @Test("an interrupted send (its sidecar died while sending) is never sent again: messages cannot be read back")
  func interrupted() async throws {
    let harness = MetaTest.harness(.whatsapp, [Self.accepted])
    let operation = try WhatsAppClient(environment: harness.environment).preparePublish(
      Params(["to": "+15551234567", "text": "Hello"]))
    let context = harness.context(key, interruptedSince: Date().addingTimeInterval(-60))
    let result = await MetaTest.run { () throws(SidecarError) in try await operation.run(context) }
    guard case .failure(let error) = result else {
      Issue.record("an interrupted send was answered as sent")
      return
    }
    #expect(error.kind == .outcomeUnknown)
    #expect(error.message.contains("stopped while this publish was in flight"))
    #expect(harness.transport.requests.isEmpty)
  }

  @Test("image by URL with a caption")
  func image() async throws {
    let (_, requests) = try await send(
      ["to": "15551234567", "image": ["url": "https://cdn.example/a.jpg", "caption": "Look"]], [Self.accepted])
    #expect(requests.first?.json?["type"] == "image")
    #expect(requests.first?.json?["image"] == ["link": "https://cdn.example/a.jpg", "caption": "Look"])
  }

  @Test("template with language and components")
  func template() async throws {
    let components: JSONValue = [["type": "body", "parameters": [["type": "text", "text": "Ada"]]]]
    let (result, requests) = try await send(
      ["to": "15551234567", "template": ["name": "order_update", "language": "en_US", "components": components]],
      [Self.accepted])
    #expect(try result.get().status == .accepted)
    #expect(
      requests.first?.json?["template"] == [
        "name": "order_update", "language": ["code": "en_US"], "components": components,
      ])
  }

  @Test("a timeout after the request left ends outcome_unknown after exactly one request")
  func timeoutUnknown() async throws {
    let (result, requests) = try await send(["to": "15551234567", "text": "Hello"], [MetaTest.lostResponse])
    let error = try #require(result.error)
    #expect(error.kind == .outcomeUnknown)
    #expect(error.message.contains("webhooks"))
    #expect(requests.count == 1)
  }

  @Test("a connection refused before sending is retried (nothing reached WhatsApp), paced 6 s after the first try")
  func refusedRetried() async throws {
    let clock = ManualClock()
    let refused = ScriptedTransport.Reply.failure(
      TransportError(.connectFailed, requestSent: false, message: "refused"))
    let harness = MetaTest.harness(.whatsapp, [refused, Self.accepted], clock: clock)
    let operation = try WhatsAppClient(environment: harness.environment).preparePublish(
      Params(["to": "15551234567", "text": "Hello"]))
    let task = Task { await MetaTest.run { () throws(SidecarError) in try await operation.run(harness.context(key)) } }
    let backoff = await clock.advanceToNextSleeper()
    let pacing = await clock.advanceToNextSleeper()
    #expect(try await task.value.get().postId == "wamid.HBgLMTU1")
    #expect(backoff + pacing == .seconds(6))
    #expect(harness.transport.requests.count == 2)
  }

  @Test("outside the 24-hour window: permanent, telling to send a template")
  func windowClosed() async throws {
    let (result, requests) = try await send(
      ["to": "15551234567", "text": "Hello"], [MetaTest.error(131047, message: "(#131047) Re-engagement message")])
    let error = try #require(result.error)
    #expect(error.kind == .permanent)
    #expect(error.message.contains("template"))
    #expect(requests.count == 1)
  }

  @Test("undeliverable recipients are permanent", arguments: [131026, 131051])
  func undeliverable(_ code: Int) async throws {
    let (result, requests) = try await send(["to": "15551234567", "text": "Hello"], [MetaTest.error(code)])
    #expect(result.error?.kind == .permanent)
    #expect(requests.count == 1)
  }

  @Test("the pair rate limit blocks that recipient only, for 6 s; other recipients go on")
  func pairRate() async throws {
    let clock = ManualClock()
    let harness = MetaTest.harness(
      .whatsapp,
      [MetaTest.error(131056, message: "(#131056) pair rate limit hit", status: 429), Self.accepted], clock: clock)
    let client = WhatsAppClient(environment: harness.environment)
    let first = try client.preparePublish(Params(["to": "15551234567", "text": "one"]))
    let result = await MetaTest.run { () throws(SidecarError) in
      try await first.run(harness.context(key, deadline: .seconds(3)))
    }
    #expect(result.error?.kind == .rateLimited)
    #expect(result.error?.retryAfter == .seconds(6))
    let gates = harness.environment.core.gates
    #expect(gates.blockedUntil(RateLimitKey("whatsapp:pair:30001:15551234567")) == clock.now() + .seconds(6))
    #expect(gates.blockedUntil(RateLimitKey("whatsapp:account:30001")) == nil)

    let other = try client.preparePublish(Params(["to": "15557654321", "text": "two"]))
    #expect(try await other.run(harness.context(key, deadline: .seconds(3))).postId == "wamid.HBgLMTU1")
    #expect(harness.transport.requests.count == 2)
  }

  @Test("sends to one recipient are paced 6 s apart without spending a request")
  func pacing() async throws {
    let clock = ManualClock()
    let harness = MetaTest.harness(.whatsapp, [Self.accepted, Self.accepted], clock: clock)
    let client = WhatsAppClient(environment: harness.environment)
    let operation = try client.preparePublish(Params(["to": "15551234567", "text": "hi"]))
    _ = try await operation.run(harness.context(key))
    let second = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(key, deadline: .seconds(2)))
    }
    #expect(second.error?.kind == .rateLimited)
    #expect(second.error?.attempts == 0)
    #expect(harness.transport.requests.count == 1)
    clock.advance(by: .seconds(6))
    _ = try await operation.run(harness.context(key))
    #expect(harness.transport.requests.count == 2)
  }

  @Test("the throughput limit blocks the whole number")
  func throughput() async throws {
    let clock = ManualClock()
    let harness = MetaTest.harness(
      .whatsapp, [MetaTest.error(130429, message: "(#130429) Rate limit hit", status: 429)], clock: clock)
    let operation = try WhatsAppClient(environment: harness.environment).preparePublish(
      Params(["to": "15551234567", "text": "Hello"]))
    let result = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(key, deadline: .milliseconds(500)))
    }
    #expect(result.error?.kind == .rateLimited)
    #expect(harness.environment.core.gates.blockedUntil(RateLimitKey("whatsapp:account:30001")) != nil)
  }
}

@Suite("WhatsApp params, validate and refresh")
struct MetaWhatsAppOtherTests {
  let key = MetaTest.key(.whatsapp)

  static let invalid: [([String: JSONValue], String?)] = [
    (["text": "hi"], "to"),
    (["to": "", "text": "hi"], "to"),
    (["to": "+1 555 123 4567", "text": "hi"], "to"),
    (["to": "1234567", "text": "hi"], "to"),
    (["to": "1234567890123456", "text": "hi"], "to"),
    (["to": "+0155512345", "text": "hi"], "to"),
    (["to": "15551234567"], nil),
    (["to": "15551234567", "text": "hi", "image": ["url": "https://a.example/a.jpg"]], nil),
    (["to": "15551234567", "text": .string(String(repeating: "x", count: 4_097))], "text"),
    (["to": "15551234567", "image": ["url": "http://a.example/a.jpg"]], "image.url"),
    (["to": "15551234567", "image": ["caption": "no url"]], "image.url"),
    (["to": "15551234567", "image": ["url": "https://a.example/a.jpg", "alt": "x"]], "image.alt"),
    (["to": "15551234567", "template": ["name": "x"]], "template.language"),
    (["to": "15551234567", "template": ["name": "x", "language": "en", "components": "body"]], "template.components"),
    (["to": "15551234567", "text": "hi", "preview": true], "preview"),
  ]

  @Test("messages WhatsApp cannot take are refused before any request", arguments: invalid)
  func invalidParams(_ params: [String: JSONValue], field: String?) throws {
    let harness = MetaTest.harness(.whatsapp, [])
    #expect {
      _ = try WhatsAppClient(environment: harness.environment).preparePublish(Params(params))
    } throws: { error in
      (error as? InvalidParams)?.field == field
    }
  }

  @Test("validate reads the number and the token's permissions")
  func validate() async throws {
    let harness = MetaTest.harness(
      .whatsapp,
      [
        MetaTest.ok(
          #"{"id":"30001","verified_name":"Acme","display_phone_number":"+1 555-010-0000","#
            + #""quality_rating":"GREEN","platform_type":"CLOUD_API"}"#
        ),
        MetaTest.ok(
          #"{"data":{"is_valid":true,"type":"SYSTEM_USER","scopes":["whatsapp_business_management"],"expires_at":0}}"#),
      ])
    let result = try await WhatsAppClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(!result.valid)
    #expect(result.missing == ["whatsapp_business_messaging"])
    #expect(result.accountName == "Acme")
    let fields = harness.transport.requests.first?.query["fields"] ?? ""
    #expect(fields.hasPrefix("display_phone_number,verified_name,quality_rating"))
  }

  @Test("refresh says system-user tokens have no refresh flow")
  func refresh() async throws {
    let harness = MetaTest.harness(.whatsapp, [])
    let result = await MetaTest.run { () throws(SidecarError) in
      try await WhatsAppClient(environment: harness.environment).refresh(context: harness.context(key))
    }
    #expect(result.error?.kind == .unsupported)
    #expect(harness.transport.requests.isEmpty)
  }
}
