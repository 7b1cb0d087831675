#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Dispatch
import SidecarJSON
import SidecarSystem
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Severity, ordered so that a configured level admits itself and everything more severe.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
  case debug, info, warn, error

  public init?(name: String) {
    switch name.lowercased() {
    case "debug", "trace": self = .debug
    case "info", "notice": self = .info
    case "warn", "warning": self = .warn
    case "error", "fatal": self = .error
    default: return nil
    }
  }

  public var name: String {
    switch self {
    case .debug: "debug"
    case .info: "info"
    case .warn: "warn"
    case .error: "error"
    }
  }

  public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Where finished log lines go. Implementations must never block the caller for long.
public protocol LogSink: Sendable {
  func write(line: [UInt8])
}

/// A value-type logger: a constant message plus metadata, one JSON object per line.
///
/// Messages are constant strings and details travel as metadata (async-http-client's logging design), so lines stay
/// greppable. Callers must never put secrets in metadata; the credential layer only ever logs references.
public struct Logger: Sendable {
  public var level: LogLevel
  public var metadata: [String: JSONValue]
  let sink: any LogSink
  let clock: @Sendable () -> Date

  public init(
    level: LogLevel, sink: any LogSink, metadata: [String: JSONValue] = [:],
    clock: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.level = level
    self.sink = sink
    self.metadata = metadata
    self.clock = clock
  }

  /// A logger that drops everything, for tests and tools that do not care.
  public static let disabled = Logger(level: .error, sink: DiscardingLogSink())

  public func with(_ extra: [String: JSONValue]) -> Logger {
    var copy = self
    copy.metadata.merge(extra) { _, new in new }
    return copy
  }

  /// `extra` is built only when the level is on: a disabled debug line costs a comparison.
  public func log(_ candidate: LogLevel, _ message: String, _ extra: @autoclosure () -> [String: JSONValue] = [:]) {
    guard candidate >= level else { return }
    var fields = metadata
    fields.merge(extra()) { _, new in new }
    fields["ts"] = .string(RFC3339.string(from: clock()))
    fields["level"] = .string(candidate.name)
    fields["msg"] = .string(message)
    var line = JSONValue.object(fields).serialized()
    line.append(0x0A)
    sink.write(line: line)
  }

  public func debug(_ message: String, _ extra: @autoclosure () -> [String: JSONValue] = [:]) {
    log(.debug, message, extra())
  }
  public func info(_ message: String, _ extra: @autoclosure () -> [String: JSONValue] = [:]) {
    log(.info, message, extra())
  }
  public func warn(_ message: String, _ extra: @autoclosure () -> [String: JSONValue] = [:]) {
    log(.warn, message, extra())
  }
  public func error(_ message: String, _ extra: @autoclosure () -> [String: JSONValue] = [:]) {
    log(.error, message, extra())
  }
}

public struct DiscardingLogSink: LogSink {
  public init() {}
  public func write(line: [UInt8]) {}
}

/// Keeps lines in memory so tests can assert on what was logged (and that no secret was).
public final class InMemoryLogSink: LogSink {
  private let lines = Mutex<[String]>([])
  public init() {}
  public func write(line: [UInt8]) {
    let text = String(decoding: line.dropLast(), as: UTF8.self)
    lines.withLock { $0.append(text) }
  }
  public var entries: [String] { lines.withLock { $0 } }
}

/// Writes to a file descriptor from its own thread through a bounded queue.
///
/// A parent that never drains stderr is common; a blocking write there must not stall protocol work. When the queue
/// is full, lines are dropped and counted, and the count is reported once the queue drains.
public final class AsyncFileLogSink: LogSink {
  private struct State {
    var queue: [[UInt8]] = []
    var queuedBytes = 0
    var dropped = 0
    var closed = false
  }

  private let fd: Int32
  private let capacityBytes: Int
  private let state = Mutex(State())
  private let wakeup = DispatchSemaphore(value: 0)
  private let drained = DispatchSemaphore(value: 0)

  public init(fd: Int32, capacityBytes: Int = 1 << 20) {
    self.fd = fd
    self.capacityBytes = capacityBytes
    startThread { [self] in self.run() }
  }

  public func write(line: [UInt8]) {
    let accepted = state.withLock { state -> Bool in
      guard !state.closed, state.queuedBytes + line.count <= capacityBytes else {
        state.dropped += 1
        return false
      }
      state.queue.append(line)
      state.queuedBytes += line.count
      return true
    }
    if accepted { wakeup.signal() }
  }

  /// Writes what is queued, waiting at most `timeout`; used on exit so last words are not lost.
  public func flush(timeout: Duration = .milliseconds(500)) {
    state.withLock { $0.closed = true }
    wakeup.signal()
    let nanos =
      UInt64(timeout.components.seconds) * 1_000_000_000 + UInt64(timeout.components.attoseconds / 1_000_000_000)
    _ = drained.wait(timeout: .now() + .nanoseconds(Int(nanos)))
  }

  private func run() {
    while true {
      wakeup.wait()
      let (batch, dropped, closed) = state.withLock { state -> ([[UInt8]], Int, Bool) in
        let batch = state.queue
        let dropped = state.dropped
        state.queue.removeAll(keepingCapacity: true)
        state.queuedBytes = 0
        state.dropped = 0
        return (batch, dropped, state.closed)
      }
      for line in batch { writeAll(line) }
      if dropped > 0 {
        writeAll(
          Array(
            "{\"level\":\"warn\",\"msg\":\"log lines dropped: stderr is not being read\",\"dropped\":\(dropped)}\n".utf8
          ))
      }
      if closed {
        drained.signal()
        return
      }
    }
  }

  private func writeAll(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let written = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          return
        }
        offset += written
      }
    }
  }
}
