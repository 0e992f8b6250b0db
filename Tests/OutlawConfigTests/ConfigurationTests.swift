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

    @Test func deeplyNestedArraysAreAnErrorNotACrash() throws {
        // Fuzz/TOML: 100,000 nested `[` overflowed the stack, so the daemon died instead of naming the line.
        func nested(_ depth: Int) -> String {
            "a = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        }
        #expect(throws: TOMLError(line: 2, message: "arrays are nested more than 64 deep")) {
            try TOMLParser.parse("[server]\n" + nested(100_000))
        }
        var deepest = TOMLValue.array([])
        for _ in 1..<64 { deepest = .array([deepest]) }
        #expect(try TOMLParser.parse(nested(64)) == ["a": deepest])
    }

    @Test func keysOfManyPartsAreAnErrorNotACrash() throws {
        // Fuzz/TOML: the rest of a key's path was copied at each part, so a key of 60,000 parts took 24 GB.
        let tooLong = Array(repeating: "a", count: 65).joined(separator: ".")
        #expect(throws: TOMLError(line: 1, message: "a key has more than 64 parts")) { try TOMLParser.parse("\(tooLong) = 1") }
        #expect(throws: TOMLError(line: 1, message: "a key has more than 64 parts")) { try TOMLParser.parse("[\(tooLong)]") }
        let longest = Array(repeating: "a", count: 64).joined(separator: ".")
        #expect(throws: Never.self) { try TOMLParser.parse("\(longest) = 1") }
    }

    // A minute is hundreds of times what this takes; the quadratic reading took minutes.
    @Test(.timeLimit(.minutes(1))) func longArraysAreReadInLinearTime() throws {
        // Fuzz/TOML: each line of a multi-line array rescanned the whole array, and each `true` copied the rest of
        // the line: 16 KB of them took 45 s in the fuzz build.
        let count = 40_000
        let text = "a = [\n" + String(repeating: "true,\n", count: count) + "]\n"
        #expect(try TOMLParser.parse(text) == ["a": .array(Array(repeating: .boolean(true), count: count))])
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

    @Test func metrcHasNoDefaultAddressAndPlainHTTPOnlyToThisMachine() throws {
        #expect(try parse("").metrc.baseURL == nil)
        #expect(try parse("[metrc]\nbase_url = \"https://api-ca.metrc.com/\"").metrc.baseURL == "https://api-ca.metrc.com")
        for local in ["http://127.0.0.1:8090", "http://localhost:8090", "http://[::1]:8090", "http://127.8.9.10"] {
            #expect(try parse("[metrc]\nbase_url = \"\(local)\"").metrc.baseURL == local)
        }
    }

    @Test func securityDefaults() throws {
        let c = try parse("")
        #expect(c.server.requireLoginTicket && !c.server.allowPlaintext && !c.store.allowUnsealedKeys)
        #expect(c.server.loginTicketHours == 168 && c.server.maxUnauthenticatedPerAddress == 16)
        #expect(c.server.unauthenticatedLimit == 256)
        let set = try parse("[server]\nmax_connections = 40\nrequire_login_ticket = false\nallow_plaintext = true\nlogin_ticket_hours = 12")
        #expect(set.server.unauthenticatedLimit == 10 && !set.server.requireLoginTicket && set.server.allowPlaintext)
        #expect(set.server.loginTicketHours == 12)
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
        ("[metrc]\nbase_url = \"ftp://x\"", "metrc.base_url", "must be an https:// URL, e.g. \"https://api-ca.metrc.com\""),
        // Every Metrc request carries keys in Basic auth: plain http only to this machine.
        ("[metrc]\nbase_url = \"http://api-ca.metrc.com\"", "metrc.base_url",
         "must be https:// (plain http only to this machine: 127.0.0.1, ::1 or localhost), not \"http://api-ca.metrc.com\""),
        ("[metrc]\nbase_url = \"http://10.0.0.8:8090\"", "metrc.base_url",
         "must be https:// (plain http only to this machine: 127.0.0.1, ::1 or localhost), not \"http://10.0.0.8:8090\""),
        ("[server]\ntls_key_file = \"k.pem\"", "server.tls_certificate_file", "TLS needs tls_certificate_file beside tls_key_file"),
        ("[server]\nlogin_ticket_hours = 0", "server.login_ticket_hours", "must be greater than 0"),
        ("[server]\nlogin_ticket_hours = 9000", "server.login_ticket_hours", "must be at most 8784 (a year)"),
        ("[server]\nrequire_login_ticket = \"no\"", "server.require_login_ticket", "must be true or false"),
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
