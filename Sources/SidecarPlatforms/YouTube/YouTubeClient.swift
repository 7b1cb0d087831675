#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience
import SidecarSystem

/// YouTube Data API v3: videos by resumable upload, channel and scope validation, Google token refresh.
///
/// YouTube publishes videos only. A post starts an upload session (safe to repeat: an unused session is harmless),
/// then sends the file in chunks from disk. After any failed chunk the client asks the session how many bytes arrived
/// and resumes from there; it never starts a second session once bytes were sent, since that would create a second
/// video.
public final class YouTubeClient: PlatformClient, Publisher {
  public let platform = Platform.youtube
  /// Bytes per upload request, a multiple of 256 KiB as YouTube requires. Larger chunks mean fewer round trips; the
  /// chunk is streamed from disk, so memory does not grow with it.
  public let chunkSize: Int64
  let environment: PlatformEnvironment
  let api: GoogleAPI
  let oauth: OAuth2Refresher

  /// The scopes that allow `videos.insert`.
  static let uploadScopes: Set<String> = [
    "https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.force-ssl", "https://www.googleapis.com/auth/youtubepartner",
  ]
  static let uploadScope = "https://www.googleapis.com/auth/youtube.upload"

  public convenience init(environment: PlatformEnvironment) {
    self.init(environment: environment, chunkSize: 8 << 20)
  }

  /// - Parameters:
  ///   - chunkSize: bytes per upload request; must be a positive multiple of 256 KiB.
  public init(environment: PlatformEnvironment, chunkSize: Int64) {
    precondition(chunkSize > 0 && chunkSize % (256 << 10) == 0, "YouTube upload chunks are multiples of 256 KiB")
    self.environment = environment
    self.chunkSize = chunkSize
    api = GoogleAPI(environment: environment)
    oauth = OAuth2Refresher(platform: .youtube, tokenURL: api.tokenURL, http: api.http, clock: environment.clock)
  }

  public func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    try prepared(params)
  }

  func check(_ params: Params) throws(InvalidParams) -> YouTubePost {
    let publishAt = try PublishAt.parse(
      params, now: environment.clock.wallNow(), window: 60...TimeInterval.greatestFiniteMagnitude,
      describe: "at least a minute in the future, when YouTube makes the private video public")
    var post = try YouTubePost(PublishAt.removed(from: params), media: environment.media)
    if let publishAt {
      // YouTube publishes at `publishAt` only a video that is private until then.
      guard params.values["privacyStatus"] == nil || post.privacyStatus == "private" else {
        throw InvalidParams(
          "`publishAt` needs `privacyStatus: private` (YouTube keeps the video private until then), got "
            + post.privacyStatus, field: "privacyStatus")
      }
      post.privacyStatus = "private"
      post.publishAt = RFC3339.string(from: publishAt)
    }
    return post
  }

  public func validate(context: OperationContext) async throws(SidecarError) -> ValidationResult {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> ValidationResult in
      try await validate(credential, context: context.call)
    }
  }

  public func refresh(context: OperationContext) async throws(SidecarError) -> RefreshResult {
    try await oauth.refreshNow(
      context: context,
      withoutRefreshToken: "This YouTube credential has no refresh token (it was authorized without offline access), "
        + "so it cannot be refreshed; reconnect the account with access_type=offline to get one.")
  }

  // MARK: - Publishing

  /// The video on local disk, ready to upload.
  struct LocalVideo: Sendable {
    var path: String
    var size: Int64
    var contentType: String
    /// True for a downloaded copy that is removed after the upload.
    var temporary: Bool
  }

  func publish(_ post: YouTubePost, context: OperationContext) async throws(SidecarError) -> PostResult {
    // The thumbnail is fetched first, so that a bad one fails the call before a video exists.
    var thumbnail: Thumbnail?
    if let source = post.thumbnail { thumbnail = try await fetchThumbnail(source, context: context.call) }
    defer { thumbnail?.media.remove() }
    let video = try await localVideo(post.source, context: context.call)
    defer { if video.temporary { try? FileManager.default.removeItem(atPath: video.path) } }
    try await spendUploadQuota(context.call)
    let refresher = oauth.refresher(for: context)
    let marker = context.idempotencyScope.map(Self.marker(for:)) ?? Self.newMarker()
    let started = context.call.interruptedSince ?? environment.clock.wallNow()
    if context.call.isInterrupted {
      let found = try await lookAfterInterruption(
        marker: marker, since: started, refresher: refresher, context: context)
      return try result(found, asked: post.privacyStatus, attempts: context.call.attempts)
    }
    let session = try await context.withCredential(refresher: refresher) {
      (credential: Credential) async throws(SidecarError) -> URL in
      try await startSession(
        post.metadata(marker: marker), notifySubscribers: post.notifySubscribers, video: video, credential: credential,
        context: context.call)
    }
    context.logger.info("youtube upload session started", ["bytes": .int(Int(video.size))])
    let upload = ResumableUpload(session: session, video: video, chunkSize: chunkSize)
    context.call.progress?.report(message: "Uploading the video", bytesSent: 0, bytesTotal: video.size)
    while true {
      let progress: UploadProgress
      do {
        progress = try await context.withCredential(refresher: refresher) {
          (credential: Credential) async throws(SidecarError) -> UploadProgress in
          try await uploadStep(upload, credential: credential, context: context.call)
        }
      } catch {
        let unknown = upload.ambiguous(error)
        guard unknown.kind == .outcomeUnknown else { throw unknown }
        // Every request was answered, so the session's state is final: it holds the video, or it never will (nobody
        // sends it more bytes), and the call ends with its own error, nothing published.
        if upload.everyRequestAnswered {
          switch await sessionState(upload, refresher: refresher, context: context) {
          case .complete(let resource)?:
            let published = try result(resource, asked: post.privacyStatus, attempts: context.call.attempts)
            try await finish(published, thumbnail: thumbnail, playlistId: post.playlistId, context: context)
            return published
          case .incomplete?: throw error
          case nil: break
          }
        }
        let resource = try await context.withCredential(refresher: refresher) {
          (credential: Credential) async throws(SidecarError) -> JSONValue in
          try await findUpload(
            marker: marker, since: started, after: unknown, credential: credential, context: context.call)
        }
        context.logger.info(
          "youtube upload reconciled from the channel's uploads", ["postId": .string(resource["id"]?.stringValue ?? "")]
        )
        return try result(resource, asked: post.privacyStatus, attempts: context.call.attempts)
      }
      switch progress {
      case .incomplete(let confirmed):
        context.call.progress?.report(message: "Uploading the video", bytesSent: confirmed, bytesTotal: video.size)
      case .complete(let resource):
        context.call.progress?.report(message: "Uploaded the video", bytesSent: video.size, bytesTotal: video.size)
        let published = try result(resource, asked: post.privacyStatus, attempts: context.call.attempts)
        try await finish(published, thumbnail: thumbnail, playlistId: post.playlistId, context: context)
        return published
      }
    }
  }

  /// Quota units YouTube charges for a `videos.insert`.
  static let uploadCost = 1_600

  /// The quota belongs to the Google Cloud project, not to a process: with a shared store each upload spends its units
  /// there first, and one the day's budget cannot afford is refused until the reset (midnight Pacific) without a
  /// request. Spent once the upload may start, even if it then fails: YouTube charges refused inserts too.
  func spendUploadQuota(_ context: CallContext) async throws(SidecarError) {
    let budget = environment.youtubeDailyQuotaUnits
    guard let counters = environment.core.counters, budget > 0 else { return }
    let now = environment.clock.wallNow()
    let reset = YouTubeErrors.nextPacificMidnight(after: now)
    guard await !counters.spend("quota:youtube:app", units: Self.uploadCost, limit: budget, windowEnd: reset) else {
      return
    }
    let message =
      "The app's daily YouTube quota (\(budget) units, \(Self.uploadCost) per upload) is spent across the "
      + "sidecars sharing this store; it resets at midnight Pacific time. No request was sent."
    throw SidecarError(
      kind: .quotaExhausted, message: message, platform: platform.rawValue, attempts: context.attempts,
      retryAfter: .milliseconds(Int64((reset.timeIntervalSince(now) * 1000).rounded(.up))),
      failure: PlatformFailure(.quotaExhausted, message: message, resetsAt: reset))
  }

  /// A thumbnail on disk (downloaded or local), with the media type YouTube is told.
  struct Thumbnail: Sendable {
    var media: MediaOnDisk
    var contentType: String
  }

  func fetchThumbnail(_ source: MediaSource, context: CallContext) async throws(SidecarError) -> Thumbnail {
    let media = try await environment.fetcher(for: .youtube).onDisk(
      source, field: "thumbnailUrl", limit: YouTubePost.maxThumbnailBytes, context: context)
    let refusal: String? =
      if media.file.size == 0 {
        "The thumbnail is an empty file."
      } else if media.file.size > YouTubePost.maxThumbnailBytes {
        "The thumbnail is \(media.file.size) bytes; YouTube takes thumbnails up to 2 MB."
      } else { nil }
    let name = if case .url(let url) = source { url.path } else { media.file.path }
    let type = YouTubePost.thumbnailType(path: name, served: media.contentType)
    guard refusal == nil, let type else {
      media.remove()
      throw SidecarError(
        kind: .permanent, message: refusal ?? "The thumbnail is neither JPEG nor PNG, the types YouTube takes.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    return Thumbnail(media: media, contentType: type)
  }

  /// The steps after the video exists: its thumbnail (`thumbnails.set`, safe to repeat) and its playlist
  /// (`playlistItems.insert`, a publish: never repeated after it may have arrived). A failure here is reported with
  /// the video's id, since the video is published and calling again would upload it twice.
  func finish(
    _ published: PostResult, thumbnail: Thumbnail?, playlistId: String?, context: OperationContext
  ) async throws(SidecarError) {
    let refresher = oauth.refresher(for: context)
    do throws(SidecarError) {
      if let thumbnail {
        _ = try await context.withCredential(refresher: refresher) { (credential: Credential) throws(SidecarError) in
          try await setThumbnail(thumbnail, videoId: published.postId, credential: credential, context: context.call)
        }
      }
      if let playlistId {
        _ = try await context.withCredential(refresher: refresher) { (credential: Credential) throws(SidecarError) in
          try await addToPlaylist(playlistId, videoId: published.postId, credential: credential, context: context.call)
        }
      }
    } catch {
      var failed = error
      if failed.kind.retryable { failed.kind = .permanent }
      failed.message =
        "The video \(published.postId) was uploaded (\(published.postUrl ?? "")) but a step after it failed; it was "
        + "not uploaded again. " + error.message
      throw failed
    }
  }

  func setThumbnail(_ thumbnail: Thumbnail, videoId: String, credential: Credential, context: CallContext)
    async throws(SidecarError) -> JSONValue
  {
    let url = api.url("/upload/youtube/v3/thumbnails/set", query: [("videoId", videoId), ("uploadType", "media")])
    let request = HTTPRequest(
      method: "POST", url: url,
      headers: [
        "Authorization": "Bearer \(credential.accessToken)", "Content-Type": thumbnail.contentType,
        "Content-Length": String(thumbnail.media.file.size),
      ],
      body: .file(path: thumbnail.media.file.path, offset: 0, length: thumbnail.media.file.size))
    return try await api.sendJSON(
      request, credential: credential, gates: api.gates(credential.accountId), context: context
    ).1
  }

  func addToPlaylist(_ playlistId: String, videoId: String, credential: Credential, context: CallContext)
    async throws(SidecarError) -> JSONValue
  {
    let body: JSONValue = [
      "snippet": [
        "playlistId": .string(playlistId), "resourceId": ["kind": "youtube#video", "videoId": .string(videoId)],
      ]
    ]
    let request = api.request(
      "POST", "/youtube/v3/playlistItems", query: [("part", "snippet")], body: body, credential: credential)
    return try await api.sendJSON(
      request, credential: credential, step: .publish, gates: api.gates(credential.accountId), context: context
    ).1
  }

  func localVideo(_ source: YouTubePost.Source, context: CallContext) async throws(SidecarError) -> LocalVideo {
    switch source {
    case .url(let url):
      let media = try await environment.fetcher(for: .youtube).fetch(
        url, field: "videoUrl", limit: YouTubePost.maxVideoBytes, context: context)
      guard media.byteCount > 0 else {
        media.remove()
        throw SidecarError(
          kind: .permanent, message: "`videoUrl` served an empty file; there is no video to upload.",
          platform: platform.rawValue, attempts: context.attempts)
      }
      return LocalVideo(
        path: media.path, size: media.byteCount,
        contentType: YouTubePost.contentType(path: url.path, served: media.contentType), temporary: true)
    case .path(let checked):
      // Examined again now, on the descriptor: the file may have changed since the params were checked.
      let file: LocalFile
      do throws(InvalidParams) {
        file = try LocalFile.examine(checked.path, field: "videoPath")
      } catch {
        throw SidecarError(kind: .permanent, message: error.reason, platform: platform.rawValue)
      }
      guard file.size > 0 else {
        throw SidecarError(
          kind: .permanent, message: "`videoPath` is empty now: \(file.path)", platform: platform.rawValue)
      }
      return LocalVideo(
        path: file.path, size: file.size, contentType: YouTubePost.contentType(path: file.path, served: nil),
        temporary: false)
    }
  }

  /// The upload of an interrupted publish (its sidecar died while uploading): the dead sidecar's last request is
  /// given one `http.timeoutMs` to land, then the channel's uploads made since the first claim are searched for the
  /// key's marker. Not found, not readable, or no time to wait before the deadline: `outcome_unknown`. Never uploaded
  /// again, even when the look shows it absent: the dead sidecar's upload session outlives it, and its last chunk may
  /// still complete the video after the look (a sidecar whose store lease lapsed may not even be dead).
  private func lookAfterInterruption(
    marker: String, since: Date, refresher: (@Sendable (Credential) async throws(SidecarError) -> Credential)?,
    context: OperationContext
  ) async throws(SidecarError) -> JSONValue {
    let interrupted = SidecarError(
      kind: .outcomeUnknown, message: CallContext.interruptedMessage + ".", platform: platform.rawValue, attempts: 1)
    let wake = environment.clock.now() + api.http.timeout
    if let deadline = context.call.deadline, wake >= deadline {
      throw interrupted.appending(
        "There was no time left before the deadline to wait for its upload to land and look for it; check the "
          + "channel for a video tagged \(marker) before uploading again.")
    }
    do { try await environment.clock.sleep(until: wake) } catch { throw interrupted }
    let look: UploadLook
    do {
      look = try await context.withCredential(refresher: refresher) {
        (credential: Credential) async throws(SidecarError) -> UploadLook in
        try await lookForUpload(marker: marker, since: since, credential: credential, context: context.call)
      }
    } catch {
      throw interrupted.appending(
        "The channel's uploads could not be read (\(error.message)); check the channel for a video tagged \(marker) "
          + "before uploading again.")
    }
    switch look {
    case .found(let video):
      context.logger.info(
        "interrupted youtube upload found in the channel's uploads", ["postId": JSONValue(video["id"]?.stringValue)])
      return video
    case .absent(let searched):
      throw interrupted.appending(
        "None of the channel's \(searched) uploads made since it was first claimed carries its marker tag \(marker), "
          + "so its upload most likely never completed; it was not uploaded again, since the dead sidecar's upload "
          + "session may still complete. Check the channel before uploading again.")
    case .beyondWindow(let searched):
      throw interrupted.appending(
        "The channel's \(searched) newest uploads were all made after it was first claimed and none carries its marker "
          + "tag \(marker); check the channel before uploading again.")
    }
  }

  /// The marker of a keyed upload, the same in every sidecar: `sidecar-` and the first 16 hex digits of the SHA-256
  /// of the idempotency scope.
  static func marker(for scope: String) -> String {
    "sidecar-" + String(SHA256.hex(SHA256.hash(Array(scope.utf8))).prefix(16))
  }

  /// A tag unique to one upload: `sidecar-` and 16 hex digits.
  static func newMarker() -> String {
    var generator = SystemRandomNumberGenerator()
    return "sidecar-" + SHA256.hex((0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) })
  }

  /// After an unknown outcome: the channel's newest upload that carries `marker`, or `unknown` saying what was
  /// checked.
  func findUpload(
    marker: String, since: Date, after unknown: SidecarError, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> JSONValue {
    let look: UploadLook
    do {
      look = try await lookForUpload(marker: marker, since: since, credential: credential, context: context)
    } catch {
      throw unknown.appending(
        "The channel's uploads could not be read (\(error.message)); check the channel for a video tagged \(marker) "
          + "before posting again.")
    }
    switch look {
    case .found(let video): return video
    case .absent(let searched), .beyondWindow(let searched):
      throw unknown.appending(
        "None of the channel's \(searched) newest uploads carries this upload's marker tag \(marker), so the video was "
          + "most likely not created; check the channel before posting again.")
    }
  }

  enum UploadLook {
    case found(JSONValue)
    /// Every upload made since the look's start time was read (`searched` uploads in all); none carries the marker.
    case absent(searched: Int)
    /// The `searched` newest uploads, the most one look reads, were all made since then; none carries the marker.
    case beyondWindow(searched: Int)
  }

  /// Uploads one look reads at most, in pages of 50 (the most YouTube lists at once): a busy channel may upload many
  /// while a lost answer settles.
  static let uploadsWindow = 200

  /// The channel's upload made since `since` that carries `marker`. The channel's uploads playlist lists new videos
  /// within moments, newest first; their tags are readable by the owner. It is read page by page until an upload made
  /// before `since` (less five minutes of clock skew) or the channel's first one, at most ``uploadsWindow`` of them.
  /// Throws when the uploads cannot be read.
  func lookForUpload(marker: String, since: Date, credential: Credential, context: CallContext)
    async throws(SidecarError) -> UploadLook
  {
    func get(_ path: String, _ query: [(String, String)]) async throws(SidecarError) -> JSONValue {
      try await api.sendJSON(
        api.request("GET", "/youtube/v3" + path, query: query, credential: credential), credential: credential,
        gates: api.appGates, context: context
      ).1
    }
    let channels = try await get("/channels", [("part", "contentDetails"), ("mine", "true")])
    guard
      let uploads = channels["items"]?.arrayValue?.first?["contentDetails"]?["relatedPlaylists"]?["uploads"]?
        .stringValue
    else {
      throw SidecarError(
        kind: .permanent, message: "the channel's uploads playlist could not be found", platform: platform.rawValue,
        attempts: context.attempts)
    }
    let oldest = since.addingTimeInterval(-300)
    var searched = 0
    var pageToken: String?
    while searched < Self.uploadsWindow {
      let page = try await get(
        "/playlistItems",
        [("part", "contentDetails"), ("playlistId", uploads), ("maxResults", "50")]
          + (pageToken.map { [("pageToken", $0)] } ?? []))
      let items = page["items"]?.arrayValue ?? []
      let made = items.prefix { item in
        item["contentDetails"]?["videoPublishedAt"]?.stringValue.flatMap(RFC3339.date(from:)).map { $0 >= oldest }
          ?? true
      }
      let ids = made.compactMap { $0["contentDetails"]?["videoId"]?.stringValue }
      if !ids.isEmpty {
        let videos = try await get("/videos", [("part", "snippet,status"), ("id", ids.joined(separator: ","))])
        for video in videos["items"]?.arrayValue ?? []
        where (video["snippet"]?["tags"]?.arrayValue ?? []).contains(.string(marker)) {
          return .found(video)
        }
      }
      searched += made.count
      pageToken = page["nextPageToken"]?.stringValue
      if made.count < items.count || items.isEmpty || pageToken == nil { return .absent(searched: searched) }
    }
    return .beyondWindow(searched: searched)
  }

  /// Step 1 of the resumable protocol: announce the video and its metadata, get the session URL.
  func startSession(
    _ metadata: JSONValue, notifySubscribers: Bool?, video: LocalVideo, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> URL {
    let base = api.uploadURL
    let notify = notifySubscribers.map { "&notifySubscribers=\($0)" } ?? ""
    let url = Encoding.parse(
      base + (base.contains("?") ? "&" : "?") + "uploadType=resumable&part=snippet,status" + notify)
    let request = HTTPRequest(
      method: "POST", url: url,
      headers: [
        "Authorization": "Bearer \(credential.accessToken)", "Content-Type": "application/json; charset=UTF-8",
        "X-Upload-Content-Length": String(video.size), "X-Upload-Content-Type": video.contentType,
      ],
      body: Encoding.jsonBody(metadata))
    let response = try await api.http.send(
      request, step: .idempotent, gates: api.gates(credential.accountId), context: context
    ) { [api] response in
      guard (200..<300).contains(response.status) else { return api.failure(response, credential: credential) }
      // Starting a session is harmless, so an answer without one (a proxy's page, a cut answer) is tried again.
      guard response.headers["Location"] != nil else {
        return PlatformFailure(
          .transient, message: "YouTube's answer started no upload session: it had no Location.",
          httpStatus: response.status)
      }
      return nil
    }
    guard let location = response.headers["Location"], let session = URL(string: location, relativeTo: url)?.absoluteURL
    else {
      throw SidecarError(
        kind: .permanent,
        message: response.headers["Location"] == nil
          ? "YouTube started no upload session: its answer had no Location."
          : "YouTube answered with an upload session URL that cannot be used.",
        platform: platform.rawValue, attempts: context.attempts,
        failure: PlatformFailure(.permanent, message: "no usable Location", httpStatus: response.status))
    }
    return session
  }

  enum UploadProgress: Sendable {
    /// The session holds bytes `0 ..< confirmed`.
    case incomplete(confirmed: Int64)
    /// The upload is complete: the video resource.
    case complete(JSONValue)
  }

  /// Steps 2 and 3: one chunk, preceded by a status query when the previous request failed. One run of the resilience
  /// core per chunk, so every chunk gets the full retry allowance.
  func uploadStep(_ upload: ResumableUpload, credential: Credential, context: CallContext) async throws(SidecarError)
    -> UploadProgress
  {
    // The chunks are retried like idempotent steps, but the last one creates the video: a shared idempotency store
    // hears "sending" before the first one goes out (announcing).
    let token = credential.accessToken
    let channel = credential.accountId
    return try await environment.core.run(
      platform: platform.rawValue, step: .idempotent, gates: api.gates(channel), announcing: true, context: context
    ) { () async throws -> UploadProgress in
      do {
        if upload.mustProbe {
          let progress = try interpret(
            try await transfer(upload.probe(token: token, timeout: api.http.timeout), context), channel)
          upload.record(progress)
          if case .complete = progress { return progress }
        }
        let (request, start) = upload.nextChunk(token: token, timeout: api.http.timeout)
        let progress = try interpret(try await transfer(request, context), channel)
        upload.record(progress)
        if case .incomplete(let confirmed) = progress, confirmed <= start {
          throw PlatformFailure(.transient, message: "YouTube kept none of the bytes sent from offset \(start).")
        }
        return progress
      } catch let failure as PlatformFailure {
        upload.failed(failure)
        throw failure
      }
    }
  }

  /// Sends one request of the upload, bounded by the call's deadline (the transport part of ``PlatformHTTP/send``).
  private func transfer(_ request: HTTPRequest, _ context: CallContext) async throws -> HTTPResponse {
    let http = api.http
    var attempt = request
    if attempt.connectTimeout == nil { attempt.connectTimeout = http.connectTimeout }
    if let deadline = context.deadline {
      let remaining = environment.clock.now().duration(to: deadline)
      if remaining <= .zero { throw CancellationError() }
      attempt.timeout = min(attempt.timeout ?? remaining, remaining)
    }
    let response: HTTPResponse
    do {
      response = try await http.transport.send(attempt)
    } catch let error as TransportError {
      if error.kind == .cancelled { throw CancellationError() }
      throw PlatformFailure.transport(error)
    }
    http.logger.debug(
      "platform response",
      [
        "platform": "youtube", "method": .string(request.method), "url": .string(Redaction.url(request.url)),
        "status": .int(response.status),
      ])
    return response
  }

  /// One status query of the session, after its upload failed; nil when it cannot be read.
  func sessionState(
    _ upload: ResumableUpload, refresher: (@Sendable (Credential) async throws(SidecarError) -> Credential)?,
    context: OperationContext
  ) async -> UploadProgress? {
    try? await context.withCredential(refresher: refresher) {
      (credential: Credential) async throws(SidecarError) -> UploadProgress in
      let (token, channel) = (credential.accessToken, credential.accountId)
      return try await environment.core.run(
        platform: platform.rawValue, step: .idempotent, gates: api.gates(channel), context: context.call
      ) { () async throws -> UploadProgress in
        try interpret(try await transfer(upload.probe(token: token, timeout: api.http.timeout), context.call), channel)
      }
    }
  }

  /// What an answer to a chunk or a status query says about the upload.
  private func interpret(_ response: HTTPResponse, _ channel: String) throws -> UploadProgress {
    switch response.status {
    case 308:
      return .incomplete(confirmed: ResumableUpload.confirmedBytes(range: response.headers["Range"]))
    case 200, 201:
      // An answer that names no video proves nothing either way; the session knows: the next attempt asks it first,
      // and a session completes into one video at most.
      guard let video = try? JSONParser.parse(response.body), video["id"]?.stringValue?.isEmpty == false else {
        throw PlatformFailure(
          .transient, message: "YouTube answered the upload with a body that names no video; asking the session.",
          httpStatus: response.status, requestMayHaveReachedPlatform: true)
      }
      return .complete(video)
    case 404:
      throw PlatformFailure(
        .permanent,
        message: "YouTube no longer knows the upload session (it expired or was cancelled); no video was created "
          + "from it.", httpStatus: 404)
    default:
      throw api.failure(response, channel: channel)
    }
  }

  /// What YouTube did with the upload, from the insert's answer: rejected and failed uploads are errors; a privacy
  /// other than the one asked (API projects YouTube has not audited are locked to private) is reported with a warning.
  func result(_ video: JSONValue, asked privacy: String, attempts: Int) throws(SidecarError) -> PostResult {
    let id = video["id"]?.stringValue ?? ""
    let status = video["status"]
    let actual = status?["privacyStatus"]?.stringValue
    var warnings: [String] = []
    if let actual, actual != privacy {
      warnings.append(
        "YouTube set the video to \(actual) although \(privacy) was asked: "
          + "YouTube locks videos uploaded by API projects it has not audited to private. "
          + "Change the privacy in YouTube Studio, or have the project audited.")
    }
    let state: PostResult.Status
    switch status?["uploadStatus"]?.stringValue {
    case let state? where state == "rejected" || state == "failed":
      let reason = status?["rejectionReason"]?.stringValue ?? status?["failureReason"]?.stringValue ?? "no reason given"
      throw SidecarError(
        kind: .permanent, message: "YouTube \(state) video \(id) (\(reason)).", platform: platform.rawValue,
        attempts: attempts,
        failure: PlatformFailure(.permanent, message: "upload \(state)", platformCode: .string(reason)))
    case _ where status?["publishAt"]?.stringValue != nil:
      return PostResult(postId: id, postUrl: Self.watchURL(id), status: .scheduled)
    case "processed"?:
      state = .published
    default:
      state = .processing
    }
    return PostResult(
      postId: id, postUrl: Self.watchURL(id), status: state, privacyStatus: actual ?? privacy, warnings: warnings)
  }

  static func watchURL(_ id: String) -> String {
    "https://www.youtube.com/watch?v=" + Encoding.percentEncode(id)
  }

  // MARK: - Validation

  func validate(_ credential: Credential, context: CallContext) async throws(SidecarError) -> ValidationResult {
    let channelId = credential.accountId
    var channel: JSONValue?
    var channelReadable = true
    do throws(SidecarError) {
      let (_, json) = try await api.sendJSON(
        api.request(
          "GET", "/youtube/v3/channels", query: [("part", "snippet"), ("mine", "true")], credential: credential),
        credential: credential, gates: api.appGates, context: context)
      channel = json["items"]?.arrayValue?.first
    } catch {
      // A token with only youtube.upload may post but not read the channel: the scopes decide then.
      guard error.failure?.platformCode == "insufficientPermissions" else { throw error }
      channelReadable = false
    }
    let token = await tokenInfo(credential, context: context)
    var problems: [String] = []
    var missing: [String] = []
    let foundId = channel?["id"]?.stringValue
    if channelReadable && foundId == nil {
      problems.append("The Google account has no YouTube channel; create one before uploading.")
    }
    if let foundId, !channelId.isEmpty, foundId != channelId {
      problems.append(
        "The token belongs to channel \(foundId), not to \(channelId), the channel this credential names.")
    }
    if let scopes = token?.scopes, !scopes.contains(where: Self.uploadScopes.contains) {
      missing.append(Self.uploadScope)
      problems.append(
        "The token lacks the youtube.upload scope, so it cannot upload videos; reconnect the account granting it.")
    }
    if !channelReadable && token == nil {
      problems.append("Neither the channel nor the token's scopes could be read, so posting could not be verified.")
    }
    return ValidationResult(
      valid: problems.isEmpty, accountId: foundId ?? channelId, accountName: channel?["snippet"]?["title"]?.stringValue,
      scopes: token?.scopes, missing: missing.isEmpty ? nil : missing,
      expiresAt: token?.expiresAt ?? credential.expiresAt,
      problems: problems.isEmpty ? nil : problems)
  }

  /// The token's scopes and expiry from Google's `tokeninfo` (next to the token endpoint), or nil when unavailable.
  func tokenInfo(_ credential: Credential, context: CallContext) async -> (scopes: [String], expiresAt: Date?)? {
    guard let tokenURL = URL(string: api.tokenURL) else { return nil }
    let base = tokenURL.deletingLastPathComponent().appendingPathComponent("tokeninfo").absoluteString
    let request = HTTPRequest(url: Encoding.url(base, "", query: [("access_token", credential.accessToken)]))
    do {
      let (_, json) = try await api.http.sendJSON(
        request, step: .idempotent, context: context, classify: StatusFallback.sideLookup("tokeninfo"))
      let scopes = (json["scope"]?.stringValue ?? "").split(separator: " ").map(String.init)
      let expiry = json["exp"].flatMap { $0.intValue ?? $0.stringValue.flatMap { Int($0) } }
      return (scopes, expiry.map { Date(timeIntervalSince1970: Double($0)) })
    } catch {
      return nil
    }
  }
}
