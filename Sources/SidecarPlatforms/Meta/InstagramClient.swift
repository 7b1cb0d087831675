#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// Instagram content publishing for professional accounts (docs/platforms/meta.md), with Facebook Login tokens on
/// `graph.facebook.com` or Instagram Login tokens (`variant: "instagram_login"`) on `graph.instagram.com`.
///
/// Every post is a container (created and polled until `FINISHED`, safe to repeat) and one `media_publish`. A
/// container can be published only once, so after a publish whose outcome is unknown the container's `status_code`
/// decides: `PUBLISHED` means the post went out and its media id is looked up; `FINISHED` means it did not, and
/// publishing the same container again cannot duplicate it.
public final class InstagramClient: PlatformClient, Publisher {
  public let platform = Platform.instagram
  let facebookLogin: GraphAPI
  let instagramLogin: GraphAPI
  let media: MediaPolicy

  /// `Credential.variant` of Instagram Login tokens, the only Instagram tokens that can be refreshed.
  public static let instagramLoginVariant = "instagram_login"

  public init(environment: PlatformEnvironment) {
    facebookLogin = GraphAPI(environment: environment, platform: .instagram)
    instagramLogin = GraphAPI(
      environment: environment, platform: .instagram, baseURL: environment.endpoints.instagramLoginBaseURL)
    media = environment.media
  }

  func graph(for credential: Credential) -> GraphAPI {
    credential.variant == Self.instagramLoginVariant ? instagramLogin : facebookLogin
  }

  public func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    try prepared(params)
  }

  func check(_ params: Params) throws(InvalidParams) -> (post: InstagramPost, extras: InstagramExtras) {
    let post = try InstagramPost(params, media: media)
    return (post, try InstagramExtras(params, post: post, media: media))
  }

  func publish(
    _ checked: (post: InstagramPost, extras: InstagramExtras), context: OperationContext
  ) async throws(SidecarError) -> PostResult {
    try await withCredential(context) { credential throws(SidecarError) in
      try await publish(checked.post, extras: checked.extras, credential: credential, context: context)
    }
  }

  /// Runs `body` with the credential; an Instagram Login token close to expiry is refreshed once first.
  func withCredential<T: Sendable>(
    _ context: OperationContext, _ body: (Credential) async throws(SidecarError) -> T
  ) async throws(SidecarError) -> T {
    let credential = try await context.credentials.credential(context.key)
    return try await context.withCredential(refresher: refresher(for: credential, context.call), body)
  }

  /// How the credential's token is refreshed: only Instagram Login's can be.
  func refresher(for credential: Credential, _ call: CallContext)
    -> (@Sendable (Credential) async throws(SidecarError) -> Credential)?
  {
    credential.variant == Self.instagramLoginVariant ? refresher(call) : nil
  }

  /// Exchanges a long-lived Instagram Login token for a new one (`ig_refresh_token`, docs/platforms/meta.md).
  func refresher(_ call: CallContext) -> @Sendable (Credential) async throws(SidecarError) -> Credential {
    { [instagramLogin] stale throws(SidecarError) in
      let url = Encoding.url(
        instagramLogin.baseURL, "/refresh_access_token",
        query: [("grant_type", "ig_refresh_token"), ("access_token", stale.accessToken)])
      let json = try await instagramLogin.send(
        GraphCall("GET", "", url: url, scheme: nil), token: instagramLogin.token(stale), accountId: stale.accountId,
        context: call)
      guard let token = json["access_token"]?.stringValue, !token.isEmpty else {
        throw SidecarError(
          kind: .authFailed, message: "Instagram's token refresh answered no access token; reconnect the account.",
          platform: Platform.instagram.rawValue, attempts: call.attempts)
      }
      let expiresAt = json["expires_in"]?.intValue.map {
        instagramLogin.clock.wallNow().addingTimeInterval(TimeInterval($0))
      }
      return Credential(accessToken: token, expiresAt: expiresAt, accountId: stale.accountId, variant: stale.variant)
    }
  }

  public func refresh(context: OperationContext) async throws(SidecarError) -> RefreshResult {
    let credential = try await context.credentials.credential(context.key)
    guard credential.variant == Self.instagramLoginVariant else {
      throw SidecarError(
        kind: .unsupported,
        message: "Instagram tokens from Facebook Login cannot be refreshed (Meta offers no refresh for them); "
          + "reconnect the account to issue a new one. Only Instagram Login tokens can be refreshed.",
        platform: platform.rawValue)
    }
    let fresh = try await context.credentials.refresh(context.key, stale: credential, using: refresher(context.call))
    return RefreshResult(refreshed: true, expiresAt: fresh.expiresAt)
  }

  public func validate(context: OperationContext) async throws(SidecarError) -> ValidationResult {
    try await MetaValidation.run(
      context, refresher: { credential in refresher(for: credential, context.call) },
      { credential throws(SidecarError) in try await validate(credential, context: context.call) })
  }

  private func validate(_ credential: Credential, context: CallContext) async throws(SidecarError) -> ValidationResult {
    let graph = graph(for: credential)
    let user = credential.accountId
    let token = graph.token(credential)
    let instagramLogin = credential.variant == Self.instagramLoginVariant
    var missing: [String] = []
    var problems: [String] = []
    var name: String?
    var scopes: [String]?
    var expiresAt = credential.expiresAt
    var professional = true
    if instagramLogin {
      let me = try await graph.send(
        .get("/me", fields: "user_id,username,account_type"), token: token, accountId: user, context: context)
      name = me["username"]?.stringValue
      if let type = me["account_type"]?.stringValue, type != "BUSINESS" && type != "MEDIA_CREATOR" {
        professional = false
        problems.append(
          "@\(name ?? user) is a \(type) account; Instagram publishes only for professional (business or creator) "
            + "accounts.")
      }
      if let id = me["user_id"]?.graphID ?? me["id"]?.graphID, id != user {
        professional = false
        problems.append("The token belongs to Instagram user \(id), not to account \(user).")
      }
    } else {
      let info = try await graph.inspect(credential, context: context)
      if let info {
        scopes = info.scopes
        expiresAt = info.expiresAt
        missing = info.missing(["instagram_basic", "instagram_content_publish"], for: user)
        if !info.scopes.contains("pages_read_engagement") { missing.append("pages_read_engagement") }
      } else {
        problems.append("The token's permissions could not be inspected (debug_token refused).")
      }
      let node = try await graph.send(
        .get(GraphAPI.path(user), fields: "id,username,name"), token: token, accountId: user, context: context)
      name = node["username"]?.stringValue
    }
    var quota: ValidationResult.Quota?
    do {
      let limit = try await graph.send(
        .get(GraphAPI.path(user, "content_publishing_limit"), fields: "config,quota_usage"), token: token,
        accountId: user, context: context)
      let entry = limit["data"]?.arrayValue?.first ?? .null
      if let used = entry["quota_usage"]?.intValue, let total = entry["config"]?["quota_total"]?.intValue {
        quota = ValidationResult.Quota(
          used: used, total: total, windowSeconds: entry["config"]?["quota_duration"]?.intValue)
      }
      if let used = entry["quota_usage"]?.intValue, let total = entry["config"]?["quota_total"]?.intValue, used >= total
      {
        problems.append(
          "Instagram's publishing limit is reached: \(used) of \(total) posts in the last 24 hours; new posts are "
            + "refused until older ones leave the window.")
      }
    } catch let error where error.kind == .permanent {
      let scope = instagramLogin ? "instagram_business_content_publish" : "instagram_content_publish"
      if !missing.contains(scope) { missing.append(scope) }
      problems.append(error.message)
    }
    return ValidationResult(
      valid: missing.isEmpty && professional, accountId: user, accountName: name, scopes: scopes,
      missing: missing.isEmpty ? nil : missing, expiresAt: expiresAt, problems: problems.isEmpty ? nil : problems,
      quota: quota)
  }

  // MARK: - Publishing

  func publish(
    _ post: InstagramPost, extras: InstagramExtras, credential: Credential, context: OperationContext
  ) async throws(SidecarError) -> PostResult {
    try await InstagramPublish(
      post, extras: extras, graph: graph(for: credential), credential: credential, context: context
    )
    .run()
  }
}

/// One Instagram publish: containers, waiting until they are ready, the `media_publish` and its reconciliation.
///
/// A class with one method per step, rather than one function with nested helpers: a publish waiting on its container
/// then holds small frames, not the union of every step's (4 KB when it was one function).
private final class InstagramPublish: Sendable {
  struct Published {
    var id: String
    var permalink: String?
  }

  let post: InstagramPost
  let extras: InstagramExtras
  let graph: GraphAPI
  /// The account is connected with Instagram Login (no resumable upload there).
  let instagramLogin: Bool
  let user: String
  let token: GraphToken
  let context: OperationContext
  let started: Date
  var call: CallContext { context.call }
  var platform: Platform { .instagram }

  init(
    _ post: InstagramPost, extras: InstagramExtras, graph: GraphAPI, credential: Credential, context: OperationContext
  ) {
    self.post = post
    self.extras = extras
    self.instagramLogin = credential.variant == InstagramClient.instagramLoginVariant
    self.graph = graph
    self.user = credential.accountId
    self.token = graph.token(credential)
    self.context = context
    self.started = context.call.interruptedSince ?? graph.clock.wallNow()
  }

  func run() async throws(SidecarError) -> PostResult {
    if call.isInterrupted, let found = try await lookAfterInterruption() { return found }
    let container = try await createContainer()
    try await ready(container)
    var published: Published
    do {
      published = try await publishOnce(container)
    } catch let error where error.kind == .outcomeUnknown {
      published = try await reconcile(container, original: error)
    }
    if published.permalink == nil { published.permalink = await permalink(of: published.id) }
    return PostResult(postId: published.id, postUrl: published.permalink, status: .published)
  }

  @inline(never)
  private func createContainer() async throws(SidecarError) -> String {
    switch post {
    case .image(let url, let caption):
      return try await create([("image_url", url.absoluteString), ("caption", caption)] + extraFields)
    case .reel(let url, let caption):
      return try await create(
        [("media_type", "REELS"), ("video_url", url.absoluteString), ("caption", caption)] + extraFields)
    case .localReel(let file, let caption):
      return try await uploadReel(file, caption: caption)
    case .story(.image(let url)):
      return try await create([("media_type", "STORIES"), ("image_url", url.absoluteString)])
    case .story(.video(let url)):
      return try await create([("media_type", "STORIES"), ("video_url", url.absoluteString)])
    case .carousel(let items, let caption):
      var children: [String] = []
      for item in items {
        switch item {
        case .image(let url):
          children.append(try await create([("is_carousel_item", "true"), ("image_url", url.absoluteString)]))
        case .video(let url):
          children.append(
            try await create([("is_carousel_item", "true"), ("media_type", "VIDEO"), ("video_url", url.absoluteString)])
          )
        }
      }
      for child in children { try await ready(child) }
      return try await create(
        [("media_type", "CAROUSEL"), ("children", children.joined(separator: ",")), ("caption", caption)]
          + extraFields)
    }
  }

  /// A reel from a local file: a container with `upload_type=resumable` names its upload URI on Meta's rupload host,
  /// which takes the file's bytes streamed from disk (`offset`, `file_size`). The upload belongs to the container, so
  /// after a dropped connection it is sent again to the same container: no second reel can come of it.
  @inline(never)
  private func uploadReel(_ file: LocalFile, caption: String?) async throws(SidecarError) -> String {
    guard !instagramLogin else {
      throw SidecarError(
        kind: .unsupported,
        message: "Instagram takes local videos (resumable upload) only from accounts connected with Facebook Login; "
          + "give `videoUrl` for this account.", platform: platform.rawValue, attempts: call.attempts)
    }
    let json = try await graph.send(
      .post(
        GraphAPI.path(user, "media"),
        form: [("media_type", "REELS"), ("upload_type", "resumable"), ("caption", caption)] + extraFields),
      token: token, accountId: user, context: call)
    guard let container = json["id"]?.graphID, let text = json["uri"]?.stringValue, let uri = URL(string: text) else {
      throw SidecarError(
        kind: .permanent, message: "Instagram's resumable container answer had no id and upload uri.",
        platform: platform.rawValue, attempts: call.attempts)
    }
    var headers = HTTPHeaders()
    headers["offset"] = "0"
    headers["file_size"] = String(file.size)
    call.progress?.report(message: "Uploading the video", bytesSent: 0, bytesTotal: file.size)
    let upload = try await graph.send(
      GraphCall(
        "POST", "",
        body: .encoded(.file(path: file.path, offset: 0, length: file.size), contentType: "application/octet-stream"),
        url: uri, headers: headers, scheme: "OAuth"),
      token: token, accountId: user, context: call)
    guard upload["success"]?.boolValue == true else {
      throw SidecarError(
        kind: .permanent, message: "Instagram's upload host did not confirm the video.", platform: platform.rawValue,
        attempts: call.attempts)
    }
    call.progress?.report(message: "Uploaded the video", bytesSent: file.size, bytesTotal: file.size)
    return container
  }

  /// The post's extra fields, for the (parent) container.
  private var extraFields: [(String, String?)] { extras.form.map { ($0.name, $0.value) } }

  @inline(never)
  private func create(_ form: [(String, String?)]) async throws(SidecarError) -> String {
    let json = try await graph.send(
      .post(GraphAPI.path(user, "media"), form: form), token: token, accountId: user, context: call)
    guard let id = json["id"]?.graphID else {
      throw SidecarError(
        kind: .permanent, message: "Instagram accepted the media but answered no container id.",
        platform: platform.rawValue, attempts: call.attempts)
    }
    return id
  }

  @inline(never)
  private func status(_ container: String) async throws(SidecarError) -> (code: String, text: String?) {
    let json = try await graph.send(
      .get(GraphAPI.path(container), fields: "status_code,status"), token: token, accountId: user, context: call)
    return (json["status_code"]?.stringValue ?? "", json["status"]?.stringValue)
  }

  @inline(never)
  private func ready(_ container: String) async throws(SidecarError) {
    try await graph.poll("the media", context: call) { () throws(SidecarError) -> Bool? in
      let (code, text) = try await status(container)
      switch code {
      case "FINISHED", "PUBLISHED": return true
      case "ERROR":
        throw SidecarError(
          kind: .permanent,
          message: "Instagram could not process the media: \(text ?? "no reason given"). Check that the URL serves "
            + "a supported image or video.",
          platform: platform.rawValue, attempts: call.attempts)
      case "EXPIRED":
        throw SidecarError(
          kind: .permanent, message: "Instagram let the media container expire before it was published.",
          platform: platform.rawValue, attempts: call.attempts)
      default: return nil
      }
    }
  }

  @inline(never)
  private func publishOnce(_ container: String) async throws(SidecarError) -> Published {
    let json = try await graph.send(
      .post(GraphAPI.path(user, "media_publish"), form: [("creation_id", container)]), token: token, accountId: user,
      step: .publish, context: call)
    guard let id = json["id"]?.graphID else {
      throw SidecarError(
        kind: .outcomeUnknown, message: "Instagram accepted the publish but its answer carried no media id.",
        platform: platform.rawValue, attempts: call.attempts)
    }
    return Published(id: id)
  }

  /// An interrupted publish (its sidecar died while publishing; the container it made is unknown here): the media
  /// with this caption made since the first claim is the answer; a conclusive look that shows none lets the publish run
  /// from a new container (an unpublished container of the dead sidecar's only expires). Posts without a caption
  /// (stories) cannot be looked for: `outcome_unknown`, nothing sent.
  @inline(never)
  private func lookAfterInterruption() async throws(SidecarError) -> PostResult? {
    guard post.caption != nil else {
      throw SidecarError(
        kind: .outcomeUnknown,
        message: CallContext.interruptedMessage + ". Without a caption the post cannot be looked for; check the "
          + "account before posting again.", platform: platform.rawValue, attempts: 1)
    }
    let look = ReconciledPublish(
      settle: graph.http.timeout, clock: graph.clock, logger: context.logger,
      checked: "The account's media made since the publish was first claimed")
    return try await look.lookAfterInterruption(context: call) { () throws(SidecarError) -> PostResult? in
      try await findMedia().map { PostResult(postId: $0.id, postUrl: $0.permalink, status: .published) }
    }
  }

  /// `media_publish` requests one container gets at most while its status stays `FINISHED`.
  static let publishTries = 3

  /// Media one look reads at most, newest first (10 pages): a busy account may publish many while a lost answer
  /// settles. Instagram caps the posts an account publishes through the API in 24 hours at tens
  /// (`content_publishing_limit`), so a real look ends in its first page.
  static let mediaWindow = 500

  /// The newest media with this caption made since `started` (see ``GraphAPI/findRecent``).
  private func findMedia() async throws(SidecarError) -> Published? {
    let caption = post.caption ?? ""
    return try await graph.findRecent(
      GraphAPI.path(user, "media"), fields: "id,caption,timestamp,permalink", madeAt: "timestamp", since: started,
      window: Self.mediaWindow, pageSize: 50, token: token, accountId: user, context: call
    ) { media in
      guard (media["caption"]?.stringValue ?? "") == caption, let id = media["id"]?.graphID else { return nil }
      return Published(id: id, permalink: media["permalink"]?.stringValue)
    }
  }

  /// The published media's permalink; nil (logged) when the lookup fails, since the post is live anyway.
  @inline(never)
  private func permalink(of id: String) async -> String? {
    do throws(SidecarError) {
      let json = try await graph.send(
        .get(GraphAPI.path(id), fields: "permalink"), token: token, accountId: user, context: call)
      return json["permalink"]?.stringValue
    } catch let error where error.kind != .cancelled {
      context.logger.warn(
        "instagram permalink lookup failed after publishing", ["postId": .string(id), "error": .string(error.message)])
    } catch {}
    return nil
  }

  /// After a `media_publish` whose outcome is unknown: asks the container whether it went out.
  ///
  /// `PUBLISHED` → the media is looked up among the newest posts by caption and time; when it cannot be found the
  /// call still succeeds, since the post is live, with the container id as `postId` and no URL (logged as a
  /// warning). `FINISHED` → nothing went out: the same container is published once more (up to ``publishTries`` in
  /// all), which cannot duplicate the post. Anything else ends with the original `outcome_unknown`.
  @inline(never)
  private func reconcile(_ container: String, original: SidecarError) async throws(SidecarError) -> Published {
    var last = original
    for round in 1...Self.publishTries {
      guard let state = try? await status(container) else {
        throw last.appending("The container's status could not be read; check the account before posting again.")
      }
      switch state.code {
      case "PUBLISHED":
        if let found = try? await findMedia() {
          context.logger.info("instagram publish reconciled", ["postId": .string(found.id)])
          return found
        }
        context.logger.warn(
          "instagram container published but its media was not found; answering the container id",
          ["container": .string(container)])
        return Published(id: container)
      case "FINISHED" where round < Self.publishTries:
        do throws(SidecarError) {
          return try await publishOnce(container)
        } catch let error where error.kind == .outcomeUnknown || error.kind == .permanent {
          last = error
        }
      case "ERROR", "EXPIRED":
        throw SidecarError(
          kind: .permanent,
          message: "Instagram reports the media container as \(state.code) after the publish: "
            + (state.text ?? "no reason given"),
          platform: platform.rawValue, attempts: context.call.attempts, failure: original.failure)
      default:
        throw last.appending("The container is \(state.code.isEmpty ? "in an unknown state" : state.code).")
      }
    }
    throw last
  }
}
