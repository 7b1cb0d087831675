#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// HTTP over Foundation's URLSession, run inside the `SidecarURLSession` plugin library: the fallback
/// where libcurl cannot be loaded, and the transport chosen by `http.transport: "urlsession"`.
///
/// The plugin is loaded with dlopen so that the executable never links FoundationNetworking, whose
/// libcurl and ~30 dependent libraries would otherwise be mapped at every start. It is looked for at
/// `$SOCIAL_SIDECAR_URLSESSION_PLUGIN`, else next to the running executable.
///
/// On Linux it is the weaker transport (see `CurlTransport`): it cannot trust a custom CA
/// (`caBundlePath` is ignored), has no separate connect timeout, holds a ranged `.file` body
/// (offset > 0 or shorter than the file) in memory, and folds repeated response headers into one.
public final class URLSessionPluginTransport: HTTPTransport {
  /// The library in use.
  public let pluginPath: String
  private let plugin: URLSessionPlugin
  private let session: URLSessionPlugin.Session

  /// Throws `TransportError.Kind.unavailable`, naming the path, when the plugin cannot be loaded.
  public convenience init(configuration: HTTPTransportConfiguration = HTTPTransportConfiguration())
    throws(TransportError)
  {
    try self.init(configuration: configuration, pluginPath: URLSessionPlugin.defaultPath())
  }

  public init(configuration: HTTPTransportConfiguration, pluginPath: String) throws(TransportError) {
    let plugin = try URLSessionPlugin.load(pluginPath)
    struct Settings: Encodable {
      var maxConnectionsPerHost: Int
      var followRedirects: Bool
      var userAgent: String
    }
    let settings = Settings(
      maxConnectionsPerHost: max(1, configuration.maxConnectionsPerHost),
      followRedirects: configuration.followRedirects,
      userAgent: configuration.userAgent)
    let json = (try? JSONEncoder().encode(settings)) ?? Data()
    guard let session = json.withUnsafeBytes({ plugin.create($0.bindMemory(to: UInt8.self).baseAddress, $0.count) })
    else {
      throw TransportError(
        .unavailable, requestSent: false, message: "the URLSession plugin at \(pluginPath) refused its settings")
    }
    self.pluginPath = pluginPath
    self.plugin = plugin
    self.session = URLSessionPlugin.Session(pointer: session)
  }

  deinit {
    plugin.destroy(session.pointer)
  }

  public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    try await run(request, download: nil, cap: Int64(max(0, request.maxResponseBytes))).response
  }

  public func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    let fd = try BodyFiles.createForDownload(path)
    do {
      return try await run(request, download: fd, cap: maxBytes)
    } catch {
      unlink(path)
      throw error
    }
  }

  // MARK: - One attempt

  private struct WireRequest: Encodable {
    struct FileRange: Encodable {
      var path: String
      var offset: Int64
      var length: Int64
    }
    var method: String
    var url: String
    var target: String
    var headers: [[String]]
    var timeoutMs: Int64?
    var maxBytes: Int64
    var file: FileRange?
    var download: Int32?
  }

  /// Runs one request in the plugin. `download`, when given, is handed over to the plugin, which closes it.
  private func run(_ request: HTTPRequest, download: Int32?, cap: Int64) async throws(TransportError) -> (
    response: HTTPResponse, bytes: Int64
  ) {
    let json: Data
    do throws(TransportError) {
      if Task.isCancelled {
        throw TransportError(.cancelled, requestSent: false, message: "\(request.method) cancelled before sending")
      }
      json = try Self.encode(request, download: download, cap: cap)
    } catch {
      if let download { close(download) }
      throw error
    }
    let call = PluginCall()
    let outcome = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        guard call.begin(continuation) else {
          if let download { close(download) }
          continuation.resume(
            returning: .failure(
              TransportError(.cancelled, requestSent: false, message: "\(request.method) cancelled before sending")))
          return
        }
        let context = Unmanaged.passRetained(call).toOpaque()
        let ticket = json.withUnsafeBytes { json in
          request.body.withBytes { body in
            plugin.send(
              session.pointer, json.bindMemory(to: UInt8.self).baseAddress, json.count,
              body.bindMemory(to: UInt8.self).baseAddress, body.count,
              { context, reply, length, body, bodyLength in
                let call = Unmanaged<PluginCall>.fromOpaque(context!).takeRetainedValue()
                call.finish(PluginCall.outcome(reply, length, body, bodyLength))
              }, context)
          }
        }
        if call.sent(ticket) { plugin.cancel(session.pointer, ticket) }
      }
    } onCancel: {
      if let ticket = call.cancel() { plugin.cancel(session.pointer, ticket) }
    }
    return try outcome.get()
  }

  private static func encode(_ request: HTTPRequest, download: Int32?, cap: Int64) throws(TransportError) -> Data {
    let url = request.url
    guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host?.isEmpty == false
    else {
      throw TransportError(
        .invalidURL, requestSent: false, message: "not an absolute http(s) URL: \(url.redactedForLogs)")
    }
    var headers: [[String]] = []
    guard request.pinnedAddresses.isEmpty else {
      // URLSession resolves names itself: connecting to other addresses than the checked ones is not acceptable.
      throw TransportError(
        .invalidRequest, requestSent: false,
        message: "the URLSession transport cannot pin the checked addresses of \(url.redactedForLogs); use libcurl")
    }
    for (name, value) in request.headers {
      guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
        throw TransportError(.invalidRequest, requestSent: false, message: "line break in the value of header \(name)")
      }
      headers.append([name, value])
    }
    var wire = WireRequest(
      method: request.method, url: url.absoluteString, target: "\(request.method) \(url.redactedForLogs)",
      headers: headers, timeoutMs: request.timeout.map { Int64($0.wholeMilliseconds) }, maxBytes: cap,
      download: download)
    if case .file(let path, let offset, let length) = request.body {
      // The plugin opens the path itself; it must be a regular file now (see `BodyFiles.openForUpload`).
      close(try BodyFiles.openForUpload(path, offset: offset, length: length))
      wire.file = WireRequest.FileRange(path: path, offset: offset, length: length)
    }
    do {
      return try JSONEncoder().encode(wire)
    } catch {
      throw TransportError(
        .invalidRequest, requestSent: false, message: "cannot encode the request for the URLSession plugin")
    }
  }
}

/// One request in flight. It pairs the plugin's completion with the awaiting task, and turns a task
/// cancellation, which may come before, during or after the plugin's `send`, into one `cancel` of the
/// right ticket.
private final class PluginCall: Sendable {
  typealias Outcome = Result<(response: HTTPResponse, bytes: Int64), TransportError>

  private struct State {
    var continuation: CheckedContinuation<Outcome, Never>?
    var ticket: UInt64 = 0
    var cancelled = false
    var finished = false
  }

  private let state = Mutex(State())

  /// Keeps the continuation; false if the task was already cancelled, so nothing must be sent.
  func begin(_ continuation: CheckedContinuation<Outcome, Never>) -> Bool {
    state.withLock { state in
      guard !state.cancelled else { return false }
      state.continuation = continuation
      return true
    }
  }

  /// Records the plugin's ticket; true if a cancellation came in the meantime and must be passed on.
  func sent(_ ticket: UInt64) -> Bool {
    state.withLock { state in
      state.ticket = ticket
      return state.cancelled && !state.finished && ticket != 0
    }
  }

  /// The ticket to cancel now, or nil when the request is not sent yet (`sent` will pass it on) or is over.
  func cancel() -> UInt64? {
    state.withLock { state in
      state.cancelled = true
      return state.ticket != 0 && !state.finished ? state.ticket : nil
    }
  }

  func finish(_ outcome: Outcome) {
    let continuation = state.withLock { state in
      state.finished = true
      defer { state.continuation = nil }
      return state.continuation
    }
    continuation?.resume(returning: outcome)
  }

  private struct Reply: Decodable {
    struct Failure: Decodable {
      var kind: String
      var requestSent: Bool
      var message: String
    }
    var status: Int?
    var headers: [[String]]?
    var bytes: Int64?
    var error: Failure?
  }

  /// Reads the plugin's reply; the buffers are only valid during the completion call, so the body is copied.
  static func outcome(_ reply: UnsafePointer<UInt8>?, _ length: Int, _ body: UnsafePointer<UInt8>?, _ bodyLength: Int)
    -> Outcome
  {
    let json = reply.map { Data(bytes: $0, count: length) } ?? Data()
    guard let decoded = try? JSONDecoder().decode(Reply.self, from: json) else {
      return .failure(
        TransportError(.other, requestSent: true, message: "the URLSession plugin sent a malformed reply"))
    }
    if let error = decoded.error {
      return .failure(
        TransportError(
          TransportError.Kind(named: error.kind) ?? .other, requestSent: error.requestSent, message: error.message))
    }
    var headers = HTTPHeaders()
    for field in decoded.headers ?? [] where field.count == 2 { headers.add(name: field[0], value: field[1]) }
    let data = body.map { Data(bytes: $0, count: bodyLength) } ?? Data()
    return .success((HTTPResponse(status: decoded.status ?? 0, headers: headers, body: data), decoded.bytes ?? 0))
  }
}

/// The plugin's entry points (see `Sources/SidecarURLSessionPlugin/CABI.swift` for the contract).
struct URLSessionPlugin: @unchecked Sendable {  // C function pointers into a library that is never unloaded
  typealias Completion =
    @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int, UnsafePointer<UInt8>?, Int)
    -> Void

  /// A session the plugin created; used from any thread, as the plugin allows.
  struct Session: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
  }

  static let abiVersion: Int32 = 1
  static let environmentVariable = "SOCIAL_SIDECAR_URLSESSION_PLUGIN"
  #if canImport(Darwin)
    static let fileName = "libSidecarURLSession.dylib"
  #else
    static let fileName = "libSidecarURLSession.so"
  #endif

  let create: @convention(c) (UnsafePointer<UInt8>?, Int) -> UnsafeMutableRawPointer?
  let send:
    @convention(c) (
      UnsafeMutableRawPointer, UnsafePointer<UInt8>?, Int, UnsafePointer<UInt8>?, Int, Completion,
      UnsafeMutableRawPointer?
    ) -> UInt64
  let cancel: @convention(c) (UnsafeMutableRawPointer, UInt64) -> Void
  let destroy: @convention(c) (UnsafeMutableRawPointer) -> Void

  /// `$SOCIAL_SIDECAR_URLSESSION_PLUGIN` when set, else the plugin's file name beside `executable`.
  static func defaultPath(
    environment: String? = getenv(environmentVariable).map { String(cString: $0) },
    executable: String? = executablePath()
  ) -> String {
    if let environment, !environment.isEmpty { return environment }
    let directory = executable.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "."
    return (directory.isEmpty ? "." : directory) + "/" + fileName
  }

  /// The running executable's path: `/proc/self/exe` (the symlink, resolved) on Linux.
  static func executablePath() -> String? {
    #if os(Linux)
      var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
      let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
      guard length > 0 else { return nil }
      return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    #else
      return Bundle.main.executablePath
    #endif
  }

  /// Loads the library (once per process: dlopen counts references) and resolves its entry points.
  static func load(_ path: String) throws(TransportError) -> URLSessionPlugin {
    func unavailable(_ reason: String) -> TransportError {
      TransportError(
        .unavailable, requestSent: false,
        message: "cannot load the URLSession plugin from \(path): \(reason) (set \(environmentVariable) to its path)")
    }
    guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
      var reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
      if reason.hasPrefix(path + ": ") { reason.removeFirst(path.count + 2) }
      throw unavailable(reason)
    }
    // Never dlclose'd: a Swift library registers runtime metadata that cannot be unregistered.
    func symbol<T>(_ name: String, as type: T.Type) throws(TransportError) -> T {
      guard let address = dlsym(handle, name) else { throw unavailable("\(name) is missing") }
      return unsafeBitCast(address, to: type)
    }
    let version = try symbol("sidecar_urlsession_abi_version", as: (@convention(c) () -> Int32).self)()
    guard version == abiVersion else { throw unavailable("ABI version \(version), expected \(abiVersion)") }
    return URLSessionPlugin(
      create: try symbol(
        "sidecar_urlsession_create",
        as: (@convention(c) (UnsafePointer<UInt8>?, Int) -> UnsafeMutableRawPointer?).self),
      send: try symbol(
        "sidecar_urlsession_send",
        as: (@convention(c) (
          UnsafeMutableRawPointer, UnsafePointer<UInt8>?, Int, UnsafePointer<UInt8>?, Int, Completion,
          UnsafeMutableRawPointer?
        ) -> UInt64).self),
      cancel: try symbol(
        "sidecar_urlsession_cancel", as: (@convention(c) (UnsafeMutableRawPointer, UInt64) -> Void).self),
      destroy: try symbol("sidecar_urlsession_destroy", as: (@convention(c) (UnsafeMutableRawPointer) -> Void).self))
  }
}

extension HTTPBody {
  /// The in-memory bytes to send (empty for `.empty` and `.file`, which travel by path).
  fileprivate func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
    if case .bytes(let data) = self { return data.withUnsafeBytes(body) }
    return body(UnsafeRawBufferPointer(start: nil, count: 0))
  }
}
