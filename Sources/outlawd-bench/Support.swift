import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Latency figures of one run, in milliseconds.
struct Latencies: Sendable {
    var count = 0
    var p50 = 0.0
    var p99 = 0.0
    var max = 0.0

    init() {}

    init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        guard !sorted.isEmpty else { return }
        func at(_ p: Double) -> Double {
            // Nearest rank.
            let rank = Int((p * Double(sorted.count)).rounded(.up))
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
        }
        p50 = at(0.50)
        p99 = at(0.99)
        max = sorted[sorted.count - 1]
    }
}

/// What Linux says about a process: peak and current resident memory, CPU time used.
enum ProcessFigures {
    /// VmHWM (peak resident set) in bytes, nil when the process is gone.
    static func peakRSS(pid: Int32) -> Int? { statusField("VmHWM", pid: pid) }
    static func rss(pid: Int32) -> Int? { statusField("VmRSS", pid: pid) }

    static func statusField(_ name: String, pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    /// utime + stime in seconds, from /proc/PID/stat (fields 14 and 15, after the parenthesised name).
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// The machine the figures come from.
struct Machine: Sendable {
    var cpus: Int
    var cpuModel: String
    var kernel: String
    var memory: String

    static func current() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let totalKB = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        return Machine(cpus: sysconf(Int32(_SC_NPROCESSORS_ONLN)), cpuModel: model, kernel: "Linux " + release,
                       memory: String(format: "%.1f GiB", Double(totalKB) / 1_048_576))
    }

    var summary: String { "\(cpus) CPUs (nproc), \(cpuModel), \(kernel), \(memory) RAM" }
}

/// The path of this very executable, to start handhelds as separate processes.
func ownExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

func mib(_ bytes: Int?) -> String {
    guard let bytes else { return "?" }
    return String(format: "%.1f MiB", Double(bytes) / 1_048_576)
}

func log(_ text: String) {
    FileHandle.standardError.write(Data(("bench: " + text + "\n").utf8))
}

/// Seconds since `start` on the monotonic clock.
func since(_ start: ContinuousClock.Instant) -> Double {
    let (s, atto) = (ContinuousClock.now - start).components
    return Double(s) + Double(atto) / 1e18
}
