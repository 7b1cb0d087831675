#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// The operations on a post that already exists: delete it, read its numbers, ask what became of it.
public enum PostOperation: String, Sendable, CaseIterable {
  case delete, insights, status
}

/// What `<platform>/delete` answers. Deleting something already gone is `deleted: false` with the reason.
public struct DeleteResult: Sendable, Equatable {
  public var deleted: Bool
  public var reason: String?

  public init(deleted: Bool, reason: String? = nil) {
    self.deleted = deleted
    self.reason = reason
  }
}

/// The metric names `<platform>/insights` answers in, each present only where the platform reports it.
public enum Metric: String, Sendable, CaseIterable {
  case views, impressions, reach, likes, comments, shares, saves, clicks
}

/// What `<platform>/insights` answers: the common metrics and the platform's own answer, as it came.
public struct InsightsResult: Sendable, Equatable {
  public var metrics: [Metric: Int]
  public var raw: JSONValue

  public init(metrics: [Metric: Int], raw: JSONValue) {
    self.metrics = metrics
    self.raw = raw
  }
}

/// What `<platform>/status` answers.
public struct StatusResult: Sendable, Equatable {
  public enum State: String, Sendable {
    case processing, published, scheduled, failed, deleted
  }

  public var state: State
  public var detail: String?
  public var postUrl: String?

  public init(state: State, detail: String? = nil, postUrl: String? = nil) {
    self.state = state
    self.detail = detail
    self.postUrl = postUrl
  }
}

extension PlatformClient {
  /// Where a platform's API offers none of these, the operation answers `unsupported` with the reason.
  public var postOperations: Set<PostOperation> { [] }

  public func delete(postId: String, context: OperationContext) async throws(SidecarError) -> DeleteResult {
    throw platform.unsupported(.delete)
  }

  public func insights(postId: String, context: OperationContext) async throws(SidecarError) -> InsightsResult {
    throw platform.unsupported(.insights)
  }

  public func status(postId: String, context: OperationContext) async throws(SidecarError) -> StatusResult {
    throw platform.unsupported(.status)
  }
}

extension Platform {
  func unsupported(_ operation: PostOperation) -> SidecarError {
    let sentence: String
    switch (self, operation) {
    case (.whatsapp, .delete):
      sentence = "WhatsApp's Cloud API cannot delete a message once it was sent."
    case (.whatsapp, .insights):
      sentence = "WhatsApp's Cloud API reports no per-message insights; delivery and reads arrive by webhook."
    case (.whatsapp, .status):
      sentence = "WhatsApp reports a message's delivery status only by webhook, so there is nothing to ask."
    case (.instagram, .delete):
      sentence = "Instagram's Graph API cannot delete published media; delete it in the Instagram app."
    default:
      sentence = "\(rawValue) does not offer \(operation.rawValue) through its API."
    }
    return SidecarError(kind: .unsupported, message: sentence, platform: rawValue)
  }
}

/// Counts as platforms send them: numbers, or numbers in strings (YouTube statistics).
extension JSONValue {
  var count: Int? {
    switch self {
    case .int(let number): number
    case .double(let number): Int(number)
    case .string(let text): Int(text)
    default: nil
    }
  }
}

/// `publishAt` on a post: the time a platform should publish it, inside the window that platform allows.
public enum PublishAt {
  /// The parsed `publishAt`, or nil when absent; -32602 when it is not RFC 3339 or falls outside `window` from `now`.
  public static func parse(
    _ params: Params, now: Date, window: ClosedRange<TimeInterval>, describe: String
  ) throws(InvalidParams) -> Date? {
    guard let text = try params.string("publishAt") else { return nil }
    guard let date = RFC3339.date(from: text) else {
      throw InvalidParams(
        "`publishAt` must be an RFC 3339 time such as 2026-12-24T18:00:00Z, got \(text)", field: "publishAt")
    }
    let ahead = date.timeIntervalSince(now)
    guard window.contains(ahead) else {
      throw InvalidParams(
        "`publishAt` must be \(describe); \(text) is \(Self.describe(ahead)) from now", field: "publishAt")
    }
    return date
  }

  private static func describe(_ seconds: TimeInterval) -> String {
    if seconds < 0 { return "\(describe(-seconds)) before, not after," }
    if seconds < 120 { return "\(Int(seconds.rounded())) seconds" }
    let minutes = Int((seconds / 60).rounded())
    if minutes < 120 { return "\(minutes) minutes" }
    if minutes < 2880 { return "\(minutes / 60) hours" }
    return "\(minutes / 1440) days"
  }

  /// The post's params without `publishAt`, for the platform's own content checks.
  public static func removed(from params: Params) -> Params {
    Params(params.values.filter { $0.key != "publishAt" })
  }
}
