#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import Synchronization

/// One resumable upload session and how far YouTube has confirmed it.
///
/// Only YouTube's own answers move the offset ("trust the returned Range, not what you sent"). After any failed
/// request the next attempt first asks the session where it stands (`Content-Range: bytes */N`), so bytes that
/// arrived are not sent again and a completed upload is recognised instead of repeated.
final class ResumableUpload: Sendable {
  private struct State {
    var confirmed: Int64 = 0
    var mustProbe = false
    /// A request carrying the video's last byte was sent and no answer since showed the upload incomplete: if the
    /// call ends now, the video may exist.
    var lastBytesSent = false
    /// A request failed with no answer: it may still be on its way, so the session's state is not final yet.
    var answerLost = false
  }

  let session: URL
  let video: YouTubeClient.LocalVideo
  let chunkSize: Int64
  private let state = Mutex(State())

  init(session: URL, video: YouTubeClient.LocalVideo, chunkSize: Int64) {
    self.session = session
    self.video = video
    self.chunkSize = chunkSize
  }

  var confirmed: Int64 { state.withLock { $0.confirmed } }
  var mustProbe: Bool { state.withLock { $0.mustProbe } }

  /// A request failed: the next attempt asks the session where it stands first.
  func failed(_ failure: PlatformFailure) {
    state.withLock { state in
      state.mustProbe = true
      if failure.httpStatus == nil { state.answerLost = true }
    }
  }

  /// Every request of the upload was answered: what the session says now is final (nothing is still on its way).
  var everyRequestAnswered: Bool { state.withLock { !$0.answerLost } }

  /// Takes in what YouTube answered.
  func record(_ progress: YouTubeClient.UploadProgress) {
    state.withLock { state in
      state.mustProbe = false
      if case .incomplete(let confirmed) = progress {
        state.confirmed = min(max(confirmed, 0), video.size)
        state.lastBytesSent = false
      }
    }
  }

  /// The status query: an empty PUT with `Content-Range: bytes */<total>`.
  func probe(token: String, timeout: Duration) -> HTTPRequest {
    HTTPRequest(
      method: "PUT", url: session,
      headers: [
        "Authorization": "Bearer \(token)", "Content-Length": "0", "Content-Range": "bytes */\(video.size)",
      ],
      timeout: timeout)
  }

  /// The next chunk, from the confirmed offset, streamed from the file.
  ///
  /// Its timeout grows with its size (one extra second per 256 KiB, i.e. it tolerates about 2 Mbit/s) so that a
  /// slow link does not turn every large chunk into a timeout.
  func nextChunk(token: String, timeout: Duration) -> (request: HTTPRequest, start: Int64) {
    let (start, length) = state.withLock { state -> (Int64, Int64) in
      let length = min(chunkSize, video.size - state.confirmed)
      if state.confirmed + length == video.size { state.lastBytesSent = true }
      return (state.confirmed, length)
    }
    let end = start + length - 1
    let request = HTTPRequest(
      method: "PUT", url: session,
      headers: [
        "Authorization": "Bearer \(token)", "Content-Type": video.contentType, "Content-Length": String(length),
        "Content-Range": "bytes \(start)-\(end)/\(video.size)",
      ],
      body: .file(path: video.path, offset: start, length: length),
      timeout: timeout + .seconds(length / (256 << 10)))
    return (request, start)
  }

  /// An error that ends the upload, made `outcome_unknown` when the last bytes may have completed it: calling again
  /// would upload a second video.
  func ambiguous(_ error: SidecarError) -> SidecarError {
    guard state.withLock({ $0.lastBytesSent }),
      [.transientExhausted, .deadlineExceeded, .circuitOpen, .rateLimited].contains(error.kind)
    else { return error }
    var unknown = error
    unknown.kind = .outcomeUnknown
    unknown.retryAfter = nil
    unknown.message =
      "All of the video's bytes were sent, but YouTube's answer was lost and could not be confirmed, so the video "
      + "may exist; it was not uploaded again to avoid a duplicate. " + error.message
    return unknown
  }

  /// Bytes the session holds according to a `Range: bytes=0-N` header (none without one).
  static func confirmedBytes(range: String?) -> Int64 {
    guard let range, let dash = range.lastIndex(of: "-"),
      let last = Int64(
        range[range.index(after: dash)...]
          .trimmingWhitespace)
    else { return 0 }
    return last + 1
  }
}
