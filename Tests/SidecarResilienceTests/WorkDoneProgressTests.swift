import SidecarResilience
import Synchronization
import Testing

@Suite("Work-done progress")
struct WorkDoneProgressTests {
  final class Sent: Sendable {
    let values = Mutex<[WorkDoneProgress.Value]>([])
    func append(_ value: WorkDoneProgress.Value) { values.withLock { $0.append(value) } }
  }

  @Test("a sequence is begin, reports, end, and never goes backwards")
  func aSequenceIsBeginReportsEndAndNeverGoesBackwards() {
    let sent = Sent()
    let progress = WorkDoneProgress { sent.append($0) }
    progress.report(message: "before begin", bytesSent: 1, bytesTotal: 10)
    progress.begin(title: "youtube/post")
    progress.begin(title: "again")
    progress.report(bytesSent: 4, bytesTotal: 10)
    progress.report(bytesSent: 2, bytesTotal: 10)  // a resumed upload re-sending a chunk
    progress.report(message: "processing")
    progress.end(message: nil)
    progress.end(message: "twice")
    progress.report(bytesSent: 10, bytesTotal: 10)
    let values = sent.values.withLock { $0 }
    #expect(values.map(\.kind) == [.begin, .report, .report, .report, .end])
    #expect(values[0].title == "youtube/post" && values[0].percentage == 0)
    #expect(values[1].bytesSent == 4 && values[1].percentage == 40)
    #expect(values[2].bytesSent == 4 && values[2].percentage == 40)
    #expect(values[3].message == "processing" && values[3].percentage == 40 && values[3].bytesSent == nil)
  }
}
