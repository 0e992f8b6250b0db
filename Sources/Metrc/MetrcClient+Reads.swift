import Foundation
import NIOHTTP1
import OutlawProtocol

extension MetrcClient {
    /// The answer of the cheap key check.
    public enum KeyCheck: Sendable, Equatable {
        /// The key works; the licenses it may act for, and the key's expiry should Metrc ever report one (its
        /// facilities answer carries none today, so `checkKey` leaves it nil and the lifetime in `[keys]` is used).
        case valid(licenses: [String], expiresAt: Date? = nil)
        /// 401/403: a person must fix the key.
        case rejected
        /// No usable answer (transport error, 5xx, 429, anything else): try later.
        case unreachable(String)
    }

    /// `GET /facilities/v2/` with that key. 401/403 → `.rejected`; transport error, 5xx, 429 → `.unreachable`.
    public func checkKey(_ userKey: String) async -> KeyCheck {
        switch await exchange(method: .GET, path: "/facilities/v2/", query: [], userKey: userKey) {
        case .failure(let reason):
            return .unreachable(reason)
        case .answer(let status, let retryAfter, let body):
            if status == 401 || status == 403 { return .rejected }
            guard (200..<300).contains(status) else {
                return .unreachable(readError(status: status, retryAfter: retryAfter, body: body, userKey: userKey).message)
            }
            guard case .array(let facilities)? = JSONValue.parse(body) else {
                return .unreachable("GET /facilities/v2/ answered \(status) with something other than a JSON array")
            }
            return .valid(licenses: facilities.compactMap { facility in
                guard let fields = facility.objectValue else { return nil }
                return fields.field("License")?.objectValue?.field("Number")?.stringValue
                    ?? fields.field("LicenseNumber")?.stringValue
            })
        }
    }

    /// Generic reader for reference lists (e.g. "/locations/v2/active"): follows pages (pageSize 20) or
    /// takes a bare array (or a single object, e.g. `/plants/v2/{label}`: one element); passes
    /// `lastModifiedStart`/`lastModifiedEnd` when given; returns the objects. Throws `MetrcReadError`.
    public func list(path: String, license: String?, userKey: String, since: Date?, until: Date?) async throws
        -> [[String: JSONValue]]
    {
        var query: [(String, String)] = []
        if let license { query.append(("licenseNumber", license)) }
        if let since { query.append(("lastModifiedStart", MetrcWindowTimestamp.format(since, roundingUp: false))) }
        if let until { query.append(("lastModifiedEnd", MetrcWindowTimestamp.format(until, roundingUp: true))) }
        let pageSize = 20
        var records: [[String: JSONValue]] = []
        var pageNumber = 1
        while true {
            let value = try await read(path: path, query: query + [("pageNumber", String(pageNumber)),
                                                                     ("pageSize", String(pageSize))], userKey: userKey)
            switch value {
            case .array(let items):
                return try records + Self.objects(items, path: path)
            case .object(let fields):
                guard let dataValue = fields.field("Data") else {
                    return records + [fields]   // a single record (e.g. /plants/v2/{label})
                }
                guard case .array(let items) = dataValue else {
                    throw MetrcReadError(status: 200, message: "GET \(path): Data is not an array")
                }
                records += try Self.objects(items, path: path)
                let totalPages = fields.field("TotalPages").flatMap(\.int64Value)
                if items.isEmpty { return records }
                if let totalPages {
                    if pageNumber >= totalPages { return records }
                } else if items.count < pageSize {
                    return records
                }
                pageNumber += 1
                if pageNumber > 100_000 {
                    throw MetrcReadError(status: 200, message: "GET \(path): more than 100000 pages")
                }
            default:
                throw MetrcReadError(status: 200, message: "GET \(path): answer is neither a list nor a page")
            }
        }
    }

    /// Reads every page of a list, up to `concurrency` pages at once once the first page told how many there
    /// are, and hands each page's records to `each` as it arrives (one call at a time, pages in any order),
    /// so a list of 100,000 plants is never held whole. A bare array is one page. Throws `MetrcReadError`.
    public func pages(path: String, license: String?, userKey: String, since: Date, until: Date, concurrency: Int,
                      each: @Sendable ([[String: JSONValue]]) async throws -> Void) async throws {
        var window: [(String, String)] = []
        if let license { window.append(("licenseNumber", license)) }
        window.append(("lastModifiedStart", MetrcWindowTimestamp.format(since, roundingUp: false)))
        window.append(("lastModifiedEnd", MetrcWindowTimestamp.format(until, roundingUp: true)))
        let query = window
        let pageSize = 20
        @Sendable func page(_ number: Int) async throws -> (records: [[String: JSONValue]], totalPages: Int?) {
            let value = try await read(path: path, query: query + [("pageNumber", String(number)), ("pageSize", String(pageSize))],
                                       userKey: userKey)
            switch value {
            case .array(let items):
                return (try Self.objects(items, path: path), 1)
            case .object(let fields):
                guard case .array(let items)? = fields.field("Data") else {
                    throw MetrcReadError(status: 200, message: "GET \(path): a page without a Data array")
                }
                let total = fields.field("TotalPages").flatMap(\.int64Value).map { Int(clamping: $0) }
                return (try Self.objects(items, path: path), total)
            default:
                throw MetrcReadError(status: 200, message: "GET \(path): answer is neither a list nor a page")
            }
        }
        let first = try await page(1)
        try await each(first.records)
        guard var total = first.totalPages else {
            // No TotalPages: follow pages one by one until a short one.
            var number = 1
            var last = first.records
            while last.count == pageSize, number < 100_000 {
                number += 1
                last = try await page(number).records
                try await each(last)
            }
            return
        }
        total = min(total, 100_000)
        guard total > 1 else { return }
        try await withThrowingTaskGroup(of: [[String: JSONValue]].self) { group in
            var next = 2
            while next <= total, next < 2 + max(1, concurrency) {
                let number = next
                group.addTask { try await page(number).records }
                next += 1
            }
            while let records = try await group.next() {
                try await each(records)
                if next <= total {
                    let number = next
                    group.addTask { try await page(number).records }
                    next += 1
                }
            }
        }
    }

    /// One applied package adjustment, as Metrc's adjustment history gives it.
    public struct Adjustment: Sendable, Equatable {
        public let id: Int64
        public let packageLabel: String
        public let quantity: Double
        public let unit: String
        public let reason: String
        /// `YYYY-MM-DD`.
        public let date: String
        public let note: String?

        public init(id: Int64, packageLabel: String, quantity: Double, unit: String, reason: String, date: String,
                    note: String?) {
            self.id = id
            self.packageLabel = packageLabel
            self.quantity = quantity
            self.unit = unit
            self.reason = reason
            self.date = date
            self.note = note
        }
    }

    /// Every applied adjustment of the license modified within [since, until], all pages
    /// (`GET /packages/v2/adjustments`), for reconciling an unknown outcome of POST adjust.
    /// A record that cannot be read throws (a reconciliation must not conclude on a partial picture).
    public func adjustments(license: String, userKey: String, since: Date, until: Date) async throws -> [Adjustment] {
        let records = try await list(path: "/packages/v2/adjustments", license: license, userKey: userKey,
                                     since: since, until: until)
        return try records.map(Self.adjustment)
    }

    static func adjustment(_ fields: [String: JSONValue]) throws -> Adjustment {
        func missing(_ name: String) -> MetrcReadError {
            MetrcReadError(status: 200, message: "adjustment record without a readable \(name)")
        }
        guard let id = fields.field("Id")?.int64Value else { throw missing("Id") }
        guard let label = fields.field(anyOf: ["PackageLabel", "Label"])?.stringValue else { throw missing("PackageLabel") }
        guard let quantity = fields.field(anyOf: ["Quantity", "AdjustmentQuantity"])?.numberValue
        else { throw missing("Quantity") }
        guard let unit = fields.field(anyOf: ["UnitOfMeasureName", "AdjustmentUnitOfMeasureName", "UnitOfMeasure"])?
            .stringValue else { throw missing("UnitOfMeasureName") }
        guard let reason = fields.field(anyOf: ["AdjustmentReasonName", "AdjustmentReason"])?.stringValue
        else { throw missing("AdjustmentReasonName") }
        guard let date = fields.field("AdjustmentDate")?.stringValue else { throw missing("AdjustmentDate") }
        let note = fields.field(anyOf: ["ReasonNote", "AdjustmentNote"])?.stringValue
        // Some states write dates as `2025-06-01T00:00:00`: keep the day.
        return Adjustment(id: id, packageLabel: label, quantity: quantity, unit: unit, reason: reason,
                          date: String(date.prefix(10)), note: note)
    }

    // MARK: Helpers

    /// One GET whose 2xx answer is JSON; anything else throws `MetrcReadError`.
    func read(path: String, query: [(String, String)], userKey: String) async throws -> JSONValue {
        switch await exchange(method: .GET, path: path, query: query, userKey: userKey) {
        case .failure(let reason):
            throw MetrcReadError(status: nil, message: reason)
        case .answer(let status, let retryAfter, let body):
            guard (200..<300).contains(status) else {
                throw readError(status: status, retryAfter: retryAfter, body: body, userKey: userKey)
            }
            guard let value = JSONValue.parse(body) else {
                throw MetrcReadError(status: status, message: "GET \(path): the answer is not JSON")
            }
            return value
        }
    }

    func readError(status: Int, retryAfter: String?, body: [UInt8], userKey: String) -> MetrcReadError {
        switch MetrcResponse.classify(status: status, retryAfter: retryAfter, body: body) {
        case .rateLimited(let seconds):
            return MetrcReadError(status: status, message: "rate limited", retryAfter: seconds)
        case .unauthorized:
            return MetrcReadError(status: status, message: "key rejected (\(status))")
        case .tooLarge:
            return MetrcReadError(status: status, message: "request too large")
        case .serverFault(_, let message), .notFound(let message):
            return MetrcReadError(status: status, message: redact(message, userKey: userKey))
        case .rejected(let errors):
            return MetrcReadError(status: status, message: redact(errors.map(\.message).joined(separator: "; "),
                                                                  userKey: userKey))
        case .accepted, .transportFailure:
            return MetrcReadError(status: status, message: "HTTP \(status)")
        }
    }

    static func objects(_ items: [JSONValue], path: String) throws -> [[String: JSONValue]] {
        try items.map { item in
            guard let object = item.objectValue else {
                throw MetrcReadError(status: 200, message: "GET \(path): a list entry is not an object")
            }
            return object
        }
    }
}
