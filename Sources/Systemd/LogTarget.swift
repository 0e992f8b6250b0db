import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where log entries go: the journal (structured fields) or plain lines on stderr.
/// The raw values are what `--log-target` accepts.
public enum LogTarget: String, Sendable, CaseIterable {
    case journal
    case stderr

    /// The journal's native socket.
    public static let journalSocketPath = "/run/systemd/journal/socket"

    /// Whether a journald is listening on `journalSocketPath`. Sending tells nothing: libsystemd reports
    /// success when the socket is missing (it drops the entry on purpose), and a socket file left by a
    /// journald that is gone refuses connections. Connecting a datagram socket asks the listener itself.
    public static func journaldAnswers(at path: String = journalSocketPath) -> Bool {
        outlawd_datagram_listener(path) == 1
    }

    /// `journal` when the journal socket exists and either stderr is connected to the journal
    /// (`JOURNAL_STREAM` names stderr's device and inode) or the process runs as a systemd service
    /// (`INVOCATION_ID` is set); `stderr` otherwise.
    public static func automatic() -> LogTarget {
        var st = stat()
        let identity: (UInt64, UInt64)? = fstat(2, &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
        return automatic(
            environment: { name in getenv(name).map { String(cString: $0) } },
            stderrIdentity: identity,
            journalSocketExists: access(journalSocketPath, F_OK) == 0)
    }

    /// The decision of ``automatic()`` from explicit inputs.
    static func automatic(
        environment: (String) -> String?,
        stderrIdentity: (dev: UInt64, ino: UInt64)?,
        journalSocketExists: Bool
    ) -> LogTarget {
        guard journalSocketExists else { return .stderr }
        if let stream = environment("JOURNAL_STREAM"), let identity = stderrIdentity {
            let parts = stream.split(separator: ":")
            if parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]),
                dev == identity.dev, ino == identity.ino
            {
                return .journal
            }
        }
        if let invocation = environment("INVOCATION_ID"), !invocation.isEmpty { return .journal }
        return .stderr
    }

    /// A handler for this target.
    public func makeHandler(label: String, identifier: String? = nil) -> any LogHandler {
        switch self {
        case .journal: return JournalLogHandler(label: label, identifier: identifier)
        case .stderr: return StderrLogHandler(label: label)
        }
    }
}
