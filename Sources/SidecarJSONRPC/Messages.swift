import SidecarJSON

/// A JSON-RPC id: a string or an integer, echoed back with the type it arrived with.
public enum RequestID: Hashable, Sendable, CustomStringConvertible {
  case int(Int)
  case string(String)

  /// Reads an id from a message; `nil` when the value is not a valid id (null, fractional, other types).
  public init?(_ value: JSONValue) {
    switch value {
    case .int(let number): self = .int(number)
    case .string(let text): self = .string(text)
    default: return nil
    }
  }

  public var json: JSONValue {
    switch self {
    case .int(let number): .int(number)
    case .string(let text): .string(text)
    }
  }

  public var description: String {
    switch self {
    case .int(let number): String(number)
    case .string(let text): text
    }
  }
}

/// A JSON-RPC error object. Codes are open-ended integers; the standard ones are static members.
public struct JSONRPCError: Error, Sendable, Equatable, CustomStringConvertible {
  public var code: Int
  public var message: String
  public var data: JSONValue?

  public init(code: Int, message: String, data: JSONValue? = nil) {
    self.code = code
    self.message = message
    self.data = data
  }

  public var description: String { "\(code) \(message)" }

  /// The codes the JSON-RPC layer itself answers with (protocol/error-kinds.json is their table; the application codes
  /// of the platform calls are `SidecarResilience.ErrorKind`'s).
  public enum Code {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    /// LSP: a request before `initialize`.
    public static let serverNotInitialized = -32002
    /// LSP: the request was cancelled (`$/cancelRequest`, shutdown).
    public static let requestCancelled = -32800
    /// The application code `overloaded`: the connection refuses a request beyond `limits.maxInFlight` itself.
    public static let overloaded = -31012
  }

  public var json: JSONValue {
    var object: [String: JSONValue] = ["code": .int(code), "message": .string(message)]
    if let data { object["data"] = data }
    return .object(object)
  }

  public static func parseError(_ reason: String) -> JSONRPCError {
    JSONRPCError(
      code: Code.parseError, message: "Parse error: \(reason)",
      data: ["kind": "parse_error", "reason": .string(reason)])
  }

  public static func invalidRequest(_ reason: String, data: JSONValue? = nil) -> JSONRPCError {
    JSONRPCError(
      code: Code.invalidRequest, message: "Invalid Request: \(reason)",
      data: data ?? ["kind": "invalid_request", "reason": .string(reason)])
  }

  public static func methodNotFound(_ method: String) -> JSONRPCError {
    JSONRPCError(
      code: Code.methodNotFound, message: "Method not found: \(method)",
      data: ["kind": "method_not_found", "method": .string(method)])
  }

  /// Invalid params, naming the field at fault so a person can fix the call.
  public static func invalidParams(_ reason: String, field: String? = nil) -> JSONRPCError {
    var data: [String: JSONValue] = ["kind": "invalid_params", "reason": .string(reason)]
    if let field { data["field"] = .string(field) }
    return JSONRPCError(code: Code.invalidParams, message: "Invalid params: \(reason)", data: .object(data))
  }

  public static func internalError(_ reason: String) -> JSONRPCError {
    JSONRPCError(
      code: Code.internalError, message: "Internal error: \(reason)",
      data: ["kind": "internal", "reason": .string(reason)])
  }

  public static let serverNotInitialized = JSONRPCError(
    code: Code.serverNotInitialized, message: "Server not initialized: send initialize first",
    data: ["kind": "server_not_initialized"])

  public static let requestCancelled = JSONRPCError(
    code: Code.requestCancelled, message: "Request cancelled", data: ["kind": "cancelled"])
}

enum MessageEncoding {
  static func response(id: RequestID?, result: JSONValue) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(192)  // a `health` answer, the most frequent, fits without growing
    bytes.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
    (id?.json ?? .null).write(to: &bytes)
    bytes.append(contentsOf: #","result":"#.utf8)
    result.write(to: &bytes)
    bytes.append(UInt8(ascii: "}"))
    return bytes
  }

  static func error(id: RequestID?, error: JSONRPCError) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
    (id?.json ?? .null).write(to: &bytes)
    bytes.append(contentsOf: #","error":"#.utf8)
    error.json.write(to: &bytes)
    bytes.append(UInt8(ascii: "}"))
    return bytes
  }

  static func request(id: RequestID, method: String, params: JSONValue?) -> [UInt8] {
    var object: [String: JSONValue] = ["jsonrpc": "2.0", "id": id.json, "method": .string(method)]
    if let params { object["params"] = params }
    return JSONValue.object(object).serialized()
  }

  static func notification(method: String, params: JSONValue?) -> [UInt8] {
    var object: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
    if let params { object["params"] = params }
    return JSONValue.object(object).serialized()
  }
}
