internal import CCurl
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarSystem
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A libcurl transfer handle (`ccurl_transfer *`).
///
/// Invariant that makes it Sendable: a transfer has exactly one owner at a time, and ownership moves
/// only through synchronising hand-offs: the caller configures it, passes it to the loop thread through
/// the engine's locked queue, and gets it back through a continuation once it has left the multi handle.
struct TransferHandle: @unchecked Sendable {
  let raw: OpaquePointer
}

/// Drives one libcurl multi handle on its own thread.
///
/// All libcurl calls on the multi handle happen on that thread, except `curl_multi_wakeup`, which
/// libcurl allows from any thread and which is only called under `state`'s lock while the engine is open
/// (the loop frees the multi handle only after marking it closed under the same lock).
final class CurlEngine: Sendable {
  /// How a transfer left the loop.
  enum Outcome: Sendable {
    /// libcurl finished it with this CURLcode.
    case done(Int32)
    /// The calling task was cancelled; the transfer was removed at once.
    case cancelled
    /// The engine shut down first.
    case shutdown
    /// `curl_multi_add_handle` refused it with this CURLMcode.
    case rejected(Int32)
  }

  private struct Submission: Sendable {
    let tag: UInt64
    let transfer: TransferHandle
    let continuation: CheckedContinuation<Outcome, Never>
  }

  /// How a wait for a place in `admission` ended.
  enum Admission: Sendable {
    case admitted
    case cancelled
    /// The request's deadline passed while it was queued.
    case timedOut
    case shutdown
  }

  private struct State: Sendable {
    var admission: AdmissionQueue<CheckedContinuation<Admission, Never>>
    var submissions: [Submission] = []
    var cancellations: [UInt64] = []
    var wakePending = false
    var closed = false
    var pool: [TransferHandle] = []
  }

  /// See the type's invariant: wrapped only so that `wakeup` can be reached from other threads.
  private struct Multi: @unchecked Sendable {
    let raw: OpaquePointer
  }

  private let multi: Multi
  private let state: Mutex<State>
  private let nextTag = Atomic<UInt64>(1)
  private let loopExited = Atomic<Bool>(false)
  /// The loop thread's CPU-time clock, once the loop runs (Linux only).
  private let loopClock = Mutex<clockid_t?>(nil)
  private let poolLimit: Int

  /// `maxHostConnections` caps libcurl's connections per host and, through `admit`, the transfers per origin
  /// inside libcurl.
  init?(maxHostConnections: Int, maxCachedConnections: Int) {
    guard let raw = ccurl_multi_new(maxHostConnections, maxCachedConnections) else { return nil }
    multi = Multi(raw: raw)
    state = Mutex(State(admission: AdmissionQueue(limit: maxHostConnections)))
    // Pooled easy handles keep their buffers; a burst must not pin its peak memory for good.
    poolLimit = min(max(16, maxCachedConnections), 64)
  }

  func start() {
    startThread { [self] in runLoop() }
  }

  /// Stops the loop (failing anything still running) and lets it free libcurl's resources.
  func shutdown() {
    let (pooled, waiting) = state.withLock { state -> ([TransferHandle], [CheckedContinuation<Admission, Never>]) in
      guard !state.closed else { return ([], []) }
      state.closed = true
      ccurl_multi_wakeup(multi.raw)
      defer { state.pool = [] }
      return (state.pool, state.admission.drain())
    }
    for transfer in pooled { ccurl_transfer_free(transfer.raw) }
    for waiter in waiting { waiter.resume(returning: .shutdown) }
  }

  // MARK: - Admission

  /// Waits for one of `origin`'s places (see `AdmissionQueue`), before the caller takes an easy handle. An
  /// admitted caller must `leave` once its transfer is out of libcurl.
  func admit(_ origin: String, deadline: ContinuousClock.Instant?) async -> Admission {
    let id = nextTag.wrappingAdd(1, ordering: .relaxed).oldValue
    return await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let immediate = state.withLock { state -> Admission? in
          if state.closed { return .shutdown }
          if Task.isCancelled { return .cancelled }
          let earliest = state.admission.nextDeadline
          if state.admission.enter(origin, id: id, deadline: deadline, waiter: continuation) { return .admitted }
          // The loop sleeps until the soonest deadline: tell it about a sooner one.
          if let deadline, earliest.map({ deadline < $0 }) ?? true { wakeLocked(&state) }
          return nil
        }
        if let immediate { continuation.resume(returning: immediate) }
      }
    } onCancel: {
      state.withLock { $0.admission.remove(origin, id: id) }?.resume(returning: .cancelled)
    }
  }

  /// Gives back the place `admit` granted, to the next waiter for `origin` if there is one.
  func leave(_ origin: String) {
    state.withLock { $0.admission.leave(origin) }?.resume(returning: .admitted)
  }

  // MARK: - Transfers

  /// A clean transfer from the pool, or a new one.
  func checkout() -> TransferHandle? {
    if let pooled = state.withLock({ $0.pool.popLast() }) { return pooled }
    return ccurl_transfer_new().map(TransferHandle.init(raw:))
  }

  /// Resets a transfer the caller owns and keeps it for reuse (libcurl keeps connections in the multi
  /// handle, not in the easy handle, so nothing is lost by resetting).
  func recycle(_ transfer: TransferHandle) {
    ccurl_transfer_reset(transfer.raw)
    let kept = state.withLock { state -> Bool in
      guard !state.closed, state.pool.count < poolLimit else { return false }
      state.pool.append(transfer)
      return true
    }
    if !kept { ccurl_transfer_free(transfer.raw) }
  }

  /// Runs a configured transfer on the loop thread and returns it to the caller when it is done.
  func perform(_ transfer: TransferHandle) async -> Outcome {
    let tag = nextTag.wrappingAdd(1, ordering: .relaxed).oldValue
    return await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        // Checked under the lock: a cancellation that lands before this point finds the task
        // cancelled here; one that lands after is queued behind the submission.
        let refusal = state.withLock { state -> Outcome? in
          if state.closed { return .shutdown }
          if Task.isCancelled { return .cancelled }
          state.submissions.append(Submission(tag: tag, transfer: transfer, continuation: continuation))
          wakeLocked(&state)
          return nil
        }
        if let refusal { continuation.resume(returning: refusal) }
      }
    } onCancel: {
      state.withLock { state in
        guard !state.closed else { return }
        state.cancellations.append(tag)
        wakeLocked(&state)
      }
    }
  }

  /// One wake-up per batch: the loop drains the whole queue each time it wakes.
  private func wakeLocked(_ state: inout State) {
    guard !state.wakePending else { return }
    state.wakePending = true
    ccurl_multi_wakeup(multi.raw)
  }

  // MARK: - The loop thread

  private func runLoop() {
    #if os(Linux)
      var clock = clockid_t()
      if pthread_getcpuclockid(pthread_self(), &clock) == 0 { loopClock.withLock { $0 = clock } }
    #endif
    var active: [UInt64: Submission] = [:]
    while true {
      let now = ContinuousClock.now
      let (submissions, cancellations, closing, expired, nextDeadline) = state.withLock { state in
        defer {
          state.submissions = []
          state.cancellations = []
          state.wakePending = false
        }
        let expired = state.admission.expire(now: now)
        return (state.submissions, state.cancellations, state.closed, expired, state.admission.nextDeadline)
      }
      for waiter in expired { waiter.resume(returning: .timedOut) }
      for submission in submissions {
        ccurl_transfer_set_tag(submission.transfer.raw, submission.tag)
        let rc = ccurl_multi_add(multi.raw, submission.transfer.raw)
        if rc == 0 {
          active[submission.tag] = submission
        } else {
          submission.continuation.resume(returning: .rejected(rc))
        }
      }
      for tag in cancellations {
        // Unknown tags belong to transfers that already finished: nothing to do.
        guard let submission = active.removeValue(forKey: tag) else { continue }
        ccurl_multi_remove(multi.raw, submission.transfer.raw)
        submission.continuation.resume(returning: .cancelled)
      }
      if closing { break }

      var running: Int32 = 0
      ccurl_multi_perform(multi.raw, &running)
      var code: Int32 = 0
      while let finished = ccurl_multi_next_done(multi.raw, &code) {
        let tag = ccurl_transfer_tag(finished)
        ccurl_multi_remove(multi.raw, finished)
        active.removeValue(forKey: tag)?.continuation.resume(returning: .done(code))
      }
      // Sleeps until socket activity, libcurl's next timer, a queued request's deadline or a wake-up; no
      // transfer means no timer, so an idle transport costs nothing.
      var sleep = 60_000
      if let nextDeadline {
        sleep = min(sleep, max(0, now.duration(to: nextDeadline).wholeMilliseconds))
      }
      if ccurl_multi_poll(multi.raw, Int32(sleep)) != 0 {
        usleep(1000)  // a failing poll must not turn into a busy loop
      }
    }
    for submission in active.values {
      ccurl_multi_remove(multi.raw, submission.transfer.raw)
      submission.continuation.resume(returning: .shutdown)
    }
    ccurl_multi_free(multi.raw)
    loopExited.store(true, ordering: .releasing)
  }

  /// Requests waiting for admission.
  var queuedCount: Int { state.withLock { $0.admission.waitingCount } }

  /// The CPU time the loop thread has used so far (nil before it starts, and where threads have no CPU clock):
  /// what connection set-up and transfers cost the one thread every request goes through.
  var loopCPUTime: Duration? {
    guard let clock = loopClock.withLock({ $0 }) else { return nil }
    var now = timespec()
    guard clock_gettime(clock, &now) == 0 else { return nil }
    return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
  }

  /// True once the loop thread has freed the multi handle and is about to end.
  var hasStopped: Bool { loopExited.load(ordering: .acquiring) }
}
