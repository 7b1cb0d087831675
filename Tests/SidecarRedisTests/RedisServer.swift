import Foundation
import SidecarTestSupport
import Testing

@testable import SidecarRedis

/// A real `redis-server` (Debian's package, installed by scripts/setup) on a free loopback port, without persistence,
/// for one test; stopped by `stop()` or when the test process ends.
final class RedisServer: @unchecked Sendable {
  let port: Int
  private let extra: [String]
  private var pid: pid_t = 0

  init(_ extra: [String] = []) throws {
    self.extra = extra
    guard let port = unusedLoopbackPort() else { throw ServerError("no free loopback port") }
    self.port = port
    try start()
  }

  var url: String { "redis://127.0.0.1:\(port)" }

  func start() throws {
    let arguments =
      [
        try Self.executable(), "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--loglevel", "warning", "--logfile", "/dev/null",
      ] + extra
    var argv = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let status = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
    guard status == 0 else { throw ServerError("cannot start redis-server: errno \(status)") }
    for _ in 0..<300 where !Self.accepts(port) { usleep(10_000) }
    guard Self.accepts(port) else { throw ServerError("redis-server did not start on port \(port)") }
  }

  /// Kills the server at once (like a crash: no persistence to flush anyway) and reaps it.
  func stop() {
    guard pid > 0 else { return }
    kill(pid, SIGKILL)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    pid = 0
  }

  deinit { stop() }

  struct ServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
  }

  static func executable() throws -> String {
    for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]
    where FileManager.default.isExecutableFile(atPath: path) {
      return path
    }
    throw ServerError("redis-server is not installed: run scripts/setup (apt-get install -y redis-server)")
  }

  static func accepts(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
      }
    }
  }
}
