/// A server message, its fields kept in the order they are written (`op` first) for readable lines.
public struct Reply: Sendable, Equatable {
    public private(set) var fields: [(String, JSONValue)]
    /// A line written elsewhere (a `data` line spliced from stored JSON), sent as it is.
    private var preformatted: String?

    public init(op: String, _ fields: [(String, JSONValue)] = []) {
        self.fields = [("op", .string(op))] + fields
    }

    /// A line built by the caller from JSON it already holds (without the final `\n`), so thousands of stored
    /// items are not parsed only to be written again. `fields` holds just its `op`.
    public init(op: String, preformattedLine: String) {
        self.fields = [("op", .string(op))]
        self.preformatted = preformattedLine + "\n"
    }

    public static func == (lhs: Reply, rhs: Reply) -> Bool {
        lhs.preformatted == rhs.preformatted
            && lhs.fields.map(\.0) == rhs.fields.map(\.0) && lhs.fields.map(\.1) == rhs.fields.map(\.1)
    }

    public subscript(key: String) -> JSONValue? {
        fields.first(where: { $0.0 == key })?.1
    }

    /// The line as sent, ending in `\n`.
    public var line: String {
        if let preformatted { return preformatted }
        var out = "{"
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { out += "," }
            JSONValue.writeString(k, to: &out)
            out += ":"
            v.write(to: &out, sortedKeys: false)
        }
        out += "}\n"
        return out
    }

    public static func error(_ code: ErrorCode, _ message: String) -> Reply {
        Reply(op: "error", [("code", .string(code.rawValue)), ("message", .string(message))])
    }

    public static func pong(time: String) -> Reply {
        Reply(op: "pong", [("time", .string(time))])
    }

    public static let bye = Reply(op: "bye")

    public static func ack(id: String, events: Int, duplicate: Bool) -> Reply {
        Reply(op: "ack", [("id", .string(id)), ("events", .number(Double(events))), ("duplicate", .bool(duplicate))])
    }

    public static func nack(id: String?, _ rejection: BatchRejection) -> Reply {
        var fields: [(String, JSONValue)] = [
            ("id", id.map(JSONValue.string) ?? .null), ("code", .string(rejection.code.rawValue)),
            ("message", .string(rejection.message)),
        ]
        if !rejection.errors.isEmpty {
            fields.append(("errors", .array(rejection.errors.map { e in
                .object(["seq": e.seq.map { .number(Double($0)) } ?? .null, "field": .string(e.field), "message": .string(e.message)])
            })))
        }
        return Reply(op: "nack", fields)
    }

    /// The `welcome` answer to a good `hello`.
    public static func welcome(server: String, facility: String, licenses: [String], session: String,
                               maxLineBytes: Int, maxBatchEvents: Int, window: Int) -> Reply
    {
        Reply(op: "welcome", [
            ("proto", 1), ("server", .string(server)), ("facility", .string(facility)),
            ("licenses", .array(licenses.map(JSONValue.string))), ("session", .string(session)),
            ("max_line_bytes", .number(Double(maxLineBytes))), ("max_batch_events", .number(Double(maxBatchEvents))),
            ("window", .number(Double(window))),
        ])
    }
}
