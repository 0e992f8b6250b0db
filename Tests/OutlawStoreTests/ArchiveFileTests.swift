import Foundation
import OutlawTestSupport
import Testing
@testable import OutlawStore

/// The parts of retention without a store: archive names, the audit row's detail, gzip files and their hashes.
@Suite("Archive files", .timeLimit(.minutes(1)))
struct ArchiveFileTests {
    @Test func namesSortAsMonthsAndPartsAndOnlyOursParse() {
        let name = ArchiveName(month: "2025-03", part: 7)
        #expect(name.fileName == "outlawd-archive-2025-03.0007.jsonl.gz")
        #expect(ArchiveName(fileName: name.fileName) == name)
        #expect(ArchiveName(fileName: "outlawd-archive-2025-03.12345.jsonl.gz")?.part == 12345)
        for other in ["outlawd-archive-2025-13.0001.jsonl.gz", "outlawd-archive-2025-03.0001.jsonl.gz.partial", "outlawd-archive-2025-03.1.jsonl.gz",
                      "outlawd-archive-2025-03.0000.jsonl.gz", "notes.txt", "outlawd-20261205T031500Z.sqlite"] {
            #expect(ArchiveName(fileName: other) == nil, "\(other)")
        }
        #expect(ArchiveName(month: "2024-12", part: 9) < ArchiveName(month: "2025-01", part: 1))
        #expect(ArchiveName.month(of: Date(timeIntervalSince1970: 1_796_440_500)) == "2026-12")
    }

    @Test func theAuditDetailSaysTheHashAndCounts() throws {
        let detail = ArchiveDetail(sha256: String(repeating: "ab", count: 32), month: "2025-03", part: 2, events: 10, batches: 3, bytes: 999)
        #expect(ArchiveDetail(detail.text) == detail)
        #expect(ArchiveDetail("sha256=00 month=2025-03") == nil)
    }

    @Test func gzipLinesRoundTripWithTheHashOfTheBytesOnDisk() throws {
        let temp = try TempDirectory("outlawd-archive-file")
        let path = temp.file("a.jsonl.gz")
        let writer = try GzipFileWriter(path: path)
        // Enough lines to go through zlib's buffers several times.
        let lines = (0..<20_000).map { "{\"n\":\($0),\"pad\":\"\(String(repeating: "x", count: $0 % 97))\"}\n" }
        for line in lines { try writer.write(line) }
        let written = try writer.finish()
        let onDisk = try SHA256Stream.ofFile(path)
        #expect(onDisk.digest == written.sha256 && onDisk.bytes == written.bytes)
        #expect(onDisk.digest == LibCrypto.sha256(try Data(contentsOf: URL(fileURLWithPath: path))))
        var read: [String] = []
        let again = try GzipLineReader.read(path) { bytes in
            read.append(String(decoding: bytes, as: UTF8.self) + "\n")
            return true
        }
        #expect(read == lines)
        #expect(again.sha256 == written.sha256)
        // gzip(1) reads it too.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-t", path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // An existing file is never overwritten.
        #expect(throws: StoreError.self) { try GzipFileWriter(path: path) }
    }

    @Test func anArchiveIsReadInRunsOfAboutTwoThousandEventsABigBatchAlone() {
        var planned = Store.PlannedArchive(month: "2025-03")
        planned.batches = [(1, 1500), (2, 400), (3, 200), (4, 5000), (5, 10), (6, 10)]
        #expect(planned.runs(of: 2000) == [[1, 2], [3], [4], [5, 6]])
        #expect(Store.PlannedArchive(month: "2025-03").runs(of: 2000).isEmpty)
    }
}
