// Cost of metrics per platform operation, in ns, beside the same loop without metrics, in one run.
// Run through scripts/bench-metrics (release build). Prints medians of several rounds; asserts nothing.
import Foundation
import SidecarJSON
import SidecarLogging
import SidecarMetrics

let defaultIterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 200_000
/// An optional second argument runs only the lines whose name contains it (for a profiler).
let only = CommandLine.arguments.dropFirst(2).first
let rounds = 7
let platforms = ["youtube", "instagram", "facebook", "linkedin", "whatsapp"]
let operations = ["post", "validate", "refresh", "send"]

/// CPU time of this thread: on a machine shared with busy neighbours, wall time mostly measures them.
func threadCPUNanoseconds() -> Int64 {
  var now = timespec()
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
  return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Median ns per iteration over `rounds` rounds; `body` returns a checksum so that nothing is optimised away.
@discardableResult
func measure(_ name: String, iterations: Int = defaultIterations, _ body: (Int) -> Int) -> Double {
  if let only, !name.contains(only) { return 0 }
  var samples: [Double] = []
  var checksum = 0
  for _ in 0..<rounds {
    let start = threadCPUNanoseconds()
    for index in 0..<iterations { checksum &+= body(index) }
    samples.append(Double(threadCPUNanoseconds() - start) / Double(iterations))
  }
  let median = samples.sorted()[rounds / 2]
  print(name.padding(toLength: 50, withPad: " ", startingAt: 0), String(format: "%9.1f ns", median))
  if checksum == 42 { print("") }  // keeps the checksum alive
  return median
}

/// What the server builds for each operation anyway, metrics or not: the event value.
func makeEvent(_ index: Int, eventId: String) -> MetricEvent {
  let failed = index % 7 == 0
  return MetricEvent(
    eventId: eventId, customerId: "cust_42", agentId: "agent_7", platform: platforms[index % 5],
    operation: operations[index % 4], correlationId: "corr-\(index & 1023)", success: !failed,
    postId: failed ? nil : "1784512345678901", postUrl: failed ? nil : "https://www.facebook.com/1784512345678901",
    errorKind: failed ? "permanent" : nil, errorCode: failed ? -31001 : nil,
    errorMessage: failed ? "(#100) Invalid parameter" : nil, httpStatus: failed ? 400 : 200,
    attempts: 1 + index % 3, durationMs: Double(index % 5000) * 1.37, replayed: false)
}

print("metrics-bench: \(defaultIterations) iterations x \(rounds) rounds, median thread-CPU ns per iteration\n")
let aggregator = MetricsAggregator()
let fixedId = MetricEvent.newEventId()
let baseline = measure("baseline: build the event, no metrics") { index in
  Int(makeEvent(index, eventId: fixedId).durationMs)
}
let generic = measure("+ record + json + json.serialized()") { index in
  let event = makeEvent(index, eventId: fixedId)
  aggregator.record(event)
  return event.json.serialized().count
}
let direct = measure("+ record + serializedJSON()") { index in
  let event = makeEvent(index, eventId: fixedId)
  aggregator.record(event)
  return event.serializedJSON().count
}
let withId = measure("+ newEventId() + record + serializedJSON()") { index in
  let event = makeEvent(index, eventId: MetricEvent.newEventId())
  aggregator.record(event)
  return event.serializedJSON().count
}
if only == nil {
  print(
    String(
      format: """
        => metrics cost per event (target < 5000 ns):
           record + json + json.serialized()        %7.1f ns
           record + serializedJSON()                %7.1f ns
           newEventId() + record + serializedJSON() %7.1f ns\n
        """, generic - baseline, direct - baseline, withId - baseline))
}

print("breakdown (one event built outside the loop):")
let event = makeEvent(1, eventId: fixedId)
let json = event.json
measure("  record") { _ in
  aggregator.record(event)
  return 1
}
measure("  json") { _ in event.json.objectValue?.count ?? 0 }
measure("  json.serialized()") { _ in json.serialized().count }
measure("  serializedJSON()") { _ in event.serializedJSON().count }
measure("  MetricEvent.newEventId()") { _ in MetricEvent.newEventId().utf8.count }
measure("  UUID().uuidString (Foundation, for reference)") { _ in UUID().uuidString.utf8.count }
let date = Date()
measure("  RFC3339.string(from:)") { RFC3339.string(from: date + Double($0)).utf8.count }
let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
measure("  Date.ISO8601FormatStyle (for reference)") { style.format(date + Double($0)).utf8.count }

print("\nper request, \(platforms.count * operations.count) series:")
let perScrape = max(defaultIterations / 200, 1)
measure("  snapshot() + serialized()", iterations: perScrape) { _ in aggregator.snapshot().serialized().count }
let states = Dictionary(uniqueKeysWithValues: platforms.map { ($0, "CLOSED") })
measure("  prometheusText(breakerStates:)", iterations: perScrape) { _ in
  aggregator.prometheusText(breakerStates: states).utf8.count
}
