import Testing

@testable import SidecarRedis

@Suite("RESP parser and Redis URLs")
struct RESPParserTests {
  /// Every reply type of RESP2 and RESP3, fed one byte at a time and in one piece: the same replies come out.
  @Test("Replies parse the same whether the bytes arrive at once or one at a time")
  func dripFed() throws {
    let wire = Array(
      ("+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n_\r\n,3.5\r\n#t\r\n"
        + "(12345678901234567890\r\n!9\r\nSYNTAX no\r\n=8\r\ntxt:abcd\r\n%1\r\n+k\r\n:7\r\n~1\r\n+m\r\n"
        + ">2\r\n+message\r\n+x\r\n|1\r\n+ttl\r\n:3\r\n+after-attribute\r\n$0\r\n\r\n").utf8)
    let expected: [RESPValue] = [
      .simple("OK"), .error("ERR wrong"), .integer(-42), .bulk(Array("hello".utf8)), .null,
      .array([.bulk([0x61]), .integer(1)]), .null, .null, .double(3.5), .boolean(true),
      .bigNumber("12345678901234567890"), .error("SYNTAX no"), .verbatim(format: "txt", text: Array("abcd".utf8)),
      .map([.simple("k"), .integer(7)]), .set([.simple("m")]), .push([.simple("message"), .simple("x")]),
      .simple("after-attribute"), .bulk([]),
    ]
    var whole = RESPParser()
    whole.append(wire)
    var all: [RESPValue] = []
    while let value = try whole.next() { all.append(value) }
    #expect(all == expected)

    var drip = RESPParser()
    var dripped: [RESPValue] = []
    for byte in wire {
      drip.append([byte])
      while let value = try drip.next() { dripped.append(value) }
    }
    #expect(dripped == expected)
    #expect(drip.buffered == 0)
  }

  @Test("A bulk string split inside its CRLF waits for the rest")
  func splitTerminator() throws {
    var parser = RESPParser()
    parser.append(Array("$3\r\nabc\r".utf8))
    #expect(try parser.next() == nil)
    parser.append([0x0A])
    #expect(try parser.next() == .bulk(Array("abc".utf8)))
  }

  @Test("Malformed input is a protocol error, not a crash or an allocation")
  func malformed() {
    for wire in ["?\r\n", ":12x\r\n", "$3\r\nabcXY", "$999999999999\r\n", "#x\r\n", "*-5\r\n"] {
      var parser = RESPParser()
      parser.append(Array(wire.utf8))
      #expect(throws: RESPProtocolError.self, "\(wire)") { _ = try parser.next() }
    }
  }

  @Test("Commands are arrays of bulk strings")
  func encoding() {
    #expect(RESPCommand.encode(["SET", "k", "vé"]) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nvé\r\n".utf8))
  }

  @Test("redis:// URLs: user, password, host, port, database")
  func urls() throws {
    let full = try RedisConfiguration(url: "redis://alice:p%40ss@cache.internal:6380/3")
    #expect(full.user == "alice" && full.password == "p@ss" && full.host == "cache.internal")
    #expect(full.port == 6380 && full.database == 3)
    let passwordOnly = try RedisConfiguration(url: "redis://:secret@127.0.0.1")
    #expect(passwordOnly.user == nil && passwordOnly.password == "secret" && passwordOnly.port == 6379)
    let v6 = try RedisConfiguration(url: "redis://[::1]:7000/")
    #expect(v6.host == "::1" && v6.port == 7000 && v6.database == 0)
    #expect(full.endpoint == "cache.internal:6380/3")
    for bad in [
      "http://h:1", "redis://", "redis://h:port", "redis://h:70000", "redis://h/x", "redis://h w:1", "redis://[::1",
    ] {
      #expect(throws: RedisURLError.self, "\(bad)") { _ = try RedisConfiguration(url: bad) }
    }
    do {
      _ = try RedisConfiguration(url: "redis://u:topsecret@h:notaport")
    } catch {
      #expect(!error.description.contains("topsecret"))
    }
  }
}
