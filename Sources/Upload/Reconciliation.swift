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
        case .packageAdjust, .plantManicure, .plantWaste, .plantScan, .packageScan:
            // POSTs are matched by their own read-backs (a record tells nothing about a second application).
            return false
        }
    }

    /// A plant record's `HarvestCount` (how many harvests and manicures Metrc has for it).
    public static func harvestCount(_ record: [String: JSONValue]) -> Int? {
        record.first { $0.key.caseInsensitiveCompare("HarvestCount") == .orderedSame }?.value.integerValue
    }

    /// Whether a manicure was applied, from the plant's harvest count before the attempt and its record now:
    /// nil when that cannot be told.
    public static func manicureApplied(before: Int, record: [String: JSONValue]?) -> Bool? {
        guard let record, let now = harvestCount(record) else { return nil }
        if now == before + 1 { return true }
        if now == before { return false }
        return nil
    }

    /// One plant waste record as Metrc lists it (`GET /plants/v2/waste`), read case-insensitively; records
    /// sharing an id (one line per plant) are one record.
    public struct WasteRecord: Sendable, Equatable {
        public let id: Int64
        public var labels: Set<String>
        public let location: String?
        public let weight: Double?
        public let method: String?
        public let reason: String?
        public let date: String?
    }

    public static func wasteRecords(_ records: [[String: JSONValue]]) -> [WasteRecord] {
        var byID: [Int64: WasteRecord] = [:]
        var order: [Int64] = []
        for record in records {
            func field(_ names: String...) -> JSONValue? {
                for name in names {
                    if let v = record.first(where: { $0.key.caseInsensitiveCompare(name) == .orderedSame })?.value, !v.isNull { return v }
                }
                return nil
            }
            guard let id = field("PlantWasteId", "Id")?.integerValue.map(Int64.init) else { continue }
            var labels = Set(field("PlantLabels")?.arrayValue?.compactMap(\.stringValue) ?? [])
            if let label = field("Label", "PlantLabel")?.stringValue { labels.insert(label) }
            if byID[id] == nil {
                order.append(id)
                byID[id] = WasteRecord(id: id, labels: labels, location: field("LocationName")?.stringValue,
                                       weight: field("WasteAmount", "WasteWeight")?.numberValue,
                                       method: field("WasteMethodName")?.stringValue, reason: field("ReasonName", "WasteReasonName")?.stringValue,
                                       date: field("WasteDate", "ActualDate")?.stringValue)
            } else {
                byID[id]!.labels.formUnion(labels)
            }
        }
        return order.map { byID[$0]! }
    }

    /// Splits waste events into those a record shows applied (with the record's id) and those none does.
    public static func matchWaste(_ events: [PendingEvent], against records: [WasteRecord],
                                  alreadyClaimed: Set<Int64>) -> (applied: [(Int64, Int64)], notApplied: [Int64])
    {
        func same(_ a: String?, _ b: String?) -> Bool {
            (a ?? "").trimmingCharacters(in: .whitespaces).caseInsensitiveCompare((b ?? "").trimmingCharacters(in: .whitespaces)) == .orderedSame
        }
        var available = records.filter { !alreadyClaimed.contains($0.id) }
        var applied: [(Int64, Int64)] = []
        var notApplied: [Int64] = []
        for event in events {
            let plants = Set(event.fields["plants"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            let weight = event.fields["waste_weight"]?.numberValue
            if let index = available.firstIndex(where: { record in
                (plants.isEmpty ? (record.labels.isEmpty && same(record.location, event.fields["location"]?.stringValue)) : record.labels == plants)
                    && weight.map { w in record.weight.map { abs($0 - w) < 1e-9 } ?? false } == true
                    && same(record.method, event.fields["waste_method"]?.stringValue)
                    && same(record.reason, event.fields["reason"]?.stringValue)
                    && (record.date?.prefix(10)).map(String.init) == event.metrcDate
            }) {
                applied.append((event.id, available[index].id))
                available.remove(at: index)
            } else {
                notApplied.append(event.id)
            }
        }
        return (applied, notApplied)
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
