import OutlawStore

/// Why events failed or wait, grouped, with what a tech should do about each: pure, for `outlawctl failed --causes`.
enum FailureCauses {
    struct Cause: Equatable {
        let message: String
        let events: Int
        let users: [String]
        let advice: String
    }

    static func summarize(_ batches: [FailedBatch]) -> [Cause] {
        var order: [String] = []
        var counts: [String: (Int, Set<String>)] = [:]
        for batch in batches {
            for event in batch.events {
                let message = event.message ?? event.state
                if counts[message] == nil { order.append(message) }
                counts[message, default: (0, [])].0 += 1
                counts[message, default: (0, [])].1.insert(batch.user)
            }
        }
        return order.map { message in
            let (n, users) = counts[message]!
            return Cause(message: message, events: n, users: users.sorted(), advice: advice(for: message, users: users.sorted()))
        }
    }

    static func advice(for message: String, users: [String]) -> String {
        let who = users.first ?? "the user"
        let lower = message.lowercased()
        if lower.contains("metrc key was rejected") && !lower.contains("default") {
            return "set a new Metrc key for \(who): outlawctl key set \(who)  (key on stdin); held events then upload by themselves"
        }
        if lower.contains("requires personal keys") {
            return "set a personal key (outlawctl key set \(who)) or turn off facility.require_personal_keys"
        }
        if lower.contains("default key") {
            return "replace the facility's Default key (credential metrc-default-key) and restart outlawd"
        }
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
