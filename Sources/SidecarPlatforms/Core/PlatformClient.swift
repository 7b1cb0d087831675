#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience
import Synchronization

/// Everything one platform operation needs to know about its caller.
public struct OperationContext: Sendable {
  public let key: CredentialKey
  public let customerId: String
  public let agentId: String?
  public let correlationId: String?
  /// The whole call's deadline and counters (attempts, retries).
  public let call: CallContext
  /// The credential store, through a view that remembers every secret this operation was handed (see ``redacted(_:)``).
  public let credentials: OperationCredentials
  public let logger: Logger
  /// The publish's idempotency scope (platform, operation, customer and the caller's key), when it has one: the same in
  /// every sidecar, so an upload can be tagged with a marker another process can find (YouTube).
  public let idempotencyScope: String?

  public init(
    key: CredentialKey, agentId: String?, correlationId: String?, call: CallContext, credentials: CredentialStore,
    logger: Logger, idempotencyScope: String? = nil
  ) {
    self.idempotencyScope = idempotencyScope
    self.key = key
    self.customerId = key.customerId
    self.agentId = agentId
    self.correlationId = correlationId
    self.call = call
    self.credentials = OperationCredentials(credentials)
    self.logger = logger
  }

  /// The one redaction step every platform's errors pass through before they are answered, journaled, logged or
  /// sent as events: every secret of every credential this operation saw (access and refresh tokens, client secrets)
  /// is replaced by `[redacted]` in the message and in the platform's own code and message, since a platform's error
  /// body may echo what it was sent.
  public func redacted(_ error: SidecarError) -> SidecarError {
    Redaction.scrub(error, secrets: credentials.secretsSeen)
  }

  /// Runs `body` with the credential, refreshing it first when it is about to expire and once more after an auth
  /// failure that a refresh can cure. Without a `refresher` (Meta page tokens) an auth failure is final.
  public func withCredential<T: Sendable>(
    refresher: (@Sendable (Credential) async throws(SidecarError) -> Credential)?,
    _ body: (Credential) async throws(SidecarError) -> T
  ) async throws(SidecarError) -> T {
    let credential = try await currentCredential(refresher: refresher)
    do {
      return try await body(credential)
    } catch let error where refreshCures(error) {
      return try await afterRefresh(credential, error, refresher: refresher, body)
    }
  }

  /// The cached or resolved credential, refreshed first when it is about to expire.
  @inline(never)
  private func currentCredential(
    refresher: (@Sendable (Credential) async throws(SidecarError) -> Credential)?
  ) async throws(SidecarError) -> Credential {
    let credential = try await credentials.credential(key)
    guard let refresher, refreshesFirst(credential) else { return credential }
    return try await credentials.refresh(key, stale: credential, using: refresher)
  }

  /// Runs `body` once more with a refreshed credential after `error`, which a refresh can cure.
  @inline(never)
  private func afterRefresh<T: Sendable>(
    _ stale: Credential, _ error: SidecarError,
    refresher: (@Sendable (Credential) async throws(SidecarError) -> Credential)?,
    _ body: (Credential) async throws(SidecarError) -> T
  ) async throws(SidecarError) -> T {
    guard let refresher else {
      credentials.invalidate(key)
      throw error
    }
    let credential = try await credentials.refresh(key, stale: stale, using: refresher)
    call.retries += 1  // the step runs again with the new token: that is a retry the caller should see
    return try await body(credential)
  }

  // Synchronous and never inlined, so that they add nothing to `withCredential`'s async frame.

  @inline(never)
  private func refreshesFirst(_ credential: Credential) -> Bool {
    credentials.needsRefresh(credential) && (credential.refreshToken != nil || key.platform == .instagram)
  }

  @inline(never)
  private func refreshCures(_ error: SidecarError) -> Bool {
    error.kind == .authFailed && error.failure?.classification == .auth(refreshable: true)
  }
}

/// The credential store as one operation uses it: it passes calls through and remembers the secrets of every
/// credential it handed out (resolved or refreshed), for ``OperationContext/redacted(_:)``.
public final class OperationCredentials: Sendable {
  public let store: CredentialStore
  private let seen = Mutex<Set<String>>([])

  init(_ store: CredentialStore) { self.store = store }

  public func credential(_ key: CredentialKey) async throws(SidecarError) -> Credential {
    noting(try await store.credential(key))
  }

  public func refresh(
    _ key: CredentialKey, stale: Credential,
    using refresher: @escaping @Sendable (Credential) async throws(SidecarError) -> Credential
  ) async throws(SidecarError) -> Credential {
    _ = noting(stale)
    return noting(try await store.refresh(key, stale: stale, using: refresher))
  }

  public func invalidate(_ key: CredentialKey) { store.invalidate(key) }
  public func needsRefresh(_ credential: Credential) -> Bool { store.needsRefresh(credential) }

  /// Every secret handed out through this view so far.
  public var secretsSeen: Set<String> { seen.withLock { $0 } }

  private func noting(_ credential: Credential) -> Credential {
    seen.withLock { $0.formUnion(credential.secrets) }
    return credential
  }
}

/// A prepared operation: params were checked up front; running it talks to the platform.
public struct PreparedOperation<Result: Sendable>: Sendable {
  public let run: @Sendable (OperationContext) async throws(SidecarError) -> Result

  public init(_ run: @escaping @Sendable (OperationContext) async throws(SidecarError) -> Result) {
    self.run = run
  }
}

/// One platform's operations. Implementations build requests and map responses; the core does the rest.
public protocol PlatformClient: Sendable {
  var platform: Platform { get }

  /// Checks content params (without the common ones: credentialRef, customerId, …) and returns the publish.
  /// Content the platform cannot take is refused here, before any request.
  func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult>

  /// Proves the credential works for the account and can post.
  func validate(context: OperationContext) async throws(SidecarError) -> ValidationResult

  /// Refreshes the access token now (or says clearly that this platform's tokens cannot be refreshed).
  func refresh(context: OperationContext) async throws(SidecarError) -> RefreshResult

  /// The operations on existing posts this platform's API offers (advertised by `initialize`); the others answer
  /// `unsupported` with the reason (see `PostOperations.swift` for the defaults).
  var postOperations: Set<PostOperation> { get }

  /// Deletes the post; one already gone answers `deleted: false` with the reason.
  func delete(postId: String, context: OperationContext) async throws(SidecarError) -> DeleteResult

  /// The post's numbers in the common metric names, with the platform's answer as `raw`.
  func insights(postId: String, context: OperationContext) async throws(SidecarError) -> InsightsResult

  /// What became of the post: processing, published, scheduled, failed or deleted.
  func status(postId: String, context: OperationContext) async throws(SidecarError) -> StatusResult
}
