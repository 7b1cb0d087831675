import SidecarJSON

/// Content a platform cannot take, refused before any request is made (JSON-RPC -32602).
public struct InvalidParams: Error, Sendable, Equatable, CustomStringConvertible {
  /// The param at fault, as named on the wire (`items[2].imageUrl`), when there is one.
  public var field: String?
  /// A sentence a person understands: what is wrong and what would be right.
  public var reason: String

  public init(_ reason: String, field: String? = nil) {
    self.reason = reason
    self.field = field
  }

  public var description: String { reason }
}

/// Reads request params with precise errors, and refuses unknown names so that a typo (`captoin`) fails loudly
/// instead of publishing a post without its caption.
public struct Params: Sendable {
  public let values: [String: JSONValue]
  private let prefix: String

  public init(_ values: [String: JSONValue], prefix: String = "") {
    self.values = values
    self.prefix = prefix
  }

  public init(_ json: JSONValue?) throws(InvalidParams) {
    switch json {
    case nil, .null?: self.init([:])
    case .object(let members)?: self.init(members)
    default: throw InvalidParams("params must be an object with named fields")
    }
  }

  public func name(_ key: String) -> String { prefix + key }

  public func has(_ key: String) -> Bool {
    if let value = values[key], value != .null { return true }
    return false
  }

  /// Refuses any key not in `known`, naming the first one.
  public func rejectUnknown(_ known: Set<String>, context: String) throws(InvalidParams) {
    for key in values.keys.sorted() where !known.contains(key) {
      throw InvalidParams("unknown param `\(name(key))` for \(context)", field: name(key))
    }
  }

  public func string(_ key: String, maxLength: Int? = nil) throws(InvalidParams) -> String? {
    guard let value = values[key], value != .null else { return nil }
    guard case .string(let text) = value else {
      throw InvalidParams("`\(name(key))` must be a string, got \(value.typeName)", field: name(key))
    }
    if let maxLength, text.count > maxLength {
      throw InvalidParams(
        "`\(name(key))` is \(text.count) characters; the limit is \(maxLength)", field: name(key))
    }
    return text
  }

  public func requiredString(_ key: String, maxLength: Int? = nil) throws(InvalidParams) -> String {
    guard let text = try string(key, maxLength: maxLength), !text.isEmpty else {
      throw InvalidParams("`\(name(key))` is required", field: name(key))
    }
    return text
  }

  public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(InvalidParams) -> Int? {
    guard let value = values[key], value != .null else { return nil }
    guard case .int(let number) = value else {
      throw InvalidParams("`\(name(key))` must be an integer, got \(value.typeName)", field: name(key))
    }
    if let range, !range.contains(number) {
      throw InvalidParams(
        "`\(name(key))` must be between \(range.lowerBound) and \(range.upperBound), got \(number)", field: name(key))
    }
    return number
  }

  /// A number (integer or not) within `range`.
  public func number(_ key: String, in range: ClosedRange<Double>) throws(InvalidParams) -> Double? {
    guard let value = values[key], value != .null else { return nil }
    guard let number = value.doubleValue else {
      throw InvalidParams("`\(name(key))` must be a number, got \(value.typeName)", field: name(key))
    }
    guard range.contains(number) else {
      throw InvalidParams(
        "`\(name(key))` must be between \(range.lowerBound) and \(range.upperBound), got \(number)", field: name(key))
    }
    return number
  }

  public func requiredNumber(_ key: String, in range: ClosedRange<Double>) throws(InvalidParams) -> Double {
    guard let number = try number(key, in: range) else {
      throw InvalidParams("`\(name(key))` is required", field: name(key))
    }
    return number
  }

  public func bool(_ key: String) throws(InvalidParams) -> Bool? {
    guard let value = values[key], value != .null else { return nil }
    guard case .bool(let flag) = value else {
      throw InvalidParams("`\(name(key))` must be true or false, got \(value.typeName)", field: name(key))
    }
    return flag
  }

  public func stringArray(_ key: String) throws(InvalidParams) -> [String]? {
    guard let value = values[key], value != .null else { return nil }
    guard case .array(let elements) = value else {
      throw InvalidParams("`\(name(key))` must be an array of strings, got \(value.typeName)", field: name(key))
    }
    var strings: [String] = []
    for (index, element) in elements.enumerated() {
      guard case .string(let text) = element else {
        throw InvalidParams("`\(name(key))[\(index)]` must be a string", field: "\(name(key))[\(index)]")
      }
      strings.append(text)
    }
    return strings
  }

  public func object(_ key: String) throws(InvalidParams) -> Params? {
    guard let value = values[key], value != .null else { return nil }
    guard case .object(let members) = value else {
      throw InvalidParams("`\(name(key))` must be an object, got \(value.typeName)", field: name(key))
    }
    return Params(members, prefix: name(key) + ".")
  }

  public func objectArray(_ key: String) throws(InvalidParams) -> [Params]? {
    guard let value = values[key], value != .null else { return nil }
    guard case .array(let elements) = value else {
      throw InvalidParams("`\(name(key))` must be an array of objects, got \(value.typeName)", field: name(key))
    }
    var result: [Params] = []
    for (index, element) in elements.enumerated() {
      guard case .object(let members) = element else {
        throw InvalidParams("`\(name(key))[\(index)]` must be an object", field: "\(name(key))[\(index)]")
      }
      result.append(Params(members, prefix: "\(name(key))[\(index)]."))
    }
    return result
  }

  /// A `oneOf` string param with a default.
  public func choice(_ key: String, _ choices: [String], default fallback: String? = nil) throws(InvalidParams)
    -> String?
  {
    guard let text = try string(key) else { return fallback }
    guard choices.contains(text) else {
      throw InvalidParams(
        "`\(name(key))` must be one of \(choices.joined(separator: ", ")), got \(text)", field: name(key))
    }
    return text
  }
}
