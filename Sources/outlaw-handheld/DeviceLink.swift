import Foundation
import OutlawTestSupport

/// Where one batch stands, from the device protocol's `status` answer.
struct BatchProgress: Sendable {
    /// Metrc's message for one failed event.
    struct EventError: Sendable {
        let seq: Int
        let message: String
    }

    let id: String
    let state: String
    let total: Int
    let pending: Int
    let uploaded: Int
    let failed: Int
    let errors: [EventError]
    /// Why a held batch waits.
    let reason: String?

    var finished: Bool { state != "unknown" && pending == 0 }
}

/// The handheld's one connection to outlawd, speaking the device protocol (../shared/PROTOCOL.md).
struct DeviceLink: Sendable {
    let client: LineClient
    /// How many batches the daemon lets a device pipeline.
    let window: Int

    /// Connects and says hello as `device`.
    static func open(site: DemoSite, device: String) async throws -> DeviceLink {
        let client: LineClient
        do {
            client = try await offload { try LineClient(host: site.deviceHost, port: site.devicePort, timeout: 30) }
        } catch {
            throw HandheldError.setup("cannot reach outlawd at \(site.deviceHost):\(site.devicePort) (\(error)); is `outlawd --dev` running?")
        }
        try client.send(json: ["op": "hello", "proto": 1, "device": device, "token": site.token, "firmware": "outlaw-handheld demo"])
        let answer = try await client.readJSON()
        guard answer["op"] as? String == "welcome" else {
            throw HandheldError.setup("outlawd refused \(device): \(describe(answer))")
        }
        return DeviceLink(client: client, window: max(1, answer["window"] as? Int ?? 16))
    }

    /// Logs a person in as the handheld does; returns their role, whose Metrc key will sign their work, and the
    /// ticket that proves their batches (kept by the handheld, never shown).
    func login(user: String, pin: String) async throws -> (role: String, metrcKey: String, ticket: String) {
        try client.send(json: ["op": "login", "user": user, "pin": pin])
        let answer = try await client.readJSON()
        guard answer["op"] as? String == "login", answer["ok"] as? Bool == true, let ticket = answer["ticket"] as? String else {
            throw HandheldError.failed("login as \(user) failed: \(describe(answer))")
        }
        return (answer["role"] as? String ?? "?", answer["metrc_key"] as? String ?? "?", ticket)
    }

    /// Sends the batches pipelined (at most `window` unanswered); `acked` is called with the count after each ack.
    /// Any nack ends the demo: the shift is built to be valid.
    func send(_ batches: [ShiftBatch], tickets: [String: String], timeZone: TimeZone, acked: (Int) -> Void) async throws {
        var sent = 0
        var answered = 0
        while answered < batches.count {
            while sent < batches.count, sent - answered < window {
                let batch = batches[sent]
                try client.send(json: ["op": "batch", "id": batch.id, "user": batch.user, "ticket": tickets[batch.user] ?? "",
                                       "events": batch.events.map { $0.json(timeZone: timeZone) }])
                sent += 1
            }
            let answer = try await client.readJSON()
            let id = batches[answered].id
            guard answer["op"] as? String == "ack", answer["id"] as? String == id else {
                throw HandheldError.failed("batch \(id) was not stored: \(describe(answer))")
            }
            answered += 1
            acked(answered)
        }
    }

    /// Where each batch stands, by id.
    func status(_ ids: [String]) async throws -> [String: BatchProgress] {
        try client.send(json: ["op": "status", "ids": ids])
        let answer = try await client.readJSON()
        guard answer["op"] as? String == "status", let items = answer["batches"] as? [[String: Any]] else {
            throw HandheldError.failed("status failed: \(describe(answer))")
        }
        var result: [String: BatchProgress] = [:]
        for item in items {
            guard let id = item["id"] as? String else { continue }
            let events = item["events"] as? [String: Any] ?? [:]
            let errors = (item["errors"] as? [[String: Any]] ?? []).compactMap { error -> BatchProgress.EventError? in
                guard let seq = error["seq"] as? Int else { return nil }
                return BatchProgress.EventError(seq: seq, message: error["message"] as? String ?? "")
            }
            result[id] = BatchProgress(
                id: id, state: item["state"] as? String ?? "unknown", total: events["total"] as? Int ?? 0,
                pending: events["pending"] as? Int ?? 0, uploaded: events["uploaded"] as? Int ?? 0,
                failed: events["failed"] as? Int ?? 0, errors: errors, reason: item["reason"] as? String)
        }
        return result
    }

    /// Says goodbye; the daemon answers what it still owes, then closes.
    func bye() async {
        try? client.send(json: ["op": "bye"])
        _ = await client.waitForClose()
    }

    private static func describe(_ answer: [String: Any]) -> String {
        let code = answer["code"] as? String ?? answer["op"] as? String ?? "?"
        return (answer["message"] as? String).map { "\(code): \($0)" } ?? code
    }

    private func describe(_ answer: [String: Any]) -> String { Self.describe(answer) }
}
