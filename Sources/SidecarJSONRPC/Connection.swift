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

  private typealias StateMachine = ConnectionStateMachine<CheckedContinuation<JSONValue, any Error>>

  private let inputFD: Int32
  private let writer: FrameWriter
  private let logger: Logger
  /// The connection's one lock: what the reader, the request tasks and the writers share. What only the reader
  /// thread touches lives in its ``Reader``, without a lock.
  private let state: Mutex<StateMachine>

  public init(inputFD: Int32, outputFD: Int32, limits: Limits = Limits(), logger: Logger) {
    self.inputFD = inputFD
    self.logger = logger
    self.state = Mutex(StateMachine(limits: limits))
    self.writer = FrameWriter(fd: outputFD)
    writer.onClose { [weak self] in self?.close(.outputClosed) }
  }

  /// Changes limits at run time (from `initialize.config`).
  public func updateLimits(_ change: (inout Limits) -> Void) { state.withLock { change(&$0.limits) } }

  /// Starts the reader thread. Messages are handed to `dispatcher` until the input ends.
  public func start(dispatcher: any Dispatcher) {
    let maxFrameBytes = state.withLock { state in
      state.start(dispatcher)
      return state.limits.maxFrameBytes
    }
    startThread(stackSize: 4 << 20) { [self] in
      var reader = Reader(connection: self, dispatcher: dispatcher, maxFrameBytes: maxFrameBytes)
      reader.run()
    }
  }

  public var inFlightCount: Int { state.withLock { $0.inFlightCount } }

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
    if let answer, state.withLock({ $0.enclose(frame, withAnswerTo: answer) }) { return }
    writer.write(frames: frame)
  }

  /// Sends a server-to-client request and waits for its answer.
  ///
  /// Ids are strings (`"s1"`, `"s2"`, …) so they never collide with the parent's integer ids. On timeout or task
  /// cancellation the parent is sent `$/cancelRequest`. Throws ``JSONRPCError`` when the parent answers with an error,
  /// ``OutgoingRequestError`` on timeout or closed connection, `CancellationError` when cancelled.
  public func sendRequest(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
    let id = state.withLock { $0.nextOutgoingID() }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
        guard state.withLock({ $0.register(continuation, for: id) }) else {
          continuation.resume(throwing: OutgoingRequestError.connectionClosed)
          return
        }
        if Task.isCancelled {
          failOutgoing(id, CancellationError(), notifyPeer: false)
          return
        }
        writer.write(body: MessageEncoding.request(id: id, method: method, params: params))
        let nanos = max(
          0, Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000))
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [weak self] in
          self?.failOutgoing(id, OutgoingRequestError.timedOut(method: method, after: timeout), notifyPeer: true)
        }
      }
    } onCancel: {
      failOutgoing(id, CancellationError(), notifyPeer: true)
    }
  }

  private func failOutgoing(_ id: RequestID, _ error: any Error, notifyPeer: Bool) {
    guard let continuation = state.withLock({ $0.finishOutgoing(id) }) else { return }
    continuation.resume(throwing: error)
    if notifyPeer { notify("$/cancelRequest", params: ["id": id.json]) }
  }

  private func receiveResponse(_ object: [String: JSONValue]) {
    guard let idValue = object["id"], let id = RequestID(idValue) else {
      logger.warn("response without a usable id dropped")
      return
    }
    guard let continuation = state.withLock({ $0.finishOutgoing(id) }) else {
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

  // MARK: Closing

  private func close(_ reason: CloseReason) {
    guard let action = state.withLock({ $0.close(reason) }) else { return }
    perform(action)
  }

  /// Fails outstanding server-to-client requests; called when the server is about to exit.
  public func failPendingOutgoing() {
    perform(state.withLock { $0.stopOutgoing() })
  }

  /// The one place a close takes effect, whatever caused it.
  private func perform(_ action: StateMachine.CloseAction) {
    for continuation in action.failing { continuation.resume(throwing: OutgoingRequestError.connectionClosed) }
    if let (reason, dispatcher) = action.report { dispatcher.connectionClosed(reason) }
  }

  // MARK: Answering

  private enum ReplyTarget {
    case direct
    case batch(BatchReply)
  }

  private static func encode(_ result: Result<JSONValue, JSONRPCError>, id: RequestID?) -> [UInt8] {
    switch result {
    case .success(let value): MessageEncoding.response(id: id, result: value)
    case .failure(let error): MessageEncoding.error(id: id, error: error)
    }
  }

  /// Writes a task's answer at once, after the frames of the notifications that go with it.
  private func answer(_ result: Result<JSONValue, JSONRPCError>, id: RequestID, to target: ReplyTarget) {
    var frames = state.withLock { $0.answered(id) }
    let body = Self.encode(result, id: id)
    switch target {
    case .direct:
      FrameWriter.appendFrame(body: body, to: &frames)
      writer.write(frames: frames)
    case .batch(let batch):
      writer.write(frames: frames)
      batch.add(body)
    }
  }
}

// MARK: Reading

extension Connection {
  /// What only the reader thread touches, so it needs no lock: the decoder, the dispatcher, and the answers made
  /// during one read, which leave with one `write(2)` when the read has been processed instead of one per frame.
  private struct Reader {
    let connection: Connection
    let dispatcher: any Dispatcher
    var decoder: FrameDecoder
    var outbox: [UInt8] = []

    init(connection: Connection, dispatcher: any Dispatcher, maxFrameBytes: Int) {
      self.connection = connection
      self.dispatcher = dispatcher
      self.decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
    }

    private var logger: Logger { connection.logger }

    mutating func run() {
      let chunkSize = 64 << 10
      let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
      defer { chunk.deallocate() }
      while true {
        let count = read(connection.inputFD, chunk.baseAddress, chunkSize)
        if count < 0 {
          if errno == EINTR { continue }
          logger.error("stdin read failed", ["errno": .int(Int(errno))])
          break
        }
        if count == 0 { break }
        decoder.append(UnsafeRawBufferPointer(rebasing: chunk[0..<count]))
        while true {
          do throws(FramingError) {
            guard let body = try decoder.next() else { break }
            process(body: body)
          } catch {
            reportFraming(error)
          }
        }
        flushOutbox()
        let discarded = decoder.discardedBytes
        switch connection.state.withLock({ $0.readProcessed(discardedBytes: discarded) }) {
        case .readMore(let maxFrameBytes):
          decoder.maxFrameBytes = maxFrameBytes
        case .stop(let close):
          if let close { connection.perform(close) }
          return
        }
      }
      if decoder.bufferedByteCount > 0 {
        logger.warn("stdin ended inside a frame", ["bufferedBytes": .int(decoder.bufferedByteCount)])
      }
      connection.close(.inputEnded)
    }

    private mutating func flushOutbox() {
      guard !outbox.isEmpty else { return }
      connection.writer.write(frames: outbox)
      outbox.removeAll(keepingCapacity: true)
    }

    private mutating func reportFraming(_ error: FramingError) {
      logger.warn("framing error", ["reason": .string(error.reason)])
      let refusal: JSONRPCError
      switch error.kind {
      case .frameTooLarge(let declared):
        refusal = .invalidRequest(
          error.reason,
          data: [
            "kind": "frame_too_large", "declaredBytes": .int(declared),
            "limitBytes": .int(connection.state.withLock { $0.limits.maxFrameBytes }),
          ])
      case .badHeader, .unsupportedCharset:
        refusal = JSONRPCError(
          code: JSONRPCError.Code.parseError, message: "Parse error: \(error.reason)",
          data: ["kind": "bad_framing", "reason": .string(error.reason)])
      }
      reply(.failure(refusal), id: nil, to: .direct)
    }

    mutating func process(body: [UInt8]) {
      let message: JSONValue
      do throws(JSONParseError) {
        message = try JSONParser.parse(body)
      } catch {
        reply(.failure(.parseError(error.description)), id: nil, to: .direct)
        return
      }
      if case .array(let elements) = message {
        guard !elements.isEmpty else {
          reply(.failure(.invalidRequest("empty batch")), id: nil, to: .direct)
          return
        }
        let batch = BatchReply(writer: connection.writer)
        for element in elements { handle(element, reply: .batch(batch)) }
        batch.seal()
      } else {
        handle(message, reply: .direct)
      }
    }

    /// Answers made here wait in the outbox for the end of the read; a batch collects its own.
    private mutating func reply(_ result: Result<JSONValue, JSONRPCError>, id: RequestID?, to target: ReplyTarget) {
      switch target {
      case .direct: FrameWriter.appendFrame(body: Connection.encode(result, id: id), to: &outbox)
      case .batch(let batch): batch.add(Connection.encode(result, id: id))
      }
    }

    private mutating func handle(_ message: JSONValue, reply target: ReplyTarget) {
      guard case .object(let object) = message else {
        expectReply(target)
        let reason = "a message must be a JSON object, got \(message.typeName)"
        reply(.failure(.invalidRequest(reason)), id: nil, to: target)
        return
      }
      var id: RequestID?
      if let idValue = object["id"] {
        guard let parsed = RequestID(idValue) else {
          expectReply(target)
          let reason = "id must be a string or an integer, got \(idValue.typeName)"
          reply(.failure(.invalidRequest(reason)), id: nil, to: target)
          return
        }
        id = parsed
      }
      guard object["jsonrpc"] == "2.0" else {
        expectReply(target)
        reply(.failure(.invalidRequest(#"jsonrpc must be exactly "2.0""#)), id: id, to: target)
        return
      }
      guard let methodValue = object["method"] else {
        if id != nil && (object["result"] != nil || object["error"] != nil) {
          connection.receiveResponse(object)
        } else {
          expectReply(target)
          reply(.failure(.invalidRequest("a request needs a method")), id: id, to: target)
        }
        return
      }
      guard case .string(let method) = methodValue else {
        expectReply(target)
        reply(.failure(.invalidRequest("method must be a string")), id: id, to: target)
        return
      }
      // `"params": null` means no params: some clients (pygls) send it on requests that take none.
      var params = object["params"]
      if case .null? = params { params = nil }
      if let params, params.objectValue == nil && params.arrayValue == nil {
        expectReply(target)
        reply(.failure(.invalidRequest("params must be an object or an array")), id: id, to: target)
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

    private mutating func handleNotification(_ method: String, params: JSONValue?) {
      if method == "$/cancelRequest" {
        guard let idValue = params?["id"], let id = RequestID(idValue) else {
          logger.warn("$/cancelRequest without a valid id ignored")
          return
        }
        cancel(id)
        return
      }
      flushOutbox()  // `exit` may end the process: answers already made must leave first.
      dispatcher.notification(method: method, params: params)
    }

    private func cancel(_ id: RequestID) {
      switch connection.state.withLock({ $0.cancel(id) }) {
      case .cancel(let task): task.cancel()
      case .cancelOnAttach: break
      case .notInFlight: logger.debug("$/cancelRequest for a request not in flight", ["id": id.json])
      }
    }

    private mutating func dispatch(_ method: String, params: JSONValue?, id: RequestID, target: ReplyTarget) {
      switch dispatcher.route(method: method) {
      case .reject(let error):
        reply(.failure(error), id: id, to: target)
      case .inline(let handler):
        reply(handler(params), id: id, to: target)
      case .task(let handler):
        switch connection.state.withLock({ $0.admit(id) }) {
        case .duplicateID:
          reply(.failure(.invalidRequest("id \(id) is already used by a request in flight")), id: id, to: target)
        case .overloaded(let maxInFlight):
          let overloaded = JSONRPCError(
            code: JSONRPCError.Code.overloaded,
            message: "Overloaded: \(maxInFlight) requests are already in flight (limits.maxInFlight); retry shortly",
            data: ["kind": "overloaded", "retryable": true, "limit": .int(maxInFlight)])
          reply(.failure(overloaded), id: id, to: target)
        case .run:
          let task = Task { [connection] in
            var result = await handler(params, id)
            if Task.isCancelled, case .failure = result { result = .failure(.requestCancelled) }
            connection.answer(result, id: id, to: target)
          }
          if connection.state.withLock({ $0.attach(task, to: id) }) { task.cancel() }
        }
      }
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
