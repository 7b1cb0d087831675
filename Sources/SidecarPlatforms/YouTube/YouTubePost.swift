#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarSystem

/// A `youtube/post` whose params passed every check YouTube would make, so that bad content fails before any upload.
struct YouTubePost: Sendable, Equatable {
  enum Source: Sendable, Equatable {
    /// Fetched over https (SSRF-guarded) to a temporary file first.
    case url(URL)
    /// A regular file already on this machine, under `media.localRoots`, by its real path.
    case path(LocalFile)
  }

  var title: String
  var description: String?
  var tags: [String]?
  var privacyStatus: String
  var categoryId: String?
  var madeForKids: Bool?
  var source: Source
  /// RFC 3339 time at which YouTube makes the (private) video public; set from `publishAt`.
  var publishAt: String?

  static let known: Set<String> = [
    "title", "description", "videoUrl", "videoPath", "tags", "privacyStatus", "categoryId", "madeForKids",
  ]
  static let privacyStatuses = ["public", "unlisted", "private"]
  /// YouTube's documented largest upload, 256 GB: the download cap for `videoUrl`.
  static let maxVideoBytes: Int64 = 256_000_000_000

  init(_ params: Params, media: MediaPolicy) throws(InvalidParams) {
    guard params.has("videoUrl") || params.has("videoPath") else {
      throw InvalidParams(
        "YouTube publishes videos, so a post needs `videoUrl` or `videoPath`; a text-only or image post cannot be "
          + "published on YouTube.", field: "videoUrl")
    }
    try params.rejectUnknown(Self.known, context: "youtube/post")
    title = try params.requiredString("title", maxLength: 100)
    try Self.refuseAngleBrackets(title, field: "title")
    description = try params.string("description")
    if let description {
      let bytes = description.utf8.count
      guard bytes <= 5000 else {
        throw InvalidParams("`description` is \(bytes) bytes of UTF-8; YouTube allows 5000", field: "description")
      }
      try Self.refuseAngleBrackets(description, field: "description")
    }
    tags = try params.stringArray("tags")
    if let tags {
      // YouTube counts the commas between tags, and quotes around a tag with a space, against 500 characters.
      let length = Self.tagsLength(tags)
      guard length <= 500 else {
        throw InvalidParams(
          "`tags` add up to \(length) characters as YouTube counts them (commas included, quotes around tags with "
            + "spaces); the limit is 500", field: "tags")
      }
      if let index = tags.firstIndex(where: { $0.trimmingWhitespace.isEmpty }) {
        throw InvalidParams("`tags[\(index)]` is empty", field: "tags[\(index)]")
      }
    }
    privacyStatus = try params.choice("privacyStatus", Self.privacyStatuses, default: "public") ?? "public"
    categoryId = try Self.category(params)
    madeForKids = try params.bool("madeForKids")
    if params.has("videoUrl") && params.has("videoPath") {
      throw InvalidParams("give either `videoUrl` or `videoPath`, not both", field: "videoPath")
    }
    if let text = try params.string("videoUrl") {
      source = .url(try media.sidecarFetchedURL(text, field: "videoUrl"))
    } else {
      source = .path(try media.localFile(try params.requiredString("videoPath"), field: "videoPath"))
    }
  }

  /// The `snippet` and `status` parts sent when the upload session starts.
  ///
  /// - Parameter marker: a tag that finds this upload among the channel's videos when the upload's answer is lost
  ///   (tags are visible to the channel's owner only); left out when the tags have no room for it.
  func metadata(marker: String? = nil) -> JSONValue {
    var snippet: [String: JSONValue] = ["title": .string(title)]
    if let description { snippet["description"] = .string(description) }
    var allTags = tags ?? []
    if let marker, Self.tagsLength(allTags + [marker]) <= Self.maxTagsLength { allTags.append(marker) }
    if !allTags.isEmpty { snippet["tags"] = .array(allTags.map(JSONValue.string)) }
    if let categoryId { snippet["categoryId"] = .string(categoryId) }
    var status: [String: JSONValue] = ["privacyStatus": .string(privacyStatus)]
    if let madeForKids { status["selfDeclaredMadeForKids"] = .bool(madeForKids) }
    if let publishAt { status["publishAt"] = .string(publishAt) }
    return ["snippet": .object(snippet), "status": .object(status)]
  }

  static let maxTagsLength = 500

  /// Tags' length as YouTube counts it: commas between tags, and quotes around a tag with a space, count too.
  static func tagsLength(_ tags: [String]) -> Int {
    tags.reduce(max(tags.count - 1, 0)) { $0 + $1.count + ($1.contains(" ") ? 2 : 0) }
  }

  private static func refuseAngleBrackets(_ text: String, field: String) throws(InvalidParams) {
    if text.contains("<") || text.contains(">") {
      throw InvalidParams("`\(field)` must not contain < or >, which YouTube refuses", field: field)
    }
  }

  /// `categoryId` as YouTube's numeric string; an integer is accepted too.
  private static func category(_ params: Params) throws(InvalidParams) -> String? {
    if case .int = params.values["categoryId"] { return String(try params.int("categoryId", in: 1...999)!) }
    guard let text = try params.string("categoryId") else { return nil }
    guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
      throw InvalidParams("`categoryId` must be a YouTube category number such as \"22\", got \(text)", field: "categoryId")
    }
    return text
  }

  /// The upload's media type: the download's `Content-Type` when it is a video type, else the file extension's.
  static func contentType(path: String, served: String?) -> String {
    if let served = served?.split(separator: ";").first?.trimmingWhitespace.lowercased(),
      served.hasPrefix("video/")
    {
      return served
    }
    switch URL(fileURLWithPath: path).pathExtension.lowercased() {
    case "mp4", "m4v": return "video/mp4"
    case "mov": return "video/quicktime"
    case "webm": return "video/webm"
    case "avi": return "video/x-msvideo"
    case "mkv": return "video/x-matroska"
    case "mpg", "mpeg": return "video/mpeg"
    case "3gp": return "video/3gpp"
    case "flv": return "video/x-flv"
    case "wmv": return "video/x-ms-wmv"
    default: return "application/octet-stream"
    }
  }
}
