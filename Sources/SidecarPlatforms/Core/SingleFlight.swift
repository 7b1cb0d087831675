import Synchronization

/// Runs one piece of work per key at a time and shares its result with every caller that asks meanwhile.
///
/// Five concurrent posts on one stale credential must cause one token refresh, not five. The work runs in its own
/// task, so one caller's cancellation does not fail the others; a cancelled caller stops waiting at once.
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
  private final class Flight: Sendable {
    let waiters = Mutex<
      (result: Result<Value, any Error>?, continuations: [Int: CheckedContinuation<Value, any Error>], next: Int)
    >(
      (nil, [:], 0))
  }

  private let flights = Mutex<[Key: Flight]>([:])

  public init() {}

  /// Joins the flight for `key`, starting it with `work` when none is running.
  public func run(_ key: Key, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
    let (flight, isNew) = flights.withLock { flights -> (Flight, Bool) in
      if let existing = flights[key] { return (existing, false) }
      let flight = Flight()
      flights[key] = flight
      return (flight, true)
    }
    if isNew {
      Task {
        let result: Result<Value, any Error>
        do { result = .success(try await work()) } catch { result = .failure(error) }
        self.flights.withLock { flights in
          if flights[key] === flight { flights[key] = nil }
        }
        let waiting = flight.waiters.withLock { state in
          state.result = result
          defer { state.continuations.removeAll() }
          return Array(state.continuations.values)
        }
        for continuation in waiting { continuation.resume(with: result) }
      }
    }
    let ticket = flight.waiters.withLock { state -> Int in
      defer { state.next += 1 }
      return state.next
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Value, any Error>) in
        let finished = flight.waiters.withLock { state -> Result<Value, any Error>? in
          if let result = state.result { return result }
          if Task.isCancelled { return .failure(CancellationError()) }
          state.continuations[ticket] = continuation
          return nil
        }
        if let finished { continuation.resume(with: finished) }
      }
    } onCancel: {
      let continuation = flight.waiters.withLock { $0.continuations.removeValue(forKey: ticket) }
      continuation?.resume(throwing: CancellationError())
    }
  }
}
