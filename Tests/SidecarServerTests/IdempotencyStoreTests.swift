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

  @Test("Fingerprints are stable and differ with content")
  func fingerprints() {
    #expect(Fingerprint.of(["a": 1, "b": "x"]) == Fingerprint.of(["b": "x", "a": 1]))
    #expect(Fingerprint.of(["a": 1]) != Fingerprint.of(["a": 2]))
  }
}
