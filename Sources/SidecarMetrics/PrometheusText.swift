/// Prometheus text exposition as `metrics/prometheus` returns it for a scrape endpoint to serve: text format 1.0.0,
/// the version prometheus_client writes (its body is the 0.0.4 format, since every name here is a classic one).
public enum PrometheusText {
  /// The `Content-Type` a scrape endpoint serving this text must send.
  public static let contentType = "text/plain; version=1.0.0; charset=utf-8"

  /// A label value as it must appear between the quotes: backslash, double quote and newline escaped.
  public static func escapeLabelValue(_ value: String) -> String {
    guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
    var escaped = ""
    escaped.reserveCapacity(value.utf8.count + 8)
    for character in value.unicodeScalars {
      switch character {
      case "\\": escaped += "\\\\"
      case "\"": escaped += "\\\""
      case "\n": escaped += "\\n"
      default: escaped.unicodeScalars.append(character)
      }
    }
    return escaped
  }

  /// `# HELP` text: only backslash and newline are escaped there.
  public static func escapeHelp(_ text: String) -> String {
    text.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
  }

  /// A sample value as Go's `ParseFloat` reads it, infinities spelled as Prometheus does.
  static func format(_ value: Double) -> String {
    if value == .infinity { return "+Inf" }
    if value == -.infinity { return "-Inf" }
    if value.isNaN { return "NaN" }
    return value.description
  }

  /// Accumulates one family at a time, so a family's HELP and TYPE cannot be forgotten.
  struct Writer {
    var text = ""

    mutating func family(_ name: String, type: String, help: String) {
      text += "# HELP \(name) \(PrometheusText.escapeHelp(help))\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String>, _ value: String) {
      text += name
      if !labels.isEmpty {
        text += "{"
        for (offset, (label, labelValue)) in labels.enumerated() {
          if offset > 0 { text += "," }
          text += "\(label)=\"\(PrometheusText.escapeLabelValue(labelValue))\""
        }
        text += "}"
      }
      text += " \(value)\n"
    }

    mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String>, _ value: UInt64) {
      sample(name, labels, String(value))
    }
  }
}

extension MetricsAggregator {
  /// The breaker states a `social_sidecar_breaker_state` gauge reports, in order.
  public static let breakerStateNames = ["CLOSED", "OPEN", "HALF_OPEN"]

  /// The `metrics/prometheus` result: every family with HELP and TYPE, even before its first sample.
  ///
  /// - Parameter breakerStates: platform → `CLOSED`, `OPEN` or `HALF_OPEN`, read from the breakers at scrape time.
  ///   Each platform gets one gauge sample per state, 1 for its current state and 0 for the others (a state
  ///   outside the three is reported as given, with 1).
  public func prometheusText(breakerStates: [String: String]) -> String {
    let state = read()
    let keys = state.series.keys.sorted()
    var out = PrometheusText.Writer()
    out.text.reserveCapacity(512 + keys.count * 3_000)

    out.family(
      "social_sidecar_operations_total", type: "counter",
      help: "Platform operations finished, by outcome (idempotent replays excluded).")
    for key in keys {
      let series = state.series[key]!
      for (outcome, value) in [("success", series.success), ("failure", series.failure)] {
        out.sample(
          "social_sidecar_operations_total",
          ["platform": key.platform, "operation": key.operation, "outcome": outcome], value)
      }
    }

    out.family(
      "social_sidecar_errors_total", type: "counter", help: "Failed platform operations, by error kind.")
    for key in keys {
      for (kind, value) in state.series[key]!.errors.sorted(by: { $0.key < $1.key }) {
        out.sample(
          "social_sidecar_errors_total", ["platform": key.platform, "operation": key.operation, "kind": kind],
          value)
      }
    }

    let perSeriesCounters: [(name: String, help: String, value: (Series) -> UInt64)] = [
      ("social_sidecar_retries_total", "Retries scheduled after a failed attempt.", \.retries),
      ("social_sidecar_not_permitted_total", "Calls refused by an open circuit breaker.", \.notPermitted),
      ("social_sidecar_rate_limit_waits_total", "Waits imposed by rate limits or Retry-After.", \.rateLimitWaits),
      ("social_sidecar_replays_total", "Calls answered from the idempotency store.", \.replayed),
    ]
    for counter in perSeriesCounters {
      out.family(counter.name, type: "counter", help: counter.help)
      for key in keys {
        out.sample(
          counter.name, ["platform": key.platform, "operation": key.operation], counter.value(state.series[key]!))
      }
    }

    out.family(
      "social_sidecar_breaker_opens_total", type: "counter", help: "Circuit breaker transitions to open.")
    for (platform, value) in state.breakerOpens.sorted(by: { $0.key < $1.key }) {
      out.sample("social_sidecar_breaker_opens_total", ["platform": platform], value)
    }

    let histogram = "social_sidecar_operation_duration_seconds"
    out.family(
      histogram, type: "histogram", help: "Duration of platform operations, retries and backoff included.")
    for key in keys {
      let durations = state.series[key]!.durations
      var cumulative: UInt64 = 0
      for (index, inBucket) in durations.counts.enumerated() {
        cumulative += inBucket
        out.sample(
          "\(histogram)_bucket",
          ["platform": key.platform, "operation": key.operation, "le": Self.bucketLabels[index]], cumulative)
      }
      out.sample(
        "\(histogram)_sum", ["platform": key.platform, "operation": key.operation],
        PrometheusText.format(durations.sumMs / 1000))
      out.sample("\(histogram)_count", ["platform": key.platform, "operation": key.operation], durations.count)
    }

    out.family(
      "social_sidecar_breaker_state", type: "gauge",
      help: "Circuit breaker state per platform: 1 for the current state (CLOSED, OPEN or HALF_OPEN), 0 otherwise.")
    for (platform, current) in breakerStates.sorted(by: { $0.key < $1.key }) {
      let names = Self.breakerStateNames
      let states = names.contains(current) ? names : names + [current]
      for candidate in states {
        out.sample(
          "social_sidecar_breaker_state", ["platform": platform, "state": candidate], candidate == current ? 1 : 0)
      }
    }
    return out.text
  }

  /// `le` values in seconds, computed once: "0.001" … "120.0", "+Inf".
  static let bucketLabels: [String] =
    DurationHistogram.upperBoundsMs.map { PrometheusText.format($0 / 1000) } + ["+Inf"]
}
