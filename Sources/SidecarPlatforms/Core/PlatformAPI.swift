#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// A family's API layer over plain HTTP requests (`GoogleAPI`, `LinkedInAPI`): it builds the requests and says what an
/// error answer means; sending them through the resilience core is the same for every family and comes with it.
/// (`GraphAPI` sends `GraphCall`s, which carry the token and its proof, with the same rules.)
protocol PlatformAPI: Sendable {
  var http: PlatformHTTP { get }
  /// What an error answer to a call made with `credential` means.
  func failure(_ response: HTTPResponse, credential: Credential) -> PlatformFailure
}

extension PlatformAPI {
  var clock: any SidecarClock { http.core.clock }

  /// Sends `request` through the resilience core: a 2xx, or an answer `answering` accepts (a 404 that means "gone"),
  /// is returned; anything else fails as ``failure(_:credential:)`` says.
  @inline(never)
  func send(
    _ request: HTTPRequest, credential: Credential, step: StepSafety = .idempotent, gates: [RateLimitKey] = [],
    answering: @escaping @Sendable (HTTPResponse) -> Bool = { _ in false }, context: CallContext
  ) async throws(SidecarError) -> HTTPResponse {
    try await http.send(request, step: step, gates: gates, context: context, classify: accept(credential, answering))
  }

  /// ``send(_:credential:step:gates:answering:context:)`` for an answer whose body is JSON.
  @inline(never)
  func sendJSON(
    _ request: HTTPRequest, credential: Credential, step: StepSafety = .idempotent, gates: [RateLimitKey] = [],
    answering: @escaping @Sendable (HTTPResponse) -> Bool = { _ in false }, context: CallContext
  ) async throws(SidecarError) -> (HTTPResponse, JSONValue) {
    try await http.sendJSON(
      request, step: step, gates: gates, context: context, classify: accept(credential, answering))
  }

  private func accept(
    _ credential: Credential, _ answering: @escaping @Sendable (HTTPResponse) -> Bool
  ) -> @Sendable (HTTPResponse) -> PlatformFailure? {
    { [self] response in
      (200..<300).contains(response.status) || answering(response) ? nil : failure(response, credential: credential)
    }
  }
}
