import Foundation
import SidecarJSON
import SidecarLogging
import Synchronization
import Testing

@testable import SidecarServer

private final class TestTime: Sendable {
  let value = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
  func advance(_ seconds: TimeInterval) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
  var now: @Sendable () -> Date { { self.value.withLock { $0 } } }
}

private func temporaryDirectory() -> String {
  let path = NSTemporaryDirectory() + "sidecar-idem-\(UUID().uuidString)"
  try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

@Suite("Local state store")
struct LocalStateStoreTests {
  let response: JSONValue = ["postId": "123_456", "replayed": true]

  @Test("Same key and params replays; while running it conflicts; other params mismatch")
  func decisions() async throws {
    let store = try LocalStateStore(directory: nil, logger: .disabled)
    #expect(try store.claim(key: "k", fingerprint: "a") == .proceed)
    #expect(try store.claim(key: "k", fingerprint: "a") == .conflict)
    #expect(try store.claim(key: "k", fingerprint: "b") == .mismatch)
    try store.complete(key: "k", fingerprint: "a", response: response)
    #expect(try store.claim(key: "k", fingerprint: "a") == .replay(response))
    #expect(try store.claim(key: "k", fingerprint: "b") == .mismatch)
  }

  @Test("A released key (nothing was published) can be used again")
  func release() async throws {
    let store = try LocalStateStore(directory: nil, logger: .disabled)
    #expect(try store.claim(key: "k", fingerprint: "a") == .proceed)
    store.release(key: "k")
    #expect(try store.claim(key: "k", fingerprint: "a") == .proceed)
  }

  @Test("Records survive a restart; a publish that was sending at the crash is taken over as interrupted, once")
  func durable() async throws {
    let directory = temporaryDirectory()
    do {
      let store = try LocalStateStore(directory: directory, logger: .disabled)
      #expect(try store.claim(key: "done", fingerprint: "a") == .proceed)
      try store.complete(key: "done", fingerprint: "a", response: response)
      #expect(try store.claim(key: "sent", fingerprint: "c") == .proceed)
      try store.markSending(key: "sent")
      #expect(try store.claim(key: "unsent", fingerprint: "u") == .proceed)
      #expect(try store.claim(key: "freed", fingerprint: "f") == .proceed)
      store.release(key: "freed")
    }
    let reopened = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(try reopened.claim(key: "done", fingerprint: "a") == .replay(response))
    guard case .interrupted = try reopened.claim(key: "sent", fingerprint: "c") else {
      Issue.record("expected the publish sending at the crash to be taken over as interrupted")
      return
    }
    // Taken over by this sidecar, still sending: nobody else may look or send meanwhile.
    #expect(try reopened.claim(key: "sent", fingerprint: "c") == .conflict)
    try reopened.completeUnknown(key: "sent", fingerprint: "c", error: StoredErrors.interrupted)
    #expect(try reopened.claim(key: "sent", fingerprint: "c") == .replayError(StoredErrors.interrupted))
    // Claimed but never sent: nothing went out, so the key is taken over rather than lost.
    #expect(try reopened.claim(key: "unsent", fingerprint: "u") == .proceed)
    #expect(try reopened.claim(key: "freed", fingerprint: "f") == .proceed)
  }

  @Test("A torn last line (crash mid-write) is skipped, not fatal")
  func tornLine() async throws {
    let directory = temporaryDirectory()
    do {
      let store = try LocalStateStore(directory: directory, logger: .disabled)
      _ = try store.claim(key: "k", fingerprint: "a")
      try store.complete(key: "k", fingerprint: "a", response: response)
    }
    let handle = FileHandle(forWritingAtPath: directory + "/idempotency.jsonl")!
    handle.seekToEndOfFile()
    handle.write(Data(#"{"op":"done","k":"x","fp":"#.utf8))
    try handle.close()
    let reopened = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(try reopened.claim(key: "k", fingerprint: "a") == .replay(response))
  }

  @Test("Records are kept 24 hours and then forgotten, also across restarts")
  func retention() async throws {
    let directory = temporaryDirectory()
    let time = TestTime()
    let store = try LocalStateStore(directory: directory, now: time.now, logger: .disabled)
    _ = try store.claim(key: "k", fingerprint: "a")
    try store.complete(key: "k", fingerprint: "a", response: response)
    time.advance(23 * 3600)
    #expect(try store.claim(key: "k", fingerprint: "a") == .replay(response))
    time.advance(2 * 3600)
    let reopened = try LocalStateStore(directory: directory, now: time.now, logger: .disabled)
    #expect(try reopened.claim(key: "k", fingerprint: "b") == .proceed)
  }

  @Test("A damaged record answers outcome_unknown, never a new publish; the damaged file is kept aside")
  func damagedRecord() async throws {
    let directory = temporaryDirectory()
    let path = directory + "/idempotency.jsonl"
    do {
      let store = try LocalStateStore(directory: directory, logger: .disabled)
      for key in ["k", "other"] {
        _ = try store.claim(key: key, fingerprint: "a")
        try store.complete(key: key, fingerprint: "a", response: response)
      }
    }
    var bytes = Array(FileManager.default.contents(atPath: path)!)
    let original = bytes
    // Flip one byte of the post id in k's `done` line (the first stored answer), as a bad disk would.
    let postId = bytes.firstRange(of: Array("123_456".utf8))!.lowerBound
    bytes[postId] ^= 0x01
    try Data(bytes).write(to: URL(fileURLWithPath: path))

    let reopened = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(reopened.damagedRecords == 1)
    guard case .replayError(let error) = try reopened.claim(key: "k", fingerprint: "a") else {
      Issue.record("a damaged record must not let the publish run again")
      return
    }
    #expect(error["data"]?["kind"] == "outcome_unknown")
    #expect(try reopened.claim(key: "other", fingerprint: "a") == .replay(response))
    let kept = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
      $0.hasPrefix("idempotency.jsonl.damaged-")
    }
    #expect(kept.count == 1)
    var damaged = original
    damaged[postId] ^= 0x01
    #expect(kept.first.flatMap { FileManager.default.contents(atPath: directory + "/" + $0) } == Data(damaged))
  }

  @Test("A journal of random bytes is kept aside, not overwritten, and counted")
  func randomBytes() async throws {
    let directory = temporaryDirectory()
    let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) } + [0x0A])
    try garbage.write(to: URL(fileURLWithPath: directory + "/idempotency.jsonl"))
    let store = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(store.damagedRecords > 0)
    let kept = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
      $0.hasPrefix("idempotency.jsonl.damaged-")
    }
    #expect(kept.count == 1)
    #expect(kept.first.flatMap { FileManager.default.contents(atPath: directory + "/" + $0) } == garbage)
  }

  @Test("The state directory is private and a symlink planted at the journal's temp file is never followed")
  func privateStateDirectory() async throws {
    let parent = temporaryDirectory()
    let directory = parent + "/state"
    _ = try LocalStateStore(directory: directory, logger: .disabled)
    let mode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
    #expect(mode == 0o700)

    let victim = parent + "/victim.txt"
    try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
    try FileManager.default.createSymbolicLink(
      atPath: directory + "/idempotency.jsonl.tmp", withDestinationPath: victim)
    // A damaged line makes the store rewrite the journal through its temp file at once.
    try Data("00000000 {\"op\":\"done\",\"k\":\"k\"}\n".utf8).write(
      to: URL(fileURLWithPath: directory + "/idempotency.jsonl"))
    let store = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(store.damagedRecords == 1)
    #expect(FileManager.default.contents(atPath: victim) == Data("precious".utf8))
    #expect(try store.claim(key: "k", fingerprint: "a") != .proceed)
  }

  @Test("Scopes stay apart whatever the customer id contains")
  func scopes() async throws {
    let first = IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "A", idempotencyKey: "B/C")
    let second = IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "A/B", idempotencyKey: "C")
    let third = IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "A%2FB", idempotencyKey: "C")
    #expect(Set([first, second, third]).count == 3)
    let store = try LocalStateStore(directory: nil, logger: .disabled)
    #expect(try store.claim(key: first, fingerprint: "one") == .proceed)
    #expect(try store.claim(key: second, fingerprint: "two") == .proceed)
    // Customer ids without a slash keep the keys of earlier versions, so their stored records still answer.
    #expect(
      IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "C1", idempotencyKey: "k/1")
        == "facebook/post/C1/k/1")
  }

  @Test("Sidecars sharing a directory: a key claimed by one conflicts on the others, then all replay its answer")
  func sharedDirectory() async throws {
    let directory = temporaryDirectory()
    let first = try LocalStateStore(directory: directory, logger: .disabled)
    let second = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(try first.claim(key: "k", fingerprint: "a") == .proceed)
    try first.markSending(key: "k")
    #expect(try second.claim(key: "k", fingerprint: "a") == .conflict)
    #expect(try second.claim(key: "k", fingerprint: "b") == .mismatch)
    // A sidecar starting now must not rewrite the journal and lose what the others write after it.
    let third = try LocalStateStore(directory: directory, logger: .disabled)
    try first.complete(key: "k", fingerprint: "a", response: response)
    #expect(try second.claim(key: "k", fingerprint: "a") == .replay(response))
    #expect(try third.claim(key: "k", fingerprint: "a") == .replay(response))
    let fourth = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(try fourth.claim(key: "k", fingerprint: "a") == .replay(response))
  }

  @Test("A sidecar that died holding a claim: taken over if it had not sent, as interrupted (look first) if it had")
  func deadOwner() async throws {
    let directory = temporaryDirectory()
    let survivor = try LocalStateStore(directory: directory, logger: .disabled)
    do {
      let dying = try LocalStateStore(directory: directory, logger: .disabled)
      #expect(try dying.claim(key: "quiet", fingerprint: "a") == .proceed)
      #expect(try dying.claim(key: "sent", fingerprint: "a") == .proceed)
      try dying.markSending(key: "sent")
      #expect(try survivor.claim(key: "sent", fingerprint: "a") == .conflict)
    }
    #expect(try survivor.claim(key: "quiet", fingerprint: "a") == .proceed)
    guard case .interrupted = try survivor.claim(key: "sent", fingerprint: "a") else {
      Issue.record("a publish that may have gone out must be taken over as interrupted, never as a new publish")
      return
    }
    // Still marked sending, now by the survivor: another sidecar neither looks nor sends meanwhile.
    let other = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(try other.claim(key: "sent", fingerprint: "a") == .conflict)
  }

  @Test("Concurrent claims of one key from four sidecars on one directory: exactly one proceeds")
  func concurrentClaims() async throws {
    let directory = temporaryDirectory()
    let stores = try (0..<4).map { _ in try LocalStateStore(directory: directory, logger: .disabled) }
    for round in 0..<50 {
      let proceeded = try await withThrowingTaskGroup(of: Bool.self) { group in
        for index in 0..<16 {
          group.addTask { try stores[index % 4].claim(key: "k\(round)", fingerprint: "a") == .proceed }
        }
        return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
      }
      #expect(proceeded == 1)
    }
  }

  @Test("Concurrent claims of one key inside one sidecar: exactly one proceeds, in memory and on disk")
  func concurrentClaimsInOneProcess() async throws {
    for directory in [nil, temporaryDirectory()] {
      let store = try LocalStateStore(directory: directory, logger: .disabled)
      for round in 0..<200 {
        let proceeded = try await withThrowingTaskGroup(of: Bool.self) { group in
          for _ in 0..<8 { group.addTask { try store.claim(key: "k\(round)", fingerprint: "a") == .proceed } }
          return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(proceeded == 1)
      }
    }
  }

  @Test("Compaction by one sidecar loses nothing the others wrote")
  func compaction() async throws {
    let directory = temporaryDirectory()
    let first = try LocalStateStore(directory: directory, compactAfterLines: 100, logger: .disabled)
    let second = try LocalStateStore(directory: directory, logger: .disabled)
    #expect(try second.claim(key: "other", fingerprint: "a") == .proceed)
    for index in 0..<150 {
      _ = try first.claim(key: "k\(index)", fingerprint: "a")
      first.release(key: "k\(index)")
    }
    let size = try FileManager.default.attributesOfItem(atPath: directory + "/idempotency.jsonl")[.size] as? Int ?? 0
    #expect(size < 10_000)
    #expect(try first.claim(key: "other", fingerprint: "a") == .conflict)
    try second.complete(key: "other", fingerprint: "a", response: response)
    #expect(try first.claim(key: "other", fingerprint: "a") == .replay(response))
  }

  @Test("Fingerprints are stable and differ with content")
  func fingerprints() {
    #expect(Fingerprint.of(["a": 1, "b": "x"]) == Fingerprint.of(["b": "x", "a": 1]))
    #expect(Fingerprint.of(["a": 1]) != Fingerprint.of(["a": 2]))
  }
}
