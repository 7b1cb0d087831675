import Foundation
import SidecarMetrics
import Testing

@Suite("metrics/prometheus text exposition")
struct PrometheusTextTests {
  static let families: [String: String] = [
    "social_sidecar_operations_total": "counter",
    "social_sidecar_errors_total": "counter",
    "social_sidecar_retries_total": "counter",
    "social_sidecar_not_permitted_total": "counter",
    "social_sidecar_rate_limit_waits_total": "counter",
    "social_sidecar_replays_total": "counter",
    "social_sidecar_breaker_opens_total": "counter",
    "social_sidecar_operation_duration_seconds": "histogram",
    "social_sidecar_breaker_state": "gauge",
  ]

  /// A scrape after a known sequence of calls: what each counter must show.
  static func populated() -> MetricsAggregator {
    let aggregator = MetricsAggregator()
    for duration in [0.4, 3, 40, 180, 180, 900, 4_000, 45_000, 130_000] {
      aggregator.record(.test(durationMs: duration))
    }
    aggregator.record(.test(success: false, errorKind: "permanent", durationMs: 95))
    aggregator.record(.test(success: false, errorKind: "permanent", durationMs: 120))
    aggregator.record(
      .test(platform: "linkedin", success: false, errorKind: "circuit_open", attempts: 0, durationMs: 0))
    aggregator.record(
      .test(platform: "linkedin", success: false, errorKind: "circuit_open", attempts: 0, durationMs: 0))
    aggregator.record(.test(platform: "linkedin", operation: "validate", durationMs: 300, replayed: true))
    aggregator.recordNotPermitted(platform: "linkedin", operation: "post")
    aggregator.recordNotPermitted(platform: "linkedin", operation: "post")
    aggregator.recordRetries(platform: "youtube", operation: "post", count: 4)
    aggregator.recordRetries(platform: "youtube", operation: "post", count: 2)
    aggregator.recordRateLimitWait(platform: "youtube", operation: "post")
    aggregator.recordBreakerOpened(platform: "linkedin")
    return aggregator
  }

  static let states = ["linkedin": "OPEN", "youtube": "CLOSED", "facebook": "HALF_OPEN"]

  @Test("Every family has HELP and TYPE, even before any call, and every sample belongs to one")
  func helpAndType() throws {
    for aggregator in [MetricsAggregator(), Self.populated()] {
      let text = aggregator.prometheusText(breakerStates: Self.states)
      let exposition = try Exposition(text)
      #expect(exposition.type == Self.families)
      #expect(Set(exposition.help.keys) == Set(Self.families.keys))
      #expect(exposition.help.values.allSatisfy { !$0.isEmpty })
      for sample in exposition.samples {
        #expect(Self.families[exposition.family(of: sample)] != nil, "stray sample \(sample.name)")
      }
      #expect(text.hasSuffix("\n"))
    }
    #expect(PrometheusText.contentType == "text/plain; version=1.0.0; charset=utf-8")
  }

  @Test("Counters equal the calls made")
  func counters() throws {
    let exposition = try Exposition(Self.populated().prometheusText(breakerStates: Self.states))
    let youtube = ["platform": "youtube", "operation": "post"]
    let linkedin = ["platform": "linkedin", "operation": "post"]
    let expected: [(String, [String: String], Double)] = [
      ("social_sidecar_operations_total", youtube.merging(["outcome": "success"]) { $1 }, 9),
      ("social_sidecar_operations_total", youtube.merging(["outcome": "failure"]) { $1 }, 2),
      ("social_sidecar_operations_total", linkedin.merging(["outcome": "success"]) { $1 }, 0),
      ("social_sidecar_operations_total", linkedin.merging(["outcome": "failure"]) { $1 }, 2),
      ("social_sidecar_errors_total", youtube.merging(["kind": "permanent"]) { $1 }, 2),
      ("social_sidecar_errors_total", linkedin.merging(["kind": "circuit_open"]) { $1 }, 2),
      ("social_sidecar_retries_total", youtube, 6),
      ("social_sidecar_rate_limit_waits_total", youtube, 1),
      ("social_sidecar_not_permitted_total", linkedin, 2),
      ("social_sidecar_replays_total", ["platform": "linkedin", "operation": "validate"], 1),
      ("social_sidecar_breaker_opens_total", ["platform": "linkedin"], 1),
      ("social_sidecar_operation_duration_seconds_count", youtube, 11),
      ("social_sidecar_operation_duration_seconds_count", ["platform": "linkedin", "operation": "validate"], 0),
    ]
    for (name, labels, value) in expected {
      #expect(exposition.value(name, labels) == value, "\(name)\(labels)")
    }
    let sum = try #require(exposition.value("social_sidecar_operation_duration_seconds_sum", youtube))
    #expect(abs(sum - 180.5184) < 1e-9)
  }

  @Test("Histogram buckets are in seconds, cumulative and monotone, and +Inf equals _count")
  func histogram() throws {
    let exposition = try Exposition(Self.populated().prometheusText(breakerStates: [:]))
    let buckets = exposition.samples.filter {
      $0.name == "social_sidecar_operation_duration_seconds_bucket" && $0.labels["platform"] == "youtube"
    }
    let bounds = buckets.map { Double($0.labels["le"]!) ?? ($0.labels["le"] == "+Inf" ? .infinity : .nan) }
    #expect(bounds == DurationHistogram.upperBoundsMs.map { $0 / 1000 } + [.infinity])
    // 0.4, 3, 40, 95, 120, 180, 180, 900, 4000, 45000, 130000 ms against 1, 2.5, 5, 10, 25, 50, 100, 250, … ms.
    #expect(buckets.map(\.value) == [1, 1, 2, 2, 2, 3, 4, 7, 7, 8, 8, 9, 9, 9, 9, 10, 10, 11])
    #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.value <= $1.value })
    let youtube = ["platform": "youtube", "operation": "post"]
    #expect(buckets.last?.value == exposition.value("social_sidecar_operation_duration_seconds_count", youtube))
  }

  @Test("Label values escape backslash, double quote and newline")
  func escaping() throws {
    let platform = "we\"ird\\plat\nform"
    let aggregator = MetricsAggregator()
    aggregator.record(.test(platform: platform, success: false, errorKind: "a\\\"b"))
    let text = aggregator.prometheusText(breakerStates: [platform: "OPEN"])
    #expect(
      text.contains(#"social_sidecar_errors_total{platform="we\"ird\\plat\nform",operation="post",kind="a\\\"b"} 1"#))
    #expect(PrometheusText.escapeLabelValue("plain") == "plain")
    let exposition = try Exposition(text)
    #expect(exposition.value("social_sidecar_breaker_state", ["platform": platform, "state": "OPEN"]) == 1)
  }

  @Test("Customers and agents never become labels; only bounded label names appear")
  func boundedLabels() throws {
    let aggregator = MetricsAggregator()
    aggregator.record(.test(customerId: "cust-SECRET-42", agentId: "agent-SECRET-7"))
    let text = aggregator.prometheusText(breakerStates: ["youtube": "CLOSED"])
    #expect(!text.contains("SECRET"))
    let names = Set(try Exposition(text).samples.flatMap(\.labels.keys))
    #expect(names.isSubset(of: ["platform", "operation", "outcome", "kind", "state", "le"]))
  }

  @Test("The breaker gauge shows 1 for the current state and 0 for the others")
  func breakerGauge() throws {
    let exposition = try Exposition(MetricsAggregator().prometheusText(breakerStates: Self.states))
    for (platform, current) in Self.states {
      for state in ["CLOSED", "OPEN", "HALF_OPEN"] {
        let value = exposition.value("social_sidecar_breaker_state", ["platform": platform, "state": state])
        #expect(value == (state == current ? 1 : 0), "\(platform) \(state)")
      }
    }
  }

  @Test("The scrape does not grow with the number of events")
  func constantSize() {
    let aggregator = MetricsAggregator()
    for index in 0..<10 { aggregator.record(.test(durationMs: Double(index))) }
    let small = aggregator.prometheusText(breakerStates: [:]).split(separator: "\n").count
    for index in 0..<20_000 { aggregator.record(.test(success: index % 2 == 0, durationMs: Double(index % 700))) }
    let large = aggregator.prometheusText(breakerStates: [:]).split(separator: "\n").count
    #expect(large == small + 1)  // the first failure adds its errors_total line, nothing else
  }

  @Test(
    "The official Python parser (prometheus_client) accepts the text and reads the same counters",
    .enabled(if: PythonCheck.isAvailable || PythonCheck.isRequired, "python3 with prometheus_client not found"))
  func pythonParser() throws {
    let text = Self.populated().prometheusText(breakerStates: Self.states)
    let result = try PythonCheck.check(
      text,
      expecting: [
        #"social_sidecar_operations_total{platform="youtube",operation="post",outcome="success"} 9"#,
        #"social_sidecar_operations_total{platform="youtube",operation="post",outcome="failure"} 2"#,
        #"social_sidecar_errors_total{platform="linkedin",operation="post",kind="circuit_open"} 2"#,
        #"social_sidecar_retries_total{platform="youtube",operation="post"} 6"#,
        #"social_sidecar_not_permitted_total{platform="linkedin",operation="post"} 2"#,
        #"social_sidecar_rate_limit_waits_total{platform="youtube",operation="post"} 1"#,
        #"social_sidecar_breaker_opens_total{platform="linkedin"} 1"#,
        #"social_sidecar_operation_duration_seconds_count{platform="youtube",operation="post"} 11"#,
        #"social_sidecar_operation_duration_seconds_bucket{platform="youtube",operation="post",le="+Inf"} 11"#,
        #"social_sidecar_breaker_state{platform="linkedin",state="OPEN"} 1"#,
      ])
    #expect(result.status == 0, "\(result.output)")

    let escaped = MetricsAggregator()
    escaped.record(.test(platform: "we\"ird\\plat\nform"))
    let escapedResult = try PythonCheck.check(
      escaped.prometheusText(breakerStates: [:]),
      expecting: [
        #"social_sidecar_operations_total{platform="we\"ird\\plat\nform",operation="post",outcome="success"} 1"#
      ])
    #expect(escapedResult.status == 0, "\(escapedResult.output)")
  }

  @Test(
    "The Python check fails on broken text and on a wrong expected value",
    .enabled(if: PythonCheck.isAvailable || PythonCheck.isRequired, "python3 with prometheus_client not found"))
  func pythonCheckCanFail() throws {
    let good = Self.populated().prometheusText(breakerStates: [:])
    let broken = [
      good.replacingOccurrences(of: "# HELP social_sidecar_retries_total", with: "# no help"),
      good.replacingOccurrences(of: #"le="+Inf"} 11"#, with: #"le="+Inf"} 10"#),
      good + "social_sidecar_operations_total{platform=\"x\" 1\n",
    ]
    for text in broken {
      #expect(try PythonCheck.check(text, expecting: []).status == 1)
    }
    let wrong = #"social_sidecar_retries_total{platform="youtube",operation="post"} 7"#
    #expect(try PythonCheck.check(good, expecting: [wrong]).status == 1)
  }
}
