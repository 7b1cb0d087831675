#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarResilience

extension GraphAPI {
  /// Asks `check` until it answers, waiting between asks with the core's backoff (base delay doubling up to the max
  /// delay) on the core's clock; each ask goes through the core as an idempotent request.
  ///
  /// Meta processes media asynchronously (Instagram containers, Facebook video uploads): `check` answers nil while
  /// the platform is still working and throws when the platform reports a failure.
  ///
  /// - Parameters:
  ///   - what: for the message when the wait runs out ("the media").
  ///   - limit: the longest the whole wait may take (Meta suggests at most 5 minutes for containers).
  @discardableResult
  func poll<T: Sendable>(
    _ what: String, limit: Duration = .seconds(300), context: CallContext,
    _ check: () async throws(SidecarError) -> T?
  ) async throws(SidecarError) -> T {
    var schedule = http.core.retry
    schedule.maxAttempts = .max
    let poller = Poller(schedule, limit: limit, clock: clock)
    switch try await poller.run(
      waiting: "Waiting for \(name) to finish processing \(what)", platform: platform, context: context, check)
    {
    case .ready(let value):
      return value
    case .exhausted(let checks):
      throw SidecarError(
        kind: .transientExhausted,
        message: "\(name) was still processing \(what) after \(checks) checks; nothing was published. Try again later.",
        platform: platform.rawValue, attempts: context.attempts)
    case .pastDeadline(_, let wait):
      throw SidecarError(
        kind: .deadlineExceeded,
        message: "The call's deadline passed while \(name) was still processing \(what); nothing was published.",
        platform: platform.rawValue, attempts: context.attempts, retryAfter: wait)
    }
  }

  /// What `debug_token` says about the credential's token (docs/platforms/meta.md), or nil when the token could not
  /// be inspected for a reason other than the token itself (the inspection is then skipped, not failed).
  ///
  /// With the app's id and secret in the credential the app token inspects it, which always works; without them the
  /// token inspects itself.
  func inspect(_ credential: Credential, context: CallContext) async throws(SidecarError) -> TokenInfo? {
    let inspector: GraphToken
    if let id = credential.clientId, let secret = credential.clientSecret, !id.isEmpty, !secret.isEmpty {
      inspector = token("\(id)|\(secret)", like: credential)
    } else {
      inspector = token(credential)
    }
    let json: JSONValue
    do {
      json = try await send(
        .get("/debug_token", query: [("input_token", credential.accessToken)]), token: inspector,
        accountId: credential.accountId, context: context)
    } catch let error where error.kind == .permanent {
      return nil
    }
    return TokenInfo(json["data"] ?? .null)
  }
}

/// The skeleton of the three Meta validations (Facebook, Instagram, WhatsApp).
enum MetaValidation {
  /// Runs `checks` with the credential; a token Meta refuses (`auth_failed`) or a check it refuses (`permanent`)
  /// makes the credential invalid with Meta's reason instead of failing the call.
  ///
  /// - Parameter refresher: how the credential's token is refreshed, if it can be (Instagram Login's).
  static func run(
    _ context: OperationContext,
    refresher: (Credential) -> (@Sendable (Credential) async throws(SidecarError) -> Credential)? = { _ in nil },
    _ checks: (Credential) async throws(SidecarError) -> ValidationResult
  ) async throws(SidecarError) -> ValidationResult {
    let credential = try await context.credentials.credential(context.key)
    do {
      return try await context.withCredential(refresher: refresher(credential), checks)
    } catch let error where error.kind == .authFailed || error.kind == .permanent {
      return ValidationResult(valid: false, accountId: credential.accountId, problems: [error.message])
    }
  }
}

/// The parts of a `debug_token` answer validation uses.
struct TokenInfo: Sendable, Equatable {
  var isValid: Bool
  var type: String?
  var scopes: [String]
  /// Scope → the object ids it is limited to (empty when it is not limited).
  var targets: [String: [String]]
  /// Nil when the token never expires (`expires_at: 0`).
  var expiresAt: Date?
  var errorMessage: String?

  init(_ data: JSONValue) {
    isValid = data["is_valid"]?.boolValue ?? false
    type = data["type"]?.stringValue
    scopes = (data["scopes"]?.arrayValue ?? []).compactMap(\.stringValue)
    var targets: [String: [String]] = [:]
    for entry in data["granular_scopes"]?.arrayValue ?? [] {
      if let scope = entry["scope"]?.stringValue {
        targets[scope] = (entry["target_ids"]?.arrayValue ?? []).compactMap(\.graphID)
      }
    }
    self.targets = targets
    let expires = data["expires_at"]?.intValue ?? 0
    expiresAt = expires > 0 ? Date(timeIntervalSince1970: TimeInterval(expires)) : nil
    errorMessage = data["error"]?["message"]?.stringValue
  }

  /// The required scopes the token lacks, or holds only for other objects than `objectId`.
  func missing(_ required: [String], for objectId: String) -> [String] {
    required.filter { scope in
      guard scopes.contains(scope) else { return true }
      guard let ids = targets[scope], !ids.isEmpty else { return false }
      return !ids.contains(objectId)
    }
  }
}

/// Meta's timestamps: `2025-11-25T12:00:00+0000` (also `Z` and `+00:00`).
enum GraphTime {
  static func parse(_ text: String) -> Date? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 19, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
      bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":")
    else { return nil }
    func number(_ range: Range<Int>) -> Int? {
      var value = 0
      for index in range {
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
        value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
      }
      return value
    }
    guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
      let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day)
    else { return nil }
    var offset = 0
    var rest = bytes[19...].drop { $0 == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
      let digits = rest.dropFirst().filter { $0 != UInt8(ascii: ":") }
      guard digits.count == 4, let zone = Int(String(decoding: digits, as: UTF8.self)) else { return nil }
      offset = (zone / 100 * 3600 + zone % 100 * 60) * (sign == UInt8(ascii: "+") ? 1 : -1)
      rest = []
    }
    guard rest.isEmpty || rest == [UInt8(ascii: "Z")] else { return nil }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let days = era * 146_097 + yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear - 719_468
    return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3_600 + minute * 60 + second - offset))
  }

  /// The clock skew allowed between us and Meta, in seconds.
  static let skew: TimeInterval = 300

  /// True when `text` is at or after `start`, allowing for clock skew between us and Meta.
  static func isRecent(_ text: String?, since start: Date) -> Bool {
    guard let text, let date = parse(text) else { return false }
    return date >= start.addingTimeInterval(-skew)
  }
}

extension GraphAPI {
  /// The newest item of an edge listed newest first (a Page's feed, an Instagram account's media) made since `since`
  /// that `match` accepts. Read page by page (`after` cursors), until an item made before `since` less
  /// ``GraphTime/skew`` shows the rest are older, or the edge ends: nil then. Throws when `window` items were read and
  /// all were newer, since the post may be among older ones: its absence is not shown.
  func findRecent<T>(
    _ path: String, fields: String, madeAt: String, since: Date, window: Int, pageSize: Int, token: GraphToken,
    accountId: String, context: CallContext, match: (JSONValue) -> T?
  ) async throws(SidecarError) -> T? {
    let oldest = since.addingTimeInterval(-GraphTime.skew)
    var after: String?
    var read = 0
    while read < window {
      let json = try await send(
        .get(path, fields: fields, query: [("limit", String(pageSize))] + (after.map { [("after", $0)] } ?? [])),
        token: token, accountId: accountId, context: context)
      let page = json["data"]?.arrayValue ?? []
      for item in page {
        guard let made = item[madeAt]?.stringValue.flatMap(GraphTime.parse) else { continue }
        if made < oldest { return nil }
        if let found = match(item) { return found }
      }
      read += page.count
      after = json["paging"]?["cursors"]?["after"]?.stringValue
      guard !page.isEmpty, json["paging"]?["next"] != nil, after != nil else { return nil }
    }
    throw SidecarError(
      kind: .outcomeUnknown,
      message: "the \(read) newest were all made after the publish started, so older ones were not read",
      platform: platform.rawValue, attempts: context.attempts)
  }
}

extension SidecarError {
  /// Adds what reconciliation found (or could not find) to an unknown outcome.
  func appending(_ sentence: String) -> SidecarError {
    var copy = self
    copy.message += " " + sentence
    return copy
  }
}
