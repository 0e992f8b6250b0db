import Foundation
import OutlawTestSupport
import Testing

/// `outlawctl tls fingerprint`: what the handhelds pin must be exactly what openssl says of the certificate.
@Suite("outlawctl tls fingerprint", .timeLimit(.minutes(5)))
struct TLSFingerprintTests {
    /// A self-signed certificate made as the package's postinst makes it (ECDSA P-256, ten years).
    static func makeCertificate(in dir: TempDirectory, name: String = "outlawd") async throws -> String {
        let cert = dir.file("tls/\(name).pem")
        try FileManager.default.createDirectory(atPath: dir.file("tls"), withIntermediateDirectories: true)
        let made = try await runCommand("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-days", "3650",
            "-keyout", dir.file("tls/\(name).key"), "-out", cert, "-subj", "/CN=\(name).example",
            "-addext", "subjectAltName=DNS:\(name).example,DNS:localhost,IP:127.0.0.1",
        ])
        try #require(made.status == 0, "openssl req: \(made.stderr)")
        return cert
    }

    /// openssl's own fingerprint of the first certificate in `file` (the part after `=`).
    static func opensslFingerprint(_ file: String) async throws -> String {
        let r = try await runCommand("/usr/bin/openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", file])
        try #require(r.status == 0, "openssl x509: \(r.stderr)")
        let line = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return String(try #require(line.split(separator: "=", maxSplits: 1).last))
    }

    static func opensslEnd(_ file: String) async throws -> Date {
        let r = try await runCommand("/usr/bin/openssl", ["x509", "-noout", "-enddate", "-in", file])
        let text = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "notAfter=", with: "")
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        let compact = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        return try #require(f.date(from: compact), "openssl -enddate: \(text)")
    }

    @Test func fingerprintIsOpensslsAndTheFirstCertificateOfAChain() async throws {
        let dir = try TempDirectory("outlawctl-tls")
        let cert = try await Self.makeCertificate(in: dir)
        let other = try await Self.makeCertificate(in: dir, name: "intermediate")
        // A chain file: the server's certificate first, then another; only the first is fingerprinted.
        let chain = try String(contentsOfFile: cert, encoding: .utf8) + (try String(contentsOfFile: other, encoding: .utf8))
        try dir.write("tls/chain.pem", chain)
        let config = try dir.write("outlawd.toml", """
            [server]
            tls_certificate_file = "tls/chain.pem"
            tls_key_file = "tls/outlawd.key"

            [facility]
            license = "LIC-0001"
            """)
        let expected = try await Self.opensslFingerprint(cert)
        #expect(expected.count == 95 && expected == expected.uppercased(), "\(expected)")
        #expect(try await Self.opensslFingerprint(other) != expected)

        let json = try await runCommand(Binaries.path("outlawctl"), ["tls", "fingerprint", "--config", config, "--json"])
        try #require(json.status == 0, "outlawctl tls fingerprint --json: \(json.stderr)")
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(shown["sha256"] as? String == expected)
        #expect(shown["certificate"] as? String == dir.file("tls/chain.pem"))
        let expires = try #require(shown["expires"] as? String)
        let end = try await Self.opensslEnd(cert)
        #expect(ISO8601DateFormatter().date(from: expires) == end, "expires \(expires), openssl says \(end)")

        // The text form, with --config before the subcommand as everywhere in outlawctl.
        let text = try await runCommand(Binaries.path("outlawctl"), ["--config", config, "tls", "fingerprint"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.split(separator: "\n").first == Substring("sha256   " + expected), "\(text.stdout)")
        #expect(text.stdout.contains("expires  " + expires))
    }

    @Test func withoutTLSOrWithoutTheFileIsExit2() async throws {
        let dir = try TempDirectory("outlawctl-tls")
        let plain = try dir.write("plain.toml", "[facility]\nlicense = \"LIC-0001\"\n")
        let none = try await runCommand(Binaries.path("outlawctl"), ["tls", "fingerprint", "--config", plain])
        #expect(none.status == 2)
        #expect(none.stderr.contains("TLS is not configured"), "\(none.stderr)")
        #expect(none.stdout.isEmpty)

        let missing = try dir.write("missing.toml", "[server]\ntls_certificate_file = \"tls/nope.pem\"\n")
        let gone = try await runCommand(Binaries.path("outlawctl"), ["tls", "fingerprint", "--config", missing])
        #expect(gone.status == 2)
        #expect(gone.stderr.contains("cannot read the TLS certificate \(dir.file("tls/nope.pem"))"), "\(gone.stderr)")

        try dir.write("tls/garbage.pem", "not a certificate\n")
        let garbage = try dir.write("garbage.toml", "[server]\ntls_certificate_file = \"tls/garbage.pem\"\n")
        let bad = try await runCommand(Binaries.path("outlawctl"), ["tls", "fingerprint", "--config", garbage])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("holds no PEM certificate"), "\(bad.stderr)")
    }
}
