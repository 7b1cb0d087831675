import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import Synchronization

/// An HTTP transport that answers from a script and records every request, for platform unit tests.
final class ScriptedTransport: HTTPTransport {
  enum Reply: Sendable {
    case response(HTTPResponse)
    case failure(TransportError)
  }

  struct Recorded: Sendable {
    var method: String
    var url: URL
    var headers: HTTPHeaders
    var body: Data
    var timeout: Duration?
    var pinnedAddresses: [String] = []

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { try? JSONParser.parse(body) }
  }

  private let state = Mutex<(replies: [Reply], recorded: [Recorded])>(([], []))
  /// Answers when the script runs dry.
  private let fallback: (@Sendable (HTTPRequest) -> Reply)?

  init(_ replies: [Reply] = [], fallback: (@Sendable (HTTPRequest) -> Reply)? = nil) {
    state.withLock { $0.replies = replies }
    self.fallback = fallback
  }

  static func json(_ status: Int, _ body: String, headers: HTTPHeaders = [:]) -> Reply {
    var headers = headers
    if !headers.contains("Content-Type") { headers.add(name: "Content-Type", value: "application/json") }
    return .response(HTTPResponse(status: status, headers: headers, body: Data(body.utf8)))
  }

  func enqueue(_ reply: Reply) { state.withLock { $0.replies.append(reply) } }

  var requests: [Recorded] { state.withLock { $0.recorded } }

  func send(_ request: HTTPRequest) async throws -> HTTPResponse {
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
    let reply = state.withLock { state -> Reply? in
      state.recorded.append(
        Recorded(
          method: request.method, url: request.url, headers: request.headers, body: body, timeout: request.timeout,
          pinnedAddresses: request.pinnedAddresses))
      return state.replies.isEmpty ? nil : state.replies.removeFirst()
    }
    guard let reply = reply ?? fallback?(request) else {
      throw TransportError(.other, requestSent: false, message: "script ran dry")
    }
    switch reply {
    case .response(let response): return response
    case .failure(let error): throw error
    }
  }

  func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    let response = try await send(request)
    guard response.body.count <= maxBytes else {
      throw TransportError(.tooLarge, requestSent: true, message: "response body over the size cap")
    }
    _ = FileManager.default.createFile(atPath: path, contents: response.body, attributes: [.posixPermissions: 0o600])
    return (HTTPResponse(status: response.status, headers: response.headers), Int64(response.body.count))
  }
}

/// A credential source that hands out fixed credentials and records updates.
final class FixedCredentials: CredentialSource {
  private let state: Mutex<(credentials: [CredentialKey: Credential], updates: [(CredentialKey, Credential)], resolves: Int)>

  init(_ credentials: [CredentialKey: Credential]) {
    state = Mutex((credentials, [], 0))
  }

  func resolve(_ key: CredentialKey) async throws(SidecarError) -> Credential {
    let credential = state.withLock { state -> Credential? in
      state.resolves += 1
      return state.credentials[key]
    }
    guard let credential else {
      throw SidecarError(kind: .credentialUnavailable, message: "unknown credential \(key.credentialRef)")
    }
    return credential
  }

  func update(_ key: CredentialKey, credential: Credential) async throws {
    state.withLock { $0.updates.append((key, credential)) }
  }

  var updates: [(CredentialKey, Credential)] { state.withLock { $0.updates } }
  var resolveCount: Int { state.withLock { $0.resolves } }
}

/// A platform environment over a scripted transport with fast, deterministic resilience settings.
struct TestHarness {
  let transport: ScriptedTransport
  let environment: PlatformEnvironment
  let credentials: FixedCredentials
  let store: CredentialStore
  let logs = InMemoryLogSink()

  init(transport: ScriptedTransport, credentials: [CredentialKey: Credential], clock: any SidecarClock = SystemClock(),
       // Platform tests follow platform-requested waits of minutes; the bound on them is the core's tests' concern.
       retry: RetryPolicy = RetryPolicy(
         maxAttempts: 3, baseDelay: .milliseconds(1), maxDelay: .milliseconds(4), maxWait: .seconds(300)),
       counters: (any SharedCounters)? = nil)
  {
    self.transport = transport
    let logger = Logger(level: .debug, sink: logs)
    let core = ResilienceCore(
      retry: retry, breaker: BreakerConfiguration(), budget: RetryBudgetConfiguration(), clock: clock,
      random: SeededRandom(seed: 1), counters: counters, onBreakerTransition: { _, _, _ in })
    // A short per-attempt timeout: the scripted transport never waits, and a lost answer's settle time is this long.
    environment = PlatformEnvironment(
      endpoints: PlatformEndpoints(), transport: transport, core: core,
      media: MediaPolicy(allowPrivateNetworks: false, localRoots: [Self.temporaryRoot]),
      timeout: .milliseconds(20), logger: logger)
    self.credentials = FixedCredentials(credentials)
    store = CredentialStore(source: self.credentials, clock: clock, logger: logger)
  }

  /// The real path of the temporary directory, where tests put local videos: the harness's `media.localRoots`.
  static let temporaryRoot: String = {
    let resolved = realpath(NSTemporaryDirectory(), nil)!
    defer { free(resolved) }
    return String(cString: resolved)
  }()

  func context(_ key: CredentialKey, deadline: Duration? = nil, progress: WorkDoneProgress? = nil) -> OperationContext {
    let clock = environment.clock
    return OperationContext(
      key: key, agentId: "AGENT-1", correlationId: "corr-1",
      call: CallContext(deadline: deadline.map { clock.now() + $0 }, progress: progress), credentials: store,
      logger: environment.logger)
  }
}
