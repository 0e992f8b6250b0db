import Foundation
import OutlawProtocol

/// One problem Metrc found in a rejected write. `row` is the index of the object in the request array,
/// nil when Metrc gave none (or one outside the request: then the rows cannot be trusted).
public struct MetrcRowError: Sendable, Equatable {
    public let row: Int?
    public let message: String

    public init(row: Int?, message: String) {
        self.row = row
        self.message = message
    }
}

/// What became of one write request.
public enum MetrcResponse: Sendable, Equatable {
    /// 2xx; ids from `{"Ids":[...]}` when present, else [].
    case accepted(ids: [Int64])
    /// 400 whose body is a JSON array: nothing applied.
    case rejected([MetrcRowError])
    /// 400 `{"Message":...}`, 5xx, any other unexpected status or body: retryable, outcome unknown.
    case serverFault(status: Int, message: String)
    /// 401 or 403.
    case unauthorized(status: Int)
    /// 413.
    case tooLarge
    /// 429 (`Retry-After` seconds when given).
    case rateLimited(retryAfter: Double?)
    /// 404.
    case notFound(message: String)
    /// Timeout, refused, reset, dropped: outcome unknown.
    case transportFailure(String)
}

extension MetrcResponse {
    /// Classifies an HTTP answer. Pure: `retryAfter` is the raw `Retry-After` header, `body` the raw bytes.
    /// Bodies of 401/403 are never read (Metrc's may be empty or HTML).
    public static func classify(status: Int, retryAfter: String?, body: [UInt8]) -> MetrcResponse {
        switch status {
        case 200..<300:
            return .accepted(ids: acceptedIds(body))
        case 401, 403:
            return .unauthorized(status: status)
        case 400:
            if case .array(let entries)? = JSONValue.parse(body) {
                return .rejected(entries.map(rowError))
            }
            return .serverFault(status: status, message: messageText(body, fallback: "Bad Request"))
        case 404:
            return .notFound(message: messageText(body, fallback: "Not Found"))
        case 413:
            return .tooLarge
        case 429:
            return .rateLimited(retryAfter: retryAfter.flatMap(retryAfterSeconds))
        default:
            return .serverFault(status: status, message: messageText(body, fallback: "HTTP \(status)"))
        }
    }

    /// `{"Ids":[...]}` (any case); an empty or other body gives [] (the write was applied all the same).
    static func acceptedIds(_ body: [UInt8]) -> [Int64] {
        guard let object = JSONValue.parse(body)?.objectValue,
              let ids = object.field("Ids")?.arrayValue else { return [] }
        return ids.compactMap(\.int64Value)
    }

    /// One entry of a 400 array: `{"row":0,"message":"..."}` in any case; a bare string is a message.
    static func rowError(_ entry: JSONValue) -> MetrcRowError {
        switch entry {
        case .object(let fields):
            let row = fields.field("row").flatMap(\.int64Value).flatMap { Int(exactly: $0) }
            let message = fields.field(anyOf: ["message", "errorMessage", "error"])?.stringValue
                ?? entry.serialized(sortedKeys: true)
            return MetrcRowError(row: row.flatMap { $0 >= 0 ? $0 : nil }, message: message)
        case .string(let text):
            return MetrcRowError(row: nil, message: text)
        default:
            return MetrcRowError(row: nil, message: entry.serialized(sortedKeys: true))
        }
    }

    /// `{"Message":...}` (any case), else the body as text (cut short), else `fallback`.
    static func messageText(_ body: [UInt8], fallback: String) -> String {
        if let object = JSONValue.parse(body)?.objectValue,
           let message = object.field(anyOf: ["Message", "ExceptionMessage", "error"])?.stringValue {
            return message
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? fallback : text
    }

    /// `Retry-After: <seconds>` (whole or fractional, not negative); an HTTP-date form gives nil.
    static func retryAfterSeconds(_ header: String) -> Double? {
        guard let seconds = Double(header.trimmingCharacters(in: .whitespaces)), seconds.isFinite, seconds >= 0
        else { return nil }
        return seconds
    }
}

extension MetrcResponse {
    /// The HTTP status this response came with; nil when no answer came at all.
    public var httpStatus: Int? {
        switch self {
        case .accepted: return 200
        case .rejected: return 400
        case .serverFault(let status, _), .unauthorized(let status): return status
        case .tooLarge: return 413
        case .rateLimited: return 429
        case .notFound: return 404
        case .transportFailure: return nil
        }
    }

    /// The status for the journal's METRC_STATUS field: the HTTP code, or `unreachable`.
    public var statusText: String { httpStatus.map(String.init) ?? "unreachable" }

    /// What Metrc said, in words for an operator (rows numbered as in the request); nil when it accepted.
    public var summary: String? {
        switch self {
        case .accepted: return nil
        case .rejected(let rows): return rows.map { "row \($0.row.map(String.init) ?? "?"): \($0.message)" }.joined(separator: "; ")
        case .serverFault(_, let m), .notFound(let m), .transportFailure(let m): return m
        case .unauthorized: return "key refused"
        case .tooLarge: return "too many objects"
        case .rateLimited(let after): return "rate limited" + (after.map { ", retry after \($0) s" } ?? "")
        }
    }
}
