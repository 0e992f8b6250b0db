import ArgumentParser
import Foundation
import OutlawProtocol

/// The operator's tool: devices, users and the batch queue, safe to run while the daemon runs.
struct Outlawctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outlawctl",
        abstract: "Manage outlawd: devices, users, batches, reference data.",
        discussion: "Exit codes: 0 ok, 1 the operation failed (message on stderr), 2 usage or configuration error; status: 0 healthy, 1 degraded, 2 down.",
        version: OutlawBuild.version,
        subcommands: [StatusCommand.self, DeviceCommand.self, UserCommand.self, KeyCommand.self, BatchesCommand.self, BatchCommand.self,
                      FailedCommand.self, ReplayCommand.self, ReviewCommand.self, PauseCommand.self, ResumeCommand.self, AuditCommand.self,
                      SyncCommand.self, TLSCommand.self, BackupCommand.self, VerifyBackupCommand.self, RestoreCommand.self,
                      ArchiveCommand.self])
}

// The store's WAL and anything else outlawctl creates is for its owner only.
umask(0o077)
CommandLineRunner.run(Outlawctl.self)
