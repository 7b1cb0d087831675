#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
import Dispatch
import SidecarJSON
import SidecarJSONRPC
import SidecarLogging
import SidecarServer

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// stdout carries protocol frames only: keep the real stdout for frames and point fd 1 at stderr, so a stray print
// cannot corrupt a frame (sourcekit-lsp does the same). A closed pipe must be an error, not a silent death.
signal(SIGPIPE, SIG_IGN)
let shutdownSignal = ShutdownSignal()
SignalHandling.install { shutdownSignal.fire($0) }
let protocolFD = dup(STDOUT_FILENO)
dup2(STDERR_FILENO, STDOUT_FILENO)

let options: CommandLineOptions
switch CommandLineOptions.parse(
  Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
{
case .run(let parsed):
  options = parsed
case .exit(let text, let code):
  let bytes = Array((text + "\n").utf8)
  _ = bytes.withUnsafeBytes { write(code == 0 ? protocolFD : STDERR_FILENO, $0.baseAddress, $0.count) }
  exit(code)
}

let logSink = AsyncFileLogSink(fd: STDERR_FILENO)
let logger = Logger(level: options.logLevel, sink: logSink, metadata: ["pid": .int(Int(getpid()))])
let connection = Connection(inputFD: STDIN_FILENO, outputFD: protocolFD, logger: logger)
let defaults = SidecarConfiguration.fromEnvironment(ProcessInfo.processInfo.environment, stateDir: options.stateDir)
let server = Server(
  connection: connection, defaults: defaults, logger: logger,
  environment: Server.Environment(exit: { code in
    logSink.flush()
    exit(code)
  }))
shutdownSignal.handle { signal in server.terminateGracefully(signal: signal) }
logger.debug("started", ["version": .string(Server.version)])
server.start()
dispatchMain()
