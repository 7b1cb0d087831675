#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience
import Synchronization

/// Shares open breakers and rate-limit blocks with the other sidecars of the store, twice a second: one that starts
/// here is published with the time it ends; one that started elsewhere holds here until then. Each replica then
/// probes a breaker on its own timer.
final class BlockSharing: Sendable {
  private let core: ResilienceCore
  private let sharedState: any SharedStateStore
  private let breakerEnabled: Bool
  private let clock: any SidecarClock
  private let logger: Logger
  private let task = Mutex<Task<Void, Never>?>(nil)

  /// Starts sharing at once; stops when released.
  init(
    core: ResilienceCore, sharedState: any SharedStateStore, breakerEnabled: Bool, clock: any SidecarClock,
    logger: Logger
  ) {
    self.core = core
    self.sharedState = sharedState
    self.breakerEnabled = breakerEnabled
    self.clock = clock
    self.logger = logger
    task.withLock {
      $0 = Task { [weak self] in
        var known: [String: Date] = [:]
        while !Task.isCancelled, let self {
          await self.share(&known)
          try? await Task.sleep(for: .milliseconds(500))
        }
      }
    }
  }

  deinit { task.withLock { $0?.cancel() } }

  /// One round: publishes what started here, adopts what started elsewhere. `known` is what was already exchanged.
  private func share(_ known: inout [String: Date]) async {
    let (now, wallNow) = (clock.now(), clock.wallNow())
    for (name, until, detail) in localBlocks(now: now, wallNow: wallNow)
    where known[name].map({ abs($0.timeIntervalSince(until)) >= 1 }) ?? true {
      known[name] = until
      await sharedState.shareBlock(name, until: until, detail: detail)
    }
    for (name, block) in await sharedState.sharedBlocks() where block.until > wallNow {
      if let previous = known[name], previous >= block.until.addingTimeInterval(-1) { continue }
      known[name] = block.until
      adopt(name, block, until: now + .milliseconds(Int(block.until.timeIntervalSince(wallNow) * 1000)))
    }
    known = known.filter { $0.value > wallNow }
  }

  /// Breakers open here (`breaker:<platform>`) and gate blocks here (`gate:<key>`), with wall-clock ends.
  private func localBlocks(now: ClockInstant, wallNow: Date) -> [(String, Date, JSONValue)] {
    var blocks: [(String, Date, JSONValue)] = []
    if breakerEnabled {
      for (platform, snapshot) in core.breakerStatus() where snapshot.state == .open {
        guard let retryAfter = snapshot.retryAfter else { continue }
        blocks.append(
          (
            "breaker:\(platform)", wallNow.addingTimeInterval(Double(WireEncoding.milliseconds(retryAfter)) / 1000),
            .null
          ))
      }
    }
    for (key, until, reason) in core.gates.blocks() {
      let quota = reason.classification == .quotaExhausted
      blocks.append(
        (
          "gate:\(key.raw)",
          wallNow.addingTimeInterval(Double(WireEncoding.milliseconds(now.duration(to: until))) / 1000),
          ["quota": .bool(quota), "message": .string(reason.message)]
        ))
    }
    return blocks
  }

  /// Holds here a block another sidecar shared.
  private func adopt(_ name: String, _ block: SharedBlock, until: ClockInstant) {
    if name.hasPrefix("breaker:") {
      let platform = String(name.dropFirst("breaker:".count))
      guard breakerEnabled, core.breakerStatus(platform: platform).state != .open else { return }
      logger.info("circuit breaker opened by another sidecar", ["platform": .string(platform)])
      core.adoptOpenBreaker(platform: platform, until: until)
    } else if name.hasPrefix("gate:") {
      let key = RateLimitKey(String(name.dropFirst("gate:".count)))
      let quota = block.detail["quota"]?.boolValue == true
      let reason = PlatformFailure(
        quota ? .quotaExhausted : .rateLimited(scope: key.isApp ? .app : .account),
        message: block.detail["message"]?.stringValue ?? "rate limited (seen by another sidecar)",
        resetsAt: quota ? block.until : nil)
      core.gates.block(key, until: until, reason: reason)
    }
  }
}
