import Foundation
import Logging
import OutlawConfig
import OutlawProtocol
import OutlawStore

/// Writes the audit chain's head to the journal, a witness the database cannot rewrite: a chain recomputed from
/// some row on, or cut short at its end, still verifies on its own, but no longer ends at the heads logged at
/// every start and once a day since.
struct AuditWitness: Sendable {
    let store: Store
    let logger: Logger
    static let interval: Duration = .seconds(86_400)

    /// The `daemon.start` row (version and the configuration's SHA-256), then the head it makes.
    func recordStart(_ configuration: DaemonConfiguration) {
        let (digest, source) = Self.configurationDigest(configuration)
        do {
            try store.audit(actor: "outlawd", action: .daemonStart, subject: source,
                            detail: "version=\(Daemon.version) config_sha256=\(Self.hex(digest))")
        } catch {
            // Not fatal: batches are still stored and acknowledged; the missing row is itself visible.
            logger.error("cannot write the daemon.start audit row: \(error)", metadata: MessageID.auditStartNotRecorded.metadata())
        }
        logHead()
    }

    /// One notice with `AUDIT_HEAD_ID` and `AUDIT_HEAD_HASH` (journalctl -u outlawd AUDIT_HEAD_ID=…).
    func logHead() {
        do {
            guard let head = try store.auditHead() else { return }
            logger.notice("audit chain head",
                          metadata: MessageID.auditHead.metadata(["audit_head_id": "\(head.id)", "audit_head_hash": "\(head.hex)"]))
        } catch {
            logger.error("cannot read the audit chain's head: \(error)", metadata: MessageID.auditHeadUnreadable.metadata())
        }
    }

    /// The head again once a day, until cancelled (graceful shutdown).
    func run() async {
        while true {
            do {
                try await Task.sleep(for: Self.interval)
            } catch {
                return
            }
            logHead()
        }
    }

    /// The SHA-256 of the configuration file's bytes, when the daemon runs exactly what that file says (a
    /// `--listen` override aside, which the source then names); otherwise of the running settings as Swift
    /// prints them, e.g. in dev mode, whose outlawd.toml is written only once the daemon listens.
    static func configurationDigest(_ configuration: DaemonConfiguration) -> (digest: Data, source: String) {
        if let file = configuration.file, let bytes = FileManager.default.contents(atPath: file),
           let text = String(data: bytes, encoding: .utf8)
        {
            let folder = URL(fileURLWithPath: file).standardizedFileURL.deletingLastPathComponent().path
            if var said = try? DaemonConfiguration.parse(text, file: file, relativeTo: folder) {
                let listen = (said.server.host, said.server.port)
                said.server.host = configuration.server.host
                said.server.port = configuration.server.port
                if said == configuration {
                    let overridden = listen != (configuration.server.host, configuration.server.port)
                    return (Secrets.sha256(bytes),
                            overridden ? "\(file) (listen \(configuration.server.host):\(configuration.server.port))" : file)
                }
            }
        }
        return (Secrets.sha256(Data(String(reflecting: configuration).utf8)), "running settings")
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}
