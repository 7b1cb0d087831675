/// One token refresh per credential across every sidecar that shares a store.
///
/// Rotating refresh tokens (LinkedIn, some Google clients) allow one exchange: two replicas refreshing at once leave
/// one with `invalid_grant`. The sidecar that holds the lease refreshes and hands the token to the parent; one that
/// waited asks the parent again and uses the token it now has. The store holds only the lease, never a token.
public protocol RefreshLeases: Sendable {
  /// Waits, boundedly, for the fleet-wide refresh lease of `key`; nil when the store cannot give one (the refresh then
  /// runs under this process's single-flight only).
  func acquire(_ key: CredentialKey) async -> RefreshLease?
}

/// A held refresh lease; `release` hands it on (a holder that dies loses it to the kernel or to its expiry).
public struct RefreshLease: Sendable {
  public let release: @Sendable () async -> Void
  public init(release: @escaping @Sendable () async -> Void) { self.release = release }
}
