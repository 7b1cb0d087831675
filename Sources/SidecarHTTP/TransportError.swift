/// Why an attempt failed below HTTP. HTTP statuses are responses, not `TransportError`s.
public struct TransportError: Error, Sendable, CustomStringConvertible {
  /// What went wrong, in the struct-with-private-code style so that kinds can be added without breaking
  /// exhaustive switches.
  public struct Kind: Sendable, Hashable, CustomStringConvertible {
    private enum Code: String, Sendable {
      case connectFailed, timedOut, cancelled, tls, tooLarge, invalidURL, invalidRequest, unavailable, other
    }
    private let code: Code
    private init(_ code: Code) { self.code = code }

    /// The kind whose `description` is `name` (the URLSession plugin reports kinds by name).
    init?(named name: String) {
      guard let code = Code(rawValue: name) else { return nil }
      self.code = code
    }

    /// DNS failure, refused or unreachable: nothing was sent.
    public static let connectFailed = Kind(.connectFailed)
    /// The attempt's connect or total timeout ran out.
    public static let timedOut = Kind(.timedOut)
    /// The calling task was cancelled (or the transport shut down).
    public static let cancelled = Kind(.cancelled)
    /// Handshake or certificate verification failed.
    public static let tls = Kind(.tls)
    /// The response body exceeded the caller's cap.
    public static let tooLarge = Kind(.tooLarge)
    /// Not an absolute http(s) URL.
    public static let invalidURL = Kind(.invalidURL)
    /// A header or body that cannot be sent as given (e.g. a line break in a header value, a missing file).
    public static let invalidRequest = Kind(.invalidRequest)
    /// This transport cannot run here (libcurl or the URLSession plugin missing).
    public static let unavailable = Kind(.unavailable)
    /// Anything else: connection reset, protocol error, local I/O error.
    public static let other = Kind(.other)

    /// What a person does about a missing or broken libcurl.
    public static let installLibcurl =
      "Install libcurl: the libcurl4 package on Debian and Ubuntu (apt-get install libcurl4 ca-certificates), "
      + "libcurl on Fedora (dnf install libcurl) and Alpine (apk add libcurl)"

    public var description: String { code.rawValue }
  }

  public var kind: Kind
  /// False when the failure happened before any byte of the request left, so a non-idempotent publish
  /// is safe to retry; true when the request may have reached the server.
  public var requestSent: Bool
  /// A human-readable reason. Never contains the URL's query string or any header value.
  public var message: String

  public init(_ kind: Kind, requestSent: Bool, message: String) {
    self.kind = kind
    self.requestSent = requestSent
    self.message = message
  }

  /// What a person does about a missing or broken libcurl.
  public static let installLibcurl =
    "Install libcurl: the libcurl4 package on Debian and Ubuntu (apt-get install libcurl4 ca-certificates), "
    + "libcurl on Fedora (dnf install libcurl) and Alpine (apk add libcurl)"

  public var description: String { "\(kind): \(message)" + (requestSent ? " (request may have been sent)" : "") }
}
