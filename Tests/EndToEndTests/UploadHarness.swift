import Foundation
import MetrcSandbox
import OutlawTestSupport
import Testing

/// A sandbox Metrc in the test process and the real outlawd uploading to it.
final class UploadHarness: @unchecked Sendable {
    let sandbox: MetrcSandboxServer
    let daemon: DaemonProcess
    let token: String

    /// The crew: device HH-1; users jane (personal key), john (no key: Default), admin.
    static let crew: [CrewMember] = [.jane, CrewMember("john", pin: "1357"), CrewMember("admin", role: "admin", pin: "0000")]

    /// Device HH-1 and the `crew`. `review` is the body of a `[review]` table, `keys` of a `[keys]` table.
    /// The reference sync stays off unless `referenceSync`: most tests are about uploads, and its reads would
    /// share their GET budget.
    static func start(server: String = "", store: String = "", facility: String = "", metrc: String = "", review: String = "", keys: String = "",
                      sandboxConfiguration: SandboxConfiguration = .init(), sandboxState: SandboxState = .demo(),
                      referenceSync: Bool = false, requestTimeout: Double = 3,
                      janeKey: Bool = true, prepare: @escaping @Sendable (TempDirectory) throws -> Void = { _ in }) async throws -> UploadHarness
    {
        let sandbox = MetrcSandboxServer(state: sandboxState, configuration: sandboxConfiguration)
        let port = try await sandbox.start()
        let dir = try TempDirectory("outlawd-upload")
        try dir.write("secrets/vendor-key", SandboxDemo.vendorKey + "\n")
        try dir.write("secrets/default-key", SandboxDemo.ownerKey + "\n")
        // Preparing may write a big store: on a thread of its own, not the cooperative pool other tests share.
        try await offload { try prepare(dir) }
        let daemon = try await DaemonProcess(server: server, store: store, facility: facility, metrc: """
            base_url = "http://127.0.0.1:\(port)"
            vendor_key_file = "secrets/vendor-key"
            default_key_file = "secrets/default-key"
            request_timeout_seconds = \(requestTimeout)
            reference_sync = \(referenceSync)
            \(metrc)
            \(review.isEmpty ? "" : "[review]\n" + review)
            \(keys.isEmpty ? "" : "[keys]\n" + keys)
            """, directory: dir)
        let token = try await daemon.addCrew(users: crew).token
        if janeKey {
            // `key set` checks the key with the sandbox within request_timeout_seconds (3 s here); on a loaded machine
            // that check can miss and store the key unverified, which tests that start from a verified key must not
            // see. Set it again until Metrc's answer came back (a minute at most).
            try await eventually("jane's key verified by Metrc", timeout: .seconds(60), every: .milliseconds(1)) { () -> Bool? in
                let r = try await daemon.ctl(["key", "set", "jane"], stdin: SandboxDemo.janeKey + "\n")
                guard r.status == 0 else { throw LineClient.Failure(description: "key set failed: \(r.stderr)") }
                let list = try await daemon.ctl(["key", "list", "--json"])
                let rows = (try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]] ?? []
                return rows.contains { $0["user"] as? String == "jane" && $0["status"] as? String == "ok" } ? true : nil
            }
        }
        return UploadHarness(sandbox: sandbox, daemon: daemon, token: token)
    }

    private init(sandbox: MetrcSandboxServer, daemon: DaemonProcess, token: String) {
        self.sandbox = sandbox
        self.daemon = daemon
        self.token = token
    }

    /// Runs `body` against a fresh harness, then stops the daemon with SIGTERM and waits for it, whatever
    /// the body did: a daemon that does not stop cleanly fails the test.
    static func run(server: String = "", store: String = "", facility: String = "", metrc: String = "", review: String = "", keys: String = "",
                    sandboxConfiguration: SandboxConfiguration = .init(), sandboxState: SandboxState = .demo(), referenceSync: Bool = false,
                    requestTimeout: Double = 3, janeKey: Bool = true,
                    prepare: @escaping @Sendable (TempDirectory) throws -> Void = { _ in }, _ body: (UploadHarness) async throws -> Void) async throws
    {
        let h = try await start(server: server, store: store, facility: facility, metrc: metrc, review: review, keys: keys,
                                sandboxConfiguration: sandboxConfiguration, sandboxState: sandboxState, referenceSync: referenceSync,
                                requestTimeout: requestTimeout, janeKey: janeKey, prepare: prepare)
        do {
            try await body(h)
        } catch {
            await h.stop()
            throw error
        }
        await h.stop()
    }

    func stop() async {
        await daemon.expectCleanStop()
        try? await sandbox.shutdown()
    }

    /// Sends one batch on a fresh session and expects an ack.
    func send(_ id: String, user: String, events: [[String: Any]]) async throws {
        let (c, _) = try await daemon.session(device: "HH-1", token: token)
        try c.send(json: ["op": "batch", "id": id, "user": user, "events": events])
        let ack = try await c.readJSON()
        guard ack["op"] as? String == "ack" else { throw LineClient.Failure(description: "not acked: \(ack)") }
    }

    /// The `status` items of these batches, by id.
    func status(_ ids: [String]) async throws -> [String: [String: Any]] {
        let (c, _) = try await daemon.session(device: "HH-1", token: token)
        try c.send(json: ["op": "status", "ids": ids])
        let items = try await c.readJSON()["batches"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: items.map { ($0["id"] as? String ?? "", $0) })
    }

    /// Waits until every batch is in one of `states`; returns the last status seen.
    @discardableResult
    func waitFor(_ ids: [String], states: Set<String>, timeout: TimeInterval = 30) async throws -> [String: [String: Any]] {
        var last: [String: [String: Any]] = [:]
        return try await eventually("\(ids) to reach \(states.sorted())", timeout: .milliseconds(Int(timeout * 1000)), every: .milliseconds(100),
                                    detail: { "last seen: \(last)\n--- daemon log ---\n\(daemon.log.suffix(4000))" }) {
            last = try await status(ids)
            return ids.allSatisfy({ states.contains(last[$0]?["state"] as? String ?? "") }) ? last : nil
        }
    }

    /// Kills the daemon (SIGKILL) while one of its writes is provably at Metrc, unanswered: the sandbox holds the
    /// answer to the next `method` request for `hold` (a one-shot latency, used up when that request arrives, so its
    /// disappearance from the sandbox's faults is the proof of arrival), `startUploads` lets the uploads go, and
    /// the kill comes before the hold can have ended. Then waits until the sandbox has finished every write it had,
    /// so that what it applies after the kill (the held write at least, whose answer the daemon never read) is there
    /// before a restarted daemon reads Metrc back. The daemon's request timeout must outlast `hold`.
    func kill9WithAWriteInFlight(method: String, hold: Duration = .seconds(5), startUploads: () async throws -> Void) async throws {
        let held = SandboxFault.latency(milliseconds: Int(hold.components.seconds * 1000), count: 1, method: method)
        var stillWaiting = ContinuousClock.now
        try await sandbox.setFaults(held)
        try await startUploads()
        try await eventually("a \(method) write to reach the sandbox", timeout: .seconds(60), every: .milliseconds(10),
                             detail: { daemon.log.suffix(3000).description }) { () -> Bool? in
            let before = ContinuousClock.now
            if await sandbox.faults().contains(held) {
                stillWaiting = before
                return nil
            }
            return true
        }
        // The write arrived after `stillWaiting`; it is applied and answered `hold` after it arrived at the soonest.
        await daemon.kill9()
        let appliedAtKill = await sandbox.writes().count
        let sinceArrival = ContinuousClock.now - stillWaiting
        try #require(sinceArrival < hold, "the kill came \(sinceArrival) after the write arrived: its answer may have been read")
        // Writes being handled (mostWritesAtOnce since the reset) drop to none once the held one is applied.
        try await eventually("the sandbox to finish the writes it held", timeout: .seconds(60)) { () -> Bool? in
            sandbox.resetMostWritesAtOnce()
            return sandbox.mostWritesAtOnce() == 0 ? true : nil
        }
        let applied = await sandbox.writes().count
        #expect(applied > appliedAtKill, "the held write was applied after the kill, its answer never read")
    }

    /// (Metrc user, action, label) for every object Metrc applied, in the order it applied them; a waste record
    /// counts once for each plant it names.
    func appliedWrites() async -> [(user: String, action: String, label: String)] {
        await sandbox.writes().flatMap { w in
            (w.objects.arrayValue ?? []).flatMap { o in
                let labels = o[field: "PlantLabels"]?.arrayValue?.compactMap(\.stringValue)
                    ?? [o[field: "Label"]?.stringValue ?? o[field: "Plant"]?.stringValue ?? "?"]
                return labels.map { (w.userName, w.action.rawValue, $0) }
            }
        }
    }
}

enum Tags {
    static func plant(_ n: Int) -> String { SandboxDemo.plantTag(n) }
    static func package(_ n: Int) -> String { SandboxDemo.packageTag(n) }
    /// The k-th (from 0) demo package measured in Grams (items 1-3 of every 6 are gram items).
    static func gramPackage(_ k: Int) -> String { SandboxDemo.packageTag((k / 3) * 6 + k % 3 + 1) }
}

enum Events {
    static let at = "2026-11-28T14:03:11-08:00"

    static func move(_ seq: Int, plant: String, to location: String = "Flower Room 2") -> [String: Any] {
        ["seq": seq, "type": "plant.move", "at": at, "plant": plant, "location": location]
    }

    static func harvest(_ seq: Int, plant: String, weight: Double = 120.5) -> [String: Any] {
        ["seq": seq, "type": "plant.harvest", "at": at, "plant": plant, "weight": weight, "unit": "Grams", "drying_location": "Drying Room"]
    }

    static func destroy(_ seq: Int, plant: String) -> [String: Any] {
        ["seq": seq, "type": "plant.destroy", "at": at, "plant": plant, "waste_weight": 3, "waste_unit": "Grams",
         "waste_method": "Compost", "waste_material": "Soil", "reason": "Pests"]
    }

    static func packageMove(_ seq: Int, package: String, to location: String = "Processing Room") -> [String: Any] {
        ["seq": seq, "type": "package.move", "at": at, "package": package, "location": location]
    }

    static func adjust(_ seq: Int, package: String, quantity: Double = -2) -> [String: Any] {
        ["seq": seq, "type": "package.adjust", "at": at, "package": package, "quantity": quantity, "unit": "Grams", "reason": "Drying"]
    }

    static func manicure(_ seq: Int, plant: String, weight: Double = 40.5, dryingLocation: String = "Drying Room") -> [String: Any] {
        ["seq": seq, "type": "plant.manicure", "at": at, "plant": plant, "weight": weight, "unit": "Grams", "drying_location": dryingLocation]
    }

    static func waste(_ seq: Int, plants: [String], weight: Double = 2.5, reason: String = "Mold", note: String? = nil) -> [String: Any] {
        var event: [String: Any] = ["seq": seq, "type": "plant.waste", "at": at, "plants": plants, "waste_weight": weight, "waste_unit": "Grams",
                                    "waste_method": "Compost", "waste_material": "Soil", "reason": reason]
        if let note { event["note"] = note }
        return event
    }

    static func scan(_ seq: Int, plant: String) -> [String: Any] {
        ["seq": seq, "type": "plant.scan", "at": at, "plant": plant]
    }
}
