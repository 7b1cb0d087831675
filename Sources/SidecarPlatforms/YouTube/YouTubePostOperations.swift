#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// `videos.delete` and `videos.list` for a video this channel uploaded. Reads and deletes pass only the app-wide gate:
/// the channel's upload limit is a publishing quota that they neither spend nor wait for.
extension YouTubeClient {
  public var postOperations: Set<PostOperation> { [.delete, .insights, .status] }

  public func delete(postId: String, context: OperationContext) async throws(SidecarError) -> DeleteResult {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> DeleteResult in
      let response = try await api.send(
        api.request("DELETE", "/youtube/v3/videos", query: [("id", postId)], credential: credential),
        credential: credential, gates: api.appGates, answering: { $0.status == 404 }, context: context.call)
      if response.status == 404 {
        return DeleteResult(deleted: false, reason: "YouTube knows no video \(postId): it was already deleted.")
      }
      return DeleteResult(deleted: true)
    }
  }

  public func insights(postId: String, context: OperationContext) async throws(SidecarError) -> InsightsResult {
    let video = try await videoResource(postId, part: "statistics", context: context)
    guard let video else {
      throw SidecarError(
        kind: .permanent, message: "YouTube knows no video \(postId); it may have been deleted.",
        platform: platform.rawValue, attempts: context.call.attempts)
    }
    let statistics = video["statistics"]
    var metrics: [Metric: Int] = [:]
    for (name, metric) in [("viewCount", Metric.views), ("likeCount", .likes), ("commentCount", .comments)] {
      if let value = statistics?[name]?.count { metrics[metric] = value }
    }
    return InsightsResult(metrics: metrics, raw: video)
  }

  public func status(postId: String, context: OperationContext) async throws(SidecarError) -> StatusResult {
    guard let video = try await videoResource(postId, part: "status,processingDetails", context: context) else {
      return StatusResult(state: .deleted, detail: "YouTube knows no video \(postId).")
    }
    let url = Self.watchURL(postId)
    let status = video["status"]
    let privacy = status?["privacyStatus"]?.stringValue ?? "unknown"
    switch status?["uploadStatus"]?.stringValue {
    case let state? where state == "rejected" || state == "failed" || state == "deleted":
      let reason = status?["rejectionReason"]?.stringValue ?? status?["failureReason"]?.stringValue ?? state
      return StatusResult(
        state: state == "deleted" ? .deleted : .failed, detail: "Upload \(state): \(reason).", postUrl: url)
    default:
      break
    }
    if video["processingDetails"]?["processingStatus"]?.stringValue == "processing"
      || status?["uploadStatus"]?.stringValue == "uploaded"
    {
      return StatusResult(
        state: .processing, detail: "YouTube is processing the video (privacy \(privacy)).", postUrl: url)
    }
    if let publishAt = status?["publishAt"]?.stringValue, privacy == "private" {
      return StatusResult(state: .scheduled, detail: "Private until \(publishAt), then public.", postUrl: url)
    }
    return StatusResult(state: .published, detail: "Privacy: \(privacy).", postUrl: url)
  }

  /// `videos.list` of one video with `part`; nil when YouTube knows no such video.
  private func videoResource(_ id: String, part: String, context: OperationContext) async throws(SidecarError)
    -> JSONValue?
  {
    try await context.withCredential(refresher: oauth.refresher(for: context)) {
      (credential: Credential) async throws(SidecarError) -> JSONValue? in
      let (_, json) = try await api.sendJSON(
        api.request("GET", "/youtube/v3/videos", query: [("part", part), ("id", id)], credential: credential),
        credential: credential, gates: api.appGates, context: context.call)
      return json["items"]?.arrayValue?.first
    }
  }
}
