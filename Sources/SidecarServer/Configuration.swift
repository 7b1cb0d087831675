#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarJSONRPC
import SidecarPlatforms
import SidecarRedis

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Everything `initialize.config` can set, with defaults from the environment and the command line.
///
/// Unknown keys are refused with -32602 naming the key: a typo in a retry setting should fail loudly at start-up,
/// not silently run with defaults in production.
public struct SidecarConfiguration: Sendable, Equatable {
  public struct Platform: Sendable, Equatable {
    public var baseURL: String
    public var apiVersion: String
    /// Meta only: the app secret that signs every Graph call (`appsecret_proof`). Never logged.
    public var appSecret: String?

    /// A Graph platform's defaults (Facebook, Instagram, WhatsApp).
    static let graph = Platform(
      baseURL: PlatformEndpoints.defaultGraphBaseURL, apiVersion: PlatformEndpoints.defaultGraphVersion)
  }

  public var facebook = Platform.graph
  public var instagram = Platform.graph
  /// Host of the "Instagram API with Instagram Login" variant (tokens refreshed via `refresh_access_token`).
  public var instagramLoginBaseURL = PlatformEndpoints.defaultInstagramLoginBaseURL
  public var whatsapp = Platform.graph
  public var youtube = Platform(baseURL: PlatformEndpoints.defaultYouTubeBaseURL, apiVersion: "v3")
  public var youtubeUploadURL = PlatformEndpoints.defaultYouTubeUploadURL
  public var youtubeTokenURL = PlatformEndpoints.defaultGoogleTokenURL
  /// The project's daily YouTube quota, counted in the shared store ahead of the platform; 0 counts nothing.
  public var youtubeDailyQuotaUnits = 10_000
  public var linkedin = Platform(
    baseURL: PlatformEndpoints.defaultLinkedInBaseURL, apiVersion: PlatformEndpoints.defaultLinkedInVersion)
  public var linkedinTokenURL = PlatformEndpoints.defaultLinkedInTokenURL

  public var retryMaxAttempts = 5
  public var retryBaseDelayMs = 1000
  public var retryMaxDelayMs = 16000
  public var retryJitter = false
  /// The longest a call waits, in total, on rate limits before answering `rate_limited` with `retryAfterMs`.
  public var retryMaxWaitMs = 5000

  public var breakerEnabled = true
  public var breakerFailureThreshold = 5
  public var breakerOpenMs = 60000
  public var breakerHalfOpenProbes = 1

  public var metricsEnabled = true

  public var httpTimeoutMs = 30000
  public var httpConnectTimeoutMs = 10000
  public var httpTransport = "curl"
  /// A PEM bundle trusted in addition to nothing else: for tests against a local TLS fake only.
  public var httpCABundle: String?

  public var maxInFlight = 4096
  public var maxFrameBytes = 8 << 20

  public var allowPrivateNetworks = false
  /// Real paths of the directories `videoPath` may name files under; empty (the default) refuses local paths.
  public var mediaLocalRoots: [String] = []
  /// Replaces every media kind's documented size limit as the download cap when set.
  public var mediaMaxBytes: Int64?
  public var credentialsResolveTimeoutMs = 10000
  public var credentialsUpdateTimeoutMs = 5000
  public var shutdownGraceMs = 10000
  public var stateDir: String?
  /// `redis://[user:password@]host:port[/db]`: the store the sidecars of a deployment share; nil = `stateDir` (local).
  public var sharedStateURL: String?
  public var sharedStateKeyPrefix = "social-sidecar:"

  public init() {}

  /// Defaults that the environment may change (`ENABLE_CIRCUIT_BREAKER`, `ENABLE_METRICS_COLLECTION`, Meta app
  /// secrets: `META_APP_SECRET` for all three Graph platforms, `FACEBOOK_APP_SECRET`, `INSTAGRAM_APP_SECRET`,
  /// `WHATSAPP_APP_SECRET` for one).
  public static func fromEnvironment(_ environment: [String: String], stateDir: String?) -> SidecarConfiguration {
    var configuration = SidecarConfiguration()
    let shared = environment["META_APP_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
    func secret(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } ?? shared }
    configuration.facebook.appSecret = secret("FACEBOOK_APP_SECRET")
    configuration.instagram.appSecret = secret("INSTAGRAM_APP_SECRET")
    configuration.whatsapp.appSecret = secret("WHATSAPP_APP_SECRET")
    if let value = environment["ENABLE_CIRCUIT_BREAKER"].flatMap(Self.parseFlag) {
      configuration.breakerEnabled = value
    }
    if let value = environment["ENABLE_METRICS_COLLECTION"].flatMap(Self.parseFlag) {
      configuration.metricsEnabled = value
    }
    configuration.stateDir = stateDir
    return configuration
  }

  static func parseFlag(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "1", "true", "yes", "on": true
    case "0", "false", "no", "off": false
    default: nil
    }
  }

  /// Applies `config` on top of these defaults, or explains precisely what is wrong with it.
  public func applying(_ config: JSONValue?) -> Result<SidecarConfiguration, JSONRPCError> {
    guard let config, config != .null else { return .success(self) }
    guard case .object = config else { return .failure(.invalidParams("config must be an object", field: "config")) }
    var copy = self
    var reader = ConfigReader()
    reader.walk(config, path: "")
    do throws(JSONRPCError) {
      try copy.apply(reader.leaves)
    } catch {
      return .failure(error)
    }
    return .success(copy)
  }

  private mutating func apply(_ leaves: [(String, JSONValue)]) throws(JSONRPCError) {
    for (key, value) in leaves {
      let field = Field(key: key, value: value)
      switch key {
      case "platforms.facebook.baseUrl": facebook.baseURL = try field.url()
      case "platforms.facebook.apiVersion": facebook.apiVersion = try field.graphVersion()
      case "platforms.facebook.appSecret": facebook.appSecret = try field.string()
      case "platforms.instagram.appSecret": instagram.appSecret = try field.string()
      case "platforms.whatsapp.appSecret": whatsapp.appSecret = try field.string()
      case "platforms.instagram.baseUrl": instagram.baseURL = try field.url()
      case "platforms.instagram.apiVersion": instagram.apiVersion = try field.graphVersion()
      case "platforms.instagram.loginBaseUrl": instagramLoginBaseURL = try field.url()
      case "platforms.whatsapp.baseUrl": whatsapp.baseURL = try field.url()
      case "platforms.whatsapp.apiVersion": whatsapp.apiVersion = try field.graphVersion()
      case "platforms.youtube.baseUrl": youtube.baseURL = try field.url()
      case "platforms.youtube.uploadUrl": youtubeUploadURL = try field.url()
      case "platforms.youtube.tokenUrl": youtubeTokenURL = try field.url()
      case "platforms.youtube.dailyQuotaUnits": youtubeDailyQuotaUnits = try field.int(in: 0...1_000_000_000)
      case "platforms.linkedin.baseUrl": linkedin.baseURL = try field.url()
      case "platforms.linkedin.apiVersion": linkedin.apiVersion = try field.linkedInVersion()
      case "platforms.linkedin.tokenUrl": linkedinTokenURL = try field.url()
      case "retry.maxAttempts": retryMaxAttempts = try field.int(in: 1...20)
      case "retry.baseDelayMs": retryBaseDelayMs = try field.int(in: 0...600_000)
      case "retry.maxDelayMs": retryMaxDelayMs = try field.int(in: 0...3_600_000)
      case "retry.jitter": retryJitter = try field.bool()
      case "retry.maxWaitMs": retryMaxWaitMs = try field.int(in: 0...86_400_000)
      case "breaker.enabled": breakerEnabled = try field.bool()
      case "breaker.failureThreshold": breakerFailureThreshold = try field.int(in: 1...1000)
      case "breaker.openMs": breakerOpenMs = try field.int(in: 1...86_400_000)
      case "breaker.halfOpenProbes": breakerHalfOpenProbes = try field.int(in: 1...100)
      case "metrics.enabled": metricsEnabled = try field.bool()
      case "http.timeoutMs": httpTimeoutMs = try field.int(in: 1...3_600_000)
      case "http.connectTimeoutMs": httpConnectTimeoutMs = try field.int(in: 1...600_000)
      case "http.transport": httpTransport = try field.oneOf(["curl", "urlsession"])
      case "http.caBundle": httpCABundle = try field.string()
      case "limits.maxInFlight": maxInFlight = try field.int(in: 1...1_000_000)
      case "limits.maxFrameBytes": maxFrameBytes = try field.int(in: 1024...(1 << 30))
      case "media.allowPrivateNetworks": allowPrivateNetworks = try field.bool()
      case "media.localRoots": mediaLocalRoots = try field.directories()
      case "media.maxBytes": mediaMaxBytes = Int64(try field.int(in: 1...(1 << 40)))
      case "credentials.resolveTimeoutMs": credentialsResolveTimeoutMs = try field.int(in: 1...600_000)
      case "credentials.updateTimeoutMs": credentialsUpdateTimeoutMs = try field.int(in: 1...600_000)
      case "shutdown.graceMs": shutdownGraceMs = try field.int(in: 0...600_000)
      case "stateDir": stateDir = try field.string()
      case "sharedState.url": sharedStateURL = try field.redisURL()
      case "sharedState.keyPrefix": sharedStateKeyPrefix = try field.keyPrefix()
      default:
        throw .invalidParams(
          "unknown configuration key `\(key)`; see protocol/PROTOCOL.md#configuration for the keys",
          field: "config.\(key)")
      }
    }
    if retryMaxDelayMs < retryBaseDelayMs {
      throw .invalidParams("retry.maxDelayMs must not be below retry.baseDelayMs", field: "config.retry.maxDelayMs")
    }
  }
}

/// Flattens nested config objects into dotted keys, so `{"retry": {"maxAttempts": 3}}` and
/// `{"retry.maxAttempts": 3}` mean the same.
private struct ConfigReader {
  var leaves: [(String, JSONValue)] = []

  mutating func walk(_ value: JSONValue, path: String) {
    // An empty object is a leaf too, so `{"retyr": {}}` is reported as an unknown key rather than ignored.
    if case .object(let members) = value, path.isEmpty || (!members.isEmpty && !Self.leafObjects.contains(path)) {
      for key in members.keys.sorted() {
        walk(members[key]!, path: path.isEmpty ? key : "\(path).\(key)")
      }
    } else {
      leaves.append((path, value))
    }
  }

  static let leafObjects: Set<String> = []
}

private struct Field {
  let key: String
  let value: JSONValue

  var fieldName: String { "config.\(key)" }

  func fail(_ expectation: String) -> JSONRPCError {
    .invalidParams("`\(key)` must be \(expectation), got \(value.typeName)", field: fieldName)
  }

  func int(in range: ClosedRange<Int>) throws(JSONRPCError) -> Int {
    guard let number = value.intValue, case .int = value else { throw fail("an integer") }
    guard range.contains(number) else {
      throw .invalidParams(
        "`\(key)` must be between \(range.lowerBound) and \(range.upperBound), got \(number)", field: fieldName)
    }
    return number
  }

  func bool() throws(JSONRPCError) -> Bool {
    guard let flag = value.boolValue else { throw fail("true or false") }
    return flag
  }

  func string() throws(JSONRPCError) -> String {
    guard let text = value.stringValue, !text.isEmpty else { throw fail("a non-empty string") }
    return text
  }

  func oneOf(_ choices: [String]) throws(JSONRPCError) -> String {
    let text = try string()
    guard choices.contains(text) else {
      throw .invalidParams("`\(key)` must be one of \(choices.joined(separator: ", ")), got \(text)", field: fieldName)
    }
    return text
  }

  /// An absolute http(s) URL with a host, that still parses with a path appended (platform clients build request
  /// URLs from it), and without user info, query or fragment. Checked here so that no request can ever be built from a
  /// URL that does not parse.
  func url() throws(JSONRPCError) -> String {
    let given = try string()
    var text = given
    while text.hasSuffix("/") { text.removeLast() }
    let printable = text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    guard printable, text.hasPrefix("https://") || text.hasPrefix("http://"), let url = URL(string: text),
      let host = url.host, !host.isEmpty, URL(string: text + "/v1/x?y=z") != nil
    else {
      throw .invalidParams(
        "`\(key)` must be an absolute http(s) URL with a host (printable ASCII, no spaces), got \(given)",
        field: fieldName)
    }
    guard url.user == nil, url.password == nil, url.query == nil, url.fragment == nil else {
      throw .invalidParams("`\(key)` must not carry user info, a query or a fragment, got \(given)", field: fieldName)
    }
    return text
  }

  /// A Redis URL; the error names what is wrong without echoing the URL (it may hold a password).
  func redisURL() throws(JSONRPCError) -> String {
    let text = try string()
    do {
      _ = try RedisConfiguration(url: text)
    } catch {
      throw .invalidParams(
        "`\(key)` must be redis://[user:password@]host:port[/db]: \(error.description)", field: fieldName)
    }
    return text
  }

  func keyPrefix() throws(JSONRPCError) -> String {
    let text = try string()
    guard text.utf8.count <= 128, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
      throw .invalidParams("`\(key)` must be at most 128 printable ASCII characters without spaces", field: fieldName)
    }
    return text
  }

  /// A Graph API version: `v`, digits, a dot, digits (`v23.0`), ASCII only.
  func graphVersion() throws(JSONRPCError) -> String {
    let text = try string()
    let parts = text.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
    guard text.first == "v", parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) })
    else {
      throw .invalidParams("`\(key)` must be a Graph API version such as v23.0, got \(text)", field: fieldName)
    }
    return text
  }

  /// A LinkedIn version: `YYYYMM`, six ASCII digits with a month from 01 to 12.
  func linkedInVersion() throws(JSONRPCError) -> String {
    let text = try string()
    guard text.count == 6, text.allSatisfy(\.isASCIIDigit), let month = Int(text.suffix(2)), (1...12).contains(month)
    else {
      throw .invalidParams(
        "`\(key)` must be a LinkedIn version YYYYMM such as \(PlatformEndpoints.defaultLinkedInVersion), got \(text)",
        field: fieldName)
    }
    return text
  }

  /// A list of absolute paths of existing directories, each returned as its real path (symlinks resolved).
  func directories() throws(JSONRPCError) -> [String] {
    guard case .array(let items) = value else { throw fail("an array of absolute directory paths") }
    var roots: [String] = []
    for (index, item) in items.enumerated() {
      guard let path = item.stringValue, path.hasPrefix("/"), !path.utf8.contains(0) else {
        throw .invalidParams("`\(key)[\(index)]` must be an absolute directory path", field: "\(fieldName)[\(index)]")
      }
      var info = stat()
      guard let resolved = realpath(path, nil) else {
        throw .invalidParams("`\(key)[\(index)]` names no directory: \(path)", field: "\(fieldName)[\(index)]")
      }
      let real = String(cString: resolved)
      free(resolved)
      guard stat(real, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
        throw .invalidParams("`\(key)[\(index)]` is not a directory: \(path)", field: "\(fieldName)[\(index)]")
      }
      roots.append(real)
    }
    return roots
  }
}

extension Character {
  fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
