#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON

/// A `linkedin/post` whose params passed every check LinkedIn would make.
struct LinkedInPost: Sendable, Equatable {
  enum Content: Sendable, Equatable {
    case none
    /// An article card for the link. LinkedIn does not scrape it: without `linkTitle` the card's title is derived
    /// from the URL; the thumbnail is fetched and uploaded as an image.
    case link(URL, title: String?, description: String?, thumbnail: URL?)
    /// An image the sidecar fetches and uploads itself.
    case image(URL, altText: String?)
    /// 2 to 20 images, each uploaded, in order.
    case images([URL])
    /// A document (PDF, PowerPoint, Word) shown as a carousel, with its title.
    case document(MediaSource, title: String)
    /// A video uploaded in parts, with its SubRip (.srt) captions when given.
    case video(MediaSource, captions: MediaSource?)
  }

  /// The text as given.
  var text: String?
  var content: Content
  var visibility: String

  static let known: Set<String> = [
    "text", "imageUrl", "link", "visibility", "imageUrls", "altText", "linkTitle", "linkDescription",
    "linkThumbnailUrl", "documentUrl", "documentPath", "documentTitle", "videoUrl", "videoPath",
    "captionsUrl", "captionsPath",
  ]
  /// The params that each make the post's one attachment.
  static let attachments = ["link", "imageUrl", "imageUrls", "documentUrl", "documentPath", "videoUrl", "videoPath"]
  static let visibilities = ["PUBLIC", "CONNECTIONS", "LOGGED_IN"]
  static let maxCommentary = 3000
  /// The download cap for `imageUrl`. LinkedIn bounds images by pixels (36,152,320), not bytes; at 4 bytes a pixel
  /// even an uncompressed image of that size stays under 150 MB.
  static let maxImageBytes: Int64 = 150_000_000
  /// The download cap for captions: SubRip text for a 30-minute video (LinkedIn's longest) is well under 1 MB.
  static let maxCaptionsBytes: Int64 = 10 << 20

  init(_ params: Params, media: MediaPolicy) throws(InvalidParams) {
    try params.rejectUnknown(Self.known, context: "linkedin/post")
    text = try params.string("text")
    let commentary = Self.commentary(text ?? "")
    if commentary.count > Self.maxCommentary {
      let grown = commentary.count == (text ?? "").count ? "" : " once LinkedIn's reserved characters are escaped"
      throw InvalidParams(
        "`text` is \(commentary.count) characters\(grown); LinkedIn allows \(Self.maxCommentary)", field: "text")
    }
    visibility = try params.choice("visibility", Self.visibilities, default: "PUBLIC") ?? "PUBLIC"
    let given = Self.attachments.filter { params.has($0) }
    guard given.count <= 1 else {
      throw InvalidParams(
        "a LinkedIn post carries one attachment: give one of `link`, `imageUrl`, `imageUrls`, `documentUrl`, "
          + "`documentPath`, `videoUrl` or `videoPath`, not \(given.map { "`\($0)`" }.joined(separator: " and "))",
        field: given[1])
    }
    func only(_ key: String, with attachments: [String], _ what: String) throws(InvalidParams) {
      if params.has(key) && !attachments.contains(given.first ?? "") {
        let needed = attachments.map { "`\($0)`" }.joined(separator: " or ")
        throw InvalidParams("`\(key)` \(what), so it needs \(needed)", field: key)
      }
    }
    try only("altText", with: ["imageUrl"], "describes a single image")
    try only("documentTitle", with: ["documentUrl", "documentPath"], "names a document")
    for key in ["captionsUrl", "captionsPath"] {
      try only(key, with: ["videoUrl", "videoPath"], "adds captions to a video")
    }
    for key in ["linkTitle", "linkDescription", "linkThumbnailUrl"] {
      try only(key, with: ["link"], "describes the link's card")
    }
    switch given.first {
    case "link"?:
      let link = try params.requiredString("link")
      guard let url = URL(string: link), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
        url.host?.isEmpty == false
      else { throw InvalidParams("`link` must be an absolute http(s) URL, got \(link)", field: "link") }
      let thumbnail = try params.string("linkThumbnailUrl").map { (text) throws(InvalidParams) in
        try media.sidecarFetchedURL(text, field: "linkThumbnailUrl")
      }
      content = .link(
        url, title: try params.string("linkTitle", maxLength: 400).flatMap { $0.isEmpty ? nil : $0 },
        description: try params.string("linkDescription", maxLength: 4_086).flatMap { $0.isEmpty ? nil : $0 },
        thumbnail: thumbnail)
    case "imageUrl"?:
      content = .image(
        try media.sidecarFetchedURL(try params.requiredString("imageUrl"), field: "imageUrl"),
        altText: try params.string("altText", maxLength: 4_086).flatMap { $0.isEmpty ? nil : $0 })
    case "imageUrls"?:
      let urls = try params.stringArray("imageUrls") ?? []
      guard (2...20).contains(urls.count) else {
        throw InvalidParams(
          "`imageUrls` takes 2 to 20 images for a multi-image post, got \(urls.count)"
            + (urls.count == 1 ? "; use `imageUrl` for a single image" : ""), field: "imageUrls")
      }
      content = .images(
        try urls.indices.map { (index) throws(InvalidParams) in
          try media.sidecarFetchedURL(urls[index], field: "imageUrls[\(index)]")
        })
    case "documentUrl"?, "documentPath"?:
      let source = try MediaSource.from(params, url: "documentUrl", path: "documentPath", media: media)!
      guard let title = try params.string("documentTitle", maxLength: 400), !title.isEmpty else {
        throw InvalidParams(
          "a document post needs `documentTitle`, which LinkedIn shows above it", field: "documentTitle")
      }
      content = .document(source, title: title)
    case "videoUrl"?, "videoPath"?:
      content = .video(
        try MediaSource.from(params, url: "videoUrl", path: "videoPath", media: media)!,
        captions: try MediaSource.from(params, url: "captionsUrl", path: "captionsPath", media: media))
    default:
      content = .none
    }
    if content == .none && (text ?? "").trimmingWhitespace.isEmpty {
      throw InvalidParams(
        "a LinkedIn post needs `text` or an attachment (`link`, `imageUrl`, `imageUrls`, a document, a video); "
          + "there is nothing to publish", field: "text")
    }
  }

  /// Characters LinkedIn's "little" text format reserves.
  static let reserved: Set<Character> = ["\\", "|", "{", "}", "@", "[", "]", "(", ")", "<", ">", "*", "_", "~"]

  /// `text` as LinkedIn's `commentary`: reserved characters are escaped so that they appear as typed (unescaped,
  /// LinkedIn may drop the text after them). `#` is left alone so that hashtags stay hashtags.
  static func commentary(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.count)
    for character in text {
      if reserved.contains(character) { escaped.append("\\") }
      escaped.append(character)
    }
    return escaped
  }

  /// The article card's title: the link's host and path, LinkedIn requiring one and the params having none.
  static func articleTitle(_ url: URL) -> String {
    var host = url.host ?? url.absoluteString
    if host.hasPrefix("www.") { host.removeFirst(4) }
    let path = url.path == "/" ? "" : url.path
    return String((host + path).prefix(200))
  }
}
