#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs `body` on a new detached thread.
///
/// For loops that block in a system call for the life of the process (the protocol reader, libcurl's poll loop, the
/// log writer): they need a thread of their own, not one of Dispatch's pool. Foundation's `Thread` would do, but it
/// lives in the full Foundation, which brings ICU's 45 MB into the binary; FoundationEssentials has no threads.
public func startThread(stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
  var attributes = pthread_attr_t()
  pthread_attr_init(&attributes)
  defer { pthread_attr_destroy(&attributes) }
  pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
  if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
  let start = Unmanaged.passRetained(ThreadStart(body)).toOpaque()
  #if canImport(Darwin)
    var thread: pthread_t?
  #else
    var thread = pthread_t()
  #endif
  let status = pthread_create(&thread, &attributes, threadMain, start)
  guard status == 0 else {
    Unmanaged<ThreadStart>.fromOpaque(start).release()
    fatalError("cannot start a thread: \(String(cString: strerror(status)))")
  }
}

/// The closure a new thread runs, kept alive by a +1 reference until the thread takes it.
private final class ThreadStart {
  let body: @Sendable () -> Void

  init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

#if canImport(Darwin)
  private func threadMain(_ start: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    Unmanaged<ThreadStart>.fromOpaque(start).takeRetainedValue().body()
    return nil
  }
#else
  private func threadMain(_ start: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    Unmanaged<ThreadStart>.fromOpaque(start!).takeRetainedValue().body()
    return nil
  }
#endif
