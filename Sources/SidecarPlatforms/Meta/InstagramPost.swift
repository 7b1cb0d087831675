#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// An Instagram post as checked up front (platform-apis.md §3.3).
enum InstagramPost: Sendable, Equatable {
  enum Media: Sendable, Equatable {
    case image(URL)
    case video(URL)
  }

  case image(URL, caption: String?)
  case reel(URL, caption: String?)
  case story(Media)
  case carousel([Media], caption: String?)

  static let known: Set<String> = ["caption", "imageUrl", "videoUrl", "items", "kind"]
  static let maxCaption = 2_200
  static let maxHashtags = 30

  var caption: String? {
    switch self {
    case .image(_, let caption), .reel(_, let caption), .carousel(_, let caption): caption
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
    let given = [image != nil, video != nil, items != nil].filter { $0 }.count
    guard given == 1 else {
      throw InvalidParams(
        given == 0
          ? "an Instagram post needs media: `imageUrl`, `videoUrl` or `items` (Instagram has no text-only posts)"
          : "an Instagram post takes one of `imageUrl`, `videoUrl` or `items`, not several")
    }
    let inferred = items != nil ? "carousel" : video != nil ? "reel" : "feed"
    let kind = try params.choice("kind", ["feed", "reel", "story", "carousel"], default: inferred) ?? inferred

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
