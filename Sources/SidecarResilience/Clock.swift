#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Synchronization

/// A point on a monotonic timeline, in nanoseconds from an arbitrary epoch.
///
/// Deadlines, backoff and breaker timers use this instead of `Date` so that wall-clock jumps cannot stretch or cut a
/// wait, and so that tests can drive time with ``ManualClock``. Arithmetic saturates instead of trapping.
public struct ClockInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
  public var nanoseconds: Int64

  public init(nanoseconds: Int64) {
    self.nanoseconds = nanoseconds
  }

  public static func < (lhs: ClockInstant, rhs: ClockInstant) -> Bool {
    lhs.nanoseconds < rhs.nanoseconds
  }

  public static func + (lhs: ClockInstant, rhs: Duration) -> ClockInstant {
    ClockInstant(nanoseconds: lhs.nanoseconds.saturatingAdd(rhs.saturatingNanoseconds))
  }

  /// The signed time from `self` to `other` (negative when `other` is earlier).
  public func duration(to other: ClockInstant) -> Duration {
    let (difference, overflow) = other.nanoseconds.subtractingReportingOverflow(nanoseconds)
    if overflow { return .nanoseconds(other.nanoseconds < nanoseconds ? Int64.min : Int64.max) }
    return .nanoseconds(difference)
  }

  public var description: String { "ClockInstant(\(nanoseconds) ns)" }
}

/// The source of time for everything in the resilience core.
///
/// Injected so that tests never sleep for real and so that deadlines use a monotonic clock.
public protocol SidecarClock: Sendable {
  /// The current monotonic instant.
  func now() -> ClockInstant
  /// The current wall-clock time, for `Retry-After` HTTP-dates and quota resets.
  func wallNow() -> Date
  /// Suspends until `deadline`; throws `CancellationError` promptly when the task is cancelled.
  func sleep(until deadline: ClockInstant) async throws
}

/// The real clock: `ContinuousClock` (monotonic, keeps counting while the machine sleeps) and `Date()`.
public struct SystemClock: SidecarClock {
  /// The epoch of every ``ClockInstant`` this clock hands out: the first time any `SystemClock` is used.
  private static let epoch = ContinuousClock.now

  public init() {}

  public func now() -> ClockInstant {
    ClockInstant(nanoseconds: Self.epoch.duration(to: .now).saturatingNanoseconds)
  }

  public func wallNow() -> Date { Date() }

  public func sleep(until deadline: ClockInstant) async throws {
    try await Task.sleep(until: Self.epoch.advanced(by: .nanoseconds(deadline.nanoseconds)), clock: .continuous)
  }
}

/// A clock that moves only when a test says so.
///
/// Sleepers wake when ``advance(by:)`` or ``advance(to:)`` reaches their deadline, or at once with `CancellationError`
/// when their task is cancelled. ``waitForSleepers(count:)`` lets a test wait until the code under test is parked
/// before it moves time, so no test depends on real delays. The wall clock moves in step with the monotonic one.
public final class ManualClock: SidecarClock {
  private enum Sleeper {
    /// Registered; its continuation is not installed yet.
    case pending(deadline: ClockInstant)
    /// Cancelled before its continuation was installed; the installer resumes it with `CancellationError`.
    case cancelled
    /// Parked until `deadline`.
    case waiting(deadline: ClockInstant, continuation: CheckedContinuation<Void, any Error>)
  }

  private enum CountWaiter {
    case pending
    case cancelled
    case waiting(count: Int, continuation: CheckedContinuation<Void, Never>)
  }

  private struct State {
    var now: ClockInstant
    var nextID: UInt64 = 0
    var sleepers: [UInt64: Sleeper] = [:]
    var countWaiters: [UInt64: CountWaiter] = [:]

    var waitingCount: Int {
      sleepers.values.reduce(0) { count, sleeper in
        if case .waiting = sleeper { return count + 1 }
        return count
      }
    }

    /// Removes and returns the count waiters that are satisfied now.
    mutating func satisfiedCountWaiters() -> [CheckedContinuation<Void, Never>] {
      let waiting = waitingCount
      var ready: [CheckedContinuation<Void, Never>] = []
      for (id, waiter) in countWaiters {
        if case .waiting(let count, let continuation) = waiter, count <= waiting {
          countWaiters[id] = nil
          ready.append(continuation)
        }
      }
      return ready
    }

    mutating func makeID() -> UInt64 {
      defer { nextID += 1 }
      return nextID
    }
  }

  private let start: ClockInstant
  private let wallStart: Date
  private let state: Mutex<State>

  /// - Parameters:
  ///   - now: the starting monotonic instant.
  ///   - wallNow: the wall-clock time at `now` (a fixed date by default, so tests are reproducible).
  public init(
    now: ClockInstant = ClockInstant(nanoseconds: 0), wallNow: Date = Date(timeIntervalSince1970: 1_700_000_000)
  ) {
    self.start = now
    self.wallStart = wallNow
    self.state = Mutex(State(now: now))
  }

  public func now() -> ClockInstant {
    state.withLock { $0.now }
  }

  public func wallNow() -> Date {
    let elapsed = start.duration(to: now())
    return wallStart.addingTimeInterval(Double(elapsed.saturatingNanoseconds) / 1e9)
  }

  public func sleep(until deadline: ClockInstant) async throws {
    try Task.checkCancellation()
    let id: UInt64? = state.withLock { state in
      guard deadline > state.now else { return nil }
      let id = state.makeID()
      state.sleepers[id] = .pending(deadline: deadline)
      return id
    }
    guard let id else { return }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        enum Install {
          case parked([CheckedContinuation<Void, Never>])
          case wake, cancel
        }
        let install: Install = state.withLock { state in
          switch state.sleepers[id] {
          case .pending(let deadline) where deadline > state.now:
            state.sleepers[id] = .waiting(deadline: deadline, continuation: continuation)
            return .parked(state.satisfiedCountWaiters())
          case .pending:
            state.sleepers[id] = nil
            return .wake
          case .cancelled, .waiting, nil:
            state.sleepers[id] = nil
            return .cancel
          }
        }
        switch install {
        case .parked(let waiters):
          for waiter in waiters { waiter.resume() }
        case .wake: continuation.resume()
        case .cancel: continuation.resume(throwing: CancellationError())
        }
      }
    } onCancel: {
      let continuation: CheckedContinuation<Void, any Error>? = state.withLock { state in
        switch state.sleepers[id] {
        case .pending:
          state.sleepers[id] = .cancelled
          return nil
        case .waiting(_, let continuation):
          state.sleepers[id] = nil
          return continuation
        case .cancelled, nil:
          return nil
        }
      }
      continuation?.resume(throwing: CancellationError())
    }
  }

  /// Moves time forward by `duration`, waking every sleeper whose deadline is reached.
  public func advance(by duration: Duration) {
    advance(to: now() + duration)
  }

  /// Moves time forward to `instant` (never backwards), waking every sleeper whose deadline is reached.
  public func advance(to instant: ClockInstant) {
    let due: [CheckedContinuation<Void, any Error>] = state.withLock { state in
      state.now = max(state.now, instant)
      var due: [CheckedContinuation<Void, any Error>] = []
      for (id, sleeper) in state.sleepers {
        if case .waiting(let deadline, let continuation) = sleeper, deadline <= state.now {
          state.sleepers[id] = nil
          due.append(continuation)
        }
      }
      return due
    }
    for continuation in due { continuation.resume() }
  }

  /// Waits until at least one task sleeps, then moves time to the earliest sleeper's deadline.
  ///
  /// - Returns: how far time moved.
  @discardableResult
  public func advanceToNextSleeper() async -> Duration {
    await waitForSleepers(count: 1)
    let from = now()
    guard let next = nextSleeperDeadline else { return .zero }
    advance(to: next)
    return from.duration(to: max(from, next))
  }

  /// How many tasks are parked in ``sleep(until:)``.
  public var sleeperCount: Int {
    state.withLock { $0.waitingCount }
  }

  /// The earliest deadline among parked sleepers.
  public var nextSleeperDeadline: ClockInstant? {
    state.withLock { state in
      state.sleepers.values.compactMap { sleeper -> ClockInstant? in
        if case .waiting(let deadline, _) = sleeper { return deadline }
        return nil
      }.min()
    }
  }

  /// Returns once at least `count` tasks are parked in ``sleep(until:)``, or early when the waiting task is cancelled
  /// (a test's time limit), so that a test whose code never sleeps fails instead of hanging.
  public func waitForSleepers(count: Int) async {
    let id = state.withLock { state in
      let id = state.makeID()
      state.countWaiters[id] = .pending
      return id
    }
    await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let ready = state.withLock { state in
          if case .pending = state.countWaiters[id], state.waitingCount < count {
            state.countWaiters[id] = .waiting(count: count, continuation: continuation)
            return false
          }
          state.countWaiters[id] = nil
          return true
        }
        if ready { continuation.resume() }
      }
    } onCancel: {
      let continuation: CheckedContinuation<Void, Never>? = state.withLock { state in
        switch state.countWaiters[id] {
        case .pending:
          state.countWaiters[id] = .cancelled
          return nil
        case .waiting(_, let continuation):
          state.countWaiters[id] = nil
          return continuation
        case .cancelled, nil:
          return nil
        }
      }
      continuation?.resume()
    }
  }
}

extension Duration {
  /// Whole nanoseconds, saturating at the bounds of `Int64` instead of trapping.
  var saturatingNanoseconds: Int64 {
    let (seconds, attoseconds) = components
    let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return seconds < 0 ? .min : .max }
    return whole.saturatingAdd(attoseconds / 1_000_000_000)
  }
}

extension Int64 {
  func saturatingAdd(_ other: Int64) -> Int64 {
    let (sum, overflow) = addingReportingOverflow(other)
    if overflow { return other < 0 ? .min : .max }
    return sum
  }
}
