import Foundation
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import Synchronization
import Testing

/// Routes used by the tests: `echo` inline, `sleep` in a task until cancelled, `ask` makes a server-to-client request.
private final class TestDispatcher: Dispatcher {
  let connection: Mutex<Connection?> = Mutex(nil)
  let notifications = Mutex<[String]>([])
  let closes = Mutex<[CloseReason]>([])

  func route(method: String) -> Route {
    switch method {
    case "echo": return .inline { params in .success(params ?? .null) }
    case "hasParams": return .inline { params in .success(.bool(params != nil)) }
    case "fail": return .inline { _ in .failure(.invalidParams("always", field: "x")) }
    case "sleep":
      return .task { _, _ in
        do {
          try await Task.sleep(for: .seconds(30))
          return .success("woke")
        } catch {
          return .failure(.requestCancelled)
        }
      }
    case "ask":
      return .task { [self] params, _ in
        do {
          let timeout = Duration.milliseconds(params?["timeoutMs"]?.intValue ?? 5000)
          let answer = try await connection.withLock { $0 }!.sendRequest(
            "credentials/resolve", params: ["q": 1], timeout: timeout)
          return .success(["answer": answer])
        } catch let error as JSONRPCError {
          return .success(["parentError": .int(error.code)])
        } catch {
          return .success(["failed": .string("\(error)")])
        }
      }
    case "report":  // a notification about the call, then the answer 300 ms later
      return .task { [self] _, id in
        connection.withLock { $0 }!.notify("note", serializedParams: Array(#"{"n":1}"#.utf8), withAnswerTo: id)
        try? await Task.sleep(for: .milliseconds(300))
        return .success("reported")
      }
    default: return .reject(.methodNotFound(method))
    }
  }

  func notification(method: String, params: JSONValue?) { notifications.withLock { $0.append(method) } }
  func connectionClosed(_ reason: CloseReason) { closes.withLock { $0.append(reason) } }
}

/// The parent's side of two pipes: writes raw bytes, reads whole frames.
private final class Peer: Sendable {
  let toServer: Int32
  let fromServer: Int32
  let connection: Connection
  let dispatcher = TestDispatcher()
  private let frames = Mutex<(decoder: FrameDecoder, queue: [JSONValue])>((FrameDecoder(), []))

  init(maxInFlight: Int = 4096) {
    var input: [Int32] = [0, 0]
    var output: [Int32] = [0, 0]
    _ = pipe(&input)
    _ = pipe(&output)
    toServer = input[1]
    fromServer = output[0]
    var limits = Connection.Limits()
    limits.maxInFlight = maxInFlight
    connection = Connection(inputFD: input[0], outputFD: output[1], limits: limits, logger: .disabled)
    dispatcher.connection.withLock { $0 = connection }
    connection.start(dispatcher: dispatcher)
  }

  func send(raw bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count { offset += max(0, write(toServer, raw.baseAddress! + offset, raw.count - offset)) }
    }
  }

  func send(_ json: String) { send(raw: Array("Content-Length: \(json.utf8.count)\r\n\r\n\(json)".utf8)) }

  /// Reads until `count` messages arrived or `timeout` passed.
  /// Polls without blocking a cooperative-pool thread, so the connection's tasks can run meanwhile. The timeout is
  /// generous: when other suites occupy the pool, a poll can resume seconds late although the answers are there.
  func receive(_ count: Int, timeout: Duration = .seconds(30)) async -> [JSONValue] {
    let deadline = ContinuousClock.now + timeout
    var buffer = [UInt8](repeating: 0, count: 65536)
    while frames.withLock({ $0.queue.count }) < count && ContinuousClock.now < deadline {
      var poller = pollfd(fd: fromServer, events: Int16(POLLIN), revents: 0)
      guard poll(&poller, 1, 0) > 0 else {
        try? await Task.sleep(for: .milliseconds(2))
        continue
      }
      let n = read(fromServer, &buffer, buffer.count)
      guard n > 0 else { break }
      frames.withLock { state in
        state.decoder.append(Array(buffer[0..<n]))
        while let body = try? state.decoder.next() { state.queue.append(try! JSONParser.parse(body)) }
      }
    }
    return frames.withLock { state in
      let taken = Array(state.queue.prefix(count))
      state.queue.removeFirst(taken.count)
      return taken
    }
  }

  func close() { Foundation.close(toServer) }
}

@Suite("JSON-RPC connection over pipes", .serialized)
struct ConnectionTests {
  @Test("Ids are echoed with their type; notifications are never answered")
  func idsAndNotifications() async {
    let peer = Peer()
    peer.send(#"{"jsonrpc":"2.0","id":7,"method":"echo","params":[1]}"#)
    peer.send(#"{"jsonrpc":"2.0","method":"echo","params":[2]}"#)
    peer.send(#"{"jsonrpc":"2.0","id":"7","method":"echo","params":{"x":3}}"#)
    let replies = await peer.receive(2)
    #expect(replies.count == 2)
    #expect(await peer.receive(1, timeout: .milliseconds(300)).isEmpty)
    #expect(replies[0]["id"] == .int(7) && replies[0]["result"] == [1])
    #expect(replies[1]["id"] == .string("7") && replies[1]["result"] == ["x": 3])
    #expect(peer.dispatcher.notifications.withLock { $0 } == ["echo"])
  }

  @Test("A notification about a call in flight leaves with its answer, just before it; after the answer, at once")
  func notificationWithAnswer() async {
    let peer = Peer()
    peer.send(#"{"jsonrpc":"2.0","id":9,"method":"report"}"#)
    #expect(await peer.receive(1, timeout: .milliseconds(150)).isEmpty, "the note went out before the answer")
    let messages = await peer.receive(2)
    #expect(messages.count == 2)
    #expect(messages.first?["method"] == "note" && messages.first?["params"] == ["n": 1])
    #expect(messages.last?["id"] == 9 && messages.last?["result"] == "reported")
    peer.connection.notify("late", serializedParams: Array("{}".utf8), withAnswerTo: .int(9))
    #expect(await peer.receive(1).first?["method"] == "late")
  }

  @Test("Invalid messages get the exact JSON-RPC errors, with id null where it cannot be known")
  func invalidMessages() async {
    let peer = Peer()
    let cases: [(String, Int, JSONValue)] = [
      ("{not json", -32700, .null),
      (#"{"jsonrpc":"2.0","id":1}"#, -32600, 1),
      (#"{"jsonrpc":"1.0","id":2,"method":"echo"}"#, -32600, 2),
      (#"{"id":3,"method":"echo"}"#, -32600, 3),
      (#"{"jsonrpc":"2.0","id":4,"method":5}"#, -32600, 4),
      (#"{"jsonrpc":"2.0","id":5,"method":"echo","params":"x"}"#, -32600, 5),
      (#"{"jsonrpc":"2.0","id":1.5,"method":"echo"}"#, -32600, .null),
      (#"{"jsonrpc":"2.0","id":{},"method":"echo"}"#, -32600, .null),
      (#"{"jsonrpc":"2.0","id":6,"method":"nope"}"#, -32601, 6),
      (#"{"jsonrpc":"2.0","id":7,"method":"fail"}"#, -32602, 7),
      ("42", -32600, .null),
    ]
    for (text, code, id) in cases {
      peer.send(text)
      let reply = await peer.receive(1)
      #expect(reply.first?["error"]?["code"] == .int(code), "\(text)")
      #expect(reply.first?["id"] == id, "\(text)")
      #expect(reply.first?["jsonrpc"] == "2.0")
    }
  }

  @Test(#""params": null is the same as no params (pygls sends it on shutdown)"#)
  func nullParams() async {
    let peer = Peer()
    for (params, expected) in [(#","params":null"#, false), ("", false), (#","params":{}"#, true)] {
      peer.send(#"{"jsonrpc":"2.0","id":1,"method":"hasParams"\#(params)}"#)
      let reply = await peer.receive(1)
      #expect(reply.first?["result"] == .bool(expected), "\(params)")
    }
  }

  @Test("Batches: empty → one error; [1,2,3] → three errors; all notifications → no reply; mixed → one array")
  func batches() async {
    let peer = Peer()
    peer.send("[]")
    #expect(await peer.receive(1).first?["error"]?["code"] == -32600)
    peer.send("[1,2,3]")
    let three = await peer.receive(1).first?.arrayValue ?? []
    #expect(three.count == 3 && three.allSatisfy { $0["error"]?["code"] == -32600 && $0["id"] == .null })
    peer.send(#"[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"echo"}]"#)
    peer.send(
      #"[{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]},{"jsonrpc":"2.0","method":"echo"},"#
        + #"{"jsonrpc":"2.0","id":2,"method":"nope"}]"#)
    let mixed = await peer.receive(1).first?.arrayValue ?? []
    #expect(mixed.count == 2)
    #expect(Set(mixed.compactMap { $0["id"]?.intValue }) == [1, 2])
    #expect(await peer.receive(1, timeout: .milliseconds(200)).isEmpty)
  }

  @Test("1,000 requests pipelined in one write are each answered exactly once")
  func pipelined() async {
    let peer = Peer()
    var bytes: [UInt8] = []
    for id in 0..<1000 {
      let body = #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(id % 10 == 0 ? "sleep-not" : "echo")","params":[\#(id)]}"#
      bytes += Array("Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }
    peer.send(raw: bytes)
    let replies = await peer.receive(1000)
    #expect(replies.count == 1000)
    #expect(Set(replies.compactMap { $0["id"]?.intValue }).count == 1000)
    #expect(await peer.receive(1, timeout: .milliseconds(100)).isEmpty)
  }

  @Test("$/cancelRequest answers a running request with -32800 and a slow request never delays a fast one")
  func cancellation() async {
    let peer = Peer()
    peer.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep"}"#)
    peer.send(#"{"jsonrpc":"2.0","id":2,"method":"echo","params":["fast"]}"#)
    #expect(await peer.receive(1).first?["id"] == 2)
    let started = ContinuousClock.now
    peer.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
    let reply = await peer.receive(1).first
    #expect(reply?["id"] == 1 && reply?["error"]?["code"] == -32800)
    #expect(ContinuousClock.now - started < .seconds(1))
  }

  @Test("Past maxInFlight a request is refused with a clear overloaded error")
  func overload() async {
    let peer = Peer(maxInFlight: 2)
    for id in 1...3 { peer.send(#"{"jsonrpc":"2.0","id":\#(id),"method":"sleep"}"#) }
    let refused = await peer.receive(1).first
    #expect(refused?["id"] == 3)
    #expect(refused?["error"]?["code"] == -31012)
    #expect(refused?["error"]?["data"]?["kind"] == "overloaded")
  }

  @Test("Server-to-client requests use their own ids and match answers, errors and timeouts")
  func serverToClient() async {
    let peer = Peer()
    peer.send(#"{"jsonrpc":"2.0","id":1,"method":"ask"}"#)
    let question = await peer.receive(1).first
    #expect(question?["method"] == "credentials/resolve")
    let sid = question?["id"]?.stringValue ?? "missing"
    peer.send(#"{"jsonrpc":"2.0","id":"\#(sid)","result":{"token":"t"}}"#)
    #expect(await peer.receive(1).first?["result"]?["answer"] == ["token": "t"])

    peer.send(#"{"jsonrpc":"2.0","id":2,"method":"ask"}"#)
    let second = await peer.receive(1).first?["id"]?.stringValue ?? "missing"
    #expect(second != sid)
    peer.send(#"{"jsonrpc":"2.0","id":"\#(second)","error":{"code":-1,"message":"no such credential"}}"#)
    #expect(await peer.receive(1).first?["result"]?["parentError"] == -1)

    peer.send(#"{"jsonrpc":"2.0","id":3,"method":"ask","params":{"timeoutMs":50}}"#)
    let replies = await peer.receive(3)
    let cancel = replies.first { $0["method"] == "$/cancelRequest" }
    #expect(cancel != nil)
    #expect(replies.contains { $0["id"] == 3 && $0["result"]?["failed"] != nil })
  }

  @Test("EOF on input is reported once as inputEnded")
  func endOfInput() async {
    let peer = Peer()
    peer.close()
    let deadline = ContinuousClock.now + .seconds(2)
    while peer.dispatcher.closes.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(2))
    }
    #expect(peer.dispatcher.closes.withLock { $0 } == [.inputEnded])
  }

  @Test("Framing errors are answered with id null and the next frame is still served")
  func framingRecovery() async {
    let peer = Peer()
    peer.send(raw: Array("Content-Type: x\r\n\r\n".utf8))
    peer.send(#"{"jsonrpc":"2.0","id":9,"method":"echo","params":[9]}"#)
    let replies = await peer.receive(2)
    #expect(replies.first?["error"]?["code"] == -32700)
    #expect(replies.last?["id"] == 9)
  }
}
