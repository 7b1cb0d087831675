#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarResilience

/// What the sidecars of one deployment share, so that a guarantee holds across processes and not just inside one:
/// idempotency records (a claim, a "sending" marker, the answer). Two implementations: ``LocalStateStore`` (memory,
/// or a journal in `stateDir` that several sidecars on one host may share) and ``RedisStateStore`` (`sharedState.url`).
///
/// A claim belongs to one sidecar while it runs. Another sidecar that meets it gets a conflict while the owner lives;
/// once the owner is gone (its lock or lease is gone), the claim is taken over: as a new publish if nothing was sent
/// yet, as an interrupted one if the owner had recorded "sending" (still marked sending, now by the taker, which looks
/// for the post before it may send: docs/platforms/reconciliation.md). A publish is never sent twice.
protocol SharedStateStore: Sendable {
  /// Claims `key` for a new publish, or says why not.
  func claim(key: String, fingerprint: String) async throws(SharedStateError) -> IdempotencyDecision
  /// Records that the publish request of `key` is about to go out; durable before this returns.
  func markSending(key: String) async throws(SharedStateError)
  /// Stores the answer; durable before this returns.
  func complete(key: String, fingerprint: String, response: JSONValue) async throws(SharedStateError)
  /// The publish may have happened: replays answer `error` again.
  func completeUnknown(key: String, fingerprint: String, error: JSONValue) async throws(SharedStateError)
  /// The publish certainly did not happen (refused, rate limited, invalid): the key may be used again.
  func release(key: String) async
  /// What `health` reports as `sharedState`.
  var health: JSONValue { get }
  /// Whether other sidecars can see what this store holds (false for memory).
  var isShared: Bool { get }
  /// Tells the other sidecars that something is closed to calls until `until`: a platform's open breaker
  /// (`breaker:<platform>`) or a rate-limit gate's block (`gate:<key>`), with `detail` saying why. Nil lifts it
  /// (`breaker/reset`).
  func shareBlock(_ name: String, until: Date?, detail: JSONValue) async
  /// The blocks any sidecar shared that still hold.
  func sharedBlocks() async -> [String: SharedBlock]
  /// Budgets and paces counted across the sidecars sharing the store; nil when it is not shared (memory).
  var counters: (any SharedCounters)? { get }
}

struct SharedBlock: Sendable, Equatable {
  var until: Date
  var detail: JSONValue

  /// The stored form: `{"until": <unix ms>, "detail": ...}`.
  var json: JSONValue { ["until": .int(Int(until.timeIntervalSince1970 * 1000)), "detail": detail] }

  init(until: Date, detail: JSONValue) {
    self.until = until
    self.detail = detail
  }

  init?(_ bytes: some Collection<UInt8>) {
    guard let value = try? JSONParser.parse(bytes), let milliseconds = value["until"]?.intValue else { return nil }
    self.init(until: Date(timeIntervalSince1970: Double(milliseconds) / 1000), detail: value["detail"] ?? .null)
  }
}

enum IdempotencyDecision: Sendable, Equatable {
  case proceed
  /// Taken over from a sidecar that died after recording "sending" for a claim it made at `since`: look for the post
  /// before sending (``CallContext/interruptedSince``).
  case interrupted(since: Date)
  case replay(JSONValue)
  case replayError(JSONValue)
  case conflict
  case mismatch
}

/// The store could not be read or written; nothing was decided.
struct SharedStateError: Error, CustomStringConvertible {
  let description: String
}

/// Answers that the stores keep for keys whose publish may have happened.
enum StoredErrors {
  /// A claim whose owner died after recording "sending".
  static let interrupted: JSONValue = [
    "code": .int(ErrorKind.outcomeUnknown.code),
    "message": .string(
      "Outcome unknown: the sidecar stopped while this publish was in flight; "
        + "it may have been published, so it was not sent again"),
    "data": ["kind": "outcome_unknown", "retryable": false, "attempts": 1],
  ]

  /// A journal record that failed its checksum.
  static let damaged: JSONValue = [
    "code": .int(ErrorKind.outcomeUnknown.code),
    "message": .string(
      "Outcome unknown: the idempotency record of this key was damaged on disk; "
        + "it may have been published, so it was not sent again"),
    "data": ["kind": "outcome_unknown", "retryable": false, "attempts": 0],
  ]
}

/// The store key of a publish: platform, operation, customer and the caller's key, unambiguous whatever the customer
/// id contains (customer `A` with key `B/C` and customer `A/B` with key `C` are two scopes). A `/` or `%` in the
/// customer id is percent-encoded, so the ids of earlier versions (no `/`) keep their keys.
enum IdempotencyScope {
  static func key(platform: String, operation: String, customerId: String, idempotencyKey: String) -> String {
    var customer = ""
    for character in customerId {
      switch character {
      case "%": customer += "%25"
      case "/": customer += "%2F"
      default: customer.append(character)
      }
    }
    return "\(platform)/\(operation)/\(customer)/\(idempotencyKey)"
  }
}

/// A stable fingerprint of a call's params (FNV-1a over the canonical JSON, twice with different seeds).
enum Fingerprint {
  static func of(_ value: JSONValue) -> String {
    let bytes = value.serialized()
    func fnv(_ seed: UInt64) -> UInt64 {
      var hash = seed
      for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
      }
      return hash
    }
    return String(fnv(0xCBF2_9CE4_8422_2325), radix: 16) + String(fnv(0x8422_2325_CBF2_9CE4), radix: 16)
  }
}
