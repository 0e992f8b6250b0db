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
}

/// Reads Metrc back for events of one action and facility, signed with `key`.
protocol ReadBack: Sendable {
    func check(_ events: [PendingEvent], license: String, key: String) async -> ReadBackResult
}

/// Adjustments (a POST Metrc applies again if it is sent again): matched one for one against the package
/// adjustment history since the attempt, each history entry claimed once.
struct AdjustmentReadBack: ReadBack {
    let client: MetrcClient
    let store: Store
    let clock: @Sendable () -> Date

    func check(_ events: [PendingEvent], license: String, key: String) async -> ReadBackResult {
        let since = (events.compactMap(\.unknownSince).min() ?? clock()).addingTimeInterval(-Reconciliation.clockSkew)
        do {
            let history = try await client.adjustments(license: license, userKey: key, since: since, until: clock().addingTimeInterval(60))
            let claimed = try store.claimedMetrcIDs(history.map(\.id))
            let match = Reconciliation.match(events, against: history, alreadyClaimed: claimed)
            return ReadBackResult(applied: match.applied.map { ($0.0, String($0.1)) }, notApplied: match.notApplied)
        } catch {
            return ReadBackResult(unreadable: events)
        }
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
