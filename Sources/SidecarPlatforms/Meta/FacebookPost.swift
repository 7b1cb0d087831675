#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A Facebook Page post as checked up front; each case is one publishing flow of platform-apis.md §2.3.
enum FacebookPost: Sendable, Equatable {
  case feed(text: String?, link: String?)
  case photo(URL, caption: String?)
  case album([URL], text: String?)
  case video(URL, description: String?)
  case photoStory(URL)
  case videoStory(URL)
  case reel(URL, description: String?)

  /// Kinds that go to the Page feed, where Facebook can schedule them.
  var schedulable: Bool {
    switch self {
    case .feed, .photo, .album: true
    default: false
    }
  }

  static let known: Set<String> = ["text", "link", "imageUrl", "imageUrls", "videoUrl", "kind"]
  /// Facebook's limit on a post's text.
  static let maxText = 63_206

  init(_ params: Params, media: MediaPolicy) throws(InvalidParams) {
    try params.rejectUnknown(Self.known, context: "facebook/post")
    let kind = try params.choice("kind", ["feed", "story", "reel"], default: "feed") ?? "feed"
    let text = try params.string("text", maxLength: Self.maxText).flatMap { $0.isEmpty ? nil : $0 }
    let link = try params.string("link")
    let image = try params.string("imageUrl").map { (text) throws(InvalidParams) in
      try media.platformFetchedURL(text, field: params.name("imageUrl"))
    }
    let video = try params.string("videoUrl").map { (text) throws(InvalidParams) in
      try media.platformFetchedURL(text, field: params.name("videoUrl"))
    }
    var images: [URL]?
    if let urls = try params.stringArray("imageUrls") {
      guard (2...10).contains(urls.count) else {
        throw InvalidParams(
          "`imageUrls` takes 2 to 10 photos for a multi-photo post, got \(urls.count)"
            + (urls.count == 1 ? "; use `imageUrl` for a single photo" : ""),
          field: "imageUrls")
      }
      var checked: [URL] = []
      for (index, url) in urls.enumerated() {
        checked.append(try media.platformFetchedURL(url, field: "imageUrls[\(index)]"))
      }
      images = checked
    }
    let mediaCount = [image != nil, images != nil, video != nil].filter { $0 }.count
    if mediaCount > 1 {
      throw InvalidParams("a Facebook post takes one of `imageUrl`, `imageUrls` or `videoUrl`, not several")
    }
    if let link {
      guard let url = URL(string: link), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil
      else { throw InvalidParams("`link` must be an absolute http(s) URL, got \(link)", field: "link") }
      if mediaCount > 0 || kind != "feed" {
        throw InvalidParams(
          "`link` can only go with a text post: Facebook does not attach links to photos, videos, "
            + "stories or reels", field: "link")
      }
    }

    switch kind {
    case "story":
      if text != nil {
        throw InvalidParams("Facebook stories carry no text; leave out `text` for `kind: story`", field: "text")
      }
      if let image {
        self = .photoStory(image)
      } else if let video {
        self = .videoStory(video)
      } else {
        throw InvalidParams(
          "a Facebook story needs one `imageUrl` or one `videoUrl`", field: images == nil ? "kind" : "imageUrls")
      }
    case "reel":
      guard let video, mediaCount == 1 else {
        throw InvalidParams("a Facebook reel needs a `videoUrl` and no photos", field: "videoUrl")
      }
      self = .reel(video, description: text)
    default:
      if let image {
        self = .photo(image, caption: text)
      } else if let images {
        self = .album(images, text: text)
      } else if let video {
        self = .video(video, description: text)
      } else {
        guard text != nil || link != nil else {
          throw InvalidParams(
            "a Facebook post needs `text`, a `link`, or media (`imageUrl`, `imageUrls` or `videoUrl`)", field: "text")
        }
        self = .feed(text: text, link: link)
      }
    }
  }
}
