// Load generator for scripts/soak-transport: drives one HTTPTransport and prints one JSON line.
//
//   transport-soak load --transport curl|urlsession --url URL --requests N --concurrency C [--ca PEM]
//   transport-soak idle --transport curl|urlsession --url URL --concurrency C [--ca PEM]
//
// `load` reports throughput, latency percentiles, CPU per request, errors and RSS before and after;
// `idle` starts C requests to a slow endpoint on a fresh transport and reports the process's CPU use
// while they wait.
import Foundation
import SidecarHTTP
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

struct Options {
  var mode = "load"
  var transport = "curl"
  var url = URL(string: "http://127.0.0.1/")!
  var requests = 1000
  var concurrency = 64
  var caBundle: String?
  var maxConnections = 0

  init(_ arguments: [String]) {
    var rest = arguments.dropFirst()
    if let first = rest.first, !first.hasPrefix("--") {
      mode = first
      rest = rest.dropFirst()
    }
    while let flag = rest.popFirst() {
      let value = rest.popFirst() ?? ""
      switch flag {
      case "--transport": transport = value
      case "--url": url = URL(string: value)!
      case "--requests": requests = Int(value)!
      case "--concurrency": concurrency = Int(value)!
      case "--ca": caBundle = value
      case "--max-connections": maxConnections = Int(value)!
      default: fatalError("unknown option \(flag)")
      }
    }
  }
}

func cpuMicroseconds() -> Int {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  let user = Int(usage.ru_utime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec)
  let system = Int(usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_stime.tv_usec)
  return user + system
}

func residentMegabytes() -> Double {
  guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
  let pages = Double(statm.split(separator: " ")[1]) ?? 0
  return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

func emit(_ fields: [String: Any]) {
  let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
  FileHandle.standardOutput.write(data + Data("\n".utf8))
}

func makeTransport(_ options: Options) -> any HTTPTransport {
  let configuration = HTTPTransportConfiguration(
    maxConnectionsPerHost: options.maxConnections > 0 ? options.maxConnections : max(64, options.concurrency),
    caBundlePath: options.caBundle, userAgent: "transport-soak")
  // URLSession runs in the plugin library (libSidecarURLSession.so) beside this executable, as in production.
  return options.transport == "curl"
    ? try! CurlTransport(configuration: configuration) : try! URLSessionPluginTransport(configuration: configuration)
}

/// Hands out request numbers to the workers.
final class Ticket: Sendable {
  private let counter = Atomic<Int>(0)
  func take() -> Int { counter.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// One measurement taken by whichever task gets there first.
final class Reading: Sendable {
  private let kilobytes = Atomic<Int>(0)
  func record(_ megabytes: Double) { kilobytes.store(Int(megabytes * 1024), ordering: .relaxed) }
  var value: Double { Double(kilobytes.load(ordering: .relaxed)) / 1024 }
}

/// Outcome of one request: latency in microseconds, or an error label and what the error said.
enum Sample: Sendable {
  case ok(Int)
  case failed(String, message: String)
}

func runLoad(_ options: Options) async {
  let transport = makeTransport(options)
  let rssBefore = residentMegabytes()
  let rssAfterFirstThousand = Reading()  // the acceptance compares the end with this, not with idle
  let next = Ticket()
  let clock = ContinuousClock()
  let cpuStart = cpuMicroseconds()
  let start = clock.now
  let samples = await withTaskGroup(of: [Sample].self) { group in
    for _ in 0..<options.concurrency {
      group.addTask {
        var mine: [Sample] = []
        while true {
          let ticket = next.take()
          guard ticket < options.requests else { break }
          if ticket == min(1000, options.requests / 2) {
            rssAfterFirstThousand.record(residentMegabytes())
          }
          let began = clock.now
          do {
            let response = try await transport.send(HTTPRequest(url: options.url, timeout: .seconds(30)))
            let micros = Int((clock.now - began) / .microseconds(1))
            mine.append(
              (200..<300).contains(response.status)
                ? .ok(micros) : .failed("status \(response.status)", message: "HTTP \(response.status)"))
          } catch let error as TransportError {
            mine.append(.failed("\(error.kind)", message: "\(error.message) (sent: \(error.requestSent))"))
          } catch {
            mine.append(.failed("other", message: "\(error)"))
          }
        }
        return mine
      }
    }
    return await group.reduce(into: []) { $0 += $1 }
  }
  let seconds = Double((clock.now - start) / .milliseconds(1)) / 1000
  let cpu = cpuMicroseconds() - cpuStart
  var latencies: [Int] = []
  var errors: [String: Int] = [:]
  var firstErrors: [String: String] = [:]  // one message per kind, to tell a rare failure's cause
  for sample in samples {
    switch sample {
    case .ok(let micros): latencies.append(micros)
    case .failed(let label, let message):
      errors[label, default: 0] += 1
      if firstErrors[label] == nil { firstErrors[label] = message }
    }
  }
  latencies.sort()
  func percentile(_ p: Double) -> Double {
    latencies.isEmpty ? 0 : Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000
  }
  emit([
    "transport": options.transport, "requests": samples.count, "concurrency": options.concurrency,
    "seconds": seconds, "rps": Double(samples.count) / seconds, "p50_ms": percentile(0.50), "p99_ms": percentile(0.99),
    "cpu_us_per_request": Double(cpu) / Double(max(1, samples.count)), "errors": errors.values.reduce(0, +),
    "error_kinds": errors, "first_errors": firstErrors, "rss_before_mb": rssBefore, "rss_after_mb": residentMegabytes(),
    "rss_after_1k_mb": rssAfterFirstThousand.value,
  ])
  withExtendedLifetime(transport) {}
}

func runIdle(_ options: Options) async {
  let transport = makeTransport(options)
  let clock = ContinuousClock()
  await withTaskGroup(of: Void.self) { group in
    for _ in 0..<options.concurrency {
      group.addTask { _ = try? await transport.send(HTTPRequest(url: options.url, timeout: .seconds(30))) }
    }
    // Let the connections open and the requests reach the server, then measure the wait.
    try? await Task.sleep(for: .milliseconds(500))
    let cpuStart = cpuMicroseconds()
    let start = clock.now
    try? await Task.sleep(for: .seconds(2))
    let cpu = cpuMicroseconds() - cpuStart
    let wall = Double((clock.now - start) / .microseconds(1))
    emit([
      "transport": options.transport, "concurrency": options.concurrency, "idle_cpu_percent": Double(cpu) / wall * 100,
    ])
    await group.waitForAll()
  }
}

signal(SIGPIPE, SIG_IGN)
let options = Options(CommandLine.arguments)
if options.mode == "idle" { await runIdle(options) } else { await runLoad(options) }
