// libFuzzer target: one protocol line as a device sends it (ClientMessage.parse(line:)), a parsed batch through
// BatchValidator as DeviceConnection runs it, and the same bytes as a TCP stream through LineFramer.
// Built by scripts/fuzz with `swiftc -sanitize=fuzzer,address`; Fuzz/README.md says how to run it.
import Foundation
import OutlawProtocol

// Fixed, so that a crash input reproduces on any day: the validator as the daemon builds it with the shipped
// defaults, and a clock (2026-11-28T14:03:11Z) that keeps the corpus's `at` times within the 24 h window.
private let validator = BatchValidator(maxBatchEvents: 5000, defaultLicense: "LIC-0001", licenses: ["LIC-0002"])
private let now = Date(timeIntervalSince1970: 1_795_874_591)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    // Straight on libFuzzer's buffer (no copy), so AddressSanitizer sees any read past the line's end.
    let bytes = UnsafeBufferPointer(start: start.assumingMemoryBound(to: UInt8.self), count: count)
    checkMessage(bytes)
    checkFraming(bytes)
    return 0
}

/// The line path, plus the promises the parser's comments make that a wrong answer (not only a crash) breaks.
private func checkMessage(_ bytes: UnsafeBufferPointer<UInt8>) {
    let message = ClientMessage.parse(line: bytes)

    // "From an object already parsed whole: the same message `parse(line:)` makes of its text", and whatever the
    // whole-value parser refuses, the line parser refuses.
    let tree = JSONValue.parse(bytes)
    let expected = tree?.objectValue.map { ClientMessage.parse(object: $0) } ?? .failure(.badJSON)
    guard message == expected else {
        fatalError("parse(line:) gave \(message), but parse(object:) of the same text gave \(expected)")
    }

    switch message {
    case .success(.hello(let hello)):
        if let device = hello.device { _ = ClientMessage.isValidDeviceName(device) }
    case .success(.batch(let batch)):
        checkBatch(batch)
    default:
        break
    }
}

private func checkBatch(_ batch: BatchMessage) {
    _ = BatchValidator.echoedID(batch)
    switch validator.validate(batch, now: now) {
    case .failure(let rejection):
        _ = rejection.message
    case .success(let valid):
        for event in valid.events {
            _ = event.tags
            _ = ReferenceChecks.warning(ReferenceChecks.lookups(type: event.type, fields: event.eventFields))
        }
        // The canonical content is stored and hashed for duplicate detection: it must be JSON that reads back as
        // exactly the batch that was validated.
        let content: JSONValue = .object([
            "events": .array(valid.events.map { .object($0.fields) }),
            "license": .string(valid.license),
            "user": .string(valid.user),
        ])
        guard JSONValue.parse(Array(valid.canonicalContent.utf8)) == content else {
            fatalError("canonical content does not read back as the batch: \(valid.canonicalContent)")
        }
    }
}

/// LineFramer fed the whole input at once and in small chunks must agree with each other and with a plain
/// split of the bytes (a `\r` before `\n` dropped, blank lines skipped, over-long lines refused).
private func checkFraming(_ bytes: UnsafeBufferPointer<UInt8>) {
    // Small limits from the first byte, so that `tooLong` is reached as often as lines are.
    let limit = 16 + Int(bytes.first ?? 0) * 16
    let chunk = 1 + Int(bytes.last ?? 0) % 13

    var whole = LineFramer(maxLineBytes: limit)
    whole.append(bytes)
    var fromWhole: [FramedLine] = []
    drain(&whole, into: &fromWhole)

    var chunked = LineFramer(maxLineBytes: limit)
    var fromChunks: [FramedLine] = []
    var offset = 0
    while offset < bytes.count, fromChunks.last != .tooLong {
        let end = min(offset + chunk, bytes.count)
        chunked.append(UnsafeBufferPointer(rebasing: bytes[offset..<end]))
        offset = end
        drain(&chunked, into: &fromChunks)
        guard chunked.bufferedByteCount >= 0, chunked.bufferedByteCount <= offset else {
            fatalError("LineFramer holds \(chunked.bufferedByteCount) bytes after \(offset) were appended")
        }
    }

    let reference = splitLines(bytes, limit: limit)
    guard fromWhole == reference, fromChunks == reference else {
        fatalError("LineFramer (limit \(limit), chunks of \(chunk)): whole \(fromWhole), chunked \(fromChunks), expected \(reference)")
    }
}

private func drain(_ framer: inout LineFramer, into out: inout [FramedLine]) {
    while let next = framer.next() {
        out.append(next)
        if next == .tooLong {
            // Once failed, it stays failed: the connection is closed.
            guard framer.next() == .tooLong else { fatalError("LineFramer recovered after tooLong") }
            return
        }
    }
}

/// What the contract says framing is, written as simply as possible.
private func splitLines(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int) -> [FramedLine] {
    var out: [FramedLine] = []
    var start = 0
    for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "\n") {
        var line = Array(bytes[start..<i])
        start = i + 1
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if line.count > limit { return out + [.tooLong] }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
        out.append(.line(line))
    }
    // An unterminated tail may still end in "\r" of a "\r\n", hence the one extra byte.
    if bytes.count - start > limit + 1 { out.append(.tooLong) }
    return out
}
