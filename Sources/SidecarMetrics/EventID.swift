import Synchronization

extension MetricEvent {
  /// A fresh random (version 4) UUID string in lower case, the default `eventId`.
  ///
  /// Foundation's `UUID()` asks the kernel for entropy on every call, about 6 µs on Linux, more than everything
  /// else an event costs. Here the 122 random bits come from xoshiro256** seeded once per process from the
  /// system's secure generator: as unlikely to collide as `UUID()`, and unpredictable enough for a dedupe key
  /// (which is not a secret).
  public static func newEventId() -> String {
    let (high, low) = eventIdGenerator.withLock { ($0.next(), $0.next()) }
    let version4 = high & ~0xF000 | 0x4000
    let variant = low & ~(0b11 << 62) | (0b10 << 62)
    return String(unsafeUninitializedCapacity: 36) { buffer in
      let hex: StaticString = "0123456789abcdef"
      var position = 0
      func put(_ bits: UInt64, nibbles: Int) {
        for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
          buffer[position] = hex.utf8Start[Int(bits >> UInt64(shift) & 0xF)]
          position += 1
        }
      }
      func dash() {
        buffer[position] = UInt8(ascii: "-")
        position += 1
      }
      put(version4 >> 32, nibbles: 8)
      dash()
      put(version4 >> 16, nibbles: 4)
      dash()
      put(version4, nibbles: 4)
      dash()
      put(variant >> 48, nibbles: 4)
      dash()
      put(variant, nibbles: 12)
      return 36
    }
  }
}

private let eventIdGenerator: Mutex<Xoshiro256StarStar> = {
  var system = SystemRandomNumberGenerator()
  return Mutex(Xoshiro256StarStar(seed: (system.next(), system.next(), system.next(), system.next())))
}()

/// xoshiro256** (Blackman and Vigna): 256 bits of state, period 2^256 - 1.
struct Xoshiro256StarStar: RandomNumberGenerator {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  init(seed: (UInt64, UInt64, UInt64, UInt64)) {
    // An all-zero state would only ever produce zeros.
    s = seed == (0, 0, 0, 0) ? (1, 2, 3, 4) : seed
  }

  mutating func next() -> UInt64 {
    let result = (s.1 &* 5).rotatedLeft(by: 7) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = s.3.rotatedLeft(by: 45)
    return result
  }
}

extension UInt64 {
  fileprivate func rotatedLeft(by count: UInt64) -> UInt64 {
    self << count | self >> (64 - count)
  }
}
