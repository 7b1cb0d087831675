#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Remembers publishes by `idempotencyKey` so that a retried call never publishes twice.
///
/// The same key with the same params answers the stored result (`replayed: true`) without calling the platform; the
/// same key while the first call runs is a conflict; the same key with other params is a mismatch. With a state
/// directory every change is appended to a journal and fsynced before the answer is sent, so a crash (even SIGKILL)
/// loses nothing that was answered; a publish that was running when the process died is answered on replay as
/// `outcome_unknown` rather than re-sent. Records live at least ``retention``.
final class IdempotencyStore: Sendable {
  enum Record: Sendable, Equatable {
    case running(fingerprint: String, since: Date)
    /// The answer sent, stored with `replayed: true`.
    case done(fingerprint: String, response: JSONValue, at: Date)
    /// The publish may have happened; replays answer this error again instead of re-sending.
    case unknown(fingerprint: String, error: JSONValue, at: Date)

    var fingerprint: String {
      switch self {
      case .running(let fingerprint, _), .done(let fingerprint, _, _), .unknown(let fingerprint, _, _): fingerprint
      }
    }

    var time: Date {
      switch self {
      case .running(_, let since): since
      case .done(_, _, let at), .unknown(_, _, let at): at
      }
    }
  }

  enum Decision: Sendable, Equatable {
    case proceed
    case replay(JSONValue)
    case replayError(JSONValue)
    case conflict
    case mismatch
  }

  static let retention: TimeInterval = 24 * 3600

  private let records = Mutex<[String: Record]>([:])
  private let journal: Journal?
  private let now: @Sendable () -> Date
  private let logger: Logger

  /// - Parameter directory: where the journal lives; nil keeps records in memory only.
  init(directory: String?, now: @escaping @Sendable () -> Date = { Date() }, logger: Logger) throws {
    self.now = now
    self.logger = logger
    guard let directory else {
      journal = nil
      return
    }
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = URL(fileURLWithPath: directory).appendingPathComponent("idempotency.jsonl").path
    var loaded = Journal.load(path: path)
    let cutoff = now().addingTimeInterval(-Self.retention)
    var interrupted = 0
    for (key, record) in loaded {
      if record.time < cutoff {
        loaded[key] = nil
      } else if case .running(let fingerprint, _) = record {
        interrupted += 1
        loaded[key] = .unknown(fingerprint: fingerprint, error: Self.interruptedError, at: now())
      }
    }
    journal = try Journal(path: path, compactedFrom: loaded)
    records.withLock { $0 = loaded }
    logger.info(
      "idempotency journal loaded",
      ["records": .int(loaded.count), "interruptedPublishes": .int(interrupted), "path": .string(path)])
  }

  static let interruptedError: JSONValue = [
    "code": -31008,
    "message": "Outcome unknown: the sidecar stopped while this publish was in flight; it may have been published, so it was not sent again",
    "data": ["kind": "outcome_unknown", "retryable": false, "attempts": 1],
  ]

  /// Claims `key` for a new publish, or says why not.
  func begin(key: String, fingerprint: String) throws -> Decision {
    let time = now()
    let decision = records.withLock { records -> Decision in
      if let existing = records[key], existing.time >= time.addingTimeInterval(-Self.retention) {
        guard existing.fingerprint == fingerprint else { return .mismatch }
        switch existing {
        case .running: return .conflict
        case .done(_, let response, _): return .replay(response)
        case .unknown(_, let error, _): return .replayError(error)
        }
      }
      records[key] = .running(fingerprint: fingerprint, since: time)
      return .proceed
    }
    if decision == .proceed {
      do {
        try journal?.append(["op": "start", "k": .string(key), "fp": .string(fingerprint), "t": .double(time.timeIntervalSince1970)])
      } catch {
        _ = records.withLock { $0.removeValue(forKey: key) }
        throw error
      }
    }
    return decision
  }

  /// Stores the answer; durable before this returns.
  func complete(key: String, fingerprint: String, response: JSONValue) throws {
    let time = now()
    records.withLock { $0[key] = .done(fingerprint: fingerprint, response: response, at: time) }
    try journal?.append(["op": "done", "k": .string(key), "fp": .string(fingerprint), "r": response, "t": .double(time.timeIntervalSince1970)])
    prune()
  }

  /// The publish may have happened: replays answer `error` again.
  func completeUnknown(key: String, fingerprint: String, error: JSONValue) throws {
    let time = now()
    records.withLock { $0[key] = .unknown(fingerprint: fingerprint, error: error, at: time) }
    try journal?.append(["op": "unknown", "k": .string(key), "fp": .string(fingerprint), "e": error, "t": .double(time.timeIntervalSince1970)])
  }

  /// The publish certainly did not happen (refused, rate limited, invalid): the key may be used again.
  func release(key: String) {
    _ = records.withLock { $0.removeValue(forKey: key) }
    try? journal?.append(["op": "clear", "k": .string(key)])
  }

  var count: Int { records.withLock { $0.count } }

  private func prune() {
    guard let journal, journal.appendsSinceCompaction > 10_000 else { return }
    let cutoff = now().addingTimeInterval(-Self.retention)
    let live = records.withLock { records -> [String: Record] in
      records = records.filter { $0.value.time >= cutoff }
      return records
    }
    do { try journal.compact(live) } catch { logger.warn("idempotency journal compaction failed", ["error": .string("\(error)")]) }
  }
}

/// An append-only JSON-lines file, fsynced on every append, compacted by atomic rename.
private final class Journal: Sendable {
  private let path: String
  private let state: Mutex<(fd: Int32, appends: Int)>

  init(path: String, compactedFrom records: [String: IdempotencyStore.Record]) throws {
    self.path = path
    state = Mutex((-1, 0))
    try compact(records)
  }

  var appendsSinceCompaction: Int { state.withLock { $0.appends } }

  func append(_ entry: JSONValue) throws {
    var line = entry.serialized()
    line.append(0x0A)
    try state.withLock { state in
      try Self.writeAll(state.fd, line)
      guard fsync(state.fd) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
      state.appends += 1
    }
  }

  /// Rewrites the journal with exactly `records` (write to a temp file, fsync, rename, fsync the directory).
  func compact(_ records: [String: IdempotencyStore.Record]) throws {
    let temp = path + ".tmp"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw JournalError.io("cannot create \(temp): errno \(errno)") }
    var bytes: [UInt8] = []
    for key in records.keys.sorted() {
      bytes.append(contentsOf: Self.entry(key: key, record: records[key]!).serialized())
      bytes.append(0x0A)
    }
    do {
      try Self.writeAll(fd, bytes)
      guard fsync(fd) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
    } catch {
      close(fd)
      throw error
    }
    close(fd)
    guard rename(temp, path) == 0 else { throw JournalError.io("cannot replace \(path): errno \(errno)") }
    let directory = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
    if directory >= 0 {
      fsync(directory)
      close(directory)
    }
    let appendFD = open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
    guard appendFD >= 0 else { throw JournalError.io("cannot open \(path): errno \(errno)") }
    let previous = state.withLock { state -> Int32 in
      defer { state = (appendFD, 0) }
      return state.fd
    }
    if previous >= 0 { close(previous) }
  }

  private static func entry(key: String, record: IdempotencyStore.Record) -> JSONValue {
    switch record {
    case .running(let fingerprint, let since):
      ["op": "start", "k": .string(key), "fp": .string(fingerprint), "t": .double(since.timeIntervalSince1970)]
    case .done(let fingerprint, let response, let at):
      ["op": "done", "k": .string(key), "fp": .string(fingerprint), "r": response, "t": .double(at.timeIntervalSince1970)]
    case .unknown(let fingerprint, let error, let at):
      ["op": "unknown", "k": .string(key), "fp": .string(fingerprint), "e": error, "t": .double(at.timeIntervalSince1970)]
    }
  }

  /// Replays the journal; a torn last line (crash mid-write) is skipped.
  static func load(path: String) -> [String: IdempotencyStore.Record] {
    guard let data = FileManager.default.contents(atPath: path) else { return [:] }
    var records: [String: IdempotencyStore.Record] = [:]
    for line in data.split(separator: 0x0A) {
      guard let entry = try? JSONParser.parse(line), let key = entry["k"]?.stringValue else { continue }
      let fingerprint = entry["fp"]?.stringValue ?? ""
      let time = Date(timeIntervalSince1970: entry["t"]?.doubleValue ?? 0)
      switch entry["op"]?.stringValue {
      case "start": records[key] = .running(fingerprint: fingerprint, since: time)
      case "done": records[key] = .done(fingerprint: fingerprint, response: entry["r"] ?? .null, at: time)
      case "unknown": records[key] = .unknown(fingerprint: fingerprint, error: entry["e"] ?? .null, at: time)
      case "clear": records[key] = nil
      default: continue
      }
    }
    return records
  }

  private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          throw JournalError.io("write failed: errno \(errno)")
        }
        offset += written
      }
    }
  }
}

enum JournalError: Error, CustomStringConvertible {
  case io(String)
  var description: String {
    switch self {
    case .io(let text): "idempotency journal: \(text)"
    }
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
    return String(fnv(0xCBF2_9CE4_8422_2325), radix: 16) + String(fnv(0x84222325CBF29CE4), radix: 16)
  }
}
