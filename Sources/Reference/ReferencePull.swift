import Foundation
import OutlawProtocol
import OutlawStore

/// Answers a handheld's `pull` from the copy in the store: `data` lines of at most 500 items, read page by
/// page while the connection takes them (its back-pressure paces the reads), then `pulled` with a cursor.
public struct ReferencePull: Sendable {
    let store: Store
    let licenses: [String]
    let defaultLicense: String
    /// Items a `data` line carries at most (the contract's limit).
    static let itemsPerLine = 500

    public init(store: Store, defaultLicense: String, licenses: [String]) {
        self.store = store
        self.defaultLicense = defaultLicense
        self.licenses = licenses
    }

    /// Sends the `data` lines through `send` and returns the last line: `pulled`, or an `error` when the request
    /// is bad (nothing sent then) or the store failed part way.
    public func answer(_ request: ClientMessage.Pull, send: @Sendable (Reply) async throws -> Void) async -> Reply {
        let kinds: [ReferenceKind]
        switch Self.kinds(request.kinds) {
        case .success(let parsed): kinds = parsed
        case .failure(let error): return .error(.badRequest, error.message)
        }
        let license = request.license ?? defaultLicense
        guard licenses.contains(license) else {
            return .error(.badRequest, "this server does not serve license \(license)")
        }
        var cursor: PullCursor?
        if let since = request.since {
            guard let parsed = PullCursor.parse(since) else {
                return .error(.badRequest, "since is not a cursor this server gave")
            }
            guard parsed.license == license else {
                return .error(.badRequest, "the cursor belongs to license \(parsed.license), not \(license)")
            }
            cursor = parsed
        }
        do {
            let store = self.store
            let upTo = try await Blocking.run { try store.referenceChangeCount(license: license) }
            if let cursor, cursor.change > upTo {
                return .error(.badRequest, "since is not a cursor this server gave")
            }
            var counts: [(String, JSONValue)] = []
            for kind in kinds {
                let since = cursor.map { $0.kinds.contains(kind) ? $0.change : 0 } ?? 0
                let sent = try await stream(kind, license: license, since: since, upTo: upTo, removed: false, send: send)
                if since > 0 {
                    _ = try await stream(kind, license: license, since: since, upTo: upTo, removed: true, send: send)
                }
                counts.append((kind.rawValue, .number(Double(sent))))
            }
            let known = try await Blocking.run { try store.referenceSyncStates(license: license) }
            let states = Dictionary(known.map { ($0.kind, $0) }) { a, _ in a }
            let synced = kinds.map { states[$0]?.lastSuccessAt }
            let syncedAt: JSONValue = synced.contains(where: { $0 == nil })
                ? .null : .string(Timestamp.format(synced.compactMap { $0 }.min()!))
            let next = PullCursor(license: license, change: upTo, kinds: Set(kinds))
            return Reply(op: "pulled", [("cursor", .string(next.text)), ("synced_at", syncedAt), ("counts", .object(Dictionary(uniqueKeysWithValues: counts)))])
        } catch is CancellationError {
            return .error(.unavailable, "the server is stopping")
        } catch {
            return .error(.unavailable, "the reference data cannot be read right now; pull again later")
        }
    }

    /// Streams one kind's items (or removed keys) changed in (since, upTo]; returns how many were sent.
    private func stream(_ kind: ReferenceKind, license: String, since: Int64, upTo: Int64, removed: Bool,
                        send: @Sendable (Reply) async throws -> Void) async throws -> Int {
        var position: (change: Int64, key: String)?
        var sent = 0
        while true {
            let (store, after) = (self.store, position)
            let page = try await Blocking.run {
                try store.referencePage(license: license, kind: kind, since: since, upTo: upTo, removed: removed,
                                        after: after, limit: Self.itemsPerLine)
            }
            guard let last = page.items.last else { return sent }
            var line = #"{"op":"data","kind":"# + "\"\(kind.rawValue)\"," + (removed ? #""removed":["# : #""items":["#)
            for (i, item) in page.items.enumerated() {
                if i > 0 { line += "," }
                if removed { JSONValue.writeString(item.key, to: &line) } else { line += item.json }
            }
            line += "]}"
            try await send(Reply(op: "data", preformattedLine: line))
            sent += page.items.count
            position = (last.change, last.key)
            if page.items.count < Self.itemsPerLine { return sent }
        }
    }

    /// The requested kinds in order, each once; all of them when `kinds` is missing.
    static func kinds(_ requested: [String?]?) -> Result<[ReferenceKind], PullError> {
        guard let requested else { return .success(ReferenceKind.allCases) }
        guard !requested.isEmpty else { return .failure(PullError("kinds is empty: name at least one kind")) }
        var kinds: [ReferenceKind] = []
        for name in requested {
            guard let name else { return .failure(PullError("every kind must be a string")) }
            guard let kind = ReferenceKind(rawValue: name) else {
                let known = ReferenceKind.allCases.map(\.rawValue).joined(separator: ", ")
                return .failure(PullError("unknown kind \"\(name)\" (known: \(known))"))
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        return .success(kinds)
    }

    /// Why a `pull` cannot be answered, for people.
    struct PullError: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }
}
