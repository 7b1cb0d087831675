extension StringProtocol {
  /// The text without the characters of `set` at either end. FoundationEssentials has no `trimmingCharacters`, and
  /// the modules above this one need only this much of it.
  public func trimmingCharacters(in set: String) -> String {
    let characters = Set(set)
    var slice = Substring(self)
    while let first = slice.first, characters.contains(first) { slice.removeFirst() }
    while let last = slice.last, characters.contains(last) { slice.removeLast() }
    return String(slice)
  }

  /// The text without spaces, tabs and line breaks at either end.
  public var trimmingWhitespace: String { trimmingCharacters(in: " \t\r\n") }
}
