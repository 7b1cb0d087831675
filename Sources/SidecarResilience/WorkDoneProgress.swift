import Synchronization

/// Work-done progress of one call, reported the way LSP does: one `begin`, any number of `report`s, one `end`.
///
/// Platform code reports what it knows (bytes a platform confirmed, a processing wait); this type keeps the sequence
/// well formed for the parent: nothing before `begin` or after `end`, and byte counts and percentages that never go
/// backwards (a resumed upload re-sending a chunk is not news to a progress bar).
public final class WorkDoneProgress: Sendable {
  public enum Kind: String, Sendable {
    case begin, report, end
  }

  /// One `$/progress` value.
  public struct Value: Sendable, Equatable {
    public var kind: Kind
    public var title: String?
    public var message: String?
    /// 0...100, where the work has a known size.
    public var percentage: Int?
    public var bytesSent: Int64?
    public var bytesTotal: Int64?
  }

  private struct State {
    var begun = false
    var ended = false
    var percentage = 0
    var bytesSent: Int64 = 0
  }

  private let send: @Sendable (Value) -> Void
  private let state = Mutex(State())

  /// - Parameter send: delivers one value to the parent; called outside any lock.
  public init(send: @escaping @Sendable (Value) -> Void) {
    self.send = send
  }

  public func begin(title: String) {
    let first = state.withLock { state -> Bool in
      defer { state.begun = true }
      return !state.begun && !state.ended
    }
    if first { send(Value(kind: .begin, title: title, percentage: 0)) }
  }

  /// Reports a step; with `bytesTotal`, the percentage follows the bytes.
  public func report(message: String? = nil, bytesSent: Int64? = nil, bytesTotal: Int64? = nil) {
    let value = state.withLock { state -> Value? in
      guard state.begun, !state.ended else { return nil }
      var value = Value(kind: .report, message: message)
      if let bytesSent {
        state.bytesSent = max(state.bytesSent, bytesSent)
        value.bytesSent = state.bytesSent
        value.bytesTotal = bytesTotal
        if let bytesTotal, bytesTotal > 0 {
          state.percentage = max(state.percentage, Int(min(state.bytesSent, bytesTotal) * 100 / bytesTotal))
        }
      }
      value.percentage = state.percentage
      return value
    }
    if let value { send(value) }
  }

  /// Ends the progress (once); later reports are dropped.
  public func end(message: String? = nil) {
    let last = state.withLock { state -> Bool in
      defer { state.ended = true }
      return state.begun && !state.ended
    }
    if last { send(Value(kind: .end, message: message)) }
  }
}
