import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// What reading Metrc back found for writes whose last attempt had no clear answer.
struct ReadBackResult: Sendable {
    /// Applied by Metrc, with Metrc's id of the record when it names one.
    var applied: [(Int64, String?)] = []
    var notApplied: [Int64] = []
    /// Metrc could not be read: these stay unknown and are checked again later.
    var unreadable: [PendingEvent] = []
    /// Metrc was read but does not tell: held for a person, with why; never sent blindly.
    var undecided: [(PendingEvent, String)] = []
}

/// Reads Metrc back for events of one action and facility, signed with `key`.
protocol ReadBack: Sendable {
    func check(_ events: [PendingEvent], license: String, key: String) async -> ReadBackResult
}

/// A POST Metrc applies again if it is sent again, and lists as entries afterwards (package adjustments, plant
/// waste records): the entries since the attempt are matched one for one, each entry claimed once (its id is
/// kept on the event it matched), so two identical events never both match one entry.
struct HistoryReadBack: ReadBack {
    /// The entries since a time, each with Metrc's id, matched against the events given the ids already claimed.
    typealias Matcher = @Sendable (_ events: [PendingEvent], _ license: String, _ key: String, _ since: Date, _ until: Date,
                                   _ claimed: @Sendable ([Int64]) async throws -> Set<Int64>) async throws -> (applied: [(Int64, Int64)], notApplied: [Int64])
    let store: Store
    let clock: @Sendable () -> Date
    let match: Matcher

    func check(_ events: [PendingEvent], license: String, key: String) async -> ReadBackResult {
        let since = (events.compactMap(\.unknownSince).min() ?? clock()).addingTimeInterval(-Reconciliation.clockSkew)
        let store = self.store
        do {
            let found = try await match(events, license, key, since, clock().addingTimeInterval(60)) { ids in
                try await Blocking.run { try store.claimedMetrcIDs(ids) }
            }
            return ReadBackResult(applied: found.applied.map { ($0.0, String($0.1)) }, notApplied: found.notApplied)
        } catch {
            return ReadBackResult(unreadable: events)
        }
    }

    /// Adjustments: the package adjustment history, by package, quantity, unit, reason and date.
    static func adjustments(client: MetrcClient, store: Store, clock: @escaping @Sendable () -> Date) -> HistoryReadBack {
        HistoryReadBack(store: store, clock: clock) { events, license, key, since, until, claimed in
            let history = try await client.adjustments(license: license, userKey: key, since: since, until: until)
            return Reconciliation.match(events, against: history, alreadyClaimed: try await claimed(history.map(\.id)))
        }
    }

    /// Plant waste: the waste records, by the plants (or room) named, weight, method, reason and date.
    static func waste(client: MetrcClient, store: Store, clock: @escaping @Sendable () -> Date) -> HistoryReadBack {
        HistoryReadBack(store: store, clock: clock) { events, license, key, since, until, claimed in
            let records = Reconciliation.wasteRecords(try await client.list(path: "/plants/v2/waste", license: license, userKey: key,
                                                                            since: since, until: until))
            return Reconciliation.matchWaste(events, against: records, alreadyClaimed: try await claimed(records.map(\.id)))
        }
    }
}

/// Manicures (a POST on a plant that stays): the plant's `HarvestCount` before the attempt (kept as the
/// event's read-back base) against now. One more: applied; the same: not applied; anything else (someone
/// else harvested or manicured it meanwhile, or no base was kept): undecided, for a person to check. The counts
/// before are read and kept by `ManicureBases`.
struct ManicureReadBack: ReadBack {
    let client: MetrcClient

    func check(_ events: [PendingEvent], license: String, key: String) async -> ReadBackResult {
        var result = ReadBackResult()
        for event in events {
            guard let before = event.readBackBase.flatMap({ Reconciliation.harvestCount($0) }) else {
                result.undecided.append((event, "manicure outcome unknown and no count from before the attempt was kept"))
                continue
            }
            do {
                let record = try await client.list(path: "/plants/v2/" + event.tag, license: license, userKey: key, since: nil, until: nil).first
                switch Reconciliation.manicureApplied(before: before, record: record) {
                case true?: result.applied.append((event.id, nil))
                case false?: result.notApplied.append(event.id)
                case nil:
                    let now = record.flatMap(Reconciliation.harvestCount).map(String.init) ?? "unknown"
                    result.undecided.append((event, "manicure outcome unknown: Metrc counted \(before) harvests of \(event.tag) before the attempt and \(now) now"))
                }
            } catch {
                result.unreadable.append(event)
            }
        }
        return result
    }
}

/// Moves, harvests and destroys: the plant's or package's own record shows whether the change happened
/// since the attempt (only one unfinished event per tag is ever in flight, so such a change is ours).
struct RecordReadBack: ReadBack {
    let client: MetrcClient

    func check(_ events: [PendingEvent], license: String, key: String) async -> ReadBackResult {
        var result = ReadBackResult()
        for event in events {
            let path = (event.type.tagField == "plant" ? "/plants/v2/" : "/packages/v2/") + event.tag
            do {
                let record = try await client.list(path: path, license: license, userKey: key, since: nil, until: nil).first
                if Reconciliation.isApplied(type: event.type, fields: event.fields, record: record, since: event.unknownSince ?? Date()) {
                    result.applied.append((event.id, nil))
                } else {
                    result.notApplied.append(event.id)
                }
            } catch let error as MetrcReadError where error.status == 404 {
                result.notApplied.append(event.id)
            } catch {
                result.unreadable.append(event)
            }
        }
        return result
    }
}
