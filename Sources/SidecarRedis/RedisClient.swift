#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import SidecarSystem
import Synchronization

public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
  /// Not connected: the last connection attempt failed and the next one waits for its backoff.
  case unreachable(String)
  /// The connection broke while the command was on its way: it may or may not have run.
  case connectionLost(String)
  /// No reply within the command timeout (the connection was dropped to stay in step).
  case timeout
  /// An error reply (`-ERR ...`).
  case server(String)
  case closed

  public var description: String {
    switch self {
    case .unreachable(let reason): "redis unreachable: \(reason)"
    case .connectionLost(let reason): "redis connection lost: \(reason)"
    case .timeout: "redis did not answer in time"
    case .server(let message): "redis error: \(message)"
    case .closed: "redis client closed"
    }
  }
}

/// A Lua script run with `EVALSHA`, loaded with `SCRIPT LOAD` on first use and again after `NOSCRIPT` (a restarted or
/// flushed server).
public struct RedisScript: Sendable, Hashable {
  public let source: String
  public init(_ source: String) { self.source = source }
}

/// A small Redis client: one TCP connection served by its own thread, so that no caller's task ever blocks in a
/// system call. Commands are pipelined: each call appends its bytes to the connection's queue and awaits its replies,
/// matched first-in first-out. A broken connection fails the calls on it and is re-established with exponential
/// backoff; while the server is known to be down, calls fail at once instead of queueing.
public final class RedisClient: Sendable {
  /// Called when the connection comes up or goes down (not on every failed attempt), so callers log once.
  public typealias StatusHandler = @Sendable (_ connected: Bool, _ reason: String?) -> Void

  private struct Pending {
    var expected: Int
    var replies: [RESPValue] = []
    let continuation: UnsafeContinuation<[RESPValue], any Error>
    let deadline: ContinuousClock.Instant
  }

  fileprivate enum Phase: Equatable {
    case connecting
    case connected
    case down(String)
  }

  private struct State {
    var phase = Phase.connecting
    var outgoing: [UInt8] = []
    var pending: [Pending] = []
    var closed = false
    /// What the status handler heard last: it hears changes only.
    var reported: Bool?
  }

  public let configuration: RedisConfiguration
  private let state = Mutex(State())
  private let scripts = Mutex<[RedisScript: String]>([:])
  private let wake: (read: Int32, write: Int32)
  private let onStatus: StatusHandler

  public init(_ configuration: RedisConfiguration, onStatus: @escaping StatusHandler = { _, _ in }) {
    self.configuration = configuration
    self.onStatus = onStatus
    var fds: [Int32] = [-1, -1]
    if pipe(&fds) == 0 {
      for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
      for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }
    wake = (fds[0], fds[1])
    let loop = ConnectionLoop(client: self)
    startThread { loop.run() }
  }

  deinit {
    // Only once the connection thread let go of the client: no poke can reach a closed descriptor.
    Glibc.close(wake.read)
    Glibc.close(wake.write)
  }

  /// Whether the connection is up right now.
  public var isConnected: Bool { state.withLock { $0.phase == .connected } }

  /// Stops the thread; calls in flight and later calls fail with ``RedisError/closed``. The thread holds the client
  /// until then: call it when done.
  public func close() {
    state.withLock { $0.closed = true }
    poke()
  }

  /// Sends one command and returns its reply; an error reply throws ``RedisError/server(_:)``.
  public func send(_ arguments: String...) async throws(RedisError) -> RESPValue {
    try await send(arguments)
  }

  public func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
    let reply = try await pipeline([arguments])[0]
    if case .error(let message) = reply { throw .server(message) }
    return reply
  }

  /// Sends the commands in one write and returns their replies in order (error replies as ``RESPValue/error(_:)``).
  public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RESPValue] {
    guard !commands.isEmpty else { return [] }
    var bytes: [UInt8] = []
    for command in commands { RESPCommand.encode(command, into: &bytes) }
    let deadline = ContinuousClock.now + configuration.commandTimeout
    do {
      return try await withUnsafeThrowingContinuation { continuation in
        let refused = state.withLock { state -> RedisError? in
          if state.closed { return .closed }
          if case .down(let reason) = state.phase { return .unreachable(reason) }
          state.outgoing.append(contentsOf: bytes)
          state.pending.append(Pending(expected: commands.count, continuation: continuation, deadline: deadline))
          return nil
        }
        if let refused { continuation.resume(throwing: refused) } else { poke() }
      }
    } catch let error as RedisError {
      throw error
    } catch {
      throw .closed
    }
  }

  /// Runs `script` with `EVALSHA`, loading it first (or again after `NOSCRIPT`).
  public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws(RedisError) -> RESPValue
  {
    for _ in 0..<2 {
      let sha: String
      if let known = scripts.withLock({ $0[script] }) {
        sha = known
      } else {
        guard let loaded = try await send("SCRIPT", "LOAD", script.source).string else {
          throw .server("SCRIPT LOAD answered no digest")
        }
        scripts.withLock { $0[script] = loaded }
        sha = loaded
      }
      do {
        return try await send(["EVALSHA", sha, String(keys.count)] + keys + arguments)
      } catch .server(let message) where message.hasPrefix("NOSCRIPT") {
        _ = scripts.withLock { $0.removeValue(forKey: script) }
      }
    }
    return try await send(["EVAL", script.source, String(keys.count)] + keys + arguments)
  }

  private func poke() {
    var byte: UInt8 = 1
    _ = write(wake.write, &byte, 1)
  }

  // MARK: For the connection thread

  fileprivate var wakeFD: Int32 { wake.read }

  fileprivate var isClosed: Bool { state.withLock { $0.closed } }

  /// Takes the bytes queued for writing.
  fileprivate func takeOutgoing() -> [UInt8] {
    state.withLock { state in
      defer { state.outgoing.removeAll(keepingCapacity: true) }
      return state.outgoing
    }
  }

  /// Hands one reply to the oldest call waiting; false if nobody waits (the stream is out of step).
  fileprivate func deliver(_ reply: RESPValue) -> Bool {
    let (matched, finished) = state.withLock { state -> (Bool, Pending?) in
      guard !state.pending.isEmpty else { return (false, nil) }
      state.pending[0].replies.append(reply)
      guard state.pending[0].replies.count == state.pending[0].expected else { return (true, nil) }
      return (true, state.pending.removeFirst())
    }
    if let finished { finished.continuation.resume(returning: finished.replies) }
    return matched
  }

  fileprivate var oldestDeadline: ContinuousClock.Instant? { state.withLock { $0.pending.first?.deadline } }

  fileprivate func setPhase(_ phase: Phase) {
    let change = state.withLock { state -> (Bool, String?)? in
      state.phase = phase
      let (connected, reason): (Bool, String?)
      switch phase {
      case .connecting: return nil
      case .connected: (connected, reason) = (true, nil)
      case .down(let why): (connected, reason) = (false, why)
      }
      guard state.reported != connected else { return nil }
      state.reported = connected
      return (connected, reason)
    }
    if let (connected, reason) = change { onStatus(connected, reason) }
  }

  /// Fails every queued and in-flight call: the connection they were on is gone.
  fileprivate func failAll(_ error: RedisError) {
    let failed = state.withLock { state -> [Pending] in
      state.outgoing.removeAll()
      defer { state.pending.removeAll() }
      return state.pending
    }
    for pending in failed {
      pending.continuation.resume(throwing: pending.replies.isEmpty ? error : .connectionLost("\(error)"))
    }
  }
}

/// The connection thread: connect (with the handshake), then move bytes both ways until the connection breaks.
private final class ConnectionLoop: @unchecked Sendable {
  private let client: RedisClient
  private var configuration: RedisConfiguration { client.configuration }

  init(client: RedisClient) { self.client = client }

  func run() {
    var backoff = configuration.minBackoff
    while !client.isClosed {
      client.setPhase(.connecting)
      let fd: Int32
      switch connect() {
      case .success(let connected):
        fd = connected
      case .failure(let error):
        client.setPhase(.down(error.description))
        client.failAll(.unreachable(error.description))
        pause(backoff)
        backoff = min(backoff * 2, configuration.maxBackoff)
        continue
      }
      backoff = configuration.minBackoff
      client.setPhase(.connected)
      let reason = serve(fd)
      Glibc.close(fd)
      client.failAll(reason)
      // The next attempt starts at once: a dropped connection to a live server should cost one round trip.
    }
    client.failAll(.closed)
  }

  /// Moves queued commands out and replies in until the connection breaks or the client closes; returns why.
  private func serve(_ fd: Int32) -> RedisError {
    var parser = RESPParser()
    var unsent: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while !client.isClosed {
      unsent.append(contentsOf: client.takeOutgoing())
      if !unsent.isEmpty {
        let written = unsent.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written > 0 {
          unsent.removeFirst(written)
        } else if written < 0 && errno != EAGAIN && errno != EINTR {
          return .connectionLost("write failed: errno \(errno)")
        }
      }
      var timeout: Int32 = 100
      if let deadline = client.oldestDeadline {
        let left = ContinuousClock.now.duration(to: deadline)
        if left <= .zero { return .timeout }
        timeout = min(
          timeout, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1)
      }
      var fds = [
        pollfd(fd: fd, events: Int16(POLLIN) | (unsent.isEmpty ? 0 : Int16(POLLOUT)), revents: 0),
        pollfd(fd: client.wakeFD, events: Int16(POLLIN), revents: 0),
      ]
      guard poll(&fds, 2, timeout) >= 0 || errno == EINTR else { return .connectionLost("poll failed: errno \(errno)") }
      if fds[1].revents != 0 { drainWake() }
      guard fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 else { continue }
      let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if count == 0 { return .connectionLost("the server closed the connection") }
      if count < 0 {
        if errno == EAGAIN || errno == EINTR { continue }
        return .connectionLost("read failed: errno \(errno)")
      }
      parser.append(buffer[0..<count])
      do {
        while let reply = try parser.next() {
          if case .push = reply { continue }
          guard client.deliver(reply) else { return .connectionLost("a reply nobody asked for") }
        }
      } catch {
        return .connectionLost("\(error)")
      }
    }
    return .closed
  }

  private func drainWake() {
    var bytes = [UInt8](repeating: 0, count: 256)
    while bytes.withUnsafeMutableBytes({ Glibc.read(client.wakeFD, $0.baseAddress, $0.count) }) > 0 {}
  }

  /// Sleeps `duration`, waking early only to close.
  private func pause(_ duration: Duration) {
    let end = ContinuousClock.now + duration
    while !client.isClosed {
      let left = ContinuousClock.now.duration(to: end)
      guard left > .zero else { return }
      var fds = [pollfd(fd: client.wakeFD, events: Int16(POLLIN), revents: 0)]
      _ = poll(&fds, 1, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1)
      drainWake()
    }
  }

  // MARK: Connecting

  private func connect() -> Result<Int32, RedisError> {
    let deadline = ContinuousClock.now + configuration.connectTimeout
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(configuration.host, String(configuration.port), &hints, &list)
    guard status == 0, let first = list else {
      return .failure(.unreachable("cannot resolve \(configuration.host): \(String(cString: gai_strerror(status)))"))
    }
    defer { freeaddrinfo(list) }
    var lastError = "no address"
    var address: UnsafeMutablePointer<addrinfo>? = first
    while let current = address {
      address = current.pointee.ai_next
      let fd = socket(
        current.pointee.ai_family,
        Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
      guard fd >= 0 else { continue }
      if Glibc.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
        lastError = "connect to \(configuration.endpoint) failed: errno \(errno)"
        Glibc.close(fd)
        continue
      }
      guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
        lastError = "connect to \(configuration.endpoint) timed out"
        Glibc.close(fd)
        continue
      }
      var error: Int32 = 0
      var length = socklen_t(MemoryLayout<Int32>.size)
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
      guard error == 0 else {
        lastError = "connect to \(configuration.endpoint) failed: errno \(error)"
        Glibc.close(fd)
        continue
      }
      var one: Int32 = 1
      setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
      if let failure = handshake(fd, until: deadline) {
        Glibc.close(fd)
        return .failure(failure)
      }
      return .success(fd)
    }
    return .failure(.unreachable(lastError))
  }

  /// `HELLO 3` or `AUTH`, then `SELECT`: the commands that make a new connection usable.
  private func handshake(_ fd: Int32, until deadline: ContinuousClock.Instant) -> RedisError? {
    var commands: [[String]] = []
    if configuration.resp3 {
      var hello = ["HELLO", "3"]
      if let password = configuration.password { hello += ["AUTH", configuration.user ?? "default", password] }
      commands.append(hello)
    } else if let password = configuration.password {
      commands.append(configuration.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
    }
    if configuration.database != 0 { commands.append(["SELECT", String(configuration.database)]) }
    guard !commands.isEmpty else { return nil }
    var bytes: [UInt8] = []
    for command in commands { RESPCommand.encode(command, into: &bytes) }
    while !bytes.isEmpty {
      guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .unreachable("the handshake timed out") }
      let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if written > 0 {
        bytes.removeFirst(written)
      } else if errno != EAGAIN && errno != EINTR {
        return .unreachable("the handshake could not be sent: errno \(errno)")
      }
    }
    var parser = RESPParser()
    var buffer = [UInt8](repeating: 0, count: 4096)
    var replies = 0
    while replies < commands.count {
      do {
        if let reply = try parser.next() {
          replies += 1
          if case .error(let message) = reply {
            return .unreachable("\(commands[replies - 1][0]) was refused: \(message)")
          }
          continue
        }
      } catch {
        return .unreachable("\(error)")
      }
      guard wait(fd, for: Int16(POLLIN), until: deadline) else { return .unreachable("the handshake timed out") }
      let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if count == 0 { return .unreachable("the server closed the connection during the handshake") }
      if count > 0 {
        parser.append(buffer[0..<count])
      } else if errno != EAGAIN && errno != EINTR {
        return .unreachable("the handshake failed: errno \(errno)")
      }
    }
    return nil
  }

  private func wait(_ fd: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
    while true {
      let left = ContinuousClock.now.duration(to: deadline)
      guard left > .zero else { return false }
      var fds = [pollfd(fd: fd, events: events, revents: 0)]
      let milliseconds = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1
      let ready = poll(&fds, 1, milliseconds)
      if ready > 0 { return true }
      if ready < 0 && errno != EINTR { return false }
    }
  }
}
