import Foundation
import SidecarHTTP
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarPlatforms
import SidecarResilience
import SidecarTestSupport
import Synchronization
import Testing

@testable import SidecarServer

/// A store that records which of its operations the pipeline used, in order, over a real ``LocalStateStore``.
private final class RecordingStore: SharedStateStore, RefreshLeases {
  private let store: any SharedStateStore & RefreshLeases
  private let log = Mutex<[String]>([])
  /// Claims fail as when Redis cannot be reached.
  private let unreachable: Bool

  init(_ store: LocalStateStore, unreachable: Bool = false) {
    self.store = store
    self.unreachable = unreachable
  }

  /// The operations used so far, as `claim`, `markSending`, `complete`, `completeUnknown`, `release`.
  var used: [String] { log.withLock { $0 } }

  private func note(_ operation: String) { log.withLock { $0.append(operation) } }

  func claim(key: String, fingerprint: String) async throws(SharedStateError) -> IdempotencyDecision {
    note("claim")
    if unreachable { throw SharedStateError(description: "connection refused") }
    return try await store.claim(key: key, fingerprint: fingerprint)
  }

  func markSending(key: String) async throws(SharedStateError) {
    note("markSending")
    try await store.markSending(key: key)
  }

  func complete(key: String, fingerprint: String, response: JSONValue) async throws(SharedStateError) {
    note("complete")
    try await store.complete(key: key, fingerprint: fingerprint, response: response)
  }

  func completeUnknown(key: String, fingerprint: String, error: JSONValue) async throws(SharedStateError) {
    note("completeUnknown")
    try await store.completeUnknown(key: key, fingerprint: fingerprint, error: error)
  }

  func release(key: String) async {
    note("release")
    await store.release(key: key)
  }

  var health: JSONValue { store.health }
  var isShared: Bool { store.isShared }
  func shareBlock(_ name: String, until: Date?, detail: JSONValue) async {
    await store.shareBlock(name, until: until, detail: detail)
  }
  func sharedBlocks() async -> [String: SharedBlock] { await store.sharedBlocks() }
  var counters: (any SharedCounters)? { store.counters }
  func acquire(_ key: CredentialKey) async -> RefreshLease? { await store.acquire(key) }
}

/// The services as `initialize` builds them, over a manual clock, a scripted transport and a recording store, with
/// the parent's end of the connection to read metric events from.
private struct Sidecar {
  static let whatsapp = CredentialKey(platform: .whatsapp, credentialRef: "cred-wa", customerId: "cust-1")
  static let facebook = CredentialKey(platform: .facebook, credentialRef: "cred-fb", customerId: "cust-1")

  let clock = ManualClock()
  let transport: ScriptedTransport
  let store: RecordingStore
  let parent = ParentPipes()
  let services: PlatformServices

  init(_ replies: [ScriptedTransport.Reply] = [], stateDir: String? = nil, storeUnreachable: Bool = false) throws {
    transport = ScriptedTransport(replies)
    store = RecordingStore(try LocalStateStore(directory: stateDir, logger: .disabled), unreachable: storeUnreachable)
    var configuration = SidecarConfiguration()
    configuration.retryMaxAttempts = 1  // a retry would wait on the manual clock; one attempt decides each case here
    services = PlatformServices(
      configuration: configuration, connection: parent.connection, logger: .disabled,
      dependencies: .init(
        clock: clock, random: SeededRandom(seed: 1), transport: transport, sharedState: store,
        credentialSource: FixedCredentials([
          Self.whatsapp: Credential(accessToken: "wa-token-SECRET", accountId: "30001"),
          Self.facebook: Credential(accessToken: "fb-token-SECRET", accountId: "111"),
        ])))
  }

  /// Calls `method` as the connection does: through the route, in a task of its own.
  func start(_ method: String, _ params: JSONValue, id: Int = 1) -> Task<Result<JSONValue, JSONRPCError>, Never> {
    guard case .task(let run) = services.route(method: method) else { fatalError("\(method) is not a platform call") }
    return Task { await run(params, .int(id)) }
  }

  func call(_ method: String, _ params: JSONValue, id: Int = 1) async -> Result<JSONValue, JSONRPCError> {
    await start(method, params, id: id).value
  }

  /// Moves time past any pacing or rate-limit block the last call left (WhatsApp paces messages to one recipient).
  func later() { clock.advance(by: .seconds(3600)) }

  /// The params of every `metrics/event` written so far (each is written before its call returns).
  func events() -> [JSONValue] {
    parent.written().filter { $0["method"] == "metrics/event" }.map { $0["params"] ?? .null }
  }
}

private let accepted = ScriptedTransport.json(
  200, #"{"messaging_product":"whatsapp","contacts":[{"wa_id":"15551234567"}],"messages":[{"id":"wamid.HBgLMTU1"}]}"#)

private func send(text: String = "Hello", key: String? = "order-42") -> JSONValue {
  var params: [String: JSONValue] = [
    "credentialRef": "cred-wa", "customerId": "cust-1", "agentId": "agent-1", "to": "+15551234567",
    "text": .string(text), "correlationId": "corr-1",
  ]
  params["idempotencyKey"] = key.map(JSONValue.string)
  return .object(params)
}

private func temporaryDirectory() -> String {
  let path = NSTemporaryDirectory() + "sidecar-pipeline-\(UUID().uuidString)"
  try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

extension Result where Failure == JSONRPCError {
  fileprivate var kind: String? { failureValue?.data?["kind"]?.stringValue }
}

@Suite("Operation pipeline: idempotency", .timeLimit(.minutes(1)))
struct OperationPipelineTests {
  @Test("a new key is claimed, marked sending before the request, and its answer stored")
  func newKey() async throws {
    let sidecar = try Sidecar([accepted])
    let answer = try await sidecar.call("whatsapp/send", send()).get()
    #expect(answer["postId"] == "wamid.HBgLMTU1" && answer["replayed"] == false && answer["attempts"] == 1)
    #expect(sidecar.transport.requests.count == 1)
    #expect(sidecar.store.used == ["claim", "markSending", "complete"])
    let event = try #require(sidecar.events().first)
    #expect(event["success"] == true && event["replayed"] == false && event["postId"] == "wamid.HBgLMTU1")
    #expect(event["platform"] == "whatsapp" && event["operation"] == "send" && event["attempts"] == 1)
  }

  @Test("a finished key answers its stored result again, marked replayed, without a request")
  func replay() async throws {
    let sidecar = try Sidecar([accepted])
    let first = try await sidecar.call("whatsapp/send", send()).get()
    let again = try await sidecar.call("whatsapp/send", send(), id: 2).get()
    var expected = try #require(first.objectValue)
    expected["replayed"] = true
    #expect(again == .object(expected))
    #expect(sidecar.transport.requests.count == 1)
    #expect(sidecar.store.used == ["claim", "markSending", "complete", "claim"])
    let events = sidecar.events()
    #expect(events.count == 2)
    #expect(events.last?["replayed"] == true && events.last?["success"] == true && events.last?["attempts"] == 0)
  }

  @Test("the same key with other content is a mismatch: nothing is sent and no event is billed")
  func mismatch() async throws {
    let sidecar = try Sidecar([accepted, accepted])
    _ = try await sidecar.call("whatsapp/send", send()).get()
    let other = await sidecar.call("whatsapp/send", send(text: "Something else"), id: 2)
    #expect(other.failureValue?.code == ErrorKind.idempotencyMismatch.code && other.kind == "idempotency_mismatch")
    #expect(sidecar.transport.requests.count == 1)
    #expect(sidecar.events().count == 1)
  }

  @Test("a key another live sidecar is running is a conflict: nothing is sent, the key stays theirs")
  func conflict() async throws {
    let directory = temporaryDirectory()
    let other = try LocalStateStore(directory: directory, logger: .disabled)
    let scope = IdempotencyScope.key(
      platform: "whatsapp", operation: "send", customerId: "cust-1", idempotencyKey: "order-42")
    #expect(try other.claim(key: scope, fingerprint: CommonParams.fingerprint(of: send())) == .proceed)
    let sidecar = try Sidecar([accepted], stateDir: directory)
    let answer = await sidecar.call("whatsapp/send", send())
    #expect(answer.failureValue?.code == ErrorKind.idempotencyConflict.code && answer.kind == "idempotency_conflict")
    #expect(answer.failureValue?.data?["retryable"] == true)
    #expect(sidecar.transport.requests.isEmpty)
    #expect(sidecar.store.used == ["claim"])
    #expect(sidecar.events().isEmpty)
    withExtendedLifetime(other) {}
  }

  @Test(
    "a key whose sidecar died while sending is taken over; if the post cannot be looked for, it stays outcome_unknown"
  )
  func interruptedTakeover() async throws {
    let directory = temporaryDirectory()
    let scope = IdempotencyScope.key(
      platform: "whatsapp", operation: "send", customerId: "cust-1", idempotencyKey: "order-42")
    var params = try #require(send().objectValue)
    params["credentialRef"] = "cred-gone"  // the credential cannot be resolved, so nothing can be looked for
    do {
      let dead = try LocalStateStore(directory: directory, logger: .disabled)
      #expect(try dead.claim(key: scope, fingerprint: CommonParams.fingerprint(of: .object(params))) == .proceed)
      try dead.markSending(key: scope)
    }
    let sidecar = try Sidecar([accepted, accepted], stateDir: directory)
    let answer = await sidecar.call("whatsapp/send", .object(params))
    let error = try #require(answer.failureValue)
    #expect(error.code == ErrorKind.outcomeUnknown.code && answer.kind == "outcome_unknown")
    #expect(error.message.contains("it could not be looked for"))
    #expect(sidecar.store.used == ["claim", "completeUnknown"])
    let replayed = await sidecar.call("whatsapp/send", .object(params), id: 2)
    #expect(replayed.failureValue == error)
    #expect(sidecar.transport.requests.isEmpty)
    #expect(sidecar.events().map { $0["errorKind"] } == ["outcome_unknown", "outcome_unknown"])
  }

  @Test("a publish cancelled after its request went out is stored as outcome_unknown and replayed as such")
  func cancelledAfterSending() async throws {
    let sidecar = try Sidecar([.holdUntilCancelled, accepted])
    let call = sidecar.start("whatsapp/send", send())
    await sidecar.transport.requestsArrived(1)
    call.cancel()
    #expect(await call.value.failureValue == .requestCancelled)
    #expect(sidecar.store.used == ["claim", "markSending", "completeUnknown"])
    let replayed = await sidecar.call("whatsapp/send", send(), id: 2)
    #expect(replayed.failureValue?.code == ErrorKind.outcomeUnknown.code && replayed.kind == "outcome_unknown")
    #expect(replayed.failureValue?.message.contains("cancelled after its publish may have gone out") == true)
    #expect(sidecar.transport.requests.count == 1)
    let events = sidecar.events()
    #expect(
      events.map { $0["errorCode"] } == [.int(JSONRPCError.requestCancelled.code), .int(ErrorKind.outcomeUnknown.code)])
    #expect(events.map { $0["replayed"] } == [false, true])
  }

  @Test("a publish cancelled before anything could publish releases its key: the same key publishes later")
  func cancelledBeforeSending() async throws {
    // A Facebook album uploads its photos unpublished first; the post itself is the last request.
    let album: JSONValue = [
      "credentialRef": "cred-fb", "customerId": "cust-1", "agentId": "agent-1", "idempotencyKey": "album-1",
      "text": "Album", "imageUrls": ["https://cdn.example/1.jpg", "https://cdn.example/2.jpg"],
    ]
    let photo = ScriptedTransport.json(200, #"{"id":"701"}"#)
    let sidecar = try Sidecar([.holdUntilCancelled, photo, photo, ScriptedTransport.json(200, #"{"id":"111_800"}"#)])
    let call = sidecar.start("facebook/post", album)
    await sidecar.transport.requestsArrived(1)
    call.cancel()
    #expect(await call.value.failureValue == .requestCancelled)
    #expect(sidecar.store.used == ["claim", "release"])
    let again = try await sidecar.call("facebook/post", album, id: 2).get()
    #expect(again["postId"] == "111_800" && again["replayed"] == false)
    #expect(sidecar.transport.requests.count == 4)
    #expect(sidecar.events().map { $0["success"] } == [false, true])
  }

  @Test("a permanent refusal releases the key: nothing was published, so corrected content may use it")
  func permanentFailure() async throws {
    let refused = ScriptedTransport.json(
      400, #"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"fbtrace_id":"AbC"}}"#)
    let sidecar = try Sidecar([refused, accepted])
    let answer = await sidecar.call("whatsapp/send", send())
    let error = try #require(answer.failureValue)
    #expect(error.code == ErrorKind.permanent.code && answer.kind == "permanent" && error.data?["retryable"] == false)
    #expect(error.data?["httpStatus"] == 400 && error.data?["platformCode"] == 100)
    #expect(sidecar.store.used == ["claim", "markSending", "release"])
    sidecar.later()
    #expect(try await sidecar.call("whatsapp/send", send(), id: 2).get()["postId"] == "wamid.HBgLMTU1")
    let event = try #require(sidecar.events().first)
    #expect(event["success"] == false && event["errorKind"] == "permanent" && event["httpStatus"] == 400)
  }

  @Test("a retryable refusal releases the key; a failure after the request may have arrived is outcome_unknown")
  func retryableFailures() async throws {
    let throttled = ScriptedTransport.json(
      400, #"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4}}"#)
    let sidecar = try Sidecar([throttled, accepted])
    let answer = await sidecar.call("whatsapp/send", send())
    #expect(answer.failureValue?.data?["retryable"] == true && answer.kind == "rate_limited")
    #expect(sidecar.store.used == ["claim", "markSending", "release"])
    sidecar.later()
    #expect(try await sidecar.call("whatsapp/send", send(), id: 2).get()["replayed"] == false)
    #expect(sidecar.events().map { $0["errorKind"]?.stringValue } == ["rate_limited", nil])

    let lost = TransportError(.timedOut, requestSent: true, message: "timed out waiting for the answer")
    let timedOut = try Sidecar([.failure(lost), accepted])
    let unknown = await timedOut.call("whatsapp/send", send())
    #expect(unknown.kind == "outcome_unknown")
    #expect(timedOut.store.used == ["claim", "markSending", "completeUnknown"])
    #expect(await timedOut.call("whatsapp/send", send(), id: 2).failureValue == unknown.failureValue)
    #expect(timedOut.transport.requests.count == 1)
    #expect(timedOut.events().map { $0["errorKind"] } == ["outcome_unknown", "outcome_unknown"])
  }

  @Test("without an idempotencyKey the store is never used and every call publishes")
  func noKey() async throws {
    let sidecar = try Sidecar([accepted, accepted])
    _ = try await sidecar.call("whatsapp/send", send(key: nil)).get()
    sidecar.later()
    _ = try await sidecar.call("whatsapp/send", send(key: nil), id: 2).get()
    #expect(sidecar.store.used.isEmpty)
    #expect(sidecar.transport.requests.count == 2)
    #expect(sidecar.events().map { $0["replayed"] } == [false, false])
  }

  @Test("a keyed publish the store cannot vouch for is refused before anything is sent")
  func storeUnreachable() async throws {
    let sidecar = try Sidecar([accepted], storeUnreachable: true)
    let answer = await sidecar.call("whatsapp/send", send())
    #expect(answer.kind == "transient_exhausted" && answer.failureValue?.data?["retryAfterMs"] == 1000)
    #expect(answer.failureValue?.message.contains("nothing was published") == true)
    #expect(sidecar.transport.requests.isEmpty)
    #expect(sidecar.events().isEmpty)
  }
}
