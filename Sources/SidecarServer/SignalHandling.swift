#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarSystem
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Turns SIGTERM and SIGINT into a callback on a dedicated thread (the self-pipe trick).
///
/// The C handler only writes the signal number to a pipe, which is async-signal-safe; a thread reads the pipe and
/// runs the callback. `sigaction` takes effect at once, so there is no start-up window in which a signal is lost
/// (a dispatch signal source registers asynchronously and can miss an early SIGTERM).
public enum SignalHandling {
  public static func install(_ handler: @escaping @Sendable (Int32) -> Void) {
    let readFD = signalPipe.read
    for number in [SIGTERM, SIGINT] {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { number in
        var byte = UInt8(truncatingIfNeeded: number)
        _ = write(signalPipe.write, &byte, 1)
      }
      action.sa_flags = SA_RESTART
      sigaction(number, &action, nil)
    }
    startThread {
      var byte: UInt8 = 0
      while true {
        let count = read(readFD, &byte, 1)
        if count == 1 {
          handler(Int32(byte))
        } else if count < 0 && errno == EINTR {
          continue
        } else {
          return
        }
      }
    }
  }
}

/// Created before any handler is installed (Swift globals initialise once, on first use), never changed after.
private let signalPipe: (read: Int32, write: Int32) = {
  var fds: [Int32] = [0, 0]
  _ = pipe(&fds)
  return (fds[0], fds[1])
}()

/// Holds a signal that arrived before its handler was set, and delivers it once the handler is.
public final class ShutdownSignal: Sendable {
  private let state = Mutex<(pending: Int32?, handler: (@Sendable (Int32) -> Void)?)>((nil, nil))
  public init() {}

  public func fire(_ signal: Int32) {
    let handler = state.withLock { state -> (@Sendable (Int32) -> Void)? in
      if state.handler == nil { state.pending = signal }
      return state.handler
    }
    handler?(signal)
  }

  public func handle(_ handler: @escaping @Sendable (Int32) -> Void) {
    let pending = state.withLock { state -> Int32? in
      state.handler = handler
      return state.pending
    }
    if let pending { handler(pending) }
  }
}
