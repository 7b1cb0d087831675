import Foundation
import SidecarHTTP
import SidecarResilience

/// Rules for media URLs, kept in one place so every platform applies them the same way.
///
/// Media the sidecar fetches itself (YouTube videos, LinkedIn images) could otherwise be pointed at loopback,
/// private networks or a cloud metadata endpoint (SSRF): such URLs must be https and resolve to public addresses,
/// on every redirect hop, unless `media.allowPrivateNetworks` (tests). Media handed to Meta to fetch is checked for
/// https only, since Meta's servers fetch it.
public struct MediaPolicy: Sendable, Equatable {
  public var allowPrivateNetworks: Bool

  public init(allowPrivateNetworks: Bool) { self.allowPrivateNetworks = allowPrivateNetworks }

  /// A local file the sidecar may upload (`videoPath`, `documentPath`, `thumbnailPath`, WhatsApp's `{path}`): an
  /// absolute path naming a readable, non-empty regular file. Every local-path param goes through here.
  public func localFile(_ path: String, field: String) throws(InvalidParams) -> LocalFile {
    guard path.hasPrefix("/") else { throw InvalidParams("`\(field)` must be an absolute path, got \(path)", field: field) }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
      throw InvalidParams("`\(field)` names no file: \(path)", field: field)
    }
    guard FileManager.default.isReadableFile(atPath: path) else {
      throw InvalidParams("`\(field)` is not readable by the sidecar: \(path)", field: field)
    }
    let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    guard size > 0 else { throw InvalidParams("`\(field)` is an empty file: \(path)", field: field) }
    return LocalFile(path: path, size: size)
  }

  /// A URL handed to the platform to fetch: it must be absolute https.
  public func platformFetchedURL(_ text: String, field: String) throws(InvalidParams) -> URL {
    guard let url = URL(string: text), url.scheme?.lowercased() == "https", url.host?.isEmpty == false else {
      throw InvalidParams("`\(field)` must be an absolute https URL the platform can fetch, got \(text)", field: field)
    }
    return url
  }

  /// A URL the sidecar fetches itself: https, and not a private or loopback host (literal addresses and
  /// `localhost` are refused here; names are checked again after DNS resolution by ``MediaFetcher``).
  public func sidecarFetchedURL(_ text: String, field: String) throws(InvalidParams) -> URL {
    guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
      throw InvalidParams("`\(field)` must be an absolute https URL, got \(text)", field: field)
    }
    if let reason = refusal(scheme: scheme, host: host, addresses: AddressCheck.literal(host).map { [$0] } ?? []) {
      throw InvalidParams("`\(field)` \(reason)", field: field)
    }
    return url
  }

  /// Why a hop must not be fetched, or nil when it may be.
  func refusal(scheme: String, host: String, addresses: [AddressCheck.Address]) -> String? {
    if allowPrivateNetworks { return scheme == "https" || scheme == "http" ? nil : "must be an http(s) URL" }
    guard scheme == "https" else { return "must be https (plain http is allowed only with media.allowPrivateNetworks)" }
    let name = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]."))
    if name == "localhost" || name.hasSuffix(".localhost") || name == "metadata.google.internal" {
      return "points at a local or metadata host, which is refused (media.allowPrivateNetworks)"
    }
    if let blocked = addresses.first(where: { !$0.isPublic }) {
      return "resolves to a non-public address (\(blocked.text)), which is refused (media.allowPrivateNetworks)"
    }
    return nil
  }
}

/// IP address classification for the SSRF guard.
public enum AddressCheck {
  public struct Address: Sendable, Equatable {
    public var bytes: [UInt8]
    public var text: String

    /// False for loopback, private, link-local (cloud metadata), CGNAT, multicast, unspecified and reserved ranges.
    public var isPublic: Bool {
      if bytes.count == 4 { return Self.isPublicV4(bytes) }
      guard bytes.count == 16 else { return false }
      // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged as IPv4.
      if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
        return Self.isPublicV4(Array(bytes[12..<16]))
      }
      if bytes[0..<15].allSatisfy({ $0 == 0 }) { return false }  // :: and ::1
      if bytes[0] & 0xFE == 0xFC { return false }  // fc00::/7 unique local (incl. fd00:ec2::254 metadata)
      if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return false }  // fe80::/10 link-local
      if bytes[0] == 0xFF { return false }  // multicast
      if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return false }  // documentation
      if bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B { return false }  // NAT64 of v4
      return true
    }

    static func isPublicV4(_ b: [UInt8]) -> Bool {
      switch (b[0], b[1]) {
      case (0, _), (10, _), (127, _): return false
      case (100, 64...127): return false  // CGNAT
      case (169, 254): return false  // link-local, cloud metadata
      case (172, 16...31): return false
      case (192, 168): return false
      case (192, 0) where b[2] == 0 || b[2] == 2: return false
      case (198, 18...19): return false  // benchmarking
      case (198, 51) where b[2] == 100: return false
      case (203, 0) where b[2] == 113: return false
      case (224...255, _): return false  // multicast, reserved, broadcast
      default: return true
      }
    }
  }

  /// The address when `host` is a literal IPv4 or IPv6 address.
  public static func literal(_ host: String) -> Address? {
    let trimmed = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    var v4 = in_addr()
    if inet_pton(AF_INET, trimmed, &v4) == 1 {
      return Address(bytes: withUnsafeBytes(of: &v4) { Array($0) }, text: trimmed)
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, trimmed, &v6) == 1 {
      return Address(bytes: withUnsafeBytes(of: &v6) { Array($0) }, text: trimmed)
    }
    return nil
  }

  /// Every address `host` resolves to (blocking `getaddrinfo`; call off the cooperative pool).
  public static func resolve(_ host: String) -> [Address] {
    if let literal = literal(host) { return [literal] }
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var result: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
    defer { freeaddrinfo(first) }
    var addresses: [Address] = []
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let info = cursor {
      if info.pointee.ai_family == AF_INET, let raw = info.pointee.ai_addr {
        var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        let bytes = withUnsafeBytes(of: &address) { Array($0) }
        addresses.append(Address(bytes: bytes, text: bytes.map(String.init).joined(separator: ".")))
      } else if info.pointee.ai_family == AF_INET6, let raw = info.pointee.ai_addr {
        var address = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
        let bytes = withUnsafeBytes(of: &address) { Array($0) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
        addresses.append(Address(bytes: bytes, text: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
      }
      cursor = info.pointee.ai_next
    }
    return addresses
  }
}

/// A regular file on this machine and its size when it was checked.
public struct LocalFile: Sendable, Equatable {
  public var path: String
  public var size: Int64
}

/// Media downloaded to a temporary file; remove it when done.
public struct FetchedMedia: Sendable {
  public var path: String
  public var byteCount: Int64
  public var contentType: String?

  public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Downloads media the sidecar uploads itself, to disk in chunks (memory does not grow with size), checking the
/// SSRF policy on every redirect hop and retrying through the resilience core.
public struct MediaFetcher: Sendable {
  public let http: PlatformHTTP
  public let policy: MediaPolicy
  public let maxBytes: Int64
  public let directory: String

  public init(http: PlatformHTTP, policy: MediaPolicy, maxBytes: Int64 = 256 << 30, directory: String = NSTemporaryDirectory()) {
    self.http = http
    self.policy = policy
    self.maxBytes = maxBytes
    self.directory = directory
  }

  public func fetch(_ url: URL, field: String, context: CallContext) async throws(SidecarError) -> FetchedMedia {
    var current = url
    for _ in 0..<6 {
      try await check(current, field: field, context: context)
      let path = (directory as NSString).appendingPathComponent("social-sidecar-media-\(UUID().uuidString)")
      let hop = current
      // Media hosts are third parties: their failures get their own breaker, never the platform's.
      let (response, count) = try await http.core.run(
        platform: "\(http.platform.rawValue)-media", step: .idempotent, context: context
      ) { () async throws -> (HTTPResponse, Int64) in
        do {
          let (response, count) = try await http.transport.download(
            HTTPRequest(url: hop, timeout: http.timeout, connectTimeout: http.connectTimeout), to: path, maxBytes: maxBytes)
          if response.status >= 500 || response.status == 429 || response.status == 408 {
            try? FileManager.default.removeItem(atPath: path)
            throw PlatformFailure(.transient, message: "media host answered HTTP \(response.status)", httpStatus: response.status)
          }
          return (response, count)
        } catch let error as TransportError {
          if error.kind == .cancelled { throw CancellationError() }
          if error.kind == .tooLarge {
            throw PlatformFailure(.permanent, message: "`\(field)` is larger than \(maxBytes) bytes")
          }
          throw PlatformFailure.transport(error)
        }
      }
      if (300..<400).contains(response.status), let location = response.headers["Location"],
        let next = URL(string: location, relativeTo: hop)?.absoluteURL
      {
        try? FileManager.default.removeItem(atPath: path)
        current = next
        continue
      }
      guard (200..<300).contains(response.status) else {
        try? FileManager.default.removeItem(atPath: path)
        throw SidecarError(
          kind: .permanent, message: "could not fetch `\(field)`: the media host answered HTTP \(response.status)",
          platform: http.platform.rawValue, attempts: context.attempts,
          failure: PlatformFailure(.permanent, message: "media fetch failed", httpStatus: response.status))
      }
      return FetchedMedia(path: path, byteCount: count, contentType: response.headers["Content-Type"])
    }
    throw SidecarError(
      kind: .permanent, message: "could not fetch `\(field)`: more than 5 redirects", platform: http.platform.rawValue,
      attempts: context.attempts)
  }

  private func check(_ url: URL, field: String, context: CallContext) async throws(SidecarError) {
    guard let host = url.host, let scheme = url.scheme?.lowercased() else {
      throw SidecarError(kind: .permanent, message: "`\(field)` redirected to an invalid URL", platform: http.platform.rawValue)
    }
    let addresses = policy.allowPrivateNetworks ? [] : await Self.resolveOffPool(host)
    if !policy.allowPrivateNetworks && addresses.isEmpty && AddressCheck.literal(host) == nil {
      throw SidecarError(
        kind: .permanent, message: "could not fetch `\(field)`: its host does not resolve", platform: http.platform.rawValue,
        attempts: context.attempts)
    }
    if let reason = policy.refusal(scheme: scheme, host: host, addresses: addresses) {
      let hop = url == url.absoluteURL ? Redaction.url(url) : ""
      throw SidecarError(
        kind: .permanent, message: "refused to fetch `\(field)` (\(hop)): it \(reason)", platform: http.platform.rawValue,
        attempts: context.attempts)
    }
  }

  private static func resolveOffPool(_ host: String) async -> [AddressCheck.Address] {
    await withCheckedContinuation { continuation in
      DispatchQueue.global().async { continuation.resume(returning: AddressCheck.resolve(host)) }
    }
  }
}

/// Media the sidecar uploads itself: fetched from a URL (SSRF-guarded) or read from a local file.
public enum MediaSource: Sendable, Equatable {
  case url(URL)
  case file(LocalFile)

  /// A `…Url` / `…Path` pair of params as one source; nil when neither is given, refused when both are.
  public static func from(
    _ params: Params, url urlKey: String, path pathKey: String, media: MediaPolicy
  ) throws(InvalidParams) -> MediaSource? {
    switch (try params.string(urlKey), try params.string(pathKey)) {
    case (_?, _?):
      throw InvalidParams("give either `\(urlKey)` or `\(pathKey)`, not both", field: params.name(pathKey))
    case (let url?, nil):
      return .url(try media.sidecarFetchedURL(url, field: params.name(urlKey)))
    case (nil, let path?):
      return .file(try media.localFile(path, field: params.name(pathKey)))
    case (nil, nil):
      return nil
    }
  }
}

/// Media on disk, ready to stream from: a download (deleted by ``remove()``) or a local file (left alone).
public struct MediaOnDisk: Sendable {
  public var file: LocalFile
  /// The download's `Content-Type`; nil for a local file.
  public var contentType: String?
  let download: FetchedMedia?

  public func remove() { download?.remove() }
}

extension MediaFetcher {
  /// The source on disk: a URL is downloaded (to a temporary file), a local file is used where it is.
  public func onDisk(_ source: MediaSource, field: String, context: CallContext) async throws(SidecarError)
    -> MediaOnDisk
  {
    switch source {
    case .file(let file):
      return MediaOnDisk(file: file, contentType: nil, download: nil)
    case .url(let url):
      let media = try await fetch(url, field: field, context: context)
      return MediaOnDisk(
        file: LocalFile(path: media.path, size: media.byteCount), contentType: media.contentType, download: media)
    }
  }
}
