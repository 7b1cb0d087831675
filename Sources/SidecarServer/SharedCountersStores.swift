#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarRedis
import SidecarResilience

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Shared counters in a state directory: one file, `counters.json` (`{name: {"end": <unix ms>, "n": <count>}}`), read
/// and replaced under `flock` on `counters.lock`, so a decision is atomic across the sidecars on the host. An entry
/// lapses at `end`: a budget's window end, or a pace slot's end (the earliest next pass). Ended entries are dropped at
/// each write, so the file holds only what is in force.
struct LocalCounters: SharedCounters {
  let directory: String
  /// Used when the file cannot be locked or written: the process then counts and paces on its own.
  let fallback = MemoryCounters()

  func spend(_ name: String, units: Int, limit: Int, windowEnd: Date) async -> Bool {
    let end = Self.milliseconds(windowEnd)
    let spent = update { entries, _ -> Bool in
      let used = entries[name].flatMap { $0.end == end ? $0.count : nil } ?? 0
      guard used + units <= limit else { return false }
      entries[name] = (end, used + units)
      return true
    }
    if let spent { return spent }
    return await fallback.spend(name, units: units, limit: limit, windowEnd: windowEnd)
  }

  func pass(_ name: String, interval: Duration, now: Date) async -> Date? {
    let taken = update { entries, nowMs -> Int64? in
      if let slot = entries[name], slot.end > nowMs { return slot.end }
      entries[name] = (nowMs + Int64(WireEncoding.milliseconds(interval)), 1)
      return nil
    }
    guard let taken else { return await fallback.pass(name, interval: interval, now: now) }
    return taken.map { Date(timeIntervalSince1970: Double($0) / 1000) }
  }

  private typealias Entries = [String: (end: Int64, count: Int)]

  /// Runs `decide` on the entries in force under the lock and writes them back; nil when the files failed.
  private func update<R>(_ decide: (inout Entries, _ nowMs: Int64) -> R) -> R? {
    let lock = open("\(directory)/counters.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard lock >= 0 else { return nil }
    defer { close(lock) }
    while flock(lock, LOCK_EX) != 0 {
      guard errno == EINTR else { return nil }
    }
    defer { flock(lock, LOCK_UN) }
    let nowMs = Self.milliseconds(Date())
    let path = "\(directory)/counters.json"
    var entries: Entries = [:]
    if let data = FileManager.default.contents(atPath: path), let stored = try? JSONParser.parse(data).objectValue {
      for (name, entry) in stored {
        guard let end = entry["end"]?.intValue, Int64(end) > nowMs, let count = entry["n"]?.intValue else { continue }
        entries[name] = (Int64(end), count)
      }
    }
    let result = decide(&entries, nowMs)
    let json = JSONValue.object(entries.mapValues { ["end": .int(Int($0.end)), "n": .int($0.count)] })
    let temp = "\(path).tmp"
    unlink(temp)
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return nil }
    let bytes = json.serialized()
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    guard written == bytes.count, rename(temp, path) == 0 else {
      unlink(temp)
      return nil
    }
    return result
  }

  private static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}

/// Shared counters in Redis: `count:<name>:<window end ms>` (a string counted with `INCRBY`, expiring at the window's
/// end, `PEXPIREAT`) and `pace:<name>` (`SET NX PX <interval>`: present while the slot is taken; its TTL says when
/// the next opens). Each decision is one Lua script, and times are Redis's own, so the hosts' clocks do not matter.
struct RedisCounters: SharedCounters {
  let client: RedisClient
  let prefix: String
  /// Used while Redis is unreachable: the process then counts and paces on its own.
  let fallback = MemoryCounters()

  func spend(_ name: String, units: Int, limit: Int, windowEnd: Date) async -> Bool {
    let end = Int64((windowEnd.timeIntervalSince1970 * 1000).rounded())
    guard
      let spent = try? await client.evaluate(
        Self.spend, keys: ["\(prefix)count:\(name):\(end)"], arguments: [String(units), String(limit), String(end)]
      ).integer
    else { return await fallback.spend(name, units: units, limit: limit, windowEnd: windowEnd) }
    return spent == 1
  }

  func pass(_ name: String, interval: Duration, now: Date) async -> Date? {
    guard
      let remaining = try? await client.evaluate(
        Self.pass, keys: ["\(prefix)pace:\(name)"], arguments: [String(WireEncoding.milliseconds(interval))]
      ).integer
    else { return await fallback.pass(name, interval: interval, now: now) }
    return remaining < 0 ? nil : now.addingTimeInterval(Double(max(remaining, 1)) / 1000)
  }

  /// KEYS[1] counter; ARGV units, limit, window end (unix ms). 1 = spent, 0 = the budget cannot afford it.
  static let spend = RedisScript(
    """
    local used = tonumber(redis.call('GET', KEYS[1]) or '0')
    if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
    redis.call('INCRBY', KEYS[1], ARGV[1])
    redis.call('PEXPIREAT', KEYS[1], ARGV[3])
    return 1
    """)

  /// KEYS[1] slot; ARGV interval ms. -1 = taken now, else milliseconds until the slot frees.
  static let pass = RedisScript(
    """
    if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -1 end
    return redis.call('PTTL', KEYS[1])
    """)
}
