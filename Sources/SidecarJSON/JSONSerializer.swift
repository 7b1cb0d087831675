extension JSONValue {
  /// Compact UTF-8 JSON. Object keys are sorted so output is deterministic (logs, snapshots, tests).
  public func serialized() -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(128)
    write(to: &output)
    return output
  }

  public var jsonString: String { String(decoding: serialized(), as: UTF8.self) }

  /// Appends compact JSON to `output`; non-finite doubles (which JSON cannot carry) become `null`.
  public func write(to output: inout [UInt8]) {
    switch self {
    case .null: output.append(contentsOf: "null".utf8)
    case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
    case .int(let value): JSONValue.writeInteger(value, to: &output)
    case .double(let value):
      if value.isFinite {
        if value.rounded() == value && abs(value) < 1e15 {
          JSONValue.writeInteger(Int(value), to: &output)
        } else {
          output.append(contentsOf: value.description.utf8)
        }
      } else {
        output.append(contentsOf: "null".utf8)
      }
    case .string(let value): JSONValue.writeString(value, to: &output)
    case .array(let elements):
      output.append(UInt8(ascii: "["))
      for (offset, element) in elements.enumerated() {
        if offset > 0 { output.append(UInt8(ascii: ",")) }
        element.write(to: &output)
      }
      output.append(UInt8(ascii: "]"))
    case .object(let members):
      output.append(UInt8(ascii: "{"))
      var first = true
      for (key, value) in members.sorted(by: { $0.key < $1.key }) {
        if !first { output.append(UInt8(ascii: ",")) }
        first = false
        JSONValue.writeString(key, to: &output)
        output.append(UInt8(ascii: ":"))
        value.write(to: &output)
      }
      output.append(UInt8(ascii: "}"))
    }
  }

  /// Decimal digits without allocating a String.
  public static func writeInteger(_ value: Int, to output: inout [UInt8]) {
    if value == 0 {
      output.append(UInt8(ascii: "0"))
      return
    }
    var magnitude = value.magnitude
    var digits:
      (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
      ) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    withUnsafeMutableBytes(of: &digits) { buffer in
      while magnitude > 0 {
        buffer[count] = UInt8(truncatingIfNeeded: magnitude % 10) + UInt8(ascii: "0")
        magnitude /= 10
        count += 1
      }
      if value < 0 { output.append(UInt8(ascii: "-")) }
      for index in stride(from: count - 1, through: 0, by: -1) { output.append(buffer[index]) }
    }
  }

  public static func writeString(_ string: String, to output: inout [UInt8]) {
    output.append(UInt8(ascii: "\""))
    let utf8 = string.utf8
    // Scanned as a buffer (native strings, small ones included, are contiguous): byte by byte through the UTF-8
    // view cost twice as much, and this runs for every key and string of every answer.
    let plain = utf8.withContiguousStorageIfAvailable { bytes in
      !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }
    if plain == true {
      output.append(contentsOf: utf8)
      output.append(UInt8(ascii: "\""))
      return
    }
    for byte in utf8 {
      switch byte {
      case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
      case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
      case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
      case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
      case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
      case 0x00..<0x20:
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        output.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
      default: output.append(byte)
      }
    }
    output.append(UInt8(ascii: "\""))
  }
}
