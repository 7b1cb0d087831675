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
    /// An article card for the link (LinkedIn does not scrape it, so the card's title is derived from the URL).
    case link(URL)
    /// An image the sidecar fetches and uploads itself.
    case image(URL)
  }

  /// The text as given.
  var text: String?
  var content: Content
  var visibility: String

  static let known: Set<String> = ["text", "imageUrl", "link", "visibility"]
  static let visibilities = ["PUBLIC", "CONNECTIONS", "LOGGED_IN"]
  static let maxCommentary = 3000
  /// The download cap for `imageUrl`. LinkedIn bounds images by pixels (36,152,320), not bytes; at 4 bytes a pixel
  /// even an uncompressed image of that size stays under 150 MB.
  static let maxImageBytes: Int64 = 150_000_000

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
    let link = try params.string("link")
    let image = try params.string("imageUrl")
    switch (link, image) {
    case (_?, _?):
      throw InvalidParams(
        "a LinkedIn post carries one attachment: give `link` (an article card) or `imageUrl`, not both",
        field: "imageUrl")
    case (let link?, nil):
      guard let url = URL(string: link), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
        url.host?.isEmpty == false
      else { throw InvalidParams("`link` must be an absolute http(s) URL, got \(link)", field: "link") }
      content = .link(url)
    case (nil, let image?):
      content = .image(try media.sidecarFetchedURL(image, field: "imageUrl"))
    case (nil, nil):
      content = .none
    }
    if content == .none && (text ?? "").trimmingWhitespace.isEmpty {
      throw InvalidParams("a LinkedIn post needs `text`, `link` or `imageUrl`; there is nothing to publish", field: "text")
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
