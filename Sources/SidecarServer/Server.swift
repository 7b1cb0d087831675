#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarPlatforms
import Synchronization

/// The sidecar's JSON-RPC surface: lifecycle, queries, and the platform methods.
///
/// It is the connection's ``Dispatcher``: every request is routed here on the reader thread, so routing only looks up
/// a table and checks the lifecycle state; the work itself runs inline (cheap queries) or in a task (platform calls).
public final class Server: Dispatcher {
  public static let name = "social-sidecar"
  public static let version = "0.1.0"
  public static let protocolVersion = "1.0"

  /// Lifecycle per LSP: requests before `initialize` get -32002; after `shutdown` new work gets -32600.
  enum Phase: Sendable, Equatable {
    case uninitialized
    case running
    case shuttingDown
  }

  /// Process-level effects, injected so that tests (`ServerTests`) observe exits instead of dying and set the time.
  public struct Environment: Sendable {
    public var exit: @Sendable (Int32) -> Void
    public var now: @Sendable () -> ContinuousClock.Instant
    /// The calendar date, for warnings that depend on it (a LinkedIn version's age).
    public var wallNow: @Sendable () -> Date
    public init(
      exit: @escaping @Sendable (Int32) -> Void, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
      wallNow: @escaping @Sendable () -> Date = { Date() }
    ) {
      self.exit = exit
      self.now = now
      self.wallNow = wallNow
    }
  }

  private let connection: Connection
  private let logger: Logger
  private let environment: Environment
  private let started: ContinuousClock.Instant
  private let phase = Mutex(Phase.uninitialized)
  private let configuration: Mutex<SidecarConfiguration>
  private let exiting = Atomic<Bool>(false)
  private let signals = Atomic<Int>(0)
  private let services = Mutex<PlatformServices?>(nil)
  /// `health`'s configuration warnings, worked out again at most hourly (`health` is answered at any rate), and at once
  /// when the LinkedIn version they were worked out for changes.
  private let healthWarnings = Mutex<(version: String, until: Date, warnings: [JSONValue])>(("", .distantPast, []))

  public init(connection: Connection, defaults: SidecarConfiguration, logger: Logger, environment: Environment) {
    self.connection = connection
    self.logger = logger
    self.environment = environment
    self.started = environment.now()
    self.configuration = Mutex(defaults)
  }

  public func start() {
    connection.start(dispatcher: self)
  }

  // MARK: Dispatcher

  public func route(method: String) -> Route {
    let current = phase.withLock { $0 }
    switch (method, current) {
    case ("initialize", .uninitialized):
      return .inline { [self] params in initialize(params) }
    case ("initialize", _):
      return .reject(.invalidRequest("initialize was already called"))
    case (_, .uninitialized):
      return .reject(.serverNotInitialized)
    case ("health", _):
      return .inline { [self] _ in .success(health()) }
    case (_, .shuttingDown):
      return .reject(
        .invalidRequest("the server is shutting down and takes no new work", data: ["kind": "shutting_down"]))
    case ("shutdown", .running):
      // The phase changes now, on the reader thread, so a request right behind `shutdown` is already refused.
      phase.withLock { $0 = .shuttingDown }
      return .task { [self] _, _ in await shutdown() }
    default:
      break
    }
    if let route = services.withLock({ $0 })?.route(method: method) { return route }
    return .reject(.methodNotFound(method))
  }

  public func notification(method: String, params: JSONValue?) {
    switch method {
    case "exit":
      let code: Int32 = phase.withLock { $0 } == .shuttingDown ? 0 : 1
      terminate(code: code, reason: "exit notification")
    case "initialized":
      logger.debug("client initialized")
    default:
      if !method.hasPrefix("$/") { logger.debug("unknown notification ignored", ["method": .string(method)]) }
    }
  }

  public func connectionClosed(_ reason: CloseReason) {
    switch reason {
    case .inputEnded:
      let shutDown = phase.withLock { phase -> Bool in
        defer { phase = .shuttingDown }
        return phase == .shuttingDown
      }
      logger.info("stdin closed; draining in-flight work", ["inFlight": .int(connection.inFlightCount)])
      Task { [self] in
        await drain(grace: .milliseconds(min(configuration.withLock { $0.shutdownGraceMs }, 5000)))
        terminate(code: shutDown ? 0 : 1, reason: "stdin closed")
      }
    case .outputClosed:
      phase.withLock { $0 = .shuttingDown }
      logger.warn("stdout closed: the parent is gone")
      terminate(code: 1, reason: "stdout closed")
    case .unrecoverableFraming(let detail):
      logger.error("unrecoverable framing on stdin", ["reason": .string(detail)])
      terminate(code: 2, reason: "unrecoverable framing")
    }
  }

  // MARK: Lifecycle

  private func initialize(_ params: JSONValue?) -> Result<JSONValue, JSONRPCError> {
    if let params, params.objectValue == nil {
      return .failure(.invalidParams("initialize takes an object with optional clientInfo and config"))
    }
    let configured: SidecarConfiguration
    switch configuration.withLock({ $0 }).applying(params?["config"]) {
    case .failure(let error): return .failure(error)
    case .success(let value): configured = value
    }
    for key in params?.objectValue?.keys.sorted() ?? []
    where !["clientInfo", "config", "processId", "capabilities"].contains(key) {
      return .failure(.invalidParams("unknown initialize parameter `\(key)`", field: key))
    }
    configuration.withLock { $0 = configured }
    connection.updateLimits {
      $0.maxInFlight = configured.maxInFlight
      $0.maxFrameBytes = configured.maxFrameBytes
    }
    let dependencies: PlatformServices.Dependencies
    do {
      dependencies = try .system(configured, connection: connection, logger: logger)
    } catch {
      return .failure(.invalidParams("the state directory cannot be used: \(error)", field: "config.stateDir"))
    }
    let platformServices = PlatformServices(
      configuration: configured, connection: connection, logger: logger, dependencies: dependencies)
    services.withLock { $0 = platformServices }
    phase.withLock { $0 = .running }
    logger.info(
      "initialized",
      [
        "client": params?["clientInfo"]?["name"] ?? .null,
        "metricsEnabled": .bool(configured.metricsEnabled), "breakerEnabled": .bool(configured.breakerEnabled),
      ])
    return .success([
      "serverInfo": ["name": .string(Self.name), "version": .string(Self.version)],
      "protocolVersion": .string(Self.protocolVersion),
      "capabilities": platformServices.capabilities,
    ])
  }

  private func health() -> JSONValue {
    let services = services.withLock { $0 }
    let http = services?.httpTransport
    let status =
      phase.withLock({ $0 }) == .shuttingDown ? "shutting_down" : http?.unavailable == true ? "degraded" : "ok"
    let uptime = environment.now() - started
    // The usual keys in one literal (`health` is answered at any rate, and a dictionary grown key by key is rebuilt);
    // a warning is rare. Both objects exist once `initialize` has answered, which `health` waits for.
    var answer: [String: JSONValue] = [
      "status": .string(status), "version": .string(Self.version),
      "uptimeMs": .int(Int(uptime.components.seconds * 1000 + uptime.components.attoseconds / 1_000_000_000_000_000)),
      "inFlight": .int(connection.inFlightCount), "http": http?.json ?? .null,
      "sharedState": services?.sharedStateHealth ?? .null,
    ]
    let warnings = currentWarnings()
    if !warnings.isEmpty { answer["warnings"] = .array(warnings) }
    return .object(answer)
  }

  private func currentWarnings() -> [JSONValue] {
    let version = configuration.withLock { $0.linkedin.apiVersion }
    let now = environment.wallNow()
    return healthWarnings.withLock { cached in
      if cached.version != version || now >= cached.until {
        let warning = LinkedInClient.versionWarning(version, now: now)
        cached = (version, now.addingTimeInterval(3600), warning.map { [.string($0)] } ?? [])
      }
      return cached.warnings
    }
  }

  /// Refuses new work, lets in-flight calls finish within `shutdown.graceMs`, then answers `null`.
  private func shutdown() async -> Result<JSONValue, JSONRPCError> {
    logger.info("shutdown requested", ["inFlight": .int(connection.inFlightCount - 1)])
    await drain(grace: .milliseconds(configuration.withLock { $0.shutdownGraceMs }), own: 1)
    await services.withLock { $0 }?.flush()
    return .success(.null)
  }

  /// Waits until at most `own` requests (the caller itself) are in flight, or the grace period ends.
  private func drain(grace: Duration, own: Int = 0) async {
    let deadline = environment.now() + grace
    while connection.inFlightCount > own && environment.now() < deadline {
      try? await Task.sleep(for: .milliseconds(10))
    }
  }

  /// SIGTERM or SIGINT: like `shutdown` then `exit` — refuse new work, let in-flight calls finish and refreshed
  /// tokens reach the parent within `shutdown.graceMs`, exit 0. A second signal exits at once.
  public func terminateGracefully(signal: Int32) {
    let first = signals.add(1, ordering: .relaxed).newValue == 1
    guard first else {
      terminate(code: 0, reason: "second signal \(signal)")
      return
    }
    phase.withLock { $0 = .shuttingDown }
    logger.info(
      "signal received; shutting down", ["signal": .int(Int(signal)), "inFlight": .int(connection.inFlightCount)])
    Task { [self] in
      await drain(grace: .milliseconds(configuration.withLock { $0.shutdownGraceMs }))
      await services.withLock { $0 }?.flush()
      terminate(code: 0, reason: "signal \(signal)")
    }
  }

  private func terminate(code: Int32, reason: String) {
    guard !exiting.exchange(true, ordering: .acquiringAndReleasing) else { return }
    logger.info("exiting", ["code": .int(Int(code)), "reason": .string(reason)])
    connection.failPendingOutgoing()
    environment.exit(code)
  }
}
