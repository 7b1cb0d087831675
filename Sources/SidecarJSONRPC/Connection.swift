#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Dispatch
import SidecarJSON
import SidecarLogging
import SidecarSystem
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How a request is run, decided by the dispatcher on the reader thread.
public enum Route: Sendable {
  /// Cheap work answered on the reader thread without a task hop (health, status queries, lifecycle).
  case inline(@Sendable (_ params: JSONValue?) -> Result<JSONValue, JSONRPCError>)
  /// Real work in its own task: cancellable with `$/cancelRequest`, counted against `maxInFlight`.
  case task(@Sendable (_ params: JSONValue?, _ id: RequestID) async -> Result<JSONValue, JSONRPCError>)
  /// Refused at once (unknown method, lifecycle state).
  case reject(JSONRPCError)
}

/// Why the connection stopped reading or writing.
public enum CloseReason: Sendable, Equatable {
  /// stdin reached EOF: the parent is gone or done.
  case inputEnded
  /// stdout is closed (EPIPE): nobody can hear us.
  case outputClosed
  /// The input is not LSP-framed JSON-RPC and no frame boundary could be found.
  case unrecoverableFraming(String)
}

/// What the connection asks of the layer above it. Called on the reader thread: keep it fast.
public protocol Dispatcher: Sendable {
  func route(method: String) -> Route
  func notification(method: String, params: JSONValue?)
  func connectionClosed(_ reason: CloseReason)
}

/// One JSON-RPC 2.0 peer over a pair of file descriptors.
///
/// A reader thread frames and decodes messages and answers inline routes directly, because a hop per message costs a
/// quarter of the throughput (measured on this project's Linux machines); only real work starts a task. Responses
/// leave in completion order. Every request is answered exactly once.
public final class Connection: Sendable {
  public struct Limits: Sendable {
    public var maxFrameBytes = 8 << 20
    public var maxInFlight = 4096
    /// Bytes of unframeable input tolerated before giving up on the peer.
    public var maxDiscardedBytes = 1 << 20
    public init() {}
  }

  private let inputFD: Int32
  private let writer: FrameWriter
  private let logger: Logger
  private let limits: Mutex<Limits>
  private let dispatcher: Mutex<(any Dispatcher)?>
  private let inFlight = Mutex<[RequestID: InFlightRequest]>([:])
  private let outgoing = Mutex<OutgoingState>(OutgoingState())
  private let closedReason = Mutex<CloseReason?>(nil)
  /// Answers produced on the reader thread, written with one `write(2)` per read instead of one per frame.
  private let outbox = Mutex<[UInt8]>([])

  private struct OutgoingState {
    var nextID = 1
    var pending: [RequestID: CheckedContinuation<JSONValue, any Error>] = [:]
    var closed = false
  }

  public init(inputFD: Int32, outputFD: Int32, limits: Limits = Limits(), logger: Logger) {
    self.inputFD = inputFD
    self.logger = logger
    self.limits = Mutex(limits)
    self.writer = FrameWriter(fd: outputFD)
    self.dispatcher = Mutex(nil)
    writer.onClose { [weak self] in self?.closed(.outputClosed) }
  }

  /// Changes limits at run time (from `initialize.config`).
  public func updateLimits(_ change: (inout Limits) -> Void) { limits.withLock { change(&$0) } }

  /// Starts the reader thread. Messages are handed to `dispatcher` until the input ends.
  public func start(dispatcher: any Dispatcher) {
    self.dispatcher.withLock { $0 = dispatcher }
    startThread(stackSize: 4 << 20) { [self] in self.readLoop() }
  }

  public var inFlightCount: Int { inFlight.withLock { $0.count } }

  // MARK: Outgoing

  /// Sends a notification to the parent.
  public func notify(_ method: String, params: JSONValue?) {
    writer.write(body: MessageEncoding.notification(method: method, params: params))
  }

  /// Sends a notification whose params are already JSON bytes (metric events, written by a specialised encoder).
  ///
  /// With `answer`, the notification is about that request in flight (its metric event) and leaves in the same
  /// `write(2)` as the answer, just before it: one system call per call instead of two. If the request has already
  /// been answered, it leaves at once.
  public func notify(_ method: String, serializedParams: [UInt8], withAnswerTo answer: RequestID? = nil) {
    var body: [UInt8] = []
    body.reserveCapacity(serializedParams.count + method.utf8.count + 40)
    body.append(contentsOf: #"{"jsonrpc":"2.0","method":"#.utf8)
    JSONValue.writeString(method, to: &body)
    body.append(contentsOf: #","params":"#.utf8)
    body.append(contentsOf: serializedParams)
    body.append(UInt8(ascii: "}"))
    var frame: [UInt8] = []
    FrameWriter.appendFrame(body: body, to: &frame)
    if let answer, let request = inFlight.withLock({ $0[answer] }), request.enclose(frame) { return }
    writer.write(frames: frame)
  }

  /// Sends a server-to-client request and waits for its answer.
  ///
  /// Ids are strings (`"s1"`, `"s2"`, …) so they never collide with the parent's integer ids. On timeout or task
  /// cancellation the parent is sent `$/cancelRequest`. Throws ``JSONRPCError`` when the parent answers with an error,
  /// ``OutgoingRequestError`` on timeout or closed connection, `CancellationError` when cancelled.
  public func sendRequest(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
    let id = outgoing.withLock { state -> RequestID in
      defer { state.nextID += 1 }
      return .string("s\(state.nextID)")
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
        let accepted = outgoing.withLock { state -> Bool in
          guard !state.closed else { return false }
          state.pending[id] = continuation
          return true
        }
        guard accepted else {
          continuation.resume(throwing: OutgoingRequestError.connectionClosed)
          return
        }
        if Task.isCancelled {
          failOutgoing(id, CancellationError(), notifyPeer: false)
          return
        }
        writer.write(body: MessageEncoding.request(id: id, method: method, params: params))
        let nanos = max(0, Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000))
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [weak self] in
          self?.failOutgoing(id, OutgoingRequestError.timedOut(method: method, after: timeout), notifyPeer: true)
        }
      }
    } onCancel: {
      failOutgoing(id, CancellationError(), notifyPeer: true)
    }
  }

  private func failOutgoing(_ id: RequestID, _ error: any Error, notifyPeer: Bool) {
    let continuation = outgoing.withLock { $0.pending.removeValue(forKey: id) }
    guard let continuation else { return }
    continuation.resume(throwing: error)
    if notifyPeer { notify("$/cancelRequest", params: ["id": id.json]) }
  }

  private func receiveResponse(_ object: [String: JSONValue]) {
    guard let idValue = object["id"], let id = RequestID(idValue) else {
      logger.warn("response without a usable id dropped")
      return
    }
    guard let continuation = outgoing.withLock({ $0.pending.removeValue(forKey: id) }) else {
      logger.debug("response to an unknown or finished request dropped", ["id": id.json])
      return
    }
    if let error = object["error"] {
      continuation.resume(
        throwing: JSONRPCError(
          code: error["code"]?.intValue ?? JSONRPCError.Code.internalError,
          message: error["message"]?.stringValue ?? "error from parent",
          data: error["data"]))
    } else {
      continuation.resume(returning: object["result"] ?? .null)
    }
  }

  // MARK: Reading

  private func readLoop() {
    var decoder = FrameDecoder(maxFrameBytes: limits.withLock { $0.maxFrameBytes })
    let chunkSize = 64 << 10
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
    defer { chunk.deallocate() }
    while true {
      let count = read(inputFD, chunk.baseAddress, chunkSize)
      if count < 0 {
        if errno == EINTR { continue }
        logger.error("stdin read failed", ["errno": .int(Int(errno))])
        break
      }
      if count == 0 { break }
      decoder.append(UnsafeRawBufferPointer(rebasing: chunk[0..<count]))
      decoder.maxFrameBytes = limits.withLock { $0.maxFrameBytes }
      while true {
        do throws(FramingError) {
          guard let body = try decoder.next() else { break }
          process(body: body)
        } catch {
          reportFraming(error)
        }
      }
      flushOutbox()
      let maxDiscarded = limits.withLock { $0.maxDiscardedBytes }
      if decoder.discardedBytes > maxDiscarded {
        closed(.unrecoverableFraming(
          "no Content-Length header found in the last \(decoder.discardedBytes) bytes of stdin; "
            + "the parent must send LSP-framed JSON-RPC (Content-Length: N\\r\\n\\r\\n + JSON)"))
        return
      }
    }
    if decoder.bufferedByteCount > 0 {
      logger.warn("stdin ended inside a frame", ["bufferedBytes": .int(decoder.bufferedByteCount)])
    }
    closed(.inputEnded)
  }

  private func flushOutbox() {
    let bytes = outbox.withLock { outbox -> [UInt8] in
      defer { outbox.removeAll(keepingCapacity: true) }
      return outbox
    }
    writer.write(frames: bytes)
  }

  /// Queues an answer made on the reader thread; it leaves when the current read has been processed.
  private func answerFromReader(_ body: [UInt8]) {
    outbox.withLock { FrameWriter.appendFrame(body: body, to: &$0) }
  }

  private func reportFraming(_ error: FramingError) {
    logger.warn("framing error", ["reason": .string(error.reason)])
    let reply: JSONRPCError
    switch error.kind {
    case .frameTooLarge(let declared):
      reply = .invalidRequest(
        error.reason,
        data: [
          "kind": "frame_too_large", "declaredBytes": .int(declared),
          "limitBytes": .int(limits.withLock { $0.maxFrameBytes }),
        ])
    case .badHeader, .unsupportedCharset:
      reply = JSONRPCError(
        code: JSONRPCError.Code.parseError, message: "Parse error: \(error.reason)",
        data: ["kind": "bad_framing", "reason": .string(error.reason)])
    }
    answerFromReader(MessageEncoding.error(id: nil, error: reply))
  }

  private func closed(_ reason: CloseReason) {
    let first = closedReason.withLock { current -> Bool in
      guard current == nil else { return false }
      current = reason
      return true
    }
    guard first else { return }
    if reason != .inputEnded {
      let pending = outgoing.withLock { state -> [CheckedContinuation<JSONValue, any Error>] in
        state.closed = true
        defer { state.pending.removeAll() }
        return Array(state.pending.values)
      }
      for continuation in pending { continuation.resume(throwing: OutgoingRequestError.connectionClosed) }
    }
    dispatcher.withLock { $0 }?.connectionClosed(reason)
  }

  /// Fails outstanding server-to-client requests; called when the server is about to exit.
  public func failPendingOutgoing() {
    let pending = outgoing.withLock { state -> [CheckedContinuation<JSONValue, any Error>] in
      state.closed = true
      defer { state.pending.removeAll() }
      return Array(state.pending.values)
    }
    for continuation in pending { continuation.resume(throwing: OutgoingRequestError.connectionClosed) }
  }

  func process(body: [UInt8]) {
    let message: JSONValue
    do throws(JSONParseError) {
      message = try JSONParser.parse(body)
    } catch {
      answerFromReader(MessageEncoding.error(id: nil, error: .parseError(error.description)))
      return
    }
    if case .array(let elements) = message {
      guard !elements.isEmpty else {
        answerFromReader(MessageEncoding.error(id: nil, error: .invalidRequest("empty batch")))
        return
      }
      let batch = BatchReply(writer: writer)
      for element in elements { handle(element, reply: .batch(batch)) }
      batch.seal()
    } else {
      handle(message, reply: .direct)
    }
  }

  private enum ReplyTarget {
    case direct
    case batch(BatchReply)
  }

  /// Sends an answer. `fromReader` answers are batched into the reader's outbox; task answers are written at once,
  /// after the frames of the notifications that go with them (`companions`).
  private func send(
    _ result: Result<JSONValue, JSONRPCError>, id: RequestID?, to target: ReplyTarget, fromReader: Bool = true,
    after companions: [UInt8] = []
  ) {
    let body: [UInt8]
    switch result {
    case .success(let value): body = MessageEncoding.response(id: id, result: value)
    case .failure(let error): body = MessageEncoding.error(id: id, error: error)
    }
    switch target {
    case .direct where fromReader:
      answerFromReader(body)
    case .direct:
      var frames = companions
      FrameWriter.appendFrame(body: body, to: &frames)
      writer.write(frames: frames)
    case .batch(let batch):
      writer.write(frames: companions)
      batch.add(body)
    }
  }

  private func handle(_ message: JSONValue, reply target: ReplyTarget) {
    guard case .object(let object) = message else {
      expectReply(target)
      send(.failure(.invalidRequest("a message must be a JSON object, got \(message.typeName)")), id: nil, to: target)
      return
    }
    var id: RequestID?
    if let idValue = object["id"] {
      guard let parsed = RequestID(idValue) else {
        expectReply(target)
        send(.failure(.invalidRequest("id must be a string or an integer, got \(idValue.typeName)")), id: nil, to: target)
        return
      }
      id = parsed
    }
    guard object["jsonrpc"] == "2.0" else {
      expectReply(target)
      send(.failure(.invalidRequest(#"jsonrpc must be exactly "2.0""#)), id: id, to: target)
      return
    }
    guard let methodValue = object["method"] else {
      if id != nil && (object["result"] != nil || object["error"] != nil) {
        receiveResponse(object)
      } else {
        expectReply(target)
        send(.failure(.invalidRequest("a request needs a method")), id: id, to: target)
      }
      return
    }
    guard case .string(let method) = methodValue else {
      expectReply(target)
      send(.failure(.invalidRequest("method must be a string")), id: id, to: target)
      return
    }
    // `"params": null` means no params: some clients (pygls) send it on requests that take none.
    var params = object["params"]
    if case .null? = params { params = nil }
    if let params, params.objectValue == nil && params.arrayValue == nil {
      expectReply(target)
      send(.failure(.invalidRequest("params must be an object or an array")), id: id, to: target)
      return
    }
    guard let id else {
      handleNotification(method, params: params)
      return
    }
    expectReply(target)
    dispatch(method, params: params, id: id, target: target)
  }

  private func expectReply(_ target: ReplyTarget) {
    if case .batch(let batch) = target { batch.expect() }
  }

  private func handleNotification(_ method: String, params: JSONValue?) {
    if method == "$/cancelRequest" {
      guard let idValue = params?["id"], let id = RequestID(idValue) else {
        logger.warn("$/cancelRequest without a valid id ignored")
        return
      }
      cancel(id)
      return
    }
    flushOutbox()  // `exit` may end the process: answers already made must leave first.
    dispatcher.withLock { $0 }?.notification(method: method, params: params)
  }

  private func cancel(_ id: RequestID) {
    let request = inFlight.withLock { $0[id] }
    guard let request else {
      logger.debug("$/cancelRequest for a request not in flight", ["id": id.json])
      return
    }
    request.cancel()
  }

  private func dispatch(_ method: String, params: JSONValue?, id: RequestID, target: ReplyTarget) {
    guard let dispatcher = dispatcher.withLock({ $0 }) else { return }
    switch dispatcher.route(method: method) {
    case .reject(let error):
      send(.failure(error), id: id, to: target)
    case .inline(let handler):
      send(handler(params), id: id, to: target)
    case .task(let handler):
      let maxInFlight = limits.withLock { $0.maxInFlight }
      let request = InFlightRequest()
      let admission = inFlight.withLock { table -> JSONRPCError? in
        if table[id] != nil {
          return .invalidRequest("id \(id) is already used by a request in flight")
        }
        if table.count >= maxInFlight {
          return JSONRPCError(
            code: JSONRPCError.Code.overloaded,
            message: "Overloaded: \(maxInFlight) requests are already in flight (limits.maxInFlight); retry shortly",
            data: ["kind": "overloaded", "retryable": true, "limit": .int(maxInFlight)])
        }
        table[id] = request
        return nil
      }
      if let admission {
        send(.failure(admission), id: id, to: target)
        return
      }
      let task = Task { [self] in
        var result = await handler(params, id)
        if Task.isCancelled, case .failure = result { result = .failure(.requestCancelled) }
        _ = inFlight.withLock { $0.removeValue(forKey: id) }
        send(result, id: id, to: target, fromReader: false, after: request.seal())
      }
      request.attach(task)
    }
  }
}

/// Errors of server-to-client requests that the parent never answered.
public enum OutgoingRequestError: Error, Sendable, Equatable, CustomStringConvertible {
  case timedOut(method: String, after: Duration)
  case connectionClosed

  public var description: String {
    switch self {
    case .timedOut(let method, let after): "the parent did not answer \(method) within \(after)"
    case .connectionClosed: "the connection to the parent is closed"
    }
  }
}

/// A request running in its own task; cancellation may arrive before the task is attached.
final class InFlightRequest: Sendable {
  private let state = Mutex<(task: Task<Void, Never>?, cancelled: Bool)>((nil, false))
  /// Frames of notifications to send with the answer; nil once the answer is on its way.
  private let companions = Mutex<[UInt8]?>([])

  /// Keeps a notification's frame for the answer; false when the answer has already left.
  func enclose(_ frame: [UInt8]) -> Bool {
    companions.withLock { companions in
      guard companions != nil else { return false }
      companions!.append(contentsOf: frame)
      return true
    }
  }

  /// The frames kept for the answer; later notifications go out on their own.
  func seal() -> [UInt8] {
    companions.withLock { companions in
      defer { companions = nil }
      return companions ?? []
    }
  }

  func attach(_ task: Task<Void, Never>) {
    let cancelled = state.withLock { state -> Bool in
      state.task = task
      return state.cancelled
    }
    if cancelled { task.cancel() }
  }

  func cancel() {
    let task = state.withLock { state -> Task<Void, Never>? in
      state.cancelled = true
      return state.task
    }
    task?.cancel()
  }
}

/// Collects the replies of one batch and writes them as one array once every request has answered.
final class BatchReply: Sendable {
  private let writer: FrameWriter
  private let state = Mutex<(replies: [[UInt8]], expected: Int, sealed: Bool)>(([], 0, false))

  init(writer: FrameWriter) { self.writer = writer }

  func expect() { state.withLock { $0.expected += 1 } }

  func add(_ body: [UInt8]) {
    let ready = state.withLock { state -> [[UInt8]]? in
      state.replies.append(body)
      return state.sealed && state.replies.count == state.expected ? state.replies : nil
    }
    if let ready { flush(ready) }
  }

  /// Called after every element was handed out; an all-notification batch writes nothing.
  func seal() {
    let ready = state.withLock { state -> [[UInt8]]? in
      state.sealed = true
      return state.expected > 0 && state.replies.count == state.expected ? state.replies : nil
    }
    if let ready { flush(ready) }
  }

  private func flush(_ replies: [[UInt8]]) {
    var body: [UInt8] = [UInt8(ascii: "[")]
    for (index, reply) in replies.enumerated() {
      if index > 0 { body.append(UInt8(ascii: ",")) }
      body.append(contentsOf: reply)
    }
    body.append(UInt8(ascii: "]"))
    writer.write(body: body)
  }
}
