import Synchronization

/// Uniform randomness for backoff jitter, injected so that tests can reproduce a sequence.
public protocol RandomSource: Sendable {
  /// A uniformly distributed value in `0 ..< 1`.
  func nextUnit() -> Double
}

/// The system's random number generator.
public struct SystemRandom: RandomSource {
  public init() {}

  public func nextUnit() -> Double {
    Double.random(in: 0..<1)
  }
}

/// A reproducible sequence (SplitMix64) for tests and simulations; safe to share between tasks.
public final class SeededRandom: RandomSource {
  private let state: Mutex<UInt64>

  public init(seed: UInt64) {
    state = Mutex(seed)
  }

  /// The next raw 64-bit value.
  public func next() -> UInt64 {
    state.withLock { state in
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  public func nextUnit() -> Double {
    // The top 53 bits fill a Double's significand exactly, so the result is < 1.
    Double(next() >> 11) * 0x1p-53
  }
}
