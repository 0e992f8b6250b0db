import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler writing one plain line per entry to stderr:
/// `LEVEL label: message key=value key2="value with spaces"`, metadata sorted by key.
/// Newlines in the message or values are escaped so one entry is always one line.
/// Values of ``LogFields/redactedFieldNames`` are replaced; ``LogFields/messageIDKey`` is left out (a catalog id
/// helps only `journalctl -x`, and would only lengthen dev-mode lines).
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogFields.effectiveMetadata(base: metadata, provider: metadataProvider, event: event)
        Self.writeLine(Self.format(level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    /// The line for one entry, without the trailing newline.
    static func format(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(level.rawValue) \(label): \(escape(message))"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where key != LogFields.messageIDKey {
            let text = LogFields.isRedacted(key) ? LogFields.redacted : LogFields.render(value)
            line += " \(key)=\(quoteIfNeeded(text))"
        }
        return line
    }

    static func escape(_ text: String) -> String {
        guard text.contains(where: { $0.isNewline || $0 == "\\" || $0 == "\t" }) else { return text }
        var out = ""
        for c in text {
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\r\n": out += "\\r\\n"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            default: out.append(c.isNewline ? " " : c)
            }
        }
        return out
    }

    static func quoteIfNeeded(_ value: String) -> String {
        let plain = !value.isEmpty && !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline || $0 == "\t" || $0 == "\\" })
        if plain { return value }
        return "\"" + escape(value).replacingAll("\"", with: "\\\"") + "\""
    }

    /// Writes `line` and a newline to fd 2 with one `write` where possible, so concurrent entries
    /// do not interleave.
    static func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(2, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self {
            if c == target { out += replacement } else { out.append(c) }
        }
        return out
    }
}
