import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// Decides from what Metrc shows whether a write with an unknown outcome was applied; pure.
///
/// Only one unfinished event per tag is ever in flight (uploads keep order per tag), so a change to that
/// plant or package matching the event, made after the attempt started, is ours.
public enum Reconciliation {
    /// How far Metrc's clock may be behind ours when comparing `LastModified` with an attempt's start.
    public static let clockSkew: TimeInterval = 120

    /// Whether a plant or package record (as `GET /plants/v2/{label}` or `/packages/v2/{label}` returns it)
    /// shows the event applied since `since`. `record` nil means Metrc does not know the tag: not applied.
    public static func isApplied(type: EventType, fields: [String: JSONValue], record: [String: JSONValue]?, since: Date) -> Bool {
        guard let record else { return false }
        func text(_ key: String) -> String? {
            record.first { $0.key.caseInsensitiveCompare(key) == .orderedSame }?.value.stringValue
        }
        func same(_ a: String?, _ b: String?) -> Bool {
            (a ?? "").trimmingCharacters(in: .whitespaces).caseInsensitiveCompare((b ?? "").trimmingCharacters(in: .whitespaces)) == .orderedSame
        }
        // Without a readable LastModified the fields alone decide.
        let changedSince = text("LastModified").flatMap(Timestamp.init).map { $0.date >= since.addingTimeInterval(-clockSkew) } ?? true
        guard changedSince else { return false }
        switch type {
        case .plantMove, .packageMove:
            let sublocation = fields["sublocation"]?.stringValue
            return same(text("LocationName"), fields["location"]?.stringValue)
                && (sublocation == nil || same(text("SublocationName"), sublocation))
        case .plantHarvest:
            return text("HarvestedDate") != nil
        case .plantDestroy:
            return text("DestroyedDate") != nil
        case .packageAdjust, .plantScan, .packageScan:
            return false
        }
    }

    /// Splits events into those Metrc shows as applied (with the adjustment's id) and those it does not.
    public static func match(_ events: [PendingEvent], against history: [MetrcClient.Adjustment],
                             alreadyClaimed: Set<Int64>) -> (applied: [(Int64, Int64)], notApplied: [Int64])
    {
        var available = history.filter { !alreadyClaimed.contains($0.id) }
        var applied: [(Int64, Int64)] = []
        var notApplied: [Int64] = []
        for event in events {
            guard let quantity = event.fields["quantity"]?.numberValue else {
                notApplied.append(event.id)
                continue
            }
            let unit = event.fields["unit"]?.stringValue ?? ""
            let reason = event.fields["reason"]?.stringValue ?? ""
            if let index = available.firstIndex(where: {
                $0.packageLabel == event.tag && abs($0.quantity - quantity) < 1e-9
                    && $0.unit.caseInsensitiveCompare(unit) == .orderedSame
                    && $0.reason.caseInsensitiveCompare(reason) == .orderedSame
                    && $0.date.prefix(10) == event.metrcDate
            }) {
                applied.append((event.id, available[index].id))
                available.remove(at: index)
            } else {
                notApplied.append(event.id)
            }
        }
        return (applied, notApplied)
    }
}
