import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// Devices over TLS, with openssl's own client as the handheld; `set_key` needs it.
@Suite("TLS and set_key", .serialized, .timeLimit(.minutes(5)))
struct TLSTests {
    /// Runs `openssl s_client` with these lines on stdin; returns the lines the daemon answered.
    func exchange(port: Int, _ lines: [String]) async throws -> [[String: Any]] {
        let r = try await runCommand("/usr/bin/openssl", ["s_client", "-quiet", "-ign_eof", "-verify_quiet", "-connect", "127.0.0.1:\(port)"],
                                     stdin: lines.joined(separator: "\n") + "\n")
        return r.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func setKeyOverTLSIsCheckedWithMetrcAndStored() async throws {
        // set_key answers `verified` only when Metrc's check came back within request_timeout_seconds: 20 s here,
        // not the harness's 3, which a loaded machine's in-process sandbox missed.
        try await UploadHarness.run(server: """
            tls_certificate_file = "tls/cert.pem"
            tls_key_file = "tls/key.pem"
            """, requestTimeout: 20, prepare: { dir in
                try FileManager.default.createDirectory(atPath: dir.file("tls"), withIntermediateDirectories: true)
                let gen = Process()
                gen.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
                gen.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("tls/key.pem"),
                                 "-out", dir.file("tls/cert.pem"), "-days", "2", "-subj", "/CN=outlawd-test"]
                gen.standardOutput = FileHandle.nullDevice
                gen.standardError = FileHandle.nullDevice
                try gen.run()
                gen.waitUntilExit()
            }) { h in
            let hello = #"{"op":"hello","proto":1,"device":"HH-1","token":"\#(h.token)"}"#
            let answers = try await exchange(port: h.daemon.port, [
                hello,
                #"{"op":"set_key","actor":"admin","pin":"0000","user":"john","key":"\#(SandboxDemo.johnKey)"}"#,
                #"{"op":"set_key","actor":"admin","pin":"0000","user":"john","key":"made-up-key-123"}"#,
                #"{"op":"set_key","actor":"jane","pin":"4821","user":"john","key":null}"#,
                #"{"op":"set_key","actor":"admin","pin":"9999","user":"john","key":null}"#,
                #"{"op":"login","user":"john","pin":"1357"}"#,
                #"{"op":"bye"}"#,
            ])
            #expect(answers.map { $0["op"] as? String } == ["welcome", "set_key", "set_key", "set_key", "set_key", "login", "bye"])
            guard answers.count == 7 else { return }
            #expect(answers[1]["ok"] as? Bool == true && answers[1]["verified"] as? Bool == true && answers[1]["metrc_key"] as? String == "personal")
            #expect(answers[2]["ok"] as? Bool == false && answers[2]["code"] as? String == "key_rejected")
            #expect(answers[3]["code"] as? String == "forbidden")
            #expect(answers[4]["code"] as? String == "bad_credentials")
            #expect(answers[5]["metrc_key"] as? String == "personal")
            // Stored (last 4 only in listings), never echoed or logged.
            let keys = try await h.daemon.ctl(["key", "list"])
            #expect(keys.stdout.contains("john") && keys.stdout.contains("…" + String(SandboxDemo.johnKey.suffix(4))))
            #expect(!keys.stdout.contains(SandboxDemo.johnKey))
            #expect(!h.daemon.log.contains(SandboxDemo.johnKey) && !h.daemon.log.contains("made-up-key-123"))
            // John's uploads are now signed by John.
            let batch = #"{"op":"batch","id":"tls-john","user":"john","events":[{"seq":1,"type":"plant.move","at":"2026-11-28T14:03:11-08:00","plant":"\#(Tags.plant(140))","location":"Veg Room"}]}"#
            let acked = try await exchange(port: h.daemon.port, [hello, batch, #"{"op":"bye"}"#])
            #expect(acked.dropFirst().first?["op"] as? String == "ack")
            var state = ""
            try await eventually("tls-john uploaded", timeout: .seconds(20), every: .milliseconds(200), detail: { "last state: \(state)" }) {
                let shown = try await h.daemon.ctl(["batches", "--json"])
                let list = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [[String: Any]] ?? []
                state = list.first { $0["id"] as? String == "tls-john" }?["state"] as? String ?? ""
                return state == "uploaded" ? true : nil
            }
            #expect(await h.appliedWrites().contains { $0.user == "john" && $0.label == Tags.plant(140) })
        }
    }
}
