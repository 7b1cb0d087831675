#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// A publish whose outcome can be unknown, with a way to look for the post it would have made.
///
/// A publish is never re-sent blindly: after an unknown outcome the post is looked for first. Found → that post is the
/// answer. Not found → the publish is sent once more only when the look is conclusive: the platform answered with an
/// error (it was done with the request), or the answer was lost and the request was given `settle` to land before the
/// look; each send is looked for the same way, up to ``maxSends`` in all. An answer that accepted the post but could
/// not be read, the last send's unknown outcome, or no time left before the deadline end the call with
/// `outcome_unknown`, saying what was checked (docs/platforms/reconciliation.md).
///
/// A publish whose earlier sidecar died while sending it (``CallContext/interruptedSince``) is looked for before
/// anything is sent, by the same rule: the dead sidecar's request is given `settle` to land, then found → answered,
/// shown absent → sent, not readable or no time to wait → `outcome_unknown`.
struct ReconciledPublish: Sendable {
  /// The longest a lost request may still take to land (the per-attempt HTTP timeout).
  let settle: Duration
  let clock: any SidecarClock
  let logger: Logger
  /// What `find` reads, for the error ("The Page's 100 newest feed posts").
  let checked: String
  /// Whether an error says the platform already has this post (Facebook's 506): after a re-send that proves the first
  /// send landed, so the post is looked for again instead of the call failing.
  var isDuplicate: @Sendable (SidecarError) -> Bool = { _ in false }

  /// Sends of one publish at most. Each send after the first follows a conclusive look that showed the post absent, so
  /// each is as safe as the second; the bound only limits how long one call can take.
  static let maxSends = 3

  func run(
    context: CallContext,
    send: () async throws(SidecarError) -> PostResult,
    find: () async throws(SidecarError) -> PostResult?
  ) async throws(SidecarError) -> PostResult {
    if context.isInterrupted, let found = try await lookAfterInterruption(context: context, find: find) {
      return found
    }
    // An earlier send whose outcome is unknown: this call's, or the dead sidecar's of an interrupted publish.
    var earlier: SidecarError? = context.interruptedSince.map { _ in Self.interrupted }
    var sends = 0
    while true {
      sends += 1
      let unknown: SidecarError
      do {
        return try await send()
      } catch let error where error.kind == .outcomeUnknown {
        unknown = error
      } catch {
        guard let first = earlier, isDuplicate(error) else { throw error }
        return try await lookOnce(
          first, find: find,
          then: "A later send was refused as a duplicate, so an earlier one landed; check before posting again.")
      }
      let status = unknown.failure?.httpStatus
      let refused = status.map { $0 >= 400 } ?? false
      let accepted = status.map { (200..<300).contains($0) } ?? false
      if !refused {
        let wake = clock.now() + settle
        if let deadline = context.deadline, wake >= deadline {
          return try await lookOnce(
            unknown, find: find,
            then: "There was no time left before the deadline to wait "
              + "for it to land and send it again; check before posting again.")
        }
        do { try await clock.sleep(until: wake) } catch { throw unknown }
      }
      let found: PostResult?
      do {
        found = try await find()
      } catch {
        throw unknown.appending("\(checked) could not be read (\(error.message)); check before posting again.")
      }
      if let found {
        logger.info("publish reconciled: the post was found", ["postId": .string(found.postId)])
        return found
      }
      if sends == Self.maxSends || accepted {
        throw unknown.appending(
          "\(checked) showed no such post"
            + (accepted ? " although the platform accepted it" : " after it was sent \(sends) times")
            + "; check before posting again.")
      }
      earlier = earlier ?? unknown
      logger.info("publish not found after an unknown outcome; sending it once more", [:])
    }
  }

  /// The post of an interrupted publish, or nil once a conclusive look shows it absent (the call may then send). Also
  /// run on its own by a publish of several steps (Instagram's), before its first step.
  func lookAfterInterruption(
    context: CallContext, find: () async throws(SidecarError) -> PostResult?
  ) async throws(SidecarError) -> PostResult? {
    let interrupted = Self.interrupted
    let wake = clock.now() + settle
    if let deadline = context.deadline, wake >= deadline {
      return try await lookOnce(
        interrupted, find: find,
        then: "There was no time left before the deadline to wait "
          + "for its request to land and send it again; check before posting again.")
    }
    do { try await clock.sleep(until: wake) } catch { throw interrupted }
    let found: PostResult?
    do {
      found = try await find()
    } catch {
      throw interrupted.appending("\(checked) could not be read (\(error.message)); check before posting again.")
    }
    if let found {
      logger.info("interrupted publish reconciled: the post was found", ["postId": .string(found.postId)])
      return found
    }
    logger.info("interrupted publish not found; sending it", [:])
    context.clearInterruption()
    return nil
  }

  private static let interrupted = SidecarError(
    kind: .outcomeUnknown, message: CallContext.interruptedMessage + ".", attempts: 1)

  private func lookOnce(
    _ unknown: SidecarError, find: () async throws(SidecarError) -> PostResult?, then advice: String
  ) async throws(SidecarError) -> PostResult {
    if let found = try? await find() {
      logger.info("publish reconciled: the post was found", ["postId": .string(found.postId)])
      return found
    }
    throw unknown.appending("\(checked) showed no such post yet. " + advice)
  }
}
