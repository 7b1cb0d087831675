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

@Suite("Idempotency store")
struct IdempotencyStoreTests {
  let response: JSONValue = ["postId": "123_456", "replayed": true]

  @Test("Same key and params replays; while running it conflicts; other params mismatch")
  func decisions() throws {
    let store = try IdempotencyStore(directory: nil, logger: .disabled)
    #expect(try store.begin(key: "k", fingerprint: "a") == .proceed)
    #expect(try store.begin(key: "k", fingerprint: "a") == .conflict)
    #expect(try store.begin(key: "k", fingerprint: "b") == .mismatch)
    try store.complete(key: "k", fingerprint: "a", response: response)
    #expect(try store.begin(key: "k", fingerprint: "a") == .replay(response))
    #expect(try store.begin(key: "k", fingerprint: "b") == .mismatch)
  }

  @Test("A released key (nothing was published) can be used again")
  func release() throws {
    let store = try IdempotencyStore(directory: nil, logger: .disabled)
    #expect(try store.begin(key: "k", fingerprint: "a") == .proceed)
    store.release(key: "k")
    #expect(try store.begin(key: "k", fingerprint: "a") == .proceed)
  }

  @Test("Records survive a restart; a publish running at the crash replays as outcome_unknown")
  func durable() throws {
    let directory = temporaryDirectory()
    do {
      let store = try IdempotencyStore(directory: directory, logger: .disabled)
      #expect(try store.begin(key: "done", fingerprint: "a") == .proceed)
      try store.complete(key: "done", fingerprint: "a", response: response)
      #expect(try store.begin(key: "crashed", fingerprint: "c") == .proceed)
      #expect(try store.begin(key: "freed", fingerprint: "f") == .proceed)
      store.release(key: "freed")
    }
    let reopened = try IdempotencyStore(directory: directory, logger: .disabled)
    #expect(try reopened.begin(key: "done", fingerprint: "a") == .replay(response))
    guard case .replayError(let error) = try reopened.begin(key: "crashed", fingerprint: "c") else {
      Issue.record("expected the interrupted publish to replay as an error")
      return
    }
    #expect(error["data"]?["kind"] == "outcome_unknown")
    #expect(try reopened.begin(key: "freed", fingerprint: "f") == .proceed)
  }

  @Test("A torn last line (crash mid-write) is skipped, not fatal")
  func tornLine() throws {
    let directory = temporaryDirectory()
    do {
      let store = try IdempotencyStore(directory: directory, logger: .disabled)
      _ = try store.begin(key: "k", fingerprint: "a")
      try store.complete(key: "k", fingerprint: "a", response: response)
    }
    let handle = FileHandle(forWritingAtPath: directory + "/idempotency.jsonl")!
    handle.seekToEndOfFile()
    handle.write(Data(#"{"op":"done","k":"x","fp":"#.utf8))
    try handle.close()
    let reopened = try IdempotencyStore(directory: directory, logger: .disabled)
    #expect(try reopened.begin(key: "k", fingerprint: "a") == .replay(response))
  }

  @Test("Records are kept 24 hours and then forgotten, also across restarts")
  func retention() throws {
    let directory = temporaryDirectory()
    let time = TestTime()
    let store = try IdempotencyStore(directory: directory, now: time.now, logger: .disabled)
    _ = try store.begin(key: "k", fingerprint: "a")
    try store.complete(key: "k", fingerprint: "a", response: response)
    time.advance(23 * 3600)
    #expect(try store.begin(key: "k", fingerprint: "a") == .replay(response))
    time.advance(2 * 3600)
    let reopened = try IdempotencyStore(directory: directory, now: time.now, logger: .disabled)
    #expect(reopened.count == 0)
    #expect(try reopened.begin(key: "k", fingerprint: "b") == .proceed)
  }

  @Test("A damaged record answers outcome_unknown, never a new publish; the damaged file is kept aside")
  func damagedRecord() throws {
    let directory = temporaryDirectory()
    let path = directory + "/idempotency.jsonl"
    do {
      let store = try IdempotencyStore(directory: directory, logger: .disabled)
      for key in ["k", "other"] {
        _ = try store.begin(key: key, fingerprint: "a")
        try store.complete(key: key, fingerprint: "a", response: response)
      }
    }
    var bytes = Array(FileManager.default.contents(atPath: path)!)
    let original = bytes
    // Flip one byte of the post id in k's `done` line (the first stored answer), as a bad disk would.
    let postId = bytes.firstRange(of: Array("123_456".utf8))!.lowerBound
    bytes[postId] ^= 0x01
    try Data(bytes).write(to: URL(fileURLWithPath: path))

    let reopened = try IdempotencyStore(directory: directory, logger: .disabled)
    #expect(reopened.damagedRecords == 1)
    guard case .replayError(let error) = try reopened.begin(key: "k", fingerprint: "a") else {
      Issue.record("a damaged record must not let the publish run again")
      return
    }
    #expect(error["data"]?["kind"] == "outcome_unknown")
    #expect(try reopened.begin(key: "other", fingerprint: "a") == .replay(response))
    let kept = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("idempotency.jsonl.damaged-") }
    #expect(kept.count == 1)
    var damaged = original
    damaged[postId] ^= 0x01
    #expect(kept.first.flatMap { FileManager.default.contents(atPath: directory + "/" + $0) } == Data(damaged))
  }

  @Test("A journal of random bytes is kept aside, not overwritten, and counted")
  func randomBytes() throws {
    let directory = temporaryDirectory()
    let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) } + [0x0A])
    try garbage.write(to: URL(fileURLWithPath: directory + "/idempotency.jsonl"))
    let store = try IdempotencyStore(directory: directory, logger: .disabled)
    #expect(store.damagedRecords > 0)
    let kept = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("idempotency.jsonl.damaged-") }
    #expect(kept.count == 1)
    #expect(kept.first.flatMap { FileManager.default.contents(atPath: directory + "/" + $0) } == garbage)
  }

  @Test("The state directory is private and a symlink planted at the journal's temp file is never followed")
  func privateStateDirectory() throws {
    let parent = temporaryDirectory()
    let directory = parent + "/state"
    _ = try IdempotencyStore(directory: directory, logger: .disabled)
    let mode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
    #expect(mode == 0o700)

    let victim = parent + "/victim.txt"
    try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
    try FileManager.default.createSymbolicLink(atPath: directory + "/idempotency.jsonl.tmp", withDestinationPath: victim)
    let store = try IdempotencyStore(directory: directory, logger: .disabled)
    _ = try store.begin(key: "k", fingerprint: "a")
    #expect(FileManager.default.contents(atPath: victim) == Data("precious".utf8))
  }

  @Test("Scopes stay apart whatever the customer id contains")
  func scopes() throws {
    let first = IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "A", idempotencyKey: "B/C")
    let second = IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "A/B", idempotencyKey: "C")
    let third = IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "A%2FB", idempotencyKey: "C")
    #expect(Set([first, second, third]).count == 3)
    let store = try IdempotencyStore(directory: nil, logger: .disabled)
    #expect(try store.begin(key: first, fingerprint: "one") == .proceed)
    #expect(try store.begin(key: second, fingerprint: "two") == .proceed)
    // Customer ids without a slash keep the keys of earlier versions, so their stored records still answer.
    #expect(IdempotencyScope.key(platform: "facebook", operation: "post", customerId: "C1", idempotencyKey: "k/1") == "facebook/post/C1/k/1")
  }

  @Test("Fingerprints are stable and differ with content")
  func fingerprints() {
    #expect(Fingerprint.of(["a": 1, "b": "x"]) == Fingerprint.of(["b": "x", "a": 1]))
    #expect(Fingerprint.of(["a": 1]) != Fingerprint.of(["a": 2]))
  }
}
