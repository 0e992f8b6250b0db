import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler writing structured entries to the systemd journal with `sd_journal_sendv(3)`.
///
/// Each entry carries `MESSAGE`, `PRIORITY` (from the level), `SYSLOG_IDENTIFIER`, `LOGGER` (the
/// logger's label), `CODE_FILE`, `CODE_LINE`, `CODE_FUNC`, and one field per metadata key, named by
/// ``LogFields/journalFieldName(_:)`` (`batch_id` → `BATCH_ID`). Keys that would collide with the
/// fields above get a `META_` prefix; values of ``LogFields/redactedFieldNames`` are replaced.
/// Values may contain newlines (libsystemd sends those in the binary form).
/// If the journal cannot be reached, the entry is written to stderr as ``StderrLogHandler`` would.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?

    /// The logger's label, sent as `LOGGER=`.
    public let label: String
    /// `SYSLOG_IDENTIFIER=`; `journalctl -t IDENTIFIER` selects it.
    public let identifier: String

    static let reservedFields: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
    ]

    /// - Parameters:
    ///   - identifier: `SYSLOG_IDENTIFIER`; defaults to the program's file name.
    public init(
        label: String,
        identifier: String? = nil,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.identifier = identifier ?? Self.programName()
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogFields.effectiveMetadata(base: metadata, provider: metadataProvider, event: event)
        let fields = Self.fields(
            level: event.level, message: event.message.description, metadata: merged,
            identifier: identifier, label: label,
            file: event.file, function: event.function, line: event.line)
        if Self.send(fields) < 0 {
            StderrLogHandler.writeLine(
                StderrLogHandler.format(level: event.level, label: label, message: event.message.description, metadata: merged))
        }
    }

    /// The `NAME=value` fields of one entry, in the order they are sent.
    static func fields(
        level: Logger.Level, message: String, metadata: Logger.Metadata,
        identifier: String, label: String, file: String, function: String, line: UInt
    ) -> [String] {
        var fields: [String] = [
            "MESSAGE=\(message)",
            "PRIORITY=\(LogFields.priority(for: level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "LOGGER=\(label)",
            "CODE_FILE=\(file)",
            "CODE_LINE=\(line)",
            "CODE_FUNC=\(function)",
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard var name = LogFields.journalFieldName(key) else { continue }
            if reservedFields.contains(name) { name = "META_" + name }
            let text = LogFields.redactedFieldNames.contains(name) ? LogFields.redacted : LogFields.render(value)
            fields.append("\(name)=\(text)")
        }
        return fields
    }

    /// Sends one entry; returns `sd_journal_sendv`'s result (negative errno on failure).
    @discardableResult
    static func send(_ fields: [String]) -> Int32 {
        // One contiguous buffer holding every field, and iovecs pointing into it.
        var bytes: [UInt8] = []
        var ranges: [(Int, Int)] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let start = bytes.count
            bytes.append(contentsOf: field.utf8)
            ranges.append((start, bytes.count - start))
        }
        return bytes.withUnsafeMutableBytes { raw -> Int32 in
            var iov = ranges.map { start, count in
                iovec(iov_base: raw.baseAddress.map { $0 + start }, iov_len: count)
            }
            return iov.withUnsafeMutableBufferPointer { buf in
                sd_journal_sendv(buf.baseAddress, Int32(buf.count))
            }
        }
    }

    static func programName() -> String {
        guard let argv0 = CommandLine.arguments.first, !argv0.isEmpty else { return "swift" }
        return argv0.split(separator: "/").last.map(String.init) ?? argv0
    }
}
