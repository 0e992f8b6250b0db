import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore

/// Before a write with an unknown outcome is sent again, asks Metrc whether it was applied, with the read-back
/// that fits its action, records what it found, and returns the events that must be sent again.
struct Reconciler: Sendable {
    let store: Store
    let logger: Logger
    let backoff: Backoff
    let clock: @Sendable () -> Date
    /// The read-back for each action; every action the uploader sends has one.
    let readBacks: [MetrcAction: any ReadBack]

    init(store: Store, client: MetrcClient, logger: Logger, backoff: Backoff, clock: @escaping @Sendable () -> Date) {
        self.store = store
        self.logger = logger
        self.backoff = backoff
        self.clock = clock
        let record = RecordReadBack(client: client)
        readBacks = [
            .adjustPackages: HistoryReadBack.adjustments(client: client, store: store, clock: clock),
            .wastePlants: HistoryReadBack.waste(client: client, store: store, clock: clock),
            .manicurePlants: ManicureReadBack(client: client),
            .movePlants: record, .harvestPlants: record, .destroyPlants: record, .movePackages: record,
        ]
    }

    func reconcile(_ events: [PendingEvent], decide: (PendingEvent) -> SigningDecision) async -> [PendingEvent] {
        var found = ReadBackResult()
        var sendable: [PendingEvent] = []
        for (license, list) in Dictionary(grouping: events, by: \.license) {
            guard let key = list.first(where: { decide($0).key != nil }).flatMap({ decide($0).key }) else {
                sendable += list  // nobody can sign: the planner holds them
                continue
            }
            for (action, sameAction) in Dictionary(grouping: list, by: { MetrcAction(eventType: $0.type) }) {
                guard let action, let readBack = readBacks[action] else {
                    // Not a Metrc write: nothing can have been applied.
                    found.notApplied += sameAction.map(\.id)
                    continue
                }
                let part = await readBack.check(sameAction, license: license, key: key)
                found.applied += part.applied
                found.notApplied += part.notApplied
                found.unreadable += part.unreadable
                found.undecided += part.undecided
            }
        }
        let now = clock()
        // A read-back is not an attempt: what could not be read waits the backoff its attempts so far earned.
        let applied = found.applied.map { ($0.0, EventResult.uploaded(metrcID: $0.1)) }
        let notApplied = found.notApplied
        let unreadable = OutcomePolicy.retry(found.unreadable, after: .neverLeft, message: "outcome unknown; Metrc could not be read back yet",
                                             now: now, backoff: backoff, jitter: Double.random(in: 0...1))
        let undecided = found.undecided.map { ($0.0.id, EventResult.held(code: .readBackUndecided, reason: $0.1)) }
        let store = self.store
        do {
            try await Blocking.run {
                try store.resolve(applied, now: now)
                try store.clearUnknown(eventIDs: notApplied)
                try store.resolve(unreadable, now: now)
                try store.resolve(undecided, now: now)
            }
        } catch {
            logger.error("cannot record a read-back: \(error)", metadata: MessageID.readBackNotRecorded.metadata())
            return []
        }
        let resend = Set(found.notApplied)
        sendable += events.filter { resend.contains($0.id) }
        logger.notice("read Metrc back for writes with an unknown outcome", metadata: MessageID.readBack.metadata([
            "events": "\(events.count)", "applied": "\(found.applied.count)", "not_applied": "\(found.notApplied.count)",
            "unreadable": "\(found.unreadable.count)", "undecided": "\(found.undecided.count)",
        ]))
        for (event, reason) in found.undecided {
            logger.error("held for a person: \(reason)",
                         metadata: MessageID.readBackUndecided.metadata(["event": "\(event.id)", "held_code": "\(HoldCode.readBackUndecided.rawValue)"]))
        }
        return sendable.sorted { $0.id < $1.id }
    }
}
