import Foundation
import SidecarHTTP
import SidecarJSON
@testable import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport
import Synchronization
import Testing

/// YouTube's side of the resumable upload protocol: sessions, chunks answered with 308 + `Range`, status queries,
/// completion, token checks and the token endpoint, with faults injected on chosen chunk requests.
final class YouTubeSimulator: Sendable {
  enum Fault: Sendable {
    /// The chunk is stored, then the connection drops before the answer.
    case dropAfterStoring
    /// The chunk is stored, then the server answers 503.
    case errorAfterStoring
    /// The chunk is refused with 503 before anything is stored.
    case errorBeforeStoring
    /// 401 authError: the access token expired mid-upload.
    case expiredToken
    /// 200 with a body that is not JSON, the chunk stored or not.
    case unreadable(stored: Bool)
  }

  struct State {
    var sessions = 0
    var received = Data()
    var total = 0
    var videos = 0
    var chunkRequests = 0
    var tokenRequests = 0
    var validToken: String
  }

  let faults: [Int: Fault]
  let state: Mutex<State>
  static let session = "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&upload_id=SESSION-1"

  init(validToken: String = "ya29.valid", faults: [Int: Fault] = [:]) {
    self.faults = faults
    state = Mutex(State(validToken: validToken))
  }

  var snapshot: State { state.withLock { $0 } }

  func reply(_ request: HTTPRequest) -> ScriptedTransport.Reply {
    if request.url.path == "/token" {
      let token = state.withLock { state -> String in
        state.tokenRequests += 1
        state.validToken = "ya29.refreshed-\(state.tokenRequests)"
        return state.validToken
      }
      return ScriptedTransport.json(200, #"{"access_token":"\#(token)","expires_in":3599,"token_type":"Bearer"}"#)
    }
    let valid = state.withLock { $0.validToken }
    guard request.headers["Authorization"] == "Bearer \(valid)" else {
      return ScriptedTransport.json(
        401,
        #"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError","domain":"global"}]}}"#)
    }
    if request.method == "POST" {
      state.withLock { state in
        state.sessions += 1
        state.total = Int(request.headers["X-Upload-Content-Length"] ?? "") ?? -1
      }
      return .response(HTTPResponse(status: 200, headers: ["Location": Self.session]))
    }
    let range = request.headers["Content-Range"] ?? ""
    if range.hasPrefix("bytes */") { return state.withLock { progress(&$0) } }
    let bytes = Self.body(request.body)
    let start = Int(range.dropFirst("bytes ".count).prefix { $0 != "-" }) ?? -1
    return state.withLock { state -> ScriptedTransport.Reply in
      state.chunkRequests += 1
      let fault = faults[state.chunkRequests]
      switch fault {
      case .errorBeforeStoring?:
        return ScriptedTransport.json(
          503, #"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#)
      case .expiredToken?:
        state.validToken = "ya29.expired-now"
        return ScriptedTransport.json(
          401, #"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}"#)
      case .unreadable(stored: false)?:
        return .response(HTTPResponse(status: 200, body: Data(#"{"id":"12"#.utf8)))
      default:
        break
      }
      if start <= state.received.count && start + bytes.count > state.received.count {
        state.received.append(bytes.suffix(start + bytes.count - state.received.count))
      }
      let answer = progress(&state)
      switch fault {
      case .dropAfterStoring?:
        return .failure(TransportError(.other, requestSent: true, message: "connection reset by peer"))
      case .errorAfterStoring?:
        return ScriptedTransport.json(
          503, #"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#)
      case .unreadable(stored: true)?:
        return .response(HTTPResponse(status: 200, body: Data(#"{"id":"12"#.utf8)))
      default:
        return answer
      }
    }
  }

  private func progress(_ state: inout State) -> ScriptedTransport.Reply {
    if state.received.count == state.total {
      if state.videos == 0 { state.videos = 1 }
      return ScriptedTransport.json(
        201,
        #"{"kind":"youtube#video","id":"dQw4w9WgXcQ","status":{"uploadStatus":"uploaded","privacyStatus":"public"}}"#)
    }
    let headers: HTTPHeaders = state.received.isEmpty ? [:] : ["Range": "bytes=0-\(state.received.count - 1)"]
    return .response(HTTPResponse(status: 308, headers: headers))
  }

  static func body(_ body: HTTPBody) -> Data {
    switch body {
    case .empty: return Data()
    case .bytes(let data): return data
    case .file(let path, let offset, let length):
      let handle = FileHandle(forReadingAtPath: path)!
      defer { try? handle.close() }
      try? handle.seek(toOffset: UInt64(offset))
      return handle.readData(ofLength: Int(length))
    }
  }
}

@Suite("YouTube")
struct YouTubeClientTests {
  static let key = CredentialKey(platform: .youtube, credentialRef: "yt-ref", customerId: "cust-1")
  static let chunk: Int64 = 256 << 10

  static func credential(token: String = "ya29.valid", expiresAt: Date = Date().addingTimeInterval(3600)) -> Credential
  {
    Credential(
      accessToken: token, refreshToken: "1//refresh-secret", expiresAt: expiresAt, accountId: "UCchannel0001",
      clientId: "client-id.apps", clientSecret: "client-secret-xyz")
  }

  /// A video file of `size` seeded bytes; removed when the test's scope ends.
  static func videoFile(size: Int, name: String = "clip.mp4") throws -> String {
    let directory = NSTemporaryDirectory() + "yt-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
    let path = directory + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
  }

  func post(_ client: YouTubeClient, _ harness: TestHarness, _ values: [String: JSONValue]) async throws -> PostResult {
    try await client.preparePublish(Params(values)).run(harness.context(Self.key))
  }

  @Test("the session request announces the video with the documented headers and metadata")
  func sessionRequest() async throws {
    let path = try Self.videoFile(size: 1000)
    let simulator = YouTubeSimulator()
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(
      client, harness,
      [
        "title": "Launch day", "description": "Our new thing", "videoPath": .string(path),
        "tags": ["launch", "news day"],
        "privacyStatus": "unlisted", "categoryId": "28", "madeForKids": false,
      ])

    let session = transport.requests[0]
    #expect(session.method == "POST")
    #expect(
      session.url.absoluteString
        == "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status")
    #expect(session.headers["Authorization"] == "Bearer ya29.valid")
    #expect(session.headers["X-Upload-Content-Length"] == "1000")
    #expect(session.headers["X-Upload-Content-Type"] == "video/mp4")
    #expect(session.headers["Content-Type"] == "application/json; charset=UTF-8")
    // The last tag is this upload's marker, which finds it among the channel's uploads if the answer is lost.
    let marker = try #require(session.json?["snippet"]?["tags"]?.arrayValue?.last?.stringValue)
    #expect(marker.hasPrefix("sidecar-") && marker.count == "sidecar-".count + 16)
    #expect(
      session.json
        == [
          "snippet": [
            "title": "Launch day", "description": "Our new thing", "tags": ["launch", "news day", .string(marker)],
            "categoryId": "28",
          ],
          "status": ["privacyStatus": "unlisted", "selfDeclaredMadeForKids": false],
        ])
    let upload = transport.requests[1]
    #expect(upload.method == "PUT")
    #expect(upload.url.absoluteString == YouTubeSimulator.session)
    #expect(upload.headers["Content-Range"] == "bytes 0-999/1000")
    #expect(upload.headers["Content-Type"] == "video/mp4")
    #expect(transport.requests.count == 2)
    #expect(result.postId == "dQw4w9WgXcQ" && result.status == .processing)
    // The simulator answers public: what YouTube did is reported, not what was asked.
    #expect(result.privacyStatus == "public" && result.warnings.count == 1)
  }

  @Test("a multi-chunk upload sends every byte once, in 256 KiB multiples, and the bytes arrive intact")
  func multiChunk() async throws {
    let size = Int(Self.chunk) * 3 + 1000
    let path = try Self.videoFile(size: size)
    let simulator = YouTubeSimulator()
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "Chunks", "videoPath": .string(path)])

    let puts = transport.requests.filter { $0.method == "PUT" }
    #expect(
      puts.map { $0.headers["Content-Range"] ?? "" } == [
        "bytes 0-262143/787432", "bytes 262144-524287/787432", "bytes 524288-786431/787432",
        "bytes 786432-787431/787432",
      ])
    let file = try Data(contentsOf: URL(fileURLWithPath: path))
    #expect(puts.reduce(Data()) { $0 + $1.body } == file)
    #expect(simulator.snapshot.received == file)
    #expect(result.postId == "dQw4w9WgXcQ")
  }

  @Test("an upload interrupted after some chunks asks where it stands and resumes there, in the same session")
  func resumesAfterDrop() async throws {
    let size = Int(Self.chunk) * 4
    let path = try Self.videoFile(size: size)
    let simulator = YouTubeSimulator(faults: [2: .dropAfterStoring])
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "Resume", "videoPath": .string(path)])

    #expect(transport.requests.filter { $0.method == "POST" }.count == 1)
    #expect(
      transport.requests.map { "\($0.method) \($0.headers["Content-Range"] ?? "")" } == [
        "POST ", "PUT bytes 0-262143/1048576", "PUT bytes 262144-524287/1048576", "PUT bytes */1048576",
        "PUT bytes 524288-786431/1048576", "PUT bytes 786432-1048575/1048576",
      ])
    #expect(simulator.snapshot.received == (try Data(contentsOf: URL(fileURLWithPath: path))))
    #expect(simulator.snapshot.sessions == 1)
    #expect(result.postId == "dQw4w9WgXcQ")
  }

  @Test("a 5xx before anything was stored resumes from the offset the status query reports")
  func resumesAfterServerError() async throws {
    let path = try Self.videoFile(size: Int(Self.chunk) * 2 + 10)
    let simulator = YouTubeSimulator(faults: [2: .errorBeforeStoring])
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    _ = try await post(client, harness, ["title": "Resume", "videoPath": .string(path)])
    let ranges = transport.requests.compactMap { $0.headers["Content-Range"] }
    #expect(
      ranges == [
        "bytes 0-262143/524298", "bytes 262144-524287/524298", "bytes */524298", "bytes 262144-524287/524298",
        "bytes 524288-524297/524298",
      ])
    #expect(simulator.snapshot.received == (try Data(contentsOf: URL(fileURLWithPath: path))))
  }

  @Test("when the last chunk's answer is lost, the status query finds the finished video instead of uploading again")
  func lostFinalAnswer() async throws {
    let path = try Self.videoFile(size: Int(Self.chunk) + 5)
    let simulator = YouTubeSimulator(faults: [2: .errorAfterStoring])
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "Last", "videoPath": .string(path)])
    #expect(transport.requests.compactMap { $0.headers["Content-Range"] }.last == "bytes */262149")
    #expect(simulator.snapshot.sessions == 1)
    #expect(simulator.snapshot.videos == 1)
    #expect(result.postId == "dQw4w9WgXcQ")
  }

  @Test(
    "an unreadable answer to the last chunk asks the session: stored is the video, unstored is sent again",
    arguments: [true, false])
  func unreadableFinalAnswer(stored: Bool) async throws {
    let path = try Self.videoFile(size: Int(Self.chunk) + 5)
    let simulator = YouTubeSimulator(faults: [2: .unreadable(stored: stored)])
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "Unreadable", "videoPath": .string(path)])
    #expect(result.postId == "dQw4w9WgXcQ")
    #expect(transport.requests.compactMap { $0.headers["Content-Range"] }.contains("bytes */262149"))
    #expect(simulator.snapshot.sessions == 1)
    #expect(simulator.snapshot.videos == 1)
    #expect(simulator.snapshot.chunkRequests == (stored ? 2 : 3))
  }

  @Test("a last chunk refused until the retries run out asks the session: incomplete, so retryable, not unknown")
  func refusedFinalChunkIsNotUnknown() async throws {
    let path = try Self.videoFile(size: Int(Self.chunk) + 5)
    let simulator = YouTubeSimulator(faults: [2: .errorBeforeStoring, 3: .errorBeforeStoring, 4: .errorBeforeStoring])
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let error = try await #require(throws: SidecarError.self) {
      try await post(client, harness, ["title": "Refused", "videoPath": .string(path)])
    }
    #expect(error.kind == .transientExhausted, "\(error)")
    #expect(error.kind.retryable)
    #expect(transport.requests.last?.headers["Content-Range"] == "bytes */262149", "the session was asked last")
    #expect(simulator.snapshot.sessions == 1 && simulator.snapshot.videos == 0)
  }

  @Test("an answer to the session request without a Location is tried again: starting a session is harmless")
  func sessionWithoutLocationRetried() async throws {
    let path = try Self.videoFile(size: 1000)
    let simulator = YouTubeSimulator()
    let sessionRequests = Mutex(0)
    let transport = ScriptedTransport { request in
      let number = sessionRequests.withLock { count in
        if request.method == "POST" { count += 1 }
        return count
      }
      if request.method == "POST", number == 1 {
        return .response(HTTPResponse(status: 200, body: Data("<html>ok</html>".utf8)))
      }
      return simulator.reply(request)
    }
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "Second session request", "videoPath": .string(path)])
    #expect(result.postId == "dQw4w9WgXcQ")
    #expect(sessionRequests.withLock { $0 } == 2)
    #expect(simulator.snapshot.videos == 1)
  }

  @Test(
    "a call cancelled mid-upload may have published; one cancelled while opening the upload session may not"
  )
  func cancelledUploadMayHavePublished() async throws {
    let path = try Self.videoFile(size: Int(Self.chunk) * 3)
    for (cancelledRequest, mayHavePublished) in [(3, true), (1, false)] {
      let simulator = YouTubeSimulator()
      let requests = Mutex(0)
      // `$/cancelRequest` landing while request number `cancelledRequest` is in flight.
      let transport = ScriptedTransport { request in
        guard
          requests.withLock({
            $0 += 1
            return $0
          }) != cancelledRequest
        else {
          return .failure(TransportError(.cancelled, requestSent: true, message: "cancelled"))
        }
        return simulator.reply(request)
      }
      let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
      let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
      let announced = Mutex(false)
      let call = CallContext(deadline: nil) { announced.withLock { $0 = true } }
      let operation = OperationContext(
        key: Self.key, agentId: "AGENT-1", correlationId: "corr-1", call: call, credentials: harness.store,
        logger: harness.environment.logger)
      await #expect(throws: SidecarError.self) {
        _ = try await client.preparePublish(Params(["title": "Cancelled", "videoPath": .string(path)])).run(operation)
      }
      #expect(call.mayHavePublished == mayHavePublished)
      #expect(announced.withLock { $0 } == mayHavePublished)
      #expect(call.publishRequests == 0, "the chunks are idempotent steps: publishRequests alone cannot tell")
    }
  }

  @Test(
    "replicas sharing a store spend one daily quota: an unaffordable upload is refused until midnight Pacific, unsent")
  func sharedDailyQuota() async throws {
    let path = try Self.videoFile(size: 1000)
    let shared = MemoryCounters()
    // 2023-11-14T22:13:20Z is 14:13:20 in Los Angeles (PST): the quota resets in 9 h 46 min 40 s.
    let clock = ManualClock()
    let simulator = YouTubeSimulator()
    let transport = ScriptedTransport(fallback: simulator.reply)
    let replicas = (0..<2).map { _ in
      var environment = TestHarness(
        transport: transport, credentials: [Self.key: Self.credential()], clock: clock, counters: shared
      ).environment
      environment.youtubeDailyQuotaUnits = 5_000
      return YouTubeClient(environment: environment, chunkSize: Self.chunk)
    }
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()], clock: clock)
    for index in 0..<3 {
      _ = try await post(replicas[index % 2], harness, ["title": .string("Fits \(index)"), "videoPath": .string(path)])
    }
    let sent = transport.requests.count
    let error = await #expect(throws: SidecarError.self) {
      _ = try await post(replicas[1], harness, ["title": "Over", "videoPath": .string(path)])
    }
    #expect(error?.kind == .quotaExhausted)
    #expect(error?.retryAfter == .seconds(9 * 3600 + 46 * 60 + 40))
    #expect(transport.requests.count == sent, "nothing was sent for the refused upload")
    #expect(simulator.snapshot.sessions == 3)
  }

  @Test("a token that expires mid-upload is refreshed once and the upload resumes in the same session")
  func refreshMidUpload() async throws {
    let path = try Self.videoFile(size: Int(Self.chunk) * 3)
    let simulator = YouTubeSimulator(faults: [2: .expiredToken])
    let transport = ScriptedTransport(fallback: simulator.reply)
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "Refresh", "videoPath": .string(path)])
    #expect(simulator.snapshot.tokenRequests == 1)
    #expect(simulator.snapshot.sessions == 1)
    #expect(simulator.snapshot.received == (try Data(contentsOf: URL(fileURLWithPath: path))))
    #expect(result.postId == "dQw4w9WgXcQ")
    await harness.store.flushUpdates(timeout: .seconds(5))
    #expect(harness.credentials.updates.map(\.1.accessToken) == ["ya29.refreshed-1"])
  }

  @Test("five concurrent calls on a stale token share exactly one refresh; the parent gets the new token once")
  func oneRefreshForFive() async throws {
    let simulator = YouTubeSimulator()
    let scripted = ScriptedTransport { request in
      if request.url.path == "/youtube/v3/channels" {
        guard request.headers["Authorization"] == "Bearer ya29.refreshed-1" else {
          return ScriptedTransport.json(401, #"{"error":{"code":401,"errors":[{"reason":"authError"}]}}"#)
        }
        return ScriptedTransport.json(200, #"{"items":[{"id":"UCchannel0001","snippet":{"title":"Channel One"}}]}"#)
      }
      if request.url.path == "/tokeninfo" {
        return ScriptedTransport.json(
          200, #"{"scope":"https://www.googleapis.com/auth/youtube.upload","exp":"1900000000"}"#)
      }
      return simulator.reply(request)
    }
    let transport = HoldingTransport(scripted, holding: "/token")
    let stale = Self.credential(token: "ya29.stale", expiresAt: Date().addingTimeInterval(30))
    let harness = TestHarness(transport: scripted, credentials: [Self.key: stale])
    let environment = PlatformEnvironment(
      endpoints: PlatformEndpoints(), transport: transport, core: harness.environment.core,
      media: harness.environment.media, logger: harness.environment.logger)
    let client = YouTubeClient(environment: environment)
    let results = try await withThrowingTaskGroup(of: ValidationResult.self) { group in
      for _ in 0..<5 { group.addTask { try await client.validate(context: harness.context(Self.key)) } }
      for _ in 0..<20 { await Task.yield() }
      transport.release()
      return try await group.reduce(into: []) { $0.append($1) }
    }
    #expect(results.count == 5)
    #expect(results.allSatisfy { $0.valid && $0.accountName == "Channel One" })
    #expect(simulator.snapshot.tokenRequests == 1)
    await harness.store.flushUpdates(timeout: .seconds(5))
    let updates = harness.credentials.updates
    #expect(updates.count == 1)
    #expect(updates.first?.1.accessToken == "ya29.refreshed-1")
    #expect(updates.first?.1.refreshToken == "1//refresh-secret")
  }

  @Test(
    "a spent quota is quota_exhausted, unsent, until it resets (project: midnight Pacific; uploads: 24 h later)",
    arguments: [("quotaExceeded", 68_400), ("uploadLimitExceeded", 86_400)])
  func quota(reason: String, resetSeconds: Int64) async throws {
    // 2025-07-01 12:00 UTC is 05:00 PDT; the quota resets at 2025-07-02 00:00 PDT = 07:00 UTC, 19 hours later.
    let clock = ManualClock(wallNow: Date(timeIntervalSince1970: 1_751_371_200))
    let path = try Self.videoFile(size: 100)
    let transport = ScriptedTransport([
      ScriptedTransport.json(
        403,
        #"{"error":{"code":403,"message":"The request cannot be completed because you have exceeded your "#
          + #"<a href=\"/youtube/v3/getting-started#quota\">quota</a>.","#
          + #""errors":[{"message":"quota","domain":"youtube.quota","reason":"\#(reason)"}]}}"#
      )
    ])
    let credential = Self.credential(expiresAt: clock.wallNow().addingTimeInterval(200_000))
    let harness = TestHarness(transport: transport, credentials: [Self.key: credential], clock: clock)
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let error = try await #require(throws: SidecarError.self) {
      try await post(client, harness, ["title": "Quota", "videoPath": .string(path)])
    }
    #expect(error.kind == .quotaExhausted)
    #expect(error.failure?.resetsAt == Date(timeIntervalSince1970: 1_751_371_200 + TimeInterval(resetSeconds)))
    #expect(error.retryAfter == .seconds(resetSeconds))
    #expect(error.failure?.platformCode == .string(reason))

    let again = try await #require(throws: SidecarError.self) {
      try await post(client, harness, ["title": "Quota", "videoPath": .string(path)])
    }
    #expect(again.kind == .quotaExhausted)
    // An hour before it resets (for the upload limit: well past midnight Pacific) the gate is still closed.
    clock.advance(by: .seconds(resetSeconds - 3600))
    let later = try await #require(throws: SidecarError.self) {
      try await post(client, harness, ["title": "Quota", "videoPath": .string(path)])
    }
    #expect(later.kind == .quotaExhausted)
    #expect(transport.requests.count == 1)
  }

  @Test(
    "quotas reset at the next midnight in Los Angeles, PST or PDT",
    arguments: [
      (1_736_933_400.0, 1_737_014_400.0),  // 2025-01-15 09:30 UTC (01:30 PST) → 2025-01-16 08:00 UTC
      (1_741_514_400.0, 1_741_590_000.0),  // 2025-03-09 10:00 UTC, just after the switch to PDT → 03-10 07:00 UTC
      (1_751_371_200.0, 1_751_439_600.0),  // 2025-07-01 12:00 UTC (05:00 PDT) → 2025-07-02 07:00 UTC
      (1_751_439_599.0, 1_751_439_600.0),  // one second before midnight PDT
      (1_710_064_799.0, 1_710_140_400.0),  // 2024-03-10 01:59:59 PST, the last second before the switch → 03-11 07:00
      (1_762_066_799.0, 1_762_066_800.0),  // 2025-11-01 23:59:59 PDT → 2025-11-02 00:00 PDT (07:00 UTC)
      (1_762_072_200.0, 1_762_156_800.0),  // 2025-11-02 01:30 PDT, before the switch back → 11-03 00:00 PST (08:00 UTC)
      (1_767_223_800.0, 1_767_254_400.0),  // 2025-12-31 23:30 UTC (15:30 PST) → 2026-01-01 08:00 UTC
    ])
  func pacificMidnight(now: Double, reset: Double) {
    let harness = TestHarness(
      transport: ScriptedTransport(), credentials: [:], clock: ManualClock(wallNow: Date(timeIntervalSince1970: now)))
    let client = YouTubeClient(environment: harness.environment)
    let failure = client.api.failure(
      HTTPResponse(status: 403, body: Data(#"{"error":{"code":403,"errors":[{"reason":"dailyLimitExceeded"}]}}"#.utf8)),
      channel: "UC1")
    #expect(failure.classification == .quotaExhausted)
    #expect(failure.resetsAt == Date(timeIntervalSince1970: reset))
  }

  @Test(
    "errors are classified by reason",
    arguments: [
      (401, "authError", PlatformFailure.Classification.auth(refreshable: true)),
      (403, "rateLimitExceeded", .rateLimited(scope: .app)),
      (403, "userRateLimitExceeded", .rateLimited(scope: .account)),
      (400, "uploadLimitExceeded", .quotaExhausted),
      (503, "backendError", .transient),
      (500, "internalError", .transient),
      (403, "insufficientPermissions", .auth(refreshable: false)),
      (400, "invalidTitle", .permanent),
      (403, "forbidden", .permanent),
    ])
  func classification(status: Int, reason: String, expected: PlatformFailure.Classification) {
    let harness = TestHarness(transport: ScriptedTransport(), credentials: [:])
    let body = #"{"error":{"code":\#(status),"message":"m","errors":[{"reason":"\#(reason)"}]}}"#
    let failure = YouTubeClient(environment: harness.environment).api.failure(
      HTTPResponse(status: status, body: Data(body.utf8)), channel: "UC1")
    #expect(failure.classification == expected)
  }

  @Test("a video fetched from videoUrl is uploaded byte for byte with the type it was served as")
  func fromURL() async throws {
    let simulator = YouTubeSimulator()
    let video = Data((0..<5000).map { UInt8($0 % 251) })
    let transport = ScriptedTransport { request in
      if request.url.host == "media.test" {
        return .response(HTTPResponse(status: 200, headers: ["Content-Type": "video/quicktime"], body: video))
      }
      return simulator.reply(request)
    }
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.permissiveEnvironment, chunkSize: Self.chunk)
    let result = try await post(client, harness, ["title": "From URL", "videoUrl": "https://media.test/v/clip.mov"])
    #expect(result.postId == "dQw4w9WgXcQ")
    #expect(simulator.snapshot.received == video)
    #expect(transport.requests[1].headers["X-Upload-Content-Type"] == "video/quicktime")
  }

  @Test(
    "content YouTube cannot take is refused before any request, with a sentence saying why",
    arguments: [
      (["title": "Hello"], "videoUrl", "YouTube publishes videos"),
      (["text": "just words"], "videoUrl", "YouTube publishes videos"),
      (["videoUrl": "https://media.test/a.mp4"], "title", "required"),
      (
        ["title": .string(String(repeating: "t", count: 101)), "videoUrl": "https://media.test/a.mp4"], "title",
        "limit is 100"
      ),
      (["title": "a <b>", "videoUrl": "https://media.test/a.mp4"], "title", "< or >"),
      (
        [
          "title": "t", "description": .string(String(repeating: "é", count: 2501)),
          "videoUrl": "https://media.test/a.mp4",
        ],
        "description", "5000"
      ),
      (
        ["title": "t", "privacyStatus": "friends", "videoUrl": "https://media.test/a.mp4"], "privacyStatus",
        "public, unlisted, private"
      ),
      (["title": "t", "videoUrl": "http://media.test/a.mp4"], "videoUrl", "https"),
      (["title": "t", "videoUrl": "https://127.0.0.1/a.mp4"], "videoUrl", "non-public"),
      (["title": "t", "videoPath": "/no/such/file.mp4"], "videoPath", "names no file"),
      (["title": "t", "videoPath": "relative.mp4"], "videoPath", "absolute"),
      (["title": "t", "videoUrl": "https://media.test/a.mp4", "videoPath": "/tmp/x.mp4"], "videoPath", "not both"),
      (["title": "t", "videoUrl": "https://media.test/a.mp4", "categoryId": "music"], "categoryId", "category number"),
      (
        [
          "title": "t", "videoUrl": "https://media.test/a.mp4",
          "tags": .array(Array(repeating: "twenty-characters-tag", count: 25)),
        ],
        "tags", "500"
      ),
      (["title": "t", "videoUrl": "https://media.test/a.mp4", "captoin": "x"], "captoin", "unknown param"),
    ] as [([String: JSONValue], String, String)])
  func invalidParams(values: [String: JSONValue], field: String, phrase: String) throws {
    let harness = TestHarness(transport: ScriptedTransport(), credentials: [:])
    let client = YouTubeClient(environment: harness.environment)
    let error = try #require(throws: InvalidParams.self) { try client.preparePublish(Params(values)) }
    #expect(error.field == field)
    #expect(error.reason.contains(phrase), "\(error.reason)")
    #expect(harness.transport.requests.isEmpty)
  }

  @Test("validate names the channel, the scopes, and a missing youtube.upload scope")
  func validateMissingScope() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(200, #"{"items":[{"id":"UCchannel0001","snippet":{"title":"Channel One"}}]}"#),
      ScriptedTransport.json(200, #"{"scope":"https://www.googleapis.com/auth/youtube.readonly","exp":"1900000000"}"#),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await YouTubeClient(environment: harness.environment).validate(context: harness.context(Self.key))
    #expect(
      transport.requests[0].url.absoluteString
        == "https://www.googleapis.com/youtube/v3/channels?part=snippet&mine=true")
    #expect(transport.requests[0].headers["Authorization"] == "Bearer ya29.valid")
    #expect(transport.requests[1].url.path == "/tokeninfo")
    #expect(!result.valid)
    #expect(result.accountId == "UCchannel0001")
    #expect(result.accountName == "Channel One")
    #expect(result.scopes == ["https://www.googleapis.com/auth/youtube.readonly"])
    #expect(result.missing == ["https://www.googleapis.com/auth/youtube.upload"])
    #expect(result.expiresAt == Date(timeIntervalSince1970: 1_900_000_000))
  }

  @Test("validate says so when the Google account has no channel")
  func validateNoChannel() async throws {
    let transport = ScriptedTransport([
      ScriptedTransport.json(200, #"{"pageInfo":{"totalResults":0}}"#),
      ScriptedTransport.json(200, #"{"scope":"https://www.googleapis.com/auth/youtube.upload"}"#),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let result = try await YouTubeClient(environment: harness.environment).validate(context: harness.context(Self.key))
    #expect(!result.valid)
    #expect(result.problems?.first?.contains("no YouTube channel") == true)
  }

  /// A publish taken over from a sidecar that died while uploading it, claimed a minute ago; the channel's uploads
  /// playlist lists `pages` (each item: video id, made at), and `/videos` tags `marked` with the key's marker.
  func interrupted(pages: [[(String, Date)]], marked: String?) async throws
    -> (Result<PostResult, SidecarError>, [ScriptedTransport.Recorded])
  {
    let scope = "youtube/post/cust-1/key-1"
    let marker = YouTubeClient.marker(for: scope)
    let transport = ScriptedTransport { request in
      let query = MetaTest.decodeForm(request.url.query ?? "")
      switch request.url.path {
      case "/youtube/v3/channels":
        return ScriptedTransport.json(200, #"{"items":[{"contentDetails":{"relatedPlaylists":{"uploads":"UU1"}}}]}"#)
      case "/youtube/v3/playlistItems":
        let index = Int(query["pageToken"] ?? "0") ?? 0
        let items = pages[index].map { id, made in
          #"{"contentDetails":{"videoId":"\#(id)","videoPublishedAt":"\#(made.ISO8601Format())"}}"#
        }
        let next = index + 1 < pages.count ? #","nextPageToken":"\#(index + 1)""# : ""
        return ScriptedTransport.json(200, #"{"items":[\#(items.joined(separator: ","))]\#(next)}"#)
      case "/youtube/v3/videos" where request.method == "GET":
        let videos = (query["id"] ?? "").split(separator: ",").map { id in
          let tags = String(id) == marked ? #"["\#(marker)"]"# : "[]"
          let status = #"{"uploadStatus":"uploaded","privacyStatus":"public"}"#
          return #"{"id":"\#(id)","snippet":{"tags":\#(tags)},"status":\#(status)}"#
        }
        return ScriptedTransport.json(200, #"{"items":[\#(videos.joined(separator: ","))]}"#)
      default:
        return ScriptedTransport.json(500, #"{"error":{"code":500,"message":"unexpected"}}"#)
      }
    }
    let harness = TestHarness(transport: transport, credentials: [Self.key: Self.credential()])
    let client = YouTubeClient(environment: harness.environment, chunkSize: Self.chunk)
    let path = try Self.videoFile(size: 1000)
    let context = harness.context(Self.key, interruptedSince: Date().addingTimeInterval(-60), idempotencyScope: scope)
    let operation = try client.preparePublish(Params(["title": "Interrupted", "videoPath": .string(path)]))
    let result = await MetaTest.run { () throws(SidecarError) in try await operation.run(context) }
    return (result, transport.requests)
  }

  @Test("an interrupted upload older than the channel's 50 newest uploads is found on a later page of its uploads")
  func interruptedFoundOnLaterPage() async throws {
    let now = Date()
    let newer = (0..<50).map { ("new\($0)", now) }
    let (result, requests) = try await interrupted(
      pages: [newer, [("mine", now.addingTimeInterval(-50))]], marked: "mine")
    #expect(try result.get().postId == "mine")
    #expect(requests.filter { $0.url.path == "/youtube/v3/playlistItems" }.count == 2)
    #expect(requests.allSatisfy { $0.method == "GET" }, "nothing uploaded")
  }

  @Test("an interrupted upload its channel's uploads show absent back to its claim is outcome_unknown, never uploaded")
  func interruptedAbsentNeverUploaded() async throws {
    let now = Date()
    let (result, requests) = try await interrupted(
      pages: [
        [("other", now), ("old", now.addingTimeInterval(-86_400))], [("older", now.addingTimeInterval(-90_000))],
      ],
      marked: nil)
    #expect(result.error?.kind == .outcomeUnknown)
    let message = result.error?.message ?? ""
    #expect(message.contains("1 uploads made since it was first claimed"), "\(message)")
    #expect(requests.filter { $0.url.path == "/youtube/v3/playlistItems" }.count == 1, "stops at an older upload")
    #expect(requests.allSatisfy { $0.method == "GET" }, "nothing uploaded")
  }
}
