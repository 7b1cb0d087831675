import Foundation
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import Synchronization
import Testing

@testable import SidecarServer

/// The monotonic time a test moves by hand.
private final class TestTime: Sendable {
  private let instant = Mutex(ContinuousClock.now)
  var now: ContinuousClock.Instant { instant.withLock { $0 } }
  func advance(by duration: Duration) { instant.withLock { $0 += duration } }
}

/// A `Server` over pipes, with its process effects injected: exits are recorded, not taken, and time is the test's.
private struct RunningServer {
  let parent = ParentPipes()
  let exits: AsyncStream<Int32>
  let time = TestTime()

  init() {
    let (exits, exited) = AsyncStream.makeStream(of: Int32.self)
    self.exits = exits
    let server = Server(
      connection: parent.connection, defaults: SidecarConfiguration(), logger: .disabled,
      environment: Server.Environment(exit: { exited.yield($0) }, now: { [time] in time.now }))
    server.start()
  }

  func request(_ id: Int, _ method: String, _ params: JSONValue? = nil) -> JSONValue? {
    var message: [String: JSONValue] = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method)]
    message["params"] = params
    parent.send(.object(message))
    return parent.answer(to: id)
  }

  func notify(_ method: String) { parent.send(["jsonrpc": "2.0", "method": .string(method)]) }

  var exitCode: Int32? { get async { await exits.first { _ in true } } }
}

@Suite("Server lifecycle", .timeLimit(.minutes(1)))
struct ServerTests {
  @Test("initialize, health on the injected clock, shutdown, then exit: code 0")
  func lifecycle() async throws {
    let server = RunningServer()
    #expect(server.request(1, "health")?["error"]?["code"] == .int(JSONRPCError.serverNotInitialized.code))
    let initialized = try #require(server.request(2, "initialize", ["clientInfo": ["name": "test"]])?["result"])
    #expect(initialized["serverInfo"]?["name"] == .string(Server.name))
    #expect(initialized["protocolVersion"] == .string(Server.protocolVersion))
    #expect(initialized["capabilities"]?["platforms"]?.objectValue?.count == 5)
    server.notify("initialized")
    server.time.advance(by: .milliseconds(1500))
    let health = try #require(server.request(3, "health")?["result"])
    #expect(health["status"] == "ok" && health["uptimeMs"] == 1500)
    #expect(server.request(4, "shutdown") == ["jsonrpc": "2.0", "id": 4, "result": .null])
    #expect(server.request(5, "health")?["result"]?["status"] == "shutting_down")
    server.notify("exit")
    #expect(await server.exitCode == 0)
  }

  @Test("exit without shutdown: code 1")
  func exitWithoutShutdown() async throws {
    let server = RunningServer()
    #expect(server.request(1, "initialize")?["result"] != nil)
    server.notify("exit")
    #expect(await server.exitCode == 1)
  }
}
