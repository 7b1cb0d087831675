#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Facebook Pages publishing with a Page access token (docs/platforms/meta.md).
///
/// Invisible preparation (unpublished photos, reel and story upload sessions) is retried freely; the one visible
/// call of each post is a `.publish` step. When that call's outcome is unknown, the post is looked for where Meta
/// lets us (the Page feed for text, the video's publishing phase for reels and video stories) before the call ends
/// with `outcome_unknown`.
public final class FacebookClient: PlatformClient, Publisher {
  public let platform = Platform.facebook
  let graph: GraphAPI
  /// `graph-video.facebook.com` for `/videos` when talking to the real Graph host; the configured base otherwise.
  let videoGraph: GraphAPI
  let media: MediaPolicy
  let fetcher: MediaFetcher

  public init(environment: PlatformEnvironment) {
    graph = GraphAPI(environment: environment, platform: .facebook)
    let videoBase =
      graph.baseURL == PlatformEndpoints.defaultGraphBaseURL ? PlatformEndpoints.graphVideoBaseURL : graph.baseURL
    videoGraph = GraphAPI(environment: environment, platform: .facebook, baseURL: videoBase)
    media = environment.media
    fetcher = environment.fetcher(for: .facebook)
  }

  public func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    try prepared(params)
  }

  func check(_ params: Params) throws(InvalidParams) -> (post: FacebookPost, publishAt: Date?) {
    let publishAt = try PublishAt.parse(
      params, now: graph.clock.wallNow(), window: Self.schedulingWindow,
      describe: "between 10 minutes and 30 days from now, the window Facebook allows for scheduled Page posts")
    let post = try FacebookPost(PublishAt.removed(from: params), media: media)
    if publishAt != nil, !post.schedulable {
      throw InvalidParams(
        "`publishAt` schedules Facebook feed posts (text, link, photos); videos, stories and reels are published at "
          + "once", field: "publishAt")
    }
    return (post, publishAt)
  }

  func publish(
    _ checked: (post: FacebookPost, publishAt: Date?), context: OperationContext
  ) async throws(SidecarError) -> PostResult {
    try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
      try await publish(checked.post, at: checked.publishAt, credential: credential, context: context)
    }
  }

  /// How far ahead Facebook accepts `scheduled_publish_time`: 10 minutes to 30 days.
  static let schedulingWindow: ClosedRange<TimeInterval> = 600...(30 * 86_400)

  public func validate(context: OperationContext) async throws(SidecarError) -> ValidationResult {
    try await MetaValidation.run(context) { credential throws(SidecarError) in
      let page = credential.accountId
      let info = try await graph.inspect(credential, context: context.call)
      let node = try await graph.send(
        .get(GraphAPI.path(page), fields: "id,name,link"), token: graph.token(credential), accountId: page,
        context: context.call)
      var missing = info?.missing(["pages_manage_posts", "pages_read_engagement"], for: page) ?? []
      var problems: [String] = []
      if let info, !info.isValid {
        problems.append("Meta reports the token as invalid: \(info.errorMessage ?? "no reason given"). Reconnect.")
      }
      if let info, info.type == "USER" {
        // A user token can list the person's tasks on the Page; a Page token cannot (it exists only for people
        // with a task on the Page, and posting with it proves CREATE_CONTENT).
        let accounts = try await graph.send(
          .get("/me/accounts", fields: "id,name,tasks", query: [("limit", "100")]), token: graph.token(credential),
          accountId: page, context: context.call)
        let entry = accounts["data"]?.arrayValue?.first { $0["id"]?.graphID == page }
        let tasks = (entry?["tasks"]?.arrayValue ?? []).compactMap(\.stringValue)
        if !tasks.contains("CREATE_CONTENT") && !tasks.contains("MANAGE") { missing.append("CREATE_CONTENT") }
        problems.append("The credential is a user token; posts need the Page's own access token.")
      }
      if let info, !info.scopes.contains("publish_video") {
        problems.append("Without publish_video, video posts and reels on this Page will be refused.")
      }
      if info == nil { problems.append("The token's permissions could not be inspected (debug_token refused).") }
      return ValidationResult(
        valid: missing.isEmpty && (info?.isValid ?? true) && info?.type != "USER", accountId: page,
        accountName: node["name"]?.stringValue, scopes: info?.scopes, missing: missing.isEmpty ? nil : missing,
        expiresAt: info?.expiresAt, problems: problems.isEmpty ? nil : problems)
    }
  }

  public func refresh(context: OperationContext) async throws(SidecarError) -> RefreshResult {
    throw SidecarError(
      kind: .unsupported,
      message: "Facebook Page access tokens do not expire and cannot be refreshed; if this one stopped working, "
        + "reconnect the Facebook account to issue a new one.",
      platform: platform.rawValue)
  }

  // MARK: - Publishing

  /// One Page and token for the requests of one publish (a class: every step's frame holds a reference, not a copy).
  private final class PageCall: Sendable {
    let page: String
    let token: GraphToken
    let context: OperationContext
    let started: Date
    /// `published=false` and `scheduled_publish_time` for a post scheduled with `publishAt`; empty otherwise.
    let schedule: [(String, String?)]
    var call: CallContext { context.call }

    init(page: String, token: GraphToken, context: OperationContext, started: Date, publishAt: Date?) {
      self.page = page
      self.token = token
      self.context = context
      self.started = started
      schedule =
        publishAt.map {
          [("published", "false"), ("scheduled_publish_time", String(Int($0.timeIntervalSince1970)))]
        } ?? []
    }
  }

  /// Each kind of post in its own function (never inlined): a suspended publish's async frame holds only the kind
  /// that runs, not the union of all of them.
  func publish(
    _ post: FacebookPost, at publishAt: Date? = nil, credential: Credential, context: OperationContext
  ) async throws(SidecarError) -> PostResult {
    let page = pageCall(credential, context, publishAt: publishAt)
    if publishAt != nil { return try await scheduled(post, page) }
    switch post {
    case .feed(let text, let link, let button): return try await publishFeed(text, link: link, button: button, page)
    case .photo(let url, let caption, let altText):
      return try await publishPhoto(url, caption: caption, altText: altText, page)
    case .album(let urls, let text): return try await publishAlbum(urls, text: text, page)
    case .video(let url, let description, let title, let thumbnail):
      return try await publishVideo(url, description: description, title: title, thumbnail: thumbnail, page)
    case .localVideo(let file, let description, let title):
      return try await publishLocalVideo(file, description: description, title: title, page)
    case .photoStory(let url): return try await publishPhotoStory(url, page)
    case .videoStory(let source): return try await publishVideoStory(source, page)
    case .reel(let source, let description): return try await publishReel(source, description: description, page)
    }
  }

  @inline(never)
  private func pageCall(_ credential: Credential, _ context: OperationContext, publishAt: Date?) -> PageCall {
    PageCall(
      page: credential.accountId, token: graph.token(credential), context: context,
      started: context.call.interruptedSince ?? graph.clock.wallNow(), publishAt: publishAt)
  }

  /// A feed post scheduled with `publishAt`: a photo goes as an unpublished photo attached to the scheduled post.
  @inline(never)
  private func scheduled(_ post: FacebookPost, _ page: PageCall) async throws(SidecarError) -> PostResult {
    var result: PostResult
    switch post {
    case .feed(let text, let link, let button): result = try await publishFeed(text, link: link, button: button, page)
    case .photo(let url, let caption, _): result = try await publishAlbum([url], text: caption, page)
    case .album(let urls, let text): result = try await publishAlbum(urls, text: text, page)
    default:  // preparePublish refuses `publishAt` on other kinds; never reached
      throw SidecarError(
        kind: .permanent, message: "Facebook schedules feed posts only.", platform: platform.rawValue, attempts: 0)
    }
    result.status = .scheduled
    return result
  }

  private func send(
    _ request: GraphCall, _ page: PageCall, step: StepSafety = .idempotent, via api: GraphAPI? = nil
  ) async throws(SidecarError) -> JSONValue {
    try await (api ?? graph).send(request, token: page.token, accountId: page.page, step: step, context: page.call)
  }

  /// A publish with text, reconciled from the Page feed after an unknown outcome (see ``ReconciledPublish``); without
  /// text there is nothing to look for.
  private func reconciled(
    _ text: String?, _ page: PageCall, _ publish: () async throws(SidecarError) -> PostResult
  ) async throws(SidecarError) -> PostResult {
    guard let text, !text.isEmpty else {
      do throws(SidecarError) {
        return try await publish()
      } catch let error where error.kind == .outcomeUnknown {
        throw error.appending("Without text the post cannot be looked for; check the Page before posting again.")
      }
    }
    let reconcile = ReconciledPublish(
      settle: graph.http.timeout, clock: graph.clock, logger: page.context.logger,
      checked: "The Page's feed posts made since the publish started",
      isDuplicate: { $0.failure?.platformCode == .int(506) })
    return try await reconcile.run(context: page.call, send: publish) { () throws(SidecarError) in
      try await findFeedPost(text: text, since: page.started, token: page.token, page: page.page, context: page.call)
    }
  }

  @inline(never)
  private func publishFeed(
    _ text: String?, link: String?, button: String?, _ page: PageCall
  ) async throws(SidecarError) -> PostResult {
    let callToAction = button.map { type in
      JSONValue.object(["type": .string(type), "value": ["link": .string(link ?? "")]]).jsonString
    }
    return try await reconciled(text, page) { () throws(SidecarError) in
      let json = try await send(
        .post(
          GraphAPI.path(page.page, "feed"), query: [("fields", "id,permalink_url")],
          form: [("message", text), ("link", link), ("call_to_action", callToAction)] + page.schedule),
        page, step: .publish)
      return try feedResult(json)
    }
  }

  @inline(never)
  private func publishPhoto(
    _ url: URL, caption: String?, altText: String?, _ page: PageCall
  ) async throws(SidecarError) -> PostResult {
    try await reconciled(caption, page) { () throws(SidecarError) in
      let json = try await send(
        .post(
          GraphAPI.path(page.page, "photos"),
          form: [("url", url.absoluteString), ("caption", caption), ("alt_text_custom", altText)]),
        page, step: .publish)
      guard let id = json["post_id"]?.graphID ?? json["id"]?.graphID else { throw noID(page.call) }
      return PostResult(postId: id, postUrl: "https://www.facebook.com/\(id)", status: .published)
    }
  }

  @inline(never)
  private func publishAlbum(_ urls: [URL], text: String?, _ page: PageCall) async throws(SidecarError) -> PostResult {
    var attached: [(String, String?)] = [("message", text)]
    for (index, url) in urls.enumerated() {
      let photo = try await unpublishedPhoto(url, page: page.page, token: page.token, context: page.call)
      attached.append(("attached_media[\(index)]", JSONValue.object(["media_fbid": .string(photo)]).jsonString))
    }
    return try await reconciled(text, page) { () throws(SidecarError) in
      let json = try await send(
        .post(
          GraphAPI.path(page.page, "feed"), query: [("fields", "id,permalink_url")], form: attached + page.schedule),
        page,
        step: .publish)
      return try feedResult(json)
    }
  }

  @inline(never)
  private func publishVideo(
    _ url: URL, description: String?, title: String?, thumbnail: URL?, _ page: PageCall
  ) async throws(SidecarError) -> PostResult {
    let fields = [("file_url", url.absoluteString), ("description", description), ("title", title)]
    var request = GraphCall.post(GraphAPI.path(page.page, "videos"), form: fields)
    if let thumbnail {
      // Graph takes a custom thumbnail only as the `thumb` file part of the upload itself: fetched first, so that a
      // bad image fails the call before a video exists.
      let image = try await fetchThumbnail(thumbnail, page.call)
      let (body, contentType) = Encoding.multipart(
        fields.compactMap { name, value in value.map { (name, $0) } },
        file: (name: "thumb", filename: "thumbnail", contentType: image.contentType, data: image.data))
      request = GraphCall("POST", GraphAPI.path(page.page, "videos"), body: .encoded(body, contentType: contentType))
    }
    do throws(SidecarError) {
      let json = try await send(request, page, step: .publish, via: videoGraph)
      guard let id = json["id"]?.graphID else { throw noID(page.call) }
      return PostResult(postId: id, postUrl: "https://www.facebook.com/\(page.page)/videos/\(id)", status: .processing)
    } catch let error where error.kind == .outcomeUnknown {
      throw error.appending(
        "Facebook offers no way to look the video up by its upload; check the Page before posting again.")
    }
  }

  /// The image at `thumbnailUrl`, downloaded through the media fetcher (SSRF policy, size cap) and held in memory for
  /// the multipart body; refused unless it is a JPEG or PNG (by its first bytes, whatever the host claims).
  private func fetchThumbnail(_ url: URL, _ call: CallContext) async throws(SidecarError) -> (
    data: Data, contentType: String
  ) {
    let media = try await fetcher.onDisk(
      .url(url), field: "thumbnailUrl", limit: FacebookPost.maxThumbnailBytes, context: call)
    defer { media.remove() }
    let data = FileManager.default.contents(atPath: media.file.path)
    let type: String? =
      if data?.starts(with: [0xFF, 0xD8, 0xFF]) == true {
        "image/jpeg"
      } else if data?.starts(with: [0x89, 0x50, 0x4E, 0x47]) == true { "image/png" } else { nil }
    guard let data, let type else {
      throw SidecarError(
        kind: .permanent,
        message: "The file at `thumbnailUrl` is not a JPEG or PNG image; Facebook needs one for a "
          + "video thumbnail.", platform: platform.rawValue, attempts: call.attempts)
    }
    return (data, type)
  }

  /// A video from a local file, in Graph's chunked upload: `start` names the session and the first byte range,
  /// each `transfer` sends that range (a multipart body written to a temporary file and streamed from there, so memory
  /// stays flat whatever chunk size Graph names) and is answered with the next,
  /// `finish` publishes. A transfer is safe to repeat: the range is named by its `start_offset`, so after a dropped
  /// connection the same chunk is sent again and the session picks up where it stands.
  @inline(never)
  private func publishLocalVideo(
    _ file: LocalFile, description: String?, title: String?, _ page: PageCall
  ) async throws(SidecarError) -> PostResult {
    let edge = GraphAPI.path(page.page, "videos")
    let start = try await send(
      .post(edge, form: [("upload_phase", "start"), ("file_size", String(file.size))]), page, via: videoGraph)
    guard let video = start["video_id"]?.graphID, let session = start["upload_session_id"]?.graphID else {
      throw SidecarError(
        kind: .permanent, message: "Facebook's upload start answer had no video_id and upload_session_id.",
        platform: platform.rawValue, attempts: page.call.attempts)
    }
    var range = try chunkRange(start, file: file, page.call)
    page.call.progress?.report(message: "Uploading the video", bytesSent: 0, bytesTotal: file.size)
    while range.lowerBound < range.upperBound {
      guard
        let chunk = MultipartFile.write(
          [("upload_phase", "transfer"), ("upload_session_id", session), ("start_offset", String(range.lowerBound))],
          file: "video_file_chunk", filename: "chunk", contentType: "application/octet-stream", source: file,
          range: range)
      else {
        throw SidecarError(
          kind: .permanent, message: "`videoPath` changed while it was being uploaded: \(file.path)",
          platform: platform.rawValue, attempts: page.call.attempts)
      }
      defer { chunk.remove() }
      let body = HTTPBody.file(path: chunk.path, offset: 0, length: chunk.size)
      let answer = try await send(
        GraphCall("POST", edge, body: .encoded(body, contentType: chunk.contentType)), page, via: videoGraph)
      let next = try chunkRange(answer, file: file, page.call)
      guard next.lowerBound > range.lowerBound || next.isEmpty else {
        throw SidecarError(
          kind: .transientExhausted,
          message: "Facebook kept none of the video's bytes from offset \(range.lowerBound).",
          platform: platform.rawValue, attempts: page.call.attempts)
      }
      range = next
      page.call.progress?.report(
        message: "Uploading the video", bytesSent: min(range.lowerBound, file.size), bytesTotal: file.size)
    }
    do throws(SidecarError) {
      let json = try await send(
        .post(
          edge,
          form: [
            ("upload_phase", "finish"), ("upload_session_id", session), ("description", description), ("title", title),
          ]), page, step: .publish, via: videoGraph)
      try confirmSuccess(json, page.call)
    } catch let error where error.kind == .outcomeUnknown {
      throw error.appending("Check the Page for video \(video) before posting again.")
    }
    return PostResult(
      postId: video, postUrl: "https://www.facebook.com/\(page.page)/videos/\(video)", status: .processing)
  }

  /// The byte range Facebook asks for next (`start_offset` ..< `end_offset`); empty when the upload is complete.
  private func chunkRange(_ json: JSONValue, file: LocalFile, _ call: CallContext) throws(SidecarError) -> Range<Int64>
  {
    func offset(_ key: String) -> Int64? {
      json[key].flatMap { $0.intValue ?? $0.stringValue.flatMap { Int($0) } }.map(Int64.init)
    }
    guard let start = offset("start_offset"), let end = offset("end_offset"), 0 <= start, start <= end, end <= file.size
    else {
      throw SidecarError(
        kind: .permanent, message: "Facebook answered the video upload with an unusable byte range.",
        platform: platform.rawValue, attempts: call.attempts)
    }
    return start..<end
  }

  @inline(never)
  private func publishPhotoStory(_ url: URL, _ page: PageCall) async throws(SidecarError) -> PostResult {
    let photo = try await unpublishedPhoto(url, page: page.page, token: page.token, context: page.call)
    do throws(SidecarError) {
      let json = try await send(
        .post(GraphAPI.path(page.page, "photo_stories"), form: [("photo_id", photo)]), page, step: .publish)
      try confirmSuccess(json, page.call)
      return PostResult(postId: json["post_id"]?.graphID ?? photo, postUrl: nil, status: .published)
    } catch let error where error.kind == .outcomeUnknown {
      throw error.appending("Facebook offers no way to look a story up; check the Page before posting again.")
    }
  }

  @inline(never)
  private func publishVideoStory(_ source: MediaSource, _ page: PageCall) async throws(SidecarError) -> PostResult {
    let video = try await uploadSessionVideo(
      source, edge: "video_stories", page: page.page, token: page.token, context: page.call)
    do throws(SidecarError) {
      let json = try await send(
        .post(GraphAPI.path(page.page, "video_stories"), form: [("upload_phase", "finish"), ("video_id", video)]),
        page, step: .publish)
      try confirmSuccess(json, page.call)
      return PostResult(postId: json["post_id"]?.graphID ?? video, postUrl: nil, status: .published)
    } catch let error where error.kind == .outcomeUnknown {
      if try await videoWasPublished(video, token: page.token, page: page.page, context: page.call) {
        return PostResult(postId: video, postUrl: nil, status: .published)
      }
      throw error.appending("The video's publishing phase did not complete; check the Page before posting again.")
    }
  }

  @inline(never)
  private func publishReel(_ source: MediaSource, description: String?, _ page: PageCall) async throws(SidecarError)
    -> PostResult
  {
    let video = try await uploadSessionVideo(
      source, edge: "video_reels", page: page.page, token: page.token, context: page.call)
    let result = PostResult(postId: video, postUrl: "https://www.facebook.com/reel/\(video)", status: .processing)
    do throws(SidecarError) {
      let json = try await send(
        .post(
          GraphAPI.path(page.page, "video_reels"),
          form: [
            ("upload_phase", "finish"), ("video_id", video), ("video_state", "PUBLISHED"), ("description", description),
          ]),
        page, step: .publish)
      try confirmSuccess(json, page.call)
      return result
    } catch let error where error.kind == .outcomeUnknown {
      if try await videoWasPublished(video, token: page.token, page: page.page, context: page.call) { return result }
      throw error.appending("The reel's publishing phase did not complete; check the Page before posting again.")
    }
  }

  /// Uploads a photo that stays invisible until a feed post or story uses it; safe to repeat.
  private func unpublishedPhoto(
    _ url: URL, page: String, token: GraphToken, context: CallContext
  ) async throws(SidecarError) -> String {
    let json = try await graph.send(
      .post(GraphAPI.path(page, "photos"), form: [("url", url.absoluteString), ("published", "false")]), token: token,
      accountId: page, context: context)
    guard let id = json["id"]?.graphID else {
      throw SidecarError(
        kind: .permanent, message: "Facebook accepted the photo at `\(url.absoluteString)` but answered no photo id.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    return id
  }

  private func feedResult(_ json: JSONValue) throws(SidecarError) -> PostResult {
    guard let id = json["id"]?.graphID else {
      throw SidecarError(
        kind: .outcomeUnknown, message: "Facebook accepted the post but its answer carried no post id.",
        platform: platform.rawValue)
    }
    return PostResult(
      postId: id, postUrl: json["permalink_url"]?.stringValue ?? "https://www.facebook.com/\(id)", status: .published)
  }

  private func noID(_ call: CallContext) -> SidecarError {
    SidecarError(
      kind: .outcomeUnknown, message: "Facebook accepted the request but its answer carried no id.",
      platform: platform.rawValue, attempts: call.attempts)
  }

  private func confirmSuccess(_ json: JSONValue, _ call: CallContext) throws(SidecarError) {
    if json["success"]?.boolValue == false {
      throw SidecarError(
        kind: .permanent, message: "Facebook answered that the publish did not succeed.", platform: platform.rawValue,
        attempts: call.attempts)
    }
  }

  /// How many of the Page's newest posts are searched at most, 100 a read: a busy Page may publish many while a lost
  /// answer settles.
  static let feedWindow = 500

  /// The post with exactly `text` published since `since`, from the newest posts of the Page's feed (see
  /// ``GraphAPI/findRecent``).
  private func findFeedPost(
    text: String, since: Date, token: GraphToken, page: String, context: CallContext
  ) async throws(SidecarError) -> PostResult? {
    try await graph.findRecent(
      GraphAPI.path(page, "feed"), fields: "id,message,created_time,permalink_url", madeAt: "created_time",
      since: since, window: Self.feedWindow, pageSize: 100, token: token, accountId: page, context: context
    ) { post in
      guard post["message"]?.stringValue == text, let id = post["id"]?.graphID else { return nil }
      return PostResult(
        postId: id, postUrl: post["permalink_url"]?.stringValue ?? "https://www.facebook.com/\(id)", status: .published)
    }
  }

  /// Starts a reel or video-story session, has Meta fetch the hosted file or sends the local one, and waits until
  /// the upload is complete.
  private func uploadSessionVideo(
    _ source: MediaSource, edge: String, page: String, token: GraphToken, context: CallContext
  ) async throws(SidecarError) -> String {
    let start = try await graph.send(
      .post(GraphAPI.path(page, edge), form: [("upload_phase", "start")]), token: token, accountId: page,
      context: context)
    guard let video = start["video_id"]?.graphID, let uploadText = start["upload_url"]?.stringValue,
      let uploadURL = URL(string: uploadText), isTrustedUploadHost(uploadURL)
    else {
      throw SidecarError(
        kind: .permanent, message: "Facebook's upload session answer had no usable video_id and upload_url.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    let field: String
    switch source {
    case .url(let url):
      field = "videoUrl"
      // rupload validates `offset` and `file_size` as numbers even for a hosted file, where there are no bytes to send.
      var headers = HTTPHeaders()
      headers["file_url"] = url.absoluteString
      headers["offset"] = "0"
      headers["file_size"] = "0"
      let upload = try await graph.send(
        GraphCall("POST", "", url: uploadURL, headers: headers, scheme: "OAuth"), token: token, accountId: page,
        context: context)
      try confirmSuccess(upload, context)
    case .file(let file):
      field = "videoPath"
      try await uploadBytes(file, to: uploadURL, video: video, page: page, token: token, context: context)
    }
    try await graph.poll("the video upload", context: context) { () throws(SidecarError) -> Bool? in
      let json = try await graph.send(
        .get(GraphAPI.path(video), fields: "status"), token: token, accountId: page, context: context)
      let status = json["status"] ?? .null
      if status["video_status"]?.stringValue == "error" || status["processing_phase"]?["status"]?.stringValue == "error"
      {
        let reason = status["processing_phase"]?["error"]?["message"]?.stringValue ?? "the video could not be processed"
        throw SidecarError(
          kind: .permanent, message: "Facebook could not use the video at `\(field)`: \(reason).",
          platform: platform.rawValue, attempts: context.attempts)
      }
      if status["video_status"]?.stringValue == "expired" {
        throw SidecarError(
          kind: .permanent, message: "Facebook's upload session for the video expired.", platform: platform.rawValue,
          attempts: context.attempts)
      }
      return status["uploading_phase"]?["status"]?.stringValue == "complete" ? true : nil
    }
    return video
  }

  /// The file's bytes to a session's upload URL, streamed from disk. The upload host keeps what arrives, so after a
  /// failed request the video's `uploading_phase.bytes_transferred` says where it stands and the rest is sent from
  /// there (`offset`); it carries on as long as each try moves it forward.
  private func uploadBytes(
    _ file: LocalFile, to uploadURL: URL, video: String, page: String, token: GraphToken, context: CallContext
  ) async throws(SidecarError) {
    var offset: Int64 = 0
    while offset < file.size {
      context.progress?.report(message: "Uploading the video", bytesSent: offset, bytesTotal: file.size)
      var headers = HTTPHeaders()
      headers["offset"] = String(offset)
      headers["file_size"] = String(file.size)
      let body = HTTPBody.file(path: file.path, offset: offset, length: file.size - offset)
      do throws(SidecarError) {
        let upload = try await graph.send(
          GraphCall(
            "POST", "", body: .encoded(body, contentType: "application/octet-stream"), url: uploadURL, headers: headers,
            scheme: "OAuth"), token: token, accountId: page, context: context)
        try confirmSuccess(upload, context)
        offset = file.size
      } catch {
        guard error.kind != .cancelled,
          let json = try? await graph.send(
            .get(GraphAPI.path(video), fields: "status"), token: token, accountId: page, context: context),
          let held = json["status"]?["uploading_phase"]?["bytes_transferred"]?.intValue.map(Int64.init),
          held > offset, held <= file.size
        else { throw error }
        graph.http.logger.info(
          "facebook upload resumed", ["video": .string(video), "offset": .int(Int(held)), "size": .int(Int(file.size))])
        offset = held
      }
    }
    context.progress?.report(message: "Uploaded the video", bytesSent: file.size, bytesTotal: file.size)
  }

  /// rupload hosts are Meta's (https); a test base URL is trusted for its own host.
  private func isTrustedUploadHost(_ url: URL) -> Bool {
    if url.scheme?.lowercased() == "https" { return true }
    guard let base = URL(string: graph.baseURL) else { return false }
    return url.scheme == base.scheme && url.host == base.host && url.port == base.port
  }

  /// After an unknown outcome: true when the video's publishing phase shows it went out.
  private func videoWasPublished(
    _ video: String, token: GraphToken, page: String, context: CallContext
  ) async throws(SidecarError) -> Bool {
    guard
      let json = try? await graph.send(
        .get(GraphAPI.path(video), fields: "status"), token: token, accountId: page, context: context)
    else { return false }
    let phase = json["status"]?["publishing_phase"]
    return phase?["status"]?.stringValue == "complete" || phase?["publish_status"]?.stringValue == "published"
  }
}
