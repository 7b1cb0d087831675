#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Synchronization

/// Counts that hold across every sidecar sharing a store (`stateDir` or `sharedState.url`), for limits whose scope is
/// the app or an account rather than one process: a budget of units per window (YouTube's daily project quota) and a
/// minimum spacing between calls (WhatsApp's one message per 6 s to a recipient).
///
/// Each operation is atomic in the store. When the store cannot be reached, both let the call go (the process's own
/// gates and the platform's answers still hold): a limit is not a reason to stop publishing.
public protocol SharedCounters: Sendable {
  /// Spends `units` of `name`'s budget for the window that ends at `windowEnd`, unless the window's count would then
  /// pass `limit`: true when spent, false (nothing spent) when the budget cannot afford it. The count lapses at
  /// `windowEnd`.
  func spend(_ name: String, units: Int, limit: Int, windowEnd: Date) async -> Bool
  /// Takes `name`'s slot at `now` when the last one was taken at least `interval` before; otherwise takes nothing and
  /// says when the next slot opens.
  func pass(_ name: String, interval: Duration, now: Date) async -> Date?
}

/// ``SharedCounters`` in memory: what a store falls back to while it cannot be reached, and replicas in one test
/// process sharing one instance.
public final class MemoryCounters: SharedCounters {
  private struct State {
    var spent: [String: (windowEnd: Date, used: Int)] = [:]
    /// Name → when its next slot opens.
    var slots: [String: Date] = [:]
    /// The slot count at which ended slots are swept next (amortised O(1)), so recipients do not pile up.
    var sweepAt = 64
  }

  private let state = Mutex(State())

  public init() {}

  public func spend(_ name: String, units: Int, limit: Int, windowEnd: Date) async -> Bool {
    state.withLock { state in
      let used = state.spent[name].flatMap { $0.windowEnd == windowEnd ? $0.used : nil } ?? 0
      guard used + units <= limit else { return false }
      state.spent[name] = (windowEnd, used + units)
      return true
    }
  }

  public func pass(_ name: String, interval: Duration, now: Date) async -> Date? {
    state.withLock { state in
      if let next = state.slots[name], next > now { return next }
      state.slots[name] = now.addingTimeInterval(interval.timeInterval)
      if state.slots.count >= state.sweepAt {
        state.slots = state.slots.filter { $0.value > now }
        state.sweepAt = max(64, state.slots.count * 2)
      }
      return nil
    }
  }
}

extension Duration {
  var timeInterval: TimeInterval {
    Double(components.seconds) + Double(components.attoseconds) / 1e18
  }
}
