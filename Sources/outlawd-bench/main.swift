import Foundation
import MetrcSandbox
import OutlawTestSupport

// Measures the real outlawd (release build): ingest throughput and ack latency over TCP, the daemon's
// peak memory, and upload throughput to the Metrc sandbox. Prints its figures; run by scripts/bench.

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) else { return fallback }
    return v
}
let connections = option("--connections", 8)
let batchesPerConnection = option("--batches", 200)
let eventsPerBatch = option("--events", 50)
let window = 16

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

func peakRSS(pid: Int32) -> String {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return "?" }
    let lines = text.split(separator: "\n").filter { $0.hasPrefix("VmHWM") || $0.hasPrefix("VmRSS") }
    return lines.map { $0.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "  ", with: "") }.joined(separator: ", ")
}

let sandbox = MetrcSandboxServer(state: .demo(), configuration: SandboxConfiguration(rateLimits: .unlimited))
let sandboxPort = try await sandbox.start()
let dir = try TempDirectory("outlawd-bench")
try dir.write("secrets/vendor-key", SandboxDemo.vendorKey)
try dir.write("secrets/default-key", SandboxDemo.ownerKey)
let daemon = try await DaemonProcess(metrc: """
    base_url = "http://127.0.0.1:\(sandboxPort)"
    vendor_key_file = "secrets/vendor-key"
    default_key_file = "secrets/default-key"
    """, directory: dir)
let token = try await daemon.addDevice("HH-BENCH")
try await daemon.addUser("jane", pin: "4821")
try await daemon.addUser("john", pin: "1357")
_ = try await daemon.ctl(["key", "set", "jane"], stdin: SandboxDemo.janeKey + "\n")
// Pause uploads while measuring ingestion alone.
_ = try await daemon.ctl(["pause"])

print("outlawd benchmark: \(connections) connections x \(batchesPerConnection) batches x \(eventsPerBatch) events, window \(window)")

let start = Date()
let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
    for c in 0..<connections {
        group.addTask {
            let (client, _) = try await daemon.session(device: "HH-BENCH", token: token)
            var sentAt: [Date] = []
            var lat: [Double] = []
            var next = 0
            var acked = 0
            func line(_ b: Int) -> String {
                let user = b % 2 == 0 ? "jane" : "john"
                let events = (1...eventsPerBatch).map { seq in
                    #"{"seq":\#(seq),"type":"plant.scan","at":"2026-11-28T14:03:11-08:00","plant":"1A4FF0100000022000000001","location":"Veg Room"}"#
                }.joined(separator: ",")
                return #"{"op":"batch","id":"c\#(c)-b\#(b)","user":"\#(user)","events":[\#(events)]}"#
            }
            while acked < batchesPerConnection {
                while next < batchesPerConnection, next - acked < window {
                    sentAt.append(Date())
                    try client.send(line(next))
                    next += 1
                }
                let m = try await client.readJSON()
                guard m["op"] as? String == "ack" else { throw LineClient.Failure(description: "not acked: \(m)") }
                lat.append(Date().timeIntervalSince(sentAt[acked]) * 1000)
                acked += 1
            }
            return lat
        }
    }
    var all: [Double] = []
    for try await part in group { all += part }
    return all
}.sorted()
let elapsed = Date().timeIntervalSince(start)
let totalEvents = connections * batchesPerConnection * eventsPerBatch
print(String(format: "ingest: %d batches, %d events acked in %.2f s = %.0f events/s, %.0f batches/s",
             latencies.count, totalEvents, elapsed, Double(totalEvents) / elapsed, Double(latencies.count) / elapsed))
print(String(format: "ack latency (pipelined, window %d): p50 %.1f ms, p99 %.1f ms, max %.1f ms",
             window, percentile(latencies, 0.5), percentile(latencies, 0.99), latencies.last ?? 0))
print("daemon memory after ingest: \(peakRSS(pid: daemon.pid))")

// One device sending one batch at a time: the latency a handheld sees (commit with fsync included).
do {
    let (client, _) = try await daemon.session(device: "HH-BENCH", token: token)
    var single: [Double] = []
    for i in 0..<200 {
        let started = Date()
        try client.send(#"{"op":"batch","id":"single-\#(i)","user":"jane","events":[{"seq":1,"type":"plant.scan","at":"2026-11-28T14:03:11-08:00","plant":"1A4FF0100000022000000001"}]}"#)
        _ = try await client.readJSON()
        single.append(Date().timeIntervalSince(started) * 1000)
    }
    single.sort()
    print(String(format: "ack latency (one batch at a time, 1 event): p50 %.2f ms, p99 %.2f ms", percentile(single, 0.5), percentile(single, 0.99)))
}

// Upload throughput: real Metrc writes (moves) to the sandbox, per-user keys, objects_per_request 100.
let uploadEvents = option("--upload-events", 2000)
_ = try await daemon.ctl(["resume"])
let (client, _) = try await daemon.session(device: "HH-BENCH", token: token)
var ids: [String] = []
for b in 0..<(uploadEvents / 100) {
    let events = (1...100).map { seq in
        let n = (b * 100 + seq - 1) % 300 + 1
        let room = ["Flower Room 1", "Flower Room 2", "Veg Room"][(b / 3) % 3]
        return #"{"seq":\#(seq),"type":"plant.move","at":"2026-11-28T14:03:11-08:00","plant":"\#(SandboxDemo.plantTag(n))","location":"\#(room)"}"#
    }.joined(separator: ",")
    try client.send(#"{"op":"batch","id":"up-\#(b)","user":"\#(b % 2 == 0 ? "jane" : "john")","events":[\#(events)]}"#)
    _ = try await client.readJSON()
    ids.append("up-\(b)")
}
let uploadStart = Date()
while true {
    try client.send(json: ["op": "status", "ids": ids])
    let items = try await client.readJSON()["batches"] as? [[String: Any]] ?? []
    if items.allSatisfy({ ($0["state"] as? String) == "uploaded" }) { break }
    if Date().timeIntervalSince(uploadStart) > 600 { print("upload: timed out"); break }
    try await Task.sleep(for: .milliseconds(50))
}
let uploadElapsed = Date().timeIntervalSince(uploadStart)
let writes = await sandbox.writes()
print(String(format: "upload: %d events to the Metrc sandbox in %.2f s = %.0f events/s (%d requests)",
             uploadEvents, uploadElapsed, Double(uploadEvents) / uploadElapsed, writes.count))
print("daemon memory at the end: \(peakRSS(pid: daemon.pid))")
await daemon.stop()
try await sandbox.shutdown()
