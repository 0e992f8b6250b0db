import Foundation
import GRDB
import Synchronization

/// Copies the write-ahead log into the database file on a thread and connection of its own, so no commit (and no
/// device's ack waiting on one) pays for a checkpoint.
///
/// SQLite checkpoints from inside the commit that takes the log past 1,000 pages: that commit writes the pages
/// into the database file and syncs it too, 15 ms instead of 2 under the paced bench, and every batch queued
/// behind it waits as long. A passive checkpoint from another connection runs beside the writer; the writer only
/// checkpoints itself past `writerBackstopPages`, should this thread ever fall that far behind.
final class Checkpointer: Sendable {
    /// The writer's own automatic checkpoint, as a backstop only (about 40 MB of log).
    static let writerBackstopPages = 10_000

    private let stopped = Atomic<Bool>(false)
    /// Signalled by `stop`, so the thread ends at once rather than after its pause.
    private let wake = DispatchSemaphore(value: 0)

    /// Starts checkpointing the store at `path` every `interval`; `stop` ends it.
    init(path: String, interval: Duration) throws {
        var config = Configuration()
        config.label = "outlawd.checkpointer"
        let connection = try DatabaseQueue(path: path, configuration: config)
        // A checkpoint syncs the log before copying and the database file after, as the writer's would.
        try connection.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let thread = Thread { [self] in
            let pause = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
            while !self.stopped.load(ordering: .relaxed) {
                if self.wake.wait(timeout: .now() + pause) == .success { break }
                // Passive: never waits for readers or the writer; what it cannot copy now it copies next time.
                _ = try? connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            }
        }
        thread.name = "outlawd.checkpointer"
        thread.stackSize = 1 << 20
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        wake.signal()
    }
}
