#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience

/// The OAuth 2.0 refresh-token grant (RFC 6749 §6) as Google and LinkedIn serve it.
///
/// Asking for a new access token twice does no harm, so transient failures are retried like any idempotent step. A
/// refresh token the provider refuses is final: the user has to reconnect the account, and the error says so. Tokens
/// and the client secret travel only in the request body; no message, log line or error ever carries one.
public struct OAuth2Refresher: Sendable {
  public let platform: Platform
  public let tokenURL: URL
  let http: PlatformHTTP
  let clock: any SidecarClock

  /// - Parameters:
  ///   - tokenURL: `platforms.youtube.tokenUrl` or `platforms.linkedin.tokenUrl`.
  public init(platform: Platform, tokenURL: String, http: PlatformHTTP, clock: any SidecarClock) {
    self.platform = platform
    self.tokenURL = Encoding.parse(tokenURL)
    self.http = http
    self.clock = clock
  }

  /// Exchanges the credential's refresh token for a new access token.
  ///
  /// The result keeps everything the stale credential had (account, client, refresh token) except what the provider
  /// returned anew: the access token, its expiry and, where the provider rotates them, the refresh token.
  /// - Parameters:
  ///   - deadline: the calling operation's deadline; the refresh has its own counters so that it does not count as a
  ///     retry of the operation.
  public func refresh(_ credential: Credential, deadline: ClockInstant?) async throws(SidecarError) -> Credential {
    guard let refreshToken = credential.refreshToken, !refreshToken.isEmpty else {
      throw SidecarError(
        kind: .authFailed,
        message:
          "The \(platform.displayName) access token is expired or was rejected, and the credential has no refresh "
          + "token to renew it: the account must be reconnected.",
        platform: platform.rawValue)
    }
    guard let clientId = credential.clientId, !clientId.isEmpty, let clientSecret = credential.clientSecret,
      !clientSecret.isEmpty
    else {
      throw SidecarError(
        kind: .authFailed,
        message:
          "The \(platform.displayName) access token needs refreshing, but credentials/resolve returned no clientId "
          + "and clientSecret, which the refresh needs.",
        platform: platform.rawValue)
    }
    let body = Encoding.form([
      ("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", clientId),
      ("client_secret", clientSecret),
    ])
    let request = HTTPRequest(
      method: "POST", url: tokenURL,
      headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
      body: .bytes(Data(body.utf8)))
    let platform = platform
    let (_, json) = try await http.sendJSON(request, step: .idempotent, context: CallContext(deadline: deadline)) {
      response in
      (200..<300).contains(response.status) ? nil : Self.failure(response, platform: platform)
    }
    guard let accessToken = json["access_token"]?.stringValue, !accessToken.isEmpty else {
      throw SidecarError(
        kind: .permanent, message: "The \(platform.displayName) token endpoint answered without an access token.",
        platform: platform.rawValue)
    }
    var fresh = credential
    fresh.accessToken = accessToken
    let expiresIn = json["expires_in"].flatMap { $0.intValue ?? $0.stringValue.flatMap { Int($0) } }
    fresh.expiresAt = expiresIn.map { clock.wallNow().addingTimeInterval(Double($0)) }
    if let rotated = json["refresh_token"]?.stringValue, !rotated.isEmpty { fresh.refreshToken = rotated }
    return fresh
  }

  /// The refresher that ``OperationContext/withCredential(refresher:_:)`` runs, bounded by the operation's deadline.
  public func refresher(for context: OperationContext)
    -> @Sendable (Credential) async throws(SidecarError) -> Credential
  {
    let deadline = context.call.deadline
    return { [self] (credential: Credential) async throws(SidecarError) -> Credential in
      try await refresh(credential, deadline: deadline)
    }
  }

  /// `<platform>/refresh`: refreshes the access token now; the credential store hands it to the parent
  /// (`credentials/update`) and keeps a rotated refresh token.
  /// - Parameters:
  ///   - withoutRefreshToken: why this credential cannot be refreshed when it has no refresh token, and what to do.
  public func refreshNow(context: OperationContext, withoutRefreshToken: String) async throws(SidecarError)
    -> RefreshResult
  {
    let credential = try await context.credentials.credential(context.key)
    guard let refreshToken = credential.refreshToken, !refreshToken.isEmpty else {
      throw SidecarError(kind: .unsupported, message: withoutRefreshToken, platform: platform.rawValue)
    }
    let fresh = try await context.credentials.refresh(context.key, stale: credential, using: refresher(for: context))
    return RefreshResult(refreshed: true, expiresAt: fresh.expiresAt)
  }

  /// What a token endpoint's error answer means (RFC 6749 §5.2 `{"error", "error_description"}`).
  static func failure(_ response: HTTPResponse, platform: Platform) -> PlatformFailure {
    let json = try? JSONParser.parse(response.body)
    let code = json?["error"]?.stringValue
    let description = json?["error_description"]?.stringValue
    let name = platform.displayName
    let detail = [code, description].compactMap { $0 }.joined(separator: ": ")
    func failure(_ classification: PlatformFailure.Classification, _ message: String) -> PlatformFailure {
      PlatformFailure(
        classification, message: message, httpStatus: response.status, platformCode: code.map { .string($0) },
        platformMessage: description,
        retryAfter: response.headers["Retry-After"].flatMap { RetryAfter.parse($0, now: Date()) })
    }
    // LinkedIn answers a dead refresh token with `invalid_request` and this description rather than `invalid_grant`.
    let deadGrant =
      code == "invalid_grant"
      || (code == "invalid_request" && (description ?? "").lowercased().contains("expired or revoked"))
    switch response.status {
    case _ where deadGrant:
      return failure(
        .auth(refreshable: false),
        "\(name) refused the refresh token (it was revoked or has expired): the account must be reconnected.")
    case 429:
      return failure(.rateLimited(scope: .app), "\(name)'s token endpoint is rate limiting refreshes.")
    case 408, 500...599:
      return failure(.transient, "\(name)'s token endpoint answered HTTP \(response.status).")
    case _ where code == "invalid_client" || response.status == 401:
      return failure(
        .permanent,
        "\(name) refused the app's client id or secret (\(detail.isEmpty ? "HTTP \(response.status)" : detail)); "
          + "check the clientId and clientSecret the parent supplies.")
    default:
      return failure(
        .permanent,
        "\(name)'s token endpoint refused the refresh (\(detail.isEmpty ? "HTTP \(response.status)" : detail)).")
    }
  }
}
