import Testing
@testable import OutlawConfig

@Suite("[console] configuration", .timeLimit(.minutes(1)))
struct ConsoleConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    @Test func onByDefaultOnLoopback() throws {
        let console = try parse("").console
        #expect(console.enabled && console.host == "127.0.0.1" && console.port == 7443 && !console.listenGiven)
        #expect(console.tlsCertificateFile == nil)
    }

    @Test func listenAddressOrOffAndItsOwnCertificate() throws {
        let console = try parse("[console]\nlisten = \"[::]:8443\"").console
        #expect(console.enabled && console.host == "::" && console.port == 8443 && console.listenGiven)
        #expect(try parse("[console]\nlisten = \"\"").console.enabled == false)
        let own = try parse("[console]\ntls_certificate_file = \"tls/c.pem\"\ntls_key_file = \"/k.pem\"").console
        #expect(own.tlsCertificateFile == "/etc/outlawd/tls/c.pem" && own.tlsKeyFile == "/k.pem")
    }

    @Test(arguments: [
        ("[console]\nlisten = \"7443\"", "console.listen", "must be HOST:PORT, e.g. \"127.0.0.1:7443\", or \"\" for no console"),
        ("[console]\nlisten = 7443", "console.listen", "must be a string in quotes"),
        ("[console]\nport = 7443", "console.port", "unknown key (known here: listen, tls_certificate_file, tls_key_file)"),
        ("[console]\ntls_key_file = \"k.pem\"", "console.tls_certificate_file",
         "give both tls_certificate_file and tls_key_file, or neither (then the console uses [server]'s)"),
    ])
    func badValuesNameTheKey(text: String, key: String, problem: String) {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: key, problem: problem)) { try parse(text) }
    }
}
