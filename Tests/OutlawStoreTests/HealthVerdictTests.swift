import Foundation
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// `outlawctl status`'s verdict from its facts: healthy (0), degraded (1) with one sentence per reason, down (2).
@Suite("Health verdict")
struct HealthVerdictTests {
    static let now = Date(timeIntervalSince1970: 1_796_000_000)

    /// A daemon that reported 3 s ago and nothing wrong.
    static func healthy() -> HealthVerdict.Facts {
        var facts = HealthVerdict.Facts(now: now, heartbeat: DaemonStatus(pid: 42, updatedAt: now.addingTimeInterval(-3), connectedDevices: 2))
        facts.processExists = true
        return facts
    }

    static func decide(_ change: (inout HealthVerdict.Facts) -> Void) -> HealthVerdict {
        var facts = healthy()
        change(&facts)
        return HealthVerdict.decide(facts)
    }

    @Test func nothingWrongIsHealthyWithExitZero() {
        let verdict = HealthVerdict.decide(Self.healthy())
        #expect(verdict == HealthVerdict(level: .healthy, reasons: []))
        #expect(verdict.level.exitCode == 0 && HealthVerdict.Level.degraded.exitCode == 1 && HealthVerdict.Level.down.exitCode == 2)
        #expect(HealthVerdict.Level.healthy < .degraded && HealthVerdict.Level.degraded < .down)
    }

    @Test func noReportIsDown() {
        let verdict = Self.decide { $0.heartbeat = nil; $0.processExists = nil }
        #expect(verdict.level == .down)
        #expect(verdict.reasons == ["outlawd is not running: it stopped, or has not started since the store was made (systemctl status outlawd)"])
    }

    @Test func aReportOlderThanThirtySecondsIsDown() {
        let stale = Self.decide { $0.heartbeat = DaemonStatus(pid: 42, updatedAt: Self.now.addingTimeInterval(-31), connectedDevices: 0) }
        #expect(stale.level == .down)
        #expect(stale.reasons.first?.hasPrefix("outlawd has not reported for 31 s (last at ") == true, "\(stale.reasons)")
        let recent = Self.decide { $0.heartbeat = DaemonStatus(pid: 42, updatedAt: Self.now.addingTimeInterval(-29), connectedDevices: 0) }
        #expect(recent.level == .healthy)
    }

    @Test func aFreshReportFromAProcessThatIsGoneIsDown() {
        let verdict = Self.decide { $0.processExists = false }
        #expect(verdict.level == .down)
        #expect(verdict.reasons.first?.hasPrefix("outlawd (pid 42) is not running: it ended without stopping cleanly") == true, "\(verdict.reasons)")
        #expect(!HealthVerdict.daemonReporting(DaemonStatus(pid: 42, updatedAt: Self.now, connectedDevices: 0), processExists: false, now: Self.now))
        #expect(HealthVerdict.daemonReporting(DaemonStatus(pid: 42, updatedAt: Self.now, connectedDevices: 0), processExists: nil, now: Self.now))
        #expect(!HealthVerdict.daemonReporting(nil, processExists: true, now: Self.now))
    }

    @Test func downComesFirstAndKeepsTheOtherReasons() {
        let verdict = Self.decide { $0.heartbeat = nil; $0.uploadsPaused = true }
        #expect(verdict.level == .down)
        #expect(verdict.reasons.count == 2 && verdict.reasons[0].hasPrefix("outlawd is not running")
            && verdict.reasons[1] == "uploads to Metrc are paused (outlawctl resume)", "\(verdict.reasons)")
    }

    @Test func pausedUploadsAreDegraded() {
        #expect(Self.decide { $0.uploadsPaused = true } == HealthVerdict(level: .degraded, reasons: ["uploads to Metrc are paused (outlawctl resume)"]))
    }

    @Test func whatTheDaemonLacksIsDegradedInItsOwnWords() {
        let gap = "uploads wait for the Metrc keys: put them in /etc/outlawd/credentials/metrc-vendor-key and ..."
        #expect(Self.decide { $0.uploadGaps = [gap] } == HealthVerdict(level: .degraded, reasons: [gap]))
    }

    @Test func metrcFailingSinceTheLastSuccessWithEventsWaiting() {
        let fault = HealthVerdict.MetrcFault(at: Self.now.addingTimeInterval(-60), outcome: .serverFault, message: "Metrc: 503 The service is unavailable.")
        let failing = Self.decide {
            $0.lastMetrcFault = fault
            $0.lastSuccessAt = Self.now.addingTimeInterval(-600)
            $0.waitingForMetrc = 7
        }
        #expect(failing.level == .degraded)
        #expect(failing.reasons.count == 1 && failing.reasons[0].hasPrefix("Metrc is failing: the upload at ")
            && failing.reasons[0].contains("got server fault: Metrc: 503 The service is unavailable., and none has succeeded since (7 events waiting"),
            "\(failing.reasons)")
        // Never a success at all counts as before the fault.
        #expect(Self.decide { $0.lastMetrcFault = fault; $0.waitingForMetrc = 1 }.level == .degraded)
        // A success after the fault, or nothing left to send: Metrc is not failing now.
        #expect(Self.decide { $0.lastMetrcFault = fault; $0.lastSuccessAt = Self.now; $0.waitingForMetrc = 7 }.level == .healthy)
        #expect(Self.decide { $0.lastMetrcFault = fault; $0.waitingForMetrc = 0 }.level == .healthy)
    }

    @Test func aBacklogPastAlertAfterHours() {
        let old = Self.decide { $0.oldestWaitingReceivedAt = Self.now.addingTimeInterval(-49 * 3600); $0.alertAfterHours = 48 }
        #expect(old.level == .degraded)
        #expect(old.reasons == ["the oldest waiting event was received 49 h ago, past [metrc] alert_after_hours (48 h): outlawctl failed; outlawctl batches --state held"])
        #expect(Self.decide { $0.oldestWaitingReceivedAt = Self.now.addingTimeInterval(-47 * 3600); $0.alertAfterHours = 48 }.level == .healthy)
        #expect(Self.decide { $0.oldestWaitingReceivedAt = Self.now.addingTimeInterval(-3600); $0.alertAfterHours = 0.5 }.reasons.first?
            .contains("(0.5 h)") == true)
    }

    @Test func aRefusedKeyNamesWhose() {
        let verdict = Self.decide { $0.rejectedKeys = ["jane", "Default"] }
        #expect(verdict == HealthVerdict(level: .degraded, reasons: [
            "Metrc refuses the key of jane, Default: the events it signs wait until a new key is set (outlawctl key list)",
        ]))
    }

    @Test func referenceDataFailingOrStaleWhileTheSyncIsOn() {
        let problem = "the Default Metrc key was refused by Metrc (reference sync of LIC-0001)"
        #expect(Self.decide { $0.referenceSync = true; $0.referenceProblem = problem }
            == HealthVerdict(level: .degraded, reasons: ["reference data: \(problem) (outlawctl sync status)"]))
        // Every 300 s: stale past an hour (never less); every 2 h: past three syncs.
        let stale = Self.decide { $0.referenceSync = true; $0.leastRecentReferenceSync = Self.now.addingTimeInterval(-3700) }
        #expect(stale.reasons == ["reference data is stale: a list was last synced 61 min ago, more than 60 min (outlawctl sync status)"])
        #expect(Self.decide { $0.referenceSync = true; $0.leastRecentReferenceSync = Self.now.addingTimeInterval(-3500) }.level == .healthy)
        #expect(Self.decide {
            $0.referenceSync = true
            $0.referenceSyncInterval = 7200
            $0.leastRecentReferenceSync = Self.now.addingTimeInterval(-5 * 3600)
        }.level == .healthy)
        // Nothing synced yet (the first sync runs) is not stale; with the sync off, its leftovers say nothing.
        #expect(Self.decide { $0.referenceSync = true; $0.leastRecentReferenceSync = nil }.level == .healthy)
        #expect(Self.decide {
            $0.referenceSync = false
            $0.referenceProblem = problem
            $0.leastRecentReferenceSync = Self.now.addingTimeInterval(-86_400)
        }.level == .healthy)
    }

    @Test func everyReasonAtOnceInAFixedOrder() {
        let verdict = Self.decide {
            $0.uploadGaps = ["gap"]
            $0.uploadsPaused = true
            $0.lastMetrcFault = HealthVerdict.MetrcFault(at: Self.now, outcome: .noAnswer, message: nil)
            $0.waitingForMetrc = 1
            $0.oldestWaitingReceivedAt = Self.now.addingTimeInterval(-100 * 3600)
            $0.rejectedKeys = ["bob"]
            $0.referenceSync = true
            $0.referenceProblem = "p"
            $0.leastRecentReferenceSync = Self.now.addingTimeInterval(-86_400 * 3)
        }
        #expect(verdict.level == .degraded)
        #expect(verdict.reasons.map { String($0.prefix(14)) } == [
            "gap", "uploads to Met", "Metrc is faili", "the oldest wai", "Metrc refuses ", "reference data", "reference data",
        ], "\(verdict.reasons)")
        #expect(verdict.reasons[2].contains("got no answer, and none"))
        #expect(verdict.reasons[6].contains("3 days ago"))
    }
}

/// What the verdict reads from the store: the last fault of Metrc's and the daemon's upload gaps.
@Suite("Health facts (store)")
struct HealthStoreTests {
    let dir: TempDirectory
    let store: Store

    init() throws {
        dir = try TempDirectory("outlawd-health")
        store = try Store(path: dir.file("state/outlawd.sqlite"), pinRounds: 1000)
    }

    func attempt(_ outcome: AttemptOutcome, at seconds: Double, message: String? = nil) throws {
        let id = try store.beginAttempt(eventIDs: [], license: "LIC-0001", action: .movePlants,
                                        signing: AttemptSigning(keyKind: .default, keyUser: nil, reason: "test"),
                                        now: Date(timeIntervalSince1970: seconds - 1))
        try store.finishAttempt(id, outcome: outcome, httpStatus: nil, message: message, metrcIDs: [], results: [],
                                now: Date(timeIntervalSince1970: seconds))
    }

    @Test func lastMetrcFaultIsTheNewestServerFaultNoAnswerOrNotFound() throws {
        #expect(try store.lastMetrcFault() == nil)
        try attempt(.noAnswer, at: 1000, message: "timeout")
        try attempt(.serverFault, at: 2000, message: "Metrc: 500 boom")
        // Refusals of an event or a key, and successes, are not Metrc failing.
        try attempt(.rejected, at: 3000, message: "Metrc: bad tag")
        try attempt(.unauthorized, at: 3100)
        try attempt(.accepted, at: 3200)
        #expect(try store.lastMetrcFault() == HealthVerdict.MetrcFault(at: Date(timeIntervalSince1970: 2000), outcome: .serverFault,
                                                                       message: "Metrc: 500 boom"))
        try attempt(.notFound, at: 4000, message: "Metrc: 404")
        #expect(try store.lastMetrcFault()?.outcome == .notFound)
    }

    @Test func uploadGapsAreKeptUntilReplaced() throws {
        #expect(try store.uploadGaps() == [])
        try store.setUploadGaps(["no Metrc address", "uploads wait for the Metrc keys"])
        #expect(try store.uploadGaps() == ["no Metrc address", "uploads wait for the Metrc keys"])
        try store.setUploadGaps([])
        #expect(try store.uploadGaps() == [])
        #expect(try store.setting("upload_gaps") == nil)
    }

    @Test func aReportWithoutTheNewerFieldsStillReads() throws {
        // A daemon of the version before wrote no `version`: outlawctl reads its report all the same.
        try store.setSetting("daemon_status", #"{"pid":7,"updatedAt":800000000,"connectedDevices":1}"#)
        #expect(try store.daemonStatus() == DaemonStatus(pid: 7, updatedAt: Date(timeIntervalSinceReferenceDate: 800_000_000), connectedDevices: 1))
        try store.recordDaemonStatus(DaemonStatus(pid: 8, updatedAt: Date(timeIntervalSinceReferenceDate: 1), connectedDevices: 0, version: "9.9"))
        #expect(try store.daemonStatus()?.version == "9.9")
    }
}
