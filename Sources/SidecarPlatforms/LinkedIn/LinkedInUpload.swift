#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The kinds of asset LinkedIn takes by upload, each under `/rest/<kind>s` with the URN under `value.<kind>`.
enum LinkedInAsset: String, Sendable {
  case image, document, video

  var path: String { "/rest/\(rawValue)s" }

  /// The largest file LinkedIn documents for the kind: the download cap.
  var maxBytes: Int64 {
    switch self {
    case .image: LinkedInPost.maxImageBytes
    case .document: 100_000_000
    case .video: 500_000_000
    }
  }

  /// What to try when LinkedIn fails to process one.
  var formats: String {
    switch self {
    case .image: "use a JPG, PNG or GIF"
    case .document: "use a PDF, PowerPoint or Word file of at most 100 MB and 300 pages"
    case .video: "use an MP4 of 3 seconds to 30 minutes"
    }
  }
}

extension LinkedInClient {
  /// A video: initializeUpload names the parts (byte ranges with their own upload URLs); each part is streamed from
  /// the file and its ETag kept; finalizeUpload lists the ETags in order. A part that fails is sent again on its own
  /// (parts already sent are not), so a dropped connection costs one part, not the upload. Captions, when given, are
  /// asked for in initializeUpload and sent to the `captionsUploadUrl` it answers, before finalizeUpload.
  func uploadVideo(_ media: MediaOnDisk, captions: MediaOnDisk?, context: OperationContext) async throws(SidecarError)
    -> String
  {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> String in
      try await uploadVideo(media.file, captions: captions?.file, credential: credential, context: context.call)
    }
  }

  /// The captions on disk, once their first bytes show SubRip: numbered cues timed `00:00:01,000 --> 00:00:04,000`.
  func captions(_ source: MediaSource, context: CallContext) async throws(SidecarError) -> MediaOnDisk {
    let field = if case .file = source { "captionsPath" } else { "captionsUrl" }
    let captions = try await environment.fetcher(for: .linkedin).onDisk(
      source, field: field, limit: LinkedInPost.maxCaptionsBytes, context: context)
    guard Self.looksLikeSubRip(captions.file) else {
      captions.remove()
      throw SidecarError(
        kind: .permanent,
        message: "`\(field)` is not a SubRip (.srt) file, the captions format LinkedIn takes: numbered cues, each "
          + "timed like `00:00:01,000 --> 00:00:04,000`.", platform: platform.rawValue, attempts: context.attempts)
    }
    return captions
  }

  /// Whether the file starts like SubRip: an optional byte-order mark, a cue number, and a `-->` timing soon after.
  static func looksLikeSubRip(_ file: LocalFile) -> Bool {
    let length = min(file.size, 512)
    guard let fd = try? BodyFiles.openForUpload(file.path, offset: 0, length: length) else { return false }
    defer { close(fd) }
    var head = [UInt8](repeating: 0, count: Int(length))
    let count = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard count > 0 else { return false }
    var text = head[0..<count]
    if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
    text = text.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }
    guard let first = text.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
    let arrow = Array("-->".utf8)
    return text.indices.contains { text[$0...].starts(with: arrow) }
  }

  struct VideoPart: Sendable {
    var url: URL
    var firstByte: Int64
    var lastByte: Int64
  }

  func uploadVideo(_ file: LocalFile, captions: LocalFile?, credential: Credential, context: CallContext)
    async throws(SidecarError) -> String
  {
    let owner = try author(credential, context: context)
    let initialize = api.request(
      "POST", LinkedInAsset.video.path, query: "action=initializeUpload",
      body: [
        "initializeUploadRequest": [
          "owner": .string(owner), "fileSizeBytes": .int(Int(file.size)), "uploadCaptions": .bool(captions != nil),
          "uploadThumbnail": false,
        ]
      ], credential: credential)
    let (_, json) = try await api.sendJSON(
      initialize, credential: credential, gates: api.gates(owner), context: context)
    let value = json["value"]
    let captionsURL = value?["captionsUploadUrl"]?.stringValue.flatMap { URL(string: $0) }
    guard let urn = value?["video"]?.stringValue, !urn.isEmpty, let parts = Self.videoParts(value, size: file.size),
      captions == nil || captionsURL != nil
    else {
      throw SidecarError(
        kind: .permanent,
        message: "LinkedIn's initializeUpload answer for the video lacks its URN, upload parts that cover the file, or "
          + "the captions upload URL it was asked for.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    context.progress?.report(message: "Uploading the video", bytesSent: 0, bytesTotal: file.size)
    var etags: [JSONValue] = []
    for part in parts {
      var headers: HTTPHeaders = ["Content-Type": "application/octet-stream"]
      if api.trusted(part.url) { headers["Authorization"] = "Bearer \(credential.accessToken)" }
      let put = HTTPRequest(
        method: "PUT", url: part.url, headers: headers,
        body: .file(path: file.path, offset: part.firstByte, length: part.lastByte - part.firstByte + 1))
      let response = try await api.send(put, credential: credential, context: context)
      guard let etag = response.headers["ETag"], !etag.isEmpty else {
        throw SidecarError(
          kind: .permanent, message: "LinkedIn accepted a part of the video but answered no ETag for it.",
          platform: platform.rawValue, attempts: context.attempts)
      }
      etags.append(.string(etag))
      context.progress?.report(message: "Uploading the video", bytesSent: part.lastByte + 1, bytesTotal: file.size)
    }
    if let captions, let captionsURL {
      var headers: HTTPHeaders = ["Content-Type": "application/octet-stream"]
      if api.trusted(captionsURL) { headers["Authorization"] = "Bearer \(credential.accessToken)" }
      let put = HTTPRequest(
        method: "PUT", url: captionsURL, headers: headers,
        body: .file(path: captions.path, offset: 0, length: captions.size))
      _ = try await api.send(put, credential: credential, context: context)
    }
    let finalize = api.request(
      "POST", LinkedInAsset.video.path, query: "action=finalizeUpload",
      body: [
        "finalizeUploadRequest": [
          "video": .string(urn), "uploadToken": .string(value?["uploadToken"]?.stringValue ?? ""),
          "uploadedPartIds": .array(etags),
        ]
      ], credential: credential)
    _ = try await api.send(finalize, credential: credential, gates: api.gates(owner), context: context)
    try await waitUntilAvailable(.video, urn, credential: credential, context: context)
    return urn
  }

  /// The upload instructions as parts in order, or nil unless they cover bytes 0 to size-1 with no gap or overlap.
  static func videoParts(_ value: JSONValue?, size: Int64) -> [VideoPart]? {
    var parts: [VideoPart] = []
    for entry in value?["uploadInstructions"]?.arrayValue ?? [] {
      guard let text = entry["uploadUrl"]?.stringValue, let url = URL(string: text),
        let first = entry["firstByte"]?.intValue, let last = entry["lastByte"]?.intValue, last >= first
      else { return nil }
      parts.append(VideoPart(url: url, firstByte: Int64(first), lastByte: Int64(last)))
    }
    parts.sort { $0.firstByte < $1.firstByte }
    var next: Int64 = 0
    for part in parts {
      guard part.firstByte == next else { return nil }
      next = part.lastByte + 1
    }
    return parts.isEmpty || next != size ? nil : parts
  }
}
