import CLibCrypto
import CZlib
import Foundation

/// SHA-256 taken piece by piece: an archive is hashed as it is written and as it is read, never held whole in memory.
final class SHA256Stream {
    private let context: OpaquePointer

    init() {
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            preconditionFailure("EVP_DigestInit_ex(SHA-256) failed")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        precondition(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate failed")
    }

    func finish() -> Data {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &digest, &length) == 1 && length == 32, "EVP_DigestFinal_ex failed")
        return Data(digest[0..<32])
    }

    /// The SHA-256 of a whole file, read in 256 KiB steps.
    static func ofFile(_ path: String) throws -> (digest: Data, bytes: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let hash = SHA256Stream()
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            buffer.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            total += n
        }
        return (hash.finish(), total)
    }
}

/// Writes one gzip file (zlib's deflate, level 6) from lines given one at a time, hashing the compressed bytes as
/// they go out. The file is created owner-only and must not exist.
final class GzipFileWriter {
    let path: String
    private let fd: Int32
    private let stream: UnsafeMutablePointer<z_stream>
    private let hash = SHA256Stream()
    private var output = [UInt8](repeating: 0, count: 64 << 10)
    private(set) var bytesWritten = 0
    private var open = true

    init(path: String) throws {
        self.path = path
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 + 16: a gzip header and trailer around the deflate stream, as gzip(1) and zcat read.
        guard deflateInit2_(stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            close(fd)
            stream.deallocate()
            throw StoreError("zlib could not start a gzip stream for \(path)")
        }
    }

    deinit {
        if open {
            deflateEnd(stream)
            close(fd)
        }
        stream.deallocate()
    }

    func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try deflate(UnsafeRawBufferPointer($0), flush: Z_NO_FLUSH) }
    }

    /// Ends the gzip stream and flushes the file to the disk; returns the file's SHA-256 and size.
    func finish() throws -> (sha256: Data, bytes: Int) {
        try deflate(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH)
        deflateEnd(stream)
        open = false
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError("cannot flush \(path): \(String(cString: strerror(errno)))") }
        return (hash.finish(), bytesWritten)
    }

    private func deflate(_ input: UnsafeRawBufferPointer, flush: Int32) throws {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(input.count)
        // zlib's own loop: call again while it filled the whole buffer (it may have more to give).
        repeat {
            let produced: Int = try output.withUnsafeMutableBytes { out in
                stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(out.count)
                let status = CZlib.deflate(stream, flush)
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw StoreError("zlib could not compress \(path) (status \(status))")
                }
                return out.count - Int(stream.pointee.avail_out)
            }
            try output.withUnsafeBytes { try writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
        } while stream.pointee.avail_out == 0
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        hash.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        bytesWritten += bytes.count
    }
}

/// Reads a gzip file line by line (each line without its `\n`), hashing the compressed bytes as it reads them, so one
/// pass both checks a file against its audit row and yields its lines.
enum GzipLineReader {
    /// The longest line accepted: an archive line is a few KiB; anything longer is not one of ours.
    static let maxLineBytes = 16 << 20

    /// Calls `line` for every line; returns the file's SHA-256 and size. `line` returning false stops reading (the hash
    /// is then of what was read).
    @discardableResult
    static func read(_ path: String, line: (ArraySlice<UInt8>) throws -> Bool) throws -> (sha256: Data, bytes: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        guard inflateInit2_(stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw StoreError("zlib could not start reading \(path)")
        }
        defer { inflateEnd(stream) }
        let hash = SHA256Stream()
        var input = [UInt8](repeating: 0, count: 64 << 10)
        var output = [UInt8](repeating: 0, count: 256 << 10)
        var pending: [UInt8] = []
        var total = 0
        var ended = false
        reading: while true {
            let n = input.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
            input.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if ended { continue }  // bytes after the gzip stream: hashed (so verify sees them), never read as lines
            try input.withUnsafeMutableBytes { inBytes in
                stream.pointee.next_in = inBytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = UInt32(n)
                var full = false
                // Again while input is left or zlib filled the whole buffer (it may have more to give).
                while (stream.pointee.avail_in > 0 || full) && !ended {
                    let produced: Int = try output.withUnsafeMutableBytes { out in
                        stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = UInt32(out.count)
                        let status = inflate(stream, Z_NO_FLUSH)
                        if status == Z_STREAM_END { ended = true }
                        guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                            throw StoreError("\(path) is not a readable gzip file (zlib status \(status))")
                        }
                        return out.count - Int(stream.pointee.avail_out)
                    }
                    pending.append(contentsOf: output[0..<produced])
                    full = produced == output.count
                    if produced == 0 && !ended { break }
                }
            }
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                guard try line(pending[start..<newline]) else { break reading }
                start = newline + 1
            }
            pending.removeSubrange(pending.startIndex..<start)
            guard pending.count <= maxLineBytes else { throw StoreError("\(path) has a line longer than \(maxLineBytes) bytes: not an archive") }
        }
        if !pending.isEmpty { _ = try line(pending[...]) }
        return (hash.finish(), total)
    }
}
