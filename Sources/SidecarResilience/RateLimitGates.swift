import Synchronization

/// Names what a rate limit applies to: `"facebook:app"`, `"facebook:page:123"`, `"whatsapp:pair:<phone>:<to>"`.
public struct RateLimitKey: Hashable, Sendable, CustomStringConvertible {
  public var raw: String

  public init(_ raw: String) {
    self.raw = raw
  }

  /// The app-wide key of a platform, `"<platform>:app"`, which app-scoped rate limits block.
  public static func app(_ platform: String) -> RateLimitKey {
    RateLimitKey("\(platform):app")
  }

  /// True for app-wide keys (`…:app`).
  public var isApp: Bool { raw.hasSuffix(":app") }

  public var description: String { raw }
}

/// What the sidecar knows about throttling, per key: blocks ("no call before T") and pacing ("calls at least I apart").
///
/// ``ResilienceCore`` consults the gates a call names before each attempt, waits when the wait fits the call's deadline
/// and fails fast with `rate_limited` otherwise, so a call that would surely be throttled never spends a request. It
/// records a block itself when a platform answers with a rate limit; platform code may add its own from usage headers
/// (Meta `X-App-Usage` at 100%, `estimated_time_to_regain_access`).
public final class RateLimitGates: Sendable {
  private struct Entry {
    var blockedUntil: ClockInstant?
    var reason: PlatformFailure?
    var minInterval: Duration?
    var lastPass: ClockInstant?

    /// The first instant a call may pass.
    var earliest: ClockInstant? {
      let paced = minInterval.flatMap { interval in lastPass.map { $0 + interval } }
      switch (blockedUntil, paced) {
      case (let block?, let pace?): return max(block, pace)
      case (let block?, nil): return block
      case (nil, let pace): return pace
      }
    }

    /// True when forgetting the entry changes nothing: no block in force and no pacing interval still running. A pacing
    /// rule that has never been used is kept.
    func isIdle(at now: ClockInstant) -> Bool {
      if let blockedUntil, blockedUntil > now { return false }
      guard let minInterval else { return true }
      guard let lastPass else { return false }
      return lastPass + minInterval <= now
    }
  }

  private struct State {
    var entries: [RateLimitKey: Entry] = [:]
    /// The entry count at which idle entries are swept next (amortised O(1)).
    var sweepAt = 64

    mutating func sweepIfNeeded(now: ClockInstant) {
      guard entries.count >= sweepAt else { return }
      entries = entries.filter { !$0.value.isIdle(at: now) }
      sweepAt = max(64, entries.count * 2)
    }
  }

  /// Where the gates stand for a set of keys.
  enum Decision: Equatable {
    /// Go now; pacing has recorded the pass.
    case go
    /// Wait until `until`; `reason` is the failure behind the latest block (nil when only pacing holds the call).
    case wait(until: ClockInstant, reason: PlatformFailure?)
  }

  private let clock: any SidecarClock
  private let state = Mutex(State())

  public init(clock: any SidecarClock) {
    self.clock = clock
  }

  /// Blocks `key` until `until`. A block is only ever extended, never shortened, by a later call.
  public func block(_ key: RateLimitKey, until: ClockInstant, reason: PlatformFailure) {
    let now = clock.now()
    guard until > now else { return }
    state.withLock { state in
      var entry = state.entries[key] ?? Entry()
      if entry.blockedUntil.map({ until > $0 }) ?? true {
        entry.blockedUntil = until
        entry.reason = reason
      }
      state.entries[key] = entry
      state.sweepIfNeeded(now: now)
    }
  }

  /// Lifts a block on `key` (pacing stays).
  public func unblock(_ key: RateLimitKey) {
    state.withLock { state in
      state.entries[key]?.blockedUntil = nil
      state.entries[key]?.reason = nil
    }
  }

  /// The instant before which no call on `key` may go (block or pacing), or nil when one may go now.
  public func blockedUntil(_ key: RateLimitKey) -> ClockInstant? {
    let now = clock.now()
    return state.withLock { state in
      guard let earliest = state.entries[key]?.earliest, earliest > now else { return nil }
      return earliest
    }
  }

  /// The failure behind the block on `key`, while it lasts.
  public func blockReason(_ key: RateLimitKey) -> PlatformFailure? {
    let now = clock.now()
    return state.withLock { state in
      guard let entry = state.entries[key], let until = entry.blockedUntil, until > now else { return nil }
      return entry.reason
    }
  }

  /// Spaces calls on `key` at least `minInterval` apart, measured between the moments they pass the gate (WhatsApp's
  /// one message per 6 s to a recipient).
  ///
  /// Idempotent and cheap: call it before each run that names `key`. A rule whose key has been idle for a full interval
  /// is forgotten, so per-recipient keys do not pile up.
  public func pace(_ key: RateLimitKey, minInterval: Duration) {
    let now = clock.now()
    state.withLock { state in
      state.entries[key, default: Entry()].minInterval = minInterval
      state.sweepIfNeeded(now: now)
    }
  }

  /// The blocks in force and their reasons (what sidecars sharing a store tell each other).
  public func blocks() -> [(key: RateLimitKey, until: ClockInstant, reason: PlatformFailure)] {
    let now = clock.now()
    return state.withLock { state in
      state.entries.compactMap { key, entry in
        guard let until = entry.blockedUntil, until > now, let reason = entry.reason else { return nil }
        return (key, until, reason)
      }
    }
  }

  /// Keys with state, for tests of the sweep.
  var keyCount: Int { state.withLock { $0.entries.count } }

  /// The paced keys among `keys`, with their intervals.
  func pacing(_ keys: [RateLimitKey]) -> [(key: RateLimitKey, interval: Duration)] {
    state.withLock { state in keys.compactMap { key in state.entries[key]?.minInterval.map { (key, $0) } } }
  }

  /// Checks `keys` at `now`; when all are open, records the pass for pacing in the same step, so two callers can never
  /// both take one paced slot. With `pacing` false only blocks count (the shared store paces instead).
  func check(_ keys: [RateLimitKey], now: ClockInstant, pacing: Bool = true) -> Decision {
    guard !keys.isEmpty else { return .go }
    return state.withLock { state in
      var latest: (until: ClockInstant, reason: PlatformFailure?)?
      for key in keys {
        guard let entry = state.entries[key], let earliest = pacing ? entry.earliest : entry.blockedUntil,
          earliest > now
        else { continue }
        if latest.map({ earliest > $0.until }) ?? true {
          let reason = entry.blockedUntil == earliest ? entry.reason : nil
          latest = (earliest, reason)
        }
      }
      if let latest { return .wait(until: latest.until, reason: latest.reason) }
      for key in keys where state.entries[key]?.minInterval != nil {
        state.entries[key]?.lastPass = now
      }
      return .go
    }
  }
}
