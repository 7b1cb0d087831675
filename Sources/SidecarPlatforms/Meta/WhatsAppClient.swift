#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import SidecarResilience

/// A WhatsApp message as checked up front: the Cloud API's message object, built from our params.
struct WhatsAppMessage: Sendable, Equatable {
  /// E.164 digits without `+`, as the Cloud API takes them.
  var to: String
  /// The Cloud API's message `type`: one of ``kinds``.
  var type: String
  /// The object sent under `type`.
  var content: JSONValue
  /// The message this one replies to (`context.message_id`).
  var replyTo: String?
  /// Media from a local file: uploaded to the number's `/media` first, then sent by its id.
  var upload: WhatsAppUpload?

  /// The content params, each a message type of its own (`reaction` is sent as type `reaction`).
  static let kinds = [
    "text", "image", "video", "audio", "document", "sticker", "location", "contacts", "interactive", "reaction",
    "template",
  ]
  static let mediaKinds: Set<String> = ["image", "video", "audio", "document", "sticker"]
  static let known = Set(kinds + ["to", "replyTo", "previewUrl"])
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

    let given = Self.kinds.filter { params.has($0) }
    guard given.count == 1 else {
      let names = Self.kinds.map { "`\($0)`" }.joined(separator: ", ")
      throw InvalidParams(
        given.isEmpty
          ? "a WhatsApp message needs one of \(names)"
          : "a WhatsApp message takes one of \(names), not \(given.joined(separator: " and "))")
    }
    type = given[0]
    replyTo = try params.string("replyTo", maxLength: 256)
    if replyTo != nil && type == "reaction" {
      throw InvalidParams(
        "a reaction already names its message in `reaction.messageId`; `replyTo` cannot go with it", field: "replyTo")
    }
    if params.has("previewUrl") && type != "text" {
      throw InvalidParams("`previewUrl` applies to `text` messages only", field: "previewUrl")
    }
    switch type {
    case "text":
      var members: [String: JSONValue] = ["body": .string(try params.requiredString("text", maxLength: Self.maxText))]
      if let preview = try params.bool("previewUrl") { members["preview_url"] = .bool(preview) }
      content = .object(members)
    case _ where Self.mediaKinds.contains(type):
      let object = try params.object(type)!
      content = try Self.mediaObject(object, kind: type, media: media)
      if object.has("path") { upload = try WhatsAppUpload(object, kind: type, media: media) }
    case "location":
      let location = try params.object("location")!
      try location.rejectUnknown(["latitude", "longitude", "name", "address"], context: "`location`")
      var members: [String: JSONValue] = [
        "latitude": .double(try location.requiredNumber("latitude", in: -90...90)),
        "longitude": .double(try location.requiredNumber("longitude", in: -180...180)),
      ]
      if let name = try location.string("name", maxLength: 1_000) { members["name"] = .string(name) }
      if let address = try location.string("address", maxLength: 1_000) { members["address"] = .string(address) }
      content = .object(members)
    case "contacts":
      content = try Self.contacts(params)
    case "interactive":
      content = try WhatsAppInteractive.check(try params.object("interactive")!)
    case "reaction":
      let reaction = try params.object("reaction")!
      try reaction.rejectUnknown(["messageId", "emoji"], context: "`reaction`")
      // An empty emoji removes an earlier reaction, as the Cloud API defines it.
      guard let emoji = try reaction.string("emoji", maxLength: 16) else {
        throw InvalidParams(
          "`reaction.emoji` is required (an empty string removes a reaction)", field: "reaction.emoji")
      }
      content = [
        "message_id": .string(try reaction.requiredString("messageId", maxLength: 256)), "emoji": .string(emoji),
      ]
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

  /// `image`, `video`, `audio`, `document` or `sticker`: `{url}` that WhatsApp fetches or `{path}` of a local file
  /// (its `id` is filled in once uploaded), with the captions and file name the Cloud API takes for that kind (audio
  /// and stickers take no caption).
  static func mediaObject(_ object: Params, kind: String, media: MediaPolicy) throws(InvalidParams) -> JSONValue {
    let captioned = ["image", "video", "document"].contains(kind)
    let known: Set<String> =
      (kind == "document"
        ? ["url", "path", "caption", "filename"] : captioned ? ["url", "path", "caption"] : ["url", "path"])
    if !captioned && object.has("caption") {
      throw InvalidParams(
        "WhatsApp sends \(kind == "audio" ? "audio" : "a sticker") without a caption; send the text as a message of "
          + "its own", field: object.name("caption"))
    }
    try object.rejectUnknown(known, context: "`\(kind)`")
    var members: [String: JSONValue] = [:]
    switch (object.has("url"), object.has("path")) {
    case (true, true):
      throw InvalidParams("give `\(kind).url` or `\(kind).path`, not both", field: object.name("path"))
    case (false, true):
      break
    default:
      let url = try media.platformFetchedURL(try object.requiredString("url"), field: object.name("url"))
      members["link"] = .string(url.absoluteString)
    }
    if let caption = try object.string("caption", maxLength: maxCaption), !caption.isEmpty {
      members["caption"] = .string(caption)
    }
    if let filename = try object.string("filename", maxLength: 240), !filename.isEmpty {
      members["filename"] = .string(filename)
    }
    return .object(members)
  }

  /// The Cloud API's contacts array, passed through once each card has the name WhatsApp requires.
  static func contacts(_ params: Params) throws(InvalidParams) -> JSONValue {
    guard let cards = try params.objectArray("contacts"), !cards.isEmpty else {
      throw InvalidParams("`contacts` must be a non-empty array of contact cards", field: "contacts")
    }
    for card in cards {
      guard let name = try card.object("name"), try name.string("formatted_name") != nil else {
        throw InvalidParams(
          "each contact needs `name.formatted_name` (the name WhatsApp shows)", field: card.name("name.formatted_name"))
      }
    }
    return .array(cards.map { .object($0.values) })
  }

  /// The message as sent; `mediaId` is the uploaded local file's.
  func body(mediaId: String? = nil) -> JSONValue {
    var sent = content
    if let mediaId, case .object(var members) = sent {
      members["id"] = .string(mediaId)
      sent = .object(members)
    }
    var members: [String: JSONValue] = [
      "messaging_product": "whatsapp", "recipient_type": "individual", "to": .string(to), "type": .string(type),
      type: sent,
    ]
    if let replyTo { members["context"] = ["message_id": .string(replyTo)] }
    return .object(members)
  }
}

/// Interactive messages (reply buttons or a list), checked against the Cloud API's limits before sending: WhatsApp
/// refuses them otherwise only after the request, with a less precise message.
enum WhatsAppInteractive {
  static func check(_ object: Params) throws(InvalidParams) -> JSONValue {
    try object.rejectUnknown(["type", "header", "body", "footer", "action"], context: "`interactive`")
    let type = try object.choice("type", ["button", "list"])
    guard let type else {
      throw InvalidParams("`interactive.type` is required: button or list", field: object.name("type"))
    }
    guard let body = try object.object("body") else {
      throw InvalidParams("`interactive.body` is required: {\"text\": ...}", field: object.name("body"))
    }
    _ = try body.requiredString("text", maxLength: type == "button" ? 1_024 : 4_096)
    if let footer = try object.object("footer") { _ = try footer.requiredString("text", maxLength: 60) }
    if let header = try object.object("header") {
      if type == "list" && header.values["type"] != "text" {
        throw InvalidParams("a list message's header can only be text", field: header.name("type"))
      }
      if header.values["type"] == "text" { _ = try header.requiredString("text", maxLength: 60) }
    }
    guard let action = try object.object("action") else {
      throw InvalidParams("`interactive.action` is required", field: object.name("action"))
    }
    var ids = Set<String>()
    func unique(_ row: Params, maxLength: Int) throws(InvalidParams) {
      let id = try row.requiredString("id", maxLength: maxLength)
      guard ids.insert(id).inserted else {
        throw InvalidParams(
          "`\(row.name("id"))` repeats the id \(id); each choice needs its own", field: row.name("id"))
      }
    }
    if type == "button" {
      guard let buttons = try action.objectArray("buttons"), (1...3).contains(buttons.count) else {
        throw InvalidParams(
          "`interactive.action.buttons` must hold 1 to 3 reply buttons", field: action.name("buttons"))
      }
      for button in buttons {
        guard button.values["type"] == "reply", let reply = try button.object("reply") else {
          throw InvalidParams(
            "each button must be {\"type\": \"reply\", \"reply\": {\"id\", \"title\"}}", field: button.name("reply"))
        }
        try unique(reply, maxLength: 256)
        _ = try reply.requiredString("title", maxLength: 20)
      }
    } else {
      _ = try action.requiredString("button", maxLength: 20)
      guard let sections = try action.objectArray("sections"), (1...10).contains(sections.count) else {
        throw InvalidParams("`interactive.action.sections` must hold 1 to 10 sections", field: action.name("sections"))
      }
      var rowCount = 0
      for section in sections {
        if sections.count > 1 { _ = try section.requiredString("title", maxLength: 24) }
        guard let rows = try section.objectArray("rows"), !rows.isEmpty else {
          throw InvalidParams("each section needs at least one row", field: section.name("rows"))
        }
        rowCount += rows.count
        for row in rows {
          try unique(row, maxLength: 200)
          _ = try row.requiredString("title", maxLength: 24)
          _ = try row.string("description", maxLength: 72)
        }
      }
      guard rowCount <= 10 else {
        throw InvalidParams(
          "a list message holds at most 10 rows across its sections, got \(rowCount)", field: action.name("sections"))
      }
    }
    return .object(object.values)
  }
}

/// WhatsApp Business Cloud API messages from one business phone number (docs/platforms/meta.md).
///
/// A send is a `.publish` step with no dedupe key on Meta's side: a timeout after the request left ends with
/// `outcome_unknown` (delivery shows up in the status webhooks). Sends to one recipient are paced 6 s apart (Meta's
/// pair rate) on the gate `whatsapp:pair:<phone-number-id>:<to>`.
public final class WhatsAppClient: PlatformClient, Publisher {
  public let platform = Platform.whatsapp
  let graph: GraphAPI
  let media: MediaPolicy
  /// Local files already uploaded to a number, reused while their media id is valid.
  let uploads = WhatsAppMediaUploads()
  /// Meta's pair rate: about one message per 6 s to the same recipient.
  static let pairInterval: Duration = .seconds(6)

  public init(environment: PlatformEnvironment) {
    graph = GraphAPI(environment: environment, platform: .whatsapp)
    media = environment.media
  }

  public func preparePublish(_ params: Params) throws(InvalidParams) -> PreparedOperation<PostResult> {
    try prepared(params)
  }

  func check(_ params: Params) throws(InvalidParams) -> WhatsAppMessage {
    try WhatsAppMessage(params, media: media)
  }

  func publish(_ message: WhatsAppMessage, context: OperationContext) async throws(SidecarError) -> PostResult {
    try await context.withCredential(refresher: nil) { credential throws(SidecarError) in
      try await send(message, credential: credential, context: context.call)
    }
  }

  func send(
    _ message: WhatsAppMessage, credential: Credential, context: CallContext
  ) async throws(SidecarError) -> PostResult {
    let phone = credential.accountId
    var mediaId: String?
    if let upload = message.upload {
      mediaId = try await uploads.id(
        for: upload, phone: phone, token: graph.token(credential), graph: graph, context: context)
    }
    let pair = RateLimitKey("whatsapp:pair:\(phone):\(message.to)")
    graph.gates.pace(pair, minInterval: Self.pairInterval)
    let json: JSONValue
    do {
      json = try await graph.send(
        GraphCall("POST", GraphAPI.path(phone, "messages"), body: .json(message.body(mediaId: mediaId))),
        token: graph.token(credential),
        accountId: phone, step: .publish, gates: [pair], context: context)
    } catch let error where error.kind == .outcomeUnknown {
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
    try await MetaValidation.run(context) { credential throws(SidecarError) in
      let phone = credential.accountId
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
