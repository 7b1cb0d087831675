#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// The five networks the sidecar publishes to. Raw values are the method prefixes on the wire.
public enum Platform: String, Sendable, CaseIterable, CustomStringConvertible {
  case youtube, instagram, facebook, linkedin, whatsapp

  /// WhatsApp sends messages; everyone else posts.
  public var publishOperation: String { self == .whatsapp ? "send" : "post" }
  public var operations: [String] { [publishOperation, "validate", "refresh"] }
  public var description: String { rawValue }
  /// The product name people know, for messages.
  var displayName: String {
    switch self {
    case .facebook: "Facebook"
    case .instagram: "Instagram"
    case .whatsapp: "WhatsApp"
    case .youtube: "YouTube"
    case .linkedin: "LinkedIn"
    }
  }
  /// The platforms whose APIs schedule a post themselves (`publishAt`).
  public static let schedulable: [Platform] = [.facebook, .youtube]
}

/// Where each platform's API lives. Defaults are the real hosts; tests point them at local fakes.
public struct PlatformEndpoints: Sendable, Equatable {
  // The defaults, written only here: the configuration starts from them, and `EndpointDefaultsTests` checks every copy
  // in the docs and the schemas against them.
  public static let defaultGraphBaseURL = "https://graph.facebook.com"
  /// The Graph API version the official Meta business SDK of the same release targets (docs/platforms/meta.md).
  public static let defaultGraphVersion = "v26.0"
  public static let defaultInstagramLoginBaseURL = "https://graph.instagram.com"
  public static let defaultYouTubeBaseURL = "https://www.googleapis.com"
  public static let defaultYouTubeUploadURL = "https://www.googleapis.com/upload/youtube/v3/videos"
  public static let defaultGoogleTokenURL = "https://oauth2.googleapis.com/token"
  public static let defaultLinkedInBaseURL = "https://api.linkedin.com"
  /// A LinkedIn Marketing version well inside LinkedIn's one-year support window (docs/platforms/linkedin.md).
  public static let defaultLinkedInVersion = "202610"
  public static let defaultLinkedInTokenURL = "https://www.linkedin.com/oauth/v2/accessToken"
  /// The host Facebook takes `/videos` uploads on when the Graph base is the default one.
  public static let graphVideoBaseURL = "https://graph-video.facebook.com"

  public var graphBaseURL: [Platform: String] = [
    .facebook: defaultGraphBaseURL, .instagram: defaultGraphBaseURL, .whatsapp: defaultGraphBaseURL,
  ]
  public var graphVersion: [Platform: String] = [
    .facebook: defaultGraphVersion, .instagram: defaultGraphVersion, .whatsapp: defaultGraphVersion,
  ]
  public var instagramLoginBaseURL = defaultInstagramLoginBaseURL
  public var youtubeBaseURL = defaultYouTubeBaseURL
  public var youtubeUploadURL = defaultYouTubeUploadURL
  public var googleTokenURL = defaultGoogleTokenURL
  public var linkedinBaseURL = defaultLinkedInBaseURL
  public var linkedinVersion = defaultLinkedInVersion
  public var linkedinTokenURL = defaultLinkedInTokenURL

  public init() {}
}

/// What a successful publish answers.
public struct PostResult: Sendable, Equatable {
  public enum Status: String, Sendable {
    /// Live on the platform.
    case published
    /// Accepted and still being processed (video transcoding); it will go live without further calls.
    case processing
    /// Accepted for delivery (WhatsApp messages: delivery is reported by webhooks, not here).
    case accepted
    /// Accepted to go live at `publishAt` (native scheduling on Facebook and YouTube).
    case scheduled
  }

  public var postId: String
  public var postUrl: String?
  public var status: Status
  /// Who can see the post as the platform set it, where it may differ from what was asked (YouTube).
  public var privacyStatus: String?
  /// Sentences about what the platform did differently from what was asked.
  public var warnings: [String]

  public init(postId: String, postUrl: String?, status: Status, privacyStatus: String? = nil, warnings: [String] = []) {
    self.postId = postId
    self.postUrl = postUrl
    self.status = status
    self.privacyStatus = privacyStatus
    self.warnings = warnings
  }
}

/// What `<platform>/validate` answers: whether posting would work, and if not, what is missing.
public struct ValidationResult: Sendable, Equatable {
  /// A platform's publishing allowance (Instagram: posts per rolling 24 hours), so a backend can pace itself.
  public struct Quota: Sendable, Equatable {
    public var used: Int
    public var total: Int
    public var windowSeconds: Int?

    public init(used: Int, total: Int, windowSeconds: Int?) {
      self.used = used
      self.total = total
      self.windowSeconds = windowSeconds
    }
  }

  public var valid: Bool
  public var accountId: String
  public var accountName: String?
  public var scopes: [String]?
  public var missing: [String]?
  public var expiresAt: Date?
  public var problems: [String]?
  public var quota: Quota?
  /// Sentences about what still works now but will not for long (a LinkedIn version close to its sunset).
  public var warnings: [String]?

  public init(
    valid: Bool, accountId: String, accountName: String? = nil, scopes: [String]? = nil, missing: [String]? = nil,
    expiresAt: Date? = nil, problems: [String]? = nil, quota: Quota? = nil, warnings: [String]? = nil
  ) {
    self.quota = quota
    self.warnings = warnings
    self.valid = valid
    self.accountId = accountId
    self.accountName = accountName
    self.scopes = scopes
    self.missing = missing
    self.expiresAt = expiresAt
    self.problems = problems
  }
}

/// What `<platform>/refresh` answers. The new token itself goes to the parent through `credentials/update`.
public struct RefreshResult: Sendable, Equatable {
  public var refreshed: Bool
  public var expiresAt: Date?

  public init(refreshed: Bool, expiresAt: Date?) {
    self.refreshed = refreshed
    self.expiresAt = expiresAt
  }
}
