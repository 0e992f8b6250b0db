import Foundation

/// Devices' commits go to the one writer before background writes (the uploader's records, retention, the reference
/// sync): a background write about to ask for the writer waits while a device's commit waits for it.
///
/// SQLite has one writer, and GRDB hands it out first come, first served. In a backlog drain the uploader asks for
/// it about forty times a second from several threads, 5 to 15 ms a time with its fsync, and a device's commit
/// queued behind four or five of those: 35 ms on average, 76 ms at worst, for a commit that itself takes 2 ms
/// (issue 21, measured 12-06). With this gate a device's commit waits for at most the background writes already
/// queued when it arrived. A background write never waits longer than `patience`, so steady ingest cannot starve
/// the uploader.
final class IngestFirst: @unchecked Sendable {
    /// How long a background write waits for devices' commits at most, before it queues for the writer anyway.
    static let patience: TimeInterval = 0.05

    /// Background writes take turns here first, so at most one at a time queues for the writer: a device's commit
    /// then waits for that one at most, not for every upload answer that arrived at once.
    let backgroundTurn = NSLock()
    private let condition = NSCondition()
    /// Devices' commits waiting for the writer (guarded by `condition`).
    private var waiting = 0
    /// Background writes waiting for them (guarded by `condition`).
    private var yielding = 0

    /// A device's commit is about to ask for the writer.
    func ingestArrives() {
        condition.lock()
        waiting += 1
        condition.unlock()
    }

    /// That commit has the writer (or gave up asking): background writes may go once no other waits.
    func ingestEntered() {
        condition.lock()
        waiting -= 1
        if waiting == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// Called by a background write before it asks for the writer: returns once no device's commit waits, or after
    /// `patience`. Blocks the calling thread (store work runs on threads of its own).
    func yieldToIngest(patience: TimeInterval = IngestFirst.patience) {
        condition.lock()
        defer { condition.unlock() }
        guard waiting > 0 else { return }
        yielding += 1
        defer { yielding -= 1 }
        let deadline = Date(timeIntervalSinceNow: patience)
        while waiting > 0, condition.wait(until: deadline) {}
    }

    /// Devices' commits waiting now, and background writes waiting for them (for tests).
    var waitingCommits: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiting
    }

    var yieldingWrites: Int {
        condition.lock()
        defer { condition.unlock() }
        return yielding
    }
}
