import Testing
@testable import OutlawConfig

/// The reload's comparison of the running configuration with the file read again: pure, so every case is here.
@Suite("Reload plan")
struct ReloadPlanTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    func plan(_ old: String, _ new: String, uploadsRunning: Bool = true) throws -> ReloadPlan {
        DaemonConfiguration.reloadPlan(from: try parse(old), to: try parse(new), uploadsRunning: uploadsRunning)
    }

    let base = """
        [server]
        listen = "127.0.0.1:7420"
        [store]
        path = "/var/lib/outlawd/outlawd.sqlite"
        [metrc]
        base_url = "https://api-ca.metrc.com"
        """

    @Test func theSameFileChangesNothing() throws {
        let p = try plan(base, base)
        #expect(p == ReloadPlan())
        #expect(!p.isRefused && p.changed.isEmpty)
        // Where the file was read from is not a setting.
        var moved = try parse(base)
        moved.file = "/elsewhere/outlawd.toml"
        #expect(DaemonConfiguration.reloadPlan(from: try parse(base), to: moved, uploadsRunning: true) == ReloadPlan())
    }

    @Test func aReviewRuleApplies() throws {
        let p = try plan(base, base + "\n[review]\nevent_types = [\"plant.destroy\"]\nusers = [\"trainee1\"]")
        #expect(p == ReloadPlan(applied: ["review.event_types", "review.users"]))
        #expect(!p.isRefused)
        // Taking a rule away applies as well.
        #expect(try plan(base + "\n[review]\nusers = [\"trainee1\"]", base) == ReloadPlan(applied: ["review.users"]))
    }

    @Test func theKeyScheduleTheAlertAgeAndTheKeyFilesApply() throws {
        let p = try plan(base, base + """

            alert_after_hours = 12
            vendor_key_file = "credentials/vendor"
            default_key_file = "/etc/outlawd/credentials/default"
            [keys]
            check_interval_hours = 6
            lifetime_days = 90
            warn_days = 7
            """)
        #expect(p.applied == ["keys.check_interval_hours", "keys.lifetime_days", "keys.warn_days", "metrc.alert_after_hours",
                              "metrc.default_key_file", "metrc.vendor_key_file"])
        #expect(p.needsRestart.isEmpty)
    }

    @Test func theBackupSettingsApply() throws {
        let p = try plan(base, base + "\n[backup]\ndir = \"/var/lib/outlawd/backups\"\ninterval_hours = 12\nkeep = 3")
        #expect(p == ReloadPlan(applied: ["backup.dir", "backup.interval_hours", "backup.keep"]))
    }

    @Test func theLogLevelApplies() throws {
        #expect(try plan(base, base + "\n[log]\nlevel = \"debug\"") == ReloadPlan(applied: ["log.level"]))
        #expect(try parse("[log]\nlevel = \"warning\"").log.level == "warning")
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: "log.level",
                                    problem: "must be one of trace, debug, info, notice, warning, error, critical, not \"verbose\"")) {
            try parse("[log]\nlevel = \"verbose\"")
        }
    }

    @Test func aNewListenAddressNeedsARestart() throws {
        let p = try plan(base, base.replacingOccurrences(of: "127.0.0.1:7420", with: "127.0.0.1:7421"))
        #expect(p == ReloadPlan(needsRestart: ["server.listen"]))
        #expect(p.isRefused)
        // Host and port are one key.
        #expect(try plan(base, base.replacingOccurrences(of: "127.0.0.1:7420", with: "[::1]:7421")).needsRestart == ["server.listen"])
    }

    @Test func aRefusedKeyRefusesTheWholeReloadAndEveryKeyIsNamed() throws {
        let store = base.replacingOccurrences(of: "[store]\npath = \"/var/lib/outlawd/outlawd.sqlite\"",
                                              with: "[store]\npath = \"/srv/outlawd.sqlite\"\nkey_file = \"credentials/store\"")
            + "\n[review]\nevent_types = [\"plant.destroy\"]"
        let p = try plan(base, store)
        #expect(p.needsRestart == ["store.key_file", "store.path"])
        #expect(p.applied == ["review.event_types"])
        #expect(p.isRefused)
        #expect(p.changed == ["review.event_types", "store.key_file", "store.path"])
    }

    @Test func tlsFilesAndOtherServerSettingsNeedARestart() throws {
        let p = try plan(base, base.replacingOccurrences(of: "listen = \"127.0.0.1:7420\"", with: """
            listen = "127.0.0.1:7420"
            tls_certificate_file = "tls/outlawd.pem"
            tls_key_file = "credentials/outlawd-tls-key"
            window = 8
            require_login_ticket = false
            """))
        #expect(p.needsRestart == ["server.require_login_ticket", "server.tls_certificate_file", "server.tls_key_file", "server.window"])
        #expect(p.applied.isEmpty)
    }

    @Test func metrcClientSettingsApplyOnlyWhileNoUploadsRun() throws {
        let new = base.replacingOccurrences(of: "https://api-ca.metrc.com", with: "https://api-co.metrc.com") + "\nconcurrency = 2"
        #expect(try plan(base, new) == ReloadPlan(needsRestart: ["metrc.base_url", "metrc.concurrency"]))
        // A fresh install without keys: uploads start at the reload that brings them, with the new settings.
        #expect(try plan(base, new, uploadsRunning: false) == ReloadPlan(applied: ["metrc.base_url", "metrc.concurrency"]))
        #expect(try plan("", base, uploadsRunning: false) == ReloadPlan(applied: ["metrc.base_url"]))
        // What is not [metrc] still needs a restart.
        let license = base + "\n[facility]\nrequire_personal_keys = true"
        #expect(try plan(base, license, uploadsRunning: false) == ReloadPlan(needsRestart: ["facility.require_personal_keys"]))
    }

    /// Every key the parser knows, set away from its default, is found under its own outlawd.toml name.
    @Test func everyKeyIsNamedAsTheFileNamesIt() throws {
        let all = try parse("""
            [server]
            listen = "0.0.0.0:7421"
            max_line_bytes = 2048
            max_batch_events = 10
            window = 2
            idle_timeout_seconds = 30
            hello_timeout_seconds = 5
            max_connections = 10
            allow_keys_without_tls = true
            tls_certificate_file = "tls/outlawd.pem"
            tls_key_file = "tls/key.pem"
            allow_plaintext = true
            require_login_ticket = false
            login_ticket_hours = 8
            max_unauthenticated_per_address = 2
            max_unauthenticated = 3
            [store]
            path = "x.sqlite"
            min_free_megabytes = 1
            key_file = "store-key"
            pin_hash_rounds = 10000
            allow_unsealed_keys = true
            [facility]
            license = "LIC-0002"
            licenses = ["LIC-0003"]
            require_personal_keys = true
            check_scans_against_reference = false
            [metrc]
            base_url = "https://api-ca.metrc.com"
            vendor_key_file = "v"
            default_key_file = "d"
            objects_per_request = 5
            concurrency = 2
            request_timeout_seconds = 5
            alert_after_hours = 5
            reference_sync = false
            sync_interval_seconds = 5
            full_sync_hours = 5
            gets_per_second_per_facility = 5
            concurrent_gets_per_facility = 5
            gets_per_second_per_vendor_key = 5
            concurrent_gets_per_vendor_key = 5
            [review]
            event_types = ["plant.destroy"]
            users = ["trainee1"]
            [keys]
            check_interval_hours = 1
            lifetime_days = 30
            warn_days = 3
            [log]
            level = "debug"
            [backup]
            dir = "backups"
            interval_hours = 6
            keep = 3
            """)
        let keys = DaemonConfiguration.changedKeys(try parse(""), all)
        #expect(keys == [
            "backup.dir", "backup.interval_hours", "backup.keep",
            "facility.check_scans_against_reference", "facility.license", "facility.licenses", "facility.require_personal_keys",
            "keys.check_interval_hours", "keys.lifetime_days", "keys.warn_days", "log.level",
            "metrc.alert_after_hours", "metrc.base_url", "metrc.concurrency", "metrc.concurrent_gets_per_facility",
            "metrc.concurrent_gets_per_vendor_key", "metrc.default_key_file", "metrc.full_sync_hours",
            "metrc.gets_per_second_per_facility", "metrc.gets_per_second_per_vendor_key", "metrc.objects_per_request",
            "metrc.reference_sync", "metrc.request_timeout_seconds", "metrc.sync_interval_seconds", "metrc.vendor_key_file",
            "review.event_types", "review.users",
            "server.allow_keys_without_tls", "server.allow_plaintext", "server.hello_timeout_seconds", "server.idle_timeout_seconds",
            "server.listen", "server.login_ticket_hours", "server.max_batch_events", "server.max_connections",
            "server.max_line_bytes", "server.max_unauthenticated", "server.max_unauthenticated_per_address",
            "server.require_login_ticket", "server.tls_certificate_file", "server.tls_key_file", "server.window",
            "store.allow_unsealed_keys", "store.key_file", "store.min_free_megabytes", "store.path", "store.pin_hash_rounds",
        ])
        // Of these, only the allow-listed ones apply while uploads run.
        let p = DaemonConfiguration.reloadPlan(from: try parse(""), to: all, uploadsRunning: true)
        #expect(Set(p.applied) == DaemonConfiguration.reloadableKeys.intersection(keys))
        #expect(Set(p.needsRestart) == Set(keys).subtracting(DaemonConfiguration.reloadableKeys))
    }

    @Test(arguments: [
        ("maxLineBytes", "max_line_bytes"), ("allowKeysWithoutTLS", "allow_keys_without_tls"), ("baseURL", "base_url"),
        ("tlsCertificateFile", "tls_certificate_file"), ("host", "listen"), ("port", "listen"), ("otherLicenses", "licenses"),
        ("review", "review"), ("getsPerSecondPerVendorKey", "gets_per_second_per_vendor_key"), ("TLSKeyFile", "tls_key_file"),
    ])
    func propertyNamesBecomeFileNames(property: String, key: String) {
        #expect(DaemonConfiguration.tomlName(property) == key)
    }
}
