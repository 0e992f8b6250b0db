import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import OutlawProtocol

/// Metrc v2 over HTTP: the five writes, the key check and the reads outlawd needs.
/// Every request is signed with HTTP Basic (vendor key : user key). Keys are never logged nor put in messages.
public final class MetrcClient: Sendable {
    let configuration: MetrcClientConfiguration
    let http: HTTPClient
    let logger: Logger
    /// `baseURL` without a trailing slash.
    let base: String
    /// Every GET of this client waits its turn here (`configuration.readLimits`).
    public let readBudget: ReadBudget

    /// The tally the current task's GETs count into (the sync sets one per kind).
    @TaskLocal public static var readTally: ReadTally?

    /// Owns its `HTTPClient` (on the shared event loop group); call `shutdown()` when done.
    public init(configuration: MetrcClientConfiguration, logger: Logger = Logger(label: "outlawd.metrc")) {
        self.configuration = configuration
        self.logger = logger
        var base = configuration.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        self.readBudget = ReadBudget(limits: configuration.readLimits)
        let timeout = TimeAmount.fromSeconds(configuration.requestTimeout)
        var httpConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,   // never send the keys anywhere else
            timeout: .init(connect: min(timeout, .seconds(30)), read: timeout))
        // The uploader retries with its own backoff; a refused connection must fail now, not at the deadline.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        // Every read the budget lets start gets a connection at once, beside the uploader's writes: a request
        // queued in the pool would spend its deadline waiting (the pool's default is 8 a host).
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit =
            max(8, configuration.readLimits.concurrentPerVendorKey + 16)
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: One exchange

    /// An HTTP answer, or why there was none.
    enum Exchange: Sendable {
        case answer(status: Int, retryAfter: String?, body: [UInt8])
        case failure(String)
    }

    /// Largest answer read (a list page or a bare array).
    static let maximumResponseBytes = 64 * 1024 * 1024

    /// Sends one request and reads the whole answer. A GET first waits its turn in the read budget, and one
    /// answered 429 waits the pause Metrc asked for (shared by every read of that facility) and goes again.
    func exchange(method: HTTPMethod, path: String, query: [(String, String)], userKey: String,
                  body: [UInt8]? = nil) async -> Exchange {
        guard method == .GET else { return await send(method: method, path: path, query: query, userKey: userKey, body: body) }
        let facility = query.first { $0.0 == "licenseNumber" }?.1
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await readBudget.acquire(facility: facility)
            } catch {
                return .failure("cancelled")
            }
            let result = await send(method: method, path: path, query: query, userKey: userKey, body: nil)
            readBudget.finish(facility: facility)
            guard case .answer(429, let retryAfter, _) = result else {
                if case .answer(let status, _, _) = result { Self.readTally?.count(status: status) } else { Self.readTally?.count(status: nil) }
                return result
            }
            Self.readTally?.count(status: 429)
            let seconds = retryAfter.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            readBudget.rateLimited(facility: facility, retryAfter: seconds, attempt: attempt)
            logger.notice("Metrc answered 429: reads of this facility pause", metadata: MessageID.metrcRateLimited.metadata([
                "license": .string(facility ?? "-"), "retry_after": .string(retryAfter ?? "-"), "attempt": "\(attempt)",
            ]))
            if attempt > configuration.rateLimitedRetries { return result }
        }
    }

    /// Sends one request and reads the whole answer within `requestTimeout`. Logs one debug line.
    func send(method: HTTPMethod, path: String, query: [(String, String)], userKey: String,
              body: [UInt8]? = nil) async -> Exchange {
        var request = HTTPClientRequest(url: base + path + Self.queryString(query))
        request.method = method
        request.headers.add(name: "Authorization", value: Self.basicAuthorization(configuration.vendorKey, userKey))
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let started = ContinuousClock.now
        let deadline = NIODeadline.now() + .fromSeconds(configuration.requestTimeout)
        let result: Exchange
        do {
            let response = try await http.execute(request, deadline: deadline)
            let bytes = try await response.body.collect(upTo: Self.maximumResponseBytes)
            result = .answer(status: Int(response.status.code),
                             retryAfter: response.headers.first(name: "Retry-After"),
                             body: Array(bytes.readableBytesView))
        } catch {
            result = .failure(redact(Self.describe(error), userKey: userKey))
        }
        let elapsed = ContinuousClock.now - started
        MetrcMetrics.record(method: method, path: path, result: result, elapsed: elapsed)
        let outcome: String
        switch result {
        case .answer(let status, _, _): outcome = String(status)
        case .failure(let reason): outcome = "failed: \(reason)"
        }
        logger.debug("\(method.rawValue) \(path) -> \(outcome)", metadata: [
            "license": .string(query.first { $0.0 == "licenseNumber" }?.1 ?? "-"),
            "ms": .stringConvertible(Int(elapsed / .milliseconds(1))),
        ])
        return result
    }

    /// Replaces either key, should an answer echo one, in text that may be logged or stored.
    func redact(_ text: String, userKey: String) -> String {
        var text = text
        for key in [configuration.vendorKey, userKey] where !key.isEmpty {
            text = text.replacingOccurrences(of: key, with: "[key]")
        }
        return text
    }

    static func basicAuthorization(_ vendorKey: String, _ userKey: String) -> String {
        "Basic " + Data("\(vendorKey):\(userKey)".utf8).base64EncodedString()
    }

    /// `?a=1&b=2`, values percent-encoded; "" when empty.
    static func queryString(_ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return "" }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:")
        func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s }
        return "?" + query.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }

    /// Short text of a transport error (no URL credentials are ever in it: they travel in a header).
    static func describe(_ error: any Error) -> String {
        if error is CancellationError { return "cancelled" }
        if let httpError = error as? HTTPClientError {
            switch httpError {
            case .deadlineExceeded: return "timed out (deadline exceeded)"
            case .readTimeout: return "timed out (no data read)"
            case .connectTimeout: return "connect timed out"
            case .remoteConnectionClosed: return "connection closed by Metrc without an answer"
            case .cancelled: return "cancelled"
            default: return String(describing: httpError)
            }
        }
        return String(describing: error)
    }
}

extension TimeAmount {
    static func fromSeconds(_ seconds: Double) -> TimeAmount {
        guard seconds.isFinite, seconds > 0 else { return .nanoseconds(0) }
        return .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}
