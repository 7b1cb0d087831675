import SidecarJSON

/// A framing problem and whether the decoder could find its way back to a frame boundary.
public struct FramingError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable {
    /// The header block was unreadable (no or bad `Content-Length`, a line without a colon, too long); the bytes
    /// up to the next `Content-Length` header were skipped.
    case badHeader
    /// The frame declared more bytes than the limit; its body is being skipped without being stored.
    case frameTooLarge(declared: Int)
    /// The `Content-Type` names a charset other than UTF-8; the body was skipped.
    case unsupportedCharset
  }

  public var kind: Kind
  public var reason: String
  public var description: String { reason }
}

/// Splits a byte stream into LSP base-protocol frames, whatever the chunking.
///
/// Pure and incremental (NIO's single-step decoder contract): feed bytes with ``append(_:)``, then call ``next()``
/// until it returns `nil` for "need more". Limits are checked before anything is allocated for a body. After a bad
/// header the decoder skips to the next `Content-Length` line, so one malformed frame does not wedge the stream.
public struct FrameDecoder: Sendable {
  /// Bodies up to this size are decoded; may change between frames (`limits.maxFrameBytes` after initialize).
  public var maxFrameBytes: Int
  public let maxHeaderBytes: Int

  private var buffer: [UInt8] = []
  private var start = 0
  private var state = State.header
  /// Bytes skipped while resynchronising since the last good frame; the caller decides when the peer is hopeless.
  public private(set) var discardedBytes = 0

  private enum State: Sendable {
    case header
    case body(length: Int)
    case skipping(remaining: Int)
    case resync
  }

  public init(maxFrameBytes: Int = 8 << 20, maxHeaderBytes: Int = 8 << 10) {
    self.maxFrameBytes = maxFrameBytes
    self.maxHeaderBytes = maxHeaderBytes
  }

  public var bufferedByteCount: Int { buffer.count - start }

  /// An oversized frame whose declared length is at most this is skipped byte for byte (the stream stays in sync);
  /// a larger declaration can only be corruption.
  public var maxSkipBytes: Int { max(maxFrameBytes * 16, 256 << 20) }

  public mutating func append(_ bytes: UnsafeRawBufferPointer) {
    if start > 0 && start >= buffer.count / 2 {
      buffer.removeSubrange(0..<start)
      start = 0
    }
    buffer.append(contentsOf: bytes)
  }

  public mutating func append(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { append($0) }
  }

  /// The next whole frame body, `nil` when more bytes are needed, or a ``FramingError`` after which decoding can
  /// simply continue.
  public mutating func next() throws(FramingError) -> [UInt8]? {
    while true {
      switch state {
      case .header:
        guard let result = try parseHeader() else { return nil }
        switch result {
        case .frame(let length):
          state = .body(length: length)
        case .skip(let length, let error):
          state = .skipping(remaining: length)
          throw error
        case .resync(let error):
          state = .resync
          throw error
        }
      case .body(let length):
        guard buffer.count - start >= length else { return nil }
        let body = Array(buffer[start..<start + length])
        start += length
        state = .header
        discardedBytes = 0
        return body
      case .skipping(let remaining):
        let available = min(remaining, buffer.count - start)
        start += available
        if available < remaining {
          state = .skipping(remaining: remaining - available)
          return nil
        }
        state = .header
      case .resync:
        guard resynchronise() else { return nil }
        state = .header
      }
    }
  }

  private enum HeaderResult {
    case frame(length: Int)
    case skip(length: Int, FramingError)
    case resync(FramingError)
  }

  private static let terminator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]

  /// Parses one header block if it is complete.
  private mutating func parseHeader() throws(FramingError) -> HeaderResult? {
    let available = buffer.count - start
    guard available > 0 else { return nil }
    guard let end = findTerminator(limit: maxHeaderBytes) else {
      if available >= maxHeaderBytes {
        start += 1
        state = .resync
        discardedBytes += 1
        throw FramingError(kind: .badHeader, reason: "header block longer than \(maxHeaderBytes) bytes")
      }
      return nil
    }
    let blockStart = start
    start = end + 4
    var contentLength: Int?
    var charsetOK = true
    var lineStart = blockStart
    while lineStart < end {
      var lineEnd = lineStart
      while lineEnd < end && !(buffer[lineEnd] == 0x0D && buffer[lineEnd + 1] == 0x0A) { lineEnd += 1 }
      guard let colon = buffer[lineStart..<lineEnd].firstIndex(of: UInt8(ascii: ":")), colon > lineStart,
        buffer[lineStart..<colon].allSatisfy(Self.isTokenByte)
      else {
        return badHeader(at: blockStart, "header line is not `Name: value`")
      }
      // Bytes, not Strings: this runs for every frame.
      var valueStart = colon + 1
      var valueEnd = lineEnd
      while valueStart < valueEnd && (buffer[valueStart] == 0x20 || buffer[valueStart] == 0x09) { valueStart += 1 }
      while valueEnd > valueStart && (buffer[valueEnd - 1] == 0x20 || buffer[valueEnd - 1] == 0x09) { valueEnd -= 1 }
      if Self.nameMatches(buffer[lineStart..<colon], Self.contentLengthName) {
        guard let length = Self.parseLength(buffer[valueStart..<valueEnd]) else {
          return badHeader(skippingTo: end + 4, "Content-Length is not a non-negative integer")
        }
        if let previous = contentLength, previous != length {
          return badHeader(skippingTo: end + 4, "conflicting Content-Length headers")
        }
        contentLength = length
      } else if Self.nameMatches(buffer[lineStart..<colon], Self.contentTypeName) {
        charsetOK = Self.isUTF8(contentType: String(decoding: buffer[valueStart..<valueEnd], as: UTF8.self))
      }
      // Unknown headers are ignored, as the base protocol asks.
      lineStart = lineEnd + 2
    }
    guard let length = contentLength else { return badHeader(skippingTo: end + 4, "missing Content-Length header") }
    if length > maxSkipBytes {
      // Skipping this many bytes would wedge the stream for good: treat the header as corrupt instead.
      return badHeader(
        skippingTo: end + 4,
        "Content-Length \(length) is implausible (over \(maxSkipBytes) bytes); skipping to the next frame")
    }
    if length > maxFrameBytes {
      return .skip(
        length: length,
        FramingError(
          kind: .frameTooLarge(declared: length),
          reason: "frame of \(length) bytes exceeds the limit of \(maxFrameBytes) bytes (limits.maxFrameBytes)"))
    }
    if !charsetOK {
      return .skip(
        length: length,
        FramingError(kind: .unsupportedCharset, reason: "Content-Type names a charset other than utf-8"))
    }
    return .frame(length: length)
  }

  /// A block that is not made of header lines (stray output, newline-delimited JSON): a real frame may hide inside
  /// what looked like one header block, so scan for the next `Content-Length` line from just after its start.
  private mutating func badHeader(at blockStart: Int, _ reason: String) -> HeaderResult? {
    start = blockStart + 1
    discardedBytes += 1
    return .resync(FramingError(kind: .badHeader, reason: reason))
  }

  /// A well-formed header block with an unusable length: its body boundary is unknown, so skip the block and
  /// scan for the next `Content-Length` line from there.
  private mutating func badHeader(skippingTo next: Int, _ reason: String) -> HeaderResult? {
    discardedBytes += next - start
    start = next
    return .resync(FramingError(kind: .badHeader, reason: reason))
  }

  private func findTerminator(limit: Int) -> Int? {
    let end = min(buffer.count, start + limit + 4)
    guard end - start >= 4 else { return nil }
    return buffer.withUnsafeBufferPointer { bytes -> Int? in
      var index = start
      while index + 3 < end {
        if bytes[index + 3] != 0x0A {
          index += bytes[index + 3] == 0x0D ? 1 : 4
          continue
        }
        if bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D { return index }
        index += 1
      }
      return nil
    }
  }

  private static let contentLengthPrefix = Array("content-length:".utf8)

  /// Discards bytes until a line that starts with `Content-Length:` (any case). Returns false if it needs more bytes.
  private mutating func resynchronise() -> Bool {
    let prefix = Self.contentLengthPrefix
    var index = start
    while index < buffer.count {
      let atLineStart = index == start || buffer[index - 1] == 0x0A
      if atLineStart && (buffer[index] | 0x20) == prefix[0] {
        let end = min(buffer.count, index + prefix.count)
        var matches = true
        for offset in 0..<(end - index) where (buffer[index + offset] | 0x20) != prefix[offset] {
          matches = false
          break
        }
        if matches {
          discardedBytes += index - start
          start = index
          // A partial match at the end of the buffer waits for more bytes.
          return end - index == prefix.count
        }
      }
      index += 1
    }
    discardedBytes += index - start
    start = index
    return false
  }

  private static let contentLengthName = Array("content-length".utf8)
  private static let contentTypeName = Array("content-type".utf8)

  /// Case-insensitive comparison of a header name with a lowercase ASCII name.
  private static func nameMatches(_ name: ArraySlice<UInt8>, _ lowercase: [UInt8]) -> Bool {
    guard name.count == lowercase.count else { return false }
    var index = 0
    for byte in name {
      let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
      if folded != lowercase[index] { return false }
      index += 1
    }
    return true
  }

  /// Decimal digits only, no sign, no overflow.
  private static func parseLength(_ digits: ArraySlice<UInt8>) -> Int? {
    guard !digits.isEmpty else { return nil }
    var value = 0
    for byte in digits {
      guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
      let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
      if overflow1 || overflow2 { return nil }
      value = sum
    }
    return value
  }

  private static let tokenSymbols = Array("!#$%&'*+-.^_`|~".utf8)

  /// RFC 9110 token characters, the only ones a header name may have.
  static func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"):
      return true
    default:
      return tokenSymbols.contains(byte)
    }
  }

  static func isUTF8(contentType: String) -> Bool {
    for parameter in contentType.split(separator: ";").dropFirst() {
      let parts = parameter.split(separator: "=", maxSplits: 1)
      guard parts.count == 2, parts[0].trimmingCharacters(in: " ").lowercased() == "charset" else { continue }
      let charset = parts[1].trimmingCharacters(in: " \"").lowercased()
      return charset == "utf-8" || charset == "utf8"
    }
    return true
  }
}
