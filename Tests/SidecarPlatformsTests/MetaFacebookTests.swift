import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import SidecarTestSupport
import Testing

@testable import SidecarPlatforms

@Suite("Facebook Pages publishing")
struct MetaFacebookPublishTests {
  let key = MetaTest.key(.facebook)

  /// - Parameter interruptedSince: the publish is taken over from a sidecar that died while publishing it.
  func post(
    _ params: [String: JSONValue], _ replies: [ScriptedTransport.Reply], interruptedSince: Date? = nil
  )
    async throws -> (Result<PostResult, SidecarError>, [ScriptedTransport.Recorded])
  {
    let harness = MetaTest.harness(.facebook, replies)
    let operation = try FacebookClient(environment: harness.environment).preparePublish(Params(params))
    let result = await MetaTest.run { () throws(SidecarError) in
      try await operation.run(harness.context(key, interruptedSince: interruptedSince))
    }
    return (result, harness.transport.requests)
  }

  @Test("an interrupted publish whose Page made more posts since its claim than one read returns is never sent")
  func interruptedBeyondFeedWindow() async throws {
    let now = GraphTimeFixture.now()
    let newer = Array(repeating: #"{"id":"111_2","message":"Other","created_time":"\#(now)"}"#, count: 100)
    let paging = #""paging":{"cursors":{"after":"QQ"},"next":"n"}"#
    let page = MetaTest.ok(#"{"data":[\#(newer.joined(separator: ","))],\#(paging)}"#)
    let (result, requests) = try await post(
      ["text": "Exactly this"], Array(repeating: page, count: 6), interruptedSince: Date().addingTimeInterval(-60))
    #expect(result.error?.kind == .outcomeUnknown)
    #expect(result.error?.message.contains("the 500 newest were all made after the publish started") == true)
    #expect(requests.map(\.summary) == Array(repeating: "GET /v26.0/111/feed", count: 5))
  }

  @Test("an interrupted publish whose send is refused as a duplicate (506) landed before: looked for, never refused")
  func interruptedDuplicate() async throws {
    let now = GraphTimeFixture.now()
    let (result, requests) = try await post(
      ["text": "Exactly this"],
      [
        MetaTest.ok(#"{"data":[]}"#), MetaTest.error(506, message: "(#506) Duplicate status message"),
        MetaTest.ok(#"{"data":[{"id":"111_3","message":"Exactly this","created_time":"\#(now)"}]}"#),
      ], interruptedSince: Date().addingTimeInterval(-60))
    #expect(try result.get().postId == "111_3")
    #expect(requests.map(\.summary) == ["GET /v26.0/111/feed", "POST /v26.0/111/feed", "GET /v26.0/111/feed"])
  }

  @Test("text and link go to /feed with read-after-write of the permalink")
  func textAndLink() async throws {
    let (result, requests) = try await post(
      ["text": "Hello world", "link": "https://example.com/a"],
      [MetaTest.ok(#"{"id":"111_222","permalink_url":"https://www.facebook.com/111/posts/222"}"#)])
    #expect(
      try result.get()
        == PostResult(postId: "111_222", postUrl: "https://www.facebook.com/111/posts/222", status: .published))
    let request = try #require(requests.first)
    #expect(requests.count == 1)
    #expect(request.method == "POST")
    #expect(request.url.host == "graph.facebook.com")
    #expect(request.path == "/v26.0/111/feed")
    #expect(request.query == ["fields": "id,permalink_url"])
    #expect(request.headers["Authorization"] == "Bearer \(MetaTest.pageToken)")
    #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded")
    #expect(request.form == ["message": "Hello world", "link": "https://example.com/a"])
  }

  @Test("no HTTP transport (libcurl missing) is permanent at the first attempt: nothing to retry, no breaker count")
  func noTransport() async throws {
    let missing = TransportError(.unavailable, requestSent: false, message: "cannot load libcurl: not found")
    let (result, requests) = try await post(["text": "Hi"], [.failure(missing)])
    let error = try #require(result.error)
    #expect(error.kind == .permanent)
    #expect(error.attempts == 1 && requests.count == 1)
    #expect(error.message.contains("no HTTP transport: cannot load libcurl"))
    #expect(error.failure?.classification == .permanent)
  }

  @Test("without permalink_url the post URL is built from the post id")
  func fallbackURL() async throws {
    let (result, _) = try await post(["text": "Hi"], [MetaTest.ok(#"{"id":"111_9"}"#)])
    #expect(try result.get().postUrl == "https://www.facebook.com/111_9")
  }

  @Test("one photo goes to /photos with the text as caption")
  func photo() async throws {
    let (result, requests) = try await post(
      ["text": "Look", "imageUrl": "https://cdn.example/a.jpg"], [MetaTest.ok(#"{"id":"555","post_id":"111_556"}"#)])
    #expect(
      try result.get() == PostResult(postId: "111_556", postUrl: "https://www.facebook.com/111_556", status: .published)
    )
    #expect(requests.map(\.summary) == ["POST /v26.0/111/photos"])
    #expect(requests[0].form == ["url": "https://cdn.example/a.jpg", "caption": "Look"])
  }

  @Test("several photos are uploaded unpublished, then attached to one feed post")
  func album() async throws {
    let (result, requests) = try await post(
      ["text": "Album", "imageUrls": ["https://cdn.example/1.jpg", "https://cdn.example/2.jpg"]],
      [MetaTest.ok(#"{"id":"701"}"#), MetaTest.ok(#"{"id":"702"}"#), MetaTest.ok(#"{"id":"111_800"}"#)])
    #expect(try result.get().postId == "111_800")
    #expect(requests.map(\.summary) == ["POST /v26.0/111/photos", "POST /v26.0/111/photos", "POST /v26.0/111/feed"])
    #expect(requests[0].form == ["url": "https://cdn.example/1.jpg", "published": "false"])
    #expect(requests[1].form == ["url": "https://cdn.example/2.jpg", "published": "false"])
    #expect(
      requests[2].form == [
        "message": "Album", "attached_media[0]": #"{"media_fbid":"701"}"#,
        "attached_media[1]": #"{"media_fbid":"702"}"#,
      ])
  }

  @Test("an unpublished photo upload that fails transiently is retried; the feed post is sent once")
  func albumRetriesPreparation() async throws {
    let (result, requests) = try await post(
      ["text": "Album", "imageUrls": ["https://cdn.example/1.jpg", "https://cdn.example/2.jpg"]],
      [
        MetaTest.ok(#"{"id":"701"}"#), MetaTest.lostResponse, MetaTest.ok(#"{"id":"703"}"#),
        MetaTest.ok(#"{"id":"111_800"}"#),
      ])
    #expect(try result.get().postId == "111_800")
    #expect(requests.count == 4)
    #expect(requests[3].form["attached_media[1]"] == #"{"media_fbid":"703"}"#)
  }

  @Test("a video goes to graph-video /videos with file_url and is still processing")
  func video() async throws {
    let (result, requests) = try await post(
      ["text": "Clip", "videoUrl": "https://cdn.example/v.mp4"], [MetaTest.ok(#"{"id":"9001"}"#)])
    #expect(
      try result.get()
        == PostResult(postId: "9001", postUrl: "https://www.facebook.com/111/videos/9001", status: .processing))
    #expect(requests[0].url.host == "graph-video.facebook.com")
    #expect(requests[0].path == "/v26.0/111/videos")
    #expect(requests[0].form == ["file_url": "https://cdn.example/v.mp4", "description": "Clip"])
  }

  @Test("a reel: start, hosted upload with OAuth, status until uploaded, finish as a publish")
  func reel() async throws {
    let (result, requests) = try await post(
      ["kind": "reel", "text": "Reel!", "videoUrl": "https://cdn.example/r.mp4"],
      [
        MetaTest.ok(#"{"video_id":"777","upload_url":"https://rupload.facebook.com/video-upload/v26.0/777"}"#),
        MetaTest.ok(#"{"success":true}"#),
        MetaTest.ok(#"{"id":"777","status":{"video_status":"processing","uploading_phase":{"status":"in_progress"}}}"#),
        MetaTest.ok(
          #"{"id":"777","status":{"video_status":"upload_complete","uploading_phase":{"status":"complete"}}}"#),
        MetaTest.ok(#"{"success":true}"#),
      ])
    #expect(
      try result.get() == PostResult(postId: "777", postUrl: "https://www.facebook.com/reel/777", status: .processing))
    #expect(
      requests.map(\.summary) == [
        "POST /v26.0/111/video_reels", "POST /video-upload/v26.0/777", "GET /v26.0/777", "GET /v26.0/777",
        "POST /v26.0/111/video_reels",
      ])
    #expect(requests[0].form == ["upload_phase": "start"])
    #expect(requests[1].headers["Authorization"] == "OAuth \(MetaTest.pageToken)")
    #expect(requests[1].headers["file_url"] == "https://cdn.example/r.mp4")
    #expect(requests[1].body.isEmpty)
    #expect(requests[2].query == ["fields": "status"])
    #expect(
      requests[4].form == [
        "upload_phase": "finish", "video_id": "777", "video_state": "PUBLISHED", "description": "Reel!",
      ])
  }

  @Test("an upload_url on a foreign plain-http host is refused: the token is not sent there")
  func untrustedUploadHost() async throws {
    let (result, requests) = try await post(
      ["kind": "reel", "videoUrl": "https://cdn.example/r.mp4"],
      [MetaTest.ok(#"{"video_id":"777","upload_url":"http://evil.example/steal"}"#)])
    #expect(result.error?.kind == .permanent)
    #expect(requests.count == 1)
  }

  @Test("a photo story: unpublished photo, then photo_stories")
  func photoStory() async throws {
    let (result, requests) = try await post(
      ["kind": "story", "imageUrl": "https://cdn.example/s.jpg"],
      [MetaTest.ok(#"{"id":"601"}"#), MetaTest.ok(#"{"success":true,"post_id":"7001"}"#)])
    #expect(try result.get() == PostResult(postId: "7001", postUrl: nil, status: .published))
    #expect(requests.map(\.summary) == ["POST /v26.0/111/photos", "POST /v26.0/111/photo_stories"])
    #expect(requests[0].form == ["url": "https://cdn.example/s.jpg", "published": "false"])
    #expect(requests[1].form == ["photo_id": "601"])
  }

  @Test("a video story: start, upload, status, finish")
  func videoStory() async throws {
    let (result, requests) = try await post(
      ["kind": "story", "videoUrl": "https://cdn.example/s.mp4"],
      [
        MetaTest.ok(#"{"video_id":"778","upload_url":"https://rupload.facebook.com/video-upload/v26.0/778"}"#),
        MetaTest.ok(#"{"success":true}"#),
        MetaTest.ok(
          #"{"id":"778","status":{"video_status":"upload_complete","uploading_phase":{"status":"complete"}}}"#),
        MetaTest.ok(#"{"success":true,"post_id":"7002"}"#),
      ])
    #expect(try result.get() == PostResult(postId: "7002", postUrl: nil, status: .published))
    #expect(requests.last?.path == "/v26.0/111/video_stories")
    #expect(requests.last?.form == ["upload_phase": "finish", "video_id": "778"])
  }

  @Test("a lost feed publish is not resent; the post found in the feed is the answer")
  func feedReconciled() async throws {
    let now = GraphTimeFixture.now()
    let (result, requests) = try await post(
      ["text": "Exactly this"],
      [
        MetaTest.lostResponse,
        MetaTest.ok(
          #"{"data":[{"id":"111_5","message":"Other","created_time":"\#(now)"},"#
            + #"{"id":"111_6","message":"Exactly this","created_time":"\#(now)","#
            + #""permalink_url":"https://www.facebook.com/111/posts/6"}]}"#
        ),
      ])
    #expect(
      try result.get()
        == PostResult(postId: "111_6", postUrl: "https://www.facebook.com/111/posts/6", status: .published))
    #expect(requests.map(\.summary) == ["POST /v26.0/111/feed", "GET /v26.0/111/feed"])
    #expect(requests[1].query == ["fields": "id,message,created_time,permalink_url", "limit": "100"])
  }

  @Test("an unknown error whose text is not in the feed (or only in an old post) is sent once more")
  func feedNotFoundResent() async throws {
    let oldPost = MetaTest.ok(
      #"{"data":[{"id":"111_1","message":"Exactly this","created_time":"2020-01-01T00:00:00+0000"}]}"#)
    let (result, requests) = try await post(
      ["text": "Exactly this"],
      [MetaTest.error(1, message: "An unknown error occurred", status: 500), oldPost, MetaTest.ok(#"{"id":"111_7"}"#)])
    #expect(try result.get().postId == "111_7")
    #expect(requests.map(\.summary) == ["POST /v26.0/111/feed", "GET /v26.0/111/feed", "POST /v26.0/111/feed"])
  }

  @Test("a publish not found after its third unknown outcome ends outcome_unknown, saying what was checked")
  func feedNotFound() async throws {
    let empty = MetaTest.ok(#"{"data":[]}"#)
    let (result, requests) = try await post(
      ["text": "Exactly this"],
      [
        MetaTest.error(1, message: "An unknown error occurred", status: 500), empty, MetaTest.lostResponse, empty,
        MetaTest.error(2, message: "An unexpected error has occurred", status: 500), empty,
      ])
    let error = try #require(result.error)
    #expect(error.kind == .outcomeUnknown)
    #expect(error.message.contains("The Page's feed posts made since the publish started showed no such post after it"))
    #expect(error.message.contains("was sent 3 times"))
    let round = ["POST /v26.0/111/feed", "GET /v26.0/111/feed"]
    #expect(requests.map(\.summary) == Array(repeating: round, count: 3).flatMap { $0 })
  }

  @Test("a second send refused as a duplicate (506) proves the first landed: the post found then is the answer")
  func resentDuplicate() async throws {
    let now = GraphTimeFixture.now()
    let (result, requests) = try await post(
      ["text": "Exactly this"],
      [
        MetaTest.lostResponse, MetaTest.ok(#"{"data":[]}"#),
        MetaTest.error(506, message: "(#506) Duplicate status message"),
        MetaTest.ok(#"{"data":[{"id":"111_8","message":"Exactly this","created_time":"\#(now)"}]}"#),
      ])
    #expect(try result.get().postId == "111_8")
    #expect(requests.filter { $0.method == "POST" }.count == 2)
  }

  @Test("a feed post accepted with an unreadable answer is looked for, never sent again")
  func acceptedNotResent() async throws {
    let (result, requests) = try await post(
      ["text": "Exactly this"],
      [ScriptedTransport.json(200, #"{"id":"111_"#), MetaTest.ok(#"{"data":[]}"#)])
    #expect(result.error?.kind == .outcomeUnknown)
    #expect(requests.map(\.summary) == ["POST /v26.0/111/feed", "GET /v26.0/111/feed"])
  }

  @Test("a lost reel finish is confirmed by the video's publishing phase")
  func reelReconciled() async throws {
    let (result, requests) = try await post(
      ["kind": "reel", "videoUrl": "https://cdn.example/r.mp4"],
      [
        MetaTest.ok(#"{"video_id":"777","upload_url":"https://rupload.facebook.com/video-upload/v26.0/777"}"#),
        MetaTest.ok(#"{"success":true}"#),
        MetaTest.ok(#"{"status":{"uploading_phase":{"status":"complete"}}}"#),
        MetaTest.lostResponse,
        MetaTest.ok(#"{"status":{"publishing_phase":{"status":"complete","publish_status":"published"}}}"#),
      ])
    #expect(try result.get().postId == "777")
    #expect(requests.filter { $0.path == "/v26.0/111/video_reels" }.count == 2)
  }

  @Test("a lost photo story cannot be looked up: outcome_unknown after one publish")
  func storyUnknown() async throws {
    let (result, requests) = try await post(
      ["kind": "story", "imageUrl": "https://cdn.example/s.jpg"],
      [MetaTest.ok(#"{"id":"601"}"#), MetaTest.lostResponse])
    #expect(result.error?.kind == .outcomeUnknown)
    #expect(requests.count == 2)
  }

  @Test("an expired token ends auth_failed after one request, telling the user to reconnect")
  func expiredToken() async throws {
    let (result, requests) = try await post(
      ["text": "Hi"],
      [MetaTest.error(190, subcode: 463, message: "Error validating access token: Session has expired on Monday.")])
    let error = try #require(result.error)
    #expect(error.kind == .authFailed)
    #expect(error.message.contains("Reconnect the Facebook account"))
    #expect(requests.count == 1)
  }

  @Test("(#100) is permanent with Meta's code and subcode in the failure")
  func invalidParameter() async throws {
    let (result, requests) = try await post(
      ["text": "Hi"], [MetaTest.error(100, subcode: 33, message: "(#100) Unsupported post request.")])
    let error = try #require(result.error)
    #expect(error.kind == .permanent)
    #expect(error.failure?.platformCode == .int(100))
    #expect(error.failure?.platformSubcode == 33)
    #expect(error.failure?.httpStatus == 400)
    #expect(error.message.contains("code 100, subcode 33"))
    #expect(requests.count == 1)
  }
}

@Suite("Facebook params, validate and refresh")
struct MetaFacebookOtherTests {
  let key = MetaTest.key(.facebook)

  static let invalid: [([String: JSONValue], String)] = [
    ([:], "text"),
    (["text": ""], "text"),
    (["captoin": "x", "text": "a"], "captoin"),
    (["text": "a", "kind": "carousel"], "kind"),
    (["imageUrl": "http://cdn.example/a.jpg"], "imageUrl"),
    (["imageUrl": "ftp://cdn.example/a.jpg"], "imageUrl"),
    (["imageUrls": ["https://cdn.example/1.jpg"]], "imageUrls"),
    (["imageUrls": .array(Array(repeating: "https://cdn.example/1.jpg", count: 11))], "imageUrls"),
    (["imageUrls": ["https://cdn.example/1.jpg", "http://cdn.example/2.jpg"]], "imageUrls[1]"),
    (["text": "a", "link": "not a url"], "link"),
    (["link": "https://example.com", "imageUrl": "https://cdn.example/a.jpg"], "link"),
    (["kind": "reel", "imageUrl": "https://cdn.example/a.jpg"], "videoUrl"),
    (["kind": "story", "text": "hi", "imageUrl": "https://cdn.example/a.jpg"], "text"),
    (["text": .string(String(repeating: "x", count: 63_207))], "text"),
  ]

  @Test("content Facebook cannot take is refused before any request", arguments: invalid)
  func invalidParams(_ params: [String: JSONValue], field: String) throws {
    let harness = MetaTest.harness(.facebook, [])
    #expect {
      _ = try FacebookClient(environment: harness.environment).preparePublish(Params(params))
    } throws: { error in
      (error as? InvalidParams)?.field == field
    }
  }

  @Test("two media kinds at once are refused with a sentence")
  func twoMedia() throws {
    let harness = MetaTest.harness(.facebook, [])
    do {
      _ = try FacebookClient(environment: harness.environment).preparePublish(
        Params(["imageUrl": "https://a.example/1.jpg", "videoUrl": "https://a.example/1.mp4"]))
      Issue.record("accepted two media")
    } catch {
      #expect(error.reason.contains("not several"))
    }
  }

  @Test("validate inspects the token and reads the Page; permissions present → valid")
  func validateOK() async throws {
    let harness = MetaTest.harness(
      .facebook,
      [
        MetaTest.ok(
          #"{"data":{"is_valid":true,"type":"PAGE","profile_id":"111","expires_at":0,"#
            + #""scopes":["pages_manage_posts","pages_read_engagement","publish_video"],"#
            + #""granular_scopes":[{"scope":"pages_manage_posts","target_ids":["111"]}]}}"#
        ),
        MetaTest.ok(#"{"id":"111","name":"Acme Page"}"#),
      ])
    let result = try await FacebookClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(
      result
        == ValidationResult(
          valid: true, accountId: "111", accountName: "Acme Page",
          scopes: ["pages_manage_posts", "pages_read_engagement", "publish_video"]))
    let requests = harness.transport.requests
    #expect(requests.map(\.summary) == ["GET /v26.0/debug_token", "GET /v26.0/111"])
    #expect(requests[0].query == ["input_token": MetaTest.pageToken])
    #expect(requests[1].query == ["fields": "id,name,link"])
  }

  @Test("validate names missing permissions, including one granted only for another Page")
  func validateMissing() async throws {
    let harness = MetaTest.harness(
      .facebook,
      [
        MetaTest.ok(
          #"{"data":{"is_valid":true,"type":"PAGE","expires_at":0,"scopes":["pages_manage_posts","publish_video"],"#
            + #""granular_scopes":[{"scope":"pages_manage_posts","target_ids":["999"]}]}}"#
        ),
        MetaTest.ok(#"{"id":"111","name":"Acme Page"}"#),
      ])
    let result = try await FacebookClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(!result.valid)
    #expect(result.missing == ["pages_manage_posts", "pages_read_engagement"])
  }

  @Test("validate with a user token checks the Page tasks for CREATE_CONTENT")
  func validateUserTokenTasks() async throws {
    let harness = MetaTest.harness(
      .facebook,
      [
        MetaTest.ok(
          #"{"data":{"is_valid":true,"type":"USER","expires_at":1900000000,"#
            + #""scopes":["pages_manage_posts","pages_read_engagement","publish_video"]}}"#
        ),
        MetaTest.ok(#"{"id":"111","name":"Acme Page"}"#),
        MetaTest.ok(#"{"data":[{"id":"111","name":"Acme Page","tasks":["ANALYZE","ADVERTISE"]}]}"#),
      ])
    let result = try await FacebookClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(!result.valid)
    #expect(result.missing == ["CREATE_CONTENT"])
    #expect(result.expiresAt == Date(timeIntervalSince1970: 1_900_000_000))
    #expect(harness.transport.requests.last?.path == "/v26.0/me/accounts")
  }

  @Test("validate with a dead token answers valid: false with the reconnect sentence")
  func validateDeadToken() async throws {
    let harness = MetaTest.harness(
      .facebook, [MetaTest.error(190, subcode: 460, message: "Error validating access token: password changed")])
    let result = try await FacebookClient(environment: harness.environment).validate(context: harness.context(key))
    #expect(!result.valid)
    #expect(result.problems?.first?.contains("Reconnect the Facebook account") == true)
  }

  @Test("refresh says Page tokens cannot be refreshed")
  func refreshUnsupported() async throws {
    let harness = MetaTest.harness(.facebook, [])
    let result = await MetaTest.run { () throws(SidecarError) in
      try await FacebookClient(environment: harness.environment).refresh(context: harness.context(key))
    }
    #expect(result.error?.kind == .unsupported)
    #expect(result.error?.message.contains("reconnect") == true)
    #expect(harness.transport.requests.isEmpty)
  }
}

enum GraphTimeFixture {
  /// Now, in Meta's timestamp form.
  static func now() -> String {
    let seconds = Int(Date().timeIntervalSince1970)
    let days = seconds / 86_400
    let rest = seconds % 86_400
    // civil_from_days (Howard Hinnant).
    let z = days + 719_468
    let era = z / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
    return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest % 3600 / 60)):\(two(rest % 60))+0000"
  }
}
