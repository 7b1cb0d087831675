#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Dispatch
import SidecarHTTP
import SidecarJSON
import SidecarResilience

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Rules for media URLs, kept in one place so every platform applies them the same way.
///
/// Media the sidecar fetches itself (YouTube videos, LinkedIn images) could otherwise be pointed at loopback,
/// private networks or a cloud metadata endpoint (SSRF): such URLs must be https and resolve to public addresses,
/// on every redirect hop, unless `media.allowPrivateNetworks` (tests). Media handed to Meta to fetch is checked for
/// https only, since Meta's servers fetch it.
///
/// Local files (`videoPath`) are another door an end user's content could open (an agent writing a post chooses the
/// path): only regular files under `media.localRoots` are read, see ``localFile(_:field:)``.
public struct MediaPolicy: Sendable, Equatable {
  public var allowPrivateNetworks: Bool
  /// Real paths (symlinks resolved) of the directories local media may come from; empty refuses every local path.
  public var localRoots: [String]
  /// `media.maxBytes`: replaces each media kind's documented limit as the download cap when set.
  public var maxBytes: Int64?

  public init(allowPrivateNetworks: Bool, localRoots: [String] = [], maxBytes: Int64? = nil) {
    self.allowPrivateNetworks = allowPrivateNetworks
    self.localRoots = localRoots
    self.maxBytes = maxBytes
  }

  /// The download cap for media whose platform documents `limit` bytes as its largest.
  public func cap(documented limit: Int64) -> Int64 { maxBytes ?? limit }

  /// A local file the sidecar may upload: checked by ``LocalFile/examine(_:field:)`` and under one of ``localRoots``.
  ///
  /// The path is resolved to its real path once (so a symlink cannot point the upload elsewhere later), then opened
  /// without following links and without blocking (a FIFO would otherwise hold a thread forever), and the opened
  /// descriptor must be a regular file; its size comes from that descriptor.
  public func localFile(_ path: String, field: String) throws(InvalidParams) -> LocalFile {
    guard path.hasPrefix("/") else {
      throw InvalidParams("`\(field)` must be an absolute path, got \(path)", field: field)
    }
    guard !path.utf8.contains(0) else { throw InvalidParams("`\(field)` must not contain a NUL byte", field: field) }
    guard !path.split(separator: "/").contains("..") else {
      throw InvalidParams("`\(field)` must not contain `..` segments, got \(path)", field: field)
    }
    guard !localRoots.isEmpty else {
      throw InvalidParams(
        "`\(field)` is refused: local files are read only from the directories listed in the `media.localRoots` "
          + "setting, which is empty; list the directory in `initialize` config, or give a URL instead", field: field)
    }
    guard let real = LocalFile.realPath(path) else {
      throw InvalidParams("`\(field)` names no file: \(path)", field: field)
    }
    guard localRoots.contains(where: { real.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else {
      throw InvalidParams(
        "`\(field)` is outside the directories listed in `media.localRoots`: \(path)", field: field)
    }
    let file = try LocalFile.examine(real, field: field)
    guard file.size > 0 else { throw InvalidParams("`\(field)` is an empty file: \(path)", field: field) }
    return file
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
    let name = host.lowercased().trimmingCharacters(in: "[].")
    if name == "localhost" || name.hasSuffix(".localhost") || name == "metadata.google.internal" {
      return "points at a local or metadata host, which is refused (media.allowPrivateNetworks)"
    }
    if let blocked = addresses.first(where: { !$0.isPublic }) {
      return "resolves to a non-public address (\(blocked.text)), which is refused (media.allowPrivateNetworks)"
    }
    return nil
  }
}

/// A regular file on this machine, by its real path, and its size when it was checked.
public struct LocalFile: Sendable, Equatable {
  public var path: String
  public var size: Int64

  /// Opens `path` with `O_NOFOLLOW | O_NONBLOCK` (neither a link swapped in nor a FIFO can hold the caller) and sizes
  /// the opened descriptor, which must be a regular file. Every call is non-blocking, so it may run on the
  /// cooperative pool.
  public static func examine(_ path: String, field: String) throws(InvalidParams) -> LocalFile {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else {
      let reason =
        switch errno {
        case ENOENT, ENOTDIR: "names no file"
        case ELOOP: "is a symbolic link (it changed while it was being checked)"
        case EACCES, EPERM: "is not readable by the sidecar"
        default: "cannot be opened (\(String(cString: strerror(errno))))"
        }
      throw InvalidParams("`\(field)` \(reason): \(path)", field: field)
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
      throw InvalidParams(
        "`\(field)` is not a regular file (a device, FIFO or directory is refused): \(path)", field: field)
    }
    return LocalFile(path: path, size: Int64(info.st_size))
  }

  /// `path` with every symlink, `.` and `..` resolved, or nil when it names nothing.
  static func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
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
      // Forms that carry an IPv4 address are judged as that address: IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96
      // (which holds :: and ::1 too), IPv4-translated ::ffff:0:0:0/96 and 6to4 2002::/16.
      let zeroPrefix = bytes[0..<8].allSatisfy { $0 == 0 }
      if zeroPrefix && bytes[8] == 0 && bytes[9] == 0 && (bytes[10..<12] == [0xFF, 0xFF] || bytes[10..<12] == [0, 0]) {
        return Self.isPublicV4(Array(bytes[12..<16]))
      }
      if zeroPrefix && bytes[8] == 0xFF && bytes[9] == 0xFF && bytes[10] == 0 && bytes[11] == 0 {
        return Self.isPublicV4(Array(bytes[12..<16]))
      }
      if bytes[0] == 0x20 && bytes[1] == 0x02 { return Self.isPublicV4(Array(bytes[2..<6])) }
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
    let trimmed = host.trimmingCharacters(in: "[]")
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
        addresses.append(
          Address(
            bytes: bytes, text: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
      }
      cursor = info.pointee.ai_next
    }
    return addresses
  }
}

/// Media downloaded to a temporary file in a private directory; remove both when done.
public struct FetchedMedia: Sendable {
  /// The private directory holding the file (``MediaFetcher/scratchFile`` inside it).
  let directory: String
  public var byteCount: Int64
  public var contentType: String?

  public var path: String { directory + MediaFetcher.scratchFile }

  /// Removes the file and the private directory it was downloaded into.
  public func remove() { MediaFetcher.removeScratch(directory) }
}

/// Downloads media the sidecar uploads itself, to disk in chunks (memory does not grow with size), checking the
/// SSRF policy on every redirect hop, connecting only to the addresses it checked, and retrying through the resilience
/// core within the call's deadline.
///
/// Each download goes into its own directory (mode 0700, file 0600) under `directory`, removed with it, and stops at
/// the cap the caller names (the platform's documented limit for that kind of media, or `media.maxBytes`).
public struct MediaFetcher: Sendable {
  public let http: PlatformHTTP
  public let policy: MediaPolicy
  public let directory: String
  /// Every address a host name resolves to (blocking; run off the cooperative pool). Tests inject answers.
  let resolve: @Sendable (String) -> [AddressCheck.Address]

  public init(http: PlatformHTTP, policy: MediaPolicy, directory: String = FileManager.default.temporaryDirectory.path)
  {
    self.init(http: http, policy: policy, directory: directory, resolve: AddressCheck.resolve)
  }

  init(
    http: PlatformHTTP, policy: MediaPolicy, directory: String,
    resolve: @escaping @Sendable (String) -> [AddressCheck.Address]
  ) {
    self.http = http
    self.policy = policy
    self.directory = directory
    self.resolve = resolve
  }

  /// - Parameters:
  ///   - limit: the largest file of this kind the platform documents; ``MediaPolicy/maxBytes`` replaces it when set.
  public func fetch(_ url: URL, field: String, limit: Int64, context: CallContext) async throws(SidecarError)
    -> FetchedMedia
  {
    let scratch = try makeScratch(field: field)
    // A download may fill at most half the free space left, so that an endless body cannot fill the disk the journal
    // and other uploads need.
    let room = Self.halfTheFreeSpace(at: scratch)
    let cap = Cap(
      bytes: min(policy.cap(documented: limit), room),
      reason: room < policy.cap(documented: limit)
        ? "half the free disk space in \(directory)" : "the most the sidecar downloads for it")
    do throws(SidecarError) {
      return try await download(url, field: field, cap: cap, into: scratch, context: context)
    } catch {
      Self.removeScratch(scratch)
      throw error
    }
  }

  /// A download's size limit and why it is that.
  struct Cap {
    var bytes: Int64
    var reason: String
  }

  private func download(_ url: URL, field: String, cap: Cap, into scratch: String, context: CallContext)
    async throws(SidecarError) -> FetchedMedia
  {
    let path = scratch + Self.scratchFile
    var current = url
    for _ in 0..<6 {
      let pinned = try await check(current, field: field, context: context)
      let request = HTTPRequest(url: current, timeout: http.timeout, connectTimeout: http.connectTimeout)
      let (response, count) = try await attempt(
        request, pinned: pinned, to: path, cap: cap, field: field, context: context)
      if (300..<400).contains(response.status), let location = response.headers["Location"],
        let next = URL(string: location, relativeTo: current)?.absoluteURL
      {
        current = next
        continue
      }
      guard (200..<300).contains(response.status) else {
        throw SidecarError(
          kind: .permanent, message: "could not fetch `\(field)`: the media host answered HTTP \(response.status)",
          platform: http.platform.rawValue, attempts: context.attempts,
          failure: PlatformFailure(.permanent, message: "media fetch failed", httpStatus: response.status))
      }
      return FetchedMedia(directory: scratch, byteCount: count, contentType: response.headers["Content-Type"])
    }
    throw SidecarError(
      kind: .permanent, message: "could not fetch `\(field)`: more than 5 redirects", platform: http.platform.rawValue,
      attempts: context.attempts)
  }

  /// One hop, retried through the core. A media host is a third party the post chose: its failures are retried but
  /// open no breaker, so that one customer's bad URL cannot refuse another customer's upload or the platform's calls.
  private func attempt(
    _ request: HTTPRequest, pinned: [AddressCheck.Address], to path: String, cap: Cap, field: String,
    context: CallContext
  ) async throws(SidecarError) -> (HTTPResponse, Int64) {
    let clock = http.core.clock
    let transport = http.transport
    return try await http.core.run(
      platform: "\(http.platform.rawValue)-media", step: .idempotent, breaker: false, context: context
    ) { () async throws -> (HTTPResponse, Int64) in
      var hop = request
      hop.pinnedAddresses = pinned.map(\.text)
      if let deadline = context.deadline {
        let remaining = clock.now().duration(to: deadline)
        if remaining <= .zero { throw CancellationError() }
        hop.timeout = min(hop.timeout ?? remaining, remaining)
      }
      do {
        let (response, count) = try await transport.download(hop, to: path, maxBytes: cap.bytes)
        if response.status >= 500 || response.status == 429 || response.status == 408 {
          throw PlatformFailure(
            .transient, message: "media host answered HTTP \(response.status)", httpStatus: response.status)
        }
        return (response, count)
      } catch let error as TransportError {
        if error.kind == .cancelled { throw CancellationError() }
        if error.kind == .tooLarge {
          throw PlatformFailure(
            .permanent,
            message: "`\(field)` is larger than \(cap.bytes) bytes, \(cap.reason); the download was stopped and "
              + "removed")
        }
        throw PlatformFailure.transport(error)
      }
    }
  }

  /// A new directory only this process's user can enter, for one download.
  private func makeScratch(field: String) throws(SidecarError) -> String {
    var template = Array((directory.hasSuffix("/") ? directory : directory + "/").utf8CString.dropLast())
    template += Array("social-sidecar-media-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
      throw SidecarError(
        kind: .permanent,
        message: "cannot create a private directory for `\(field)` in \(directory): "
          + String(cString: strerror(errno)), platform: http.platform.rawValue)
    }
    return String(cString: made)
  }

  static func halfTheFreeSpace(at path: String) -> Int64 {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return .max }
    let (free, overflow) = Int64(clamping: info.f_bavail).multipliedReportingOverflow(
      by: Int64(clamping: info.f_frsize))
    return overflow ? .max : free / 2
  }

  /// The download's name inside its private directory.
  static let scratchFile = "/media"

  static func removeScratch(_ scratch: String) {
    unlink(scratch + scratchFile)
    rmdir(scratch)
  }

  /// Refuses a hop the policy forbids; returns the addresses it checked, which the transport must connect to (a name
  /// resolved again could answer differently: DNS rebinding). Empty when private networks are allowed.
  private func check(_ url: URL, field: String, context: CallContext) async throws(SidecarError) -> [AddressCheck
    .Address]
  {
    guard let host = url.host, let scheme = url.scheme?.lowercased() else {
      throw SidecarError(
        kind: .permanent, message: "`\(field)` redirected to an invalid URL", platform: http.platform.rawValue)
    }
    let addresses = policy.allowPrivateNetworks ? [] : await resolveOffPool(host)
    if !policy.allowPrivateNetworks && addresses.isEmpty && AddressCheck.literal(host) == nil {
      throw SidecarError(
        kind: .permanent, message: "could not fetch `\(field)`: its host does not resolve",
        platform: http.platform.rawValue,
        attempts: context.attempts)
    }
    if let reason = policy.refusal(scheme: scheme, host: host, addresses: addresses) {
      let hop = url == url.absoluteURL ? Redaction.url(url) : ""
      throw SidecarError(
        kind: .permanent, message: "refused to fetch `\(field)` (\(hop)): it \(reason)",
        platform: http.platform.rawValue,
        attempts: context.attempts)
    }
    return AddressCheck.literal(host) == nil ? addresses : []  // a literal address is connected to as it is
  }

  private func resolveOffPool(_ host: String) async -> [AddressCheck.Address] {
    let resolve = self.resolve
    return await withCheckedContinuation { continuation in
      DispatchQueue.global().async { continuation.resume(returning: resolve(host)) }
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
  /// A local file is examined again on its descriptor, since it may have changed since the params were checked.
  public func onDisk(_ source: MediaSource, field: String, limit: Int64, context: CallContext)
    async throws(SidecarError)
    -> MediaOnDisk
  {
    switch source {
    case .file(let checked):
      do throws(InvalidParams) {
        let file = try LocalFile.examine(checked.path, field: field)
        guard file.size > 0 else { throw InvalidParams("`\(field)` is empty now: \(file.path)", field: field) }
        return MediaOnDisk(file: file, contentType: nil, download: nil)
      } catch {
        throw SidecarError(kind: .permanent, message: error.reason, platform: http.platform.rawValue)
      }
    case .url(let url):
      let media = try await fetch(url, field: field, limit: limit, context: context)
      return MediaOnDisk(
        file: LocalFile(path: media.path, size: media.byteCount), contentType: media.contentType, download: media)
    }
  }
}
