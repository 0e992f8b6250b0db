import Testing
@testable import OutlawConfig

@Suite("[metrics] configuration")
struct MetricsConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    @Test func onByDefaultOnLoopback() throws {
        let metrics = try parse("").metrics
        #expect(metrics.enabled && metrics.host == "127.0.0.1" && metrics.port == 9742)
        #expect(try parse("[metrics]").metrics == metrics)
    }

    @Test func listenAddressOrOff() throws {
        let metrics = try parse("[metrics]\nlisten = \"[::]:9100\"").metrics
        #expect(metrics.enabled && metrics.host == "::" && metrics.port == 9100)
        #expect(try parse("[metrics]\nlisten = \"10.0.0.5:0\"").metrics.port == 0)
        #expect(try parse("[metrics]\nlisten = \"\"").metrics.enabled == false)
    }

    @Test(arguments: [
        ("[metrics]\nlisten = \"9742\"", "metrics.listen", "must be HOST:PORT, e.g. \"127.0.0.1:9742\", or \"\" for no metrics"),
        ("[metrics]\nlisten = \"127.0.0.1:99999\"", "metrics.listen", "must be HOST:PORT, e.g. \"127.0.0.1:9742\", or \"\" for no metrics"),
        ("[metrics]\nlisten = 9742", "metrics.listen", "must be a string in quotes"),
        ("[metrics]\nlisten = false", "metrics.listen", "must be a string in quotes"),
        ("[metrics]\npath = \"/metrics\"", "metrics.path", "unknown key (known here: listen)"),
        ("metrics = 1", "metrics", "must be a table ([metrics])"),
    ])
    func badValuesNameTheKey(text: String, key: String, problem: String) {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: key, problem: problem)) { try parse(text) }
    }
}
