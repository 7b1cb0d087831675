#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How both transports open the files they stream: bodies to upload and downloads to write.
public enum BodyFiles {
  /// Opens a request body file for reading. It runs on the caller's task, so it must not block: a FIFO opened without
  /// `O_NONBLOCK` would hold the thread until a writer came. A link swapped in since the file was checked is not
  /// followed, and only a regular file holding `offset + length` bytes is accepted. The caller closes the descriptor.
  public static func openForUpload(_ path: String, offset: Int64, length: Int64) throws(TransportError) -> Int32 {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else {
      throw TransportError(.invalidRequest, requestSent: false, message: "cannot open \(path): \(errnoText())")
    }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
      close(fd)
      throw TransportError(.invalidRequest, requestSent: false, message: "\(path) is not a regular file")
    }
    guard offset >= 0, length >= 0, Int64(info.st_size) >= offset + length else {
      close(fd)
      throw TransportError(
        .invalidRequest, requestSent: false, message: "\(path) holds fewer than \(offset + length) bytes")
    }
    return fd
  }

  /// Creates (or truncates) a download file readable by its owner only, never through a link planted at `path`.
  static func createForDownload(_ path: String) throws(TransportError) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw TransportError(.invalidRequest, requestSent: false, message: "cannot create \(path): \(errnoText())")
    }
    return fd
  }

  static func errnoText() -> String { String(cString: strerror(errno)) }
}
