#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarPlatforms
import SidecarResilience

/// Credentials come from the parent process: `credentials/resolve` asks for one, `credentials/update` hands a
/// refreshed one back to persist. The parent is trusted; its answers are still checked for shape.
struct ParentCredentials: CredentialSource {
  let connection: Connection
  let resolveTimeout: Duration
  let updateTimeout: Duration

  func resolve(_ key: CredentialKey) async throws(SidecarError) -> Credential {
    let answer: JSONValue
    do {
      answer = try await connection.sendRequest(
        "credentials/resolve",
        params: [
          "platform": .string(key.platform.rawValue), "credentialRef": .string(key.credentialRef),
          "customerId": .string(key.customerId),
        ], timeout: resolveTimeout)
    } catch is CancellationError {
      throw SidecarError(
        kind: .cancelled, message: "cancelled while resolving the credential", platform: key.platform.rawValue)
    } catch let error as JSONRPCError {
      // `data.retryable: false` is the parent saying the credential does not exist: asking again cannot help.
      throw unavailable(
        key, "the parent answered credentials/resolve with an error: \(error.message)",
        retryable: error.data?["retryable"] == .bool(false) ? false : nil)
    } catch {
      throw unavailable(key, "\(error)")
    }
    guard let token = answer["accessToken"]?.stringValue, !token.isEmpty else {
      throw unavailable(key, "the parent's credentials/resolve answer has no accessToken")
    }
    guard let accountId = answer["accountId"]?.stringValue, !accountId.isEmpty else {
      throw unavailable(key, "the parent's credentials/resolve answer has no accountId")
    }
    return Credential(
      accessToken: token, refreshToken: answer["refreshToken"]?.stringValue,
      expiresAt: answer["expiresAt"].flatMap(Self.date), accountId: accountId,
      clientId: answer["clientId"]?.stringValue, clientSecret: answer["clientSecret"]?.stringValue,
      variant: answer["variant"]?.stringValue, appSecret: answer["appSecret"]?.stringValue)
  }

  func update(_ key: CredentialKey, credential: Credential) async throws {
    var params: [String: JSONValue] = [
      "platform": .string(key.platform.rawValue), "credentialRef": .string(key.credentialRef),
      "customerId": .string(key.customerId), "accessToken": .string(credential.accessToken),
      "accountId": .string(credential.accountId),
    ]
    if let refreshToken = credential.refreshToken { params["refreshToken"] = .string(refreshToken) }
    if let variant = credential.variant { params["variant"] = .string(variant) }
    params["expiresAt"] = credential.expiresAt.map { .string(RFC3339.string(from: $0)) } ?? .null
    _ = try await connection.sendRequest("credentials/update", params: .object(params), timeout: updateTimeout)
  }

  private func unavailable(_ key: CredentialKey, _ reason: String, retryable: Bool? = nil) -> SidecarError {
    SidecarError(
      kind: .credentialUnavailable, message: "credential \(key.credentialRef) is unavailable: \(reason)",
      platform: key.platform.rawValue, retryable: retryable)
  }

  /// `expiresAt` as RFC 3339 text or as Unix seconds.
  static func date(_ value: JSONValue) -> Date? {
    if let seconds = value.doubleValue { return Date(timeIntervalSince1970: seconds) }
    guard let text = value.stringValue else { return nil }
    if let date = try? Date(text, strategy: .iso8601) { return date }
    return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
  }
}
