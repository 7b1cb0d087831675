import Foundation
import Synchronization

/// Writes whole frames to a file descriptor; frames never interleave.
///
/// The lock is held across `write(2)` on purpose: it is what keeps concurrent frames whole. A closed pipe (EPIPE)
/// marks the writer closed and reports it once, since it means the parent is gone.
public final class FrameWriter: Sendable {
  private let fd: Int32
  private let closed = Mutex(false)
  private let closeHandler = Mutex<(@Sendable () -> Void)?>(nil)

  public init(fd: Int32) {
    self.fd = fd
  }

  /// Sets what runs once when the first write finds the pipe closed.
  public func onClose(_ handler: @escaping @Sendable () -> Void) {
    closeHandler.withLock { $0 = handler }
  }

  public var isClosed: Bool { closed.withLock { $0 } }

  /// Frames `body` as `Content-Length: N\r\n\r\n` + body and writes it in one piece. Returns false once closed.
  @discardableResult
  public func write(body: [UInt8]) -> Bool {
    var frame: [UInt8] = []
    frame.reserveCapacity(body.count + 32)
    frame.append(contentsOf: "Content-Length: \(body.count)\r\n\r\n".utf8)
    frame.append(contentsOf: body)
    let failed = closed.withLock { isClosed -> Bool in
      if isClosed { return false }
      let ok = frame.withUnsafeBytes { raw -> Bool in
        var offset = 0
        while offset < raw.count {
          let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
          if written < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            return false
          }
          offset += written
        }
        return true
      }
      if !ok { isClosed = true }
      return !ok
    }
    if failed { closeHandler.withLock { $0 }?() }
    return !failed && !isClosed
  }
}
