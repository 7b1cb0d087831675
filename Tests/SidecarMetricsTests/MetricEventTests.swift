import Foundation
import SidecarJSON
import SidecarLogging
import SidecarMetrics
import Testing

@Suite("metrics/event params")
struct MetricEventTests {
  static let alwaysPresent: Set<String> = [
    "eventId", "timestamp", "customerId", "agentId", "platform", "operation", "correlationId", "success", "attempts",
    "durationMs", "replayed",
  ]

  @Test("A published post carries its post id and URL, and null agent and correlation ids when unknown")
  func successFields() throws {
    let event = MetricEvent(
      eventId: "e-1", timestamp: Date(timeIntervalSince1970: 1_795_636_879.123), customerId: "cust-9",
      platform: "facebook", operation: "post", success: true, postId: "123_456",
      postUrl: "https://www.facebook.com/123_456", httpStatus: 200, attempts: 1, durationMs: 412.3456789)
    let members = try #require(event.json.objectValue)
    #expect(Set(members.keys) == Self.alwaysPresent.union(["postId", "postUrl", "httpStatus"]))
    #expect(
      event.json
        == [
          "eventId": "e-1", "timestamp": "2026-11-25T20:01:19.123Z", "customerId": "cust-9", "agentId": nil,
          "platform": "facebook", "operation": "post", "correlationId": nil, "success": true, "postId": "123_456",
          "postUrl": "https://www.facebook.com/123_456", "httpStatus": 200, "attempts": 1, "durationMs": 412.346,
          "replayed": false,
        ])
  }

  @Test("A failure carries its error fields and no post fields")
  func failureFields() throws {
    let event = MetricEvent(
      customerId: "cust-9", agentId: "agent-3", platform: "linkedin", operation: "post", correlationId: "corr-7",
      success: false, errorKind: "permanent", errorCode: -31001, errorMessage: "Content is a duplicate",
      httpStatus: 422, attempts: 1, durationMs: 88)
    let json = event.json
    #expect(
      Set(try #require(json.objectValue).keys)
        == Self.alwaysPresent.union(["errorKind", "errorCode", "errorMessage", "httpStatus"]))
    #expect(json["agentId"] == "agent-3")
    #expect(json["correlationId"] == "corr-7")
    #expect(json["errorKind"] == "permanent")
    #expect(json["errorCode"] == .int(-31001))
    #expect(json["httpStatus"] == .int(422))
    #expect(json["success"] == false)
  }

  @Test("A call refused before any request has only the fixed fields")
  func minimalFields() throws {
    let event = MetricEvent(
      customerId: "c", platform: "whatsapp", operation: "send", success: false, attempts: 0, durationMs: 0)
    #expect(Set(try #require(event.json.objectValue).keys) == Self.alwaysPresent)
  }

  @Test("The event survives serialization and a strict parser unchanged")
  func roundTrips() throws {
    let event = MetricEvent.test(success: false, errorKind: "rate_limited", customerId: "quote \" and \n newline")
    let bytes = event.json.serialized()
    let parsed = try JSONParser.parse(bytes)
    #expect(parsed.serialized() == bytes)
    #expect(parsed["customerId"] == "quote \" and \n newline")
  }

  @Test("Event ids are unique version-4 UUIDs over many events, also when made concurrently")
  func uniqueIds() async {
    let ids = await withTaskGroup(of: [String].self) { group in
      for _ in 0..<4 { group.addTask { (0..<50_000).map { _ in MetricEvent.test().eventId } } }
      return await group.reduce(into: []) { $0 += $1 }
    }
    #expect(Set(ids).count == 200_000)
    let version4 = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/
    #expect(ids.prefix(1_000).allSatisfy { $0.wholeMatch(of: version4) != nil && UUID(uuidString: $0) != nil })
  }

  @Test("The direct writer produces exactly json.serialized(), whatever the fields hold")
  func directWriterMatches() {
    var random = SeededGenerator(state: 3)
    let texts = [
      "", "plain", "quote \" back \\ slash", "line\nfeed\ttab\u{01}", "é 😀 日本", "https://x.example/p?a=1&b=2",
    ]
    func text() -> String? { Bool.random(using: &random) ? texts.randomElement(using: &random) : nil }
    for _ in 0..<2_000 {
      let event = MetricEvent(
        eventId: MetricEvent.newEventId(), timestamp: Date(timeIntervalSince1970: .random(in: 0...4e9, using: &random)),
        customerId: text() ?? "c", agentId: text(), platform: text() ?? "youtube", operation: text() ?? "post",
        correlationId: text(), success: .random(using: &random), postId: text(), postUrl: text(), errorKind: text(),
        errorCode: Bool.random(using: &random) ? -31_000 - .random(in: 0...13, using: &random) : nil,
        errorMessage: text(), httpStatus: Bool.random(using: &random) ? .random(in: 100...599, using: &random) : nil,
        attempts: .random(in: 0...5, using: &random),
        durationMs: [0, 1, 12.345_678_9, 1e-7, 119_999.999_5, 3e12].randomElement(using: &random)!,
        replayed: .random(using: &random))
      #expect(event.serializedJSON() == event.json.serialized(), "\(event)")
    }
  }

  @Test("Timestamps are RFC 3339 UTC with milliseconds, as the default clock gives them")
  func timestampShape() throws {
    let before = Date()
    let stamp = try #require(MetricEvent.test().json["timestamp"]?.stringValue)
    #expect(stamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
    let parsed = try Date(stamp, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    #expect(abs(parsed.timeIntervalSince(before)) < 60)
  }
}

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
  @Test(
    "Known instants",
    arguments: [
      (0.0, "1970-01-01T00:00:00.000Z"),
      (1_795_636_879.123, "2026-11-25T20:01:19.123Z"),
      (-0.001, "1969-12-31T23:59:59.999Z"),
      (951_782_400, "2000-02-29T00:00:00.000Z"),
      (1_709_251_199.9999, "2024-02-29T23:59:59.999Z"),
      (-2_203_891_200, "1900-03-01T00:00:00.000Z"),
      (4_133_937_600.5, "2100-12-31T12:00:00.500Z"),
      (1e15, "9999-12-31T23:59:59.999Z"),
    ])
  func known(seconds: Double, expected: String) {
    #expect(RFC3339.string(from: Date(timeIntervalSince1970: seconds)) == expected)
  }

  @Test("Agrees with the Gregorian calendar on random milliseconds from 1970 to 2100, never off by one ms")
  func agreesWithCalendar() throws {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
    var random = SeededGenerator(state: 7)
    for _ in 0..<2_000 {
      let millis = Int64.random(in: 0..<4_102_444_800_000, using: &random)
      let wholeSeconds = Date(timeIntervalSince1970: Double(millis / 1000))
      let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: wholeSeconds)
      let expected = String(
        format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.year!, parts.month!, parts.day!, parts.hour!,
        parts.minute!, parts.second!, Int(millis % 1000))
      #expect(RFC3339.string(from: Date(timeIntervalSince1970: Double(millis) / 1000)) == expected)
    }
  }
}
