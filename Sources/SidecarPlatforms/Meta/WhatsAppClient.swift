#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// A WhatsApp message as checked up front (platform-apis.md §4.3).
struct WhatsAppMessage: Sendable, Equatable {
  /// E.164 digits without `+`, as the Cloud API takes them.
  var to: String
  /// `text`, `image` or `template`.
  var type: String
  /// The object sent under `type`.
  var content: JSONValue

  static let known: Set<String> = ["to", "text", "image", "template"]
  static let maxText = 4_096
  static let maxCaption = 1_024

  init(_ params: Params, media: MediaPolicy) throws(InvalidParams) {
    try params.rejectUnknown(Self.known, context: "whatsapp/send")
    let raw = try params.requiredString("to")
    let digits = raw.hasPrefix("+") ? String(raw.dropFirst()) : raw
    guard (8...15).contains(digits.count),
      digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
      !digits.hasPrefix("0")
    else {
      throw InvalidParams(
        "`to` must be a phone number in E.164 form: an optional + then 8 to 15 digits with the country code, "
          + "no spaces or dashes (e.g. +15551234567), got \(raw)", field: "to")
    }
    to = digits

    let given = ["text", "image", "template"].filter { params.has($0) }
    guard given.count == 1 else {
      throw InvalidParams(
        given.isEmpty
          ? "a WhatsApp message needs one of `text`, `image` or `template`"
          : "a WhatsApp message takes one of `text`, `image` or `template`, not \(given.joined(separator: " and "))")
    }
    type = given[0]
    switch type {
    case "text":
      content = ["body": .string(try params.requiredString("text", maxLength: Self.maxText))]
    case "image":
      let image = try params.object("image")!
      try image.rejectUnknown(["url", "caption"], context: "`image`")
      let url = try media.platformFetchedURL(try image.requiredString("url"), field: image.name("url"))
      var members: [String: JSONValue] = ["link": .string(url.absoluteString)]
      if let caption = try image.string("caption", maxLength: Self.maxCaption), !caption.isEmpty {
        members["caption"] = .string(caption)
      }
      content = .object(members)
    default:
      let template = try params.object("template")!
      try template.rejectUnknown(["name", "language", "components"], context: "`template`")
      var members: [String: JSONValue] = [
        "name": .string(try template.requiredString("name")),
        "language": ["code": .string(try template.requiredString("language"))],
      ]
      if let components = template.values["components"], components != .null {
        guard let list = components.arrayValue, list.allSatisfy({ $0.objectValue != nil }) else {
          throw InvalidParams(
            "`template.components` must be an array of objects as the Cloud API defines them "
              + "(e.g. {\"type\": \"body\", \"parameters\": [...]})", field: "template.components")
        }
        members["components"] = components
      }
      content = .object(members)
    }
  }

  var body: JSONValue {
    [
      "messaging_product": "whatsapp", "recipient_type": "individual", "to": .string(to), "type": .string(type),
      type: content,
    ]
  }
}

/// WhatsApp Business Cloud API messages from one business phone number (platform-apis.md §4).
///
/// A send is a `.publish` step with no dedupe key on Meta's side: a timeout after the request left ends with
/// `outcome_unknown` (delivery shows up in the status webhooks). Sends to one recipient are paced 6 s apart (Meta's
/// pair rate) on the gate `whatsapp:pair:<phone-number-id>:<to>`.
public final class WhatsAppClient: PlatformClient {
  public let platform = Platform.whatsapp
  let graph: GraphAPI
  let media: MediaPolicy
  /// Meta's pair rate: about one message per 6 s to the same recipient.
  static let pairInterval: Duration = .seconds(6)

  public init(environment: PlatformEnvironment) {
    graph = GraphAPI(environment: environment, platform: .whatsapp)
    media = environment.media
  }

  public func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    let message = try WhatsAppMessage(params, media: media)
    return PreparedOperation { [self] context throws(SidecarError) in
      try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
        try await send(message, credential: credential, context: context.call)
      }
    }
  }

  func send(
    _ message: WhatsAppMessage, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> PostResult {
    let phone = credential.accountId
    let pair = RateLimitKey("whatsapp:pair:\(phone):\(message.to)")
    graph.gates.pace(pair, minInterval: Self.pairInterval)
    let json: JSONValue
    do {
      json = try await graph.send(
        GraphCall("POST", GraphAPI.path(phone, "messages"), body: .json(message.body)), token: graph.token(credential),
        accountId: phone, step: .publish, gates: [pair], context: context)
    } catch  where error.kind == .outcomeUnknown {
      throw error.appending(
        "WhatsApp has no way to look a message up: the status webhooks show whether it was delivered.")
    }
    guard let id = json["messages"]?.arrayValue?.first?["id"]?.stringValue, !id.isEmpty else {
      throw SidecarError(
        kind: .outcomeUnknown, message: "WhatsApp accepted the message but its answer carried no message id.",
        platform: platform.rawValue, attempts: context.attempts)
    }
    return PostResult(postId: id, postUrl: nil, status: .accepted)
  }

  public func validate(context: OperationContext) async throws(SidecarError) -> ValidationResult {
    let phone = try await context.credentials.credential(context.key).accountId
    do {
      return try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
        let number = try await graph.send(
          .get(
            GraphAPI.path(phone),
            fields: "display_phone_number,verified_name,quality_rating,code_verification_status,platform_type,"
              + "throughput," + messagingLimitField),
          token: graph.token(credential), accountId: phone, context: context.call)
        let info = try await graph.inspect(credential, context: context.call)
        var problems: [String] = []
        if number["quality_rating"]?.stringValue == "RED" {
          problems.append("The number's quality rating is RED: Meta may lower its messaging limit or restrict it.")
        }
        if let platformType = number["platform_type"]?.stringValue, platformType != "CLOUD_API" {
          problems.append("The number is registered on \(platformType), not the Cloud API.")
        }
        if info == nil { problems.append("The token's permissions could not be inspected (debug_token refused).") }
        let missing =
          info.map { $0.scopes.contains("whatsapp_business_messaging") ? [] : ["whatsapp_business_messaging"] } ?? []
        return ValidationResult(
          valid: missing.isEmpty && (info?.isValid ?? true)
            && number["platform_type"].map { $0 == "CLOUD_API" } ?? true,
          accountId: phone,
          accountName: number["verified_name"]?.stringValue ?? number["display_phone_number"]?.stringValue,
          scopes: info?.scopes, missing: missing.isEmpty ? nil : missing, expiresAt: info?.expiresAt,
          problems: problems.isEmpty ? nil : problems)
      }
    } catch  where error.kind == .authFailed || error.kind == .permanent {
      return ValidationResult(valid: false, accountId: phone, problems: [error.message])
    }
  }

  /// The phone number's messaging-limit field as the configured Graph version names it: Meta replaced
  /// `messaging_limit_tier` with `whatsapp_business_manager_messaging_limit` in v24.0.
  var messagingLimitField: String {
    let major = Int(graph.version.dropFirst().prefix { $0 != "." }) ?? 0
    return major >= 24 ? "whatsapp_business_manager_messaging_limit" : "messaging_limit_tier"
  }

  public func refresh(context: OperationContext) async throws(SidecarError) -> RefreshResult {
    throw SidecarError(
      kind: .unsupported,
      message: "WhatsApp Cloud API tokens are system-user tokens with no refresh flow; if this one expired or was "
        + "revoked, issue a new one in Meta Business Manager and reconnect the number.",
      platform: platform.rawValue)
  }
}
