import Foundation

#if BENCH_NETWORKING
  // Variant for one question only: what does linking FoundationNetworking (and libcurl's tree) cost at start-up?
  import FoundationNetworking
#endif

/// The "plain Swift" baseline of the protocol benchmark: what a careful Swift developer writes without a framework.
///
/// It reads stdin in chunks with `read(2)`, splits `Content-Length` frames, decodes each body with `JSONDecoder`, and
/// answers `initialize` and every other request with a `health`-shaped result, one `write(2)` per frame, the same
/// bytes the sidecar sends (keys sorted). Everything runs on the main thread; it exits at EOF. The sidecar should
/// reach at least half its throughput.
@main
enum SwiftEcho {
  static func main() {
    signal(SIGPIPE, SIG_IGN)
    let decoder = JSONDecoder()
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys  // stable bytes, the same length as the sidecar's answer
    let started = ContinuousClock.now
    var frames = FrameSplitter()
    let chunkSize = 64 << 10
    var chunk = [UInt8](repeating: 0, count: chunkSize)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, chunkSize) }
      if count < 0 && errno == EINTR { continue }
      if count <= 0 { exit(count == 0 ? 0 : 1) }
      frames.append(chunk[0..<count])
      while let body = frames.next() {
        guard let request = try? decoder.decode(Request.self, from: body), let id = request.id else { continue }
        let response: Data
        do {
          if request.method == "initialize" {
            response = try encoder.encode(Response(id: id, result: InitializeResult()))
          } else {
            let uptime = ContinuousClock.now - started
            let uptimeMs =
              Int(uptime.components.seconds) * 1000 + Int(uptime.components.attoseconds / 1_000_000_000_000_000)
            response = try encoder.encode(Response(id: id, result: Health(uptimeMs: uptimeMs)))
          }
        } catch {
          exit(1)
        }
        guard writeFrame(response) else { exit(1) }
      }
    }
  }

  /// Writes `Content-Length: N\r\n\r\n` + body in one `write(2)` (retried on short writes).
  static func writeFrame(_ body: Data) -> Bool {
    var frame = Array("Content-Length: \(body.count)\r\n\r\n".utf8)
    frame.append(contentsOf: body)
    return frame.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let written = write(STDOUT_FILENO, raw.baseAddress! + offset, raw.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          return false
        }
        offset += written
      }
      return true
    }
  }
}

/// Splits LSP frames out of any chunking of the input.
struct FrameSplitter {
  private var buffer: [UInt8] = []
  private var start = 0

  mutating func append(_ bytes: ArraySlice<UInt8>) {
    if start > 0 && start >= buffer.count / 2 {
      buffer.removeFirst(start)
      start = 0
    }
    buffer.append(contentsOf: bytes)
  }

  /// The next whole body, or nil until more bytes arrive.
  mutating func next() -> Data? {
    let end = buffer.count
    var index = start
    while index + 3 < end {
      if buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 { break }
      index += 1
    }
    guard index + 3 < end else { return nil }
    guard let length = Self.contentLength(buffer[start..<index]) else { exit(2) }
    let bodyStart = index + 4
    guard end - bodyStart >= length else { return nil }
    start = bodyStart + length
    return Data(buffer[bodyStart..<start])
  }

  /// The value of the `Content-Length` header (matched case-insensitively) in a header block.
  private static func contentLength(_ header: ArraySlice<UInt8>) -> Int? {
    let name = Array("content-length:".utf8)
    var lineStart = header.startIndex
    while lineStart < header.endIndex {
      let lineEnd = header[lineStart...].firstIndex(of: 13) ?? header.endIndex
      let line = header[lineStart..<lineEnd]
      if line.count > name.count && zip(line, name).allSatisfy({ ($0 | 0x20) == $1 }) {
        var value = 0
        for byte in line.dropFirst(name.count) where byte != 32 {
          guard (48...57).contains(byte) else { return nil }
          value = value * 10 + Int(byte - 48)
        }
        return value
      }
      lineStart = lineEnd + 2
    }
    return nil
  }
}

enum RequestID: Codable {
  case number(Int)
  case string(String)

  init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if let number = try? container.decode(Int.self) {
      self = .number(number)
    } else {
      self = .string(try container.decode(String.self))
    }
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .number(let number): try container.encode(number)
    case .string(let string): try container.encode(string)
    }
  }
}

struct Request: Decodable {
  let jsonrpc: String
  let id: RequestID?
  let method: String
}

struct Response<Result: Encodable>: Encodable {
  var jsonrpc = "2.0"
  let id: RequestID
  let result: Result
}

struct Health: Encodable {
  var inFlight = 0
  var status = "ok"
  let uptimeMs: Int
  var version = "0.1.0"
}

struct InitializeResult: Encodable {
  struct ServerInfo: Encodable {
    var name = "swift-echo"
    var version = "0.1.0"
  }
  var protocolVersion = "1.0"
  var serverInfo = ServerInfo()
}
