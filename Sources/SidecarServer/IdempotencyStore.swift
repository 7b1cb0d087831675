import Foundation
import SidecarJSON
import SidecarLogging
import Synchronization

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
    /// The journal line for this key failed its checksum: whatever it said, the publish may have happened.
    case damaged(at: Date)

    var fingerprint: String {
      switch self {
      case .running(let fingerprint, _), .done(let fingerprint, _, _), .unknown(let fingerprint, _, _): fingerprint
      case .damaged: ""
      }
    }

    var time: Date {
      switch self {
      case .running(_, let since): since
      case .done(_, _, let at), .unknown(_, _, let at), .damaged(let at): at
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
  /// Journal lines that failed their checksum when the journal was loaded (reported by `health`).
  let damagedRecords: Int
  private let now: @Sendable () -> Date
  private let logger: Logger

  /// - Parameter directory: where the journal lives; nil keeps records in memory only.
  init(directory: String?, now: @escaping @Sendable () -> Date = { Date() }, logger: Logger) throws {
    self.now = now
    self.logger = logger
    guard let directory else {
      journal = nil
      damagedRecords = 0
      return
    }
    // Private: the journal holds what was published for whom.
    try FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let path = (directory as NSString).appendingPathComponent("idempotency.jsonl")
    let contents = Journal.load(path: path, now: now())
    var loaded = contents.records
    damagedRecords = contents.damaged
    if contents.damaged > 0 {
      // The damaged file is kept as it was, for a person to look at; the rewrite below marks its keys.
      let aside = try Journal.keepAside(path: path, now: now())
      logger.error(
        "idempotency journal damaged: records failed their checksum; their keys answer outcome_unknown instead of publishing again",
        ["damagedRecords": .int(contents.damaged), "unattributed": .int(contents.unattributed), "keptAt": .string(aside)])
    }
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

  static let damagedError: JSONValue = [
    "code": -31008,
    "message": "Outcome unknown: the idempotency record of this key was damaged on disk; it may have been published, so it was not sent again",
    "data": ["kind": "outcome_unknown", "retryable": false, "attempts": 0],
  ]

  /// Claims `key` for a new publish, or says why not.
  func begin(key: String, fingerprint: String) throws -> Decision {
    let time = now()
    let decision = records.withLock { records -> Decision in
      if let existing = records[key], existing.time >= time.addingTimeInterval(-Self.retention) {
        if case .damaged = existing { return .replayError(Self.damagedError) }
        guard existing.fingerprint == fingerprint else { return .mismatch }
        switch existing {
        case .running: return .conflict
        case .done(_, let response, _): return .replay(response)
        case .unknown(_, let error, _): return .replayError(error)
        case .damaged: return .replayError(Self.damagedError)
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

/// An append-only file of checksummed JSON lines (`<crc32 hex> <json>`), fsynced on every append, compacted by
/// atomic rename.
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
    let line = Self.line(entry)
    try state.withLock { state in
      try Self.writeAll(state.fd, line)
      guard fsync(state.fd) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
      state.appends += 1
    }
  }

  /// Rewrites the journal with exactly `records` (write to a temp file, fsync, rename, fsync the directory).
  func compact(_ records: [String: IdempotencyStore.Record]) throws {
    let temp = path + ".tmp"
    // A left-over temp file (or anything planted there) is removed, never followed: O_EXCL | O_NOFOLLOW.
    unlink(temp)
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw JournalError.io("cannot create \(temp): errno \(errno)") }
    var bytes: [UInt8] = []
    for key in records.keys.sorted() {
      bytes.append(contentsOf: Self.line(Self.entry(key: key, record: records[key]!)))
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
    let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
    if directory >= 0 {
      fsync(directory)
      close(directory)
    }
    let appendFD = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
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
    case .damaged(let at):
      ["op": "damaged", "k": .string(key), "t": .double(at.timeIntervalSince1970)]
    }
  }

  /// One journal line: the CRC-32 of the JSON in hex, a space, the JSON, a newline.
  static func line(_ entry: JSONValue) -> [UInt8] {
    let json = entry.serialized()
    var line = Array(CRC32.hex(CRC32.of(json)).utf8)
    line.append(0x20)
    line.append(contentsOf: json)
    line.append(0x0A)
    return line
  }

  struct Contents {
    var records: [String: IdempotencyStore.Record] = [:]
    /// Complete lines that failed their checksum or did not parse.
    var damaged = 0
    /// Damaged lines whose key could not be read either.
    var unattributed = 0
  }

  /// Replays the journal. A torn last line (crash mid-write, never acknowledged) is skipped; a complete line that
  /// fails its checksum marks its key damaged (if the key can still be read).
  static func load(path: String, now: Date = Date()) -> Contents {
    guard let data = FileManager.default.contents(atPath: path) else { return Contents() }
    var contents = Contents()
    let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
    for (index, line) in lines.enumerated() where !line.isEmpty {
      let complete = index < lines.count - 1
      guard let entry = verified(line), let key = entry["k"]?.stringValue else {
        guard complete else { continue }
        contents.damaged += 1
        if let key = damagedKey(line) { contents.records[key] = .damaged(at: now) } else { contents.unattributed += 1 }
        continue
      }
      if case .damaged = contents.records[key] { continue }
      let fingerprint = entry["fp"]?.stringValue ?? ""
      let time = Date(timeIntervalSince1970: entry["t"]?.doubleValue ?? 0)
      switch entry["op"]?.stringValue {
      case "start": contents.records[key] = .running(fingerprint: fingerprint, since: time)
      case "done": contents.records[key] = .done(fingerprint: fingerprint, response: entry["r"] ?? .null, at: time)
      case "unknown": contents.records[key] = .unknown(fingerprint: fingerprint, error: entry["e"] ?? .null, at: time)
      case "damaged": contents.records[key] = .damaged(at: time)
      case "clear": contents.records[key] = nil
      default: continue
      }
    }
    return contents
  }

  /// The entry of a line whose checksum matches; nil for a damaged line. Lines of journals written before checksums
  /// (plain JSON) are read as they are.
  private static func verified(_ line: Data.SubSequence) -> JSONValue? {
    let bytes = Array(line)
    if bytes.first == 0x7B { return try? JSONParser.parse(bytes) }
    guard bytes.count > 9, bytes[8] == 0x20, let expected = UInt32(String(decoding: bytes[0..<8], as: UTF8.self), radix: 16)
    else { return nil }
    let json = Array(bytes[9...])
    guard CRC32.of(json) == expected else { return nil }
    return try? JSONParser.parse(json)
  }

  /// The key of a damaged line, when its `"k"` member still reads as a string.
  private static func damagedKey(_ line: Data.SubSequence) -> String? {
    let bytes = Array(line)
    let start = bytes.firstIndex(of: 0x7B) ?? bytes.startIndex
    if let entry = try? JSONParser.parse(Array(bytes[start...])), let key = entry["k"]?.stringValue { return key }
    let marker = Array(#""k":""#.utf8)
    guard let at = (0...max(0, bytes.count - marker.count)).first(where: { bytes[$0..<min(bytes.count, $0 + marker.count)].elementsEqual(marker) })
    else { return nil }
    var end = at + marker.count
    while end < bytes.count, bytes[end] != 0x22 {
      end += bytes[end] == 0x5C ? 2 : 1
    }
    guard end < bytes.count, let key = try? JSONParser.parse(Array(bytes[(at + marker.count - 1)...end])).stringValue else {
      return nil
    }
    return key
  }

  /// Copies a damaged journal to `<path>.damaged-<unix time>` (never over an existing file) and returns that path.
  static func keepAside(path: String, now: Date) throws -> String {
    let aside = "\(path).damaged-\(Int(now.timeIntervalSince1970))"
    guard let data = FileManager.default.contents(atPath: path) else { throw JournalError.io("cannot read \(path)") }
    let fd = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw JournalError.io("cannot keep the damaged journal at \(aside): errno \(errno)") }
    defer { close(fd) }
    try writeAll(fd, Array(data))
    guard fsync(fd) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
    return aside
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

/// CRC-32 (IEEE 802.3, as zlib computes it): detects the flipped bits and torn bytes of a damaged journal line.
enum CRC32 {
  private static let table: [UInt32] = (0..<256).map { index in
    var crc = UInt32(index)
    for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    return crc
  }

  static func of(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
  }

  static func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
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
    return String(fnv(0xCBF2_9CE4_8422_2325), radix: 16) + String(fnv(0x84222325CBF29CE4), radix: 16)
  }
}
