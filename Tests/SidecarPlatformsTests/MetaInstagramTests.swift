import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import SidecarTestSupport
import Synchronization
import Testing

@testable import SidecarPlatforms

@Suite("Instagram publishing")
struct MetaInstagramPublishTests {
  let key = MetaTest.key(.instagram)

  /// - Parameter interruptedSince: the publish is taken over from a sidecar that died while publishing it.
  func post(
    _ params: [String: JSONValue], _ replies: [ScriptedTransport.Reply], credential: Credential? = nil,
    interruptedSince: Date? = nil
  ) async throws -> (Result<PostResult, SidecarError>, [ScriptedTransport.Recorded]) {
    let harness = MetaTest.harness(.instagram, replies, credential: credential)
    let operation = try InstagramClient(environment: harness.environment).preparePublish(Params(params))
    let result = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(key, interruptedSince: interruptedSince))
    }
    return (result, harness.transport.requests)
  }

  static let permalink = MetaTest.ok(#"{"id":"1790","permalink":"https://www.instagram.com/p/AbC123/"}"#)

  @Test("an image: container, status polled until FINISHED, media_publish, permalink")
  func image() async throws {
    let (result, requests) = try await post(
      ["caption": "Hello #world", "imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#),
        MetaTest.ok(#"{"id":"c1","status_code":"IN_PROGRESS","status":"In Progress"}"#),
        MetaTest.ok(#"{"id":"c1","status_code":"FINISHED","status":"Finished"}"#),
        MetaTest.ok(#"{"id":"1790"}"#),
        Self.permalink,
      ])
    #expect(
      try result.get() == PostResult(postId: "1790", postUrl: "https://www.instagram.com/p/AbC123/", status: .published)
    )
    #expect(
      requests.map(\.summary) == [
        "POST /v26.0/178414/media", "GET /v26.0/c1", "GET /v26.0/c1", "POST /v26.0/178414/media_publish",
        "GET /v26.0/1790",
      ])
    #expect(requests.allSatisfy { $0.headers["Authorization"] == "Bearer \(MetaTest.igToken)" })
    #expect(requests.allSatisfy { $0.url.host == "graph.facebook.com" })
    #expect(requests[0].form == ["image_url": "https://cdn.example/a.jpg", "caption": "Hello #world"])
    #expect(requests[1].query == ["fields": "status_code,status"])
    #expect(requests[3].form == ["creation_id": "c1"])
    #expect(requests[4].query == ["fields": "permalink"])
  }

  @Test("waiting for Instagram to process a container is reported as progress")
  func processingProgress() async throws {
    let harness = MetaTest.harness(
      .instagram,
      [
        MetaTest.ok(#"{"id":"c1"}"#),
        MetaTest.ok(#"{"id":"c1","status_code":"IN_PROGRESS","status":"In Progress"}"#),
        MetaTest.ok(#"{"id":"c1","status_code":"IN_PROGRESS","status":"In Progress"}"#),
        MetaTest.ok(#"{"id":"c1","status_code":"FINISHED","status":"Finished"}"#),
        MetaTest.ok(#"{"id":"1790"}"#), Self.permalink,
      ])
    let reports = Mutex<[WorkDoneProgress.Value]>([])
    let progress = WorkDoneProgress { value in reports.withLock { $0.append(value) } }
    progress.begin(title: "instagram/post")
    let operation = try InstagramClient(environment: harness.environment).preparePublish(
      Params(["videoUrl": "https://cdn.example/v.mp4"]))
    let result = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(key, progress: progress))
    }
    #expect(try result.get().postId == "1790")
    let values = reports.withLock { $0 }
    #expect(values.map(\.kind) == [.begin, .report, .report])
    #expect(values.dropFirst().allSatisfy { $0.message == "Waiting for Instagram to finish processing the media" })
  }

  @Test("a video is a reel when kind is absent")
  func reel() async throws {
    let (result, requests) = try await post(
      ["caption": "Reel", "videoUrl": "https://cdn.example/r.mp4"],
      [
        MetaTest.ok(#"{"id":"c2"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1791"}"#),
        MetaTest.ok(#"{"permalink":"https://www.instagram.com/reel/XyZ/"}"#),
      ])
    #expect(try result.get().postUrl == "https://www.instagram.com/reel/XyZ/")
    #expect(requests[0].form == ["media_type": "REELS", "video_url": "https://cdn.example/r.mp4", "caption": "Reel"])
  }

  @Test("a story carries no caption")
  func story() async throws {
    let (result, requests) = try await post(
      ["kind": "story", "videoUrl": "https://cdn.example/s.mp4"],
      [
        MetaTest.ok(#"{"id":"c3"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1792"}"#),
        MetaTest.ok(#"{"permalink":"https://www.instagram.com/stories/acme/1792/"}"#),
      ])
    #expect(try result.get().postId == "1792")
    #expect(requests[0].form == ["media_type": "STORIES", "video_url": "https://cdn.example/s.mp4"])
  }

  @Test("a carousel: child containers, each FINISHED, then the parent with children, then publish")
  func carousel() async throws {
    let (result, requests) = try await post(
      [
        "caption": "Three",
        "items": [["imageUrl": "https://cdn.example/1.jpg"], ["videoUrl": "https://cdn.example/2.mp4"]],
      ],
      [
        MetaTest.ok(#"{"id":"k1"}"#), MetaTest.ok(#"{"id":"k2"}"#),
        MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.ok(#"{"id":"p1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.ok(#"{"id":"1793"}"#), Self.permalink,
      ])
    #expect(try result.get().postId == "1793")
    #expect(
      requests.map(\.summary) == [
        "POST /v26.0/178414/media", "POST /v26.0/178414/media", "GET /v26.0/k1", "GET /v26.0/k2",
        "POST /v26.0/178414/media", "GET /v26.0/p1", "POST /v26.0/178414/media_publish", "GET /v26.0/1793",
      ])
    #expect(requests[0].form == ["is_carousel_item": "true", "image_url": "https://cdn.example/1.jpg"])
    #expect(
      requests[1].form == ["is_carousel_item": "true", "media_type": "VIDEO", "video_url": "https://cdn.example/2.mp4"])
    #expect(requests[4].form == ["media_type": "CAROUSEL", "children": "k1,k2", "caption": "Three"])
    #expect(requests[6].form == ["creation_id": "p1"])
  }

  @Test("a container in ERROR ends permanent with Instagram's reason and nothing published")
  func containerError() async throws {
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"ERROR","status":"Error: code 2207082"}"#)])
    let error = try #require(result.error)
    #expect(error.kind == .permanent)
    #expect(error.message.contains("2207082"))
    #expect(!requests.contains { $0.path.hasSuffix("media_publish") })
  }

  @Test("a lost media_publish: the container is checked, found PUBLISHED, and not published again")
  func lostPublishReconciled() async throws {
    let now = GraphTimeFixture.now()
    let (result, requests) = try await post(
      ["caption": "Once only", "imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.lostResponse,
        MetaTest.ok(#"{"status_code":"PUBLISHED"}"#),
        MetaTest.ok(
          #"{"data":[{"id":"1800","caption":"Other","timestamp":"\#(now)"},"#
            + #"{"id":"1799","caption":"Once only","timestamp":"\#(now)","#
            + #""permalink":"https://www.instagram.com/p/Once/"}]}"#
        ),
      ])
    #expect(
      try result.get() == PostResult(postId: "1799", postUrl: "https://www.instagram.com/p/Once/", status: .published))
    #expect(requests.filter { $0.path.hasSuffix("media_publish") }.count == 1)
    #expect(
      requests.suffix(2).map(\.summary) == ["GET /v26.0/c1", "GET /v26.0/178414/media"])
    #expect(requests[4].query == ["fields": "id,caption,timestamp,permalink", "limit": "50"])
  }

  static let claimed = Date().addingTimeInterval(-60)
  static let oldMedia = #"{"id":"1700","caption":"Interrupted","timestamp":"2020-01-01T00:00:00+0000"}"#

  @Test("an interrupted publish found among the account's media by its caption is the answer; nothing is published")
  func interruptedFound() async throws {
    let now = GraphTimeFixture.now()
    let (result, requests) = try await post(
      ["caption": "Interrupted", "imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(
          #"{"data":[{"id":"1811","caption":"Interrupted","timestamp":"\#(now)","permalink":"https://ig.example/I"}]}"#
        )
      ], interruptedSince: Self.claimed)
    #expect(try result.get() == PostResult(postId: "1811", postUrl: "https://ig.example/I", status: .published))
    #expect(requests.map(\.summary) == ["GET /v26.0/178414/media"])
  }

  @Test("an interrupted publish that the account's media, read back past its claim, show absent is published once")
  func interruptedAbsent() async throws {
    let now = GraphTimeFixture.now()
    let (result, requests) = try await post(
      ["caption": "Interrupted", "imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(
          #"{"data":[{"id":"1812","caption":"Other","timestamp":"\#(now)"}],"#
            + #""paging":{"cursors":{"after":"QQ"},"next":"n"}}"#
        ),
        MetaTest.ok(#"{"data":[\#(Self.oldMedia)]}"#),
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1813"}"#),
        Self.permalink,
      ], interruptedSince: Self.claimed)
    #expect(try result.get().postId == "1813")
    #expect(requests.filter { $0.path.hasSuffix("media_publish") }.count == 1)
    #expect(requests[1].query == ["fields": "id,caption,timestamp,permalink", "limit": "50", "after": "QQ"])
  }

  @Test("an interrupted publish whose account made more media since its claim than one look reads is never published")
  func interruptedBeyondWindow() async throws {
    let now = GraphTimeFixture.now()
    let newer = Array(repeating: #"{"id":"1814","caption":"Other","timestamp":"\#(now)"}"#, count: 50)
      .joined(separator: ",")
    let page = MetaTest.ok(#"{"data":[\#(newer)],"paging":{"cursors":{"after":"QQ"},"next":"n"}}"#)
    let (result, requests) = try await post(
      ["caption": "Interrupted", "imageUrl": "https://cdn.example/a.jpg"], Array(repeating: page, count: 11),
      interruptedSince: Self.claimed)
    #expect(result.error?.kind == .outcomeUnknown)
    let message = result.error?.message ?? ""
    #expect(message.contains("the 500 newest were all made after"), "\(message)")
    #expect(requests.count == 10)
    #expect(requests.allSatisfy { $0.method == "GET" })
  }

  @Test("an interrupted story (no caption to look for) is outcome_unknown before any request")
  func interruptedStory() async throws {
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg", "kind": "story"], [MetaTest.ok(#"{"data":[]}"#)],
      interruptedSince: Self.claimed)
    #expect(result.error?.kind == .outcomeUnknown)
    #expect(result.error?.message.contains("Without a caption the post cannot be looked for") == true)
    #expect(requests.isEmpty)
  }

  @Test("a lost media_publish on a container still FINISHED publishes that same container once more")
  func lostPublishNotDone() async throws {
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.error(1, message: "An unknown error occurred", status: 500),
        MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.ok(#"{"id":"1801"}"#), Self.permalink,
      ])
    #expect(try result.get().postId == "1801")
    let publishes = requests.filter { $0.path.hasSuffix("media_publish") }
    #expect(publishes.count == 2)
    #expect(publishes.allSatisfy { $0.form == ["creation_id": "c1"] })
  }

  @Test("a container still FINISHED after two lost publishes is published a third time: a container publishes once")
  func lostPublishTwice() async throws {
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.lostResponse, MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.lostResponse, MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.ok(#"{"id":"1803"}"#), Self.permalink,
      ])
    #expect(try result.get().postId == "1803")
    let publishes = requests.filter { $0.path.hasSuffix("media_publish") }
    #expect(publishes.count == 3)
    #expect(publishes.allSatisfy { $0.form == ["creation_id": "c1"] })
  }

  @Test("a lost publish whose container status cannot be read ends outcome_unknown")
  func lostPublishUnknown() async throws {
    let (result, _) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.lostResponse,
        MetaTest.error(100, message: "(#100) nope"),
      ])
    #expect(result.error?.kind == .outcomeUnknown)
  }

  @Test("media not ready (9007) at publish proves rejection, so the publish is retried")
  func notReadyRetried() async throws {
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.error(9007, subcode: 2_207_027, message: "Media ID is not available"),
        MetaTest.ok(#"{"id":"1802"}"#), Self.permalink,
      ])
    #expect(try result.get().postId == "1802")
    #expect(requests.filter { $0.path.hasSuffix("media_publish") }.count == 2)
  }

  @Test("the daily publishing limit ends quota_exhausted without a retry")
  func publishingLimit() async throws {
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.error(9, subcode: 2_207_042, message: "(#9) Application request limit reached"),
      ])
    #expect(result.error?.kind == .quotaExhausted)
    #expect(requests.count == 3)
  }

  @Test("a failing permalink lookup does not fail a published post")
  func permalinkFailure() async throws {
    let (result, _) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1803"}"#),
        MetaTest.error(100, message: "(#100) nope"),
      ])
    #expect(try result.get() == PostResult(postId: "1803", postUrl: nil, status: .published))
  }

  @Test("Instagram Login tokens use graph.instagram.com")
  func instagramLoginHost() async throws {
    let credential = Credential(
      accessToken: MetaTest.igToken, expiresAt: Date().addingTimeInterval(30 * 86_400), accountId: "178414",
      variant: "instagram_login")
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1804"}"#),
        Self.permalink,
      ],
      credential: credential)
    #expect(try result.get().postId == "1804")
    #expect(requests.allSatisfy { $0.url.host == "graph.instagram.com" && $0.path.hasPrefix("/v26.0/") })
  }

  @Test("an Instagram Login token about to expire is refreshed once before posting, and the parent gets it")
  func staleTokenRefreshed() async throws {
    let stale = Credential(
      accessToken: MetaTest.igToken, expiresAt: Date().addingTimeInterval(60), accountId: "178414",
      variant: "instagram_login")
    let harness = MetaTest.harness(
      .instagram,
      [
        MetaTest.ok(#"{"access_token":"ig-token-NEW-SECRET-9","token_type":"bearer","expires_in":5183944}"#),
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1805"}"#),
        Self.permalink,
      ],
      credential: stale)
    let operation = try InstagramClient(environment: harness.environment).preparePublish(
      Params(["imageUrl": "https://cdn.example/a.jpg"]))
    _ = try await operation.run(harness.context(key))
    let requests = harness.transport.requests
    #expect(requests[0].url.host == "graph.instagram.com")
    #expect(requests[0].path == "/refresh_access_token")
    #expect(requests[0].query == ["grant_type": "ig_refresh_token", "access_token": MetaTest.igToken])
    #expect(requests[0].headers["Authorization"] == nil)
    #expect(requests.dropFirst().allSatisfy { $0.headers["Authorization"] == "Bearer ig-token-NEW-SECRET-9" })
    await harness.store.flushUpdates(timeout: .seconds(5))
    #expect(harness.credentials.updates.map(\.1.accessToken) == ["ig-token-NEW-SECRET-9"])
  }

  @Test("a Facebook Login token close to expiry is used as is: it cannot be refreshed")
  func facebookLoginNotRefreshed() async throws {
    let credential = Credential(
      accessToken: MetaTest.igToken, expiresAt: Date().addingTimeInterval(60), accountId: "178414")
    let (result, requests) = try await post(
      ["imageUrl": "https://cdn.example/a.jpg"],
      [
        MetaTest.ok(#"{"id":"c1"}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#), MetaTest.ok(#"{"id":"1806"}"#),
        Self.permalink,
      ],
      credential: credential)
    #expect(try result.get().postId == "1806")
    #expect(requests.count == 4)
  }
}

@Suite("Instagram params, validate and refresh")
struct MetaInstagramOtherTests {
  let key = MetaTest.key(.instagram)

  static let item: JSONValue = ["imageUrl": "https://cdn.example/1.jpg"]
  static let invalid: [([String: JSONValue], String?)] = [
    (["caption": "no media"], nil),
    (["items": [item]], "items"),
    (["items": .array(Array(repeating: item, count: 11))], "items"),
    (["items": [item, ["imageUrl": "https://a.example/x.jpg", "videoUrl": "https://a.example/x.mp4"]]], "items[1]"),
    (["items": [item, ["imageUrl": "http://a.example/x.jpg"]]], "items[1].imageUrl"),
    (["items": [item, ["link": "https://a.example"]]], "items[1].link"),
    (["caption": .string(String(repeating: "x", count: 2_201)), "imageUrl": "https://cdn.example/a.jpg"], "caption"),
    (
      ["caption": .string((1...31).map { "#t\($0)" }.joined(separator: " ")), "imageUrl": "https://cdn.example/a.jpg"],
      "caption"
    ),
    (["imageUrl": "http://cdn.example/a.jpg"], "imageUrl"),
    (["kind": "feed", "videoUrl": "https://cdn.example/v.mp4"], "kind"),
    (["kind": "reel", "imageUrl": "https://cdn.example/a.jpg"], "videoUrl"),
    (["kind": "story", "caption": "hi", "imageUrl": "https://cdn.example/a.jpg"], "caption"),
    (["kind": "carousel", "imageUrl": "https://cdn.example/a.jpg"], "items"),
    (["kind": "album", "imageUrl": "https://cdn.example/a.jpg"], "kind"),
    (["text": "hi", "imageUrl": "https://cdn.example/a.jpg"], "text"),
  ]

  @Test("content Instagram cannot take is refused before any request", arguments: invalid)
  func invalidParams(_ params: [String: JSONValue], field: String?) throws {
    let harness = MetaTest.harness(.instagram, [])
    #expect {
      _ = try InstagramClient(environment: harness.environment).preparePublish(Params(params))
    } throws: { error in
      (error as? InvalidParams)?.field == field
    }
  }

  @Test("refresh with a Facebook Login token is unsupported, with a sentence")
  func refreshFacebookLogin() async throws {
    let harness = MetaTest.harness(.instagram, [])
    let result = await MetaTest.run { () throws(SidecarError) in
      try await InstagramClient(environment: harness.environment).refresh(context: harness.context(key))
    }
    #expect(result.error?.kind == .unsupported)
    #expect(result.error?.message.contains("Facebook Login") == true)
    #expect(harness.transport.requests.isEmpty)
  }

  @Test("refresh with an Instagram Login token exchanges it and hands the new one to the parent")
  func refreshInstagramLogin() async throws {
    let credential = Credential(
      accessToken: MetaTest.igToken, expiresAt: Date().addingTimeInterval(20 * 86_400), accountId: "178414",
      variant: "instagram_login")
    let harness = MetaTest.harness(
      .instagram,
      [MetaTest.ok(#"{"access_token":"ig-token-NEW-SECRET-8","token_type":"bearer","expires_in":5184000}"#)],
      credential: credential)
    let before = Date()
    let result = try await InstagramClient(environment: harness.environment).refresh(context: harness.context(key))
    #expect(result.refreshed)
    let expiresAt = try #require(result.expiresAt)
    #expect(abs(expiresAt.timeIntervalSince(before) - 5_184_000) < 60)
    await harness.store.flushUpdates(timeout: .seconds(5))
    let update = try #require(harness.credentials.updates.first)
    #expect(update.1.accessToken == "ig-token-NEW-SECRET-8")
    #expect(update.1.variant == "instagram_login")
    #expect(update.1.accountId == "178414")
  }

  @Test("refresh of an expired Instagram Login token ends auth_failed telling to reconnect")
  func refreshExpired() async throws {
    let credential = Credential(accessToken: MetaTest.igToken, accountId: "178414", variant: "instagram_login")
    let harness = MetaTest.harness(
      .instagram, [MetaTest.error(190, subcode: 463, message: "Error validating access token: Session has expired")],
      credential: credential)
    let result = await MetaTest.run { () throws(SidecarError) in
      try await InstagramClient(environment: harness.environment).refresh(context: harness.context(key))
    }
    #expect(result.error?.kind == .authFailed)
    #expect(result.error?.message.contains("Reconnect the Instagram account") == true)
    #expect(harness.transport.requests.count == 1)
  }

  @Test("validate (Facebook Login): token scopes, the account, and the publishing quota")
  func validateFacebookLogin() async throws {
    let harness = MetaTest.harness(
      .instagram,
      [
        MetaTest.ok(
          #"{"data":{"is_valid":true,"type":"PAGE","expires_at":0,"#
            + #""scopes":["instagram_basic","instagram_content_publish","pages_read_engagement"]}}"#
        ),
        MetaTest.ok(#"{"id":"178414","username":"acme"}"#),
        MetaTest.ok(#"{"data":[{"quota_usage":50,"config":{"quota_total":50,"quota_duration":86400}}]}"#),
      ])
    let result = try await InstagramClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(result.valid)
    #expect(result.accountName == "acme")
    #expect(result.problems?.first?.contains("50 of 50") == true)
    let requests = harness.transport.requests
    #expect(
      requests.map(\.summary) == [
        "GET /v26.0/debug_token", "GET /v26.0/178414", "GET /v26.0/178414/content_publishing_limit",
      ])
    #expect(requests[2].query == ["fields": "config,quota_usage"])
  }

  @Test("validate (Instagram Login): a personal account cannot publish")
  func validateInstagramLogin() async throws {
    let credential = Credential(
      accessToken: MetaTest.igToken, expiresAt: Date().addingTimeInterval(30 * 86_400), accountId: "178414",
      variant: "instagram_login")
    let harness = MetaTest.harness(
      .instagram,
      [
        MetaTest.ok(#"{"user_id":"178414","username":"acme","account_type":"PERSONAL"}"#),
        MetaTest.ok(#"{"data":[{"quota_usage":1,"config":{"quota_total":50}}]}"#),
      ],
      credential: credential)
    let result = try await InstagramClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(!result.valid)
    #expect(result.problems?.first?.contains("professional") == true)
    #expect(
      harness.transport.requests.first?.url.absoluteString
        == "https://graph.instagram.com/v26.0/me?fields=user_id%2Cusername%2Caccount_type")
  }
}
