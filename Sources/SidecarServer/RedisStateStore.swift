#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import SidecarRedis
import Synchronization

/// The shared state of sidecars on many hosts, in Redis or Valkey 6.2+ (`sharedState.url`).
///
/// Keys (all under `sharedState.keyPrefix`):
/// - `idem:<scope>`: a hash `{st: claimed|sending|done|unknown, fp, o: owner, body: answer or error JSON}`, kept
///   ``LocalStateStore/retention`` after its last change;
/// - `owner:<id>`: present while sidecar `id` lives: set with a ``leaseTTL`` expiry and renewed every ``renewEvery``.
/// Every decision is one Lua script (atomic on the server), never a read followed by a write. A claim whose owner key
/// has expired belongs to a dead sidecar: taken over if it was only claimed, answered `outcome_unknown` for ever
/// after if it was sending. Writes that fail after a publish (Redis down) are retried until they land.
final class RedisStateStore: SharedStateStore, RefreshLeases {
  private let client: RedisClient
  private let prefix: String
  let owner: String
  private let leaseTTL: Duration
  private let logger: Logger
  /// Keys this sidecar is running now: a claim of ours that is not among them is left over from a call whose store
  /// write failed, and may be taken over like a dead sidecar's.
  private let running = Mutex<Set<String>>([])
  /// Outcomes (done, unknown, release) that could not be written yet, in order.
  private let unwritten = Mutex<[[String]]>([])
  private let renewal = Mutex<Task<Void, Never>?>(nil)

  init(url: String, keyPrefix: String, leaseTTL: Duration = .seconds(5), logger: Logger) throws(RedisURLError) {
    let configuration = try RedisConfiguration(url: url)
    let endpoint = configuration.endpoint
    client = RedisClient(configuration) { [logger] connected, reason in
      if connected {
        logger.info("shared state store connected", ["store": "redis", "endpoint": .string(endpoint)])
      } else {
        logger.error(
          "shared state store unreachable: publishes with an idempotencyKey are refused until it is back",
          ["store": "redis", "endpoint": .string(endpoint), "reason": JSONValue(reason)])
      }
    }
    prefix = keyPrefix
    owner = String(UInt64.random(in: .min ... .max), radix: 16) + String(UInt64.random(in: .min ... .max), radix: 16)
    self.leaseTTL = leaseTTL
    self.logger = logger
    let every = leaseTTL / 5
    let renewing = Task { [weak self] in
      while !Task.isCancelled {
        await self?.renew()
        try? await Task.sleep(for: every)
      }
    }
    renewal.withLock { $0 = renewing }
  }

  deinit {
    renewal.withLock { $0?.cancel() }
    client.close()
  }

  var health: JSONValue {
    ["store": "redis", "reachable": .bool(client.isConnected), "endpoint": .string(client.configuration.endpoint)]
  }

  private var leaseMilliseconds: String { String(WireEncoding.milliseconds(leaseTTL)) }
  private func recordKey(_ key: String) -> String { prefix + "idem:" + key }
  private static let retentionMs = String(Int(LocalStateStore.retention * 1000))

  /// Keeps this sidecar's owner key alive and writes outcomes that failed earlier.
  private func renew() async {
    _ = try? await client.send("SET", prefix + "owner:" + owner, "1", "PX", leaseMilliseconds)
    while let next = unwritten.withLock({ $0.first }) {
      guard (try? await client.evaluate(Self.finish, keys: [next[0]], arguments: Array(next.dropFirst()))) != nil else {
        return
      }
      unwritten.withLock { _ = $0.removeFirst() }
    }
  }

  func claim(key: String, fingerprint: String) async throws(SharedStateError) -> IdempotencyDecision {
    guard running.withLock({ $0.insert(key).inserted }) else { return .conflict }
    let reply: RESPValue
    do {
      reply = try await client.evaluate(
        Self.claim, keys: [recordKey(key)],
        arguments: [
          fingerprint, owner, prefix + "owner:", leaseMilliseconds, Self.retentionMs,
          String(decoding: StoredErrors.interrupted.serialized(), as: UTF8.self),
          String(Int(Date().timeIntervalSince1970 * 1000)),
        ])
    } catch {
      _ = running.withLock { $0.remove(key) }
      throw SharedStateError(description: error.description)
    }
    let parts = reply.elements ?? []
    let decision: IdempotencyDecision
    switch parts.first?.string {
    case "proceed": return .proceed
    case "interrupted":
      // Ours now, still marked sending: like a new claim, it stays in `running` until its outcome is written.
      let milliseconds = parts.dropFirst().first?.string.flatMap { Double($0) } ?? 0
      return .interrupted(since: Date(timeIntervalSince1970: milliseconds / 1000))
    case "conflict": decision = .conflict
    case "mismatch": decision = .mismatch
    case "replay": decision = .replay(Self.json(parts.dropFirst().first))
    case "error": decision = .replayError(Self.json(parts.dropFirst().first))
    default:
      _ = running.withLock { $0.remove(key) }
      throw SharedStateError(description: "the claim script answered \(reply)")
    }
    _ = running.withLock { $0.remove(key) }
    return decision
  }

  func markSending(key: String) async throws(SharedStateError) {
    let reply: RESPValue
    do {
      reply = try await client.evaluate(Self.markSending, keys: [recordKey(key)], arguments: [owner])
    } catch {
      throw SharedStateError(description: error.description)
    }
    // 0: the claim is no longer ours (our owner key expired and another sidecar took it over): do not send.
    guard reply.integer == 1 else { throw SharedStateError(description: "the claim of this key was lost") }
  }

  func complete(key: String, fingerprint: String, response: JSONValue) async throws(SharedStateError) {
    try await finish(key, ["done", fingerprint, String(decoding: response.serialized(), as: UTF8.self)])
  }

  func completeUnknown(key: String, fingerprint: String, error: JSONValue) async throws(SharedStateError) {
    try await finish(key, ["unknown", fingerprint, String(decoding: error.serialized(), as: UTF8.self)])
  }

  func release(key: String) async {
    try? await finish(key, ["release", "", ""])
  }

  /// Writes an outcome, or queues it for the renewal loop (which retries until Redis is back) and reports the failure.
  private func finish(_ key: String, _ outcome: [String]) async throws(SharedStateError) {
    defer { _ = running.withLock { $0.remove(key) } }
    let arguments = outcome + [owner, Self.retentionMs]
    do {
      _ = try await client.evaluate(Self.finish, keys: [recordKey(key)], arguments: arguments)
    } catch {
      unwritten.withLock { $0.append([recordKey(key)] + arguments) }
      throw SharedStateError(description: "\(error); the outcome will be written when the store is back")
    }
  }

  private static func json(_ value: RESPValue?) -> JSONValue {
    guard case .bulk(let bytes)? = value, let parsed = try? JSONParser.parse(bytes) else { return .null }
    return parsed
  }

  // MARK: Breakers and gates

  var isShared: Bool { true }

  var counters: (any SharedCounters)? { RedisCounters(client: client, prefix: prefix) }

  /// One hash, `blocks`: name → `{"until", "detail"}`; fields that ended are removed by whoever reads them.
  func shareBlock(_ name: String, until: Date?, detail: JSONValue) async {
    guard let until else {
      _ = try? await client.send("HDEL", prefix + "blocks", name)
      return
    }
    let record = String(decoding: SharedBlock(until: until, detail: detail).json.serialized(), as: UTF8.self)
    _ = try? await client.send("HSET", prefix + "blocks", name, record)
  }

  func sharedBlocks() async -> [String: SharedBlock] {
    guard let fields = try? await client.send("HGETALL", prefix + "blocks").elements else { return [:] }
    let now = Date()
    var blocks: [String: SharedBlock] = [:]
    var ended: [String] = []
    for index in stride(from: 0, to: fields.count - 1, by: 2) {
      guard let name = fields[index].string, case .bulk(let bytes) = fields[index + 1], let block = SharedBlock(bytes)
      else { continue }
      if block.until > now { blocks[name] = block } else { ended.append(name) }
    }
    if !ended.isEmpty { _ = try? await client.send(["HDEL", prefix + "blocks"] + ended) }
    return blocks
  }

  // MARK: Refresh leases

  /// `refresh:<hash of the credential>` set with `SET NX PX` to a random token, polled until free; released only by
  /// its holder (compare and delete), and expiring on its own if the holder dies.
  func acquire(_ key: CredentialKey) async -> RefreshLease? {
    let name =
      prefix + "refresh:"
      + Fingerprint.of([.string(key.platform.rawValue), .string(key.credentialRef), .string(key.customerId)])
    let token = String(UInt64.random(in: .min ... .max), radix: 16)
    let deadline = ContinuousClock.now + LocalStateStore.refreshLeaseWait
    while ContinuousClock.now < deadline {
      do {
        if try await client.send("SET", name, token, "NX", "PX", String(Self.refreshLeaseTTL)) != .null {
          return RefreshLease { [client] in
            _ = try? await client.evaluate(Self.releaseLease, keys: [name], arguments: [token])
          }
        }
      } catch {
        return nil
      }
      guard (try? await Task.sleep(for: .milliseconds(20))) != nil else { return nil }
    }
    return nil
  }

  /// Milliseconds before a dead holder's refresh lease lapses.
  static let refreshLeaseTTL = 30_000

  static let releaseLease = RedisScript(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")

  // MARK: Scripts

  /// KEYS[1] record; ARGV fingerprint, owner, owner-key prefix, lease ms, retention ms, interrupted error JSON, now
  /// (unix ms). A dead owner's "sending" claim becomes ours, still sending, answered `interrupted` with its claim time
  /// (records written before claim times were kept answer the interrupted error, as they did).
  static let claim = RedisScript(
    """
    redis.call('SET', ARGV[3] .. ARGV[2], '1', 'PX', ARGV[4])
    local r = redis.call('HMGET', KEYS[1], 'st', 'fp', 'o', 'body', 't')
    local function take()
      redis.call('HSET', KEYS[1], 'st', 'claimed', 'fp', ARGV[1], 'o', ARGV[2], 'body', '', 't', ARGV[7])
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
      return {'proceed'}
    end
    if not r[1] then return take() end
    if r[2] ~= ARGV[1] then return {'mismatch'} end
    if r[1] == 'done' then return {'replay', r[4]} end
    if r[1] == 'unknown' then return {'error', r[4]} end
    if r[3] ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. r[3]) == 1 then return {'conflict'} end
    if r[1] == 'sending' then
      if not r[5] then
        redis.call('HSET', KEYS[1], 'st', 'unknown', 'body', ARGV[6])
        return {'error', ARGV[6]}
      end
      redis.call('HSET', KEYS[1], 'o', ARGV[2])
      return {'interrupted', r[5]}
    end
    return take()
    """)

  /// KEYS[1] record; ARGV owner. 1 if the claim is still ours and now marked sending (a taken-over interrupted claim
  /// already is).
  static let markSending = RedisScript(
    """
    local r = redis.call('HMGET', KEYS[1], 'st', 'o')
    if (r[1] ~= 'claimed' and r[1] ~= 'sending') or r[2] ~= ARGV[1] then return 0 end
    redis.call('HSET', KEYS[1], 'st', 'sending')
    return 1
    """)

  /// KEYS[1] record; ARGV outcome (done|unknown|release), fingerprint, body, owner, retention ms.
  static let finish = RedisScript(
    """
    if ARGV[1] == 'release' then
      if redis.call('HGET', KEYS[1], 'o') == ARGV[4] then redis.call('DEL', KEYS[1]) end
      return 1
    end
    redis.call('HSET', KEYS[1], 'st', ARGV[1], 'fp', ARGV[2], 'body', ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return 1
    """)
}
