#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A Facebook Page post as checked up front; each case is one publishing flow of docs/platforms/meta.md
enum FacebookPost: Sendable, Equatable {
  /// `callToAction` is a button type on the link (Graph's `call_to_action` with the link as its value).
  case feed(text: String?, link: String?, callToAction: String? = nil)
  case photo(URL, caption: String?, altText: String?)
  case album([URL], text: String?)
  /// A hosted video; `thumbnail` is a custom thumbnail the sidecar downloads and sends as the `thumb` file part.
  case video(URL, description: String?, title: String?, thumbnail: URL?)
  /// A video read from a local file and uploaded in chunks (start, transfer, finish).
  case localVideo(LocalFile, description: String?, title: String?)
  case photoStory(URL)
  /// A story's or reel's video: a URL Meta fetches itself, or a local file the sidecar sends to the upload host.
  case videoStory(MediaSource)
  case reel(MediaSource, description: String?)

  /// Kinds that go to the Page feed, where Facebook can schedule them.
  var schedulable: Bool {
    switch self {
    case .feed, .photo, .album: true
    default: false
    }
  }

  static let known: Set<String> = [
    "text", "link", "imageUrl", "imageUrls", "videoUrl", "kind", "altText", "videoTitle",
    "videoPath", "thumbnailUrl", "callToAction",
  ]
  /// Call-to-action buttons whose only value is the post's link.
  static let callsToAction = [
    "LEARN_MORE", "SHOP_NOW", "SIGN_UP", "BOOK_TRAVEL", "DOWNLOAD", "GET_OFFER", "SUBSCRIBE", "WATCH_MORE", "APPLY_NOW",
    "ORDER_NOW", "GET_QUOTE", "CONTACT_US", "DONATE_NOW", "LISTEN_NOW", "SEE_MORE",
  ]
  /// The largest custom video thumbnail the sidecar downloads (Graph takes an image file part; 10 MB is ample).
  static let maxThumbnailBytes: Int64 = 10 << 20
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
    let videoFile = try params.string("videoPath").map { (path) throws(InvalidParams) in
      try media.localFile(path, field: "videoPath")
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
    let mediaCount = [image != nil, images != nil, video != nil, videoFile != nil].filter { $0 }.count
    if mediaCount > 1 {
      throw InvalidParams(
        "a Facebook post takes one of `imageUrl`, `imageUrls`, `videoUrl` or `videoPath`, not several")
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

    let altText = try params.string("altText", maxLength: 1_000).flatMap { $0.isEmpty ? nil : $0 }
    if altText != nil && (image == nil || kind != "feed") {
      throw InvalidParams(
        "`altText` describes a single photo post (`imageUrl`); Facebook takes no custom alt text here", field: "altText"
      )
    }
    let videoTitle = try params.string("videoTitle", maxLength: 255).flatMap { $0.isEmpty ? nil : $0 }
    if videoTitle != nil && ((video == nil && videoFile == nil) || kind != "feed") {
      throw InvalidParams(
        "`videoTitle` names a video post (`videoUrl` or `videoPath`, `kind: feed`)", field: "videoTitle")
    }
    let callToAction = try params.choice("callToAction", Self.callsToAction)
    if callToAction != nil && (link == nil || mediaCount > 0 || kind != "feed") {
      throw InvalidParams(
        "`callToAction` puts a button on a link post: it needs a `link` and no media", field: "callToAction")
    }
    let thumbnail = try params.string("thumbnailUrl").map { (text) throws(InvalidParams) in
      try media.sidecarFetchedURL(text, field: params.name("thumbnailUrl"))
    }
    if thumbnail != nil {
      if videoFile != nil {
        throw InvalidParams(
          "`thumbnailUrl` goes with `videoUrl` only: Facebook's chunked upload of a `videoPath` takes no thumbnail "
            + "file", field: "thumbnailUrl")
      }
      if video == nil || kind != "feed" {
        throw InvalidParams(
          "`thumbnailUrl` sets the thumbnail of a video post (`videoUrl`, `kind: feed`)", field: "thumbnailUrl")
      }
    }

    switch kind {
    case "story":
      if text != nil {
        throw InvalidParams("Facebook stories carry no text; leave out `text` for `kind: story`", field: "text")
      }
      if let image {
        self = .photoStory(image)
      } else if let source = video.map(MediaSource.url) ?? videoFile.map(MediaSource.file) {
        self = .videoStory(source)
      } else {
        throw InvalidParams(
          "a Facebook story needs one `imageUrl`, `videoUrl` or `videoPath`",
          field: images == nil ? "kind" : "imageUrls")
      }
    case "reel":
      guard mediaCount == 1, let source = video.map(MediaSource.url) ?? videoFile.map(MediaSource.file) else {
        throw InvalidParams("a Facebook reel needs a `videoUrl` or `videoPath` and no photos", field: "videoUrl")
      }
      self = .reel(source, description: text)
    default:
      if let image {
        self = .photo(image, caption: text, altText: altText)
      } else if let images {
        self = .album(images, text: text)
      } else if let video {
        self = .video(video, description: text, title: videoTitle, thumbnail: thumbnail)
      } else if let videoFile {
        self = .localVideo(videoFile, description: text, title: videoTitle)
      } else {
        guard text != nil || link != nil else {
          throw InvalidParams(
            "a Facebook post needs `text`, a `link`, or media (`imageUrl`, `imageUrls` or `videoUrl`)", field: "text")
        }
        self = .feed(text: text, link: link, callToAction: callToAction)
      }
    }
  }
}
