/// What the framer found in the bytes received so far.
public enum FramedLine: Equatable, Sendable {
    /// One line's bytes, without its `\n` or `\r\n` terminator.
    case line([UInt8])
    /// A line exceeded the limit; the connection must be closed.
    case tooLong
}

/// Splits a byte stream into protocol lines, enforcing `max_line_bytes` before a long line is buffered whole.
public struct LineFramer: Sendable {
    public let maxLineBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private var failed = false

    public init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// Bytes held but not yet returned as a line.
    public var bufferedByteCount: Int { buffer.count - start }

    /// The next complete non-blank line, `.tooLong`, or nil when more bytes are needed.
    public mutating func next() -> FramedLine? {
        while true {
            if failed { return .tooLong }
            var i = max(start, scanned)
            let end = buffer.count
            while i < end, buffer[i] != UInt8(ascii: "\n") { i += 1 }
            if i == end {
                scanned = end
                // A trailing \r may still belong to a \r\n terminator, so allow one extra byte.
                if end - start > maxLineBytes + 1 {
                    failed = true
                    return .tooLong
                }
                compact()
                return nil
            }
            var lineEnd = i
            if lineEnd > start, buffer[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let length = lineEnd - start
            let lineStart = start
            start = i + 1
            scanned = start
            if length > maxLineBytes {
                failed = true
                return .tooLong
            }
            if buffer[lineStart..<lineEnd].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            return .line(Array(buffer[lineStart..<lineEnd]))
        }
    }

    private mutating func compact() {
        if start > 0 {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
    }
}
