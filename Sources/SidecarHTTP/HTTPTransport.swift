/// Sends HTTP requests. Platform clients depend on this protocol only, so tests can script responses
/// and the server can pick libcurl or URLSession at start-up.
public protocol HTTPTransport: Sendable {
  /// Sends one request (one attempt) and collects the whole response body.
  ///
  /// Honours task cancellation: the transfer is aborted at once and `TransportError.Kind.cancelled`
  /// is thrown. Throws only `TransportError`.
  func send(_ request: HTTPRequest) async throws -> HTTPResponse

  /// Sends one request and streams the response body into the file at `path` (created or truncated),
  /// so a large media download never sits in memory. The returned response has an empty body; the
  /// second value is the number of bytes written. A body over `maxBytes` fails with `.tooLarge`.
  /// The body is written whatever the status: check it before using the file. On failure the file
  /// is removed.
  func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64)
}

/// Settings shared by every request of one transport.
public struct HTTPTransportConfiguration: Sendable {
  /// Connections kept and opened per host. HTTP/2 multiplexes many requests over one connection;
  /// HTTP/1.1 needs one connection per concurrent request, so size this to the expected concurrency.
  /// `CurlTransport` also lets at most this many requests per host into libcurl at once; the rest wait their turn
  /// in its admission queue, where they hold no libcurl resources.
  public var maxConnectionsPerHost: Int
  /// A PEM file of CA certificates to trust instead of the system's (tests with a local CA).
  /// Only `CurlTransport` honours it; URLSession on Linux trusts the system bundle only.
  public var caBundlePath: String?
  /// Follow 3xx responses (at most 5 hops). Off by default: API clients want to see redirects.
  public var followRedirects: Bool
  public var userAgent: String
  /// The longest a kept-alive connection may have been idle to carry an `HTTPRequest.atMostOnce` request (whole
  /// seconds); an older one is replaced by a new connection. Well under any server's keep-alive timeout (Apache's
  /// default is 5 s), so that the server does not close it just as a publish goes out.
  public var atMostOnceMaxIdle: Duration

  public init(
    maxConnectionsPerHost: Int = 64, caBundlePath: String? = nil, followRedirects: Bool = false,
    userAgent: String = "social-sidecar", atMostOnceMaxIdle: Duration = .seconds(1)
  ) {
    self.maxConnectionsPerHost = maxConnectionsPerHost
    self.caBundlePath = caBundlePath
    self.followRedirects = followRedirects
    self.userAgent = userAgent
    self.atMostOnceMaxIdle = atMostOnceMaxIdle
  }
}

/// The transport to use in production, built on its first request (see `LazyTransport`): libcurl, or URLSession
/// through its plugin when `preferred` is "urlsession". If it cannot be loaded, every request fails at once with
/// `TransportError.Kind.unavailable` saying what to install. `onBuild` hears once what was built (or why nothing
/// could be), and whether it can send at all.
public func makeDefaultTransport(
  _ configuration: HTTPTransportConfiguration, preferred: String = "curl",
  onBuild: @escaping @Sendable (_ description: String, _ usable: Bool) -> Void = { _, _ in }
) -> LazyTransport {
  LazyTransport {
    let (transport, note) = buildTransport(
      configuration, preferred: preferred, pluginPath: URLSessionPlugin.defaultPath())
    onBuild(note, !(transport is UnavailableTransport))
    return transport
  }
}

/// The choice `makeDefaultTransport` makes on first use, with a sentence saying what it chose or why nothing works.
/// There is no fallback from libcurl to URLSession: on Linux, FoundationNetworking is built on libcurl too.
func buildTransport(
  _ configuration: HTTPTransportConfiguration, preferred: String, pluginPath: String
) -> (any HTTPTransport, String) {
  do throws(TransportError) {
    if preferred == "urlsession" {
      return (
        try URLSessionPluginTransport(configuration: configuration, pluginPath: pluginPath),
        "URLSession (plugin \(pluginPath))"
      )
    }
    // libcurl's version and TLS library ("libcurl/7.88.1 OpenSSL/3.0.22"), not its whole feature list.
    let version = (CurlTransport.libraryVersion ?? "?").split(separator: " ").prefix(2).joined(separator: " ")
    return (try CurlTransport(configuration: configuration), "libcurl (\(version))")
  } catch {
    var failure = error
    if preferred != "urlsession" { failure.message += ". \(TransportError.installLibcurl)" }
    return (UnavailableTransport(error: failure), failure.message)
  }
}
