#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// LinkedIn's versioned REST API (`/rest/…`): posts by an organization (or member), images uploaded by the sidecar,
/// organization role validation, token refresh.
///
/// Every `/rest` call names the configured `LinkedIn-Version` and Rest.li 2.0; URNs in paths are percent-encoded.
/// Only `POST /rest/posts` is visible to anyone; image uploads before it are safe to repeat.
public final class LinkedInClient: PlatformClient, Publisher {
  public let platform = Platform.linkedin
  let environment: PlatformEnvironment
  let api: LinkedInAPI
  let oauth: OAuth2Refresher

  /// Organization roles whose holders may post for the organization (with `w_organization_social`).
  /// (RECRUITING_POSTER may post jobs only, not organization posts.)
  static let postingRoles = ["ADMINISTRATOR", "CONTENT_ADMINISTRATOR", "DIRECT_SPONSORED_CONTENT_POSTER"]
  /// LinkedIn serves each monthly version for at least a year; past this age the configured one is close to sunset.
  static let versionWarningMonths = 10

  public init(environment: PlatformEnvironment) {
    self.environment = environment
    api = LinkedInAPI(environment: environment)
    oauth = OAuth2Refresher(platform: .linkedin, tokenURL: api.tokenURL, http: api.http, clock: environment.clock)
  }

  public func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    try prepared(params)
  }

  func check(_ params: Params) throws(InvalidParams) -> LinkedInPost {
    try LinkedInPost(params, media: environment.media)
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
      withoutRefreshToken: "This LinkedIn credential has no refresh token (LinkedIn issues them only to apps approved "
        + "for programmatic refresh), so it cannot be refreshed; reconnect the account before the token expires.")
  }

  // MARK: - Publishing

  func publish(_ post: LinkedInPost, context: OperationContext) async throws(SidecarError) -> PostResult {
    let content = try await attachment(post.content, context: context)
    return try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> PostResult in
      try await createPost(post, content: content, credential: credential, context: context.call)
    }
  }

  /// The post's `content`: its media uploaded first (safe to repeat), each fetched to disk and streamed from there.
  func attachment(_ content: LinkedInPost.Content, context: OperationContext) async throws(SidecarError) -> JSONValue? {
    switch content {
    case .none:
      return nil
    case .link(let url, let title, let description, let thumbnail):
      var article: [String: JSONValue] = [
        "source": .string(url.absoluteString), "title": .string(title ?? LinkedInPost.articleTitle(url)),
      ]
      if let description { article["description"] = .string(description) }
      if let thumbnail {
        article["thumbnail"] = .string(
          try await upload(.image, from: thumbnail, field: "linkThumbnailUrl", context: context))
      }
      return ["article": .object(article)]
    case .image(let url, let altText):
      var media: [String: JSONValue] = [
        "id": .string(try await upload(.image, from: url, field: "imageUrl", context: context))
      ]
      if let altText { media["altText"] = .string(altText) }
      return ["media": .object(media)]
    case .images(let urls):
      var images: [JSONValue] = []
      for (index, url) in urls.enumerated() {
        images.append([
          "id": .string(try await upload(.image, from: url, field: "imageUrls[\(index)]", context: context))
        ])
      }
      return ["multiImage": ["images": .array(images)]]
    case .document(let source, let title):
      let urn = try await upload(.document, from: source, field: "documentUrl", context: context)
      return ["media": ["id": .string(urn), "title": .string(title)]]
    case .video(let source, let captionsSource):
      // The captions first: a file LinkedIn would refuse fails before any of the video is sent.
      var captions: MediaOnDisk?
      if let captionsSource { captions = try await self.captions(captionsSource, context: context.call) }
      defer { captions?.remove() }
      let file = try await environment.fetcher(for: .linkedin).onDisk(
        source, field: "videoUrl", limit: LinkedInAsset.video.maxBytes, context: context.call)
      defer { file.remove() }
      let urn = try await uploadVideo(file, captions: captions, context: context)
      return ["media": ["id": .string(urn)]]
    }
  }

  func upload(_ kind: LinkedInAsset, from url: URL, field: String, context: OperationContext) async throws(SidecarError)
    -> String
  {
    try await upload(kind, from: .url(url), field: field, context: context)
  }

  /// Fetches the source (SSRF-guarded) or opens the local file, and uploads it as one image or document; the URN.
  func upload(_ kind: LinkedInAsset, from source: MediaSource, field: String, context: OperationContext)
    async throws(SidecarError) -> String
  {
    let file = try await environment.fetcher(for: .linkedin).onDisk(
      source, field: field, limit: kind.maxBytes, context: context.call)
    defer { file.remove() }
    return try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> String in
      try await uploadAsset(kind, file, credential: credential, context: context.call)
    }
  }

  /// `POST /rest/posts`: the one visible step. A 422 naming the post this content duplicates is that post, once a
  /// read shows it still exists. When the answer is lost, the author's newest posts are searched for this commentary.
  func createPost(_ post: LinkedInPost, content: JSONValue?, credential: Credential, context: CallContext)
    async throws(SidecarError) -> PostResult
  {
    let author = try author(credential, context: context)
    let commentary = LinkedInPost.commentary(post.text ?? "")
    // An interrupted publish may have been made when the first sidecar claimed it.
    let started = context.interruptedSince ?? environment.clock.wallNow()
    let reconcile = ReconciledPublish(
      settle: api.http.timeout, clock: environment.clock, logger: api.http.logger,
      checked: "\(author)'s posts made since the publish started")
    return try await reconcile.run(context: context) { () throws(SidecarError) in
      try await sendPost(post, commentary: commentary, content: content, credential: credential, context: context)
    } find: { () throws(SidecarError) in
      try await findPost(
        author: author, commentary: commentary, since: started, credential: credential, context: context)
    }
  }

  private func sendPost(
    _ post: LinkedInPost, commentary: String, content: JSONValue?, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> PostResult {
    let author = try author(credential, context: context)
    var body: [String: JSONValue] = [
      "author": .string(author), "commentary": .string(commentary),
      "visibility": .string(post.visibility),
      "distribution": ["feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []],
      "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": false,
    ]
    if let content { body["content"] = content }
    let response = try await api.send(
      api.request("POST", "/rest/posts", body: .object(body), credential: credential), credential: credential,
      step: .publish, gates: api.gates(author), answering: { LinkedInErrors.duplicateOf($0) != nil }, context: context)
    if let original = LinkedInErrors.duplicateOf(response) {
      return try await existingDuplicate(original, credential: credential, context: context)
    }
    guard let urn = response.headers["x-restli-id"] ?? response.headers["x-linkedin-id"], !urn.isEmpty else {
      throw SidecarError(
        kind: .outcomeUnknown,
        message: "LinkedIn accepted the post (HTTP \(response.status)) but did not say its id, so it cannot be linked.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    return PostResult(postId: urn, postUrl: Self.postURL(urn), status: .published)
  }

  /// The post a 422 says this content duplicates, once a read shows it exists (the URN may name a deleted post).
  private func existingDuplicate(_ urn: String, credential: Credential, context: CallContext) async throws(SidecarError)
    -> PostResult
  {
    let found: Bool
    do {
      let response = try await api.send(
        api.request("GET", "/rest/posts/" + Encoding.percentEncode(urn), credential: credential),
        credential: credential, answering: { $0.status == 404 }, context: context)
      found = response.status != 404
    } catch {
      found = false
    }
    guard found else {
      throw SidecarError(
        kind: .permanent,
        message:
          "LinkedIn refused the post as a duplicate of \(urn), but that post could not be read back (it may have "
          + "been deleted); change the text to post it again.",
        platform: platform.rawValue, attempts: context.attempts,
        failure: PlatformFailure(
          .permanent, message: "duplicate", httpStatus: 422, platformCode: .string("DUPLICATE_POST")))
    }
    api.http.logger.info(
      "linkedin answered that the post duplicates an existing one; answering with it", ["postId": .string(urn)])
    return PostResult(postId: urn, postUrl: Self.postURL(urn), status: .published)
  }

  /// How many of the author's newest posts are searched at most after an unknown outcome, 100 a read (the most one
  /// read returns).
  static let postsWindow = 500

  /// The author's post with this commentary made since the call started, from the author's posts, newest first, read
  /// 100 at a time until one made before the call started (less five minutes of clock skew) or the author's first.
  /// Throws when all `postsWindow` of them are newer: the post may be among older ones, so its absence is not shown.
  private func findPost(
    author: String, commentary: String, since started: Date, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> PostResult? {
    let earliest = (started.timeIntervalSince1970 - 300) * 1000
    var start = 0
    while start < Self.postsWindow {
      let query = "q=author&author=\(Encoding.percentEncode(author))&start=\(start)&count=100&sortBy=CREATED"
      let request = api.request("GET", "/rest/posts", query: query, credential: credential)
      let (_, json) = try await api.sendJSON(request, credential: credential, context: context)
      let elements = json["elements"]?.arrayValue ?? []
      for element in elements {
        guard let made = element["createdAt"]?.doubleValue else { continue }
        if made < earliest { return nil }
        if element["commentary"]?.stringValue == commentary, let id = element["id"]?.stringValue {
          return PostResult(postId: id, postUrl: Self.postURL(id), status: .published)
        }
      }
      start += elements.count
      // The last page: past the total, or a short page when no total is given.
      let total = json["paging"]?["total"]?.intValue
      if elements.isEmpty || total.map({ start >= $0 }) ?? (elements.count < 100) { return nil }
    }
    throw SidecarError(
      kind: .outcomeUnknown,
      message: "the \(start) newest were all made after the publish started, so older ones were not read",
      platform: platform.rawValue, attempts: context.attempts)
  }

  /// initializeUpload → PUT the bytes → wait until the asset is available; returns its URN.
  func uploadAsset(
    _ kind: LinkedInAsset, _ image: MediaOnDisk, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> String {
    let owner = try author(credential, context: context)
    let initialize = api.request(
      "POST", kind.path, query: "action=initializeUpload",
      body: ["initializeUploadRequest": ["owner": .string(owner)]], credential: credential)
    let (_, json) = try await api.sendJSON(
      initialize, credential: credential, gates: api.gates(owner), context: context)
    guard let uploadText = json["value"]?["uploadUrl"]?.stringValue, let uploadURL = URL(string: uploadText),
      let urn = json["value"]?[kind.rawValue]?.stringValue, !urn.isEmpty
    else {
      throw SidecarError(
        kind: .permanent,
        message: "LinkedIn's initializeUpload answer lacks the upload URL or the \(kind.rawValue) URN.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    var headers: HTTPHeaders = ["Content-Type": image.contentType ?? "application/octet-stream"]
    if api.trusted(uploadURL) { headers["Authorization"] = "Bearer \(credential.accessToken)" }
    let put = HTTPRequest(
      method: "PUT", url: uploadURL, headers: headers,
      body: .file(path: image.file.path, offset: 0, length: image.file.size))
    _ = try await api.send(put, credential: credential, context: context)
    try await waitUntilAvailable(kind, urn, credential: credential, context: context)
    return urn
  }

  /// How the asset is polled until LinkedIn has processed it: waits of 1, 2, 4, 8, 8, 8 s (about half a minute), after
  /// which the post is made anyway and LinkedIn decides.
  static let processingSchedule = RetryPolicy(maxAttempts: 7, baseDelay: .seconds(1), maxDelay: .seconds(8))

  /// Polls the asset until LinkedIn has processed it (briefly: a post made while it still processes may fail).
  func waitUntilAvailable(
    _ kind: LinkedInAsset, _ urn: String, credential: Credential, context: CallContext
  ) async throws(SidecarError) {
    let request = api.request("GET", kind.path + "/" + Encoding.pathSegment(urn), credential: credential)
    let poller = Poller(Self.processingSchedule, clock: environment.clock)
    _ = try await poller.run(platform: platform, context: context) { () throws(SidecarError) -> Bool? in
      // 403: the token may upload but not read images; post and let LinkedIn decide.
      let (response, json) = try await api.sendJSON(
        request, credential: credential, answering: { $0.status == 403 }, context: context)
      switch response.status == 403 ? "UNREADABLE" : json["status"]?.stringValue {
      case "PROCESSING_FAILED":
        throw SidecarError(
          kind: .permanent,
          message: "LinkedIn could not process the \(kind.rawValue) (PROCESSING_FAILED); \(kind.formats).",
          platform: platform.rawValue, attempts: context.attempts)
      case "PROCESSING", "WAITING_UPLOAD", "PROCESSING_PENDING":
        return nil
      default:
        return true
      }
    }
  }

  // MARK: - Validation

  func validate(_ credential: Credential, context: CallContext) async throws(SidecarError) -> ValidationResult {
    let author = try author(credential, context: context)
    var problems: [String] = []
    var missing: [String] = []
    var name: String?
    let token = await introspect(credential, context: context)
    if author.hasPrefix("urn:li:person:") {
      do throws(SidecarError) {
        // OpenID Connect's userinfo is not a versioned `/rest` call: the bearer token alone.
        let (_, me) = try await api.sendJSON(
          HTTPRequest(url: api.url("/v2/userinfo"), headers: ["Authorization": "Bearer \(credential.accessToken)"]),
          credential: credential, context: context)
        name = me["name"]?.stringValue
        if let sub = me["sub"]?.stringValue, "urn:li:person:\(sub)" != author {
          problems.append("The token belongs to member urn:li:person:\(sub), not to \(author).")
        }
      } catch {
        // A token with only w_member_social may post but not say whose it is.
        guard error.failure?.httpStatus == 403 else { throw error }
        missing += ["openid", "profile"]
        problems.append(
          "The token cannot read the member's profile (it lacks the openid and profile scopes), so it could not be "
            + "checked that it belongs to \(author); reconnect the account granting openid and profile.")
      }
      if let scopes = token?.scopes, !scopes.contains("w_member_social") { missing.append("w_member_social") }
    } else {
      do throws(SidecarError) {
        let (roles, organizationName) = try await roles(on: author, credential: credential, context: context)
        name = organizationName
        if !roles.contains(where: Self.postingRoles.contains) {
          let held = roles.isEmpty ? "holds no approved role" : "holds only \(roles.sorted().joined(separator: ", "))"
          missing.append("ADMINISTRATOR")
          problems.append(
            "The member \(held) on \(author); posting needs ADMINISTRATOR, CONTENT_ADMINISTRATOR or "
              + "DIRECT_SPONSORED_CONTENT_POSTER.")
        }
      } catch {
        guard error.failure?.httpStatus == 403 else { throw error }
        missing.append("rw_organization_admin")
        problems.append(
          "The token cannot read organization roles (it lacks rw_organization_admin), so the member's role on "
            + "\(author) could not be checked.")
      }
      if let scopes = token?.scopes, !scopes.contains("w_organization_social") {
        missing.append("w_organization_social")
        problems.append("The token lacks the w_organization_social scope, which posting for an organization needs.")
      }
    }
    if token?.active == false {
      problems.append("LinkedIn reports the token as no longer active (\(token?.status ?? "inactive")).")
    }
    let warning = Self.versionWarning(api.version, now: environment.clock.wallNow())
    return ValidationResult(
      valid: problems.isEmpty && missing.isEmpty, accountId: author, accountName: name, scopes: token?.scopes,
      missing: missing.isEmpty ? nil : missing, expiresAt: token?.expiresAt ?? credential.expiresAt,
      problems: problems.isEmpty ? nil : problems, warnings: warning.map { [$0] })
  }

  /// A sentence when `version` (YYYYMM) is more than ``versionWarningMonths`` months old at `now`: LinkedIn retires
  /// each version about a year after its release and then refuses every call with 426.
  public static func versionWarning(_ version: String, now: Date) -> String? {
    let digits = version.prefix(6)
    guard digits.count == 6, let year = Int(digits.prefix(4)), let month = Int(digits.suffix(2)) else { return nil }
    let today = Array(RFC3339.string(from: now).utf8)  // YYYY-MM-DDT…
    guard let nowYear = Int(String(decoding: today[0..<4], as: UTF8.self)),
      let nowMonth = Int(String(decoding: today[5..<7], as: UTF8.self))
    else { return nil }
    let age = (nowYear * 12 + nowMonth) - (year * 12 + month)
    guard age > versionWarningMonths else { return nil }
    return "The configured LinkedIn API version \(version) (platforms.linkedin.apiVersion) is \(age) months old; "
      + "LinkedIn retires versions about a year after release and then refuses every call, so move to a newer one."
  }

  /// The member's approved roles on `organization` (`organizationAcls`, roleAssignee finder) and its name.
  func roles(on organization: String, credential: Credential, context: CallContext) async throws(SidecarError)
    -> (roles: Set<String>, name: String?)
  {
    var roles: Set<String> = []
    var name: String?
    let count = 100
    for page in 0..<10 {
      let query =
        "q=roleAssignee&state=APPROVED&start=\(page * count)&count=\(count)"
        + "&projection=(paging,elements*(*,organization~(localizedName)))"
      let (_, json) = try await api.sendJSON(
        api.request("GET", "/rest/organizationAcls", query: query, credential: credential), credential: credential,
        context: context)
      let elements = json["elements"]?.arrayValue ?? []
      for element in elements where element["organization"]?.stringValue == organization {
        if let role = element["role"]?.stringValue { roles.insert(role) }
        name = name ?? element["organization~"]?["localizedName"]?.stringValue
      }
      let total = json["paging"]?["total"]?.intValue
      if elements.count < count || total.map({ (page + 1) * count >= $0 }) == true { break }
    }
    return (roles, name)
  }

  /// Scopes and expiry from LinkedIn's token introspection, when the credential carries the app's client id and
  /// secret; nil when unavailable (only approved apps may introspect).
  func introspect(_ credential: Credential, context: CallContext) async
    -> (scopes: [String]?, expiresAt: Date?, active: Bool?, status: String?)?
  {
    guard let clientId = credential.clientId, let clientSecret = credential.clientSecret,
      let tokenURL = URL(string: api.tokenURL)
    else { return nil }
    let form = Encoding.form([
      ("client_id", clientId), ("client_secret", clientSecret), ("token", credential.accessToken),
    ])
    let request = HTTPRequest(
      method: "POST", url: tokenURL.deletingLastPathComponent().appendingPathComponent("introspectToken"),
      headers: ["Content-Type": "application/x-www-form-urlencoded"], body: .bytes(Data(form.utf8)))
    do {
      let (_, json) = try await api.http.sendJSON(
        request, step: .idempotent, context: context, classify: StatusFallback.sideLookup("introspection"))
      let scopes = json["scope"]?.stringValue.map {
        $0.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
      }
      let expiresAt = json["expires_at"]?.intValue.map { Date(timeIntervalSince1970: Double($0)) }
      return (scopes, expiresAt, json["active"]?.boolValue, json["status"]?.stringValue)
    } catch {
      return nil
    }
  }

  // MARK: - Helpers

  /// The post author: the credential's account as a URN (a bare organization id becomes `urn:li:organization:N`).
  func author(_ credential: Credential, context: CallContext) throws(SidecarError) -> String {
    guard let urn = Self.authorURN(credential.accountId) else {
      throw SidecarError(
        kind: .permanent,
        message: "The LinkedIn credential's accountId must be an organization URN (urn:li:organization:N) or its "
          + "numeric id, got \(credential.accountId).", platform: platform.rawValue, attempts: context.attempts)
    }
    return urn
  }

  static func authorURN(_ accountId: String) -> String? {
    let id = accountId.trimmingWhitespace
    for prefix in ["urn:li:organization:", "urn:li:person:"] where id.hasPrefix(prefix) {
      return id.count > prefix.count ? id : nil
    }
    guard !id.isEmpty, id.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
    return "urn:li:organization:" + id
  }

  static func postURL(_ urn: String) -> String { "https://www.linkedin.com/feed/update/\(urn)/" }
}
