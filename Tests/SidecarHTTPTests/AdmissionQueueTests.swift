@testable import SidecarHTTP
import Testing

@Suite("Admission queue")
struct AdmissionQueueTests {
  let t0 = ContinuousClock.now

  @Test("Each origin gets its own places; past the limit callers queue and are admitted first come, first served")
  func fifoPerOrigin() {
    let queue = Queue<String>(limit: 2)
    #expect(queue.enter("a", id: 1, deadline: nil, waiter: "a1"))
    #expect(queue.enter("a", id: 2, deadline: nil, waiter: "a2"))
    #expect(!queue.enter("a", id: 3, deadline: nil, waiter: "a3"))
    #expect(!queue.enter("a", id: 4, deadline: nil, waiter: "a4"))
    #expect(queue.enter("b", id: 5, deadline: nil, waiter: "b1"))  // another host is not held up
    #expect(queue.waitingCount == 2)

    #expect(queue.leave("a") == "a3")  // the place passes on: still 2 taken
    #expect(queue.admitted("a") == 2)
    #expect(queue.leave("a") == "a4")
    #expect(queue.leave("a") == nil)
    #expect(queue.leave("a") == nil)
    #expect(queue.admitted("a") == 0)
    #expect(queue.enter("a", id: 6, deadline: nil, waiter: "a6"))
  }

  @Test("A newcomer never overtakes a queued caller, even when a place is free")
  func noOvertaking() {
    let queue = Queue<Int>(limit: 1)
    #expect(queue.enter("a", id: 1, deadline: nil, waiter: 1))
    #expect(!queue.enter("a", id: 2, deadline: nil, waiter: 2))
    #expect(queue.leave("a") == 2)
    #expect(!queue.enter("a", id: 3, deadline: nil, waiter: 3))
  }

  @Test("A cancelled waiter leaves the queue and is skipped when a place frees")
  func removal() {
    let queue = Queue<Int>(limit: 1)
    #expect(queue.enter("a", id: 1, deadline: nil, waiter: 1))
    #expect(!queue.enter("a", id: 2, deadline: nil, waiter: 2))
    #expect(!queue.enter("a", id: 3, deadline: nil, waiter: 3))
    #expect(queue.remove("a", id: 2) == 2)
    #expect(queue.remove("a", id: 2) == nil)
    #expect(queue.remove("b", id: 3) == nil)  // the wrong origin finds nothing
    #expect(queue.leave("a") == 3)
    #expect(queue.leave("a") == nil)
    #expect(queue.admitted("a") == 0)
  }

  @Test("Waiters whose deadline passed are handed back, soonest first; the others stay queued")
  func expiry() {
    let queue = Queue<Int>(limit: 1)
    #expect(queue.enter("a", id: 1, deadline: t0 + .seconds(1), waiter: 1))  // admitted: its deadline is libcurl's
    #expect(!queue.enter("a", id: 2, deadline: t0 + .seconds(30), waiter: 2))
    #expect(!queue.enter("a", id: 3, deadline: t0 + .seconds(10), waiter: 3))
    #expect(!queue.enter("a", id: 4, deadline: nil, waiter: 4))
    #expect(queue.nextDeadline == t0 + .seconds(10))
    #expect(queue.expire(now: t0 + .seconds(9)) == [])
    #expect(queue.expire(now: t0 + .seconds(10)) == [3])
    #expect(queue.nextDeadline == t0 + .seconds(30))
    #expect(queue.leave("a") == 2)  // admitted before its deadline: expiring later finds nothing
    #expect(queue.expire(now: t0 + .seconds(60)) == [])
    #expect(queue.nextDeadline == nil)
    #expect(queue.leave("a") == 4)
  }

  @Test("Draining hands back every waiter and forgets the places")
  func drain() {
    let queue = Queue<Int>(limit: 1)
    #expect(queue.enter("a", id: 1, deadline: nil, waiter: 1))
    #expect(!queue.enter("a", id: 2, deadline: t0, waiter: 2))
    #expect(queue.enter("b", id: 3, deadline: nil, waiter: 3))
    #expect(!queue.enter("b", id: 4, deadline: nil, waiter: 4))
    #expect(queue.drain().sorted() == [2, 4])
    #expect(queue.waitingCount == 0)
    #expect(queue.admitted("a") == 0)
    #expect(queue.nextDeadline == nil)
  }

  @Test("Thousands queued and admitted one by one keep their order and leave nothing behind")
  func longQueue() {
    let queue = Queue<Int>(limit: 3)
    for id in 0..<5000 { _ = queue.enter("a", id: UInt64(id), deadline: nil, waiter: id) }
    for id in stride(from: 10, to: 5000, by: 7) { _ = queue.remove("a", id: UInt64(id)) }
    var admitted: [Int] = []
    while let next = queue.leave("a") { admitted.append(next) }
    #expect(admitted == (3..<5000).filter { $0 < 10 || ($0 - 10) % 7 != 0 })
    #expect(queue.admitted("a") == 2)  // the last leave found nobody: three places taken, one given back
  }
}

/// The queue behind a reference, so that `#expect` can call its mutating methods.
private final class Queue<Waiter> {
  var queue: AdmissionQueue<Waiter>
  init(limit: Int) { queue = AdmissionQueue(limit: limit) }
  func enter(_ origin: String, id: UInt64, deadline: ContinuousClock.Instant?, waiter: Waiter) -> Bool {
    queue.enter(origin, id: id, deadline: deadline, waiter: waiter)
  }
  func leave(_ origin: String) -> Waiter? { queue.leave(origin) }
  func remove(_ origin: String, id: UInt64) -> Waiter? { queue.remove(origin, id: id) }
  func expire(now: ContinuousClock.Instant) -> [Waiter] { queue.expire(now: now) }
  func drain() -> [Waiter] { queue.drain() }
  var nextDeadline: ContinuousClock.Instant? { queue.nextDeadline }
  var waitingCount: Int { queue.waitingCount }
  func admitted(_ origin: String) -> Int { queue.admitted(origin) }
}

@Suite("MinHeap")
struct MinHeapTests {
  @Test("Pops keys in ascending order whatever the insertion order")
  func order() {
    var heap = MinHeap<Int, Int>()
    var state: UInt32 = 12345
    var keys: [Int] = []
    for _ in 0..<500 {
      state = state &* 1_103_515_245 &+ 12345
      keys.append(Int(state >> 16) % 1000)
      heap.insert(keys.last!, keys.count)
    }
    var popped: [Int] = []
    while let (key, _) = heap.min {
      popped.append(key)
      heap.removeMin()
    }
    #expect(popped == keys.sorted())
  }
}
