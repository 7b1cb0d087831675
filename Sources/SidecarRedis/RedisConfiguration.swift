/// Where and how to reach Redis (or Valkey), from `redis://[user:password@]host:port[/db]`.
public struct RedisConfiguration: Sendable, Equatable {
  public var host: String
  public var port: Int
  public var user: String?
  public var password: String?
  public var database: Int
  /// Speak RESP3 (`HELLO 3`) instead of RESP2.
  public var resp3 = false
  public var connectTimeout: Duration = .seconds(2)
  /// A command without its reply after this long breaks the connection (the replies behind it could not be matched).
  public var commandTimeout: Duration = .seconds(2)
  /// Reconnect attempts wait this long after a failure, doubling up to ``maxBackoff``.
  public var minBackoff: Duration = .milliseconds(100)
  public var maxBackoff: Duration = .seconds(2)

  public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
    self.host = host
    self.port = port
    self.user = user
    self.password = password
    self.database = database
  }

  /// Parses `redis://[user:password@]host:port[/db]` (also `redis://:password@host`, an IPv6 host in brackets,
  /// percent-encoded user and password). The reason says what is wrong without repeating the password.
  public init(url text: String) throws(RedisURLError) {
    guard text.hasPrefix("redis://") else { throw RedisURLError("must start with redis:// (TLS is not supported)") }
    var rest = Substring(text.dropFirst("redis://".count))
    var database = 0
    if let slash = rest.firstIndex(of: "/") {
      let path = rest[rest.index(after: slash)...]
      rest = rest[..<slash]
      if !path.isEmpty {
        guard let number = Int(path), (0...65535).contains(number) else {
          throw RedisURLError("the database after / must be a number, got \(path)")
        }
        database = number
      }
    }
    var user: String?
    var password: String?
    if let at = rest.lastIndex(of: "@") {
      let credentials = rest[..<at]
      rest = rest[rest.index(after: at)...]
      if let colon = credentials.firstIndex(of: ":") {
        user = try Self.decode(credentials[..<colon])
        password = try Self.decode(credentials[credentials.index(after: colon)...])
      } else {
        user = try Self.decode(credentials)
      }
      if user?.isEmpty == true { user = nil }
    }
    var host = rest
    var port = 6379
    if rest.hasPrefix("[") {
      guard let close = rest.firstIndex(of: "]") else { throw RedisURLError("an IPv6 host needs its closing ]") }
      host = rest[rest.index(after: rest.startIndex)..<close]
      let after = rest[rest.index(after: close)...]
      if !after.isEmpty {
        guard after.hasPrefix(":"), let number = Int(after.dropFirst()) else {
          throw RedisURLError("a bad port after the host")
        }
        port = number
      }
    } else if let colon = rest.lastIndex(of: ":") {
      host = rest[..<colon]
      guard let number = Int(rest[rest.index(after: colon)...]) else {
        throw RedisURLError("the port must be a number")
      }
      port = number
    }
    guard !host.isEmpty else { throw RedisURLError("the host is missing") }
    guard (1...65535).contains(port) else { throw RedisURLError("the port must be between 1 and 65535") }
    guard host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else {
      throw RedisURLError("the host may hold letters, digits, - . _ and : only")
    }
    self.init(host: String(host), port: port, user: user, password: password, database: database)
  }

  private static func decode(_ text: Substring) throws(RedisURLError) -> String {
    var bytes: [UInt8] = []
    var index = text.utf8.startIndex
    let utf8 = text.utf8
    while index < utf8.endIndex {
      let byte = utf8[index]
      if byte == UInt8(ascii: "%") {
        let first = utf8.index(after: index)
        guard first < utf8.endIndex, utf8.index(after: first) < utf8.endIndex,
          let value = UInt8(String(decoding: [utf8[first], utf8[utf8.index(after: first)]], as: UTF8.self), radix: 16)
        else { throw RedisURLError("a bad %-escape in the user or password") }
        bytes.append(value)
        index = utf8.index(index, offsetBy: 3)
      } else {
        bytes.append(byte)
        index = utf8.index(after: index)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// `host:port/db`, for logs (never the user or password).
  public var endpoint: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)" }
}

public struct RedisURLError: Error, Equatable, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}
