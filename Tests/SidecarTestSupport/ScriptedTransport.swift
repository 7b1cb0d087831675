import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import Synchronization

/// An HTTP transport that answers from a script and records every request, for unit tests of the platform clients
/// and of the operation pipeline above them.
public final class ScriptedTransport: HTTPTransport {
  public enum Reply: Sendable {
    case response(HTTPResponse)
    case failure(TransportError)
    /// Holds the request, as sent, until its task is cancelled; then throws `CancellationError` like a real transport.
    case holdUntilCancelled
  }

  public struct Recorded: Sendable {
    public var method: String
    public var url: URL
    public var headers: HTTPHeaders
    public var body: Data
    public var timeout: Duration?
    public var pinnedAddresses: [String] = []

    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: JSONValue? { try? JSONParser.parse(body) }
  }

  private let state = Mutex<
    (replies: [Reply], recorded: [Recorded], arrivals: [(Int, CheckedContinuation<Void, Never>)])
  >(
    ([], [], []))
  /// Answers when the script runs dry.
  private let fallback: (@Sendable (HTTPRequest) -> Reply)?

  public init(_ replies: [Reply] = [], fallback: (@Sendable (HTTPRequest) -> Reply)? = nil) {
    state.withLock { $0.replies = replies }
    self.fallback = fallback
  }

  public static func json(_ status: Int, _ body: String, headers: HTTPHeaders = [:]) -> Reply {
    var headers = headers
    if !headers.contains("Content-Type") { headers.add(name: "Content-Type", value: "application/json") }
    return .response(HTTPResponse(status: status, headers: headers, body: Data(body.utf8)))
  }

  public func enqueue(_ reply: Reply) { state.withLock { $0.replies.append(reply) } }

  public var requests: [Recorded] { state.withLock { $0.recorded } }

  /// Returns once `count` requests have reached the transport (for a test to act while one is held).
  public func requestsArrived(_ count: Int) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let arrived = state.withLock { state in
        if state.recorded.count < count { state.arrivals.append((count, continuation)) }
        return state.recorded.count >= count
      }
      if arrived { continuation.resume() }
    }
  }

  public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    try Task.checkCancellation()
    let body: Data
    switch request.body {
    case .empty: body = Data()
    case .bytes(let data): body = data
    case .file(let path, let offset, let length):
      let handle = FileHandle(forReadingAtPath: path)!
      try handle.seek(toOffset: UInt64(offset))
      body = handle.readData(ofLength: Int(length))
      try handle.close()
    }
    let (reply, arrived) = state.withLock { state in
      state.recorded.append(
        Recorded(
          method: request.method, url: request.url, headers: request.headers, body: body, timeout: request.timeout,
          pinnedAddresses: request.pinnedAddresses))
      let arrived = state.arrivals.filter { $0.0 <= state.recorded.count }.map(\.1)
      state.arrivals.removeAll { $0.0 <= state.recorded.count }
      return (state.replies.isEmpty ? nil : state.replies.removeFirst(), arrived)
    }
    for continuation in arrived { continuation.resume() }
    guard let reply = reply ?? fallback?(request) else {
      throw TransportError(.other, requestSent: false, message: "script ran dry")
    }
    switch reply {
    case .response(let response): return response
    case .failure(let error): throw error
    case .holdUntilCancelled:
      while true { try await Task.sleep(for: .seconds(3600)) }
    }
  }

  public func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    let response = try await send(request)
    guard response.body.count <= maxBytes else {
      throw TransportError(.tooLarge, requestSent: true, message: "response body over the size cap")
    }
    _ = FileManager.default.createFile(atPath: path, contents: response.body, attributes: [.posixPermissions: 0o600])
    return (HTTPResponse(status: response.status, headers: response.headers), Int64(response.body.count))
  }
}

/// A credential source that hands out fixed credentials and records updates.
public final class FixedCredentials: CredentialSource {
  private let state:
    Mutex<(credentials: [CredentialKey: Credential], updates: [(CredentialKey, Credential)], resolves: Int)>

  public init(_ credentials: [CredentialKey: Credential]) {
    state = Mutex((credentials, [], 0))
  }

  public func resolve(_ key: CredentialKey) async throws(SidecarError) -> Credential {
    let credential = state.withLock { state -> Credential? in
      state.resolves += 1
      return state.credentials[key]
    }
    guard let credential else {
      throw SidecarError(kind: .credentialUnavailable, message: "unknown credential \(key.credentialRef)")
    }
    return credential
  }

  public func update(_ key: CredentialKey, credential: Credential) async throws {
    state.withLock { $0.updates.append((key, credential)) }
  }

  public var updates: [(CredentialKey, Credential)] { state.withLock { $0.updates } }
  public var resolveCount: Int { state.withLock { $0.resolves } }
}
