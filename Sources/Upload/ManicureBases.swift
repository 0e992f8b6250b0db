import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore

/// The manicure read-back's other half: it compares a plant's harvest count with the one from just before the
/// attempt, so that count is read from Metrc and kept on the event before the attempt is recorded. A manicure
/// whose plants cannot be read now is not sent: it waits for a later pass.
struct ManicureBases: Sendable {
    let store: Store
    let client: MetrcClient
    let logger: Logger
    let backoff: Backoff
    let now: @Sendable () -> Date

    /// Whether the counts are kept and the manicure may be sent.
    func keep(_ request: PlannedRequest, key: String) async -> Bool {
        let store = self.store
        guard let bases = await Self.read(request.events, client: client, license: request.license, key: key) else {
            // Nothing left for Metrc: this attempt does not count toward the backoff.
            let t = now()
            let retry = OutcomePolicy.retry(request.events, after: .neverLeft, message: "Metrc could not be read before a manicure; not sent yet",
                                            now: t, backoff: backoff, jitter: Double.random(in: 0...1))
            _ = try? await Blocking.run { try store.resolve(retry, now: t) }
            logger.warning("cannot read the plants before a manicure; it waits", metadata: MessageID.manicureWaitsForRead.metadata([
                "events": "\(request.events.count)", "facility": "\(request.license)",
            ]))
            return false
        }
        do {
            try await Blocking.run { try store.setReadBackBase(bases) }
            return true
        } catch {
            logger.error("cannot keep the counts a manicure's read-back needs; not sending: \(error)",
                         metadata: MessageID.manicureBasesNotKept.metadata())
            return false
        }
    }

    /// Each plant's counters just before a manicure is sent; nil when Metrc cannot be read now.
    static func read(_ events: [PendingEvent], client: MetrcClient, license: String, key: String) async -> [(Int64, [String: JSONValue])]? {
        var out: [(Int64, [String: JSONValue])] = []
        for event in events {
            guard let record = try? await client.list(path: "/plants/v2/" + event.tag, license: license, userKey: key, since: nil, until: nil).first,
                  let count = Reconciliation.harvestCount(record)
            else { return nil }
            out.append((event.id, ["HarvestCount": .number(Double(count))]))
        }
        return out
    }
}
