import SidecarJSONRPC
import Testing

private func frame(_ body: String, headers: [String] = []) -> [UInt8] {
  let bytes = Array(body.utf8)
  var text = "Content-Length: \(bytes.count)\r\n"
  for header in headers { text += header + "\r\n" }
  return Array((text + "\r\n").utf8) + bytes
}

/// Feeds `stream` in the given chunk sizes and collects frames and errors in order.
private func decode(_ stream: [UInt8], chunks: [Int]? = nil, decoder: FrameDecoder = FrameDecoder()) -> [String] {
  var decoder = decoder
  var events: [String] = []
  var offset = 0
  var chunkIndex = 0
  while offset < stream.count {
    let size = chunks.map { $0[chunkIndex % $0.count] } ?? stream.count
    chunkIndex += 1
    let end = min(stream.count, offset + max(1, size))
    decoder.append(Array(stream[offset..<end]))
    offset = end
    while true {
      do {
        guard let body = try decoder.next() else { break }
        events.append(String(decoding: body, as: UTF8.self))
      } catch {
        events.append("error: \(error.kind)")
      }
    }
  }
  return events
}

@Suite("Frame decoder")
struct FrameDecoderTests {
  let stream =
    frame(#"{"a":1}"#) + frame(#"{"b":"é"}"#, headers: ["Content-Type: application/vscode-jsonrpc; charset=utf-8"])
    + frame("[]", headers: ["X-Unknown: whatever"])

  @Test("Any chunking yields the same frames: whole, byte by byte, and every split point")
  func anyChunking() {
    let expected = [#"{"a":1}"#, #"{"b":"é"}"#, "[]"]
    #expect(decode(stream) == expected)
    #expect(decode(stream, chunks: [1]) == expected)
    #expect(decode(stream, chunks: [3, 7, 1, 13]) == expected)
    for split in 1..<stream.count {
      var decoder = FrameDecoder()
      var frames: [String] = []
      for part in [Array(stream[..<split]), Array(stream[split...])] {
        decoder.append(part)
        while let body = try? decoder.next() { frames.append(String(decoding: body, as: UTF8.self)) }
      }
      #expect(frames == expected, "split at \(split)")
    }
  }

  @Test("Header names are case-insensitive and the legacy utf8 charset is accepted")
  func headerCase() {
    let bytes = Array("content-LENGTH: 2\r\nCONTENT-TYPE: application/vscode-jsonrpc; charset=utf8\r\n\r\n{}".utf8)
    #expect(decode(bytes) == ["{}"])
  }

  @Test("A frame over the limit is reported and skipped without being buffered, and the next frame decodes")
  func tooLarge() throws {
    var decoder = FrameDecoder(maxFrameBytes: 100)
    let big = frame(String(repeating: "x", count: 10_000))
    decoder.append(Array(big.prefix(40)))
    #expect(throws: FramingError.self) { try decoder.next() }
    for chunk in stride(from: 40, to: big.count, by: 500) {
      decoder.append(Array(big[chunk..<min(big.count, chunk + 500)]))
      #expect(try decoder.next() == nil)
      #expect(decoder.bufferedByteCount <= 500)
    }
    decoder.append(frame("{}"))
    #expect(try decoder.next().map { String(decoding: $0, as: UTF8.self) } == "{}")
  }

  @Test(
    "Malformed headers are reported and the stream resynchronises on the next frame",
    arguments: [
      "Content-Type: x\r\n\r\n",  // no Content-Length
      "Content-Length: abc\r\n\r\n",  // not a number
      "Content-Length: -5\r\n\r\n",  // negative
      "Content-Length: 2\r\nContent-Length: 3\r\n\r\n",  // conflicting
      "garbage without colon\r\n\r\n",
      "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n",  // newline-delimited JSON, not framed
    ])
  func resynchronises(_ bad: String) {
    let events = decode(Array(bad.utf8) + frame(#"{"ok":true}"#))
    #expect(events.first == "error: badHeader")
    #expect(events.last == #"{"ok":true}"#)
    #expect(events.filter { $0.hasPrefix("error") }.count <= 2)
  }

  @Test("An absurd Content-Length is treated as corruption, not skipped forever")
  func absurdLength() {
    let events = decode(Array("Content-Length: 9223372036854775807\r\n\r\n".utf8) + frame("[2]"))
    #expect(events == ["error: badHeader", "[2]"])
  }

  @Test("A charset other than UTF-8 is refused and its body skipped")
  func otherCharset() {
    let events = decode(frame("{}", headers: ["Content-Type: application/json; charset=latin1"]) + frame("[1]"))
    #expect(events == ["error: unsupportedCharset", "[1]"])
  }

  @Test("A header block longer than the limit is reported instead of buffered forever")
  func headerTooLong() {
    var decoder = FrameDecoder(maxHeaderBytes: 64)
    decoder.append(Array(("X-Pad: " + String(repeating: "a", count: 200)).utf8))
    #expect(throws: FramingError.self) { try decoder.next() }
    #expect(decoder.discardedBytes > 0)
  }

  @Test("Seeded random garbage never crashes the decoder and valid frames after it still decode")
  func seededFuzz() {
    var generator = SplitMix64(seed: 42)
    let alphabet = Array("Content-Length: 12\r\n{}\"abc:0123456789".utf8) + [0, 0xFF, 0x80]
    for _ in 0..<2_000 {
      let garbage = (0..<Int(generator.next() % 200)).map { _ in
        alphabet[Int(generator.next() % UInt64(alphabet.count))]
      }
      var decoder = FrameDecoder(maxFrameBytes: 4096, maxHeaderBytes: 256)
      decoder.append(garbage)
      for _ in 0..<64 { _ = try? decoder.next() }
      #expect(decoder.bufferedByteCount <= garbage.count)
    }
  }
}

struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
