#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The size of the regular file at `path`, or nil when there is none there (missing, a directory, a device).
public func regularFileSize(atPath path: String) -> Int64? {
  var info = stat()
  guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
  return Int64(info.st_size)
}
