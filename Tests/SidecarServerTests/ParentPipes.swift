import Foundation
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import Synchronization

/// The parent's end of a sidecar's stdin and stdout, as two pipes: a `Connection` over the sidecar's end, frames
/// written to it, and every frame it wrote read back.
final class ParentPipes: Sendable {
  let connection: Connection
  private let toSidecar: Int32
  private let fromSidecar: Int32
  private let decoder = Mutex(FrameDecoder())

  init() {
    var input: [Int32] = [0, 0]
    var output: [Int32] = [0, 0]
    precondition(pipe(&input) == 0 && pipe(&output) == 0)
    toSidecar = input[1]
    fromSidecar = output[0]
    connection = Connection(inputFD: input[0], outputFD: output[1], logger: .disabled)
  }

  /// Sends one message to the sidecar.
  func send(_ message: JSONValue) {
    var frame: [UInt8] = []
    FrameWriter.appendFrame(body: message.serialized(), to: &frame)
    frame.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count { offset += max(0, write(toSidecar, raw.baseAddress! + offset, raw.count - offset)) }
    }
  }

  /// Ends the sidecar's input, as a parent that exits does.
  func closeInput() { close(toSidecar) }

  /// The next message the sidecar wrote, waiting for it up to `wait` (only a guard against a hang), or nil.
  func next(wait: Duration = .seconds(10)) -> JSONValue? {
    let deadline = ContinuousClock.now + wait
    while true {
      if let body = decoder.withLock({ try? $0.next() }) ?? nil { return try? JSONParser.parse(body) }
      let left = ContinuousClock.now.duration(to: deadline).components
      let milliseconds = max(0, left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000)
      var descriptor = pollfd(fd: fromSidecar, events: Int16(POLLIN), revents: 0)
      guard poll(&descriptor, 1, Int32(milliseconds)) > 0 else { return nil }
      var buffer = [UInt8](repeating: 0, count: 64 << 10)
      let count = read(fromSidecar, &buffer, buffer.count)
      guard count > 0 else { return nil }
      decoder.withLock { $0.append(Array(buffer[..<count])) }
    }
  }

  /// Every message the sidecar has written so far (without waiting).
  func written() -> [JSONValue] {
    var messages: [JSONValue] = []
    while let message = next(wait: .zero) { messages.append(message) }
    return messages
  }

  /// The next message answering request `id`, skipping notifications.
  func answer(to id: Int) -> JSONValue? {
    while let message = next() {
      if message["id"]?.intValue == id { return message }
    }
    return nil
  }
}
