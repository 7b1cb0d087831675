// swift-tools-version: 6.2
// One section per target and its test target. Dependencies point one way:
// SidecarSystem (leaf: POSIX helpers, calendar days) under SidecarLogging, SidecarJSONRPC, SidecarHTTP, SidecarRedis,
// SidecarResilience, SidecarPlatforms;
// SidecarJSON <- SidecarLogging <- SidecarJSONRPC; SidecarJSON <- SidecarMetrics;
// CCurl <- SidecarHTTP (which dlopens SidecarURLSessionPlugin's library when asked for URLSession);
// SidecarHTTP + SidecarResilience + SidecarJSON <- SidecarPlatforms; SidecarSystem <- SidecarRedis;
// everything <- SidecarServer <- social-sidecar. No package dependencies, by design.
import PackageDescription

let strict: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
  name: "social-sidecar",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "social-sidecar", targets: ["social-sidecar"]),
    // The URLSession transport, loaded by SidecarHTTP only when used: deploy it beside the executable.
    .library(name: "SidecarURLSession", type: .dynamic, targets: ["SidecarURLSessionPlugin"]),
  ],
  targets: [
    // CCurl: the few libcurl declarations we use, resolved from libcurl.so.4 at run time.
    .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),

    // SidecarHTTP: the HTTP transport protocol, its libcurl implementation and the bridge to the URLSession plugin.
    .target(name: "SidecarHTTP", dependencies: ["CCurl", "SidecarSystem"], swiftSettings: strict),
    .testTarget(
      name: "SidecarHTTPTests", dependencies: ["SidecarHTTP", "SidecarTestSupport"], swiftSettings: strict),
    // transport-soak: load generator that scripts/soak-transport drives (not part of the product).
    .executableTarget(
      name: "transport-soak", dependencies: ["SidecarHTTP"], path: "Benchmarks/transport-soak", swiftSettings: strict),

    // SidecarURLSessionPlugin: URLSession (FoundationNetworking) behind a small C ABI, built as a dynamic library
    // so that the executable does not link FoundationNetworking and libcurl's dependencies.
    .target(name: "SidecarURLSessionPlugin", swiftSettings: strict),

    // SidecarSystem: the POSIX calls FoundationEssentials lacks (threads) or that names of ours shadow (write), and
    // calendar days.
    .target(name: "SidecarSystem", swiftSettings: strict),

    // SidecarJSON: a JSON value type with a fast parser and serializer; knows nothing else.
    .target(
      name: "SidecarJSON", swiftSettings: strict, linkerSettings: [.linkedLibrary("m", .when(platforms: [.linux]))]),
    .testTarget(name: "SidecarJSONTests", dependencies: ["SidecarJSON"], swiftSettings: strict),

    // SidecarJSONRPC: LSP framing and JSON-RPC 2.0 connection; knows nothing of platforms.
    .target(
      name: "SidecarJSONRPC", dependencies: ["SidecarJSON", "SidecarLogging", "SidecarSystem"], swiftSettings: strict),
    .testTarget(name: "SidecarJSONRPCTests", dependencies: ["SidecarJSONRPC"], swiftSettings: strict),

    // SidecarLogging: structured one-line JSON logs on stderr that never block protocol work.
    .target(name: "SidecarLogging", dependencies: ["SidecarJSON", "SidecarSystem"], swiftSettings: strict),

    // SidecarMetrics: usage events, aggregation and Prometheus text.
    .target(name: "SidecarMetrics", dependencies: ["SidecarJSON", "SidecarLogging"], swiftSettings: strict),
    .testTarget(
      name: "SidecarMetricsTests", dependencies: ["SidecarMetrics", "SidecarJSON", "SidecarLogging"],
      exclude: ["prometheus_parse_check.py"], swiftSettings: strict),
    // metrics-bench: ns per event for record + json + serialize, beside a baseline (scripts/bench-metrics).
    .executableTarget(
      name: "metrics-bench", dependencies: ["SidecarMetrics", "SidecarJSON", "SidecarLogging"],
      path: "Benchmarks/metrics-bench",
      swiftSettings: strict),

    // SidecarPlatforms: the five platform clients, credentials and media, over HTTP and the resilience core.
    .target(
      name: "SidecarPlatforms",
      dependencies: ["SidecarHTTP", "SidecarJSON", "SidecarLogging", "SidecarResilience", "SidecarSystem"],
      swiftSettings: strict),
    .testTarget(
      name: "SidecarPlatformsTests",
      dependencies: ["SidecarPlatforms", "SidecarHTTP", "SidecarResilience", "SidecarTestSupport"],
      swiftSettings: strict),
    // SidecarTestSupport: test doubles that more than one test target uses (a scripted HTTP transport, a free
    // loopback port, fixed credentials); never linked into the product.
    .target(
      name: "SidecarTestSupport",
      dependencies: ["SidecarHTTP", "SidecarJSON", "SidecarPlatforms", "SidecarResilience"],
      path: "Tests/SidecarTestSupport", swiftSettings: strict),

    // SidecarResilience: classification, retry, circuit breaker, rate-limit gates, retry budget, clocks.
    .target(name: "SidecarResilience", dependencies: ["SidecarSystem"], swiftSettings: strict),
    .testTarget(name: "SidecarResilienceTests", dependencies: ["SidecarResilience"], swiftSettings: strict),

    // SidecarRedis: a small RESP2/RESP3 client on its own thread (the shared-state store's transport); knows nothing
    // else.
    .target(name: "SidecarRedis", dependencies: ["SidecarSystem"], swiftSettings: strict),
    .testTarget(
      name: "SidecarRedisTests", dependencies: ["SidecarRedis", "SidecarTestSupport"], swiftSettings: strict),

    // SidecarServer: wires methods to platforms; lifecycle, config, idempotency, metrics emission.
    .target(
      name: "SidecarServer",
      dependencies: [
        "SidecarJSON", "SidecarJSONRPC", "SidecarLogging", "SidecarMetrics", "SidecarPlatforms", "SidecarRedis",
        "SidecarResilience", "SidecarSystem",
      ],
      swiftSettings: strict),
    .testTarget(
      name: "SidecarServerTests",
      dependencies: [
        "SidecarServer", "SidecarHTTP", "SidecarJSON", "SidecarJSONRPC", "SidecarLogging", "SidecarMetrics",
        "SidecarPlatforms", "SidecarResilience", "SidecarTestSupport",
      ],
      swiftSettings: strict),

    // social-sidecar: the executable; guards stdout, parses the command line, runs the server.
    .executableTarget(
      name: "social-sidecar", dependencies: ["SidecarJSON", "SidecarJSONRPC", "SidecarLogging", "SidecarServer"],
      swiftSettings: strict),
  ]
)
