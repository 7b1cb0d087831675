import SidecarJSON
import Testing

@Suite("JSON parser and serializer")
struct JSONTests {
  @Test("Parses every JSON type and keeps integers apart from doubles")
  func parsesAllTypes() throws {
    let value = try JSONParser.parse(#"{"a":[1,-2,3.5,1e3,true,false,null],"b":"x\"y\u00e9\ud83d\ude00","c":{}}"#)
    #expect(value["a"] == [.int(1), .int(-2), .double(3.5), .double(1000), true, false, nil])
    #expect(value["b"] == .string("x\"yé😀"))
    #expect(value["c"] == .object([:]))
  }

  @Test(
    "Rejects what RFC 8259 rejects",
    arguments: [
      "", "{", "[1,]", "{\"a\":1,}", "01", "-", "1.", "1e", "\"\\x\"", "\"\u{01}\"", "tru", "nul", "[1 2]",
      "{\"a\" 1}", "\"\\ud800\"", "\"\\udc00\"", "{} {}", "'a'", "NaN", "1e999",
    ])
  func rejectsInvalid(_ text: String) {
    #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
  }

  @Test("Rejects invalid UTF-8 inside strings")
  func rejectsInvalidUTF8() {
    let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]
    #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
  }

  @Test("Bounds nesting depth instead of overflowing the stack")
  func boundsDepth() {
    let deep = String(repeating: "[", count: 100_000)
    #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    let ok = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
    #expect((try? JSONParser.parse(ok)) != nil)
  }

  @Test("Serializes compactly with sorted keys, escaping control characters")
  func serializes() {
    let value: JSONValue = ["z": 1, "a": ["x\n\"\u{01}", 2.5, nil, .double(.nan)], "m": true]
    #expect(value.jsonString == #"{"a":["x\n\"\u0001",2.5,null,null],"m":true,"z":1}"#)
  }

  @Test("Round-trips through serialize and parse")
  func roundTrips() throws {
    let value: JSONValue = ["id": "abc", "n": -42, "big": .int(Int.max), "d": 0.1, "nested": [["é": "😀"]]]
    #expect(try JSONParser.parse(value.serialized()) == value)
  }

  @Test("Integers serialize exactly, including the extremes", arguments: [0, 7, -1, 10, -105, Int.max, Int.min])
  func integers(_ value: Int) {
    #expect(JSONValue.int(value).jsonString == String(value))
  }

  @Test("Integers beyond Int range become doubles rather than failing")
  func hugeIntegers() throws {
    #expect(try JSONParser.parse("123456789012345678901234567890") == .double(123456789012345678901234567890.0))
  }
}
