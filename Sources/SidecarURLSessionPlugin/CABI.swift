// The URLSession transport as a dynamic library (`libSidecarURLSession.so`), loaded by SidecarHTTP's
// `URLSessionPluginTransport` with dlopen only when `http.transport` is "urlsession". Linking
// FoundationNetworking into the executable would make the loader map libcurl and ~30 libraries at every
// start; behind this C ABI only a process that really uses URLSession pays for them.
//
// ABI version 1. All integers are native; every JSON text is UTF-8.
//
//   int32_t sidecar_urlsession_abi_version(void)
//   void *sidecar_urlsession_create(const uint8_t *config, intptr_t length)
//       config: {"maxConnectionsPerHost": Int, "followRedirects": Bool, "userAgent": String}; NULL if malformed.
//   uint64_t sidecar_urlsession_send(void *session, const uint8_t *request, intptr_t length,
//                                    const uint8_t *body, intptr_t bodyLength,
//                                    sidecar_urlsession_completion completion, void *context)
//       request: {"method", "url", "target" (the redacted "METHOD scheme://host/path" used in messages),
//                 "headers": [[name, value]], "timeoutMs"?, "maxBytes",
//                 "file"?: {"path", "offset", "length"}, "download"?: fd}
//       download: a descriptor open for writing that receives the body instead of the reply; the plugin owns
//       it from this call on and closes it before completing (the host creates and, on failure, removes the file).
//       body: bytes to send (copied before returning), or NULL. Returns a ticket for cancel; 0 when the
//       completion has already been called.
//   void sidecar_urlsession_cancel(void *session, uint64_t ticket)     (unknown or finished ticket: no-op)
//   void sidecar_urlsession_destroy(void *session)                     (cancels what is still running)
//
//   typedef void (*sidecar_urlsession_completion)(void *context, const uint8_t *reply, intptr_t length,
//                                                 const uint8_t *body, intptr_t bodyLength)
//       Called exactly once per send, on any thread; the buffers live only during the call.
//       reply: {"status", "headers": [[name, value]], "bytes"} or {"error": {"kind", "requestSent", "message"}}
//       where kind is a `TransportError.Kind` description. body: the response body (not for downloads).
import Foundation

/// The host's completion callback.
public typealias SidecarURLSessionCompletion =
  @convention(c) (
    UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int, UnsafePointer<UInt8>?, Int
  ) -> Void

@_cdecl("sidecar_urlsession_abi_version")
public func sidecarURLSessionABIVersion() -> Int32 { 1 }

@_cdecl("sidecar_urlsession_create")
public func sidecarURLSessionCreate(_ config: UnsafePointer<UInt8>?, _ length: Int) -> UnsafeMutableRawPointer? {
  guard let config, let settings = try? decodeJSON(SessionSettings.self, config, length) else { return nil }
  return Unmanaged.passRetained(PluginSession(settings)).toOpaque()
}

@_cdecl("sidecar_urlsession_send")
public func sidecarURLSessionSend(
  _ session: UnsafeMutableRawPointer, _ request: UnsafePointer<UInt8>?, _ length: Int,
  _ body: UnsafePointer<UInt8>?, _ bodyLength: Int,
  _ completion: SidecarURLSessionCompletion, _ context: UnsafeMutableRawPointer?
) -> UInt64 {
  let reply = Completion(function: completion, context: context)
  guard let request, let description = try? decodeJSON(RequestDescription.self, request, length) else {
    reply.fail(
      Failure(kind: "invalidRequest", requestSent: false, message: "the URLSession plugin got a malformed request"))
    return 0
  }
  let bytes = body.map { Data(bytes: $0, count: max(0, bodyLength)) }
  return Unmanaged<PluginSession>.fromOpaque(session).takeUnretainedValue().send(description, body: bytes, reply: reply)
}

@_cdecl("sidecar_urlsession_cancel")
public func sidecarURLSessionCancel(_ session: UnsafeMutableRawPointer, _ ticket: UInt64) {
  Unmanaged<PluginSession>.fromOpaque(session).takeUnretainedValue().cancel(ticket)
}

@_cdecl("sidecar_urlsession_destroy")
public func sidecarURLSessionDestroy(_ session: UnsafeMutableRawPointer) {
  Unmanaged<PluginSession>.fromOpaque(session).takeRetainedValue().invalidate()
}

private func decodeJSON<T: Decodable>(_ type: T.Type, _ bytes: UnsafePointer<UInt8>, _ length: Int) throws -> T {
  try JSONDecoder().decode(
    type, from: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes), count: max(0, length), deallocator: .none))
}
