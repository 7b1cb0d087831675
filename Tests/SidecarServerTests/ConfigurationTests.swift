import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarPlatforms
import Testing

@testable import SidecarServer

@Suite("Configuration and command line")
struct ConfigurationTests {
  @Test("Nested and dotted keys both apply; URLs lose a trailing slash")
  func applies() throws {
    let config: JSONValue = [
      "retry": ["maxAttempts": 3, "baseDelayMs": 10], "breaker.enabled": false,
      "platforms": ["facebook": ["baseUrl": "http://127.0.0.1:9/", "apiVersion": "v24.0"]],
    ]
    let applied = try SidecarConfiguration().applying(config).get()
    #expect(applied.retryMaxAttempts == 3 && applied.retryBaseDelayMs == 10 && !applied.breakerEnabled)
    #expect(applied.facebook.baseURL == "http://127.0.0.1:9" && applied.facebook.apiVersion == "v24.0")
    #expect(applied.endpoints.graphVersion[.facebook] == "v24.0")
  }

  @Test(
    "Unknown keys and wrong values are invalid params naming the key",
    arguments: [
      (["retry": ["maxAtempts": 3]] as JSONValue, "config.retry.maxAtempts"),
      (["retyr": [:]] as JSONValue, "config.retyr"),
      (["retry": ["maxAttempts": "5"]] as JSONValue, "config.retry.maxAttempts"),
      (["retry": ["maxAttempts": 0]] as JSONValue, "config.retry.maxAttempts"),
      (["http": ["transport": "carrier-pigeon"]] as JSONValue, "config.http.transport"),
      (["platforms": ["linkedin": ["apiVersion": "2025"]]] as JSONValue, "config.platforms.linkedin.apiVersion"),
      (["platforms": ["youtube": ["uploadUrl": "ftp://x"]]] as JSONValue, "config.platforms.youtube.uploadUrl"),
      // Issue 22: URLs that do not parse crashed the first platform call; loose versions reached request paths.
      (
        ["platforms.facebook.baseUrl": "https://graph.facebook.com x"] as JSONValue, "config.platforms.facebook.baseUrl"
      ),
      (["platforms.facebook.baseUrl": "http://[::1"] as JSONValue, "config.platforms.facebook.baseUrl"),
      (["platforms.linkedin.baseUrl": "https://"] as JSONValue, "config.platforms.linkedin.baseUrl"),
      (
        ["platforms.youtube.tokenUrl": "https://user:pw@oauth2.example"] as JSONValue,
        "config.platforms.youtube.tokenUrl"
      ),
      (
        ["platforms.instagram.loginBaseUrl": "https://graph.instagram.com/?q=1"] as JSONValue,
        "config.platforms.instagram.loginBaseUrl"
      ),
      (["platforms.facebook.apiVersion": "v\u{00B2}\u{00B3}.0"] as JSONValue, "config.platforms.facebook.apiVersion"),
      (["platforms.whatsapp.apiVersion": "v23."] as JSONValue, "config.platforms.whatsapp.apiVersion"),
      (["platforms.linkedin.apiVersion": "202510\r\nX"] as JSONValue, "config.platforms.linkedin.apiVersion"),
      (["platforms.linkedin.apiVersion": "202510/.."] as JSONValue, "config.platforms.linkedin.apiVersion"),
      (["platforms.linkedin.apiVersion": "202513"] as JSONValue, "config.platforms.linkedin.apiVersion"),
      (["media.localRoots": ["relative/dir"]] as JSONValue, "config.media.localRoots[0]"),
      (["media.localRoots": ["/no/such/directory"]] as JSONValue, "config.media.localRoots[0]"),
      (["media.localRoots": ["/etc/passwd"]] as JSONValue, "config.media.localRoots[0]"),
      (["media.localRoots": "/tmp"] as JSONValue, "config.media.localRoots"),
      (["media.maxBytes": 0] as JSONValue, "config.media.maxBytes"),
    ])
  func refuses(_ config: JSONValue, field: String) {
    guard case .failure(let error) = SidecarConfiguration().applying(config) else {
      Issue.record("expected \(config) to be refused")
      return
    }
    #expect(error.code == -32602)
    #expect(error.data?["field"] == .string(field))
  }

  @Test("media.localRoots keeps real paths (links resolved); media.maxBytes is kept as given; both off by default")
  func media() throws {
    #expect(SidecarConfiguration().mediaLocalRoots.isEmpty && SidecarConfiguration().mediaMaxBytes == nil)
    let applied = try SidecarConfiguration().applying(["media": ["localRoots": ["/tmp/", "/"], "maxBytes": 1000]]).get()
    #expect(applied.mediaLocalRoots.count == 2 && applied.mediaLocalRoots.allSatisfy { $0.hasPrefix("/") })
    #expect(applied.mediaMaxBytes == 1000)
  }

  @Test("Environment defaults: ENABLE_CIRCUIT_BREAKER and ENABLE_METRICS_COLLECTION")
  func environment() {
    let configuration = SidecarConfiguration.fromEnvironment(
      ["ENABLE_CIRCUIT_BREAKER": "false", "ENABLE_METRICS_COLLECTION": "0"], stateDir: "/tmp/s")
    #expect(!configuration.breakerEnabled && !configuration.metricsEnabled && configuration.stateDir == "/tmp/s")
  }

  @Test("Meta app secrets come from config or the environment, per platform, and an error never shows one")
  func appSecrets() throws {
    let fromEnvironment = SidecarConfiguration.fromEnvironment(
      ["META_APP_SECRET": "shared-secret", "WHATSAPP_APP_SECRET": "wa-secret"], stateDir: nil)
    #expect(
      fromEnvironment.appSecrets == [.facebook: "shared-secret", .instagram: "shared-secret", .whatsapp: "wa-secret"])
    let applied = try fromEnvironment.applying(["platforms": ["facebook": ["appSecret": "fb-secret"]]]).get()
    #expect(applied.appSecrets[.facebook] == "fb-secret" && applied.appSecrets[.instagram] == "shared-secret")
    #expect(SidecarConfiguration().appSecrets.isEmpty)
    guard case .failure(let error) = SidecarConfiguration().applying(["platforms.instagram.appSecret": 12_345_678])
    else {
      Issue.record("a number is not an app secret")
      return
    }
    #expect(error.data?["field"] == "config.platforms.instagram.appSecret" && !error.message.contains("12345678"))
  }

  @Test("The default API versions are the platforms' current ones, from one place")
  func defaultVersions() {
    let configuration = SidecarConfiguration()
    #expect(configuration.endpoints == PlatformEndpoints())
    #expect(configuration.facebook.apiVersion == PlatformEndpoints.defaultGraphVersion)
    #expect(configuration.linkedin.apiVersion == PlatformEndpoints.defaultLinkedInVersion)
  }

  @Test("Command line: flags, environment forms, help, version and usage errors")
  func commandLine() {
    #expect(
      CommandLineOptions.parse(["--log-level", "debug", "--state-dir=/s"], environment: [:])
        == .run(CommandLineOptions(logLevel: .debug, stateDir: "/s")))
    #expect(
      CommandLineOptions.parse([], environment: ["SOCIAL_SIDECAR_LOG_LEVEL": "warn", "SOCIAL_SIDECAR_STATE_DIR": "/e"])
        == .run(CommandLineOptions(logLevel: .warn, stateDir: "/e")))
    guard case .exit(_, 0) = CommandLineOptions.parse(["--version"], environment: [:]) else {
      Issue.record("--version should exit 0")
      return
    }
    guard case .exit(let text, 64) = CommandLineOptions.parse(["--log-level", "loud"], environment: [:]) else {
      Issue.record("a bad level should exit 64")
      return
    }
    #expect(text.contains("--log-level"))
  }
}
