import SidecarJSON
import SidecarJSONRPC
import SidecarLogging

/// The methods that exist once `initialize` has fixed the configuration: platform operations, metrics, breaker.
final class PlatformServices: Sendable {
  let configuration: SidecarConfiguration
  let connection: Connection
  let logger: Logger

  init(configuration: SidecarConfiguration, connection: Connection, logger: Logger) {
    self.configuration = configuration
    self.connection = connection
    self.logger = logger
  }

  var capabilities: JSONValue {
    ["platforms": [:]]
  }

  func route(method: String) -> Route? {
    nil
  }

  /// Flushes anything that must survive the process (state, queued notifications).
  func flush() async {}
}
