import Foundation
import SidecarMetrics

/// A seeded generator (SplitMix64) so that randomized tests replay exactly.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

extension MetricEvent {
  /// An event with only what a test cares about.
  static func test(
    platform: String = "youtube", operation: String = "post", success: Bool = true, errorKind: String? = nil,
    attempts: Int = 1, durationMs: Double = 100, replayed: Bool = false, customerId: String = "cust-1",
    agentId: String? = "agent-1"
  ) -> MetricEvent {
    MetricEvent(
      customerId: customerId, agentId: agentId, platform: platform, operation: operation, success: success,
      errorKind: errorKind, attempts: attempts, durationMs: durationMs, replayed: replayed)
  }
}

/// A strict reader of Prometheus text exposition, enough to check what the renderer writes.
struct Exposition {
  struct Sample {
    var name: String
    var labels: [String: String]
    var value: Double
  }

  struct Malformed: Error, CustomStringConvertible {
    var line: String
    var description: String { "malformed exposition line: \(line)" }
  }

  var help: [String: String] = [:]
  var type: [String: String] = [:]
  var samples: [Sample] = []

  init(_ text: String) throws {
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
      if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
        let parts = line.split(separator: " ", maxSplits: 3)
        guard parts.count == 4 else { throw Malformed(line: String(line)) }
        if parts[1] == "HELP" {
          help[String(parts[2])] = String(parts[3])
        } else {
          type[String(parts[2])] = String(parts[3])
        }
      } else {
        samples.append(try Self.sample(Substring(line)))
      }
    }
  }

  /// The family a sample belongs to (histogram series carry suffixes).
  func family(of sample: Sample) -> String {
    for suffix in ["_bucket", "_sum", "_count"] where sample.name.hasSuffix(suffix) {
      let base = String(sample.name.dropLast(suffix.count))
      if type[base] == "histogram" { return base }
    }
    return sample.name
  }

  func value(_ name: String, _ labels: [String: String]) -> Double? {
    samples.first { $0.name == name && $0.labels == labels }?.value
  }

  private static func sample(_ line: Substring) throws -> Sample {
    var rest = line[...]
    guard let nameEnd = rest.firstIndex(where: { $0 == "{" || $0 == " " }) else { throw Malformed(line: String(line)) }
    let name = String(rest[..<nameEnd])
    rest = rest[nameEnd...]
    var labels: [String: String] = [:]
    if rest.first == "{" {
      rest = rest.dropFirst()
      while rest.first != "}" {
        guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)...].first == "\"" else {
          throw Malformed(line: String(line))
        }
        let label = String(rest[..<equals])
        rest = rest[rest.index(equals, offsetBy: 2)...]
        var value = ""
        while let character = rest.first, character != "\"" {
          rest = rest.dropFirst()
          if character == "\\" {
            switch rest.first {
            case "\\": value.append("\\")
            case "\"": value.append("\"")
            case "n": value.append("\n")
            default: throw Malformed(line: String(line))
            }
            rest = rest.dropFirst()
          } else {
            guard character != "\n" else { throw Malformed(line: String(line)) }
            value.append(character)
          }
        }
        guard rest.first == "\"", labels[label] == nil else { throw Malformed(line: String(line)) }
        labels[label] = value
        rest = rest.dropFirst()
        if rest.first == "," { rest = rest.dropFirst() }
      }
      rest = rest.dropFirst()
    }
    guard rest.first == " " else { throw Malformed(line: String(line)) }
    let text = rest.dropFirst()
    guard let value = text == "+Inf" ? Double.infinity : Double(text) else { throw Malformed(line: String(line)) }
    return Sample(name: name, labels: labels, value: value)
  }
}

/// Runs `prometheus_parse_check.py` (next to this file) with the real `prometheus_client` parser.
enum PythonCheck {
  static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("prometheus_parse_check.py")

  /// Whether `python3` can import `prometheus_client` here (CI installs it; see the report in the commit).
  static let isAvailable: Bool = (try? run(["-c", "import prometheus_client"], input: ""))?.status == 0

  /// CI sets this so that a missing parser fails the run instead of skipping the check.
  static let isRequired = ProcessInfo.processInfo.environment["SIDECAR_REQUIRE_PROMETHEUS_CHECK"] == "1"

  static func check(_ text: String, expecting samples: [String]) throws -> (status: Int32, output: String) {
    try run([script.path] + samples, input: text)
  }

  private static func run(_ arguments: [String], input: String) throws -> (status: Int32, output: String) {
    let inputFile = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
    try Data(input.utf8).write(to: inputFile)
    defer { try? FileManager.default.removeItem(at: inputFile) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    process.standardInput = try FileHandle(forReadingFrom: inputFile)
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
  }
}
