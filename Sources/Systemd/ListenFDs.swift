import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sockets passed by systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`),
/// read with `sd_listen_fds_with_names(3)`.
public enum ListenFDs {
    /// The first passed descriptor, `SD_LISTEN_FDS_START` (3).
    public static let start: Int32 = 3

    /// Failure reading the socket-activation environment.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// Positive errno from libsystemd.
        public let errno: Int32
        public var description: String { "sd_listen_fds_with_names failed: \(String(cString: strerror(errno)))" }
    }

    /// Every descriptor passed to this process with its name, in order (fd 3, 4, ...).
    /// Empty when not socket-activated or when `LISTEN_PID` is another process.
    /// Names default to `unknown` when `LISTEN_FDNAMES` is missing (systemd's rule).
    ///
    /// With `unsetEnvironment`, the three variables are removed so children do not inherit them; a
    /// second call then returns nothing. The descriptors get `FD_CLOEXEC` either way.
    public static func all(unsetEnvironment: Bool = false) throws(Error) -> [(fd: Int32, name: String)] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let count = sd_listen_fds_with_names(unsetEnvironment ? 1 : 0, &names)
        defer {
            if let names {
                var i = 0
                while let p = names[i] {
                    free(p)
                    i += 1
                }
                free(names)
            }
        }
        if count < 0 { throw Error(errno: -count) }
        var result: [(fd: Int32, name: String)] = []
        result.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            result.append((fd: start + Int32(i), name: name))
        }
        return result
    }

    /// The first passed descriptor named `name` (`FileDescriptorName=` in the .socket unit), or nil.
    public static func socket(named name: String, unsetEnvironment: Bool = false) throws(Error) -> Int32? {
        try all(unsetEnvironment: unsetEnvironment).first { $0.name == name }?.fd
    }

    /// Every descriptor named `name`, in order (several `ListenStream=` in one socket unit share a name).
    public static func sockets(named name: String, unsetEnvironment: Bool = false) throws(Error) -> [Int32] {
        try all(unsetEnvironment: unsetEnvironment).filter { $0.name == name }.map(\.fd)
    }

    /// True when `fd` is a listening stream socket (`sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1)`).
    public static func isListeningStreamSocket(_ fd: Int32) -> Bool {
        sd_is_socket(fd, Int32(AF_UNSPEC), Int32(SOCK_STREAM.rawValue), 1) > 0
    }

    /// True when `fd` is bound to a loopback address (127.0.0.0/8 or ::1) only, so nothing beyond this machine
    /// can reach it.
    public static func isLoopback(_ fd: Int32) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return false }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) >> 24 == 127 }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    withUnsafeBytes(of: sin6.pointee.sin6_addr) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1 }
                }
            }
        default:
            return false
        }
    }
}
