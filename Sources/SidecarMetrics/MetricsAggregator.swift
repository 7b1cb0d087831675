#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import SidecarJSON
import SidecarLogging
import Synchronization

/// Running totals per (platform, operation) for `metrics/snapshot` and `metrics/prometheus`.
///
/// Every `record…` call is O(1) under one lock and allocates only the first time a series is seen, so memory does
/// not grow with the number of events. Label values are meant to come from the server's fixed sets; as a guard
/// against a bug turning free text into labels, at most `Limits.series` series, `Limits.errorKinds` error kinds per
/// series and `Limits.platforms` breaker platforms are kept, and anything beyond is counted under `other`.
public final class MetricsAggregator: Sendable {
  public enum Limits {
    public static let series = 64
    public static let errorKinds = 24
    public static let platforms = 32
  }

  /// Where overflowing label values are counted.
  public static let overflowLabel = "other"

  struct SeriesKey: Hashable, Comparable {
    var platform: String
    var operation: String

    static func < (lhs: Self, rhs: Self) -> Bool {
      (lhs.platform, lhs.operation) < (rhs.platform, rhs.operation)
    }
  }

  struct Series {
    var success: UInt64 = 0
    var failure: UInt64 = 0
    var replayed: UInt64 = 0
    var retries: UInt64 = 0
    var notPermitted: UInt64 = 0
    var rateLimitWaits: UInt64 = 0
    var errors: [String: UInt64] = [:]
    var durations = DurationHistogram()

    var total: UInt64 { success + failure }
  }

  struct State {
    var series: [SeriesKey: Series] = [:]
    var breakerOpens: [String: UInt64] = [:]

    mutating func update(_ platform: String, _ operation: String, _ body: (inout Series) -> Void) {
      var key = SeriesKey(platform: platform, operation: operation)
      if let index = series.index(forKey: key) {
        body(&series.values[index])
        return
      }
      if series.count >= Limits.series {
        key = SeriesKey(platform: MetricsAggregator.overflowLabel, operation: MetricsAggregator.overflowLabel)
      }
      body(&series[key, default: Series()])
    }
  }

  let state = Mutex(State())

  /// When counting started; reported as `since` so rates can be read against it.
  public let since: Date

  public init(since: Date = Date()) {
    self.since = since
  }

  /// Counts one finished operation: outcome, error kind on failure (`unknown` when it has none), and duration.
  ///
  /// Replayed events (answered from the idempotency store) only increment `replayed`: they reached no platform, so
  /// counting them would inflate call counts and drag the percentiles towards zero. Retries, breaker refusals and
  /// rate-limit waits are not derived from the event; they have their own `record…` calls, made as they happen.
  public func record(_ event: MetricEvent) {
    state.withLock { state in
      state.update(event.platform, event.operation) { series in
        if event.replayed {
          series.replayed += 1
          return
        }
        if event.success {
          series.success += 1
        } else {
          series.failure += 1
          var kind = event.errorKind ?? "unknown"
          if series.errors[kind] == nil && series.errors.count >= Limits.errorKinds {
            kind = MetricsAggregator.overflowLabel
          }
          series.errors[kind, default: 0] += 1
        }
        series.durations.observe(event.durationMs)
      }
    }
  }

  /// Counts retries (attempts after the first) as the retry loop schedules them.
  public func recordRetries(platform: String, operation: String, count: Int) {
    guard count > 0 else { return }
    state.withLock { $0.update(platform, operation) { $0.retries += UInt64(count) } }
  }

  /// Counts a breaker transition to open.
  public func recordBreakerOpened(platform: String) {
    state.withLock { state in
      var key = platform
      if state.breakerOpens[key] == nil && state.breakerOpens.count >= Limits.platforms {
        key = MetricsAggregator.overflowLabel
      }
      state.breakerOpens[key, default: 0] += 1
    }
  }

  /// Counts a call refused by an open breaker before reaching the platform.
  public func recordNotPermitted(platform: String, operation: String) {
    state.withLock { $0.update(platform, operation) { $0.notPermitted += 1 } }
  }

  /// Counts a wait imposed by a rate-limit gate or a `Retry-After`.
  public func recordRateLimitWait(platform: String, operation: String) {
    state.withLock { $0.update(platform, operation) { $0.rateLimitWaits += 1 } }
  }

  /// The `metrics/snapshot` result.
  ///
  /// `{platforms: {<platform>: {<operation>: {total, success, failure, successRate, failureRate, avgMs, p50Ms,
  /// p95Ms, p99Ms, maxMs, retries, notPermitted, rateLimitWaits, replayed, errors: {<kind>: n}}, breakerOpens}},
  /// since}`. `total` = `success` + `failure` and excludes replays. Rates are fractions (0…1); rates and durations
  /// are `null` while `total` is 0. Durations are milliseconds rounded to the microsecond; percentiles are
  /// interpolated within fixed buckets (see `DurationHistogram.quantileMs`).
  public func snapshot() -> JSONValue {
    let (series, breakerOpens) = state.withLock { ($0.series, $0.breakerOpens) }
    var platforms: [String: [String: JSONValue]] = [:]
    for (key, series) in series {
      platforms[key.platform, default: [:]][key.operation] = series.json
    }
    for platform in Set(platforms.keys).union(breakerOpens.keys) {
      platforms[platform, default: [:]]["breakerOpens"] = .int(Int(breakerOpens[platform] ?? 0))
    }
    return ["platforms": .object(platforms.mapValues(JSONValue.object)), "since": .string(RFC3339.string(from: since))]
  }

  /// A consistent copy of the counters, for renderers.
  func read() -> State {
    state.withLock { $0 }
  }
}

extension MetricsAggregator.Series {
  var json: JSONValue {
    func ms(_ value: Double?) -> JSONValue {
      value.map { .double(($0 * 1000).rounded() / 1000) } ?? .null
    }
    let total = total
    func rate(_ part: UInt64) -> JSONValue { total == 0 ? .null : .double(Double(part) / Double(total)) }
    return [
      "total": .int(Int(total)),
      "success": .int(Int(success)),
      "failure": .int(Int(failure)),
      "successRate": rate(success),
      "failureRate": rate(failure),
      "avgMs": ms(total == 0 ? nil : durations.sumMs / Double(durations.count)),
      "p50Ms": ms(durations.quantileMs(0.50)),
      "p95Ms": ms(durations.quantileMs(0.95)),
      "p99Ms": ms(durations.quantileMs(0.99)),
      "maxMs": ms(total == 0 ? nil : durations.maxMs),
      "retries": .int(Int(retries)),
      "notPermitted": .int(Int(notPermitted)),
      "rateLimitWaits": .int(Int(rateLimitWaits)),
      "replayed": .int(Int(replayed)),
      "errors": .object(errors.mapValues { .int(Int($0)) }),
    ]
  }
}
