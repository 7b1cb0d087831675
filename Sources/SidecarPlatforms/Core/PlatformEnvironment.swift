#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// What every platform client is built from: endpoints, one transport, one resilience core, the media policy.
public struct PlatformEnvironment: Sendable {
  public let endpoints: PlatformEndpoints
  public let transport: any HTTPTransport
  public let core: ResilienceCore
  public let media: MediaPolicy
  public let timeout: Duration
  public let connectTimeout: Duration
  public let logger: Logger
  /// Meta app secrets per Graph platform (`platforms.<platform>.appSecret`), for `appsecret_proof`; a credential's
  /// own `appSecret` overrides them.
  public let appSecrets: [Platform: String]
  /// The Google Cloud project's daily YouTube quota in units (`platforms.youtube.dailyQuotaUnits`), spent ahead of the
  /// platform in the shared store when there is one; 0 counts nothing.
  public var youtubeDailyQuotaUnits = 10_000

  public init(
    endpoints: PlatformEndpoints, transport: any HTTPTransport, core: ResilienceCore, media: MediaPolicy,
    timeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10), logger: Logger,
    appSecrets: [Platform: String] = [:]
  ) {
    self.endpoints = endpoints
    self.transport = transport
    self.core = core
    self.media = media
    self.timeout = timeout
    self.connectTimeout = connectTimeout
    self.logger = logger
    self.appSecrets = appSecrets
  }

  public var clock: any SidecarClock { core.clock }

  public func http(for platform: Platform) -> PlatformHTTP {
    PlatformHTTP(
      platform: platform, transport: transport, core: core, timeout: timeout, connectTimeout: connectTimeout,
      logger: logger.with(["platform": .string(platform.rawValue)]))
  }

  public func fetcher(for platform: Platform) -> MediaFetcher {
    MediaFetcher(http: http(for: platform), policy: media)
  }
}
