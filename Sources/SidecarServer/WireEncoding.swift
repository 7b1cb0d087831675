#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarPlatforms
import SidecarResilience

/// How the sidecar's answers look on the wire: application errors (`protocol/PROTOCOL.md` §5) and the results of the
/// platform operations (`protocol/PROTOCOL.md` §3).
///
/// The result encoders are `@inline(never)`: inlined into the async functions that call them, their dictionaries
/// would take room in every suspended call's frame (see `OperationPipeline.run`).
enum WireEncoding {
  static func applicationError(_ error: SidecarError, attempts: Int? = nil) -> JSONRPCError {
    var data: [String: JSONValue] = [
      "kind": .string(error.kind.rawValue), "retryable": .bool(error.retryable),
      "attempts": .int(attempts ?? error.attempts),
    ]
    data["platform"] = JSONValue(error.platform)
    if let retryAfter = error.retryAfter { data["retryAfterMs"] = .int(milliseconds(retryAfter)) }
    if let failure = error.failure {
      if let status = failure.httpStatus { data["httpStatus"] = .int(status) }
      switch failure.platformCode {
      case .int(let code)?: data["platformCode"] = .int(code)
      case .string(let code)?: data["platformCode"] = .string(code)
      case nil: break
      }
      if let subcode = failure.platformSubcode { data["platformSubcode"] = .int(subcode) }
      if let message = failure.platformMessage { data["platformMessage"] = .string(message) }
      if let resetsAt = failure.resetsAt { data["resetAt"] = .string(RFC3339.string(from: resetsAt)) }
    }
    return JSONRPCError(code: error.kind.code, message: title(error.kind) + ": " + error.message, data: .object(data))
  }

  private static func title(_ kind: ErrorKind) -> String {
    kind.rawValue.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
  }

  @inline(never)
  static func json(_ validation: ValidationResult) -> JSONValue {
    var object: [String: JSONValue] = [
      "valid": .bool(validation.valid), "accountId": .string(validation.accountId),
    ]
    if let name = validation.accountName { object["accountName"] = .string(name) }
    if let scopes = validation.scopes { object["scopes"] = .array(scopes.map { .string($0) }) }
    if let missing = validation.missing { object["missing"] = .array(missing.map { .string($0) }) }
    if let expiresAt = validation.expiresAt { object["expiresAt"] = .string(RFC3339.string(from: expiresAt)) }
    if let problems = validation.problems { object["problems"] = .array(problems.map { .string($0) }) }
    if let warnings = validation.warnings { object["warnings"] = .array(warnings.map { .string($0) }) }
    if let quota = validation.quota {
      object["quota"] = [
        "used": .int(quota.used), "total": .int(quota.total), "windowSeconds": JSONValue(quota.windowSeconds),
      ]
    }
    return .object(object)
  }

  @inline(never)
  static func json(_ refresh: RefreshResult) -> JSONValue {
    [
      "refreshed": .bool(refresh.refreshed),
      "expiresAt": refresh.expiresAt.map { .string(RFC3339.string(from: $0)) } ?? .null,
    ]
  }

  static func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
  }

  static func milliseconds(since start: ContinuousClock.Instant) -> Int { milliseconds(ContinuousClock.now - start) }
}

/// The answers to the calls that reached a platform client.
extension PendingCall {
  @inline(never)
  func json(_ postId: String, _ result: DeleteResult) -> JSONValue {
    var object = answer(postId)
    object["deleted"] = .bool(result.deleted)
    if let reason = result.reason { object["reason"] = .string(reason) }
    return .object(object)
  }

  @inline(never)
  func json(_ postId: String, _ result: InsightsResult, only wanted: Set<Metric>?) -> JSONValue {
    var metrics: [String: JSONValue] = [:]
    for (metric, value) in result.metrics where wanted?.contains(metric) ?? true {
      metrics[metric.rawValue] = .int(value)
    }
    var object = answer(postId)
    object["fetchedAt"] = .string(RFC3339.string(from: Date()))
    object["metrics"] = .object(metrics)
    object["raw"] = result.raw
    return .object(object)
  }

  @inline(never)
  func json(_ postId: String, _ result: StatusResult) -> JSONValue {
    var object = answer(postId)
    object["state"] = .string(result.state.rawValue)
    object["detail"] = JSONValue(result.detail)
    object["postUrl"] = JSONValue(result.postUrl)
    return .object(object)
  }

  private func answer(_ postId: String) -> [String: JSONValue] {
    [
      "platform": .string(context.key.platform.rawValue), "postId": .string(postId),
      "attempts": .int(max(1, context.call.attempts)), "durationMs": .int(WireEncoding.milliseconds(since: started)),
    ]
  }

  /// The answer to a publish.
  @inline(never)
  func json(_ post: PostResult) -> JSONValue {
    var object: [String: JSONValue] = [
      "platform": .string(context.key.platform.rawValue), "postId": .string(post.postId),
      "postUrl": JSONValue(post.postUrl),
      "status": .string(post.status.rawValue), "attempts": .int(max(1, context.call.attempts)),
      "durationMs": .int(WireEncoding.milliseconds(since: started)), "replayed": false,
      "waitedMs": .int(WireEncoding.milliseconds(context.call.waited)),
    ]
    if let privacy = post.privacyStatus { object["privacyStatus"] = .string(privacy) }
    if !post.warnings.isEmpty { object["warnings"] = .array(post.warnings.map(JSONValue.string)) }
    return .object(object)
  }
}
