import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Holds the sandbox's port while a refuse-mode outage has nothing listening on it: a socket bound to the port but never
/// listening, so connections are still refused, while no other server (a parallel test's `bind(0)`) and no client's
/// outgoing connection can take the port before the listener comes back. Bound beside the listener (both
/// `SO_REUSEPORT`, same user) before that closes, and closed only once the new listener is bound: the port is never free.
struct PortReservation: Sendable {
    /// `SO_REUSEPORT`, which the listener sets too: two sockets of one user may then share the port.
    static let reusePort = NIOBSDSocket.Option(rawValue: SO_REUSEPORT)

    let descriptor: CInt

    init(_ address: SocketAddress) throws {
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let size = socklen_t(MemoryLayout<CInt>.size)
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) == 0,
              address.withSockAddr({ bind(fd, $0, socklen_t($1)) }) == 0
        else {
            let code = errno
            close(fd)
            throw IOError(errnoCode: code, reason: "binding a socket to hold \(address)")
        }
        descriptor = fd
    }

    func release() { close(descriptor) }
}
