import Foundation

// The benchmark behind scripts/bench: the real outlawd (the binary built next to this one) under load, and every
// figure that counts next to its limit measured in the same run (raw SQLite, the upload bound, Metrc's GET limit).
// `outlawd-bench handheld ...` is one simulated handheld: the bench starts one such process per handheld.

let arguments = CommandLine.arguments
if arguments.count > 1, arguments[1] == "handheld" {
    do {
        let plan = try HandheldPlan(arguments: Array(arguments.dropFirst()))
        let summary = Handheld.run(plan)
        print(String(decoding: try JSONEncoder().encode(summary), as: UTF8.self))
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("outlawd-bench handheld: \(error)\n".utf8))
        exit(2)
    }
}

do {
    try await Bench.run(try BenchOptions(arguments: arguments))
} catch {
    FileHandle.standardError.write(Data("outlawd-bench: \(error)\n".utf8))
    exit(1)
}
