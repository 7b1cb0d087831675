import Foundation
import Synchronization
import Testing

@testable import SidecarRedis

@Suite("Redis client against a real redis-server", .serialized)
struct RedisClientTests {
  @Test("Commands, pipelining, and many concurrent callers on one connection")
  func commands() async throws {
    let server = try RedisServer()
    defer { server.stop() }
    let client = RedisClient(try RedisConfiguration(url: server.url))
    defer { client.close() }
    #expect(try await client.send("PING") == .simple("PONG"))
    #expect(try await client.send("SET", "k", "v", "NX", "PX", "10000") == .simple("OK"))
    #expect(try await client.send("SET", "k", "w", "NX", "PX", "10000") == .null)
    let replies = try await client.pipeline([["INCR", "n"], ["INCR", "n"], ["GET", "k"], ["BOGUS"]])
    #expect(replies[0] == .integer(1) && replies[1] == .integer(2) && replies[2].string == "v")
    guard case .error = replies[3] else {
      Issue.record("an unknown command answers an error reply in its place")
      return
    }
    await #expect(throws: RedisError.self) { _ = try await client.send("BOGUS") }
    let total = try await withThrowingTaskGroup(of: Int64.self) { group in
      for _ in 0..<200 { group.addTask { try await client.send("INCR", "counter").integer ?? 0 } }
      return try await group.reduce(0) { max($0, $1) }
    }
    #expect(total == 200)
  }

  @Test("AUTH with a user and password, and SELECT of the database in the URL")
  func authAndDatabase() async throws {
    let server = try RedisServer(["--user", "alice", "on", ">s3cret", "~*", "&*", "+@all", "--user", "default", "off"])
    defer { server.stop() }
    let client = RedisClient(try RedisConfiguration(url: "redis://alice:s3cret@127.0.0.1:\(server.port)/5"))
    defer { client.close() }
    _ = try await client.send("SET", "in-five", "yes")
    let other = RedisClient(try RedisConfiguration(url: "redis://alice:s3cret@127.0.0.1:\(server.port)/0"))
    defer { other.close() }
    #expect(try await other.send("GET", "in-five") == .null)
    #expect(try await other.send("SELECT", "5") == .simple("OK"))
    #expect(try await other.send("GET", "in-five").string == "yes")

    let statuses = Mutex<[Bool]>([])
    let wrong = RedisClient(try RedisConfiguration(url: "redis://alice:nope@127.0.0.1:\(server.port)")) { up, _ in
      statuses.withLock { $0.append(up) }
    }
    defer { wrong.close() }
    await #expect(throws: RedisError.self) { _ = try await wrong.send("PING") }
    #expect(statuses.withLock { $0 } == [false])
  }

  @Test("RESP3 with HELLO 3: maps and doubles come back typed")
  func resp3() async throws {
    let server = try RedisServer()
    defer { server.stop() }
    var configuration = try RedisConfiguration(url: server.url)
    configuration.resp3 = true
    let client = RedisClient(configuration)
    defer { client.close() }
    _ = try await client.send("HSET", "h", "f", "1")
    #expect(try await client.send("HGETALL", "h") == .map([.bulk(Array("f".utf8)), .bulk(Array("1".utf8))]))
    #expect(try await client.send("ZADD", "z", "1.5", "m") == .integer(1))
    #expect(try await client.send("ZSCORE", "z", "m") == .double(1.5))
  }

  @Test("EVALSHA loads the script once and again after SCRIPT FLUSH (NOSCRIPT)")
  func scripts() async throws {
    let server = try RedisServer()
    defer { server.stop() }
    let client = RedisClient(try RedisConfiguration(url: server.url))
    defer { client.close() }
    let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    #expect(try await client.evaluate(script, keys: ["s"], arguments: ["2"]) == .integer(2))
    _ = try await client.send("SCRIPT", "FLUSH")
    #expect(try await client.evaluate(script, keys: ["s"], arguments: ["3"]) == .integer(5))
  }

  @Test("A stopped server fails calls at once, is reported once, and the client reconnects by itself")
  func reconnect() async throws {
    let server = try RedisServer()
    defer { server.stop() }
    let statuses = Mutex<[Bool]>([])
    var configuration = try RedisConfiguration(url: server.url)
    configuration.maxBackoff = .milliseconds(200)
    let client = RedisClient(configuration) { up, _ in statuses.withLock { $0.append(up) } }
    defer { client.close() }
    #expect(try await client.send("PING") == .simple("PONG"))
    server.stop()
    var failures = 0
    for _ in 0..<20 {
      do { _ = try await client.send("PING") } catch { failures += 1 }
      try await Task.sleep(for: .milliseconds(20))
    }
    #expect(failures == 20)
    try server.start()
    var answered = false
    for _ in 0..<100 where !answered {
      answered = (try? await client.send("PING")) == .simple("PONG")
      if !answered { try await Task.sleep(for: .milliseconds(20)) }
    }
    #expect(answered)
    #expect(statuses.withLock { $0 } == [true, false, true])
  }
}
