import Foundation
import SidecarHTTP
import SidecarTestSupport
import Testing

/// A local HTTP/1.1 server (Python's `http.server`, threaded) started once per test process on an
/// ephemeral port. It exits when our end of its stdin closes, so it never outlives the tests.
final class TestServer: Sendable {
  let port: Int
  /// The same handler over TLS, with a certificate for 127.0.0.1 signed by `caPath`.
  let tlsPort: Int
  let caPath: String
  private let process: Process
  private let stdin: Pipe

  static let shared: TestServer = {
    do { return try TestServer() } catch { fatalError("cannot start the test HTTP server: \(error)") }
  }()

  private init() throws {
    let script = FileManager.default.temporaryDirectory.appendingPathComponent(
      "sidecar-http-test-server-\(getpid()).py")
    try Self.source.write(to: script, atomically: true, encoding: .utf8)
    let certificates = try Self.makeCertificates()
    caPath = certificates.ca
    process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script.path, certificates.cert, certificates.key]
    let stdout = Pipe()
    stdin = Pipe()
    process.standardOutput = stdout
    process.standardInput = stdin
    try process.run()
    let line = String(decoding: stdout.fileHandleForReading.readLine(), as: UTF8.self)
    let ports = line.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    guard ports.count == 2 else { throw CocoaError(.fileReadCorruptFile) }
    port = ports[0]
    tlsPort = ports[1]
  }

  /// A throw-away CA and a server certificate for 127.0.0.1 it signed (openssl command line).
  private static func makeCertificates() throws -> (ca: String, cert: String, key: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sidecar-http-tls-\(getpid())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let (ca, caKey, csr, cert, key, ext) = (
      "\(directory)/ca.pem", "\(directory)/ca.key", "\(directory)/server.csr", "\(directory)/server.pem",
      "\(directory)/server.key", "\(directory)/ext.cnf"
    )
    try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n".write(toFile: ext, atomically: true, encoding: .utf8)
    for arguments in [
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sidecar test CA", "-keyout", caKey,
        "-out", ca,
      ],
      ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
      [
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-extfile", ext,
        "-out", cert,
      ],
    ] {
      let openssl = Process()
      openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      openssl.arguments = ["openssl"] + arguments
      openssl.standardError = FileHandle.nullDevice
      try openssl.run()
      openssl.waitUntilExit()
      guard openssl.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
    return (ca, cert, key)
  }

  func url(_ pathAndQuery: String) -> URL {
    URL(string: "http://127.0.0.1:\(port)\(pathAndQuery)")!
  }

  func tlsURL(_ pathAndQuery: String) -> URL {
    URL(string: "https://127.0.0.1:\(tlsPort)\(pathAndQuery)")!
  }

  static let source = #"""
    import hashlib, http.server, json, os, sys, threading, time, urllib.parse

    seen = set()
    drops = {}
    seen_lock = threading.Lock()
    PATTERN = bytes(range(251))

    def pattern(n):
        return (PATTERN * (n // 251 + 1))[:n]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_any(self):
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            received = bytearray()
            sink = open(query["save"], "wb") if parts.path == "/upload" else None
            left = length
            while left:
                chunk = self.rfile.read(min(65536, left))
                if not chunk:
                    break
                left -= len(chunk)
                if sink:
                    sink.write(chunk)
                elif len(received) < 65536:
                    received += chunk
            if sink:
                sink.close()
            if parts.path == "/drop":  # counts the request, then closes the connection without answering
                with seen_lock:
                    drops[query["id"]] = drops.get(query["id"], 0) + 1
                self.close_connection = True
                return
            status = int(query.get("status", "200"))
            headers = []
            chunked = False
            if parts.path == "/sleep":
                time.sleep(int(query.get("ms", "1000")) / 1000)
                body = b"slept"
            elif parts.path == "/hold":
                with seen_lock:
                    seen.add(query["id"])
                time.sleep(int(query.get("ms", "5000")) / 1000)
                body = b"held"
            elif parts.path == "/drops":
                with seen_lock:
                    body = str(drops.get(query["id"], 0)).encode()
            elif parts.path == "/seen":
                with seen_lock:
                    body = b"yes" if query["id"] in seen else b"no"
            elif parts.path == "/bytes":
                body = pattern(int(query["n"]))
                chunked = query.get("chunked") == "1"
            elif parts.path == "/headers":
                headers = [("X-Mixed-Case", "one"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Retry-After", "7")]
                body = b"{}"
            else:
                body = json.dumps({
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "headers": [[k, v] for k, v in self.headers.items()],
                    "bodyLength": length,
                    "body": bytes(received).decode("latin-1"),
                    "clientPort": self.client_address[1],
                }).encode()
            if query.get("close") == "1":  # the client must open a new connection for its next request
                headers.append(("Connection", "close"))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                if chunked:
                    for i in range(0, len(body), 8192):
                        piece = body[i:i + 8192]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512

        def handle_error(self, request, client_address):
            pass  # clients that cancel or time out reset their connections; that is expected here

    import ssl
    server = Server(("127.0.0.1", 0), Handler)
    tls = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()
    print(server.server_address[1], tls.server_address[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()
    """#
}

extension FileHandle {
  /// Reads up to the first newline (blocking), for the server's port announcement.
  fileprivate func readLine() -> [UInt8] {
    var bytes: [UInt8] = []
    while let byte = try? read(upToCount: 1), let first = byte.first, first != UInt8(ascii: "\n") {
      bytes.append(first)
    }
    return bytes
  }
}

/// The two transports, so that one test body can check both.
enum TransportKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case curl, urlsession

  var testDescription: String { rawValue }

  func make(_ configuration: HTTPTransportConfiguration = HTTPTransportConfiguration()) throws -> any HTTPTransport {
    switch self {
    case .curl: try CurlTransport(configuration: configuration)
    // Through the plugin library beside the test binary (`swift build --build-tests` builds it): if it is
    // missing this throws, naming where it looked, and the test fails.
    case .urlsession: try URLSessionPluginTransport(configuration: configuration)
    }
  }
}

/// The byte pattern `/bytes` serves: 0, 1, ..., 250, 0, 1, ...
func servedPattern(_ count: Int) -> Data {
  Data((0..<count).map { UInt8($0 % 251) })
}

/// A port on 127.0.0.1 that nothing listens on.
func refusedPort() -> Int { unusedLoopbackPort() ?? 1 }  // port 1 (tcpmux) if none could be bound: refused too

/// A fresh path under the temporary directory.
func temporaryPath(_ name: String) -> String {
  FileManager.default.temporaryDirectory.appendingPathComponent("sidecar-http-\(UUID().uuidString)-\(name)").path
}

struct Echo: Decodable {
  var method: String
  var path: String
  var query: String
  var headers: [[String]]
  var bodyLength: Int
  var body: String
  var clientPort: Int

  func header(_ name: String) -> String? {
    headers.first { $0[0].lowercased() == name.lowercased() }?[1]
  }
}
