import Foundation
import OutlawKeys
import OutlawProtocol
import OutlawStore

/// Review, Failed and Status: the queue's work.
extension ConsoleApp {
    /// Batches shown on Review and Failed at most (the oldest first, as outlawctl lists them).
    static let maxBatchesShown = 100

    func reviewBody(_ visitor: Visitor) throws -> String {
        let batches = try store.reviewList().prefix(Self.maxBatchesShown)
        return ConsoleTemplates.render("review", [
            "csrf": visitor.session.csrf,
            "batches": batches.map { batch -> [String: Any] in
                ["device": batch.device, "id": batch.id, "user": batch.user, "license": batch.license, "received": Self.shown(batch.receivedAt),
                 "events": batch.events.map { event -> [String: Any] in
                     ["seq": String(event.seq), "type": event.type, "tag": event.tag, "at": event.at, "why": event.message ?? "-"]
                 }]
            },
        ])
    }

    /// Approve or reject a batch's events in review (all, or one `seq`), through the store call `outlawctl review`
    /// uses: one transaction with its audit row naming the person.
    func decide(approve: Bool, form: ConsoleForm, visitor: Visitor) async -> ConsoleResponse {
        guard ConsoleAccess.canDecide(visitor.user) else { return forbidden(visitor) }
        guard let device = form.text("device"), let batch = form.text("batch") else {
            return await show(.review, visitor: visitor, problem: "Say which batch to decide.", status: 400)
        }
        var seqs: [Int]?
        if let seq = form.text("seq") {
            guard let n = Int(seq), n >= 1 else { return await show(.review, visitor: visitor, problem: "That event number is not valid.", status: 400) }
            seqs = [n]
        }
        let decision: ReviewDecision
        if approve {
            decision = .approve
        } else {
            guard let reason = form.text("reason") else {
                return await show(.review, visitor: visitor, problem: "A rejection needs a reason: say why these events must not reach Metrc.", status: 400)
            }
            decision = .reject(reason: String(reason.prefix(500)))
        }
        do {
            let actor = visitor.user.name
            let chosen = seqs
            let decided = try await Blocking.run { [store] in
                try store.decideReview(device: device, batch: batch, seqs: chosen, decision: decision, actor: actor)
            }
            let what = decided.count == 1 ? "Event \(decided[0])" : "\(decided.count) events"
            return await show(.review, visitor: visitor,
                              notice: "\(what) of \(device) \(batch) \(approve ? "approved: they upload next" : "rejected: they never reach Metrc").")
        } catch let error as StoreError {
            return await show(.review, visitor: visitor, problem: Self.sentence(error.description), status: 400)
        } catch {
            return await show(.review, visitor: visitor, problem: "The server cannot record the decision right now. Try again in a moment.", status: 503)
        }
    }

    func failedBody(_ visitor: Visitor) throws -> String {
        let batches = try store.failures(FailureFilter(includeHeld: false)).prefix(Self.maxBatchesShown)
        return ConsoleTemplates.render("failed", [
            "csrf": visitor.session.csrf,
            "batches": batches.map { batch -> [String: Any] in
                ["device": batch.device, "id": batch.id, "user": batch.user, "license": batch.license, "received": Self.shown(batch.receivedAt),
                 "events": batch.events.map { event -> [String: Any] in
                     let message = event.message ?? event.state.rawValue
                     return ["seq": String(event.seq), "type": event.type, "tag": event.tag, "state": event.state.rawValue, "message": message,
                             "hint": FailureCauses.advice(heldCode: event.heldCode, message: message, users: [batch.user])]
                 }]
            },
        ])
    }

    /// Requeues a batch's failed events through the store call `outlawctl replay` uses (audited with the person).
    func replay(form: ConsoleForm, visitor: Visitor) async -> ConsoleResponse {
        guard ConsoleAccess.canDecide(visitor.user) else { return forbidden(visitor) }
        guard let device = form.text("device"), let batch = form.text("batch") else {
            return await show(.failed, visitor: visitor, problem: "Say which batch to replay.", status: 400)
        }
        do {
            let actor = visitor.user.name
            let requeued = try await Blocking.run { [store] in
                try store.replay(FailureFilter(batch: (device, batch), includeHeld: false), dryRun: false, actor: actor)
            }
            let count = requeued.reduce(0) { $0 + $1.events.count }
            guard count > 0 else {
                return await show(.failed, visitor: visitor, problem: "Nothing of \(device) \(batch) was requeued: it has no failed events now.", status: 409)
            }
            return await show(.failed, visitor: visitor, notice: "\(count) event\(count == 1 ? "" : "s") of \(device) \(batch) requeued: they upload again next.")
        } catch let error as StoreError {
            return await show(.failed, visitor: visitor, problem: Self.sentence(error.description), status: 400)
        } catch {
            return await show(.failed, visitor: visitor, problem: "The server cannot requeue right now. Try again in a moment.", status: 503)
        }
    }

    /// What `outlawctl status` shows, from the same store reads and the same verdict.
    func statusBody(_ visitor: Visitor) throws -> String {
        let snapshot = try statusSnapshot()
        return ConsoleTemplates.render("status", [
            "lines": snapshot.lines.map { ["label": $0.label, "value": $0.value] }, "hasReasons": !snapshot.reasons.isEmpty,
            "reasons": snapshot.reasons, "every": String(Self.statusRefreshSeconds), "asOf": Self.shown(snapshot.at),
        ])
    }

    /// The Status page's facts, read again at most every `statusMaxAge`: however many browsers refresh it, the
    /// store is asked once per interval, as often as the daemon's own status line asks it.
    func statusSnapshot() throws -> StatusSnapshot {
        let now = now()
        if let cached = statusCache.withLock({ $0 }), now.timeIntervalSince(cached.at) < Self.statusMaxAge, cached.at <= now { return cached }
        let snapshot = try readStatus(now: now)
        statusCache.withLock { $0 = snapshot }
        return snapshot
    }

    func readStatus(now: Date) throws -> StatusSnapshot {
        // Unfinished and failed events only, as the daemon's own status line counts them: the finished ones are most
        // of a year's table, and this page is fetched again every few seconds by every open browser.
        let queue = try store.queueStats(countingFinished: false)
        let daemon = try store.daemonStatus()
        let rows = try KeyRow.all(store, policy: keyPolicy(), now: now)
        let rejected = rows.filter { $0.status == KeyStatus.rejected.rawValue }.map { $0.user ?? "Default" }
        let expiring = rows.filter(\.expiring).map { $0.user ?? "Default" }
        var facts = HealthVerdict.Facts(now: now, heartbeat: daemon)
        facts.processExists = true  // this page is served by the daemon itself
        facts.uploadGaps = try store.uploadGaps()
        facts.uploadsPaused = try store.uploadsPaused()
        facts.waitingForMetrc = queue.queued + queue.uploading
        facts.oldestWaitingReceivedAt = queue.oldestWaitingReceivedAt
        facts.alertAfterHours = status.alertAfterHours
        facts.lastMetrcFault = try store.lastMetrcFault()
        facts.lastSuccessAt = queue.lastSuccessAt
        facts.rejectedKeys = rejected
        facts.referenceSync = status.referenceSync
        facts.referenceSyncInterval = status.referenceSyncInterval
        facts.referenceProblem = try store.setting(Store.referenceSyncProblemSetting)
        let lists = try store.referenceSyncStates().filter { status.licenses.contains($0.license) }
        facts.leastRecentReferenceSync = lists.compactMap(\.lastSuccessAt).min()
        let never = lists.filter { $0.lastSuccessAt == nil }.count
        let verdict = HealthVerdict.decide(facts)
        var lastSync = "never"
        if let least = facts.leastRecentReferenceSync {
            let which = never > 0 ? " (least recent list; \(never) of \(lists.count) never synced)" : " (least recent of \(lists.count) lists)"
            lastSync = Self.shown(least) + which
        }
        func names(_ list: [String]) -> String { list.isEmpty ? "" : " (\(list.joined(separator: ", ")))" }
        let lines: [(String, String)] = [
            ("Health", verdict.level.rawValue),
            ("Daemon", "running, version \(OutlawBuild.version), \(status.connectedDevices()) devices connected"),
            ("Uploads", facts.uploadsPaused ? "PAUSED (outlawctl resume)" : "running"),
            ("Waiting", "\(queue.queued) queued, \(queue.uploading) uploading, \(queue.held) held, \(queue.review) in review"),
            ("Oldest wait", queue.oldestWaitingReceivedAt.map { "received \(Self.shown($0))" } ?? "-"),
            ("Held users", queue.heldUsers.isEmpty ? "-" : queue.heldUsers.joined(separator: ", ")),
            ("Failed", "\(queue.failed) (uploaded and recorded events: outlawctl status counts them)"),
            ("Default key", try store.defaultKeyStatus()?.rawValue ?? "unknown"),
            ("Keys", "\(rows.filter { $0.kind == "personal" }.count) personal; \(rejected.count) rejected\(names(rejected)); \(expiring.count) expiring within \(keyPolicy().warnDays) days\(names(expiring))"),
            ("Metrc success", Self.shown(queue.lastSuccessAt)),
            ("Metrc error", queue.lastErrorAt.map { "\(Self.shown($0)) \(queue.lastErrorMessage ?? "")" } ?? "-"),
            ("Last sync", lastSync),
        ] + (facts.referenceProblem.map { [("Reference", $0)] } ?? [])
        return StatusSnapshot(at: now, lines: lines.map { (label: $0.0, value: $0.1) }, reasons: verdict.reasons)
    }
}

/// What the Status page shows, as read at `at`.
struct StatusSnapshot: Sendable {
    let at: Date
    let lines: [(label: String, value: String)]
    let reasons: [String]
}
