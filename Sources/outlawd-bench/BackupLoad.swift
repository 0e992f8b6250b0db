import Foundation
import OutlawStore
import OutlawTestSupport

/// What `outlawctl backup` cost while the paced load ran.
struct BackupFigures: Sendable {
    var count = 0
    var bytes = 0.0
    var seconds = 0.0

    var meanBytes: Double { count > 0 ? bytes / Double(count) : 0 }
    var meanSeconds: Double { count > 0 ? seconds / Double(count) : 0 }
    var secondsPerGB: Double { bytes > 0 ? seconds / (bytes / 1e9) : 0 }
}

/// Copies the daemon's store with `outlawctl backup`, one copy after another, until cancelled; each copy is
/// deleted once counted (the disk holds one at a time).
enum BackupLoad {
    static func run(_ daemon: DaemonProcess) async throws -> BackupFigures {
        var figures = BackupFigures()
        while !Task.isCancelled {
            let path = daemon.directory.file("bench-backup-\(figures.count).sqlite")
            let result = try await daemon.ctl(["backup", path, "--json"])
            guard result.status == 0 else { throw BenchError("outlawctl backup: \(result.stderr)") }
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            figures.count += 1
            figures.bytes += (report["bytes"] as? Double) ?? Double(report["bytes"] as? Int ?? 0)
            figures.seconds += report["seconds"] as? Double ?? 0
            // As the daemon prunes its old copies.
            try await LowPriority.run { try Store.removeGradually(path) }
        }
        return figures
    }
}
