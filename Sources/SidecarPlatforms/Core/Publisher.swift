#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarResilience

/// The two slots of every platform's publish: `check` turns the content params into the platform's post (refusing,
/// before any request, what the platform would refuse) and `publish` sends a checked post over the family's API layer.
/// `preparePublish` is the same for every client: ``prepared(_:)``.
protocol Publisher: Sendable {
  /// A post that passed every check (`YouTubePost`, `LinkedInPost`, ...), with whatever else the publish needs.
  associatedtype Post: Sendable

  /// The content params (without the common ones) as a post; no I/O.
  func check(_ params: Params) throws(InvalidParams) -> Post

  /// Publishes `post`: takes the credential, runs the steps before the visible one (uploads, containers, sessions),
  /// sends the visible one as a `.publish` step and reconciles it when its answer is lost.
  func publish(_ post: Post, context: OperationContext) async throws(SidecarError) -> PostResult
}

extension Publisher {
  /// `PlatformClient.preparePublish`: the post checked now, published when the operation runs.
  func prepared(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    let post = try check(params)
    return PreparedOperation { [self] context throws(SidecarError) in try await publish(post, context: context) }
  }
}
