import OutlawStore

/// Why events failed or wait, grouped, with what a tech should do about each: pure, for `outlawctl failed --causes`
/// and the web console's Failed page.
public enum FailureCauses {
    public struct Cause: Equatable, Sendable {
        public let message: String
        public let events: Int
        public let users: [String]
        public let advice: String
    }

    public static func summarize(_ batches: [FailedBatch]) -> [Cause] {
        struct Key: Hashable {
            let message: String
            let heldCode: HoldCode?
        }
        var order: [Key] = []
        var counts: [Key: (Int, Set<String>)] = [:]
        for batch in batches {
            for event in batch.events {
                let key = Key(message: event.message ?? event.state.rawValue, heldCode: event.heldCode)
                if counts[key] == nil { order.append(key) }
                counts[key, default: (0, [])].0 += 1
                counts[key, default: (0, [])].1.insert(batch.user)
            }
        }
        return order.map { key in
            let (n, users) = counts[key]!
            return Cause(message: key.message, events: n, users: users.sorted(),
                         advice: advice(heldCode: key.heldCode, message: key.message, users: users.sorted()))
        }
    }

    /// Held events: the hold code says exactly why. Failed events carry Metrc's own words, the only clue there is.
    public static func advice(heldCode: HoldCode?, message: String, users: [String]) -> String {
        let who = users.first ?? "the user"
        switch heldCode {
        case .keyRejected:
            return "set a new Metrc key for \(who): outlawctl key set \(who)  (key on stdin); held events then upload by themselves"
        case .keyRequired:
            return "set a personal key (outlawctl key set \(who)) or turn off facility.require_personal_keys"
        case .defaultKeyRejected, .defaultKeyMissing:
            return "replace the facility's Default key (credential metrc-default-key) and restart outlawd"
        case .readBackUndecided:
            return "look in Metrc whether this was recorded; only if it was not, replay it (a replay sends it again)"
        case nil:
            break
        }
        let lower = message.lowercased()
        if lower.contains("location") {
            return "create the missing location in Metrc (or fix the name), then replay"
        }
        if lower.contains("tag") || lower.contains("label") {
            return "check the tag in Metrc (typo, wrong facility, already harvested or destroyed), then replay"
        }
        if lower.contains("reason") || lower.contains("note") {
            return "the reason or its note does not satisfy Metrc; the event must be corrected on the handheld"
        }
        return "fix the cause in Metrc, then replay"
    }
}
