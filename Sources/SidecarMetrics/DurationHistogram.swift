/// Call durations in fixed buckets: constant memory however many calls, and exportable as a Prometheus histogram.
///
/// The bounds follow 1-2.5-5 steps from 1 ms to 10 s, then 15, 30, 60 and 120 s, where calls that retried through
/// the 1-2-4-8-16 s backoff land. Each bucket counts durations `d` with `previous bound < d <= bound`, as
/// Prometheus `le` does; the last bucket is `+Inf`.
public struct DurationHistogram: Sendable, Equatable {
  /// Bucket upper bounds in milliseconds; exact as written so that `d <= bound` means what it says.
  public static let upperBoundsMs: [Double] = [
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 15_000, 30_000, 60_000, 120_000,
  ]

  /// Per-bucket (not cumulative) counts; the last is the `+Inf` bucket.
  public private(set) var counts: [UInt64]
  public private(set) var count: UInt64 = 0
  public private(set) var sumMs: Double = 0
  public private(set) var minMs: Double = .infinity
  public private(set) var maxMs: Double = 0

  public init() {
    counts = Array(repeating: 0, count: Self.upperBoundsMs.count + 1)
  }

  /// Adds one duration. Negative and non-finite durations (a clock bug) count as 0 rather than poison the sum.
  public mutating func observe(_ durationMs: Double) {
    let value = durationMs.isFinite && durationMs > 0 ? durationMs : 0
    let bounds = Self.upperBoundsMs
    var index = 0
    while index < bounds.count && value > bounds[index] { index += 1 }
    counts[index] += 1
    count += 1
    sumMs += value
    minMs = min(minMs, value)
    maxMs = max(maxMs, value)
  }

  /// The `quantile` (0…1) estimated from the buckets; `nil` before any observation.
  ///
  /// Finds the bucket holding the nearest-rank value (the `⌈q·n⌉`-th smallest) and interpolates linearly within it,
  /// assuming the bucket's durations are spread evenly. The bucket's edges are first narrowed to the smallest and
  /// largest durations seen, which also gives the `+Inf` bucket a finite top. So the estimate always lies in the
  /// bucket that holds the true value, and is exact when all durations are equal.
  public func quantileMs(_ quantile: Double) -> Double? {
    guard count > 0 else { return nil }
    let rank = min(max(quantile, 0), 1) * Double(count)
    let bounds = Self.upperBoundsMs
    var below: UInt64 = 0
    for (index, inBucket) in counts.enumerated() where inBucket > 0 {
      if Double(below + inBucket) >= rank {
        let lower = max(index == 0 ? 0 : bounds[index - 1], minMs)
        let upper = min(index == bounds.count ? maxMs : bounds[index], maxMs)
        let fraction = min(max((rank - Double(below)) / Double(inBucket), 0), 1)
        return lower + (upper - lower) * fraction
      }
      below += inBucket
    }
    return maxMs
  }
}
