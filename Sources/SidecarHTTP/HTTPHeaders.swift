/// Ordered header fields as they travel; names compare case-insensitively because HTTP/1.1 keeps the
/// sender's spelling while HTTP/2 lowercases everything.
public struct HTTPHeaders: Sendable, Sequence, Equatable, ExpressibleByDictionaryLiteral {
  public typealias Element = (name: String, value: String)

  private var fields: [Field] = []

  fileprivate struct Field: Sendable, Equatable {
    var name: String
    var value: String
  }

  public init() {}

  public init(_ pairs: [(String, String)]) {
    fields = pairs.map { Field(name: $0.0, value: $0.1) }
  }

  public init(dictionaryLiteral elements: (String, String)...) {
    self.init(elements)
  }

  public var count: Int { fields.count }
  public var isEmpty: Bool { fields.isEmpty }

  /// The first value for `name`. Setting replaces every field of that name (nil removes them).
  public subscript(name: String) -> String? {
    get { fields.first { Self.sameName($0.name, name) }?.value }
    set {
      guard let newValue else {
        remove(name: name)
        return
      }
      if let index = fields.firstIndex(where: { Self.sameName($0.name, name) }) {
        fields[index].value = newValue
        var later = fields.index(after: index)
        while later < fields.endIndex {
          if Self.sameName(fields[later].name, name) { fields.remove(at: later) } else { later += 1 }
        }
      } else {
        fields.append(Field(name: name, value: newValue))
      }
    }
  }

  /// Every value for `name`, in order (e.g. several `Set-Cookie` or `Link` fields).
  public func values(for name: String) -> [String] {
    fields.filter { Self.sameName($0.name, name) }.map(\.value)
  }

  /// Appends a field, keeping any existing ones of the same name.
  public mutating func add(name: String, value: String) {
    fields.append(Field(name: name, value: value))
  }

  public mutating func remove(name: String) {
    fields.removeAll { Self.sameName($0.name, name) }
  }

  public func contains(_ name: String) -> Bool {
    fields.contains { Self.sameName($0.name, name) }
  }

  public func makeIterator() -> Iterator {
    Iterator(base: fields.makeIterator())
  }

  public struct Iterator: IteratorProtocol {
    fileprivate var base: IndexingIterator<[Field]>
    public mutating func next() -> Element? {
      base.next().map { (name: $0.name, value: $0.value) }
    }
  }

  /// ASCII case-insensitive comparison without allocating (header names are tokens, hence ASCII).
  static func sameName(_ a: String, _ b: String) -> Bool {
    var left = a.utf8.makeIterator()
    var right = b.utf8.makeIterator()
    while true {
      switch (left.next(), right.next()) {
      case (nil, nil): return true
      case (let x?, let y?):
        if x != y && lowercased(x) != lowercased(y) { return false }
      default: return false
      }
    }
  }

  private static func lowercased(_ byte: UInt8) -> UInt8 {
    byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
  }
}

extension HTTPHeaders: CustomStringConvertible {
  /// Names only: values may carry credentials (`Authorization`, cookies) and must stay out of logs.
  public var description: String {
    "HTTPHeaders(" + fields.map(\.name).joined(separator: ", ") + ")"
  }
}
