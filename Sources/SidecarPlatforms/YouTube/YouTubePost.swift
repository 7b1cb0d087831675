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
  /// `snippet.defaultLanguage`: the language of the title and description.
  var defaultLanguage: String?
  /// `status.license`: `youtube` or `creativeCommon`.
  var license: String?
  var embeddable: Bool?
  /// `status.containsSyntheticMedia`: the altered or synthetic content disclosure.
  var containsSyntheticMedia: Bool?
  /// `videos.insert`'s `notifySubscribers` (YouTube's default: true).
  var notifySubscribers: Bool?
  /// A custom thumbnail, set with `thumbnails.set` once the video exists.
  var thumbnail: MediaSource?
  /// A playlist the video is added to (`playlistItems.insert`) once it exists.
  var playlistId: String?
  /// RFC 3339 time at which YouTube makes the (private) video public; set from `publishAt`.
  var publishAt: String?

  static let known: Set<String> = [
    "title", "description", "videoUrl", "videoPath", "tags", "privacyStatus", "categoryId", "madeForKids",
    "defaultLanguage", "license", "embeddable", "containsSyntheticMedia", "notifySubscribers", "thumbnailUrl",
    "thumbnailPath", "playlistId",
  ]
  /// `thumbnails.set` takes JPEG or PNG images up to 2 MB.
  static let maxThumbnailBytes: Int64 = 2 << 20
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
    defaultLanguage = try params.string("defaultLanguage", maxLength: 35)
    if let language = defaultLanguage,
      language.isEmpty || !language.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0.isASCIIAlphanumeric })
    {
      throw InvalidParams(
        "`defaultLanguage` must be a language tag such as en or pt-BR, got \(language)", field: "defaultLanguage")
    }
    license = try params.choice("license", ["youtube", "creativeCommon"])
    embeddable = try params.bool("embeddable")
    containsSyntheticMedia = try params.bool("containsSyntheticMedia")
    notifySubscribers = try params.bool("notifySubscribers")
    thumbnail = try MediaSource.from(params, url: "thumbnailUrl", path: "thumbnailPath", media: media)
    if case .file(let file)? = thumbnail {
      guard file.size <= Self.maxThumbnailBytes else {
        throw InvalidParams(
          "`thumbnailPath` is \(file.size) bytes; YouTube takes thumbnails up to 2 MB", field: "thumbnailPath")
      }
      guard Self.thumbnailType(path: file.path, served: nil) != nil else {
        throw InvalidParams(
          "`thumbnailPath` must be a .jpg, .jpeg or .png file, the types YouTube takes", field: "thumbnailPath")
      }
    }
    playlistId = try params.string("playlistId", maxLength: 64)
    if let playlist = playlistId,
      playlist.count < 2
        || !playlist.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
    {
      throw InvalidParams(
        "`playlistId` must be a YouTube playlist id such as PLxxxx, got \(playlist)", field: "playlistId")
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
    if let defaultLanguage { snippet["defaultLanguage"] = .string(defaultLanguage) }
    var status: [String: JSONValue] = ["privacyStatus": .string(privacyStatus)]
    if let madeForKids { status["selfDeclaredMadeForKids"] = .bool(madeForKids) }
    if let license { status["license"] = .string(license) }
    if let embeddable { status["embeddable"] = .bool(embeddable) }
    if let containsSyntheticMedia { status["containsSyntheticMedia"] = .bool(containsSyntheticMedia) }
    if let publishAt { status["publishAt"] = .string(publishAt) }
    return ["snippet": .object(snippet), "status": .object(status)]
  }

  /// The thumbnail's media type from its download's `Content-Type`, else its extension; nil when YouTube takes
  /// neither (JPEG and PNG only).
  static func thumbnailType(path: String, served: String?) -> String? {
    let served = served?.split(separator: ";").first?.trimmingWhitespace.lowercased()
    if let served, ["image/jpeg", "image/png"].contains(served) { return served }
    switch URL(fileURLWithPath: path).pathExtension.lowercased() {
    case "jpg", "jpeg": return "image/jpeg"
    case "png": return "image/png"
    default: return nil
    }
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
      throw InvalidParams(
        "`categoryId` must be a YouTube category number such as \"22\", got \(text)", field: "categoryId")
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
