#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarResilience

/// Meta's error body (docs/platforms/meta.md), shared by Facebook, Instagram and WhatsApp.
struct GraphError: Sendable, Equatable {
  var message: String
  var type: String?
  var code: Int
  var subcode: Int?
  var isTransient: Bool
  var userTitle: String?
  var userMessage: String?
  /// WhatsApp's `error_data.details`: the sentence that explains the code.
  var details: String?

  init(
    message: String, code: Int, subcode: Int? = nil, type: String? = nil, isTransient: Bool = false,
    userTitle: String? = nil, userMessage: String? = nil, details: String? = nil
  ) {
    self.message = message
    self.code = code
    self.subcode = subcode
    self.type = type
    self.isTransient = isTransient
    self.userTitle = userTitle
    self.userMessage = userMessage
    self.details = details
  }

  /// Parses `{"error": {...}}`; nil when the body is not a Graph error.
  init?(body: Data) {
    guard let json = try? JSONParser.parse(body), let error = json["error"], let code = error["code"]?.intValue else {
      return nil
    }
    self.init(
      message: error["message"]?.stringValue ?? "", code: code, subcode: error["error_subcode"]?.intValue,
      type: error["type"]?.stringValue, isTransient: error["is_transient"]?.boolValue ?? false,
      userTitle: error["error_user_title"]?.stringValue, userMessage: error["error_user_msg"]?.stringValue,
      details: error["error_data"]?["details"]?.stringValue)
  }

  /// The platform's own words: the message, with the user-facing explanation when Meta gives one.
  var text: String {
    let extra = [userTitle, userMessage ?? details].compactMap { $0 }.filter { !$0.isEmpty && $0 != message }
    guard !extra.isEmpty else { return message }
    return message + " (" + extra.joined(separator: ": ") + ")"
  }

  /// Permission names the message mentions (`(#200) Requires pages_manage_posts permission`).
  var permissionsNamed: [String] {
    let prefixes = ["pages_", "instagram_", "whatsapp_", "publish_", "business_management", "read_insights"]
    var found: [String] = []
    for word in (message + " " + (details ?? "")).split(whereSeparator: { !($0.isLetter || $0 == "_") }) {
      let name = String(word)
      if prefixes.contains(where: { name.hasPrefix($0) }) && !found.contains(name) { found.append(name) }
    }
    return found
  }
}

extension GraphAPI {
  /// Rate-limit codes and the scope they apply to (docs/platforms/meta.md, "Errors").
  private static func rateLimitScope(_ code: Int) -> PlatformFailure.RateLimitScope? {
    switch code {
    case 4, 341: .app
    case 17, 32, 613, 80000...80014, 130429, 131056, 133016: .account
    default: nil
    }
  }

  /// Codes and subcodes that say the account needs a person to act (log in, confirm identity): treated as auth.
  private static let userActionSubcodes: Set<Int> = [1_404_078, 4_854_002, 2_207_050]
  /// Subcodes Meta documents as temporary (FB service unavailable, IG server error, media download timeout).
  private static let transientSubcodes: Set<Int> = [
    1_363_047, 1_609_010, 2_207_001, 2_207_003, 2_207_008, 2_207_032,
  ]

  /// What a Graph error means for the caller, by `code` and `error_subcode` (docs/platforms/meta.md).
  static func failure(for error: GraphError, status: Int, platform: Platform) -> PlatformFailure {
    let name = platform.displayName
    let codeText = "code \(error.code)" + (error.subcode.map { ", subcode \($0)" } ?? "")
    func make(
      _ classification: PlatformFailure.Classification, _ message: String, retryAfter: Duration? = nil,
      reached: Bool = false
    ) -> PlatformFailure {
      PlatformFailure(
        classification, message: message, httpStatus: status, platformCode: .int(error.code),
        platformSubcode: error.subcode, platformMessage: error.message, retryAfter: retryAfter,
        requestMayHaveReachedPlatform: reached)
    }

    // Dead tokens: nothing the sidecar can refresh (page and system-user tokens never refresh; an expired
    // Instagram-Login token can no longer be refreshed either).
    if error.code == 190 || error.code == 102 || (error.code == 0 && platform == .whatsapp) {
      let why: String
      switch error.subcode {
      case 463: why = "it has expired"
      case 460: why = "the password was changed or Meta ended the session"
      case 467: why = "it is no longer valid (the user logged out)"
      case 458: why = "the user removed the app"
      case 459: why = "the user must log in on facebook.com and follow the instructions there"
      case 464: why = "the user has not confirmed their account"
      case 492: why = "the user no longer has a role on the Page"
      default: why = "it is invalid or was revoked"
      }
      return make(
        .auth(refreshable: false),
        "\(name) rejected the access token because \(why) (\(error.text)). Reconnect the \(name) account to issue a "
          + "new token.")
    }
    if let subcode = error.subcode, userActionSubcodes.contains(subcode) {
      return make(
        .auth(refreshable: false),
        "\(name) requires the account owner to act before posting (\(error.text)). Resolve it on \(name), then "
          + "reconnect the account if needed.")
    }

    switch error.code {
    case 9:
      return make(
        .quotaExhausted, "\(name)'s publishing limit for this account is reached (\(codeText)): \(error.text)")
    case 131056:
      return make(
        .rateLimited(scope: .account),
        "WhatsApp limits messages to the same recipient to about one every 6 seconds (\(codeText)): \(error.text)",
        retryAfter: .seconds(6))
    case 130429:
      return make(
        .rateLimited(scope: .account),
        "This WhatsApp number sent too many messages in a short time (\(codeText)): \(error.text)",
        retryAfter: .seconds(1))
    case 131048:
      return make(
        .permanent,
        "WhatsApp restricted this number's sending because too many of its messages were reported or blocked as spam "
          + "(\(codeText)); retrying cannot lift it: improve message quality and wait for the restriction to end: "
          + error.text)
    case 4 where error.subcode == 2_207_051:
      return make(
        .permanent, "Instagram restricted this account's activity as suspected spam (\(codeText)): \(error.text)")
    default:
      break
    }
    if let scope = rateLimitScope(error.code) {
      let who = scope == .app ? "this app" : "this \(name) account"
      return make(.rateLimited(scope: scope), "\(name) is rate limiting \(who) (\(codeText)): \(error.text)")
    }

    switch error.code {
    case 10, 200...299, 131005:
      let permissions = error.permissionsNamed
      let missing = permissions.isEmpty ? "" : " Missing permission: \(permissions.joined(separator: ", "))."
      return make(
        .permanent,
        "\(name) refused the request for lack of permission (\(codeText)): \(error.text).\(missing) Grant it by "
          + "reconnecting the account with the permission, or give the person the needed role.")
    case 368:
      return make(
        .permanent,
        "\(name) has temporarily blocked this account from this action for policy reasons (\(codeText)): \(error.text)")
    case 506:
      return make(
        .permanent,
        "\(name) refused the post as a duplicate of one this account published recently (\(codeText)): \(error.text)")
    case 131047:
      return make(
        .permanent,
        "WhatsApp delivers free-form messages only within 24 hours of the recipient's last message to this number; "
          + "send an approved template message (`template`) instead (\(codeText)): \(error.text)")
    case 131026:
      return make(
        .permanent,
        "WhatsApp cannot deliver to this recipient (not on WhatsApp, an old app version, or terms not accepted) "
          + "(\(codeText)): \(error.text)")
    case 131051, 131052, 131053:
      return make(.permanent, "WhatsApp could not use the media of this message (\(codeText)): \(error.text)")
    case 1, 131000:
      // "An unknown error occurred": Meta may have acted on the request.
      return make(.transient, "\(name) reported an unknown error (\(codeText)): \(error.text)", reached: true)
    case 2, 131016:
      // "Temporary issue": Meta does not say the request was not carried out, so a publish is reconciled, never
      // re-sent.
      return make(.transient, "\(name) is temporarily unavailable (\(codeText)): \(error.text)", reached: true)
    case 9007 where error.subcode == 2_207_027 || error.subcode == nil:
      return make(.transient, "Instagram has not finished processing the media (\(codeText)): \(error.text)")
    default:
      break
    }
    // A temporary error proves nothing about whether Meta acted: a publish is reconciled, never blindly re-sent.
    if let subcode = error.subcode, transientSubcodes.contains(subcode) {
      return make(.transient, "\(name) reported a temporary error (\(codeText)): \(error.text)", reached: true)
    }
    if error.isTransient || (status >= 500 && error.code != 3) {
      return make(.transient, "\(name) reported a temporary error (\(codeText)): \(error.text)", reached: true)
    }
    return make(.permanent, "\(name) refused the request (\(codeText)): \(error.text)")
  }
}
