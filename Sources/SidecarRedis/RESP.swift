/// One reply of the Redis serialization protocol, RESP2 or RESP3.
public enum RESPValue: Sendable, Equatable {
  case simple(String)
  case error(String)
  case integer(Int64)
  case bulk([UInt8])
  /// RESP2's null bulk string and null array, RESP3's `_`.
  case null
  case array([RESPValue])
  case double(Double)
  case boolean(Bool)
  /// Keys and values alternating, in the server's order.
  case map([RESPValue])
  case set([RESPValue])
  case bigNumber(String)
  case verbatim(format: String, text: [UInt8])
  /// Out-of-band data (RESP3 `>`): never the answer to a command.
  case push([RESPValue])

  /// The text of a string-like reply.
  public var string: String? {
    switch self {
    case .simple(let text), .bigNumber(let text): text
    case .bulk(let bytes), .verbatim(_, let bytes): String(decoding: bytes, as: UTF8.self)
    case .integer(let number): String(number)
    default: nil
    }
  }

  public var integer: Int64? {
    switch self {
    case .integer(let number): number
    case .bulk, .simple: string.flatMap { Int64($0) }
    default: nil
    }
  }

  public var elements: [RESPValue]? {
    switch self {
    case .array(let values), .set(let values), .map(let values), .push(let values): values
    default: nil
    }
  }
}

/// A command as RESP sends it: an array of bulk strings.
public enum RESPCommand {
  public static func encode(_ arguments: [String]) -> [UInt8] {
    var bytes: [UInt8] = []
    encode(arguments, into: &bytes)
    return bytes
  }

  public static func encode(_ arguments: [String], into bytes: inout [UInt8]) {
    bytes.append(0x2A)
    bytes.append(contentsOf: String(arguments.count).utf8)
    bytes.append(contentsOf: [0x0D, 0x0A])
    for argument in arguments {
      let utf8 = argument.utf8
      bytes.append(0x24)
      bytes.append(contentsOf: String(utf8.count).utf8)
      bytes.append(contentsOf: [0x0D, 0x0A])
      bytes.append(contentsOf: utf8)
      bytes.append(contentsOf: [0x0D, 0x0A])
    }
  }
}

public struct RESPProtocolError: Error, Equatable, CustomStringConvertible {
  public let description: String
}

/// Reads replies from bytes as they arrive, in any split: `append` what the socket gave, then take `next()` until it
/// returns nil (an incomplete reply stays buffered).
public struct RESPParser: Sendable {
  private var buffer: [UInt8] = []
  private var start = 0
  /// Bulk strings and aggregates larger than this are a protocol error, not an allocation.
  public static let maxLength = 512 << 20
  private static let maxDepth = 64

  public init() {}

  public mutating func append(_ bytes: some Sequence<UInt8>) {
    if start > 0 && start >= buffer.count / 2 {
      buffer.removeSubrange(0..<start)
      start = 0
    }
    buffer.append(contentsOf: bytes)
  }

  /// Bytes received but not yet parsed into a reply.
  public var buffered: Int { buffer.count - start }

  public mutating func next() throws(RESPProtocolError) -> RESPValue? {
    var position = start
    do {
      let value = try parse(&position, depth: 0)
      start = position
      return value
    } catch {
      switch error {
      case .incomplete: return nil
      case .invalid(let reason): throw RESPProtocolError(description: reason)
      }
    }
  }

  private enum Failure: Error {
    case incomplete
    case invalid(String)
  }

  private func line(_ position: inout Int) throws(Failure) -> ArraySlice<UInt8> {
    var index = position
    while index + 1 < buffer.count {
      if buffer[index] == 0x0D && buffer[index + 1] == 0x0A {
        defer { position = index + 2 }
        return buffer[position..<index]
      }
      index += 1
    }
    guard buffer.count - position < 64 * 1024 else { throw .invalid("a RESP line longer than 64 KiB") }
    throw .incomplete
  }

  private func number(_ position: inout Int) throws(Failure) -> Int {
    let text = try line(&position)
    guard let value = Int(String(decoding: text, as: UTF8.self)) else {
      throw .invalid("a RESP length or integer that is not a number")
    }
    return value
  }

  private func bytes(_ position: inout Int, count: Int) throws(Failure) -> [UInt8] {
    guard count >= 0, count <= Self.maxLength else { throw .invalid("a RESP length of \(count)") }
    guard buffer.count - position >= count + 2 else { throw .incomplete }
    defer { position += count + 2 }
    guard buffer[position + count] == 0x0D, buffer[position + count + 1] == 0x0A else {
      throw .invalid("a RESP bulk string not followed by CRLF")
    }
    return Array(buffer[position..<position + count])
  }

  private func aggregate(_ position: inout Int, depth: Int, pairs: Bool = false) throws(Failure) -> [RESPValue]? {
    let count = try number(&position)
    if count == -1 { return nil }
    guard count >= 0, count <= Self.maxLength else { throw .invalid("a RESP aggregate of \(count) elements") }
    var values: [RESPValue] = []
    for _ in 0..<(pairs ? count * 2 : count) { values.append(try parse(&position, depth: depth + 1)) }
    return values
  }

  private func parse(_ position: inout Int, depth: Int) throws(Failure) -> RESPValue {
    guard depth < Self.maxDepth else { throw .invalid("RESP nesting deeper than \(Self.maxDepth)") }
    guard position < buffer.count else { throw .incomplete }
    let type = buffer[position]
    position += 1
    switch type {
    case UInt8(ascii: "+"): return .simple(String(decoding: try line(&position), as: UTF8.self))
    case UInt8(ascii: "-"): return .error(String(decoding: try line(&position), as: UTF8.self))
    case UInt8(ascii: ":"): return .integer(Int64(try number(&position)))
    case UInt8(ascii: "$"):
      let count = try number(&position)
      return count == -1 ? .null : .bulk(try bytes(&position, count: count))
    case UInt8(ascii: "*"): return try aggregate(&position, depth: depth).map(RESPValue.array) ?? .null
    case UInt8(ascii: "_"):
      _ = try line(&position)
      return .null
    case UInt8(ascii: ","):
      let text = String(decoding: try line(&position), as: UTF8.self)
      switch text {
      case "inf": return .double(.infinity)
      case "-inf": return .double(-.infinity)
      case "nan": return .double(.nan)
      default:
        guard let value = Double(text) else { throw .invalid("a RESP double that is not a number") }
        return .double(value)
      }
    case UInt8(ascii: "#"):
      switch Array(try line(&position)) {
      case [UInt8(ascii: "t")]: return .boolean(true)
      case [UInt8(ascii: "f")]: return .boolean(false)
      default: throw .invalid("a RESP boolean other than t or f")
      }
    case UInt8(ascii: "("): return .bigNumber(String(decoding: try line(&position), as: UTF8.self))
    case UInt8(ascii: "!"):
      return .error(String(decoding: try bytes(&position, count: try number(&position)), as: UTF8.self))
    case UInt8(ascii: "="):
      let text = try bytes(&position, count: try number(&position))
      guard text.count >= 4, text[3] == UInt8(ascii: ":") else {
        throw .invalid("a RESP verbatim string without format")
      }
      return .verbatim(format: String(decoding: text[0..<3], as: UTF8.self), text: Array(text[4...]))
    case UInt8(ascii: "%"): return .map(try aggregate(&position, depth: depth, pairs: true) ?? [])
    case UInt8(ascii: "~"): return .set(try aggregate(&position, depth: depth) ?? [])
    case UInt8(ascii: ">"): return .push(try aggregate(&position, depth: depth) ?? [])
    case UInt8(ascii: "|"):
      // Attributes describe the reply that follows; nothing here uses them.
      _ = try aggregate(&position, depth: depth, pairs: true)
      return try parse(&position, depth: depth)
    default:
      throw .invalid("an unknown RESP type byte \(type)")
    }
  }
}
