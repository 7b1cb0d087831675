import Foundation
import SidecarJSON
import Testing

@testable import SidecarJSONRPC

@Suite struct ErrorCodeTableTests {
  /// `data.kind` → code, from `protocol/error-kinds.json`, the error table's one source.
  static func codes() throws -> [String: Int] {
    struct Table: Decodable {
      struct Application: Decodable {
        let code: Int
        let kind: String
      }
      struct Standard: Decodable {
        let code: Int
        let kinds: [String: Bool]
      }
      let application: [Application]
      let standard: [Standard]
    }
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../protocol/error-kinds.json")
    let table = try JSONDecoder().decode(Table.self, from: Data(contentsOf: source))
    let standard = table.standard.flatMap { entry in entry.kinds.keys.map { ($0, entry.code) } }
    return Dictionary(uniqueKeysWithValues: standard + table.application.map { ($0.kind, $0.code) })
  }

  @Test func theLayersOwnAnswersCarryTheCodesOfProtocolErrorKindsJSON() throws {
    let codes = try Self.codes()
    let answers: [JSONRPCError] = [
      .parseError("x"), .invalidRequest("x"), .methodNotFound("x"), .invalidParams("x"), .internalError("x"),
      .serverNotInitialized, .requestCancelled,
    ]
    for answer in answers {
      let kind = answer.data?["kind"]?.stringValue ?? "none"
      #expect(codes[kind] == answer.code, "\(kind)")
    }
    #expect(codes["bad_framing"] == JSONRPCError.Code.parseError)
    #expect(codes["frame_too_large"] == JSONRPCError.Code.invalidRequest)
    #expect(codes["overloaded"] == JSONRPCError.Code.overloaded)
  }
}
