import Foundation
import SidecarJSON
import SidecarMetrics
import Testing

@Suite("Metrics aggregation and metrics/snapshot")
struct MetricsAggregatorTests {
  /// What the test fed one (platform, operation) series, to compare with the snapshot.
  struct Truth {
    var success = 0
    var failure = 0
    var retries = 0
    var notPermitted = 0
    var rateLimitWaits = 0
    var errors: [String: Int] = [:]
    var durations: [Double] = []
  }

  /// The closed interval of the histogram bucket holding `ms`, as Prometheus `le` assigns it.
  static func bucket(of ms: Double) -> ClosedRange<Double> {
    let bounds = DurationHistogram.upperBoundsMs
    guard let index = bounds.firstIndex(where: { ms <= $0 }) else { return bounds.last!...Double.infinity }
    return (index == 0 ? 0 : bounds[index - 1])...bounds[index]
  }

  /// The nearest-rank quantile: the ⌈q·n⌉-th smallest value.
  static func nearestRank(_ quantile: Double, _ sorted: [Double]) -> Double {
    sorted[max(Int((quantile * Double(sorted.count)).rounded(.up)), 1) - 1]
  }

  @Test("Mixed outcomes: counts and rates exact, percentiles in the bucket holding the true value")
  func mixedOutcomes() throws {
    let aggregator = MetricsAggregator(since: Date(timeIntervalSince1970: 1_795_636_879))
    var truth: [String: [String: Truth]] = [:]
    var random = SeededGenerator(state: 42)
    for _ in 0..<5_000 {
      let platform = ["youtube", "instagram"].randomElement(using: &random)!
      let operation = ["post", "validate"].randomElement(using: &random)!
      // Log-uniform from 0.5 ms to 150 s, so the first and the +Inf buckets are used too.
      let duration = 0.5 * pow(300_000, Double.random(in: 0...1, using: &random))
      var series = truth[platform, default: [:]][operation, default: Truth()]
      switch Int.random(in: 0..<4, using: &random) {
      case 0:  // success at the first attempt
        aggregator.record(.test(platform: platform, operation: operation, durationMs: duration))
        series.success += 1
      case 1:  // permanent failure, not retried
        aggregator.record(
          .test(platform: platform, operation: operation, success: false, errorKind: "permanent", durationMs: duration))
        series.failure += 1
        series.errors["permanent", default: 0] += 1
      case 2:  // success after retries, one of them throttled
        let retries = Int.random(in: 1...4, using: &random)
        aggregator.recordRetries(platform: platform, operation: operation, count: retries)
        aggregator.recordRateLimitWait(platform: platform, operation: operation)
        aggregator.record(.test(platform: platform, operation: operation, attempts: 1 + retries, durationMs: duration))
        series.success += 1
        series.retries += retries
        series.rateLimitWaits += 1
      default:  // refused by an open breaker
        aggregator.recordNotPermitted(platform: platform, operation: operation)
        aggregator.record(
          .test(
            platform: platform, operation: operation, success: false, errorKind: "circuit_open", attempts: 0,
            durationMs: duration))
        series.failure += 1
        series.notPermitted += 1
        series.errors["circuit_open", default: 0] += 1
      }
      series.durations.append(duration)
      truth[platform, default: [:]][operation] = series
    }
    aggregator.recordBreakerOpened(platform: "youtube")
    aggregator.recordBreakerOpened(platform: "youtube")

    let snapshot = aggregator.snapshot()
    #expect(snapshot["since"] == "2026-11-25T20:01:19.000Z")
    let platforms = try #require(snapshot["platforms"]?.objectValue)
    #expect(Set(platforms.keys) == ["youtube", "instagram"])
    #expect(platforms["youtube"]?["breakerOpens"] == 2)
    #expect(platforms["instagram"]?["breakerOpens"] == 0)
    for (platform, operations) in truth {
      for (operation, expected) in operations {
        let got = try #require(platforms[platform]?[operation])
        let total = expected.success + expected.failure
        #expect(got["total"] == .int(total))
        #expect(got["success"] == .int(expected.success))
        #expect(got["failure"] == .int(expected.failure))
        #expect(got["successRate"] == .double(Double(expected.success) / Double(total)))
        #expect(got["failureRate"] == .double(Double(expected.failure) / Double(total)))
        #expect(got["retries"] == .int(expected.retries))
        #expect(got["notPermitted"] == .int(expected.notPermitted))
        #expect(got["rateLimitWaits"] == .int(expected.rateLimitWaits))
        #expect(got["replayed"] == 0)
        #expect(got["errors"] == .object(expected.errors.mapValues { .int($0) }))
        let average = expected.durations.reduce(0, +) / Double(total)
        #expect(abs(try #require(got["avgMs"]?.doubleValue) - average) <= 0.0005)
        let sorted = expected.durations.sorted()
        #expect(got["maxMs"] == .double((sorted.last! * 1000).rounded() / 1000))
        for (key, quantile) in [("p50Ms", 0.50), ("p95Ms", 0.95), ("p99Ms", 0.99)] {
          let estimate = try #require(got[key]?.doubleValue)
          let exact = Self.nearestRank(quantile, sorted)
          #expect(Self.bucket(of: exact).contains(estimate), "\(platform)/\(operation) \(key) \(estimate) vs \(exact)")
        }
      }
    }
  }

  @Test("Percentiles are exact when every call takes the same time, and stay within what was seen")
  func percentileEdges() throws {
    var histogram = DurationHistogram()
    #expect(histogram.quantileMs(0.5) == nil)
    for _ in 0..<10 { histogram.observe(180) }
    #expect(histogram.quantileMs(0.5) == 180)
    #expect(histogram.quantileMs(0.99) == 180)
    histogram.observe(200_000)  // beyond the last finite bucket
    #expect(histogram.quantileMs(1) == 200_000)
    #expect((180...250).contains(try #require(histogram.quantileMs(0.5))))
  }

  @Test("An empty series reports null rates and durations rather than zeros")
  func emptySeries() throws {
    let aggregator = MetricsAggregator()
    aggregator.recordRetries(platform: "facebook", operation: "post", count: 3)
    let series = try #require(aggregator.snapshot()["platforms"]?["facebook"]?["post"])
    #expect(series["total"] == 0)
    #expect(series["retries"] == 3)
    for key in ["successRate", "failureRate", "avgMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"] {
      #expect(series[key] == .null, "\(key)")
    }
  }

  @Test("Idempotent replays count apart and leave totals and percentiles alone")
  func replays() throws {
    let aggregator = MetricsAggregator()
    aggregator.record(.test(durationMs: 1_000))
    for _ in 0..<5 { aggregator.record(.test(durationMs: 0.2, replayed: true)) }
    let series = try #require(aggregator.snapshot()["platforms"]?["youtube"]?["post"])
    #expect(series["total"] == 1)
    #expect(series["replayed"] == 5)
    #expect(series["p50Ms"]?.doubleValue == 1_000)
  }

  @Test("A failure without a kind is counted as unknown")
  func unknownKind() throws {
    let aggregator = MetricsAggregator()
    aggregator.record(.test(success: false))
    #expect(aggregator.snapshot()["platforms"]?["youtube"]?["post"]?["errors"] == ["unknown": 1])
  }

  @Test("Free-text labels cannot grow memory: overflowing series and kinds are counted under 'other'")
  func boundedCardinality() throws {
    let aggregator = MetricsAggregator()
    for index in 0..<500 {
      aggregator.record(.test(platform: "platform-\(index)"))
      aggregator.record(.test(platform: "facebook", success: false, errorKind: "kind-\(index)"))
      aggregator.recordBreakerOpened(platform: "platform-\(index)")
    }
    let platforms = try #require(aggregator.snapshot()["platforms"]?.objectValue)
    let series = platforms.values.flatMap { $0.objectValue!.filter { $0.key != "breakerOpens" }.values }
    #expect(series.count <= MetricsAggregator.Limits.series + 1)
    #expect(series.reduce(0) { $0 + $1["total"]!.intValue! } == 1_000)
    #expect(platforms["other"]?["other"]?["total"] != nil)
    let errors = try #require(platforms["facebook"]?["post"]?["errors"]?.objectValue)
    #expect(errors.count == MetricsAggregator.Limits.errorKinds + 1)
    #expect(errors.values.reduce(0) { $0 + $1.intValue! } == 500)
    #expect(platforms.values.reduce(0) { $0 + $1["breakerOpens"]!.intValue! } == 500)
  }

  @Test("8 tasks × 10,000 concurrent records lose nothing")
  func concurrentRecords() async throws {
    let aggregator = MetricsAggregator()
    await withTaskGroup(of: Void.self) { group in
      for task in 0..<8 {
        group.addTask {
          for index in 0..<10_000 {
            let success = (task + index) % 4 != 0
            aggregator.record(.test(success: success, errorKind: success ? nil : "transient_exhausted"))
            aggregator.recordRetries(platform: "youtube", operation: "post", count: 1)
          }
        }
      }
    }
    let series = try #require(aggregator.snapshot()["platforms"]?["youtube"]?["post"])
    #expect(series["total"] == 80_000)
    #expect(series["success"] == 60_000)
    #expect(series["failure"] == 20_000)
    #expect(series["errors"] == ["transient_exhausted": 20_000])
    #expect(series["retries"] == 80_000)
    let text = aggregator.prometheusText(breakerStates: [:])
    #expect(
      text.contains(#"social_sidecar_operation_duration_seconds_count{platform="youtube",operation="post"} 80000"#))
  }
}
