/// How many transfers of one origin may be inside libcurl at once, and who waits for a place, first come first
/// served.
///
/// Waiting here costs a few words; waiting inside libcurl costs a configured easy handle with its buffers (about
/// 40 KB), so ten thousand calls queued on one slow host would pin 400 MB there. A waiter may carry a deadline (its
/// request's timeout counts the time spent queued, as libcurl's does for a transfer pending a connection).
///
/// A plain value with no clock and no locking: `CurlEngine` keeps it under its lock, and resumes the waiters that
/// its mutations hand back.
struct AdmissionQueue<Waiter> {
  fileprivate struct Origin {
    var admitted = 0
    /// Ids in arrival order from `head` on; ids no longer in `waiting` (cancelled, expired) are skipped.
    var order: [UInt64] = []
    var head = 0
    var waiting: [UInt64: Waiter] = [:]

    mutating func enterIfFree(limit: Int) -> Bool {
      guard admitted < limit, waiting.isEmpty else { return false }
      admitted += 1
      return true
    }

    mutating func enqueue(id: UInt64, waiter: Waiter) {
      order.append(id)
      waiting[id] = waiter
    }

    mutating func popNext() -> Waiter? {
      while head < order.count {
        let id = order[head]
        head += 1
        if let waiter = waiting.removeValue(forKey: id) {
          compact()
          return waiter
        }
      }
      compact()
      return nil
    }

    mutating func compact() {
      if head == order.count {
        order.removeAll(keepingCapacity: order.count <= 1024)
        head = 0
      } else if head >= 1024 && head * 2 >= order.count {
        order.removeFirst(head)
        head = 0
      }
    }
  }

  /// Places per origin.
  let limit: Int
  private var origins: [String: Origin] = [:]
  /// Deadlines of queued waiters, soonest first; entries of waiters that already left are dropped lazily.
  private var deadlines = MinHeap<ContinuousClock.Instant, (origin: String, id: UInt64)>()

  init(limit: Int) {
    self.limit = max(1, limit)
  }

  /// Takes a place for `origin` at once (true), or queues `waiter` under `id` until `leave` hands it one.
  mutating func enter(_ origin: String, id: UInt64, deadline: ContinuousClock.Instant?, waiter: Waiter) -> Bool {
    let admitted = origins[origin, default: Origin()].enterIfFree(limit: limit)
    if admitted { return true }
    origins[origin, default: Origin()].enqueue(id: id, waiter: waiter)
    if let deadline { deadlines.insert(deadline, (origin, id)) }
    return false
  }

  /// Gives `origin`'s place back; returns the waiter it passes to, which now holds it.
  mutating func leave(_ origin: String) -> Waiter? {
    guard var entry = origins.removeValue(forKey: origin) else { return nil }
    let next = entry.popNext()
    if next == nil { entry.admitted -= 1 }
    if entry.admitted > 0 || !entry.waiting.isEmpty { origins[origin] = entry }
    return next
  }

  /// Takes a waiter out of the queue (its task was cancelled); nil if it already left it.
  mutating func remove(_ origin: String, id: UInt64) -> Waiter? {
    origins[origin]?.waiting.removeValue(forKey: id)
  }

  /// Takes out every waiter whose deadline is not after `now`.
  mutating func expire(now: ContinuousClock.Instant) -> [Waiter] {
    var expired: [Waiter] = []
    while let (deadline, entry) = deadlines.min, deadline <= now {
      deadlines.removeMin()
      if let waiter = origins[entry.origin]?.waiting.removeValue(forKey: entry.id) { expired.append(waiter) }
    }
    return expired
  }

  /// The soonest deadline still to watch (possibly of a waiter that already left: an early look costs nothing).
  var nextDeadline: ContinuousClock.Instant? { deadlines.min?.key }

  /// Waiters still queued, over all origins.
  var waitingCount: Int { origins.values.reduce(0) { $0 + $1.waiting.count } }

  /// Places taken for `origin`.
  func admitted(_ origin: String) -> Int { origins[origin]?.admitted ?? 0 }

  /// Hands every queued waiter back and forgets all places (the engine is shutting down).
  mutating func drain() -> [Waiter] {
    defer {
      origins = [:]
      deadlines = MinHeap()
    }
    return origins.values.flatMap { origin in origin.order[origin.head...].compactMap { origin.waiting[$0] } }
  }
}

/// A binary min-heap of keyed values.
struct MinHeap<Key: Comparable, Value> {
  private var items: [(key: Key, value: Value)] = []

  var min: (key: Key, value: Value)? { items.first }
  var count: Int { items.count }

  mutating func insert(_ key: Key, _ value: Value) {
    items.append((key, value))
    var child = items.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard items[child].key < items[parent].key else { break }
      items.swapAt(child, parent)
      child = parent
    }
  }

  mutating func removeMin() {
    guard !items.isEmpty else { return }
    items.swapAt(0, items.count - 1)
    items.removeLast()
    var parent = 0
    while true {
      let left = 2 * parent + 1
      let right = left + 1
      var smallest = parent
      if left < items.count && items[left].key < items[smallest].key { smallest = left }
      if right < items.count && items[right].key < items[smallest].key { smallest = right }
      if smallest == parent { return }
      items.swapAt(parent, smallest)
      parent = smallest
    }
  }
}

extension AdmissionQueue: Sendable where Waiter: Sendable {}
extension AdmissionQueue.Origin: Sendable where Waiter: Sendable {}
extension MinHeap: Sendable where Key: Sendable, Value: Sendable {}
