import Foundation

/// What a reload changes, key by key: what the running daemon takes at once and what only a restart applies.
public struct ReloadPlan: Sendable, Equatable {
    /// Changed keys the running daemon applies without dropping a connection.
    public var applied: [String]
    /// Changed keys only a restart applies: a reload with any of them keeps the running configuration whole.
    public var needsRestart: [String]

    public init(applied: [String] = [], needsRestart: [String] = []) {
        self.applied = applied
        self.needsRestart = needsRestart
    }

    /// Every changed key, sorted.
    public var changed: [String] { (applied + needsRestart).sorted() }
    /// True when the reload must keep the running configuration.
    public var isRefused: Bool { !needsRestart.isEmpty }
}

extension DaemonConfiguration {
    /// Keys a reload applies in place: the review gate, the key-check schedule, the long-wait alert, the log level,
    /// the backups, retention, and where the Metrc keys are (the key files themselves are read again at every reload).
    public static let reloadableKeys: Set<String> = [
        "review.event_types", "review.users",
        "keys.check_interval_hours", "keys.lifetime_days", "keys.warn_days",
        "metrc.alert_after_hours", "metrc.vendor_key_file", "metrc.default_key_file",
        "log.level",
        "backup.dir", "backup.interval_hours", "backup.keep", "backup.idle_priority",
        "retention.keep_finished_days", "retention.archive_dir", "retention.idle_priority",
    ]

    /// Sorts what changed between the running configuration and a newly read one. With no Metrc client running
    /// (`uploadsRunning` false: no vendor key or no address at start) every `[metrc]` key applies, since uploads
    /// then start with the new settings.
    public static func reloadPlan(from running: DaemonConfiguration, to new: DaemonConfiguration,
                                  uploadsRunning: Bool) -> ReloadPlan
    {
        var plan = ReloadPlan()
        for key in changedKeys(running, new) {
            if reloadableKeys.contains(key) || (!uploadsRunning && key.hasPrefix("metrc.")) {
                plan.applied.append(key)
            } else {
                plan.needsRestart.append(key)
            }
        }
        return plan
    }

    /// The outlawd.toml names of the keys whose values differ, sorted. Fields are found by reflection so that a
    /// setting added later is compared too, and needs a restart until it is listed in `reloadableKeys`.
    static func changedKeys(_ a: DaemonConfiguration, _ b: DaemonConfiguration) -> [String] {
        var keys = Set<String>()
        for (sectionA, sectionB) in zip(Mirror(reflecting: a).children, Mirror(reflecting: b).children) {
            // The file's own path is where the settings came from, not a setting.
            guard let section = sectionA.label, section != "file" else { continue }
            let fieldsA = Mirror(reflecting: sectionA.value)
            let fieldsB = Mirror(reflecting: sectionB.value)
            guard fieldsA.displayStyle == .struct, !fieldsA.children.isEmpty else {
                if !same(sectionA.value, sectionB.value) { keys.insert(tomlName(section)) }
                continue
            }
            for (fieldA, fieldB) in zip(fieldsA.children, fieldsB.children) where !same(fieldA.value, fieldB.value) {
                keys.insert("\(tomlName(section)).\(tomlName(fieldA.label ?? "?"))")
            }
        }
        return keys.sorted()
    }

    /// A Swift property's key in outlawd.toml: snake case, but for the few that the file names otherwise.
    static func tomlName(_ property: String) -> String {
        switch property {
        case "host", "port": return "listen"
        case "otherLicenses": return "licenses"
        default: break
        }
        var out = ""
        let characters = Array(property)
        for (i, c) in characters.enumerated() {
            // A capital starts a word after a small letter or digit, or ends an acronym ("TLSKey": tls_key).
            if c.isUppercase, i > 0,
               !characters[i - 1].isUppercase || (i + 1 < characters.count && characters[i + 1].isLowercase)
            {
                out.append("_")
            }
            out += c.lowercased()
        }
        return out
    }

    private static func same(_ a: Any, _ b: Any) -> Bool {
        guard let a = a as? any Equatable else { return String(reflecting: a) == String(reflecting: b) }
        return a.isEqual(to: b)
    }
}

extension Equatable {
    fileprivate func isEqual(to other: Any) -> Bool { self == other as? Self }
}
