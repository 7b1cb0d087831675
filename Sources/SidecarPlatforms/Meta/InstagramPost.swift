#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON

/// An Instagram post as checked up front (docs/platforms/meta.md).
enum InstagramPost: Sendable, Equatable {
  enum Media: Sendable, Equatable {
    case image(URL)
    case video(URL)
  }

  case image(URL, caption: String?)
  case reel(URL, caption: String?)
  /// A reel read from a local file and sent to Instagram's resumable upload.
  case localReel(LocalFile, caption: String?)
  case story(Media)
  case carousel([Media], caption: String?)

  static let known = Set(["caption", "imageUrl", "videoUrl", "videoPath", "items", "kind"]).union(InstagramExtras.known)
  static let maxCaption = 2_200
  static let maxHashtags = 30

  var caption: String? {
    switch self {
    case .image(_, let caption), .reel(_, let caption), .localReel(_, let caption), .carousel(_, let caption): caption
    case .story: nil
    }
  }

  init(_ params: Params, media policy: MediaPolicy) throws(InvalidParams) {
    try params.rejectUnknown(Self.known, context: "instagram/post")
    let caption = try params.string("caption", maxLength: Self.maxCaption).flatMap { $0.isEmpty ? nil : $0 }
    if let caption {
      let hashtags = caption.split(whereSeparator: \.isWhitespace).filter { $0.hasPrefix("#") && $0.count > 1 }.count
      if hashtags > Self.maxHashtags {
        throw InvalidParams(
          "`caption` has \(hashtags) hashtags; Instagram allows at most \(Self.maxHashtags)", field: "caption")
      }
    }
    let image = try params.string("imageUrl").map { (text) throws(InvalidParams) in
      try policy.platformFetchedURL(text, field: "imageUrl")
    }
    let video = try params.string("videoUrl").map { (text) throws(InvalidParams) in
      try policy.platformFetchedURL(text, field: "videoUrl")
    }
    let videoFile = try params.string("videoPath").map { (path) throws(InvalidParams) in
      try policy.localFile(path, field: "videoPath")
    }
    var items: [Media]?
    if let entries = try params.objectArray("items") {
      var checked: [Media] = []
      for entry in entries {
        try entry.rejectUnknown(["imageUrl", "videoUrl"], context: "a carousel item")
        let itemImage = try entry.string("imageUrl")
        let itemVideo = try entry.string("videoUrl")
        switch (itemImage, itemVideo) {
        case (let url?, nil): checked.append(.image(try policy.platformFetchedURL(url, field: entry.name("imageUrl"))))
        case (nil, let url?): checked.append(.video(try policy.platformFetchedURL(url, field: entry.name("videoUrl"))))
        default:
          throw InvalidParams(
            "each carousel item takes exactly one of `imageUrl` or `videoUrl`", field: String(entry.name("").dropLast())
          )
        }
      }
      items = checked
    }
    let given = [image != nil, video != nil, videoFile != nil, items != nil].filter { $0 }.count
    guard given == 1 else {
      throw InvalidParams(
        given == 0
          ? "an Instagram post needs media: `imageUrl`, `videoUrl`, `videoPath` or `items` (Instagram has no "
            + "text-only posts)"
          : "an Instagram post takes one of `imageUrl`, `videoUrl`, `videoPath` or `items`, not several")
    }
    let inferred = items != nil ? "carousel" : video != nil || videoFile != nil ? "reel" : "feed"
    let kind = try params.choice("kind", ["feed", "reel", "story", "carousel"], default: inferred) ?? inferred
    if let videoFile {
      guard kind == "reel" else {
        throw InvalidParams("`videoPath` uploads a reel; leave `kind` out or use `kind: reel`", field: "kind")
      }
      self = .localReel(videoFile, caption: caption)
      return
    }

    switch kind {
    case "carousel":
      guard let items else {
        throw InvalidParams("a carousel needs `items` (2 to 10 photos or videos)", field: "items")
      }
      guard (2...10).contains(items.count) else {
        throw InvalidParams("a carousel takes 2 to 10 `items`, got \(items.count)", field: "items")
      }
      self = .carousel(items, caption: caption)
    case "story":
      if caption != nil {
        throw InvalidParams(
          "Instagram stories carry no caption; leave out `caption` for `kind: story`", field: "caption")
      }
      if let image {
        self = .story(.image(image))
      } else if let video {
        self = .story(.video(video))
      } else {
        throw InvalidParams("an Instagram story takes one `imageUrl` or `videoUrl`, not `items`", field: "items")
      }
    case "reel":
      guard let video else {
        throw InvalidParams("an Instagram reel needs a `videoUrl`", field: "videoUrl")
      }
      self = .reel(video, caption: caption)
    default:
      guard let image else {
        throw InvalidParams(
          video != nil
            ? "Instagram publishes videos as reels: use `kind: reel` (or leave `kind` out) with `videoUrl`"
            : "a feed post takes one `imageUrl`; use `kind: carousel` (or leave `kind` out) with `items`",
          field: "kind")
      }
      self = .image(image, caption: caption)
    }
  }
}

/// The container fields beyond the media and caption: accessibility, tags, collaborators, location and the reel's
/// cover. Each is refused up front on the kinds Instagram does not take it on.
struct InstagramExtras: Sendable, Equatable {
  static let known: Set<String> = [
    "altText", "userTags", "collaborators", "locationId", "coverUrl", "thumbOffsetMs", "shareToFeed",
  ]
  static let maxUserTags = 20
  static let maxCollaborators = 3

  /// Form fields added to the post's (parent) container, in a stable order.
  var form: [Field]

  struct Field: Sendable, Equatable {
    var name: String
    var value: String
  }

  init(_ params: Params, post: InstagramPost, media policy: MediaPolicy) throws(InvalidParams) {
    let kind: String =
      switch post {
      case .image: "feed"
      case .reel, .localReel: "reel"
      case .story: "story"
      case .carousel: "carousel"
      }
    func only(_ key: String, on kinds: Set<String>, _ why: String) throws(InvalidParams) {
      if params.has(key) && !kinds.contains(kind) {
        throw InvalidParams("`\(key)` \(why); this post is a \(kind)", field: key)
      }
    }
    try only("altText", on: ["feed"], "applies to a single feed image")
    try only("userTags", on: ["feed", "reel"], "tags people on a feed image or a reel")
    try only("collaborators", on: ["feed", "reel", "carousel"], "is not available on stories")
    try only("locationId", on: ["feed", "reel", "carousel"], "is not available on stories")
    for key in ["coverUrl", "thumbOffsetMs", "shareToFeed"] { try only(key, on: ["reel"], "applies to reels only") }
    if params.has("coverUrl") && params.has("thumbOffsetMs") {
      throw InvalidParams(
        "give either `coverUrl` or `thumbOffsetMs` for the reel's cover, not both", field: "thumbOffsetMs")
    }

    var form: [Field] = []
    if let alt = try params.string("altText", maxLength: 1_000), !alt.isEmpty {
      form.append(Field(name: "alt_text", value: alt))
    }
    if let tags = try params.objectArray("userTags") {
      guard tags.count <= Self.maxUserTags else {
        throw InvalidParams(
          "`userTags` holds \(tags.count) people; Instagram tags at most \(Self.maxUserTags)", field: "userTags")
      }
      var wire: [JSONValue] = []
      for tag in tags {
        try tag.rejectUnknown(["username", "x", "y"], context: "a user tag")
        var entry: [String: JSONValue] = ["username": .string(try Self.username(tag, "username"))]
        if kind == "feed" {
          // Where on the image, as fractions of its width and height from the top left.
          entry["x"] = .double(try tag.requiredNumber("x", in: 0...1))
          entry["y"] = .double(try tag.requiredNumber("y", in: 0...1))
        } else if tag.has("x") || tag.has("y") {
          throw InvalidParams("tags on a reel have no position; leave out `x` and `y`", field: tag.name("x"))
        }
        wire.append(.object(entry))
      }
      form.append(Field(name: "user_tags", value: String(decoding: JSONValue.array(wire).serialized(), as: UTF8.self)))
    }
    if let names = try params.stringArray("collaborators") {
      guard (1...Self.maxCollaborators).contains(names.count) else {
        throw InvalidParams(
          "`collaborators` takes 1 to \(Self.maxCollaborators) usernames, got \(names.count)", field: "collaborators")
      }
      let checked = try names.indices.map { (index) throws(InvalidParams) -> JSONValue in
        .string(try Self.checkedUsername(names[index], field: "collaborators[\(index)]"))
      }
      form.append(
        Field(name: "collaborators", value: String(decoding: JSONValue.array(checked).serialized(), as: UTF8.self)))
    }
    if let location = try params.string("locationId") {
      guard !location.isEmpty, location.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
        throw InvalidParams("`locationId` must be a Facebook Page id (digits), got \(location)", field: "locationId")
      }
      form.append(Field(name: "location_id", value: location))
    }
    if let cover = try params.string("coverUrl") {
      form.append(
        Field(name: "cover_url", value: try policy.platformFetchedURL(cover, field: "coverUrl").absoluteString))
    }
    if let offset = try params.int("thumbOffsetMs", in: 0...3_600_000) {
      form.append(Field(name: "thumb_offset", value: String(offset)))
    }
    if let share = try params.bool("shareToFeed") { form.append(Field(name: "share_to_feed", value: String(share))) }
    self.form = form
  }

  private static func username(_ tag: Params, _ key: String) throws(InvalidParams) -> String {
    try checkedUsername(try tag.requiredString(key), field: tag.name(key))
  }

  /// An Instagram username: letters, digits, periods and underscores, at most 30; a leading @ is dropped.
  static func checkedUsername(_ raw: String, field: String) throws(InvalidParams) -> String {
    let name = raw.hasPrefix("@") ? String(raw.dropFirst()) : raw
    guard (1...30).contains(name.utf8.count),
      name.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") })
    else {
      throw InvalidParams(
        "`\(field)` must be an Instagram username (letters, digits, . and _, at most 30), got \(raw)", field: field)
    }
    return name
  }
}
