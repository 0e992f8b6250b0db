import Testing
@testable import OutlawConfig

@Suite("[keys] configuration")
struct KeysConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    @Test func defaults() throws {
        let keys = try parse("").keys
        #expect(keys.checkIntervalHours == 24 && keys.lifetimeDays == 365 && keys.warnDays == 14)
    }

    @Test func valuesAndFractionsOfAnHour() throws {
        let keys = try parse("[keys]\ncheck_interval_hours = 0.0005\nlifetime_days = 90\nwarn_days = 7").keys
        #expect(keys.checkIntervalHours == 0.0005 && keys.lifetimeDays == 90 && keys.warnDays == 7)
        #expect(try parse("[keys]\ncheck_interval_hours = 6").keys.checkIntervalHours == 6)
        #expect(try parse("[keys]\nlifetime_days = 1\nwarn_days = 1").keys.warnDays == 1)
        #expect(try parse("[keys]\nwarn_days = 0").keys.warnDays == 0)
    }

    @Test(arguments: [
        ("[keys]\ncheck_interval_hours = 0", "keys.check_interval_hours", "must be greater than 0"),
        ("[keys]\ncheck_interval_hours = \"daily\"", "keys.check_interval_hours", "must be a number"),
        ("[keys]\nlifetime_days = 0", "keys.lifetime_days", "must be from 1 to 3650, not 0"),
        ("[keys]\nlifetime_days = 36.5", "keys.lifetime_days", "must be a whole number"),
        ("[keys]\nwarn_days = -1", "keys.warn_days", "must be from 0 to 3650, not -1"),
        ("[keys]\nlifetime_days = 10\nwarn_days = 14", "keys.warn_days", "must not exceed keys.lifetime_days (10), not 14"),
        ("[keys]\nchek_interval_hours = 1", "keys.chek_interval_hours",
         "unknown key (known here: check_interval_hours, lifetime_days, warn_days)"),
        ("keys = 5", "keys", "must be a table ([keys])"),
    ])
    func badValuesNameTheKey(text: String, key: String, problem: String) {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: key, problem: problem)) { try parse(text) }
    }
}
