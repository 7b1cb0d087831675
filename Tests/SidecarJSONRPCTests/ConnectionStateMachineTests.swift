import SidecarJSON
import Testing

@testable import SidecarJSONRPC

/// Waiters are names here, so a test can see which were failed and how often.
private typealias Machine = ConnectionStateMachine<String>

private final class Listener: Dispatcher {
  func route(method: String) -> Route { .reject(.methodNotFound(method)) }
  func notification(method: String, params: JSONValue?) {}
  func connectionClosed(_ reason: CloseReason) {}
}

private func machine(maxInFlight: Int = 4096, listener: Listener? = Listener()) -> Machine {
  var limits = Connection.Limits()
  limits.maxInFlight = maxInFlight
  var machine = Machine(limits: limits)
  if let listener { machine.start(listener) }
  return machine
}

private func idle() -> Task<Void, Never> { Task {} }

@Suite("Connection state machine, event by event")
struct ConnectionStateMachineTests {
  @Test("A request routed to a task is admitted once per id and refused past maxInFlight until one answers")
  func admission() {
    var state = machine(maxInFlight: 2)
    #expect(state.admit(.int(1)) == .run)
    #expect(state.admit(.int(1)) == .duplicateID)
    #expect(state.admit(.string("1")) == .run, "an id keeps its type: \"1\" is not 1")
    #expect(state.admit(.int(3)) == .overloaded(limit: 2))
    #expect(state.inFlightCount == 2)
    #expect(state.answered(.int(1)).isEmpty)
    #expect(state.admit(.int(3)) == .run)
    #expect(state.admit(.int(1)) == .overloaded(limit: 2))
  }

  @Test("$/cancelRequest cancels the task, or marks the request when its task is not attached yet")
  func cancellation() {
    var state = machine()
    let early = idle()
    #expect(state.admit(.int(1)) == .run)
    #expect(state.cancel(.int(1)) == .cancelOnAttach)
    let cancelAtOnce = state.attach(early, to: .int(1))
    #expect(cancelAtOnce, "attached after the cancel: cancel it at once")

    let running = idle()
    #expect(state.admit(.int(2)) == .run)
    let cancelRunning = state.attach(running, to: .int(2))
    #expect(!cancelRunning)
    #expect(state.cancel(.int(2)) == .cancel(running))

    #expect(state.cancel(.int(9)) == .notInFlight)
    _ = state.answered(.int(2))
    #expect(state.cancel(.int(2)) == .notInFlight, "answered requests cannot be cancelled")
  }

  @Test("A task that answers before it is attached is not kept")
  func answeredBeforeAttached() {
    var state = machine()
    #expect(state.admit(.int(1)) == .run)
    #expect(state.answered(.int(1)).isEmpty)
    let cancelLate = state.attach(idle(), to: .int(1))
    #expect(!cancelLate)
    #expect(state.inFlightCount == 0)
  }

  @Test("Notifications about a request leave with its answer, in order; after the answer they leave at once")
  func companions() {
    var state = machine()
    #expect(state.admit(.int(1)) == .run)
    let kept = [state.enclose([1, 2], withAnswerTo: .int(1)), state.enclose([3], withAnswerTo: .int(1))]
    let keptForAnother = state.enclose([7], withAnswerTo: .int(2))
    #expect(kept == [true, true])
    #expect(!keptForAnother, "another id: not in flight")
    #expect(state.answered(.int(1)) == [1, 2, 3])
    let keptAfterAnswer = state.enclose([4], withAnswerTo: .int(1))
    #expect(!keptAfterAnswer)
    #expect(state.answered(.int(1)).isEmpty)
  }

  @Test("Server-to-client requests get ids s1, s2, … and each answer finds its waiter exactly once")
  func outgoing() {
    var state = machine()
    let first = state.nextOutgoingID()
    let second = state.nextOutgoingID()
    #expect(first == .string("s1") && second == .string("s2"))
    let registered = [state.register("first", for: first), state.register("second", for: second)]
    #expect(registered == [true, true])
    #expect(state.finishOutgoing(second) == "second", "answers may come in any order")
    #expect(state.finishOutgoing(second) == nil, "a second answer (or a timeout after the answer) finds nothing")
    #expect(state.finishOutgoing(.int(1)) == nil)
    #expect(state.finishOutgoing(first) == "first")
  }

  @Test("The peer closes its output: the dispatcher hears it once and requests already sent wait for their answer")
  func inputEnded() throws {
    let listener = Listener()
    var state = machine(listener: listener)
    let id = state.nextOutgoingID()
    let sent = state.register("sent", for: id)
    #expect(sent)
    let first = state.close(.inputEnded)
    let close = try #require(first)
    #expect(close.failing.isEmpty)
    #expect(close.report?.reason == .inputEnded && close.report?.to as? Listener === listener)
    let later = state.register("later", for: state.nextOutgoingID())
    #expect(later, "the output still works")
    #expect(state.finishOutgoing(id) == "sent")
    #expect(state.close(.outputClosed) == nil, "only the first close counts")
  }

  @Test("A write failure with requests in flight and pending: each waiter is failed exactly once, nothing after")
  func writeFailure() throws {
    var state = machine()
    #expect(state.admit(.int(1)) == .run)
    _ = state.attach(idle(), to: .int(1))
    let ids = (0..<3).map { _ in state.nextOutgoingID() }
    let registered = ids.enumerated().map { index, id in state.register("w\(index)", for: id) }
    #expect(registered == [true, true, true])
    #expect(state.finishOutgoing(ids[1]) == "w1")

    let first = state.close(.outputClosed)
    let close = try #require(first)
    #expect(close.failing.sorted() == ["w0", "w2"])
    #expect(close.report?.reason == .outputClosed)
    #expect(state.inFlightCount == 1, "a running task still finishes; its answer meets the closed output")
    let late = state.register("late", for: state.nextOutgoingID())
    #expect(!late, "refused: the caller fails it at once")
    #expect(ids.allSatisfy { state.finishOutgoing($0) == nil }, "a timeout after the close finds nothing")
    #expect(state.stopOutgoing().failing.isEmpty)
    #expect(state.close(.inputEnded) == nil)
  }

  @Test("Stopping outgoing requests before exit, then a close: every waiter once, the dispatcher told once")
  func stopThenClose() throws {
    var state = machine()
    _ = state.register("pending", for: state.nextOutgoingID())
    let stop = state.stopOutgoing()
    #expect(stop.failing == ["pending"] && stop.report == nil)
    let late = state.register("late", for: state.nextOutgoingID())
    #expect(!late)
    let first = state.close(.outputClosed)
    let close = try #require(first)
    #expect(close.failing.isEmpty && close.report?.reason == .outputClosed)
    #expect(state.close(.outputClosed) == nil)
  }

  @Test("A close before start has nobody to tell, but still fails waiters and counts as the close")
  func closeBeforeStart() throws {
    var state = machine(listener: nil)
    _ = state.register("early", for: state.nextOutgoingID())
    let first = state.close(.outputClosed)
    let close = try #require(first)
    #expect(close.failing == ["early"] && close.report == nil)
    state.start(Listener())
    #expect(state.close(.inputEnded) == nil)
  }

  @Test("Changed limits apply to the next admission and the next read")
  func limitsChange() {
    var state = machine(maxInFlight: 1)
    #expect(state.admit(.int(1)) == .run)
    #expect(state.admit(.int(2)) == .overloaded(limit: 1))
    #expect(maxFrameBytes(after: state.readProcessed(discardedBytes: 0)) == 8 << 20)
    state.limits.maxInFlight = 3
    state.limits.maxFrameBytes = 1000
    #expect(state.admit(.int(2)) == .run)
    #expect(maxFrameBytes(after: state.readProcessed(discardedBytes: 0)) == 1000)
  }

  @Test("A frame over the limit the machine hands the decoder is refused by the decoder, naming that limit")
  func frameTooLarge() throws {
    var state = machine()
    state.limits.maxFrameBytes = 10
    var decoder = FrameDecoder()
    decoder.maxFrameBytes = try #require(maxFrameBytes(after: state.readProcessed(discardedBytes: 0)))
    decoder.append(Array("Content-Length: 11\r\n\r\n{\"a\":12345}".utf8))
    do {
      _ = try decoder.next()
      Issue.record("a frame over the limit was decoded")
    } catch {
      #expect(error.kind == .frameTooLarge(declared: 11))
      #expect(error.reason.contains("limit of 10 bytes"))
    }
  }

  @Test("Unframeable input past maxDiscardedBytes closes the connection once and fails the waiters")
  func hopelessInput() throws {
    var state = machine()
    state.limits.maxDiscardedBytes = 100
    _ = state.register("pending", for: state.nextOutgoingID())
    #expect(maxFrameBytes(after: state.readProcessed(discardedBytes: 100)) != nil, "at the limit: keep reading")
    guard case .stop(let close?) = state.readProcessed(discardedBytes: 101) else {
      Issue.record("expected the first close")
      return
    }
    #expect(close.failing == ["pending"])
    guard case .unrecoverableFraming(let detail)? = close.report?.reason else {
      Issue.record("expected unrecoverableFraming")
      return
    }
    #expect(detail.contains("101 bytes") && detail.contains("Content-Length"))
    guard case .stop(nil) = state.readProcessed(discardedBytes: 200) else {
      Issue.record("a second hopeless read must not close again")
      return
    }
  }
}

/// The frame limit of a `readMore`, nil for `stop`.
private func maxFrameBytes(after action: Machine.ReadAction) -> Int? {
  if case .readMore(let limit) = action { limit } else { nil }
}
