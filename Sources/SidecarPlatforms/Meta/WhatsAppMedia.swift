#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarHTTP
import SidecarJSON
import SidecarResilience
import Synchronization

/// A local file sent as WhatsApp media: checked up front against the Cloud API's types and sizes for its kind.
struct WhatsAppUpload: Sendable, Equatable {
  var kind: String
  var file: LocalFile
  var mimeType: String

  /// Per kind: the file types WhatsApp takes (by extension) and the largest size.
  static let rules: [String: (types: [String: String], maxBytes: Int64)] = [
    "image": (["jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"], 5 << 20),
    "video": (["mp4": "video/mp4", "3gp": "video/3gpp"], 16 << 20),
    "audio": (
      [
        "aac": "audio/aac", "amr": "audio/amr", "mp3": "audio/mpeg", "m4a": "audio/mp4", "ogg": "audio/ogg",
        "opus": "audio/ogg",
      ],
      16 << 20
    ),
    "document": (
      [
        "pdf": "application/pdf", "txt": "text/plain", "doc": "application/msword",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls": "application/vnd.ms-excel", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt": "application/vnd.ms-powerpoint",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
      ], 100 << 20
    ),
    "sticker": (["webp": "image/webp"], 500 << 10),
  ]

  init(_ object: Params, kind: String, media: MediaPolicy) throws(InvalidParams) {
    let field = object.name("path")
    file = try media.localFile(try object.requiredString("path"), field: field)
    guard let rule = Self.rules[kind] else { throw InvalidParams("WhatsApp sends no \(kind) media", field: field) }
    let ext = URL(fileURLWithPath: file.path).pathExtension.lowercased()
    guard let type = rule.types[ext] else {
      throw InvalidParams(
        "WhatsApp sends \(kind) files of types \(rule.types.keys.sorted().joined(separator: ", ")), not .\(ext)",
        field: field)
    }
    guard file.size <= rule.maxBytes else {
      throw InvalidParams(
        "`\(field)` is \(file.size) bytes; WhatsApp takes \(kind) files up to \(rule.maxBytes) bytes", field: field)
    }
    self.kind = kind
    mimeType = type
  }
}

/// Uploads local files to a number's `/media` and remembers their ids: the same file (path, size and modification
/// time) sent again from the same number reuses its id for as long as WhatsApp keeps uploaded media (30 days; a day
/// is kept in hand).
final class WhatsAppMediaUploads: Sendable {
  private struct Key: Hashable {
    var phone: String
    var path: String
    var size: Int64
    var modified: Double
  }

  private let known = Mutex<[Key: (id: String, expires: Date)]>([:])
  static let lifetime: TimeInterval = 29 * 86_400

  func id(
    for upload: WhatsAppUpload, phone: String, token: GraphToken, graph: GraphAPI, context: CallContext
  ) async throws(SidecarError) -> String {
    let modified =
      ((try? FileManager.default.attributesOfItem(atPath: upload.file.path))?[.modificationDate] as? Date)?
      .timeIntervalSince1970 ?? 0
    let key = Key(phone: phone, path: upload.file.path, size: upload.file.size, modified: modified)
    let now = graph.clock.wallNow()
    if let cached = known.withLock({ $0[key] }), cached.expires > now { return cached.id }
    guard
      let body = MultipartFile.write(
        [("messaging_product", "whatsapp"), ("type", upload.mimeType)], file: "file",
        filename: String(upload.file.path.split(separator: "/").last ?? "file"), contentType: upload.mimeType,
        source: upload.file)
    else {
      throw SidecarError(
        kind: .permanent, message: "The \(upload.kind) file could not be read: \(upload.file.path)",
        platform: "whatsapp", attempts: context.attempts)
    }
    defer { body.remove() }
    // An uploaded file is invisible until a message names it: safe to send again.
    let json = try await graph.send(
      GraphCall(
        "POST", GraphAPI.path(phone, "media"),
        body: .encoded(.file(path: body.path, offset: 0, length: body.size), contentType: body.contentType)),
      token: token, accountId: phone, context: context)
    guard let id = json["id"]?.stringValue ?? json["id"]?.graphID, !id.isEmpty else {
      throw SidecarError(
        kind: .permanent, message: "WhatsApp accepted the \(upload.kind) file but answered no media id.",
        platform: "whatsapp", attempts: context.attempts)
    }
    known.withLock { known in
      known = known.filter { $0.value.expires > now }
      known[key] = (id, now.addingTimeInterval(Self.lifetime))
    }
    return id
  }
}
