import Foundation
import SidecarJSON
import Testing

@testable import SidecarJSONRPC

@Suite("JSON-RPC error codes")
struct ErrorCodeTableTests {
  /// `data.kind` → code, from `protocol/error-kinds.json`, the error table's one source.
  static func codes() throws -> [String: Int] {
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../protocol/error-kinds.json")
    let table = try JSONParser.parse(Data(contentsOf: source))
    var codes: [String: Int] = [:]
    for entry in table["application"]?.arrayValue ?? [] {
      codes[entry["kind"]?.stringValue ?? ""] = entry["code"]?.intValue
    }
    for entry in table["standard"]?.arrayValue ?? [] {
      guard case .object(let kinds)? = entry["kinds"] else { continue }
      for kind in kinds.keys { codes[kind] = entry["code"]?.intValue }
    }
    return codes
  }

  @Test("the layer's own answers carry the codes of protocol/error-kinds.json")
  func theLayersOwnAnswersCarryTheCodesOfProtocolErrorKindsJSON() throws {
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
