#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience
import Synchronization

/// Which credential a call uses, as the parent names it.
public struct CredentialKey: Hashable, Sendable, CustomStringConvertible {
  public var platform: Platform
  public var credentialRef: String
  public var customerId: String

  public init(platform: Platform, credentialRef: String, customerId: String) {
    self.platform = platform
    self.credentialRef = credentialRef
    self.customerId = customerId
  }

  /// References only: safe for logs.
  public var description: String { "\(platform)/\(credentialRef)@\(customerId)" }
}

/// A credential as the parent resolves it (`credentials/resolve` result). Its description never shows secrets.
public struct Credential: Sendable, Equatable, CustomStringConvertible {
  public var accessToken: String
  public var refreshToken: String?
  public var expiresAt: Date?
  /// Page id, Instagram user id, organization URN, phone number id or channel id.
  public var accountId: String
  public var clientId: String?
  public var clientSecret: String?
  /// Which login produced the token where a platform has several; `instagram_login` selects the Instagram API
  /// with Instagram Login (graph.instagram.com), which can refresh its tokens.
  public var variant: String?
  /// Meta only: the app secret that signs every Graph call (`appsecret_proof`); overrides the configured one.
  public var appSecret: String?

  public init(
    accessToken: String, refreshToken: String? = nil, expiresAt: Date? = nil, accountId: String,
    clientId: String? = nil,
    clientSecret: String? = nil, variant: String? = nil, appSecret: String? = nil
  ) {
    self.accessToken = accessToken
    self.refreshToken = refreshToken
    self.expiresAt = expiresAt
    self.accountId = accountId
    self.clientId = clientId
    self.clientSecret = clientSecret
    self.variant = variant
    self.appSecret = appSecret
  }

  public var description: String {
    let expiry = expiresAt.map { RFC3339.string(from: $0) } ?? "never"
    return "Credential(account: \(accountId), expiresAt: \(expiry), secrets redacted)"
  }

  /// Every secret this credential holds, for tests and redaction.
  public var secrets: [String] {
    [accessToken, refreshToken, clientSecret, appSecret].compactMap { $0 }.filter { !$0.isEmpty }
  }
}

/// Where credentials come from and where refreshed ones go: the parent process, in production.
public protocol CredentialSource: Sendable {
  /// Resolves a credential; throws ``SidecarError`` of kind `credential_unavailable` when it cannot.
  func resolve(_ key: CredentialKey) async throws(SidecarError) -> Credential
  /// Hands a refreshed credential to the parent to persist; returns only once the parent acknowledged it.
  func update(_ key: CredentialKey, credential: Credential) async throws
}

/// Caches resolved credentials until they expire, shares resolution and refresh between concurrent calls, and makes
/// sure every refreshed token reaches the parent.
///
/// The cache is bounded twice: an entry lives at most `cacheLifetime` (a credential without `expiresAt` would otherwise
/// stay forever, and the parent could never revoke it), and at most `cacheCapacity` entries are kept (the oldest goes
/// first), so memory does not grow with the number of customers ever seen.
///
/// A refreshed token must never be lost: rotating refresh tokens (Google, LinkedIn, Instagram) make the old one
/// useless, so the new one is handed to the parent with `credentials/update` and retried until acknowledged. Shutdown
/// waits for those updates (``flushUpdates(timeout:)``).
public final class CredentialStore: Sendable {
  private let source: any CredentialSource
  private let clock: any SidecarClock
  private let logger: Logger
  private let cache = Mutex<[CredentialKey: Cached]>([:])
  private let resolving = SingleFlight<CredentialKey, Credential>()
  private let refreshing = SingleFlight<CredentialKey, Credential>()
  private let pendingUpdates = Mutex<[CredentialKey: Task<Void, Never>]>([:])
  /// Tokens closer than this to expiry are refreshed before use, where the platform can refresh.
  public let refreshMargin: Duration
  /// The longest a credential is used before the parent is asked again, whatever its `expiresAt`.
  public let cacheLifetime: Duration
  /// The most credentials kept at once.
  public let cacheCapacity: Int
  /// The waits between attempts to hand a refreshed credential to the parent (`credentials/update`), retried until
  /// acknowledged or superseded.
  private let updateRetry: RetryPolicy
  /// The refresh lease shared with other sidecars, when they share a store.
  private let fleet: (any RefreshLeases)?

  private struct Cached {
    var credential: Credential
    /// When it entered the cache (the clock's monotonic time).
    var since: ClockInstant
  }

  public init(
    source: any CredentialSource, clock: any SidecarClock, logger: Logger, refreshMargin: Duration = .seconds(300),
    cacheLifetime: Duration = .seconds(3600), cacheCapacity: Int = 10_000,
    updateRetry: RetryPolicy = RetryPolicy(maxAttempts: .max, baseDelay: .milliseconds(250), maxDelay: .seconds(10)),
    fleet: (any RefreshLeases)? = nil
  ) {
    self.fleet = fleet
    self.source = source
    self.clock = clock
    self.logger = logger
    self.refreshMargin = refreshMargin
    self.cacheLifetime = cacheLifetime
    self.cacheCapacity = max(1, cacheCapacity)
    self.updateRetry = updateRetry
  }

  /// Credentials cached now (expired ones included until they are looked up or pushed out).
  public var cachedCount: Int { cache.withLock { $0.count } }

  /// The cached credential for `key` while it is unexpired and younger than `cacheLifetime`.
  private func cached(_ key: CredentialKey) -> Credential? {
    let (now, wallNow) = (clock.now(), clock.wallNow())
    return cache.withLock { cache in
      guard let entry = cache[key] else { return nil }
      guard !entry.credential.isExpired(at: wallNow), entry.since.duration(to: now) < cacheLifetime else {
        cache[key] = nil
        return nil
      }
      return entry.credential
    }
  }

  /// Caches `credential`, pushing out the oldest entry when the cache is full.
  private func store(_ credential: Credential, for key: CredentialKey, in cache: inout [CredentialKey: Cached]) {
    if cache[key] == nil && cache.count >= cacheCapacity,
      let oldest = cache.min(by: { $0.value.since < $1.value.since })?.key
    {
      cache[oldest] = nil
    }
    cache[key] = Cached(credential: credential, since: clock.now())
  }

  /// The credential for `key`: cached while unexpired, otherwise resolved once however many calls ask.
  public func credential(_ key: CredentialKey) async throws(SidecarError) -> Credential {
    if let cached = cached(key) { return cached }
    do {
      let credential = try await resolving.run(key) { [source] () async throws -> Credential in
        try await source.resolve(key)
      }
      // A refresh that finished while the parent was asked is newer than what the parent holds until it acknowledges
      // the update: keep it, rather than go back to the expired token and refresh a second time.
      let now = clock.wallNow()
      return cache.withLock { cache in
        if let current = cache[key]?.credential, !current.isExpired(at: now),
          current.accessToken != credential.accessToken
        {
          return current
        }
        store(credential, for: key, in: &cache)
        return credential
      }
    } catch let error as SidecarError {
      throw error
    } catch is CancellationError {
      throw SidecarError(
        kind: .cancelled, message: "cancelled while resolving the credential", platform: key.platform.rawValue,
        attempts: 0)
    } catch {
      throw SidecarError(
        kind: .credentialUnavailable, message: "could not resolve credential \(key.credentialRef): \(error)",
        platform: key.platform.rawValue, attempts: 0)
    }
  }

  /// True when `credential` should be refreshed before use.
  public func needsRefresh(_ credential: Credential) -> Bool {
    guard let expiresAt = credential.expiresAt else { return false }
    return expiresAt.timeIntervalSince(clock.wallNow()) < Double(refreshMargin.components.seconds)
  }

  /// Refreshes the credential once for all concurrent callers and hands the result to the parent.
  ///
  /// - Parameters:
  ///   - stale: the credential the caller found wanting; if the cache already holds a different token, another
  ///     caller refreshed meanwhile and that token is returned without a second refresh.
  ///   - refresher: performs the platform's token exchange.
  public func refresh(
    _ key: CredentialKey, stale: Credential,
    using refresher: @escaping @Sendable (Credential) async throws(SidecarError) -> Credential
  ) async throws(SidecarError) -> Credential {
    if let cached = cached(key), cached.accessToken != stale.accessToken { return cached }
    do {
      return try await refreshing.run(key) { [self] () async throws -> Credential in
        if let cached = cached(key), cached.accessToken != stale.accessToken { return cached }
        let lease = await fleet?.acquire(key)
        do {
          let fresh = try await refreshHolding(lease, key, stale: stale, using: refresher)
          await lease?.release()
          return fresh
        } catch {
          await lease?.release()
          throw error
        }
      }
    } catch let error as SidecarError {
      throw error
    } catch is CancellationError {
      throw SidecarError(
        kind: .cancelled, message: "cancelled while refreshing the credential", platform: key.platform.rawValue,
        attempts: 0)
    } catch {
      throw SidecarError(
        kind: .authFailed, message: "token refresh failed: \(error)", platform: key.platform.rawValue, attempts: 0)
    }
  }

  /// The refresh proper, with the fleet's lease (if any) held: a replica that held it before us may have refreshed
  /// already, and the parent then has its token.
  private func refreshHolding(
    _ lease: RefreshLease?, _ key: CredentialKey, stale: Credential,
    using refresher: @escaping @Sendable (Credential) async throws(SidecarError) -> Credential
  ) async throws -> Credential {
    if lease != nil, let current = try? await source.resolve(key), current.accessToken != stale.accessToken {
      cache.withLock { store(current, for: key, in: &$0) }
      logger.info("credential refreshed by another sidecar", ["credential": .string(key.description)])
      return current
    }
    var fresh = try await refresher(stale)
    // A rotated refresh token is kept; an absent or empty one never replaces the one we have.
    if fresh.refreshToken?.isEmpty ?? true { fresh.refreshToken = stale.refreshToken }
    if fresh.clientId == nil { fresh.clientId = stale.clientId }
    if fresh.clientSecret == nil { fresh.clientSecret = stale.clientSecret }
    if fresh.variant == nil { fresh.variant = stale.variant }
    if fresh.appSecret == nil { fresh.appSecret = stale.appSecret }
    cache.withLock { store(fresh, for: key, in: &$0) }
    logger.info("credential refreshed", ["credential": .string(key.description)])
    await persist(key, fresh)
    return fresh
  }

  /// Forgets a cached credential (the platform said it is dead, or the parent changed it).
  public func invalidate(_ key: CredentialKey) {
    _ = cache.withLock { $0.removeValue(forKey: key) }
  }

  /// Hands a refreshed credential to the parent: once at once (the refresh answers only after the parent has the
  /// token, so a crash right after cannot lose a rotated refresh token), then in the background until acknowledged.
  /// A newer update for the same key supersedes an older one still retrying, so the parent never ends up with a
  /// stale token.
  private func persist(_ key: CredentialKey, _ credential: Credential) async {
    let previous = pendingUpdates.withLock { $0.removeValue(forKey: key) }
    previous?.cancel()
    do {
      try await source.update(key, credential: credential)
      logger.debug("credentials/update acknowledged", ["credential": .string(key.description)])
      return
    } catch {
      logger.warn(
        "credentials/update not acknowledged; retrying in the background",
        ["credential": .string(key.description), "error": .string("\(error)")])
    }
    let task = Task { [source, logger, clock, updateRetry] in
      var attempt = 0
      while !Task.isCancelled {
        attempt += 1
        let delay = updateRetry.delay(beforeRetry: attempt, random: SystemRandom())
        try? await clock.sleep(until: clock.now() + delay)
        guard !Task.isCancelled else { return }
        do {
          try await source.update(key, credential: credential)
          logger.info(
            "credentials/update acknowledged after retrying",
            ["credential": .string(key.description), "attempt": .int(attempt + 1)])
          return
        } catch {
          logger.warn(
            "credentials/update not acknowledged; retrying",
            ["credential": .string(key.description), "attempt": .int(attempt + 1), "error": .string("\(error)")])
        }
      }
    }
    pendingUpdates.withLock { $0[key] = task }
    Task { [self] in
      await task.value
      pendingUpdates.withLock { updates in
        if updates[key] == task { updates[key] = nil }
      }
    }
  }

  /// Number of refreshed credentials the parent has not acknowledged yet.
  public var unacknowledgedUpdates: Int { pendingUpdates.withLock { $0.count } }

  /// Waits until every `credentials/update` was acknowledged, or `timeout` passes.
  public func flushUpdates(timeout: Duration) async {
    let deadline = ContinuousClock.now + timeout
    while unacknowledgedUpdates > 0 && ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(10))
    }
  }
}

extension Credential {
  func isExpired(at now: Date) -> Bool {
    guard let expiresAt else { return false }
    return expiresAt <= now
  }
}
