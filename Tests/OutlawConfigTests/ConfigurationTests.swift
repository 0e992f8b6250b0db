import OutlawProtocol
import Testing
@testable import OutlawConfig

@Suite("TOML subset")
struct TOMLTests {
    @Test func tablesValuesAndComments() throws {
        let t = try TOMLParser.parse("""
            # top
            [server]
            listen = "127.0.0.1:7420" # trailing
            window = 16
            ratio = 0.5
            on = true
            [facility]
            licenses = [
              "LIC-0002", # second
              'LIC-0003',
            ]
            name = "has # hash"
            """)
        #expect(t["server"] == .table(["listen": .string("127.0.0.1:7420"), "window": .integer(16), "ratio": .float(0.5), "on": .boolean(true)]))
        #expect(t["facility"] == .table(["licenses": .array([.string("LIC-0002"), .string("LIC-0003")]), "name": .string("has # hash")]))
    }

    @Test func errorsCarryLineNumbers() {
        #expect(throws: TOMLError(line: 2, message: "expected key = value")) { try TOMLParser.parse("[a]\nnonsense\n") }
        #expect(throws: TOMLError.self) { try TOMLParser.parse("a = \"open") }
        #expect(throws: TOMLError(line: 2, message: "a is set twice")) { try TOMLParser.parse("a = 1\na = 2") }
        #expect(throws: TOMLError.self) { try TOMLParser.parse("a = bare") }
    }
}

@Suite("Daemon configuration")
struct DaemonConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        try DaemonConfiguration.parse(text, file: "/etc/outlawd/outlawd.toml", relativeTo: "/etc/outlawd")
    }

    @Test func theIssueExampleParses() throws {
        let c = try parse("""
            [server]
            listen = "127.0.0.1:7420"
            max_line_bytes = 1048576
            max_batch_events = 5000
            window = 16
            idle_timeout_seconds = 300
            max_connections = 1024
            [store]
            path = "/var/lib/outlawd/outlawd.sqlite"
            [facility]
            license = "LIC-0001"
            """)
        #expect(c.server.host == "127.0.0.1" && c.server.port == 7420 && c.server.window == 16)
        #expect(c.server.idleTimeoutSeconds == 300 && c.server.maxConnections == 1024)
        #expect(c.store.path == "/var/lib/outlawd/outlawd.sqlite")
        #expect(c.facility.licenses == ["LIC-0001"])
    }

    @Test func emptyFileGivesDefaults() throws {
        #expect(try parse("").server.port == 7420)
    }

    @Test func relativePathsFollowTheConfigFile() throws {
        let c = try parse("[store]\npath = \"state/o.sqlite\"\n[metrc]\nvendor_key_file = \"../secrets/v\"")
        #expect(c.store.path == "/etc/outlawd/state/o.sqlite")
        #expect(c.metrc.vendorKeyFile == "/etc/secrets/v")
    }

    @Test func ipv6Listen() throws {
        let c = try parse("[server]\nlisten = \"[::1]:9000\"")
        #expect(c.server.host == "::1" && c.server.port == 9000)
    }

    @Test(arguments: [
        ("[server]\nwindow = 0", "server.window", "must be from 1 to 1024, not 0"),
        ("[server]\nwindow = \"16\"", "server.window", "must be a whole number"),
        ("[server]\nlisten = \"7420\"", "server.listen", "must be HOST:PORT, e.g. \"127.0.0.1:7420\" or \"[::]:7420\""),
        ("[server]\nidle_timeout_seconds = -1", "server.idle_timeout_seconds", "must be greater than 0"),
        ("[store]\npath = 5", "store.path", "must be a string in quotes"),
        ("[store]\npin_hash_rounds = 100", "store.pin_hash_rounds", "must be from 10000 to 10000000, not 100"),
        ("[facility]\nlicense = \"has space\"", "facility.license", "must be a license number such as \"LIC-0001\""),
        ("[metrc]\nbase_url = \"ftp://x\"", "metrc.base_url", "must be an http:// or https:// URL"),
        ("[server]\ntls_certificate_file = \"c.pem\"", "server.tls_key_file", "TLS needs both tls_certificate_file and tls_key_file"),
        ("[review]\nevent_types = [\"plant.destroy\", \"plant.destory\"]", "review.event_types",
         "\"plant.destory\" is not an event type (known: plant.harvest, plant.move, plant.destroy, package.move, package.adjust, plant.manicure, plant.waste)"),
        ("[review]\nevent_types = [\"plant.scan\"]", "review.event_types", "\"plant.scan\" is never uploaded, so there is nothing to review"),
        ("[review]\nevent_types = \"plant.destroy\"", "review.event_types", "must be an array of strings"),
        ("[review]\nusers = [\"\"]", "review.users", "a user name must not be empty"),
        ("[review]\nuser = [\"jane\"]", "review.user", "unknown key (known here: event_types, users)"),
    ])
    func badValuesNameTheKey(text: String, key: String, problem: String) {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: key, problem: problem)) { try parse(text) }
    }

    @Test func reviewNamesEventTypesAndUsers() throws {
        let c = try parse("""
            [review]
            event_types = ["plant.destroy", "package.adjust", "plant.destroy"]
            users = ["jane"]
            """)
        #expect(c.review.eventTypes == [.plantDestroy, .packageAdjust])
        #expect(c.review.users == ["jane"])
        #expect(try parse("").review == DaemonConfiguration.Review())
        #expect(try parse("[review]").review.eventTypes.isEmpty)
    }

    @Test func unknownKeysAreRefused() {
        do {
            _ = try parse("[server]\nwindw = 16")
            Issue.record("accepted a typo")
        } catch {
            #expect(error.key == "server.windw")
            #expect(error.description.hasPrefix("/etc/outlawd/outlawd.toml: server.windw: unknown key"))
        }
        #expect(throws: ConfigError.self) { try parse("[sever]\nlisten = \"a:1\"") }
    }

    @Test func syntaxErrorsNameTheLine() {
        #expect(throws: ConfigError(file: "/etc/outlawd/outlawd.toml", key: nil, problem: "line 2: expected key = value")) {
            try parse("[server]\nwindow 16")
        }
    }

    @Test func missingFile() {
        #expect(throws: ConfigError(file: "/nonexistent/outlawd.toml", key: nil, problem: "no such file")) {
            try DaemonConfiguration.load(path: "/nonexistent/outlawd.toml")
        }
    }
}
