/// Everything a ``Connection`` shares between its reader thread, its request tasks and its writers, as one value.
///
/// `Connection` keeps it behind one lock: each event takes the lock once, changes the state and returns what must
/// happen next (resume a continuation, write frames, cancel a task, tell the dispatcher), which the caller does after
/// releasing the lock. Nothing here performs I/O or calls out, so the tests drive it event by event.
///
/// `Waiter` is what a server-to-client request waits on: a continuation in `Connection`, a plain value in tests.
struct ConnectionStateMachine<Waiter> {
  var limits: Connection.Limits
  private var phase = Phase.idle
  /// Requests from the parent running in their own task, by id.
  private var inFlight: [RequestID: Running] = [:]
  private var outgoing = Outgoing()

  private enum Phase {
    /// Not started: a close has nobody to tell.
    case idle
    /// Reading; the dispatcher hears of the first close.
    case open(any Dispatcher)
    /// Input or output ended; later closes change nothing.
    case closed(CloseReason)
  }

  private struct Running {
    /// Nil until the task is attached (it is created after its admission, outside the lock).
    var task: Task<Void, Never>?
    var cancelled = false
    /// Frames of notifications that leave with the answer, just before it.
    var companions: [UInt8] = []
  }

  private struct Outgoing {
    var nextNumber = 1
    var pending: [RequestID: Waiter] = [:]
    /// False once closed (or the server is exiting): a new request fails at once instead of waiting for nothing.
    var accepting = true
  }

  init(limits: Connection.Limits) {
    self.limits = limits
  }

  var inFlightCount: Int { inFlight.count }

  mutating func start(_ dispatcher: any Dispatcher) {
    if case .idle = phase { phase = .open(dispatcher) }
  }

  // MARK: Reading

  enum ReadAction {
    /// Decode the next read with this frame limit (`initialize` may have changed it).
    case readMore(maxFrameBytes: Int)
    /// The input is hopeless: stop reading, and close if this is the first close.
    case stop(CloseAction?)
  }

  /// A read has been processed; `discardedBytes` is what the decoder skipped since its last good frame.
  mutating func readProcessed(discardedBytes: Int) -> ReadAction {
    guard discardedBytes > limits.maxDiscardedBytes else { return .readMore(maxFrameBytes: limits.maxFrameBytes) }
    return .stop(
      close(
        .unrecoverableFraming(
          "no Content-Length header found in the last \(discardedBytes) bytes of stdin; "
            + "the parent must send LSP-framed JSON-RPC (Content-Length: N\\r\\n\\r\\n + JSON)")))
  }

  // MARK: Requests from the parent

  enum Admission: Equatable {
    /// Start the task, then ``attach(_:to:)`` it.
    case run
    case duplicateID
    case overloaded(limit: Int)
  }

  /// A request routed to a task arrives.
  mutating func admit(_ id: RequestID) -> Admission {
    if inFlight[id] != nil { return .duplicateID }
    if inFlight.count >= limits.maxInFlight { return .overloaded(limit: limits.maxInFlight) }
    inFlight[id] = Running()
    return .run
  }

  /// The admitted request's task exists. Returns true when a cancellation came first: cancel it at once.
  mutating func attach(_ task: Task<Void, Never>, to id: RequestID) -> Bool {
    // Absent when the task has already answered.
    guard let index = inFlight.index(forKey: id) else { return false }
    inFlight.values[index].task = task
    return inFlight.values[index].cancelled
  }

  enum CancelAction: Equatable {
    case cancel(Task<Void, Never>)
    /// Marked: the task is cancelled when attached.
    case cancelOnAttach
    case notInFlight
  }

  /// `$/cancelRequest` arrives for `id`.
  mutating func cancel(_ id: RequestID) -> CancelAction {
    guard let index = inFlight.index(forKey: id) else { return .notInFlight }
    inFlight.values[index].cancelled = true
    return inFlight.values[index].task.map { .cancel($0) } ?? .cancelOnAttach
  }

  /// A notification about request `id` is ready. Returns true when it was kept to leave with the answer; false when
  /// the request has already been answered (write it at once).
  mutating func enclose(_ frame: [UInt8], withAnswerTo id: RequestID) -> Bool {
    guard let index = inFlight.index(forKey: id) else { return false }
    // The usual single notification is kept as it is: no copy while the lock is held.
    if inFlight.values[index].companions.isEmpty {
      inFlight.values[index].companions = frame
    } else {
      inFlight.values[index].companions.append(contentsOf: frame)
    }
    return true
  }

  /// The task of request `id` has its answer. Returns the frames to write before it.
  mutating func answered(_ id: RequestID) -> [UInt8] {
    inFlight.removeValue(forKey: id)?.companions ?? []
  }

  // MARK: Requests to the parent

  /// Ids are strings (`"s1"`, `"s2"`, …) so they never collide with the parent's integer ids.
  mutating func nextOutgoingID() -> RequestID {
    defer { outgoing.nextNumber += 1 }
    return .string("s\(outgoing.nextNumber)")
  }

  /// A server-to-client request waits for its answer. Returns false when the connection no longer takes requests:
  /// fail `waiter` with ``OutgoingRequestError/connectionClosed`` and send nothing.
  mutating func register(_ waiter: Waiter, for id: RequestID) -> Bool {
    guard outgoing.accepting else { return false }
    outgoing.pending[id] = waiter
    return true
  }

  /// Request `id` is over (answered, timed out or cancelled). Returns its waiter, or nil when it was already over.
  mutating func finishOutgoing(_ id: RequestID) -> Waiter? {
    outgoing.pending.removeValue(forKey: id)
  }

  // MARK: Closing

  /// Every waiter to fail with ``OutgoingRequestError/connectionClosed``, and who to tell of the close.
  struct CloseAction {
    var failing: [Waiter] = []
    var report: (reason: CloseReason, to: any Dispatcher)?
  }

  /// Input ended, output failed, or the input is hopeless. Nil when already closed: only the first close counts.
  mutating func close(_ reason: CloseReason) -> CloseAction? {
    let dispatcher: (any Dispatcher)?
    switch phase {
    case .closed: return nil
    case .idle: dispatcher = nil
    case .open(let current): dispatcher = current
    }
    phase = .closed(reason)
    var action = CloseAction(report: dispatcher.map { (reason, $0) })
    // At EOF on input the output still works: a request already sent (a refreshed token handed to the parent) may
    // still matter to it, so it waits for its timeout rather than failing now.
    if reason != .inputEnded { action.failing = stopOutgoing().failing }
    return action
  }

  /// The server is about to exit: every server-to-client request fails now and new ones are refused.
  mutating func stopOutgoing() -> CloseAction {
    outgoing.accepting = false
    defer { outgoing.pending = [:] }
    return CloseAction(failing: Array(outgoing.pending.values))
  }
}
