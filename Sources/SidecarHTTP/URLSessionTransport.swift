import Foundation
import Synchronization

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif
#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// HTTP over Foundation's URLSession: the fallback where libcurl cannot be loaded, and the natural
/// choice on macOS.
///
/// On Linux it is the weaker transport (see `CurlTransport`): it cannot trust a custom CA
/// (`caBundlePath` is ignored), has no separate connect timeout, and holds a ranged `.file` body
/// (offset > 0 or shorter than the file) in memory.
public final class URLSessionTransport: HTTPTransport {
  private let session: URLSession
  private let delegate: SessionDelegate

  public init(configuration: HTTPTransportConfiguration = HTTPTransportConfiguration()) {
    let settings = URLSessionConfiguration.default
    settings.urlCache = nil  // the default creates a cache folder under ~/.cache
    settings.requestCachePolicy = .reloadIgnoringLocalCacheData
    settings.httpCookieStorage = nil
    settings.httpShouldSetCookies = false
    // The default of 6 queues requests, and the request timeout counts time spent queued.
    settings.httpMaximumConnectionsPerHost = max(1, configuration.maxConnectionsPerHost)
    settings.httpAdditionalHeaders = ["User-Agent": configuration.userAgent]
    delegate = SessionDelegate(followRedirects: configuration.followRedirects)
    session = URLSession(configuration: settings, delegate: delegate, delegateQueue: nil)
  }

  deinit {
    session.invalidateAndCancel()
  }

  public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
    let result = try await run(request, sink: .memory(cap: Int64(max(0, request.maxResponseBytes))))
    return result.response
  }

  public func download(_ request: HTTPRequest, to path: String, maxBytes: Int64) async throws -> (HTTPResponse, Int64) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw TransportError(
        .invalidRequest, requestSent: false, message: "cannot create \(path): \(String(cString: strerror(errno)))")
    }
    do {
      let result = try await run(request, sink: .file(descriptor: fd, cap: maxBytes))
      return (result.response, result.bytes)
    } catch {
      unlink(path)
      throw error
    }
  }

  private func run(_ request: HTTPRequest, sink: SessionDelegate.Sink) async throws(TransportError) -> SessionDelegate.Finished {
    let task: URLSessionTask
    do throws(TransportError) {
      if Task.isCancelled {
        throw TransportError(.cancelled, requestSent: false, message: "\(request.method) cancelled before sending")
      }
      task = try makeTask(for: request)
    } catch {
      if case .file(let fd, _) = sink { close(fd) }
      throw error
    }
    let id = task.taskIdentifier
    let finished = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        delegate.register(id, sink: sink, continuation: continuation)
        if let timeout = request.timeout {
          let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
          DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [delegate] in
            if delegate.markTimedOut(id) { task.cancel() }
          }
        }
        task.resume()
      }
    } onCancel: {
      task.cancel()
    }
    if let failure = finished.failure(for: request) { throw failure }
    return finished
  }

  private func makeTask(for request: HTTPRequest) throws(TransportError) -> URLSessionTask {
    guard let scheme = request.url.scheme?.lowercased(), scheme == "http" || scheme == "https",
      request.url.host?.isEmpty == false
    else {
      throw TransportError(
        .invalidURL, requestSent: false, message: "not an absolute http(s) URL: \(request.url.redactedForLogs)")
    }
    var urlRequest = URLRequest(url: request.url)
    urlRequest.httpMethod = request.method.uppercased()
    // URLSession's own timeout is an idle timeout; the total one is enforced in `run`.
    urlRequest.timeoutInterval = request.timeout.map { max(0.001, Double($0.components.seconds) + 1) } ?? 86_400
    for (name, value) in request.headers {
      guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
        throw TransportError(.invalidRequest, requestSent: false, message: "line break in the value of header \(name)")
      }
      urlRequest.addValue(value, forHTTPHeaderField: name)
    }
    switch request.body {
    case .empty:
      return session.dataTask(with: urlRequest)
    case .bytes(let data):
      urlRequest.httpBody = data
      return session.dataTask(with: urlRequest)
    case .file(let path, let offset, let length):
      let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
      guard let size, offset >= 0, length >= 0, size >= offset + length else {
        throw TransportError(.invalidRequest, requestSent: false, message: "\(path) holds fewer than \(offset + length) bytes")
      }
      if offset == 0 && length == size {
        return session.uploadTask(with: urlRequest, fromFile: URL(fileURLWithPath: path))
      }
      guard let file = FileHandle(forReadingAtPath: path) else {
        throw TransportError(.invalidRequest, requestSent: false, message: "cannot open \(path)")
      }
      defer { try? file.close() }
      do {
        try file.seek(toOffset: UInt64(offset))
        urlRequest.httpBody = try file.read(upToCount: Int(length)) ?? Data()
      } catch {
        throw TransportError(.invalidRequest, requestSent: false, message: "cannot read \(path)")
      }
      return session.dataTask(with: urlRequest)
    }
  }
}

/// Collects each task's response and body. URLSession calls it on its own queue, concurrently with
/// callers registering tasks, so all state sits behind one lock.
private final class SessionDelegate: NSObject, URLSessionDataDelegate, Sendable {
  enum Sink: Sendable {
    case memory(cap: Int64)
    case file(descriptor: Int32, cap: Int64)
  }

  struct Finished: Sendable {
    var response: HTTPResponse
    var bytes: Int64
    var error: URLError?
    var overflow = false
    var writeFailed = false
    var timedOut = false

    func failure(for request: HTTPRequest) -> TransportError? {
      let target = "\(request.method) \(request.url.redactedForLogs)"
      if overflow { return TransportError(.tooLarge, requestSent: true, message: "\(target): response body over the size cap") }
      if writeFailed { return TransportError(.other, requestSent: true, message: "\(target): writing the download failed") }
      if timedOut { return TransportError(.timedOut, requestSent: true, message: "\(target): timed out") }
      guard let error else { return nil }
      let notSent: Set<URLError.Code> = [
        .cannotFindHost, .cannotConnectToHost, .dnsLookupFailed, .notConnectedToInternet, .badURL, .unsupportedURL,
        .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
        .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected,
        .clientCertificateRequired,
      ]
      let sent = !notSent.contains(error.code)
      let kind: TransportError.Kind =
        switch error.code {
        case .cancelled: .cancelled
        case .timedOut: .timedOut
        case .cannotFindHost, .cannotConnectToHost, .dnsLookupFailed, .notConnectedToInternet: .connectFailed
        case .badURL, .unsupportedURL: .invalidURL
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
          .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected,
          .clientCertificateRequired:
          .tls
        default: .other
        }
      return TransportError(kind, requestSent: sent, message: "\(target): URLError \(error.code.rawValue)")
    }
  }

  private struct Pending {
    var sink: Sink
    var continuation: CheckedContinuation<Finished, Never>
    var status = 0
    var headers = HTTPHeaders()
    var body = Data()
    var bytes: Int64 = 0
    var overflow = false
    var writeFailed = false
    var timedOut = false
  }

  private let followRedirects: Bool
  private let pending = Mutex<[Int: Pending]>([:])

  init(followRedirects: Bool) {
    self.followRedirects = followRedirects
  }

  func register(_ id: Int, sink: Sink, continuation: CheckedContinuation<Finished, Never>) {
    pending.withLock { $0[id] = Pending(sink: sink, continuation: continuation) }
  }

  /// Marks a still-running task as timed out; true if the caller should cancel it.
  func markTimedOut(_ id: Int) -> Bool {
    pending.withLock { tasks in
      guard tasks[id] != nil else { return false }
      tasks[id]?.timedOut = true
      return true
    }
  }

  func urlSession(
    _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
  ) {
    if let http = response as? HTTPURLResponse {
      var headers = HTTPHeaders()
      for (name, value) in http.allHeaderFields {
        headers.add(name: "\(name)", value: "\(value)")
      }
      pending.withLock { tasks in
        tasks[dataTask.taskIdentifier]?.status = http.statusCode
        tasks[dataTask.taskIdentifier]?.headers = headers
      }
    }
    completionHandler(.allow)
  }

  func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
    let stop = pending.withLock { tasks -> Bool in
      guard var task = tasks[dataTask.taskIdentifier] else { return false }
      defer { tasks[dataTask.taskIdentifier] = task }
      let cap: Int64
      switch task.sink {
      case .memory(let limit): cap = limit
      case .file(_, let limit): cap = limit
      }
      guard task.bytes + Int64(data.count) <= cap else {
        task.overflow = true
        return true
      }
      switch task.sink {
      case .memory: task.body.append(data)
      case .file(let fd, _):
        let written = data.withUnsafeBytes { buffer -> Bool in
          var offset = 0
          while offset < buffer.count {
            let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
          }
          return true
        }
        if !written {
          task.writeFailed = true
          return true
        }
      }
      task.bytes += Int64(data.count)
      return false
    }
    if stop { dataTask.cancel() }
  }

  func urlSession(
    _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
  ) {
    completionHandler(followRedirects ? request : nil)
  }

  func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
    guard let done = pending.withLock({ $0.removeValue(forKey: task.taskIdentifier) }) else { return }
    if case .file(let fd, _) = done.sink { close(fd) }
    var finished = Finished(
      response: HTTPResponse(status: done.status, headers: done.headers, body: done.body), bytes: done.bytes)
    finished.error = error.map { ($0 as? URLError) ?? URLError(.unknown) }
    finished.overflow = done.overflow
    finished.writeFailed = done.writeFailed
    finished.timedOut = done.timedOut
    if finished.error == nil && done.status == 0 {
      finished.error = URLError(.badServerResponse)
    }
    done.continuation.resume(returning: finished)
  }
}
