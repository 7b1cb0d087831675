#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// Deleting a post, its statistics and its lifecycle state. Only the app-wide gate applies: the author's gate paces
/// publishing, which these calls are not.
extension LinkedInClient {
  public var postOperations: Set<PostOperation> { [.delete, .insights, .status] }

  public func delete(postId: String, context: OperationContext) async throws(SidecarError) -> DeleteResult {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> DeleteResult in
      // LinkedIn answers 204 to deleting a post that is already gone, so the post is looked up first.
      guard try await post(postId, credential: credential, context: context.call) != nil else {
        return DeleteResult(deleted: false, reason: "LinkedIn knows no post \(postId): it was already deleted.")
      }
      let response = try await api.send(
        api.request("DELETE", postPath(postId), credential: credential), credential: credential, gates: api.appGates,
        answering: { $0.status == 404 }, context: context.call)
      return response.status == 404
        ? DeleteResult(deleted: false, reason: "LinkedIn knows no post \(postId): it was already deleted.")
        : DeleteResult(deleted: true)
    }
  }

  /// Organization posts: `organizationalEntityShareStatistics` (impressions, reach, clicks and engagement); a member's
  /// posts: `socialActions` (likes and comments), the only numbers LinkedIn gives for them.
  public func insights(postId: String, context: OperationContext) async throws(SidecarError) -> InsightsResult {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> InsightsResult in
      let author = try author(credential, context: context.call)
      if author.hasPrefix("urn:li:organization:") {
        let list = postId.hasPrefix("urn:li:ugcPost:") ? "ugcPosts" : "shares"
        let query =
          "q=organizationalEntity&organizationalEntity=\(Encoding.percentEncode(author))"
          + "&\(list)=List(\(Encoding.percentEncode(postId)))"
        let json = try await get("/rest/organizationalEntityShareStatistics", query: query, credential, context.call)
        let totals = json["elements"]?.arrayValue?.first?["totalShareStatistics"]
        var metrics: [Metric: Int] = [:]
        for (name, metric) in [
          ("impressionCount", Metric.impressions), ("uniqueImpressionsCount", .reach), ("clickCount", .clicks),
          ("likeCount", .likes), ("commentCount", .comments), ("shareCount", .shares),
        ] {
          if let value = totals?[name]?.count { metrics[metric] = value }
        }
        return InsightsResult(metrics: metrics, raw: json)
      }
      let json = try await get("/rest/socialActions/" + Encoding.percentEncode(postId), credential, context.call)
      var metrics: [Metric: Int] = [:]
      if let likes = json["likesSummary"]?["totalLikes"]?.count { metrics[.likes] = likes }
      if let comments = json["commentsSummary"]?["aggregatedTotalComments"]?.count { metrics[.comments] = comments }
      return InsightsResult(metrics: metrics, raw: json)
    }
  }

  public func status(postId: String, context: OperationContext) async throws(SidecarError) -> StatusResult {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> StatusResult in
      guard let post = try await post(postId, credential: credential, context: context.call) else {
        return StatusResult(state: .deleted, detail: "LinkedIn knows no post \(postId).")
      }
      let lifecycle = post["lifecycleState"]?.stringValue ?? "UNKNOWN"
      let state: StatusResult.State
      switch lifecycle {
      case "PUBLISHED", "PUBLISHED_EDITED": state = .published
      case "PROCESSING", "PUBLISH_REQUESTED", "DRAFT": state = .processing
      case "PROCESSING_FAILED", "PUBLISH_FAILED": state = .failed
      default: state = .processing
      }
      return StatusResult(state: state, detail: "Lifecycle state \(lifecycle).", postUrl: Self.postURL(postId))
    }
  }

  private func postPath(_ urn: String) -> String { "/rest/posts/" + Encoding.percentEncode(urn) }

  /// The post, or nil when LinkedIn answers 404.
  private func post(_ urn: String, credential: Credential, context: CallContext) async throws(SidecarError)
    -> JSONValue?
  {
    let (response, json) = try await api.sendJSON(
      api.request("GET", postPath(urn), credential: credential), credential: credential, gates: api.appGates,
      answering: { $0.status == 404 }, context: context)
    // Spelled out: `JSONValue` is nil-literal expressible, so a ternary's `nil` would become `.null`, not "no post".
    if response.status == 404 { return Optional.none }
    return json
  }

  private func get(_ path: String, query: String? = nil, _ credential: Credential, _ context: CallContext)
    async throws(SidecarError) -> JSONValue
  {
    try await api.sendJSON(
      api.request("GET", path, query: query, credential: credential), credential: credential, gates: api.appGates,
      context: context
    ).1
  }
}
