#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The shared state of the sidecars of one host: in memory, or in a journal in `stateDir` that several sidecars may
/// share.
///
/// Every change is appended to `idempotency.jsonl` as one checksummed line and fsynced before the answer is sent, so a
/// crash (even SIGKILL) loses nothing that was answered. Sidecars sharing the directory take `idempotency.lock`
/// (`flock`, released by the kernel when a holder dies) around each read-decide-append, and read what the others
/// appended before deciding, so a key is claimed once across them. Each sidecar holds `owners/<id>.lock` while it
/// lives: a claim whose owner's lock can be taken belongs to a dead sidecar. Nobody rewrites the journal at start-up;
/// compaction (rare: past 10,000 lines by default) rewrites it under the lock from everything everyone wrote, and the
/// others notice the new file and reload it. Records live at least ``retention``.
final class LocalStateStore: SharedStateStore {
  enum Record: Sendable, Equatable {
    /// Claimed by sidecar `owner`; `sending` once its publish request may have gone out.
    case claimed(fingerprint: String, owner: String, sending: Bool, since: Date)
    /// The answer sent, stored with `replayed: true`.
    case done(fingerprint: String, response: JSONValue, at: Date)
    /// The publish may have happened; replays answer this error again instead of re-sending.
    case unknown(fingerprint: String, error: JSONValue, at: Date)
    /// The journal line for this key failed its checksum: whatever it said, the publish may have happened.
    case damaged(at: Date)

    var fingerprint: String {
      switch self {
      case .claimed(let fingerprint, _, _, _), .done(let fingerprint, _, _), .unknown(let fingerprint, _, _):
        fingerprint
      case .damaged: ""
      }
    }

    var time: Date {
      switch self {
      case .claimed(_, _, _, let since): since
      case .done(_, _, let at), .unknown(_, _, let at), .damaged(let at): at
      }
    }
  }

  static let retention: TimeInterval = 24 * 3600

  private let records = Mutex<[String: Record]>([:])
  /// Keys this sidecar is running now: a claim of ours that is not among them is left over from a call whose journal
  /// write failed, and is treated like a dead sidecar's.
  private let running = Mutex<Set<String>>([])
  private let journal: Journal?
  private let owners: Owners?
  /// This sidecar's id in the claims it writes.
  let owner: String
  private let now: @Sendable () -> Date
  private let logger: Logger
  /// The journal is compacted when it has more lines than this and twice as many as there are records.
  private let compactAfterLines: Int
  /// Keys whose journal record failed its checksum, plus damaged lines whose key could not be read.
  let damagedRecords: Int

  /// - Parameter directory: where the journal lives; nil keeps records in memory only.
  init(
    directory: String?, now: @escaping @Sendable () -> Date = { Date() }, compactAfterLines: Int = 10_000,
    logger: Logger
  ) throws {
    self.now = now
    self.compactAfterLines = compactAfterLines
    self.logger = logger
    owner = Owners.newID()
    guard let directory else {
      journal = nil
      owners = nil
      damagedRecords = 0
      return
    }
    // Private: the journal holds what was published for whom.
    try FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    owners = try Owners(directory: directory + "/owners", me: owner)
    let journal = try Journal(directory: directory)
    self.journal = journal
    let path = journal.path
    let (loaded, unattributed) = try journal.locked { journal -> ([String: Record], Int) in
      let load = try journal.catchUp(into: [:], now: now())
      if load.damaged > 0 {
        // The damaged file is kept as it was, for a person to look at; the rewrite marks its keys damaged.
        let aside = try journal.keepAside(now: now())
        try journal.compact(load.records)
        logger.error(
          "idempotency journal damaged: records failed their checksum; "
            + "their keys answer outcome_unknown instead of publishing again",
          ["damagedRecords": .int(load.damaged), "unattributed": .int(load.unattributed), "keptAt": .string(aside)])
      }
      return (load.records, load.unattributed)
    }
    damagedRecords = loaded.values.count(where: { if case .damaged = $0 { true } else { false } }) + unattributed
    records.withLock { $0 = loaded }
    let claims = loaded.values.count(where: { if case .claimed = $0 { true } else { false } })
    logger.info(
      "idempotency journal loaded",
      ["records": .int(loaded.count), "claimsOfRunningOrStoppedSidecars": .int(claims), "path": .string(path)])
  }

  var health: JSONValue {
    ["store": journal == nil ? "memory" : "local", "reachable": true, "damagedRecords": .int(damagedRecords)]
  }

  func claim(key: String, fingerprint: String) throws(SharedStateError) -> IdempotencyDecision {
    let time = now()
    // Marked running in the same critical section that decides, so no second claim in this process slips between.
    var claimed = false
    func take(_ entry: JSONValue) -> (IdempotencyDecision, [JSONValue]) {
      claimed = running.withLock { $0.insert(key).inserted }
      return (.proceed, [entry])
    }
    do throws(SharedStateError) {
      return try transaction { records -> (IdempotencyDecision, [JSONValue]) in
        let claim: JSONValue = [
          "op": "start", "k": .string(key), "fp": .string(fingerprint), "o": .string(owner),
          "t": .double(time.timeIntervalSince1970),
        ]
        guard let existing = records[key] else { return take(claim) }
        if case .damaged = existing { return (.replayError(StoredErrors.damaged), []) }
        if case .claimed(_, let holder, let sending, _) = existing {
          guard existing.fingerprint == fingerprint else { return (.mismatch, []) }
          let ours = holder == owner && running.withLock { $0.contains(key) }
          if ours || (holder != owner && owners?.isAlive(holder) == true) { return (.conflict, []) }
          // Its sidecar is gone. Not sending yet: nothing went out, take it over. Sending: it may have been published;
          // taken over still marked sending (and dated from the first claim), so whoever holds it looks first.
          guard sending else { return take(claim) }
          let (_, entries) = take([
            "op": "start", "k": .string(key), "fp": .string(fingerprint), "o": .string(owner), "s": true,
            "t": .double(existing.time.timeIntervalSince1970),
          ])
          return (.interrupted(since: existing.time), entries)
        }
        guard existing.time >= time.addingTimeInterval(-Self.retention) else { return take(claim) }
        guard existing.fingerprint == fingerprint else { return (.mismatch, []) }
        switch existing {
        case .done(_, let response, _): return (.replay(response), [])
        case .unknown(_, let error, _): return (.replayError(error), [])
        case .claimed, .damaged: return (.conflict, [])
        }
      }
    } catch {
      if claimed { _ = running.withLock { $0.remove(key) } }
      throw error
    }
  }

  func markSending(key: String) throws(SharedStateError) {
    try transaction { _ in
      ((), [["op": "sending", "k": .string(key), "o": .string(owner), "t": .double(now().timeIntervalSince1970)]])
    }
  }

  func complete(key: String, fingerprint: String, response: JSONValue) throws(SharedStateError) {
    let entry: JSONValue = [
      "op": "done", "k": .string(key), "fp": .string(fingerprint), "r": response,
      "t": .double(now().timeIntervalSince1970),
    ]
    defer { _ = running.withLock { $0.remove(key) } }
    try transaction { _ in ((), [entry]) }
  }

  func completeUnknown(key: String, fingerprint: String, error: JSONValue) throws(SharedStateError) {
    let entry: JSONValue = [
      "op": "unknown", "k": .string(key), "fp": .string(fingerprint), "e": error,
      "t": .double(now().timeIntervalSince1970),
    ]
    defer { _ = running.withLock { $0.remove(key) } }
    try transaction { _ in ((), [entry]) }
  }

  func release(key: String) {
    defer { _ = running.withLock { $0.remove(key) } }
    do {
      try transaction { _ in ((), [["op": "clear", "k": .string(key)]]) }
    } catch {
      logger.warn("idempotency journal: a freed key could not be recorded", ["error": .string(error.description)])
    }
  }

  var count: Int { records.withLock { $0.count } }

  /// Reads what other sidecars appended, decides, appends the decision's entries and applies them: all under the
  /// process's mutex and the directory's lock, so no other thread or sidecar decides on stale records.
  private func transaction<R: Sendable>(_ decide: (inout [String: Record]) -> (R, [JSONValue])) throws(SharedStateError)
    -> R
  {
    let time = now()
    do {
      return try records.withLock { records -> R in
        guard let journal else {
          let (result, entries) = decide(&records)
          for entry in entries { Journal.apply(entry, to: &records, now: time) }
          return result
        }
        return try journal.locked { journal -> R in
          records = try journal.catchUp(into: records, now: time).records
          let (result, entries) = decide(&records)
          guard !entries.isEmpty else { return result }
          try journal.append(entries)
          for entry in entries { Journal.apply(entry, to: &records, now: time) }
          if journal.lines > compactAfterLines && journal.lines > 2 * records.count {
            let cutoff = time.addingTimeInterval(-Self.retention)
            records = records.filter {
              if case .claimed = $0.value { return true }
              return $0.value.time >= cutoff
            }
            do { try journal.compact(records) } catch {
              logger.warn("idempotency journal compaction failed", ["error": .string("\(error)")])
            }
          }
          return result
        }
      }
    } catch let error as SharedStateError {
      throw error
    } catch {
      throw SharedStateError(description: "idempotency journal: \(error)")
    }
  }
}

extension LocalStateStore {
  var isShared: Bool { owners != nil }

  var counters: (any SharedCounters)? {
    owners.map { LocalCounters(directory: String($0.directory.dropLast("/owners".count))) }
  }

  private var blockDirectory: String? { owners.map { String($0.directory.dropLast("owners".count)) + "blocks" } }

  /// `blocks/<hash of the name>`: `{"name", "until", "detail"}`, replaced atomically (a temp file opened
  /// O_EXCL|O_NOFOLLOW, then rename); removed by whoever reads it after it ended.
  func shareBlock(_ name: String, until: Date?, detail: JSONValue) async {
    guard let directory = blockDirectory else { return }
    let path = "\(directory)/\(Fingerprint.of(.string(name)))"
    guard let until else {
      unlink(path)
      return
    }
    try? FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    var record = SharedBlock(until: until, detail: detail).json.objectValue ?? [:]
    record["name"] = .string(name)
    let temp = "\(directory)/.tmp-\(owner)"
    unlink(temp)
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return }
    let bytes = JSONValue.object(record).serialized()
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    if written == bytes.count { rename(temp, path) } else { unlink(temp) }
  }

  func sharedBlocks() async -> [String: SharedBlock] {
    guard let directory = blockDirectory,
      let names = try? FileManager.default.contentsOfDirectory(atPath: directory)
    else { return [:] }
    let now = Date()
    var blocks: [String: SharedBlock] = [:]
    for file in names where !file.hasPrefix(".") {
      guard let data = FileManager.default.contents(atPath: "\(directory)/\(file)"), let block = SharedBlock(data),
        let name = (try? JSONParser.parse(data))?["name"]?.stringValue
      else { continue }
      if block.until > now { blocks[name] = block } else { unlink("\(directory)/\(file)") }
    }
    return blocks
  }
}

extension LocalStateStore: RefreshLeases {
  /// `leases/<hash of the credential>.lock`, held with `flock` (polled, so no thread of the pool blocks on it; the
  /// kernel hands it on when a holder dies). Memory-only stores share nothing and give no lease.
  func acquire(_ key: CredentialKey) async -> RefreshLease? {
    guard let owners else { return nil }
    let directory = owners.directory.dropLast("owners".count) + "leases"
    try? FileManager.default.createDirectory(
      atPath: String(directory), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let name = Fingerprint.of([.string(key.platform.rawValue), .string(key.credentialRef), .string(key.customerId)])
    let fd = open("\(directory)/\(name).lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return nil }
    let deadline = ContinuousClock.now + Self.refreshLeaseWait
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(20))) != nil else {
        close(fd)
        return nil
      }
    }
    return RefreshLease { close(fd) }
  }

  /// How long a refresh waits for another sidecar's before going ahead without the lease.
  static let refreshLeaseWait: Duration = .seconds(15)
}

/// Liveness of the sidecars sharing a state directory: each holds an exclusive `flock` on `owners/<id>.lock` for
/// its whole life; the kernel drops it when the process dies, however it dies.
private final class Owners: Sendable {
  let directory: String
  private let mine: String
  private let held: Int32

  init(directory: String, me: String) throws {
    self.directory = directory
    mine = "\(directory)/\(me).lock"
    try FileManager.default.createDirectory(
      atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    // Locked under a temporary name, then renamed: a sweeping sidecar never finds it unlocked and takes it for dead.
    let temporary = "\(directory)/.\(me).new"
    let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0, rename(temporary, mine) == 0 else {
      let failure = errno
      if fd >= 0 {
        close(fd)
        unlink(temporary)
      }
      throw SharedStateError(description: "cannot create the owner lock in \(directory): errno \(failure)")
    }
    held = fd
    // Sweep the lock files of sidecars that are gone and never got checked.
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".lock") {
      _ = isAlive(String(name.dropLast(5)))
    }
  }

  deinit {
    unlink(mine)
    close(held)
  }

  static func newID() -> String {
    var generator = SystemRandomNumberGenerator()
    return String(generator.next() as UInt64, radix: 16) + String(generator.next() as UInt64, radix: 16)
  }

  /// Whether sidecar `id` still holds its lock. Ids come from the journal: anything but hex digits is nobody.
  func isAlive(_ id: String) -> Bool {
    guard !id.isEmpty, id.count <= 32, id.allSatisfy(\.isHexDigit) else { return false }
    let path = "\(directory)/\(id).lock"
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return true }
    unlink(path)
    return false
  }
}

/// `idempotency.jsonl`: checksummed JSON lines (`<crc32 hex> <json>`), appended and fsynced under `idempotency.lock`.
/// Only used inside ``locked(_:)``.
private final class Journal: @unchecked Sendable {
  let path: String
  private let lockFD: Int32
  private var fd: Int32 = -1
  private var inode: UInt64 = 0
  /// Bytes of the file already read and applied.
  private var offset = 0
  /// Lines in the file (compaction is due when they far outnumber the records).
  private(set) var lines = 0

  init(directory: String) throws {
    path = directory + "/idempotency.jsonl"
    lockFD = open(directory + "/idempotency.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard lockFD >= 0 else { throw JournalError.io("cannot open \(directory)/idempotency.lock: errno \(errno)") }
  }

  deinit {
    if fd >= 0 { close(fd) }
    close(lockFD)
  }

  /// Runs `body` holding the directory's lock (callers also hold the store's mutex).
  func locked<R>(_ body: (Journal) throws -> R) throws -> R {
    while flock(lockFD, LOCK_EX) != 0 {
      guard errno == EINTR else { throw JournalError.io("cannot lock the journal: errno \(errno)") }
    }
    defer { flock(lockFD, LOCK_UN) }
    return try body(self)
  }

  struct Load {
    var records: [String: LocalStateStore.Record]
    /// Complete lines that failed their checksum or did not parse.
    var damaged = 0
    /// Damaged lines whose key could not be read either.
    var unattributed = 0
  }

  /// Applies what was appended since the last read (everything, if the file was replaced by a compaction). A torn last
  /// line (its writer died mid-write, holding this lock, so it was never acknowledged) is cut off.
  func catchUp(into records: [String: LocalStateStore.Record], now: Date) throws -> Load {
    var status = stat()
    let exists = stat(path, &status) == 0
    if fd < 0 || !exists || UInt64(status.st_ino) != inode || Int(status.st_size) < offset {
      if fd >= 0 { close(fd) }
      fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
      guard fd >= 0 else { throw JournalError.io("cannot open \(path): errno \(errno)") }
      guard fstat(fd, &status) == 0 else { throw JournalError.io("cannot stat \(path): errno \(errno)") }
      inode = UInt64(status.st_ino)
      offset = 0
      lines = 0
      return try read(into: [:], size: Int(status.st_size), now: now)
    }
    return try read(into: records, size: Int(status.st_size), now: now)
  }

  private func read(into records: [String: LocalStateStore.Record], size: Int, now: Date) throws -> Load {
    var load = Load(records: records)
    guard size > offset else { return load }
    var bytes = [UInt8](repeating: 0, count: size - offset)
    var done = 0
    while done < bytes.count {
      let count = bytes.withUnsafeMutableBytes {
        pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done))
      }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { throw JournalError.io("cannot read \(path): errno \(errno)") }
      done += count
    }
    var start = 0
    while let end = bytes[start...].firstIndex(of: 0x0A) {
      let line = bytes[start..<end]
      start = end + 1
      lines += 1
      guard !line.isEmpty else { continue }
      guard let entry = Self.verified(line), entry["k"]?.stringValue != nil else {
        load.damaged += 1
        if let key = Self.damagedKey(line) { load.records[key] = .damaged(at: now) } else { load.unattributed += 1 }
        continue
      }
      Self.apply(entry, to: &load.records, now: now)
    }
    if start < bytes.count {
      guard ftruncate(fd, off_t(offset + start)) == 0 else {
        throw JournalError.io("cannot cut a torn line: errno \(errno)")
      }
    }
    offset += start
    return load
  }

  /// Applies one entry (read back, or just written) to `records`.
  static func apply(_ entry: JSONValue, to records: inout [String: LocalStateStore.Record], now: Date) {
    guard let key = entry["k"]?.stringValue else { return }
    if case .damaged = records[key] { return }
    let fingerprint = entry["fp"]?.stringValue ?? ""
    let time = Date(timeIntervalSince1970: entry["t"]?.doubleValue ?? 0)
    switch entry["op"]?.stringValue {
    case "start":
      // A claim written before owners existed has none: its sidecar is gone and may have sent.
      let owner = entry["o"]?.stringValue ?? ""
      let sending = owner.isEmpty || entry["s"]?.boolValue == true
      records[key] = .claimed(fingerprint: fingerprint, owner: owner, sending: sending, since: time)
    case "sending":
      if case .claimed(let fingerprint, let owner, _, let since) = records[key], owner == entry["o"]?.stringValue {
        records[key] = .claimed(fingerprint: fingerprint, owner: owner, sending: true, since: since)
      }
    case "done": records[key] = .done(fingerprint: fingerprint, response: entry["r"] ?? .null, at: time)
    case "unknown": records[key] = .unknown(fingerprint: fingerprint, error: entry["e"] ?? .null, at: time)
    case "damaged": records[key] = .damaged(at: time)
    case "clear": records[key] = nil
    default: break
    }
  }

  func append(_ entries: [JSONValue]) throws {
    var bytes: [UInt8] = []
    for entry in entries { bytes.append(contentsOf: Self.line(entry)) }
    try Self.writeAll(fd, bytes)
    guard fsync(fd) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
    offset += bytes.count
    lines += entries.count
  }

  /// Rewrites the journal with exactly `records` (a temp file, fsync, rename, fsync the directory); the other sidecars
  /// see the new inode at their next lock and reload.
  func compact(_ records: [String: LocalStateStore.Record]) throws {
    let temp = path + ".tmp"
    // A left-over temp file (or anything planted there) is removed, never followed: O_EXCL | O_NOFOLLOW.
    unlink(temp)
    let tempFD = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard tempFD >= 0 else { throw JournalError.io("cannot create \(temp): errno \(errno)") }
    var bytes: [UInt8] = []
    for (key, record) in records.sorted(by: { $0.key < $1.key }) {
      bytes.append(contentsOf: Self.line(Self.entry(key: key, record: record)))
    }
    do {
      try Self.writeAll(tempFD, bytes)
      guard fsync(tempFD) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
    } catch {
      close(tempFD)
      throw error
    }
    close(tempFD)
    guard rename(temp, path) == 0 else { throw JournalError.io("cannot replace \(path): errno \(errno)") }
    let directory = open(String(path[..<path.lastIndex(of: "/")!]), O_RDONLY | O_CLOEXEC)
    if directory >= 0 {
      fsync(directory)
      close(directory)
    }
    _ = try catchUp(into: [:], now: Date())
  }

  /// Copies the journal to `<path>.damaged-<unix time>` (never over an existing file) and returns that path.
  func keepAside(now: Date) throws -> String {
    var aside = "\(path).damaged-\(Int(now.timeIntervalSince1970))"
    guard let data = FileManager.default.contents(atPath: path) else { throw JournalError.io("cannot read \(path)") }
    var copy = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    var suffix = 1
    while copy < 0 && errno == EEXIST && suffix < 100 {
      aside = "\(path).damaged-\(Int(now.timeIntervalSince1970))-\(suffix)"
      suffix += 1
      copy = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    }
    guard copy >= 0 else { throw JournalError.io("cannot keep the damaged journal at \(aside): errno \(errno)") }
    defer { close(copy) }
    try Self.writeAll(copy, Array(data))
    guard fsync(copy) == 0 else { throw JournalError.io("fsync failed: errno \(errno)") }
    return aside
  }

  private static func entry(key: String, record: LocalStateStore.Record) -> JSONValue {
    switch record {
    case .claimed(let fingerprint, let owner, let sending, let since):
      [
        "op": "start", "k": .string(key), "fp": .string(fingerprint), "o": .string(owner),
        "t": .double(since.timeIntervalSince1970), "s": .bool(sending),
      ]
    case .done(let fingerprint, let response, let at):
      [
        "op": "done", "k": .string(key), "fp": .string(fingerprint), "r": response,
        "t": .double(at.timeIntervalSince1970),
      ]
    case .unknown(let fingerprint, let error, let at):
      [
        "op": "unknown", "k": .string(key), "fp": .string(fingerprint), "e": error,
        "t": .double(at.timeIntervalSince1970),
      ]
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

  /// The entry of a line whose checksum matches; nil for a damaged line. Lines of journals written before checksums
  /// (plain JSON) are read as they are.
  private static func verified(_ line: ArraySlice<UInt8>) -> JSONValue? {
    if line.first == 0x7B { return try? JSONParser.parse(line) }
    guard line.count > 9, line[line.startIndex + 8] == 0x20,
      let expected = UInt32(String(decoding: line.prefix(8), as: UTF8.self), radix: 16)
    else { return nil }
    let json = line.dropFirst(9)
    guard CRC32.of(json) == expected else { return nil }
    return try? JSONParser.parse(json)
  }

  /// The key of a damaged line, when its `"k"` member still reads as a string.
  private static func damagedKey(_ line: ArraySlice<UInt8>) -> String? {
    if let brace = line.firstIndex(of: 0x7B), let key = (try? JSONParser.parse(line[brace...]))?["k"]?.stringValue {
      return key
    }
    guard let marker = line.firstRange(of: Array(#""k":""#.utf8)) else { return nil }
    var end = marker.upperBound
    while end < line.endIndex, line[end] != 0x22 { end += line[end] == 0x5C ? 2 : 1 }
    guard end < line.endIndex else { return nil }
    return (try? JSONParser.parse(line[(marker.upperBound - 1)...end]))?.stringValue
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
