#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarMetrics
import SidecarPlatforms
import SidecarResilience

/// The composition root of what exists once `initialize` has fixed the configuration: it builds the resilience core,
/// the credential store, the platform clients and the ``OperationPipeline`` over the ``Dependencies`` it is given, and
/// routes the methods: platform operations to the pipeline, metrics and breaker queries answered here.
final class PlatformServices: Sendable {
  /// What the services run on besides the configuration: the system's in production (``system(_:connection:logger:)``);
  /// a manual clock, a scripted transport and a memory store in tests.
  struct Dependencies: Sendable {
    var clock: any SidecarClock
    /// Backoff jitter.
    var random: any RandomSource
    var transport: any HTTPTransport
    /// Idempotency records, refresh leases and shared blocks (local journal or Redis).
    var sharedState: any SharedStateStore & RefreshLeases
    /// Where credentials come from (the parent, over `credentials/resolve`).
    var credentialSource: any CredentialSource
    /// What `health.http` and `capabilities.http` say of `transport`.
    var transportStatus = HTTPTransportStatus()

    /// The system clock and randomness, the configured HTTP transport (built on the first platform call), the
    /// configured store and the parent's credentials. Throws when the store cannot be opened.
    static func system(_ configuration: SidecarConfiguration, connection: Connection, logger: Logger) throws
      -> Dependencies
    {
      let sharedState: any SharedStateStore & RefreshLeases
      if let url = configuration.sharedStateURL {
        sharedState = try RedisStateStore(url: url, keyPrefix: configuration.sharedStateKeyPrefix, logger: logger)
      } else {
        sharedState = try LocalStateStore(directory: configuration.stateDir, logger: logger)
      }
      let status = HTTPTransportStatus()
      return Dependencies(
        clock: SystemClock(), random: SystemRandom(),
        transport: makeTransport(configuration, logger: logger, status: status),
        sharedState: sharedState,
        credentialSource: ParentCredentials(
          connection: connection, resolveTimeout: .milliseconds(configuration.credentialsResolveTimeoutMs),
          updateTimeout: .milliseconds(configuration.credentialsUpdateTimeoutMs)),
        transportStatus: status)
    }

    private static func makeTransport(
      _ configuration: SidecarConfiguration, logger: Logger, status: HTTPTransportStatus
    ) -> any HTTPTransport {
      let settings = HTTPTransportConfiguration(
        maxConnectionsPerHost: max(64, min(configuration.maxInFlight, 1024)), caBundlePath: configuration.httpCABundle,
        userAgent: "social-sidecar/\(Server.version)")
      let name = configuration.httpTransport
      status.set(name, state: "pending", detail: nil)
      // Built on the first platform call, so that `initialize` loads neither libcurl nor URLSession.
      return makeDefaultTransport(settings, preferred: name) { [logger] chosen, usable in
        status.set(name, state: usable ? "ready" : "unavailable", detail: chosen)
        if usable {
          logger.debug("http transport ready", ["transport": .string(chosen)])
        } else {
          logger.error("no http transport can be loaded", ["reason": .string(chosen)])
        }
      }
    }
  }

  let configuration: SidecarConfiguration
  let clients: [Platform: any PlatformClient]
  let core: ResilienceCore
  let credentials: CredentialStore
  let metrics = MetricsAggregator()
  /// Idempotency records, shared with the other sidecars of the deployment (local journal or Redis).
  let sharedState: any SharedStateStore
  /// Every platform operation's path.
  let pipeline: OperationPipeline
  /// Open breakers and rate-limit blocks shared with the other sidecars of the store (none for memory).
  private let blockSharing: BlockSharing?
  private let http: HTTPTransportStatus

  init(configuration: SidecarConfiguration, connection: Connection, logger: Logger, dependencies: Dependencies) {
    self.configuration = configuration
    let (clock, sharedState) = (dependencies.clock, dependencies.sharedState)
    self.sharedState = sharedState
    http = dependencies.transportStatus
    let metrics = self.metrics
    core = ResilienceCore(
      retry: RetryPolicy(
        maxAttempts: configuration.retryMaxAttempts, baseDelay: .milliseconds(configuration.retryBaseDelayMs),
        maxDelay: .milliseconds(configuration.retryMaxDelayMs), jitter: configuration.retryJitter,
        maxWait: .milliseconds(configuration.retryMaxWaitMs)),
      breaker: BreakerConfiguration(
        enabled: configuration.breakerEnabled, failureThreshold: configuration.breakerFailureThreshold,
        openDuration: .milliseconds(configuration.breakerOpenMs), halfOpenProbes: configuration.breakerHalfOpenProbes),
      budget: RetryBudgetConfiguration(), clock: clock, random: dependencies.random, counters: sharedState.counters,
      onBreakerTransition: { [connection, logger, clock] platform, from, to in
        if to == .open { metrics.recordBreakerOpened(platform: platform) }
        logger.warn(
          "circuit breaker changed state",
          ["platform": .string(platform), "from": .string(from.rawValue), "to": .string(to.rawValue)])
        connection.notify(
          "breaker/stateChanged",
          params: [
            "platform": .string(platform), "from": .string(from.rawValue), "to": .string(to.rawValue),
            "at": .string(RFC3339.string(from: clock.wallNow())),
          ])
      })
    credentials = CredentialStore(
      source: dependencies.credentialSource, clock: clock, logger: logger, fleet: sharedState)
    var environment = PlatformEnvironment(
      endpoints: configuration.endpoints, transport: dependencies.transport, core: core,
      media: MediaPolicy(
        allowPrivateNetworks: configuration.allowPrivateNetworks, localRoots: configuration.mediaLocalRoots,
        maxBytes: configuration.mediaMaxBytes),
      timeout: .milliseconds(configuration.httpTimeoutMs),
      connectTimeout: .milliseconds(configuration.httpConnectTimeoutMs),
      logger: logger, appSecrets: configuration.appSecrets)
    environment.youtubeDailyQuotaUnits = configuration.youtubeDailyQuotaUnits
    clients = makePlatformClients(environment)
    pipeline = OperationPipeline(
      core: core, credentials: credentials, sharedState: sharedState, metrics: metrics, connection: connection,
      metricsEnabled: configuration.metricsEnabled, clock: clock, logger: logger)
    blockSharing =
      sharedState.isShared
      ? BlockSharing(
        core: core, sharedState: sharedState, breakerEnabled: configuration.breakerEnabled, clock: clock, logger: logger
      )
      : nil
  }

  /// `health.http` and `capabilities.http` (see `HTTPTransportStatus`), and whether no transport can run.
  var httpTransport: (json: JSONValue, unavailable: Bool) { http.value }

  var capabilities: JSONValue {
    var platforms: [String: JSONValue] = [:]
    for (platform, client) in clients {
      let operations =
        platform.operations + PostOperation.allCases.filter(client.postOperations.contains).map(\.rawValue)
      platforms[platform.rawValue] = .array(operations.map { .string($0) })
    }
    return [
      "platforms": .object(platforms),
      "methods": .array(Self.queryMethods.map { .string($0) }),
      "idempotency": [
        "durable": .bool(configuration.stateDir != nil || configuration.sharedStateURL != nil), "retentionHours": 24,
      ],
      "http": httpTransport.json,
    ]
  }

  /// The store of idempotency records, as `health` reports it.
  var sharedStateHealth: JSONValue { sharedState.health }

  static let queryMethods = ["breaker/reset", "breaker/status", "health", "metrics/prometheus", "metrics/snapshot"]

  func route(method: String) -> Route? {
    switch method {
    case "metrics/snapshot": return .inline { [metrics] _ in .success(metrics.snapshot()) }
    case "metrics/prometheus":
      return .inline { [self] _ in
        .success(["contentType": .string(PrometheusText.contentType), "text": .string(prometheusText())])
      }
    case "breaker/status": return .inline { [self] _ in .success(breakerStatus()) }
    case "breaker/reset": return .inline { [self] params in resetBreaker(params) }
    default: break
    }
    guard let slash = method.firstIndex(of: "/"), let platform = Platform(rawValue: String(method[..<slash])),
      let client = clients[platform]
    else { return nil }
    let operation = String(method[method.index(after: slash)...])
    // Every platform routes the post operations: where its API has none, the answer says so (`unsupported`).
    guard platform.operations.contains(operation) || PostOperation(rawValue: operation) != nil else { return nil }
    return .task { [pipeline] params, id in await pipeline.run(operation, on: client, params: params, id: id) }
  }

  /// Flushes anything that must survive the process: refreshed tokens the parent has not acknowledged yet.
  func flush() async {
    await credentials.flushUpdates(timeout: .milliseconds(configuration.shutdownGraceMs))
  }
}

extension SidecarConfiguration {
  var endpoints: PlatformEndpoints {
    var endpoints = PlatformEndpoints()
    endpoints.graphBaseURL = [.facebook: facebook.baseURL, .instagram: instagram.baseURL, .whatsapp: whatsapp.baseURL]
    endpoints.graphVersion = [
      .facebook: facebook.apiVersion, .instagram: instagram.apiVersion, .whatsapp: whatsapp.apiVersion,
    ]
    endpoints.instagramLoginBaseURL = instagramLoginBaseURL
    endpoints.youtubeBaseURL = youtube.baseURL
    endpoints.youtubeUploadURL = youtubeUploadURL
    endpoints.googleTokenURL = youtubeTokenURL
    endpoints.linkedinBaseURL = linkedin.baseURL
    endpoints.linkedinVersion = linkedin.apiVersion
    endpoints.linkedinTokenURL = linkedinTokenURL
    return endpoints
  }

  var appSecrets: [SidecarPlatforms.Platform: String] {
    [.facebook: facebook.appSecret, .instagram: instagram.appSecret, .whatsapp: whatsapp.appSecret]
      .compactMapValues { $0 }
  }
}
