import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience
import SidecarTestSupport
import Testing

@testable import SidecarPlatforms

@Suite("publishAt: native scheduling windows, on an injected clock")
struct SchedulingWindowTests {
  /// The wall clock the harness's ManualClock reports.
  static let now = Date(timeIntervalSince1970: 1_700_000_000)
  let clock = ManualClock(wallNow: SchedulingWindowTests.now)

  func at(_ seconds: TimeInterval) -> JSONValue { .string(RFC3339.string(from: Self.now.addingTimeInterval(seconds))) }

  func facebook(_ publishAt: JSONValue, _ replies: [ScriptedTransport.Reply] = []) -> (
    FacebookClient, TestHarness, Params
  ) {
    let harness = MetaTest.harness(.facebook, replies, clock: clock)
    return (
      FacebookClient(environment: harness.environment), harness, Params(["text": "later", "publishAt": publishAt])
    )
  }

  static let facebookCases: [(seconds: TimeInterval, accepted: Bool)] = [
    (-60, false), (540, false), (600, true), (2_505_600, true), (2_592_000, true), (2_592_060, false),
  ]

  @Test(
    "Facebook takes 10 minutes to 30 days ahead and refuses either side, saying the window",
    arguments: SchedulingWindowTests.facebookCases)
  func facebookWindow(seconds: TimeInterval, accepted: Bool) throws {
    let (client, _, params) = facebook(at(seconds))
    do {
      _ = try client.preparePublish(params)
      #expect(accepted)
    } catch {
      #expect(!accepted)
      #expect(error.field == "publishAt")
      #expect(error.reason.contains("between 10 minutes and 30 days"))
    }
  }

  @Test("a scheduled Facebook post goes to the feed unpublished with its time, and answers scheduled")
  func facebookScheduledFeed() async throws {
    let (client, harness, params) = facebook(at(3600), [MetaTest.ok(#"{"id":"111_5"}"#)])
    let operation = try client.preparePublish(params)
    let result = try await operation.run(harness.context(MetaTest.key(.facebook)))
    #expect(result.status == .scheduled && result.postId == "111_5")
    let request = try #require(harness.transport.requests.first)
    #expect(request.path.hasSuffix("/111/feed"))
    #expect(
      request.form == ["message": "later", "published": "false", "scheduled_publish_time": String(1_700_003_600)])
  }

  @Test("Facebook schedules feed posts only: a reel with publishAt is refused up front")
  func facebookReelNotSchedulable() throws {
    let harness = MetaTest.harness(.facebook, [], clock: clock)
    #expect(throws: InvalidParams.self) {
      _ = try FacebookClient(environment: harness.environment).preparePublish(
        Params(["kind": "reel", "videoUrl": "https://cdn.example/v.mp4", "publishAt": at(3600)]))
    }
  }

  @Test("YouTube takes a time at least a minute ahead and needs the video private")
  func youtubeWindow() throws {
    let harness = TestHarness(transport: ScriptedTransport(), credentials: [:], clock: clock)
    let client = YouTubeClient(environment: harness.environment)
    let video: [String: JSONValue] = ["title": "Premiere", "videoUrl": "https://cdn.example/v.mp4"]
    var params = video
    params["publishAt"] = at(30)
    let early = #expect(throws: InvalidParams.self) { _ = try client.preparePublish(Params(params)) }
    #expect(early?.field == "publishAt" && early?.reason.contains("30 seconds from now") == true)
    params["publishAt"] = at(86_400)
    _ = try client.preparePublish(Params(params))
    params["privacyStatus"] = "unlisted"
    do {
      _ = try client.preparePublish(Params(params))
      Issue.record("an unlisted video with publishAt was accepted")
    } catch {
      #expect(error.field == "privacyStatus")
    }
  }
}

@Suite("RFC 3339 parsing")
struct RFC3339ParsingTests {
  static let cases: [(text: String, seconds: Double)] = [
    ("2026-12-24T18:00:00Z", 1_798_135_200), ("2026-12-24T19:30:00+01:30", 1_798_135_200),
    ("2026-12-24t13:00:00-05:00", 1_798_135_200), ("2026-12-24T18:00:00.250Z", 1_798_135_200.25),
    ("1970-01-01T00:00:00Z", 0),
  ]

  @Test("UTC, offsets and fractions", arguments: RFC3339ParsingTests.cases)
  func parses(text: String, seconds: Double) {
    #expect(RFC3339.date(from: text) == Date(timeIntervalSince1970: seconds))
  }

  @Test(
    "anything else is nil",
    arguments: [
      "tomorrow", "2026-12-24 18:00:00Z", "2026-12-24T18:00:00", "2026-13-01T00:00:00Z", "2026-12-24T18:00:00.Z",
      "2026-12-24T18:00:00+0100", "2026-12-24T25:00:00Z",
    ])
  func refuses(text: String) {
    #expect(RFC3339.date(from: text) == nil)
  }

  @Test("what RFC3339.string writes parses back")
  func roundTrip() {
    let date = Date(timeIntervalSince1970: 1_764_630_000.123)
    #expect(abs(RFC3339.date(from: RFC3339.string(from: date))!.timeIntervalSince(date)) < 0.001)
  }
}

@Suite("Facebook delete and status")
struct FacebookPostOperationTests {
  @Test("a post Graph no longer knows is deleted: false with the reason, not an error")
  func alreadyGone() async throws {
    let harness = MetaTest.harness(.facebook, [MetaTest.error(100, subcode: 33)])
    let result = try await FacebookClient(environment: harness.environment).delete(
      postId: "111_2", context: harness.context(MetaTest.key(.facebook)))
    #expect(result == DeleteResult(deleted: false, reason: result.reason))
    #expect(result.reason?.contains("111_2") == true)
    #expect(harness.transport.requests.first?.method == "DELETE")
  }

  @Test("a scheduled post's status says when it goes out")
  func scheduledStatus() async throws {
    let harness = MetaTest.harness(
      .facebook,
      [
        MetaTest.ok(
          #"{"id":"111_2","is_published":false,"scheduled_publish_time":1798135200,"#
            + #""permalink_url":"https://www.facebook.com/111/posts/2"}"#)
      ])
    let status = try await FacebookClient(environment: harness.environment).status(
      postId: "111_2", context: harness.context(MetaTest.key(.facebook)))
    #expect(status.state == .scheduled)
    #expect(status.detail?.contains("2026-12-24T18:00:00") == true)
  }
}
