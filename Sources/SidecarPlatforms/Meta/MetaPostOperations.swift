#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience

extension SidecarError {
  /// Graph's answer for an object that does not exist (or that this token cannot see): code 100, subcode 33.
  var isGraphObjectMissing: Bool {
    failure?.platformCode == .int(100) && failure?.platformSubcode == 33
  }
}

extension GraphAPI {
  /// Metrics from an `/insights` answer (`data: [{name, values: [{value}]}]`) by Meta's names.
  static func insightValues(_ json: JSONValue) -> [String: Int] {
    var values: [String: Int] = [:]
    for entry in json["data"]?.arrayValue ?? [] {
      if let name = entry["name"]?.stringValue, let value = entry["values"]?.arrayValue?.last?["value"]?.count {
        values[name] = value
      }
    }
    return values
  }

  /// The common metrics from Meta's names, by `names` (Meta name → common metric).
  static func metrics(_ values: [String: Int], _ names: KeyValuePairs<String, Metric>) -> [Metric: Int] {
    var metrics: [Metric: Int] = [:]
    for (name, metric) in names { if let value = values[name] { metrics[metric] = value } }
    return metrics
  }
}

// MARK: - Facebook

extension FacebookClient {
  public var postOperations: Set<PostOperation> { [.delete, .insights, .status] }

  /// Post ids are `{page-id}_{post-id}`; photos and videos are plain object ids.
  private static func isPagePost(_ postId: String) -> Bool { postId.contains("_") }

  public func delete(postId: String, context: OperationContext) async throws(SidecarError) -> DeleteResult {
    try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
      do throws(SidecarError) {
        let json = try await graph.send(
          GraphCall("DELETE", GraphAPI.path(postId)), token: graph.token(credential), accountId: credential.accountId,
          context: context.call)
        return DeleteResult(deleted: json["success"]?.boolValue ?? true)
      } catch let error where error.isGraphObjectMissing {
        return DeleteResult(
          deleted: false,
          reason: "Facebook knows no post, photo or video \(postId) on this Page: it was already deleted.")
      }
    }
  }

  public func insights(postId: String, context: OperationContext) async throws(SidecarError) -> InsightsResult {
    try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
      let (token, page) = (graph.token(credential), credential.accountId)
      let video = !Self.isPagePost(postId)
      let insights = try await graph.send(
        video
          ? .get(GraphAPI.path(postId, "video_insights"), query: [("metric", Self.videoInsightNames)])
          : .get(GraphAPI.path(postId, "insights"), query: [("metric", Self.postInsightNames)]),
        token: token, accountId: page, context: context.call)
      let counts = try await graph.send(
        .get(GraphAPI.path(postId), fields: Self.engagementFields), token: token, accountId: page,
        context: context.call)
      var metrics = GraphAPI.metrics(
        GraphAPI.insightValues(insights),
        [
          "post_impressions": .impressions, "post_impressions_unique": .reach, "post_clicks": .clicks,
          "post_video_views": .views, "total_video_impressions": .impressions,
          "total_video_impressions_unique": .reach, "total_video_views": .views,
        ])
      if let likes = counts["reactions"]?["summary"]?["total_count"]?.count { metrics[.likes] = likes }
      if let comments = counts["comments"]?["summary"]?["total_count"]?.count { metrics[.comments] = comments }
      if !video { metrics[.shares] = counts["shares"]?["count"]?.count ?? 0 }
      return InsightsResult(metrics: metrics, raw: ["insights": insights, "engagement": counts])
    }
  }

  static let postInsightNames = "post_impressions,post_impressions_unique,post_clicks"
  static let videoInsightNames = "total_video_impressions,total_video_impressions_unique,total_video_views"
  static let engagementFields = "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares"

  public func status(postId: String, context: OperationContext) async throws(SidecarError) -> StatusResult {
    try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
      do throws(SidecarError) {
        if Self.isPagePost(postId) {
          let post = try await graph.send(
            .get(GraphAPI.path(postId), fields: "is_published,scheduled_publish_time,permalink_url"),
            token: graph.token(credential), accountId: credential.accountId, context: context.call)
          let url = post["permalink_url"]?.stringValue
          if post["is_published"]?.boolValue == false {
            guard let time = post["scheduled_publish_time"]?.count else {
              return StatusResult(state: .failed, detail: "The post is unpublished and not scheduled.", postUrl: url)
            }
            let at = RFC3339.string(from: Date(timeIntervalSince1970: Double(time)))
            return StatusResult(state: .scheduled, detail: "Scheduled to publish at \(at).", postUrl: url)
          }
          return StatusResult(state: .published, postUrl: url)
        }
        let video = try await graph.send(
          .get(GraphAPI.path(postId), fields: "status,permalink_url"), token: graph.token(credential),
          accountId: credential.accountId, context: context.call)
        return Self.videoState(video)
      } catch let error where error.isGraphObjectMissing {
        return StatusResult(state: .deleted, detail: "Facebook knows no post \(postId) on this Page.")
      }
    }
  }

  /// A video's state from its `status` phases.
  static func videoState(_ video: JSONValue) -> StatusResult {
    let url = video["permalink_url"]?.stringValue.map { $0.hasPrefix("/") ? "https://www.facebook.com" + $0 : $0 }
    let status = video["status"]
    let overall = status?["video_status"]?.stringValue ?? ""
    if overall == "error" || status?["processing_phase"]?["status"]?.stringValue == "error" {
      let reason = status?["processing_phase"]?["errors"]?.arrayValue?.first?["message"]?.stringValue
      return StatusResult(state: .failed, detail: reason ?? "Facebook could not process the video.", postUrl: url)
    }
    switch status?["publishing_phase"]?["publish_status"]?.stringValue {
    case "published"?:
      return StatusResult(
        state: overall == "ready" ? .published : .processing,
        detail: overall == "ready" ? nil : "Published; Facebook is still processing the video (\(overall)).",
        postUrl: url)
    case "scheduled"?:
      return StatusResult(state: .scheduled, postUrl: url)
    default:
      return StatusResult(
        state: .processing, detail: "Video status: \(overall.isEmpty ? "unknown" : overall).", postUrl: url)
    }
  }
}

// MARK: - Instagram

extension InstagramClient {
  public var postOperations: Set<PostOperation> { [.insights, .status] }

  public func insights(postId: String, context: OperationContext) async throws(SidecarError) -> InsightsResult {
    try await withCredential(context) { credential throws(SidecarError) in
      let graph = graph(for: credential)
      let media = try await graph.send(
        .get(GraphAPI.path(postId), fields: "media_product_type,like_count,comments_count"),
        token: graph.token(credential), accountId: credential.accountId, context: context.call)
      // Reels and stories take fewer metrics than feed media; asking for one they lack is an error.
      let names: String
      switch media["media_product_type"]?.stringValue {
      case "STORY"?: names = "reach,views,shares"
      case "REELS"?: names = "reach,views,likes,comments,shares,saved"
      default: names = "reach,views,likes,comments,shares,saved"
      }
      let insights = try await graph.send(
        .get(GraphAPI.path(postId, "insights"), query: [("metric", names)]), token: graph.token(credential),
        accountId: credential.accountId, context: context.call)
      var metrics = GraphAPI.metrics(
        GraphAPI.insightValues(insights),
        ["reach": .reach, "views": .views, "likes": .likes, "comments": .comments, "shares": .shares, "saved": .saves])
      if metrics[.likes] == nil, let likes = media["like_count"]?.count { metrics[.likes] = likes }
      if metrics[.comments] == nil, let comments = media["comments_count"]?.count { metrics[.comments] = comments }
      return InsightsResult(metrics: metrics, raw: ["media": media, "insights": insights])
    }
  }

  /// A published media id answers `permalink`; a container id (still being processed) answers `status_code`.
  public func status(postId: String, context: OperationContext) async throws(SidecarError) -> StatusResult {
    try await withCredential(context) { credential throws(SidecarError) in
      let graph = graph(for: credential)
      do throws(SidecarError) {
        // A container has no `permalink` field, so Graph refuses the media read for one (code 100, no subcode 33).
        do throws(SidecarError) {
          let media = try await graph.send(
            .get(GraphAPI.path(postId), fields: "id,permalink"), token: graph.token(credential),
            accountId: credential.accountId, context: context.call)
          if let url = media["permalink"]?.stringValue { return StatusResult(state: .published, postUrl: url) }
        } catch let error where error.kind == .permanent && !error.isGraphObjectMissing {}
        let container = try await graph.send(
          .get(GraphAPI.path(postId), fields: "status_code,status"), token: graph.token(credential),
          accountId: credential.accountId, context: context.call)
        let detail = container["status"]?.stringValue
        switch container["status_code"]?.stringValue {
        case "FINISHED"?:
          return StatusResult(state: .processing, detail: "The container is ready and not yet published.")
        case "PUBLISHED"?: return StatusResult(state: .published, detail: detail)
        case "ERROR"?, "EXPIRED"?: return StatusResult(state: .failed, detail: detail ?? "The container failed.")
        default: return StatusResult(state: .processing, detail: detail)
        }
      } catch let error where error.isGraphObjectMissing {
        return StatusResult(state: .deleted, detail: "Instagram knows no media \(postId) for this account.")
      }
    }
  }
}
