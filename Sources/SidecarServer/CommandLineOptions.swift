import SidecarLogging

/// `social-sidecar [--log-level LEVEL] [--state-dir DIR] [--version] [--help]`, with environment forms.
public struct CommandLineOptions: Sendable, Equatable {
  public var logLevel: LogLevel = .info
  public var stateDir: String?

  public init(logLevel: LogLevel = .info, stateDir: String? = nil) {
    self.logLevel = logLevel
    self.stateDir = stateDir
  }

  public enum Outcome: Sendable, Equatable {
    case run(CommandLineOptions)
    /// Print `text` and exit with `code` (help, version, usage errors).
    case exit(String, Int32)
  }

  public static let usage = """
    social-sidecar: publishes to YouTube, Instagram, Facebook Pages, LinkedIn and WhatsApp Business on behalf of a
    parent process, speaking JSON-RPC 2.0 with LSP framing (Content-Length) on stdin/stdout.

    Usage: social-sidecar [--log-level error|warn|info|debug] [--state-dir DIR] [--version] [--help]

    Options:
      --log-level LEVEL  stderr log level (default info; env SOCIAL_SIDECAR_LOG_LEVEL)
      --state-dir DIR    keep idempotency records here so they survive restarts (env SOCIAL_SIDECAR_STATE_DIR)
      --version          print the version and exit
      --help             print this help and exit

    The protocol is documented in protocol/PROTOCOL.md. Logs are one JSON object per line on stderr.
    """

  public static func parse(_ arguments: [String], environment: [String: String]) -> Outcome {
    var options = CommandLineOptions()
    if let level = environment["SOCIAL_SIDECAR_LOG_LEVEL"] {
      guard let parsed = LogLevel(name: level) else {
        return .exit("social-sidecar: SOCIAL_SIDECAR_LOG_LEVEL must be error, warn, info or debug, got \(level)", 64)
      }
      options.logLevel = parsed
    }
    if let dir = environment["SOCIAL_SIDECAR_STATE_DIR"], !dir.isEmpty { options.stateDir = dir }
    var index = 0
    func value(for flag: String) -> String? {
      index += 1
      return index < arguments.count ? arguments[index] : nil
    }
    while index < arguments.count {
      let argument = arguments[index]
      var flag = argument
      var inline: String?
      if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
        flag = String(argument[..<equals])
        inline = String(argument[argument.index(after: equals)...])
      }
      switch flag {
      case "--help", "-h":
        return .exit(usage, 0)
      case "--version":
        return .exit("social-sidecar \(Server.version)", 0)
      case "--log-level":
        guard let text = inline ?? value(for: flag), let level = LogLevel(name: text) else {
          return .exit("social-sidecar: --log-level takes error, warn, info or debug\n\n\(usage)", 64)
        }
        options.logLevel = level
      case "--state-dir":
        guard let dir = inline ?? value(for: flag), !dir.isEmpty else {
          return .exit("social-sidecar: --state-dir takes a directory\n\n\(usage)", 64)
        }
        options.stateDir = dir
      default:
        return .exit("social-sidecar: unknown argument \(argument)\n\n\(usage)", 64)
      }
      index += 1
    }
    return .run(options)
  }
}
