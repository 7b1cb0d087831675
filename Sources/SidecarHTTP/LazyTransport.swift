import Synchronization

/// A transport built on its first request. Loading libcurl (and with it OpenSSL) or the URLSession plugin
/// costs megabytes and milliseconds, so the sidecar answers `initialize` without either and pays only once
/// it really talks to a platform.
public final class LazyTransport: HTTPTransport {
  private let factory: @Sendable () -> any HTTPTransport
  private let built = Mutex<(any HTTPTransport)?>(nil)

  /// `factory` runs exactly once, on the first request's task, while concurrent first requests wait for it.
  /// It must not use this transport.
  public init(_ factory: @escaping @Sendable () -> any HTTPTransport) {
    self.factory = factory
  }

  /// The real transport, built now if no request has built it yet.
  public var transport: any HTTPTransport {
    built.withLock { built in
      if let built { return built }
      let made = factory()
      built = made
      return made
    }
  }

  /// Whether the real transport exists yet.
  public var isBuilt: Bool {
    built.withLock { $0 != nil }
  }

  public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    try await transport.send(request)
  }

  public func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    try await transport.download(request, to: path, maxBytes: maxBytes)
  }
}

/// Fails every request with the reason no transport could be built, so that a missing library shows up as
/// a clear error on the call that needed it rather than as a crash at start-up.
struct UnavailableTransport: HTTPTransport {
  let error: TransportError

  func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    throw error
  }

  func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    throw error
  }
}
