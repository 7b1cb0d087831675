import Foundation
import SidecarJSON
import SidecarPlatforms
import Testing

@testable import SidecarServer

/// The endpoint defaults are written once, in `PlatformEndpoints`; every copy in the protocol and the docs is held to
/// the values the sidecar actually runs with.
@Suite("Endpoint defaults: one source, every copy agrees")
struct EndpointDefaultsTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..")

  static func read(_ path: String) throws -> String {
    try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
  }

  @Test("initialize.params.schema.json gives every endpoint key the sidecar's default")
  func schema() throws {
    let configuration = SidecarConfiguration()
    let expected = [
      "platforms.facebook.baseUrl": configuration.facebook.baseURL,
      "platforms.facebook.apiVersion": configuration.facebook.apiVersion,
      "platforms.instagram.baseUrl": configuration.instagram.baseURL,
      "platforms.instagram.apiVersion": configuration.instagram.apiVersion,
      "platforms.instagram.loginBaseUrl": configuration.instagramLoginBaseURL,
      "platforms.whatsapp.baseUrl": configuration.whatsapp.baseURL,
      "platforms.whatsapp.apiVersion": configuration.whatsapp.apiVersion,
      "platforms.youtube.baseUrl": configuration.youtube.baseURL,
      "platforms.youtube.uploadUrl": configuration.youtubeUploadURL,
      "platforms.youtube.tokenUrl": configuration.youtubeTokenURL,
      "platforms.linkedin.baseUrl": configuration.linkedin.baseURL,
      "platforms.linkedin.apiVersion": configuration.linkedin.apiVersion,
      "platforms.linkedin.tokenUrl": configuration.linkedinTokenURL,
    ]
    let schema = try JSONParser.parse(Self.read("protocol/schemas/initialize.params.schema.json"))
    guard case .object(let definitions)? = schema["$defs"] else {
      Issue.record("the schema has no $defs")
      return
    }
    var documented: [String: String] = [:]
    for (name, leaf) in definitions where name.hasPrefix("leaf.platforms.") {
      if let value = leaf["default"]?.stringValue { documented[String(name.dropFirst("leaf.".count))] = value }
    }
    #expect(documented == expected)
  }

  @Test("PROTOCOL.md's configuration table names the sidecar's defaults")
  func protocolTable() throws {
    let configuration = SidecarConfiguration()
    let expected = [
      "platforms.<platform>.baseUrl":
        "`\(configuration.facebook.baseURL)` (facebook, instagram, whatsapp), `\(configuration.youtube.baseURL)` "
        + "(youtube), `\(configuration.linkedin.baseURL)` (linkedin)",
      "platforms.<platform>.apiVersion":
        "`\(configuration.facebook.apiVersion)` (Graph), `\(configuration.linkedin.apiVersion)` (LinkedIn)",
      "platforms.instagram.loginBaseUrl": "`\(configuration.instagramLoginBaseURL)`",
      "platforms.youtube.uploadUrl": "`\(configuration.youtubeUploadURL)`",
      "platforms.youtube.tokenUrl": "`\(configuration.youtubeTokenURL)`",
      "platforms.linkedin.tokenUrl": "`\(configuration.linkedinTokenURL)`",
    ]
    #expect(
      [configuration.instagram.baseURL, configuration.whatsapp.baseURL].allSatisfy {
        $0 == configuration.facebook.baseURL
      })
    #expect(
      [configuration.instagram.apiVersion, configuration.whatsapp.apiVersion].allSatisfy {
        $0 == configuration.facebook.apiVersion
      })
    // A row is `| `key` | default | meaning |`; keys may hold an escaped `\|`, never ` | `.
    var rows: [String: String] = [:]
    for line in try Self.read("protocol/PROTOCOL.md").split(separator: "\n") where line.hasPrefix("| `platforms.") {
      let cells = line.components(separatedBy: " | ")
      rows[String(cells[0].dropFirst("| `".count).dropLast())] = cells[1]
    }
    for (key, cell) in expected {
      #expect(rows[key] == cell, "\(key)")
    }
  }

  @Test("The publishing benchmark's own stacks call the Graph version the sidecar calls by default")
  func benchmarks() throws {
    let graphPath = try Regex(#"/v[0-9]+\.[0-9]+/"#)
    for path in ["Benchmarks/publishing/driver.py", "scripts/bench"] {
      let text = try Self.read(path)
      let versions = Set(text.matches(of: graphPath).map { String(text[$0.range]) })
      #expect(versions == ["/\(PlatformEndpoints.defaultGraphVersion)/"], "\(path)")
    }
  }

  @Test("The platform docs quote the default versions they explain")
  func platformDocs() throws {
    let meta = try Self.read("docs/platforms/meta.md").replacingOccurrences(of: "\n", with: " ")
    #expect(meta.contains("(`\(PlatformEndpoints.defaultGraphVersion)` for SDK"))
    let linkedin = try Self.read("docs/platforms/linkedin.md")
    let version = PlatformEndpoints.defaultLinkedInVersion
    #expect(linkedin.contains("Default: `\(version)` (`PlatformEndpoints.defaultLinkedInVersion`)"))
  }
}
