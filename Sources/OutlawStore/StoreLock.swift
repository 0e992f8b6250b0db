import Foundation

/// The lock on a store that a running outlawd holds for its whole life, and that `outlawctl restore` takes: neither
/// runs while the other does, nor two daemons on one store. An flock(2) on `<store>.lock`, so it is released when the
/// process ends however it ends, and other descriptors of the store's files opened and closed meanwhile (SQLite's,
/// GRDB's) leave it alone (POSIX record locks would be dropped by them).
public final class StoreLock: Sendable {
    private let fd: Int32
    public let path: String

    /// Takes the lock of the store at `storePath` without waiting; when another process holds it, throws `refusal`.
    public init(storePath: String, refusal: String) throws {
        path = storePath + ".lock"
        let folder = URL(fileURLWithPath: storePath).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let why = errno
            close(fd)
            if why == EWOULDBLOCK { throw StoreError(refusal) }
            throw StoreError("cannot lock \(path): \(String(cString: strerror(why)))")
        }
        self.fd = fd
    }

    deinit { close(fd) }
}
