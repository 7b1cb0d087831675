import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import SidecarTestSupport
import Synchronization
import Testing

@testable import SidecarPlatforms

/// Each upload path after a failure part way: what reaches the platform, and that the post still goes out once.
@Suite("Uploads carry on after a failure")
struct UploadResumeTests {
  /// Ten known bytes in a file under the harness's `media.localRoots`; removed by the caller.
  static func localFile(_ bytes: [UInt8] = Array(0..<10), suffix: String = ".mp4") -> String {
    let path = TestHarness.temporaryRoot + "/upload-resume-" + UUID().uuidString + suffix
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
  }

  static let reset = ScriptedTransport.Reply.failure(
    TransportError(.other, requestSent: true, message: "connection reset by peer"))

  /// Progress values as the parent would receive them.
  final class Reports: Sendable {
    private let values = Mutex<[WorkDoneProgress.Value]>([])
    var progress: WorkDoneProgress {
      let progress = WorkDoneProgress { value in self.values.withLock { $0.append(value) } }
      progress.begin(title: "upload")
      return progress
    }
    var bytesSent: [Int64] { values.withLock { $0.compactMap(\.bytesSent) } }
  }

  // MARK: - LinkedIn

  static let linkedInKey = LinkedInClientTests.key

  static func linkedInVideo(captions: Bool) -> ScriptedTransport.Reply {
    let parts = [(0, 3), (4, 7), (8, 9)].enumerated().map { index, range in
      #"{"uploadUrl":"https://www.linkedin.com/dms-uploads/p\#(index)","firstByte":\#(range.0),"lastByte":\#(range.1)}"#
    }
    let captionsURL = captions ? #","captionsUploadUrl":"https://www.linkedin.com/dms-uploads/captions""# : ""
    let instructions = #""uploadInstructions":["# + parts.joined(separator: ",") + "]"
    return ScriptedTransport.json(
      200, #"{"value":{"video":"urn:li:video:V1","uploadToken":"tok",\#(instructions)\#(captionsURL)}}"#)
  }

  static func etag(_ tag: String) -> ScriptedTransport.Reply {
    .response(HTTPResponse(status: 200, headers: ["ETag": tag]))
  }

  @Test("a LinkedIn video part whose connection breaks is sent again on its own; finalize names every part in order")
  func linkedInPart() async throws {
    let path = Self.localFile()
    defer { unlink(path) }
    let transport = ScriptedTransport([
      Self.linkedInVideo(captions: false), Self.etag("e0"), Self.reset, Self.etag("e1"), Self.etag("e2"),
      .response(HTTPResponse(status: 200)), ScriptedTransport.json(200, #"{"status":"AVAILABLE"}"#),
      LinkedInClientTests.created("urn:li:share:5"),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.linkedInKey: LinkedInClientTests.credential()])
    let reports = Reports()
    let result = try await LinkedInClient(environment: harness.environment)
      .preparePublish(Params(["text": "Clip", "videoPath": .string(path)]))
      .run(harness.context(Self.linkedInKey, progress: reports.progress))

    #expect(result.postId == "urn:li:share:5")
    let requests = transport.requests
    let puts = requests.filter { $0.method == "PUT" }
    #expect(puts.map(\.url.lastPathComponent) == ["p0", "p1", "p1", "p2"])
    #expect(puts.map { Array($0.body) } == [[0, 1, 2, 3], [4, 5, 6, 7], [4, 5, 6, 7], [8, 9]])
    #expect(requests[0].json?["initializeUploadRequest"]?["uploadCaptions"] == false)
    let finalize = try #require(requests.first { $0.url.query == "action=finalizeUpload" })
    #expect(
      finalize.json == [
        "finalizeUploadRequest": [
          "video": "urn:li:video:V1", "uploadToken": "tok", "uploadedPartIds": ["e0", "e1", "e2"],
        ]
      ])
    #expect(requests.last?.json?["content"] == ["media": ["id": "urn:li:video:V1"]])
    #expect(reports.bytesSent.last == 10)
  }

  @Test("LinkedIn captions are asked for in initializeUpload and sent to the URL it answers, before finalizeUpload")
  func linkedInCaptions() async throws {
    let video = Self.localFile()
    let captions = Array("\u{FEFF}1\r\n00:00:00,000 --> 00:00:01,500\r\nHello\r\n".utf8)
    let srt = Self.localFile(captions, suffix: ".srt")
    defer {
      unlink(video)
      unlink(srt)
    }
    let transport = ScriptedTransport([
      Self.linkedInVideo(captions: true), Self.etag("e0"), Self.etag("e1"), Self.etag("e2"),
      .response(HTTPResponse(status: 201)), .response(HTTPResponse(status: 200)),
      ScriptedTransport.json(200, #"{"status":"AVAILABLE"}"#), LinkedInClientTests.created("urn:li:share:6"),
    ])
    let harness = TestHarness(transport: transport, credentials: [Self.linkedInKey: LinkedInClientTests.credential()])
    _ = try await LinkedInClient(environment: harness.environment)
      .preparePublish(Params(["text": "Captioned", "videoPath": .string(video), "captionsPath": .string(srt)]))
      .run(harness.context(Self.linkedInKey))

    let requests = transport.requests
    #expect(requests[0].json?["initializeUploadRequest"]?["uploadCaptions"] == true)
    #expect(
      requests.map { "\($0.method) \($0.url.lastPathComponent)" }.prefix(6) == [
        "POST videos", "PUT p0", "PUT p1", "PUT p2", "PUT captions", "POST videos",
      ])
    #expect(Array(requests[4].body) == captions)
    #expect(requests[4].headers["Authorization"] == "Bearer AQV-access")
    #expect(requests[5].url.query == "action=finalizeUpload")
  }

  @Test("LinkedIn captions that are not SubRip fail before any request, naming the format")
  func linkedInCaptionsNotSubRip() async throws {
    let video = Self.localFile()
    let notes = Self.localFile(Array("WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n".utf8), suffix: ".vtt")
    defer {
      unlink(video)
      unlink(notes)
    }
    let harness = TestHarness(
      transport: ScriptedTransport(), credentials: [Self.linkedInKey: LinkedInClientTests.credential()])
    let operation = try LinkedInClient(environment: harness.environment)
      .preparePublish(Params(["text": "x", "videoPath": .string(video), "captionsPath": .string(notes)]))
    let context = harness.context(Self.linkedInKey)
    let result = await MetaTest.run { () throws(SidecarError) in try await operation.run(context) }
    let error = try #require(result.error)
    #expect(error.kind == .permanent && error.message.contains("SubRip"))
    #expect(harness.transport.requests.isEmpty)
  }

  @Test("LinkedIn captions without a video are refused with a sentence")
  func linkedInCaptionsWithoutVideo() throws {
    let harness = TestHarness(transport: ScriptedTransport(), credentials: [:])
    do {
      _ = try LinkedInClient(environment: harness.environment)
        .preparePublish(Params(["text": "x", "captionsUrl": "https://cdn.example/a.srt"]))
      Issue.record("captions without a video were accepted")
    } catch {
      #expect(error.field == "captionsUrl")
      #expect(error.reason == "`captionsUrl` adds captions to a video, so it needs `videoUrl` or `videoPath`")
    }
  }

  // MARK: - Facebook

  static let facebookKey = MetaTest.key(.facebook)

  func facebook(_ params: [String: JSONValue], _ replies: [ScriptedTransport.Reply], progress: WorkDoneProgress? = nil)
    async throws -> (Result<PostResult, SidecarError>, [ScriptedTransport.Recorded])
  {
    let harness = MetaTest.harness(.facebook, replies)
    let operation = try FacebookClient(environment: harness.environment).preparePublish(Params(params))
    let context = harness.context(Self.facebookKey, progress: progress)
    let result = await MetaTest.run { () throws(SidecarError) in try await operation.run(context) }
    return (result, harness.transport.requests)
  }

  static let offsetRefused = ScriptedTransport.json(
    400, #"{"debug_info":{"retriable":false,"type":"OffsetInvalidError","message":"Offset 0 is not expected"}}"#)

  static func held(_ bytes: Int) -> ScriptedTransport.Reply {
    MetaTest.ok(#"{"id":"777","status":{"uploading_phase":{"status":"in_progress","bytes_transferred":\#(bytes)}}}"#)
  }

  @Test("a Facebook reel from a local file resumes from the bytes Meta reports holding, not from the start")
  func facebookReelResumes() async throws {
    let path = Self.localFile()
    defer { unlink(path) }
    let reports = Reports()
    let (result, requests) = try await facebook(
      ["kind": "reel", "text": "Reel", "videoPath": .string(path)],
      [
        MetaTest.ok(#"{"video_id":"777","upload_url":"https://rupload.facebook.com/video-upload/v26.0/777"}"#),
        MetaTest.lostResponse, Self.offsetRefused, Self.held(4), MetaTest.ok(#"{"success":true}"#),
        MetaTest.ok(#"{"status":{"video_status":"upload_complete","uploading_phase":{"status":"complete"}}}"#),
        MetaTest.ok(#"{"success":true}"#),
      ], progress: reports.progress)

    #expect(
      try result.get() == PostResult(postId: "777", postUrl: "https://www.facebook.com/reel/777", status: .processing))
    let uploads = requests.filter { $0.path.hasPrefix("/video-upload/") }
    #expect(uploads.map { $0.headers["offset"] } == ["0", "0", "4"])
    #expect(uploads.allSatisfy { $0.headers["file_size"] == "10" })
    #expect(uploads.allSatisfy { $0.headers["Authorization"] == "OAuth \(MetaTest.pageToken)" })
    #expect(uploads.map { Array($0.body) } == [Array(0..<10), Array(0..<10), Array(4..<10)])
    let phases = requests.filter { $0.path == "/v26.0/111/video_reels" }.map { $0.form["upload_phase"] }
    #expect(phases == ["start", "finish"])
    #expect(reports.bytesSent.contains(4) && reports.bytesSent.last == 10)
  }

  @Test("a Facebook story upload after which Meta holds nothing more ends with the failure, and nothing is published")
  func facebookStoryNoProgress() async throws {
    let path = Self.localFile()
    defer { unlink(path) }
    let (result, requests) = try await facebook(
      ["kind": "story", "videoPath": .string(path)],
      [
        MetaTest.ok(#"{"video_id":"777","upload_url":"https://rupload.facebook.com/video-upload/v26.0/777"}"#),
        Self.offsetRefused, Self.held(0),
      ])
    let error = try #require(result.error)
    #expect(error.kind == .permanent && error.message.contains("upload host refused"))
    #expect(
      requests.map(\.summary) == [
        "POST /v26.0/111/video_stories", "POST /video-upload/v26.0/777", "GET /v26.0/777",
      ])
  }

  @Test("a Facebook feed video's chunk whose answer was lost is sent again from disk; the session carries on")
  func facebookChunkResumes() async throws {
    let path = Self.localFile()
    defer { unlink(path) }
    let (result, requests) = try await facebook(
      ["text": "Talk", "videoPath": .string(path)],
      [
        MetaTest.ok(#"{"video_id":"900","upload_session_id":"s1","start_offset":"0","end_offset":"4"}"#),
        MetaTest.lostResponse, MetaTest.ok(#"{"start_offset":"4","end_offset":"8"}"#),
        MetaTest.ok(#"{"start_offset":"8","end_offset":"10"}"#),
        MetaTest.ok(#"{"start_offset":"10","end_offset":"10"}"#),
        MetaTest.ok(#"{"success":true}"#),
      ])
    #expect(try result.get().postId == "900")
    let transfers = requests.filter { $0.text.contains("name=\"upload_phase\"\r\n\r\ntransfer") }
    let offsets = transfers.map { request in
      ["0", "4", "8"].first { request.text.contains("name=\"start_offset\"\r\n\r\n\($0)\r\n") }
    }
    #expect(offsets == ["0", "0", "4", "8"])
    let chunks: [[UInt8]] = [Array(0..<4), Array(0..<4), Array(4..<8), [8, 9]]
    for (transfer, chunk) in zip(transfers, chunks) {
      #expect(transfer.body.range(of: Data(chunk)) != nil)
      #expect(transfer.headers["Content-Type"]?.hasPrefix("multipart/form-data; boundary=") == true)
    }
    #expect(requests.last?.form["upload_phase"] == "finish")
  }

  // MARK: - Instagram

  @Test("an Instagram reel from a local file is sent again to the same container after a lost answer")
  func instagramResumable() async throws {
    let path = Self.localFile()
    defer { unlink(path) }
    let harness = MetaTest.harness(
      .instagram,
      [
        MetaTest.ok(#"{"id":"c9","uri":"https://rupload.facebook.com/ig-api-upload/v26.0/c9"}"#), MetaTest.lostResponse,
        MetaTest.ok(#"{"success":true,"message":"Upload successful."}"#), MetaTest.ok(#"{"status_code":"FINISHED"}"#),
        MetaTest.ok(#"{"id":"1799"}"#), MetaTest.ok(#"{"permalink":"https://www.instagram.com/reel/Loc/"}"#),
      ])
    let operation = try InstagramClient(environment: harness.environment)
      .preparePublish(Params(["caption": "Local", "videoPath": .string(path)]))
    let result = try await operation.run(harness.context(MetaTest.key(.instagram)))
    #expect(result.postId == "1799")
    let requests = harness.transport.requests
    #expect(requests.filter { $0.path == "/v26.0/178414/media" }.count == 1)
    let uploads = requests.filter { $0.path == "/ig-api-upload/v26.0/c9" }
    #expect(uploads.count == 2)
    #expect(uploads.allSatisfy { $0.headers["offset"] == "0" && $0.headers["file_size"] == "10" })
    #expect(uploads.allSatisfy { Array($0.body) == Array(0..<10) })
    #expect(requests.filter { $0.path.hasSuffix("media_publish") }.map(\.form) == [["creation_id": "c9"]])
  }

  // MARK: - WhatsApp

  @Test("a WhatsApp document from a local file is uploaded once and sent by its media id, reused for the same file")
  func whatsAppMediaById() async throws {
    let path = Self.localFile(Array("%PDF-1.4\n".utf8) + Array(repeating: 0x20, count: 40), suffix: ".pdf")
    defer { unlink(path) }
    let harness = MetaTest.harness(
      .whatsapp,
      [MetaTest.ok(#"{"id":"m-1"}"#), MetaWhatsAppSendTests.accepted, MetaWhatsAppSendTests.accepted])
    let client = WhatsAppClient(environment: harness.environment)
    for to in ["15551230001", "15551230002"] {
      _ = try await client.preparePublish(Params(["to": .string(to), "document": ["path": .string(path)]]))
        .run(harness.context(MetaTest.key(.whatsapp)))
    }
    let requests = harness.transport.requests
    #expect(
      requests.map(\.summary) == [
        "POST /v26.0/30001/media", "POST /v26.0/30001/messages", "POST /v26.0/30001/messages",
      ])
    #expect(requests[0].text.contains("name=\"messaging_product\"\r\n\r\nwhatsapp"))
    #expect(requests[0].text.contains("name=\"type\"\r\n\r\napplication/pdf"))
    #expect(requests[0].body.range(of: try Data(contentsOf: URL(fileURLWithPath: path))) != nil)
    #expect(requests[1].json?["document"] == ["id": "m-1"])
    #expect(requests[2].json?["document"] == ["id": "m-1"])
  }
}
