import Foundation

/// An answer that is not a success: a status and, for 400/404/405/413/500/503, Metrc's `{"Message":...}`.
public struct MetrcError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String?

    public init(status: Int, message: String?) {
        self.status = status
        self.message = message
    }

    public static func badRequest(_ message: String) -> MetrcError { MetrcError(status: 400, message: message) }
    public static let unauthorized = MetrcError(status: 401, message: nil)
    public static func notFound(_ message: String) -> MetrcError { MetrcError(status: 404, message: message) }
}

/// The query parameters of a request; names compare case-insensitively (as ASP.NET binds them).
public struct QueryParameters: Sendable, Equatable {
    private var values: [String: String] = [:]

    public init(_ pairs: [String: String] = [:]) {
        for (key, value) in pairs { values[key.lowercased()] = value }
    }

    /// Parses `a=1&b=x%20y` (`+` is a space).
    public init(query: Substring) {
        for part in query.split(separator: "&") where !part.isEmpty {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = QueryParameters.decode(pieces[0])
            let value = pieces.count > 1 ? QueryParameters.decode(pieces[1]) : ""
            if values[key.lowercased()] == nil { values[key.lowercased()] = value }
        }
    }

    public subscript(_ name: String) -> String? {
        get { values[name.lowercased()] }
        set { values[name.lowercased()] = newValue }
    }

    /// A parameter that is present and not blank.
    public func nonEmpty(_ name: String) -> String? {
        guard let value = self[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

/// `pageNumber` (from 1) and `pageSize` (1...20). Without either, Metrc v2 does not page (everything, one page).
public struct PageRequest: Sendable, Equatable {
    public var pageNumber: Int
    public var pageSize: Int

    public static let maximumPageSize = 20

    public init(pageNumber: Int, pageSize: Int) {
        self.pageNumber = pageNumber
        self.pageSize = pageSize
    }

    /// `nil` when the request does not ask for paging.
    public static func parse(_ query: QueryParameters) throws(MetrcError) -> PageRequest? {
        let numberText = query.nonEmpty("pageNumber")
        let sizeText = query.nonEmpty("pageSize")
        if numberText == nil, sizeText == nil { return nil }
        var number = 1
        var size = maximumPageSize
        if let numberText {
            guard let value = Int(numberText), value >= 1 else {
                throw .badRequest("The pageNumber parameter must be a whole number of at least 1.")
            }
            number = value
        }
        if let sizeText {
            guard let value = Int(sizeText), value >= 1 else {
                throw .badRequest("The pageSize parameter must be a whole number of at least 1.")
            }
            guard value <= maximumPageSize else {
                throw .badRequest("The pageSize parameter cannot exceed \(maximumPageSize).")
            }
            size = value
        }
        return PageRequest(pageNumber: number, pageSize: size)
    }
}

/// Metrc's page envelope: `{"Data":[...],"Total":N,"TotalRecords":N,"PageSize":s,"RecordsOnPage":n,"Page":p,"CurrentPage":p,"TotalPages":T}`.
public func pageEnvelope(_ items: [JSONValue], page: PageRequest?) -> JSONValue {
    pageEnvelope(total: items.count, page: page) { Array(items[$0]) }
}

/// The page envelope of `total` records; `render` is asked only for the positions on the requested page, so a list of
/// 100,000 records costs 20 renderings, not 100,000.
func pageEnvelope(total: Int, page: PageRequest?, render: (Range<Int>) -> [JSONValue]) -> JSONValue {
    let pageNumber = page?.pageNumber ?? 1
    let pageSize = page?.pageSize ?? total
    let range: Range<Int>
    let totalPages: Int
    if let page {
        // A huge pageNumber must give an empty page, not an overflow trap.
        let (offset, overflow) = (page.pageNumber - 1).multipliedReportingOverflow(by: page.pageSize)
        let start = overflow ? total : min(offset, total)
        range = start..<min(total, start + page.pageSize)
        totalPages = (total + page.pageSize - 1) / page.pageSize
    } else {
        range = 0..<total
        totalPages = total == 0 ? 0 : 1
    }
    let slice = render(range)
    return [
        "Data": .array(slice),
        "Total": .int(total),
        "TotalRecords": .int(total),
        "PageSize": .int(pageSize),
        "RecordsOnPage": .int(slice.count),
        "Page": .int(pageNumber),
        "CurrentPage": .int(pageNumber),
        "TotalPages": .int(totalPages),
    ]
}

/// A `lastModifiedStart`/`lastModifiedEnd` window, both ends inclusive. Either end may be left out.
public struct ModifiedWindow: Sendable, Equatable {
    public var start: Date?
    public var end: Date?

    public init(start: Date? = nil, end: Date? = nil) {
        self.start = start
        self.end = end
    }

    public static func parse(_ query: QueryParameters) throws(MetrcError) -> ModifiedWindow {
        var window = ModifiedWindow()
        if let text = query.nonEmpty("lastModifiedStart") {
            guard let date = MetrcTimestamp.parse(text) else {
                throw .badRequest("The lastModifiedStart parameter \(text) is not a valid timestamp (yyyy-mm-ddThh:mm:ssZ).")
            }
            window.start = date
        }
        if let text = query.nonEmpty("lastModifiedEnd") {
            guard let date = MetrcTimestamp.parse(text) else {
                throw .badRequest("The lastModifiedEnd parameter \(text) is not a valid timestamp (yyyy-mm-ddThh:mm:ssZ).")
            }
            window.end = date
        }
        if let start = window.start, let end = window.end, start > end {
            throw .badRequest("The lastModifiedStart parameter must not be later than lastModifiedEnd.")
        }
        return window
    }

    /// Refuses (400) a window wider than `limit` seconds; a window open at one end counts as wider than any limit.
    /// No window at all passes.
    public func checkWidth(atMost limit: TimeInterval) throws(MetrcError) {
        switch (start, end) {
        case (nil, nil): return
        case (let start?, let end?) where end.timeIntervalSince(start) <= limit: return
        default: throw .badRequest(ModifiedWindow.tooWideMessage(limit: limit))
        }
    }

    /// The 400 message for a too-wide window. Clients recognise it by "lastModifiedStart", "lastModifiedEnd" and
    /// "apart", so those words stay.
    public static func tooWideMessage(limit: TimeInterval) -> String {
        let hours = (limit / 3600 * 10_000).rounded() / 10_000
        let unit = hours == 1 ? "hour" : "hours"
        return "The lastModifiedStart and lastModifiedEnd parameters must not be more than \(JSONValue.format(hours)) \(unit) apart."
    }

    public func contains(_ date: Date) -> Bool {
        if let start, date < start { return false }
        if let end, date > end { return false }
        return true
    }
}
