import Dispatch
import Foundation
import SidecarLogging

/// Turns SIGTERM and SIGINT into a callback on a dispatch queue (service-lifecycle's signal sequence, minus the rest).
public enum SignalHandling {
  /// Installs the handler; the caller keeps the returned sources alive for as long as signals should be handled.
  public static func install(_ handler: @escaping @Sendable (Int32) -> Void) -> [any DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { number in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { handler(number) }
      source.resume()
      return source
    }
  }
}
