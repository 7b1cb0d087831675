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

struct SessionSettings: Decodable {
  var maxConnectionsPerHost: Int
  var followRedirects: Bool
  var userAgent: String
}

struct RequestDescription: Decodable {
  struct FileRange: Decodable {
    var path: String
    var offset: Int64
    var length: Int64
  }

  var method: String
  var url: String
  /// "METHOD scheme://host/path", the only form of the request that may appear in a message.
  var target: String
  var headers: [[String]]
  var timeoutMs: Int64?
  var maxBytes: Int64
  var file: FileRange?
  /// A descriptor that receives the body; ours to close.
  var download: Int32?
}

struct Failure: Encodable, Error {
  var kind: String
  var requestSent: Bool
  var message: String
}

/// The host's callback and its context, called exactly once.
struct Completion: @unchecked Sendable {  // the host keeps `context` alive until the call
  let function: SidecarURLSessionCompletion
  let context: UnsafeMutableRawPointer?

  private struct Reply: Encodable {
    var status: Int?
    var headers: [[String]]?
    var bytes: Int64?
    var error: Failure?
  }

  func succeed(status: Int, headers: [[String]], bytes: Int64, body: Data) {
    deliver(Reply(status: status, headers: headers, bytes: bytes), body: body)
  }

  func fail(_ failure: Failure) {
    deliver(Reply(error: failure), body: Data())
  }

  private func deliver(_ reply: Reply, body: Data) {
    let json =
      (try? JSONEncoder().encode(reply))
      ?? Data(
        #"{"error":{"kind":"other","requestSent":true,"message":"the URLSession plugin cannot encode its reply"}}"#.utf8
      )
    json.withUnsafeBytes { json in
      body.withUnsafeBytes { body in
        function(
          context, json.bindMemory(to: UInt8.self).baseAddress, json.count, body.bindMemory(to: UInt8.self).baseAddress,
          body.count)
      }
    }
  }
}

/// One URLSession configured for API calls: no cache, no cookies, connections sized to the expected
/// concurrency (the default of 6 queues requests, and the request timeout counts time spent queued).
final class PluginSession: Sendable {
  private let session: URLSession
  private let delegate: SessionDelegate

  init(_ settings: SessionSettings) {
    let configuration = URLSessionConfiguration.default
    configuration.urlCache = nil  // the default creates a cache folder under ~/.cache
    configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
    configuration.httpCookieStorage = nil
    configuration.httpShouldSetCookies = false
    configuration.httpMaximumConnectionsPerHost = max(1, settings.maxConnectionsPerHost)
    configuration.httpAdditionalHeaders = ["User-Agent": settings.userAgent]
    delegate = SessionDelegate(followRedirects: settings.followRedirects)
    session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
  }

  func invalidate() {
    session.invalidateAndCancel()
  }

  func send(_ request: RequestDescription, body: Data?, reply: Completion) -> UInt64 {
    let sink: SessionDelegate.Sink
    if let fd = request.download {
      sink = .file(descriptor: fd, cap: request.maxBytes)
    } else {
      sink = .memory(cap: request.maxBytes)
    }
    let task: URLSessionTask
    do {
      task = try makeTask(for: request, body: body)
    } catch {
      if case .file(let fd, _) = sink { close(fd) }
      reply.fail(error)
      return 0
    }
    let id = task.taskIdentifier
    delegate.register(id, task: task, sink: sink, target: request.target, reply: reply)
    if let milliseconds = request.timeoutMs {
      DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(clamping: milliseconds))) { [delegate] in
        if delegate.markTimedOut(id) { task.cancel() }
      }
    }
    task.resume()
    return UInt64(UInt(bitPattern: id)) + 1
  }

  func cancel(_ ticket: UInt64) {
    guard ticket > 0 else { return }
    delegate.task(Int(bitPattern: UInt(truncatingIfNeeded: ticket - 1)))?.cancel()
  }

  private func makeTask(for request: RequestDescription, body: Data?) throws(Failure) -> URLSessionTask {
    guard let url = URL(string: request.url) else {
      throw Failure(kind: "invalidURL", requestSent: false, message: "not an absolute http(s) URL: \(request.target)")
    }
    var urlRequest = URLRequest(url: url)
    urlRequest.httpMethod = request.method.uppercased()
    // URLSession's own timeout is an idle timeout; the total one is enforced in `send`.
    urlRequest.timeoutInterval = request.timeoutMs.map { Double($0 / 1000) + 1 } ?? 86_400
    for field in request.headers where field.count == 2 {
      urlRequest.addValue(field[1], forHTTPHeaderField: field[0])
    }
    if let file = request.file {
      let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value
      guard let size, file.offset >= 0, file.length >= 0, size >= file.offset + file.length else {
        throw Failure(
          kind: "invalidRequest", requestSent: false,
          message: "\(file.path) holds fewer than \(file.offset + file.length) bytes")
      }
      if file.offset == 0 && file.length == size {
        return session.uploadTask(with: urlRequest, fromFile: URL(fileURLWithPath: file.path))
      }
      // A byte range (a resumable upload's chunk) is read into memory: URLSession streams whole files only.
      guard let handle = FileHandle(forReadingAtPath: file.path) else {
        throw Failure(kind: "invalidRequest", requestSent: false, message: "cannot open \(file.path)")
      }
      defer { try? handle.close() }
      do {
        try handle.seek(toOffset: UInt64(file.offset))
        urlRequest.httpBody = try handle.read(upToCount: Int(file.length)) ?? Data()
      } catch {
        throw Failure(kind: "invalidRequest", requestSent: false, message: "cannot read \(file.path)")
      }
    } else if let body {
      urlRequest.httpBody = body
    }
    return session.dataTask(with: urlRequest)
  }
}

/// Collects each task's response and body. URLSession calls it on its own queue, concurrently with
/// `send` registering tasks and `cancel` looking them up, so all state sits behind one lock.
private final class SessionDelegate: NSObject, URLSessionDataDelegate, Sendable {
  enum Sink: Sendable {
    case memory(cap: Int64)
    case file(descriptor: Int32, cap: Int64)

    var cap: Int64 {
      switch self {
      case .memory(let cap), .file(_, let cap): cap
      }
    }
  }

  private struct Pending {
    var task: URLSessionTask
    var sink: Sink
    var target: String
    var reply: Completion
    var status = 0
    var headers: [[String]] = []
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

  func register(_ id: Int, task: URLSessionTask, sink: Sink, target: String, reply: Completion) {
    pending.withLock { $0[id] = Pending(task: task, sink: sink, target: target, reply: reply) }
  }

  func task(_ id: Int) -> URLSessionTask? {
    pending.withLock { $0[id]?.task }
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
      let headers = http.allHeaderFields.map { ["\($0.key)", "\($0.value)"] }
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
      guard task.bytes + Int64(data.count) <= task.sink.cap else {
        task.overflow = true
        return true
      }
      switch task.sink {
      case .memory: task.body.append(data)
      case .file(let fd, _):
        guard writeAll(fd, data) else {
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
    var urlError = error.map { ($0 as? URLError) ?? URLError(.unknown) }
    if urlError == nil && done.status == 0 { urlError = URLError(.badServerResponse) }
    if let failure = Self.failure(done, urlError) {
      done.reply.fail(failure)
    } else {
      done.reply.succeed(status: done.status, headers: done.headers, bytes: done.bytes, body: done.body)
    }
  }

  private static let notSent: Set<URLError.Code> = [
    .cannotFindHost, .cannotConnectToHost, .dnsLookupFailed, .notConnectedToInternet, .badURL, .unsupportedURL,
    .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
    .serverCertificateHasUnknownRoot, .clientCertificateRejected, .clientCertificateRequired,
  ]

  private static func failure(_ done: Pending, _ error: URLError?) -> Failure? {
    let target = done.target
    if done.overflow {
      return Failure(kind: "tooLarge", requestSent: true, message: "\(target): response body over the size cap")
    }
    if done.writeFailed {
      return Failure(kind: "other", requestSent: true, message: "\(target): writing the download failed")
    }
    if done.timedOut { return Failure(kind: "timedOut", requestSent: true, message: "\(target): timed out") }
    guard let error else { return nil }
    let kind =
      switch error.code {
      case .cancelled: "cancelled"
      case .timedOut: "timedOut"
      case .cannotFindHost, .cannotConnectToHost, .dnsLookupFailed, .notConnectedToInternet: "connectFailed"
      case .badURL, .unsupportedURL: "invalidURL"
      case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
        .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected,
        .clientCertificateRequired:
        "tls"
      default: "other"
      }
    // Never the error's own text: it carries the full URL, query string included.
    return Failure(
      kind: kind, requestSent: !notSent.contains(error.code), message: "\(target): URLError \(error.code.rawValue)")
  }
}

private func writeAll(_ fd: Int32, _ data: Data) -> Bool {
  data.withUnsafeBytes { buffer -> Bool in
    var offset = 0
    while offset < buffer.count {
      let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return false }
      offset += n
    }
    return true
  }
}
