#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarMetrics
import SidecarPlatforms
import SidecarResilience

/// The methods answered from the sidecar's own state rather than a platform: breaker status and reset, Prometheus
/// text. Routed inline: they wait on no platform call, so they answer at any load.
extension PlatformServices {
  func breakerStatus() -> JSONValue {
    let snapshots = core.breakerStatus()
    var platforms: [String: JSONValue] = [:]
    for platform in Platform.allCases where clients[platform] != nil {
      let snapshot = snapshots[platform.rawValue] ?? core.breakerStatus(platform: platform.rawValue)
      platforms[platform.rawValue] = [
        "state": .string(snapshot.state.rawValue), "consecutiveFailures": .int(snapshot.consecutiveFailures),
        "opens": .int(snapshot.opens),
        "retryAfterMs": snapshot.retryAfter.map { .int(WireEncoding.milliseconds($0)) } ?? .null,
      ]
    }
    return [
      "enabled": .bool(configuration.breakerEnabled), "platforms": .object(platforms),
    ]
  }

  func resetBreaker(_ params: JSONValue?) -> Result<JSONValue, JSONRPCError> {
    guard let name = params?["platform"]?.stringValue else {
      return .failure(
        .invalidParams(
          "`platform` is required: one of \(Platform.allCases.map(\.rawValue).joined(separator: ", "))",
          field: "platform"))
    }
    guard let platform = Platform(rawValue: name), clients[platform] != nil else {
      return .failure(.invalidParams("unknown platform \(name)", field: "platform"))
    }
    core.resetBreaker(platform: platform.rawValue)
    Task { [sharedState] in await sharedState.shareBlock("breaker:\(platform.rawValue)", until: nil, detail: .null) }
    return .success(["platform": .string(name), "state": .string(BreakerState.closed.rawValue)])
  }

  func prometheusText() -> String {
    var states: [String: String] = [:]
    let snapshots = core.breakerStatus()
    for platform in clients.keys {
      states[platform.rawValue] =
        (snapshots[platform.rawValue] ?? core.breakerStatus(platform: platform.rawValue)).state.rawValue
    }
    return metrics.prometheusText(breakerStates: states)
  }
}
