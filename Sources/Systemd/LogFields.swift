import Logging

/// Shared rules for turning swift-log events into fields: level mapping, metadata flattening,
/// journal field names and redaction. Used by both log handlers.
public enum LogFields {
    /// syslog priority for a swift-log level (`PRIORITY=` in the journal).
    public static func priority(for level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7  // LOG_DEBUG
        case .info: return 6  // LOG_INFO
        case .notice: return 5  // LOG_NOTICE
        case .warning: return 4  // LOG_WARNING
        case .error: return 3  // LOG_ERR
        case .critical: return 2  // LOG_CRIT
        }
    }

    /// Metadata keys (compared after journal-name sanitizing) whose values are never written:
    /// a defensive net under the rule that no key, token or PIN is ever logged.
    public static let redactedFieldNames: Set<String> = [
        "PIN", "TOKEN", "PASSWORD", "SECRET", "API_KEY", "VENDOR_KEY", "USER_KEY", "DEVICE_TOKEN",
        "METRC_API_KEY", "AUTHORIZATION",
    ]

    /// What a redacted value is replaced with.
    public static let redacted = "<redacted>"

    /// The metadata key of a message's catalog id (OutlawProtocol's `MessageID.metadataKey`): `MESSAGE_ID=` in the
    /// journal, where `journalctl -x` finds its explanation; left out of stderr lines, which no catalog explains.
    public static let messageIDKey = "message_id"

    /// A journal field name for a metadata key: upper-cased, every character outside `[A-Z0-9_]`
    /// replaced by `_`, leading underscores dropped (those are journald's trusted fields), a leading
    /// digit prefixed with `F_`, at most 64 characters. Nil when nothing usable is left.
    /// `batch_id` → `BATCH_ID`, `metrc.status` → `METRC_STATUS`.
    public static func journalFieldName(_ key: String) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(key.utf8.count)
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): out.append(byte - 32)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                out.append(byte)
            case 0x80...0xBF:
                continue  // continuation bytes of a multi-byte character: one `_` per character
            default:
                out.append(UInt8(ascii: "_"))
            }
        }
        while out.first == UInt8(ascii: "_") { out.removeFirst() }
        if out.isEmpty { return nil }
        if let first = out.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") {
            out.insert(contentsOf: Array("F_".utf8), at: 0)
        }
        if out.count > 64 { out.removeLast(out.count - 64) }
        return String(decoding: out, as: UTF8.self)
    }

    /// True when the value for this metadata key must not be logged.
    public static func isRedacted(_ key: String) -> Bool {
        guard let name = journalFieldName(key) else { return false }
        return redactedFieldNames.contains(name)
    }

    /// A metadata value as one string; dictionaries and arrays use swift-log's rendering.
    public static func render(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .dictionary, .array: return value.description
        }
    }

    /// Handler metadata, then the provider's, then the event's (later wins), plus the event's error as
    /// `error.message` / `error.type`, exactly as swift-log's own handlers merge them.
    static func effectiveMetadata(
        base: Logger.Metadata,
        provider: Logger.MetadataProvider?,
        event: LogEvent
    ) -> Logger.Metadata {
        var metadata = base
        if let provided = provider?.get(), !provided.isEmpty {
            metadata.merge(provided, uniquingKeysWith: { _, new in new })
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            metadata.merge(explicit, uniquingKeysWith: { _, new in new })
        }
        if let error = event.error {
            metadata["error.message"] = "\(error)"
            metadata["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return metadata
    }
}
