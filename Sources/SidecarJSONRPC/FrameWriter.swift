#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarSystem
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

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

  /// Appends `Content-Length: N\r\n\r\n` + `body` to `output`.
  public static func appendFrame(body: [UInt8], to output: inout [UInt8]) {
    output.reserveCapacity(output.count + body.count + 32)
    output.append(contentsOf: Self.prefix)
    JSONValue.writeInteger(body.count, to: &output)
    output.append(contentsOf: [0x0D, 0x0A, 0x0D, 0x0A])
    output.append(contentsOf: body)
  }

  private static let prefix = Array("Content-Length: ".utf8)

  /// Frames `body` and writes it in one piece. Returns false once closed.
  @discardableResult
  public func write(body: [UInt8]) -> Bool {
    var frame: [UInt8] = []
    Self.appendFrame(body: body, to: &frame)
    return write(frames: frame)
  }

  /// Writes bytes that already hold whole frames (several answers batched into one `write(2)`).
  @discardableResult
  public func write(frames frame: [UInt8]) -> Bool {
    guard !frame.isEmpty else { return !isClosed }
    let failed = closed.withLock { isClosed -> Bool in
      if isClosed { return false }
      let ok = frame.withUnsafeBytes { raw -> Bool in
        var offset = 0
        while offset < raw.count {
          let written = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
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
