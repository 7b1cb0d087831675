#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging

/// One platform operation as the backend bills and audits it; sent as the `metrics/event` notification.
///
/// Customers and agents live here and nowhere in the aggregated metrics, so label cardinality stays bounded.
/// `errorMessage` is sent as given: the caller passes a message already free of tokens and secrets.
public struct MetricEvent: Sendable, Equatable {
  /// Unique per event (a random UUID string by default, see `newEventId()`); the backend dedupes billing on it.
  public var eventId: String
  /// When the operation finished.
  public var timestamp: Date
  public var customerId: String
  public var agentId: String?
  public var platform: String
  /// `post`, `send`, `validate` or `refresh`.
  public var operation: String
  public var correlationId: String?
  public var success: Bool
  public var postId: String?
  public var postUrl: String?
  /// An error kind from the fixed table in `docs/Modules.md` (`permanent`, `circuit_open`, …).
  public var errorKind: String?
  /// The JSON-RPC error code that went back to the caller.
  public var errorCode: Int?
  public var errorMessage: String?
  public var httpStatus: Int?
  /// Requests made to the platform: 0 when refused before any (open breaker, overload), 1 without retries.
  public var attempts: Int
  /// Wall time of the whole call, retries and backoff included.
  public var durationMs: Double
  /// The answer came from the idempotency store: nothing reached the platform and nothing new should be billed.
  public var replayed: Bool

  public init(
    eventId: String = MetricEvent.newEventId(), timestamp: Date = Date(), customerId: String, agentId: String? = nil,
    platform: String, operation: String, correlationId: String? = nil, success: Bool, postId: String? = nil,
    postUrl: String? = nil, errorKind: String? = nil, errorCode: Int? = nil, errorMessage: String? = nil,
    httpStatus: Int? = nil, attempts: Int, durationMs: Double, replayed: Bool = false
  ) {
    self.eventId = eventId
    self.timestamp = timestamp
    self.customerId = customerId
    self.agentId = agentId
    self.platform = platform
    self.operation = operation
    self.correlationId = correlationId
    self.success = success
    self.postId = postId
    self.postUrl = postUrl
    self.errorKind = errorKind
    self.errorCode = errorCode
    self.errorMessage = errorMessage
    self.httpStatus = httpStatus
    self.attempts = attempts
    self.durationMs = durationMs
    self.replayed = replayed
  }

  /// The `metrics/event` params.
  ///
  /// Always present: `eventId`, `timestamp` (RFC 3339 UTC, milliseconds), `customerId`, `agentId` and
  /// `correlationId` (`null` when unknown, so the backend's columns always exist), `platform`, `operation`,
  /// `success`, `attempts`, `durationMs` (rounded to the microsecond), `replayed`.
  /// Present only when known (omitted, never `null`): `postId`, `postUrl`, `errorKind`, `errorCode`,
  /// `errorMessage`, `httpStatus`.
  public var json: JSONValue {
    var members = [String: JSONValue](minimumCapacity: 17)
    members["eventId"] = .string(eventId)
    members["timestamp"] = .string(RFC3339.string(from: timestamp))
    members["customerId"] = .string(customerId)
    members["agentId"] = JSONValue(agentId)
    members["platform"] = .string(platform)
    members["operation"] = .string(operation)
    members["correlationId"] = JSONValue(correlationId)
    members["success"] = .bool(success)
    members["attempts"] = .int(attempts)
    members["durationMs"] = .double(roundedDurationMs)
    members["replayed"] = .bool(replayed)
    if let postId { members["postId"] = .string(postId) }
    if let postUrl { members["postUrl"] = .string(postUrl) }
    if let errorKind { members["errorKind"] = .string(errorKind) }
    if let errorCode { members["errorCode"] = .int(errorCode) }
    if let errorMessage { members["errorMessage"] = .string(errorMessage) }
    if let httpStatus { members["httpStatus"] = .int(httpStatus) }
    return .object(members)
  }

  /// `json.serialized()`, byte for byte, several times faster: no dictionary, no key sorting (keys are written in
  /// sorted order), and strings that need no escaping are copied whole. For a writer that can send params
  /// already serialized.
  public func serializedJSON() -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(512)
    Self.member(#"{"agentId":"#, agentId, to: &out)
    Self.member(#","attempts":"#, .int(attempts), to: &out)
    Self.member(#","correlationId":"#, correlationId, to: &out)
    Self.member(#","customerId":"#, customerId, to: &out)
    Self.member(#","durationMs":"#, .double(roundedDurationMs), to: &out)
    if let errorCode { Self.member(#","errorCode":"#, .int(errorCode), to: &out) }
    if let errorKind { Self.member(#","errorKind":"#, errorKind, to: &out) }
    if let errorMessage { Self.member(#","errorMessage":"#, errorMessage, to: &out) }
    Self.member(#","eventId":"#, eventId, to: &out)
    if let httpStatus { Self.member(#","httpStatus":"#, .int(httpStatus), to: &out) }
    Self.member(#","operation":"#, operation, to: &out)
    Self.member(#","platform":"#, platform, to: &out)
    if let postId { Self.member(#","postId":"#, postId, to: &out) }
    if let postUrl { Self.member(#","postUrl":"#, postUrl, to: &out) }
    Self.member(#","replayed":"#, .bool(replayed), to: &out)
    Self.member(#","success":"#, .bool(success), to: &out)
    Self.member(#","timestamp":"#, RFC3339.string(from: timestamp), to: &out)
    out.append(UInt8(ascii: "}"))
    return out
  }

  private static func member(_ key: String, _ value: JSONValue, to out: inout [UInt8]) {
    out.append(contentsOf: key.utf8)
    value.write(to: &out)
  }

  /// Strings that need no escaping, nearly all of them, are copied whole instead of byte by byte.
  private static func member(_ key: String, _ value: String?, to out: inout [UInt8]) {
    out.append(contentsOf: key.utf8)
    guard var value else {
      out.append(contentsOf: "null".utf8)
      return
    }
    let verbatim = value.withUTF8 { bytes in
      !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }
    if verbatim {
      out.append(UInt8(ascii: "\""))
      out.append(contentsOf: value.utf8)
      out.append(UInt8(ascii: "\""))
    } else {
      JSONValue.writeString(value, to: &out)
    }
  }

  /// Microseconds are plenty for a duration and keep the JSON short.
  private var roundedDurationMs: Double { (durationMs * 1000).rounded() / 1000 }
}
