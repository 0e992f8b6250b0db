import Foundation
import Testing
@testable import OutlawConfig

@Suite("[retention] configuration", .timeLimit(.minutes(1)))
struct RetentionConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    @Test func fourHundredDaysIntoArchivesBesideTheStoreByDefault() throws {
        let config = try parse("")
        #expect(config.retention.keepFinishedDays == 400 && config.retention.archiveDir == nil && config.retention.idlePriority)
        // Beside the default store: inside the unit's StateDirectory, the one place outlawd may write under systemd.
        #expect(config.retention.archiveFolder(storePath: config.store.path) == "/var/lib/outlawd/archives")
        #expect(try parse("[retention]") == config)
    }

    @Test func valuesZeroKeepsEverythingAndARelativeFolderFollowsTheConfigFile() throws {
        let config = try parse("[store]\npath = \"state/outlawd.sqlite\"\n[retention]\nkeep_finished_days = 730\narchive_dir = \"state/old\"")
        #expect(config.retention.keepFinishedDays == 730)
        #expect(config.retention.archiveFolder(storePath: config.store.path) == "/etc/outlawd/state/old")
        #expect(try parse("[retention]\nkeep_finished_days = 0").retention.keepFinishedDays == 0)
        #expect(try parse("[retention]\narchive_dir = \"/srv/archives/\"").retention.archiveDir == "/srv/archives")
        #expect(try parse("[retention]\nidle_priority = false").retention.idlePriority == false)
    }

    @Test(arguments: [
        ("[retention]\nkeep_finished_days = -1", "retention.keep_finished_days", "must be from 0 to 36500, not -1"),
        ("[retention]\nkeep_finished_days = 1.5", "retention.keep_finished_days", "must be a whole number"),
        ("[retention]\nkeep_finished_days = \"400\"", "retention.keep_finished_days", "must be a whole number"),
        ("[retention]\narchive_dir = 5", "retention.archive_dir", "must be a string in quotes"),
        ("[retention]\nidle_priority = \"no\"", "retention.idle_priority", "must be true or false"),
        ("[retention]\nkeep_days = 30", "retention.keep_days", "unknown key (known here: archive_dir, idle_priority, keep_finished_days)"),
        ("retention = 30", "retention", "must be a table ([retention])"),
    ])
    func badValuesNameTheKey(text: String, key: String, problem: String) {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: key, problem: problem)) { try parse(text) }
    }

    @Test func aReloadAppliesEveryRetentionSetting() throws {
        let plan = DaemonConfiguration.reloadPlan(
            from: try parse(""), to: try parse("[retention]\nkeep_finished_days = 30\narchive_dir = \"/srv/archives\"\nidle_priority = false"), uploadsRunning: true)
        #expect(plan == ReloadPlan(applied: ["retention.archive_dir", "retention.idle_priority", "retention.keep_finished_days"]))
    }
}
