import Foundation
import Metrc
import OutlawProtocol
import OutlawStore

/// Matches adjustments whose upload had an unknown outcome against Metrc's adjustment history; pure.
///
/// Only one unfinished event per package is ever in flight (uploads keep order per tag), so an adjustment of
/// that package with the same quantity, unit, reason and date, recorded after the attempt started, is ours.
public enum Reconciliation {
    /// Splits events into those Metrc shows as applied (with the adjustment's id) and those it does not.
    public static func match(_ events: [PendingEvent], against history: [MetrcClient.Adjustment],
                             alreadyClaimed: Set<Int64>) -> (applied: [(Int64, Int64)], notApplied: [Int64])
    {
        var available = history.filter { !alreadyClaimed.contains($0.id) }
        var applied: [(Int64, Int64)] = []
        var notApplied: [Int64] = []
        for event in events {
            guard let fields = JSONValue.parse(Array(event.fields.utf8))?.objectValue,
                  let quantity = fields["quantity"]?.numberValue else {
                notApplied.append(event.id)
                continue
            }
            let unit = fields["unit"]?.stringValue ?? ""
            let reason = fields["reason"]?.stringValue ?? ""
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
