/// Why a byte sequence is not JSON, with the byte offset where parsing stopped.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
  public var reason: String
  public var offset: Int
  public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser working directly on UTF-8 bytes.
///
/// It rejects what the RFC rejects (trailing commas, leading zeros, lone surrogates, invalid UTF-8, control
/// characters in strings) and bounds nesting so that hostile input cannot exhaust the stack.
public enum JSONParser {
  public static let maxDepth = 256

  public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
    if let result = bytes.withContiguousStorageIfAvailable({ result(parsing: $0) }) { return try result.get() }
    return try Array(bytes).withUnsafeBufferPointer { result(parsing: $0) }.get()
  }

  public static func parse(_ string: String) throws(JSONParseError) -> JSONValue {
    var string = string
    return try string.withUTF8 { result(parsing: $0) }.get()
  }

  private static func result(parsing buffer: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONParseError> {
    do throws(JSONParseError) { return .success(try parse(buffer: buffer)) } catch { return .failure(error) }
  }

  public static func parse(buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
    var reader = Reader(bytes: buffer)
    reader.skipWhitespace()
    let value = try reader.parseValue(depth: 0)
    reader.skipWhitespace()
    guard reader.index == buffer.count else { throw reader.error("unexpected data after the JSON value") }
    return value
  }
}

private struct Reader {
  let bytes: UnsafeBufferPointer<UInt8>
  var index = 0

  init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

  func error(_ reason: String) -> JSONParseError { JSONParseError(reason: reason, offset: index) }

  mutating func skipWhitespace() {
    while index < bytes.count {
      switch bytes[index] {
      case 0x20, 0x0A, 0x0D, 0x09: index += 1
      default: return
      }
    }
  }

  mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
    guard index < bytes.count else { throw error("unexpected end of input") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
    case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"):
      try expectLiteral("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try expectLiteral("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try expectLiteral("null")
      return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    default: throw error("unexpected character")
    }
  }

  mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
    let count = literal.utf8CodeUnitCount
    guard bytes.count - index >= count else { throw error("unexpected end of input") }
    let start = literal.utf8Start
    for offset in 0..<count where bytes[index + offset] != start[offset] {
      throw error("invalid literal")
    }
    index += count
  }

  mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
    guard depth <= JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth)") }
    index += 1
    var members: [String: JSONValue] = Dictionary(minimumCapacity: 4)
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
      index += 1
      return .object(members)
    }
    while true {
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
      let key = try parseString()
      skipWhitespace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
      index += 1
      skipWhitespace()
      members[key] = try parseValue(depth: depth)
      skipWhitespace()
      guard index < bytes.count else { throw error("unexpected end of input") }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
      } else if bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(members)
      } else {
        throw error("expected ',' or '}'")
      }
    }
  }

  mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
    guard depth <= JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth)") }
    index += 1
    var elements: [JSONValue] = []
    skipWhitespace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
      index += 1
      return .array(elements)
    }
    while true {
      skipWhitespace()
      elements.append(try parseValue(depth: depth))
      skipWhitespace()
      guard index < bytes.count else { throw error("unexpected end of input") }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
      } else if bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array(elements)
      } else {
        throw error("expected ',' or ']'")
      }
    }
  }

  mutating func parseNumber() throws(JSONParseError) -> JSONValue {
    let start = index
    var isInteger = true
    if bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
    if bytes[index] == UInt8(ascii: "0") {
      index += 1
      if index < bytes.count, isDigit(bytes[index]) { throw error("leading zeros are not allowed") }
    } else {
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      isInteger = false
      index += 1
      guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      isInteger = false
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
      guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    if isInteger, let value = Int(text) { return .int(value) }
    guard let value = Double(text), value.isFinite else {
      throw JSONParseError(reason: "number out of range", offset: start)
    }
    return .double(value)
  }

  func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

  mutating func parseString() throws(JSONParseError) -> String {
    index += 1  // opening quote
    let start = index
    // Fast path: no escapes. ASCII-only strings (ids, method names, keys) need no UTF-8 validation.
    var ascii = true
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\"") {
        let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
        index += 1
        return ascii ? String(decoding: slice, as: UTF8.self) : try makeString(slice, at: start)
      }
      if byte == UInt8(ascii: "\\") { break }
      if byte < 0x20 { throw error("control character in string") }
      ascii = ascii && byte < 0x80
      index += 1
    }
    var scratch = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
    while index < bytes.count {
      let byte = bytes[index]
      switch byte {
      case UInt8(ascii: "\""):
        index += 1
        let result = scratch.withUnsafeBufferPointer { buffer in String(validating: buffer, as: UTF8.self) }
        guard let result else { throw JSONParseError(reason: "invalid UTF-8 in string", offset: start) }
        return result
      case UInt8(ascii: "\\"):
        index += 1
        guard index < bytes.count else { throw error("unexpected end of input") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""): scratch.append(0x22)
        case UInt8(ascii: "\\"): scratch.append(0x5C)
        case UInt8(ascii: "/"): scratch.append(0x2F)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"): try appendUnicodeEscape(to: &scratch)
        default: throw error("invalid escape")
        }
      default:
        if byte < 0x20 { throw error("control character in string") }
        scratch.append(byte)
        index += 1
      }
    }
    throw error("unterminated string")
  }

  func makeString(_ buffer: UnsafeBufferPointer<UInt8>, at offset: Int) throws(JSONParseError) -> String {
    guard let string = String(validating: buffer, as: UTF8.self) else {
      throw JSONParseError(reason: "invalid UTF-8 in string", offset: offset)
    }
    return string
  }

  mutating func readHex4() throws(JSONParseError) -> UInt32 {
    guard bytes.count - index >= 4 else { throw error("unexpected end of input") }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[index]
      let digit: UInt32
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
      default: throw error("invalid \\u escape")
      }
      value = value << 4 | digit
      index += 1
    }
    return value
  }

  mutating func appendUnicodeEscape(to scratch: inout [UInt8]) throws(JSONParseError) {
    var scalar = try readHex4()
    if (0xD800...0xDBFF).contains(scalar) {
      guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
        throw error("lone surrogate in \\u escape")
      }
      index += 2
      let low = try readHex4()
      guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid surrogate pair") }
      scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
    } else if (0xDC00...0xDFFF).contains(scalar) {
      throw error("lone surrogate in \\u escape")
    }
    guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
    scratch.append(contentsOf: UTF8.encode(unicode)!)
  }
}
