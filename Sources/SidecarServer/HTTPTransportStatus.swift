import SidecarJSON
import Synchronization

/// What `health.http` and `capabilities.http` say: the configured transport, whether it is `pending` (loaded on the
/// first platform call), `ready` or `unavailable`, and then its version or the reason it cannot run. Kept small:
/// `health` is answered at any rate.
final class HTTPTransportStatus: Sendable {
  private let status = Mutex<(json: JSONValue, unavailable: Bool)>((.null, false))

  var value: (json: JSONValue, unavailable: Bool) { status.withLock { $0 } }

  func set(_ configured: String, state: String, detail: String?) {
    var json: [String: JSONValue] = [
      "transport": .string(configured == "urlsession" ? "urlsession" : "libcurl"), "state": .string(state),
    ]
    json["detail"] = detail.map(JSONValue.string)
    status.withLock { $0 = (.object(json), state == "unavailable") }
  }
}
